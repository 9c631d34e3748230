package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	apiwait "k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	repoRoot = filepath.Join("..", "..")
	chartDir = filepath.Join(repoRoot, "charts", "crm-operator")
)

// tool runs a binary built by hack/ and returns its stdout.
func tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	path := filepath.Join(repoRoot, "bin", name)
	if name == "kubectl" {
		path = filepath.Join(repoRoot, "bin", "k8s", "1.37.2", "kubectl")
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: run through `make test`, which builds it (%v)", name, err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		err = errors.New(strings.TrimSpace(errOut.String() + " " + err.Error()))
	}
	return out.String(), err
}

func decodeAll(t *testing.T, manifests string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifests), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// installMonitoringCRDs stands in for the Prometheus operator and
// cert-manager: permissive CRDs for ServiceMonitor, PrometheusRule, Issuer
// and Certificate, so that the chart's objects of those kinds go through the
// API server too (their own schemas are not checked).
func installMonitoringCRDs(ctx context.Context, t *testing.T) {
	t.Helper()
	for kind, group := range map[string]string{"ServiceMonitor": "monitoring.coreos.com", "PrometheusRule": "monitoring.coreos.com",
		"Issuer": "cert-manager.io", "Certificate": "cert-manager.io"} {
		plural := strings.ToLower(kind) + "s"
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: group, Scope: apiextensionsv1.NamespaceScoped,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
						Type: "object", XPreserveUnknownFields: ptr.To(true)}}}},
			},
		}
		if err := k8s.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// Wait until the kinds are served.
	for kind, group := range map[string]string{"ServiceMonitor": "monitoring.coreos.com", "PrometheusRule": "monitoring.coreos.com",
		"Issuer": "cert-manager.io", "Certificate": "cert-manager.io"} {
		err := apiwait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			u := &unstructured.UnstructuredList{}
			u.SetAPIVersion(group + "/v1")
			u.SetKind(kind + "List")
			return k8s.List(ctx, u) == nil, nil
		})
		if err != nil {
			t.Fatalf("%s is not served: %v", kind, err)
		}
	}
}

// dryRunAll sends every object through the API server (server-side dry run),
// and the operator's pod template through the restricted Pod Security profile.
func dryRunAll(ctx context.Context, t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			continue // installed for real by TestMain
		}
		if o.GetNamespace() == "" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" &&
			!strings.Contains(o.GetKind(), "AdmissionPolicy") {
			o.SetNamespace(ns)
		}
		if err := k8s.Create(ctx, o, client.DryRunAll); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetKind() == "Deployment" {
			tmpl, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
			spec := corev1.PodSpec{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &spec); err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "operator-pod", Namespace: ns}, Spec: spec}
			pod.Spec.ServiceAccountName = ""
			if err := k8s.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Errorf("the operator's pod does not pass the restricted profile: %v", err)
			}
		}
	}
}

// mountsSecret tells whether the Deployment's pods mount the Secret.
func mountsSecret(t *testing.T, objs []*unstructured.Unstructured, secret string) bool {
	t.Helper()
	for _, v := range podSpecList(objs, "volumes") {
		if name, _, _ := unstructured.NestedString(v, "secret", "secretName"); name == secret {
			return true
		}
	}
	return false
}

// podSpecList is a list field (containers, volumes) of the rendered
// Deployment's pod template.
func podSpecList(objs []*unstructured.Unstructured, field string) []map[string]any {
	var items []map[string]any
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		list, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
		for _, item := range list {
			items = append(items, item.(map[string]any))
		}
	}
	return items
}

