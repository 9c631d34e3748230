// Package api_test applies the samples and the invalid corpus to a real
// kube-apiserver with the generated CRDs installed: every sample must be
// accepted, and every invalid manifest refused with an error naming the field.
package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/test/framework"
)

var (
	testEnv *envtest.Environment
	cfg     *rest.Config
	k8s     client.Client
)

func TestMain(m *testing.M) {
	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	var err error
	if cfg, err = testEnv.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane (run through `make test`, which builds it): %v\n", err)
		_ = testEnv.Stop() // Start may fail after launching etcd and kube-apiserver
		os.Exit(1)
	}
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := framework.InstallAdmissionPolicies(context.Background(), k8s, filepath.Join("..", "..", "config", "admission")); err != nil {
		fmt.Fprintln(os.Stderr, "installing the admission policies:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
	}
	os.Exit(code)
}

// readDocs returns the YAML documents of a file as unstructured objects.
func readDocs(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

func ensureNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	if name == "" {
		return
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// apply creates obj, or updates it when it exists (so a file can describe a
// forbidden transition as a second document).
func apply(ctx context.Context, obj *unstructured.Unstructured) error {
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(obj.GroupVersionKind())
	err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), existing)
	switch {
	case apierrors.IsNotFound(err):
		return k8s.Create(ctx, obj)
	case err != nil:
		return err
	}
	obj.SetResourceVersion(existing.GetResourceVersion())
	return k8s.Update(ctx, obj)
}

func cleanup(t *testing.T, objs []*unstructured.Unstructured) {
	t.Cleanup(func() {
		for _, o := range objs {
			_ = k8s.Delete(context.Background(), o)
		}
	})
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			out = append(out, f)
		}
	}
	return out
}

var expectLine = regexp.MustCompile(`(?m)^# expect: (.+)$`)

func TestInvalidManifestsAreRefusedNamingTheField(t *testing.T) {
	files := yamlFiles(t, filepath.Join("..", "testdata", "invalid"))
	if len(files) < 15 {
		t.Fatalf("the invalid corpus has %d manifests, want at least 15", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			ctx := context.Background()
			raw, _ := os.ReadFile(file)
			if !strings.HasPrefix(string(raw), "# invalid: ") {
				t.Fatalf("%s must start with a '# invalid: <what is wrong>' comment", file)
			}
			var expects []string
			for _, m := range expectLine.FindAllStringSubmatch(string(raw), -1) {
				expects = append(expects, strings.TrimSpace(m[1]))
			}
			if len(expects) == 0 {
				t.Fatalf("%s has no '# expect: <field>' line", file)
			}
			docs := readDocs(t, file)
			cleanup(t, docs)
			for _, d := range docs[:len(docs)-1] {
				ensureNamespace(ctx, t, d.GetNamespace())
				if err := apply(ctx, d); err != nil {
					t.Fatalf("setup document %s was refused: %v", d.GetName(), err)
				}
			}
			last := docs[len(docs)-1]
			ensureNamespace(ctx, t, last.GetNamespace())
			err := apply(ctx, last)
			if err == nil {
				t.Fatalf("accepted, want refused")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("refused with %v, want an Invalid error", err)
			}
			// A CEL runtime error means a rule reads a field without has().
			if strings.Contains(err.Error(), "evaluating rule") {
				t.Errorf("a validation rule failed to evaluate instead of judging the value:\n%v", err)
			}
			for _, want := range expects {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %q:\n%v", want, err)
				}
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestSamplesAreAccepted(t *testing.T) {
	ctx := context.Background()
	files := yamlFiles(t, filepath.Join("..", "..", "config", "samples"))
	if len(files) == 0 {
		t.Fatal("no samples")
	}
	var all []*unstructured.Unstructured
	for _, f := range files {
		all = append(all, readDocs(t, f)...)
	}
	// Projects first: their namespace holds the namespaced samples.
	sort.SliceStable(all, func(i, j int) bool { return all[i].GetNamespace() == "" && all[j].GetNamespace() != "" })
	cleanup(t, all)
	// Every product has a sample project with a test and a production environment.
	products := map[string]string{} // project -> product
	stages := map[string]map[string]bool{}
	for _, o := range all {
		switch o.GetKind() {
		case "ImplementationProject":
			name, _, _ := unstructured.NestedString(o.Object, "spec", "product", "name")
			products[o.GetName()] = name
		case "Environment":
			stage, _, _ := unstructured.NestedString(o.Object, "spec", "stage")
			if stages[o.GetNamespace()] == nil {
				stages[o.GetNamespace()] = map[string]bool{}
			}
			stages[o.GetNamespace()][stage] = true
		}
	}
	covered := map[string]bool{}
	for project, product := range products {
		if stages[project]["test"] && stages[project]["production"] {
			covered[product] = true
		}
	}
	for _, product := range []string{"suitecrm", "espocrm", "odoo", "twenty", "custom"} {
		if !covered[product] {
			t.Errorf("config/samples has no %s project with test and production environments", product)
		}
	}
	for _, o := range all {
		ensureNamespace(ctx, t, o.GetNamespace())
		if err := k8s.Create(ctx, o); err != nil {
			t.Errorf("%s %s refused: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ctx := context.Background()
	p := &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: "defaults"},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer:      crmv1alpha1.Customer{Name: "Defaults Ltd"},
			Product:       crmv1alpha1.Product{Name: crmv1alpha1.ProductEspoCRM},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po"}},
		},
	}
	if err := k8s.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, p) })
	if got := p.Spec.Stages; len(got) != 2 || got[0] != "test" || got[1] != "production" {
		t.Errorf("stages = %v, want [test production]", got)
	}
	if p.Spec.Hosting.Mode != crmv1alpha1.HostingCloud {
		t.Errorf("hosting.mode = %q, want cloud", p.Spec.Hosting.Mode)
	}
}

