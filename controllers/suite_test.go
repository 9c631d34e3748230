package controllers_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

var (
	// k8s talks to the real API server directly (not through the manager's
	// cache), so tests observe what is stored.
	k8s client.Client
	// writes counts every write request the operator's client sends;
	// written names the objects, for failure messages.
	writes  atomic.Int64
	written = &syncBuffer{}
	// logs holds everything the operator logged.
	logs = &syncBuffer{}
	// env is the control plane, for impersonated users.
	env *envtest.Environment
	// clockOffset moves the operator's clock forward (schedules, retention).
	clockOffset atomic.Int64
)

func operatorClock() time.Time { return time.Now().Add(time.Duration(clockOffset.Load())) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true)))
	testEnv := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane (run through `make test`, which builds it): %v\n", err)
		_ = testEnv.Stop() // Start may fail after launching etcd and kube-apiserver
		os.Exit(1)
	}
	env = testEnv
	code := run(m, testEnv, cfg)
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "operator log:\n"+logs.String())
	}
	os.Exit(code)
}

// countWrites wraps the manager's client so tests can assert that a
// reconcile with nothing to change sends no write.
func countWrites(config *rest.Config, options client.Options) (client.Client, error) {
	c, err := client.NewWithWatch(config, options)
	if err != nil {
		return nil, err
	}
	count := func(verb string, obj any) {
		writes.Add(1)
		if o, ok := obj.(client.Object); ok {
			fmt.Fprintf(written, "%s %T %s/%s\n", verb, o, o.GetNamespace(), o.GetName())
		} else {
			fmt.Fprintf(written, "%s %T\n", verb, obj)
		}
	}
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count("create", obj)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			count("update", obj)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			count("patch", obj)
			return c.Patch(ctx, obj, p, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			count("apply", obj)
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count("delete", obj)
			return c.Delete(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			count("patch "+sub, obj)
			return c.SubResource(sub).Patch(ctx, obj, p, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			count("update "+sub, obj)
			return c.SubResource(sub).Update(ctx, obj, opts...)
		},
	}), nil
}

// operatorUser runs the manager with exactly the generated ClusterRole
// (config/rbac/role.yaml), so a missing RBAC marker fails the tests.
func operatorUser(testEnv *envtest.Environment, admin client.Client) (*rest.Config, error) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(data, role); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := admin.Create(ctx, role); err != nil {
		return nil, err
	}
	const user = "system:serviceaccount:crm-operator-system:crm-operator"
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "crm-operator-manager"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
	}
	if err := admin.Create(ctx, binding); err != nil {
		return nil, err
	}
	u, err := testEnv.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

func run(m *testing.M, testEnv *envtest.Environment, cfg *rest.Config) int {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)

	var err error
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := framework.InstallAdmissionPolicies(context.Background(), k8s, filepath.Join("..", "config", "admission")); err != nil {
		fmt.Fprintln(os.Stderr, "installing the admission policies:", err)
		return 1
	}
	operatorCfg, err := operatorUser(testEnv, k8s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setting up the operator's RBAC:", err)
		return 1
	}
	newManager = func() (ctrl.Manager, error) {
		mgr, err := ctrl.NewManager(operatorCfg, ctrl.Options{
			Scheme:                 scheme,
			Cache:                  controllers.CacheOptions(true),
			NewClient:              countWrites,
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
			// Tests restart the manager in-process.
			Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		})
		if err != nil {
			return nil, err
		}
		return mgr, controllers.SetupWithManager(mgr, controllers.Options{MaxConcurrentReconciles: 4, AgentImage: "registry.example.com/crm-operator:test", Clock: operatorClock,
			// The mail catcher's image comes from a registry of the cluster's own (products_test.go).
			Images: resources.Images{Overrides: map[string]string{resources.ImageMail: "registry.example.com/crm-local/mailpit"}}})
	}
	if err := startManager(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// A missing RBAC marker shows up as a refused request in the log.
	if strings.Contains(logs.String(), "is forbidden") {
		fmt.Fprintln(os.Stderr, "FAIL: the operator was refused a request: its generated RBAC lacks a rule")
		code = 1
	}
	stopManager()
	return code
}

var (
	newManager  func() (ctrl.Manager, error)
	stopManager = func() {}
)

// startManager runs a new manager with every controller; stopManager stops
// it as a shutdown would (tests use it to restart mid-promotion).
func startManager() error {
	mgr, err := newManager()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopManager = func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
		stopManager = func() {}
	}
	return nil
}
