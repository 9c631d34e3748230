package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/portal"
	"github.com/crmops/crm-operator/test/framework"
)

func TestProductOwnersSeeAndDecideOnTheirProjectsOnly(t *testing.T) {
	ctx := context.Background()
	project(ctx, t, "alpha", []string{"alice@alpha.example"}, []string{"ivan@integrator.example"}, 40)
	project(ctx, t, "beta", []string{"bob@beta.example"}, nil, 100)
	alice := signIn(t, "alice@alpha.example")

	t.Run("the home page lists one's own projects and what waits for one's decision", func(t *testing.T) {
		var page string
		framework.Eventually(t, cacheWait, "alpha's increment reaches the portal's cache", framework.Holds(func() bool {
			_, page = alice.get("/")
			return strings.Contains(page, "/projects/alpha/increments/sprint-1")
		}))
		if !strings.Contains(page, `href="/projects/alpha"`) {
			t.Errorf("alice's home page does not list alpha:\n%s", page)
		}
		if strings.Contains(page, "beta") || strings.Contains(page, "BETA GmbH") {
			t.Errorf("alice's home page shows project beta:\n%s", page)
		}
		// Verified 26 hours ago: the list says how long it has waited.
		if !strings.Contains(page, "waiting for 1 d 2 h") {
			t.Errorf("the pending increment does not say how long it waited:\n%s", page)
		}
		// Budget 40 h, 30 delivered + 8 accepted.
		if !strings.Contains(page, "38 of 40 hours used (30 delivered, 8 accepted, not yet in production)") {
			t.Errorf("the budget line is missing:\n%s", page)
		}
	})

	t.Run("another project's pages answer as if they did not exist", func(t *testing.T) {
		for _, path := range []string{"/projects/beta", "/projects/beta/increments/sprint-1", "/projects/beta/increments/sprint-1/progress", "/projects/nonexistent"} {
			code, page := alice.get(path)
			if code != http.StatusNotFound || !strings.Contains(page, "does not exist or is not yours to see") {
				t.Errorf("GET %s as alice: %d\n%s", path, code, page)
			}
		}
	})

	t.Run("a decision on another project's increment is refused, by the portal and by the API server", func(t *testing.T) {
		_, own := alice.get("/projects/alpha/increments/sprint-1")
		code, _ := alice.post("/projects/beta/increments/sprint-1/decision", url.Values{"csrf": {csrf(own)}, "decision": {"accept"}})
		if code != http.StatusNotFound {
			t.Errorf("alice's decision on beta's increment: %d, want 404", code)
		}
		if inc := increment(ctx, t, "beta"); inc.Spec.Acceptance != nil {
			t.Fatalf("beta's increment was decided by alice: %+v", inc.Spec.Acceptance)
		}
		// The portal's check is not the only one: alice's own token cannot
		// accept beta's increment at the API server either.
		c, err := client.New(portal.UserConfig(cfg, idp.token(t, "alice@alpha.example")), client.Options{Scheme: scheme})
		framework.NoError(t, err)
		inc := &crmv1alpha1.Increment{}
		inc.Namespace, inc.Name = "beta", "sprint-1"
		err = c.Patch(ctx, inc, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"acceptance":{"decision":"Accepted"}}}`)))
		if err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("alice's token patched beta's increment: %v", err)
		}
	})

	t.Run("a rejection needs a comment", func(t *testing.T) {
		_, page := alice.get("/projects/alpha/increments/sprint-1")
		code, body := alice.post("/projects/alpha/increments/sprint-1/decision", url.Values{"csrf": {csrf(page)}, "decision": {"reject"}, "comment": {"  "}})
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "a rejection needs a comment") {
			t.Errorf("a rejection without a comment: %d\n%s", code, body)
		}
		if inc := increment(ctx, t, "alpha"); inc.Spec.Acceptance != nil {
			t.Fatalf("the rejection without a comment was recorded: %+v", inc.Spec.Acceptance)
		}
	})

	t.Run("only accept and reject are decisions", func(t *testing.T) {
		// A missing or forged decision is refused, never taken for Accepted.
		for _, decision := range []string{"", "Accepted", "approve"} {
			_, page := alice.get("/projects/alpha/increments/sprint-1")
			code, _ := alice.post("/projects/alpha/increments/sprint-1/decision", url.Values{"csrf": {csrf(page)}, "decision": {decision}})
			if code != http.StatusBadRequest {
				t.Errorf("decision %q: %d, want 400", decision, code)
			}
		}
		if inc := increment(ctx, t, "alpha"); inc.Spec.Acceptance != nil {
			t.Fatalf("a decision that is neither accept nor reject was recorded: %+v", inc.Spec.Acceptance)
		}
	})

	t.Run("a form without the session's token is refused", func(t *testing.T) {
		code, _ := alice.post("/projects/alpha/increments/sprint-1/decision", url.Values{"csrf": {"forged"}, "decision": {"accept"}})
		if code != http.StatusForbidden {
			t.Errorf("a decision with a forged CSRF token: %d, want 403", code)
		}
	})

	t.Run("an integrator sees the project but the API server refuses their decision", func(t *testing.T) {
		ivan := signIn(t, "ivan@integrator.example")
		_, page := ivan.get("/projects/alpha/increments/sprint-1")
		if strings.Contains(page, `id="decision"`) {
			t.Errorf("the integrator is offered the decision form:\n%s", page)
		}
		code, body := ivan.post("/projects/alpha/increments/sprint-1/decision", url.Values{"csrf": {csrf(page)}, "decision": {"accept"}})
		if code != http.StatusForbidden || !strings.Contains(body, "only a product owner of project alpha may accept or reject increment sprint-1; user ivan@integrator.example is not one") {
			t.Errorf("the integrator's decision: %d\n%s", code, body)
		}
		if inc := increment(ctx, t, "alpha"); inc.Spec.Acceptance != nil {
			t.Fatalf("the integrator's decision was recorded: %+v", inc.Spec.Acceptance)
		}
	})

	t.Run("the acceptance is recorded as the signed-in person, whatever the form says", func(t *testing.T) {
		_, page := alice.get("/projects/alpha/increments/sprint-1")
		code, body := alice.post("/projects/alpha/increments/sprint-1/decision", url.Values{
			"csrf": {csrf(page)}, "decision": {"accept"}, "comment": {"works on test"},
			// Forged: none of these is read.
			"user": {"bob@beta.example"}, "acceptedBy": {"bob@beta.example"}, "crm.crmops.io/accepted-by": {"bob@beta.example"},
		})
		if code != http.StatusSeeOther {
			t.Fatalf("alice's acceptance: %d\n%s", code, body)
		}
		inc := increment(ctx, t, "alpha")
		if inc.Spec.Acceptance == nil || inc.Spec.Acceptance.Decision != crmv1alpha1.DecisionAccepted || inc.Spec.Acceptance.Comment != "works on test" {
			t.Fatalf("alpha's increment after alice's acceptance: %+v", inc.Spec.Acceptance)
		}
		if got := inc.Annotations[crmv1alpha1.AnnotationAcceptedBy]; got != "alice@alpha.example" {
			t.Errorf("the API server recorded the acceptance as %q, want alice@alpha.example", got)
		}
	})

	t.Run("the project page shows compliance, when production got its version, and each sprint's stages", func(t *testing.T) {
		done := metav1.NewTime(time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC))
		old := &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: "earlier", Namespace: "alpha"},
			Spec:       crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: "alpha"}, Sprint: 1, Version: "10.0.2"},
		}
		framework.NoError(t, admin.Create(ctx, old))
		old.Status.Phase = crmv1alpha1.IncrementPromoted
		old.Status.Stages = []crmv1alpha1.StageStatus{{Name: "test", Phase: "Succeeded", FinishedAt: &done}, {Name: "production", Phase: "Succeeded", FinishedAt: &done}}
		framework.NoError(t, admin.Status().Update(ctx, old))
		p := &crmv1alpha1.ImplementationProject{}
		framework.NoError(t, admin.Get(ctx, types.NamespacedName{Name: "alpha"}, p))
		p.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionCompliant, Status: metav1.ConditionFalse, Reason: "Violations",
			Message: "environment production: region us-east-1 is outside gdpr.allowedRegions", LastTransitionTime: metav1.Now()}}
		framework.NoError(t, admin.Status().Update(ctx, p))
		// Both writes reach the portal's cache in their own time.
		wants := []string{"Sprint 1 promoted 2026-11-20 09:30 UTC",
			"<strong class=\"warn\">not compliant</strong>: environment production: region us-east-1 is outside gdpr.allowedRegions",
			"<td>test: Succeeded · production: Succeeded</td>"}
		var page string
		framework.Eventually(t, cacheWait, "the project page shows the earlier promotion and the compliance", framework.Holds(func() bool {
			_, page = alice.get("/projects/alpha")
			for _, want := range wants {
				if !strings.Contains(page, want) {
					return false
				}
			}
			return true
		}))
	})

	t.Run("pages come in the person's language", func(t *testing.T) {
		bob := signIn(t, "bob@beta.example")
		_, page := bob.get("/?lang=uk")
		for _, want := range []string{`<html lang="uk">`, "Очікують вашого рішення", "Ваші проєкти", "BETA GmbH"} {
			if !strings.Contains(page, want) {
				t.Errorf("the Ukrainian home page lacks %q:\n%s", want, page)
			}
		}
		// The choice is remembered.
		if _, page := bob.get("/projects/beta"); !strings.Contains(page, "Середовища") {
			t.Errorf("the next page is not in Ukrainian:\n%s", page)
		}
	})

	t.Run("without a session every page asks to sign in", func(t *testing.T) {
		resp, err := http.Get(site.URL + "/projects/alpha")
		framework.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /projects/alpha without a session: %d", resp.StatusCode)
		}
	})
}

// A person named by an email address must have proved it: an ID token whose
// email_verified is anything but boolean true starts no session.
func TestAnUnverifiedAddressDoesNotSignIn(t *testing.T) {
	for _, verified := range []any{nil, false, "true", 1} {
		err := srv.StartSession(context.Background(), httptest.NewRecorder(), idp.tokenVerified(t, "alice@alpha.example", verified))
		if err == nil || !strings.Contains(err.Error(), "not verified") {
			t.Errorf("email_verified %#v: %v, want refused as not verified", verified, err)
		}
	}
}

// The sign-in binds the code to this client (PKCE, S256) and the ID token to
// this sign-in (nonce): a callback without them starts no session.
func TestTheSignInUsesPKCEAndANonce(t *testing.T) {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(browserSite.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := to.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" {
		t.Errorf("the redirect to the provider carries no PKCE challenge or nonce: %s", to)
	}
	cookies := map[string]string{}
	for _, ck := range resp.Cookies() {
		cookies[ck.Name] = ck.Value
	}
	if cookies["crm-portal-nonce"] != q.Get("nonce") || cookies["crm-portal-pkce"] == "" {
		t.Errorf("the nonce and verifier are not kept for the callback: %v", cookies)
	}
	// The right state, but neither nonce nor verifier: refused before any exchange.
	req, _ := http.NewRequest(http.MethodGet, browserSite.URL+"/callback?code=stolen&state="+url.QueryEscape(q.Get("state")), nil)
	req.AddCookie(&http.Cookie{Name: "crm-portal-state", Value: q.Get("state")})
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a callback without the sign-in's nonce and verifier: %d, want 400", resp.StatusCode)
	}
}