// TestExplainTeachesTheFields runs kubectl explain against the API server: the
// field docs come from the CRD's OpenAPI schema, generated from doc comments.
func TestExplainTeachesTheFields(t *testing.T) {
	// The kubectl that hack/build-tools.sh builds beside kube-apiserver (same
	// version), else the one on PATH.
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			t.Fatal("no kubectl: run through `make test`, which builds it")
		}
	}
	kubeconfig := writeKubeconfig(t)
	cases := map[string][]string{
		"implementationproject.spec.gdpr":           {"allowedRegions", "requireEncryptedStorage", "glob patterns"},
		"environment.spec.stage":                    {"Immutable"},
		"increment.spec.acceptance":                 {"product owner"},
		"implementationproject.spec":                {"administrators", "integrators", "productOwners"},
		"implementationproject.spec.administrators": {"production-stage", "crm-production-protection"},
		"restore.spec.confirm":                      {"administrator", "production backups"},
	}
	for field, wants := range cases {
		out, err := exec.Command(kubectl, "--kubeconfig", kubeconfig, "explain", field).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl explain %s: %v\n%s", field, err, out)
		}
		for _, want := range wants {
			if !strings.Contains(string(out), want) {
				t.Errorf("kubectl explain %s does not mention %q:\n%s", field, want, out)
			}
		}
	}
}

func writeKubeconfig(t *testing.T) string {
	t.Helper()
	user, err := testEnv.AddUser(envtest.User{Name: "explain", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// spec.product.env reaches every product's containers, but never overrides
// what the operator sets: the API server refuses each such variable, for
// each product, naming the field.
func TestProductEnvMayNotOverrideTheOperatorsVariables(t *testing.T) {
	ctx := context.Background()
	for _, name := range []crmv1alpha1.ProductName{crmv1alpha1.ProductSuiteCRM, crmv1alpha1.ProductEspoCRM, crmv1alpha1.ProductOdoo, crmv1alpha1.ProductTwenty, crmv1alpha1.ProductCustom} {
		product := crmv1alpha1.Product{Name: name}
		if name == crmv1alpha1.ProductCustom {
			product.Image, product.DatabaseEngine = "registry.example/crm", crmv1alpha1.DatabasePostgreSQL
		}
		owned := crm.OwnedEnv(product)
		if len(owned) < 4 {
			t.Fatalf("%s: the operator sets only %v", name, owned)
		}
		project := func(vars ...string) *crmv1alpha1.ImplementationProject {
			p := &crmv1alpha1.ImplementationProject{
				ObjectMeta: metav1.ObjectMeta{Name: "env-" + string(name)},
				Spec: crmv1alpha1.ImplementationProjectSpec{Customer: crmv1alpha1.Customer{Name: "Env"}, Product: product,
					ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@env.example"}}},
			}
			for _, v := range vars {
				p.Spec.Product.Env = append(p.Spec.Product.Env, corev1.EnvVar{Name: v, Value: "x"})
			}
			return p
		}
		if err := k8s.Create(ctx, project("CRM_FEATURE_FLAGS", "TZ"), client.DryRunAll); err != nil {
			t.Errorf("%s: a variable of the user's own was refused: %v", name, err)
		}
		for _, v := range owned {
			err := k8s.Create(ctx, project("TZ", v), client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), "spec.product.env") {
				t.Errorf("%s: spec.product.env overriding %s: got %v, want a refusal naming spec.product.env", name, v, err)
			}
		}
	}
}
