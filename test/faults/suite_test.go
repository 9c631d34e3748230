//go:build faults

package faults

import (
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/test/framework"
)

// The suite's access to the cluster and its operator replicas.

func (s *suite) connect() {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubecfg)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		s.t.Fatal(err)
	}
	s.cfg, s.c = cfg, c
}

// deleteNodeLeases deletes the simulated nodes' leases.
func (s *suite) deleteNodeLeases() error {
	nodes := &corev1.NodeList{}
	if err := s.c.List(s.ctx, nodes); err != nil {
		return err
	}
	for _, n := range nodes.Items {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: corev1.NamespaceNodeLease, Name: n.Name}}
		if err := s.c.Delete(s.ctx, lease); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// waitAPIServer polls the API server's readiness (etcd included).
func (s *suite) waitAPIServer(timeout time.Duration) error {
	dc, err := discovery.NewDiscoveryClientForConfig(s.cfg)
	if err != nil {
		return err
	}
	return framework.WaitFor(s.ctx, timeout, "the API server ready again", func() (bool, error) {
		err := dc.RESTClient().Get().AbsPath("/readyz").Do(s.ctx).Error()
		return err == nil, err
	})
}

// as returns a client that acts as user (impersonation).
func (s *suite) as(user string) client.Client {
	cfg := rest.CopyConfig(s.cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: s.c.Scheme()})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *suite) waitReady(r *replica) {
	s.t.Helper()
	err := framework.WaitFor(s.ctx, 90*time.Second, "replica "+r.name+" ready", func() (bool, error) {
		_, err := framework.Scrape(fmt.Sprintf("http://127.0.0.1:%d/readyz", r.probePort))
		return err == nil, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) isLeader(r *replica) bool {
	m, err := framework.Scrape(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.metricsPort))
	return err == nil && m.Sum("leader_election_master_status") == 1
}

func (s *suite) waitLeader(r *replica) {
	s.t.Helper()
	if err := framework.WaitFor(s.ctx, 90*time.Second, "replica "+r.name+" leads", func() (bool, error) { return s.isLeader(r), nil }); err != nil {
		s.t.Fatal(err)
	}
}

func (s *suite) leaseHolder() string {
	l := &coordinationv1.Lease{}
	if err := s.c.Get(s.ctx, types.NamespacedName{Namespace: leaseNamespace, Name: leaseName}, l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// create creates obj, retrying while the API server or the webhook is down.
func (s *suite) create(obj client.Object) error {
	return framework.WaitFor(s.ctx, 2*time.Minute, "creating "+obj.GetName(), func() (bool, error) {
		err := s.c.Create(s.ctx, obj.DeepCopyObject().(client.Object))
		if err == nil || apierrors.IsAlreadyExists(err) {
			return true, nil
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return false, fmt.Errorf("refused: %w", err) // would never pass: reported at the deadline
		}
		return false, err
	})
}

func (s *suite) apply(manifest string) {
	s.t.Helper()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			s.t.Fatal(err)
		}
		if err := s.create(u); err != nil {
			s.t.Fatal(err)
		}
	}
}