func restrictedNS(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}}
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func TestHelmChart(t *testing.T) {
	ctx := context.Background()
	installMonitoringCRDs(ctx, t)
	restrictedNS(ctx, t, "crm-system")
	everything := []string{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
		"--set", "metrics.dashboard.enabled=true", "--set", "manager.podTolerations[0]=dedicated=crm:NoSchedule",
		"--set", "manager.goMemLimit=100MiB", "--set", "manager.slimCache=false",
		"--set", `images.mirrors.docker\.io=mirror.example.com/dockerhub`, "--set", "images.overrides.postgresql=registry.example.com/library/postgres"}

	for name, values := range map[string][]string{"defaults": nil, "everything enabled": everything,
		"single replica, plain metrics, no webhook": {"--set", "replicaCount=1", "--set", "metrics.secure=false", "--set", "webhook.enabled=false"},
		"cert-manager certificate":                  {"--set", "webhook.certificate=cert-manager"},
		"portal": {"--set", "portal.enabled=true", "--set", "portal.issuerURL=https://dex.example/dex", "--set", "portal.redirectURL=https://portal.example/callback",
			"--set", "portal.clientSecretName=portal-oidc", "--set", "portal.issuerCAConfigMap=dex-ca"}} {
		t.Run(name, func(t *testing.T) {
			if out, err := tool(t, "helm", append([]string{"lint", "--strict", chartDir}, values...)...); err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			out, err := tool(t, "helm", append([]string{"template", "crm", chartDir, "--namespace", "crm-system", "--kube-version", "1.37.2", "--include-crds"}, values...)...)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			objs := decodeAll(t, out)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.GetKind()]++
			}
			for _, want := range []string{"CustomResourceDefinition", "Deployment", "ClusterRole", "ServiceAccount", "Service", "ValidatingAdmissionPolicy", "MutatingAdmissionPolicy"} {
				if kinds[want] == 0 {
					t.Errorf("the chart renders no %s", want)
				}
			}
			if kinds["CustomResourceDefinition"] != 6 {
				t.Errorf("%d CRDs rendered, want 6", kinds["CustomResourceDefinition"])
			}
			if name == "everything enabled" && (kinds["ServiceMonitor"] != 1 || kinds["PrometheusRule"] != 1 || kinds["ConfigMap"] != 1) {
				t.Errorf("monitoring objects missing: %v", kinds)
			}
			if name == "everything enabled" {
				args := managerArgs(t, objs)
				for _, want := range []string{"--image-mirror=docker.io=mirror.example.com/dockerhub", "--image=postgresql=registry.example.com/library/postgres"} {
					if !slices.Contains(args, want) {
						t.Errorf("the manager's args %q lack %s", args, want)
					}
				}
			}
			// The portal reads three kinds and can change nothing: decisions
			// go with the signed-in person's token.
			portalRole := false
			for _, o := range objs {
				if o.GetKind() != "ClusterRole" || o.GetName() != "crm-portal" {
					continue
				}
				portalRole = true
				rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
				for _, r := range rules {
					verbs, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "verbs")
					resources, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
					for _, v := range verbs {
						if v != "get" && v != "list" && v != "watch" {
							t.Errorf("the portal's ClusterRole grants %s on %v", v, resources)
						}
					}
				}
			}
			if portalRole != (name == "portal") {
				t.Errorf("the portal's ClusterRole rendered: %v, want %v", portalRole, name == "portal")
			}
			checkPortalMail(t, objs, name == "portal")
			// A self-managed certificate is written by the operator itself (a
			// mounted Secret reached a real pod a minute late); cert-manager's
			// is mounted.
			if name == "defaults" || name == "cert-manager certificate" {
				self := name == "defaults"
				if got := slices.Contains(managerArgs(t, objs), "--webhook-write-cert-files"); got != self {
					t.Errorf("--webhook-write-cert-files in the manager's args: %v, want %v", got, self)
				}
				if got := mountsSecret(t, objs, "crm-webhook-tls"); got == self {
					t.Errorf("the webhook's Secret mounted: %v, want %v", got, !self)
				}
			}
			for _, o := range objs {
				rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
				for _, r := range rules {
					for _, field := range []string{"verbs", "resources", "apiGroups"} {
						vals, _, _ := unstructured.NestedStringSlice(r.(map[string]any), field)
						for _, v := range vals {
							if v == "*" {
								t.Errorf("%s %s grants %s *", o.GetKind(), o.GetName(), field)
							}
						}
					}
				}
			}
			dryRunAll(ctx, t, objs, "crm-system")
		})
	}

	t.Run("bad values are refused by the schema", func(t *testing.T) {
		for _, bad := range [][]string{{"--set", "replicaCount=0"}, {"--set", "manager.logLevel=verbose"}, {"--set", "metrics.port=70000"},
			{"--set", "manager.podTolerations[0]=x:Never"}, {"--set", "unknownKey=1"}, {"--set", "webhook.certificate=vault"},
			{"--set", "manager.goMemLimit=lots"}, {"--set", "portal.enabled=true"}, {"--set", "portal.issuerURL=http://dex.example"}, {"--set", "images.overrides.nginx=nginx"}, {"--set", "images.mirrors.docker\\.io=Not A Prefix"}} {
			if _, err := tool(t, "helm", append([]string{"template", "crm", chartDir, "--kube-version", "1.37.2"}, bad...)...); err == nil {
				t.Errorf("helm template accepted %v", bad)
			}
		}
	})

	t.Run("config/default renders with kustomize and applies", func(t *testing.T) {
		out, err := tool(t, "kubectl", "kustomize", filepath.Join(repoRoot, "config", "default"))
		if err != nil {
			t.Fatalf("kubectl kustomize: %v", err)
		}
		restrictedNS(ctx, t, "crm-operator-system")
		dryRunAll(ctx, t, decodeAll(t, out), "crm-operator-system")
	})
}

