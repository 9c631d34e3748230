// Package portal tests the product owner's portal against a real API server
// that trusts an OpenID provider: pages from a cache, decisions sent with
// the signed-in person's own token and recorded by the admission policies.
package portal

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/portal"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

var (
	cfg    *rest.Config
	admin  client.Client
	scheme = runtime.NewScheme()
	idp    *issuer
	site   *httptest.Server
	srv    *portal.Server
	// objects is the portals' cache.
	objects cache.Cache
	// The browser test's provider (a login page) and portal (signing in there).
	provider    *signInProvider
	browserSite *httptest.Server
)

// pemOf is a test server's certificate.
func pemOf(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// cacheWait bounds how long the portal's cache may take to follow the API server.
const cacheWait = 20 * time.Second

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	var err error
	if idp, err = newIssuer(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer idp.srv.Close()
	// The API server authenticates the issuer's tokens: the user name is the
	// email claim, the groups the groups claim (the portal reads the same).
	dir, err := os.MkdirTemp("", "crm-portal-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The browser test's portal and the provider it signs in at: the
	// provider must know the portal's callback, the API server the provider.
	browserListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	browserRedirect := "http://" + browserListener.Addr().String() + "/callback"
	if provider, err = newSignInProvider(dir, browserRedirect); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer provider.srv.Close()
	authn := filepath.Join(dir, "authentication.yaml")
	indent := func(pem []byte) string { return strings.ReplaceAll(strings.TrimSpace(string(pem)), "\n", "\n      ") }
	if err := os.WriteFile(authn, []byte(fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [%s]
    certificateAuthority: |
      %s
  claimMappings:
    username: {claim: email, prefix: ""}
    groups: {claim: groups, prefix: ""}
- issuer:
    url: %s
    audiences: [%s]
    certificateAuthority: |
      %s
  claimMappings:
    username: {claim: sub, prefix: ""}
`, idp.srv.URL, audience, indent(idp.caPEM()), provider.srv.URL, portalClient, indent(pemOf(provider.srv)))), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.GetAPIServer().Configure().Set("authentication-config", authn)
	if cfg, err = env.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "starting the control plane (run through `make test`, which builds it): %v\n", err)
		_ = env.Stop()
		return 1
	}
	defer func() { _ = env.Stop() }()
	if admin, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := framework.InstallAdmissionPolicies(ctx, admin, filepath.Join("..", "..", "config", "admission")); err != nil {
		fmt.Fprintln(os.Stderr, "installing the admission policies:", err)
		return 1
	}

	// The portal: a cache of the CRM objects, tokens verified against the
	// issuer, decisions sent with the person's token and nothing else.
	objects, err = cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = objects.Start(ctx) }()
	verifier, err := portal.NewVerifier(ctx, idp.srv.URL, audience, portal.Claims{Username: "email", Groups: "groups"}, idp.srv.Client())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mail := portal.Mailpit{User: "portal", Password: mailPassword, BaseURL: catcherURL}
	srv, err = portal.New(portal.Config{Reader: objects, ClientFor: portal.ClientsFor(cfg, scheme), SignIn: verifier.SignIn, Mail: mail})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	site = httptest.NewServer(srv.Handler())
	defer site.Close()

	signIn, err := portal.NewOIDC(ctx, provider.srv.URL, portalClient, portalClientSecret, browserRedirect,
		portal.Claims{Username: "sub"}, provider.client(), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	browserPortal, err := portal.New(portal.Config{Reader: objects, ClientFor: portal.ClientsFor(cfg, scheme), OIDC: signIn, Mail: mail})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	browserSite = httptest.NewUnstartedServer(browserPortal.Handler())
	browserSite.Listener = browserListener
	browserSite.Start()
	defer browserSite.Close()
	return m.Run()
}

// project creates a project (its namespace and roles as the operator makes
// them) and an increment of sprint 1 awaiting acceptance on test.
func project(ctx context.Context, t *testing.T, name string, owners, integrators []string, budget int32) {
	t.Helper()
	p := &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer:      crmv1alpha1.Customer{Name: strings.ToUpper(name) + " GmbH"},
			Product:       crmv1alpha1.Product{Name: "espocrm", Version: "10.0.3"},
			ProductOwners: crmv1alpha1.Subjects{Users: owners},
			BudgetHours:   ptr.To(budget),
		},
	}
	if len(integrators) > 0 {
		p.Spec.Integrators = &crmv1alpha1.Subjects{Users: integrators}
	}
	framework.NoError(t, admin.Create(ctx, p))
	desired, _ := resources.ProjectObjects(p)
	for _, obj := range desired {
		if err := admin.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%T %s: %v", obj, obj.GetName(), err)
		}
	}
	p.Status.Namespace, p.Status.DeliveredHours, p.Status.AcceptedHours = name, 30, 8
	framework.NoError(t, admin.Status().Update(ctx, p))
	env := &crmv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: name},
		Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: name}, Stage: crmv1alpha1.StageTest},
	}
	framework.NoError(t, admin.Create(ctx, env))
	env.Status.Phase, env.Status.URL, env.Status.Version = crmv1alpha1.EnvironmentPhase("Ready"), "https://test."+name+".crm.example", "10.0.3"
	framework.NoError(t, admin.Status().Update(ctx, env))
	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: name},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: name}, Sprint: 1, Version: "10.0.3",
			Changes: []crmv1alpha1.Change{{ID: "CRM-1", Title: "Lead scoring for " + name, Block: "sales", Hours: 5}, {ID: "CRM-2", Title: "Quote template", Block: "sales", Hours: 3}}},
	}
	framework.NoError(t, admin.Create(ctx, inc))
	inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
	inc.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionVerified, Status: metav1.ConditionTrue, Reason: "Healthy",
		Message: "the application answered its health checks on test", LastTransitionTime: metav1.NewTime(time.Now().Add(-26 * time.Hour))}}
	framework.NoError(t, admin.Status().Update(ctx, inc))
}

// browser is a person's session with the portal.
type browser struct {
	t testing.TB
	c *http.Client
}

// signIn starts a session with an ID token of the issuer, as the sign-in's
// callback does after the code exchange.
func signIn(t testing.TB, email string, groups ...string) *browser {
	t.Helper()
	rec := httptest.NewRecorder()
	framework.NoError(t, srv.StartSession(context.Background(), rec, idp.token(t, email, groups...)))
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(site.URL)
	jar.SetCookies(u, rec.Result().Cookies())
	return &browser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(site.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(site.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// csrf reads the decision form's token from a page.
func csrf(page string) string {
	_, rest, _ := strings.Cut(page, `name="csrf" value="`)
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

func increment(ctx context.Context, t *testing.T, ns string) *crmv1alpha1.Increment {
	t.Helper()
	inc := &crmv1alpha1.Increment{}
	framework.NoError(t, admin.Get(ctx, types.NamespacedName{Namespace: ns, Name: "sprint-1"}, inc))
	return inc
}