// checkPortalMail: with the portal, the chart generates its mail password
// and the bcrypt hash of it; the portal gets the password, the operator the
// hash and the portal's namespace (for the mail catchers). Without it, none.
func checkPortalMail(t *testing.T, objs []*unstructured.Unstructured, portal bool) {
	t.Helper()
	var password, hash string
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == "crm-portal-mail" {
			p, _, _ := unstructured.NestedString(o.Object, "data", "password")
			h, _, _ := unstructured.NestedString(o.Object, "data", "htpasswd")
			pb, _ := base64.StdEncoding.DecodeString(p)
			hb, _ := base64.StdEncoding.DecodeString(h)
			password, hash = string(pb), string(hb)
		}
	}
	if (password != "") != portal {
		t.Fatalf("the portal's mail Secret rendered: %v, want %v", password != "", portal)
	}
	envFrom := func(container, name string) string {
		for _, c := range podSpecList(objs, "containers") {
			if c["name"] != container {
				continue
			}
			env, _, _ := unstructured.NestedSlice(c, "env")
			for _, e := range env {
				if e.(map[string]any)["name"] == name {
					secret, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "name")
					key, _, _ := unstructured.NestedString(e.(map[string]any), "valueFrom", "secretKeyRef", "key")
					return secret + "/" + key
				}
			}
		}
		return ""
	}
	hasNS := slices.Contains(managerArgs(t, objs), "--portal-namespace=crm-system")
	if !portal {
		if hasNS || envFrom("manager", "PORTAL_MAIL_HTPASSWD") != "" {
			t.Error("without the portal, the operator is told of one")
		}
		return
	}
	user, bcryptHash, _ := strings.Cut(hash, ":")
	if user != "portal" || len(password) < 32 || bcrypt.CompareHashAndPassword([]byte(bcryptHash), []byte(password)) != nil {
		t.Errorf("the mail Secret's htpasswd %q is not user portal with the bcrypt hash of its %d-character password", hash, len(password))
	}
	if !hasNS {
		t.Errorf("the manager's args %q lack --portal-namespace=crm-system", managerArgs(t, objs))
	}
	if got := envFrom("manager", "PORTAL_MAIL_HTPASSWD"); got != "crm-portal-mail/htpasswd" {
		t.Errorf("the manager's PORTAL_MAIL_HTPASSWD comes from %q", got)
	}
	if got := envFrom("portal", "PORTAL_MAIL_PASSWORD"); got != "crm-portal-mail/password" {
		t.Errorf("the portal's PORTAL_MAIL_PASSWORD comes from %q", got)
	}
}

// managerArgs are the args of the manager container of the rendered Deployment.
func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	for _, c := range podSpecList(objs, "containers") {
		if c["name"] == "manager" {
			args, _, _ := unstructured.NestedStringSlice(c, "args")
			return args
		}
	}
	t.Fatal("no manager container rendered")
	return nil
}
