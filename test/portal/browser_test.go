package portal

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/test/framework"
)

// TestInTheBrowser drives the portal with a real headless Chromium (the
// Debian package): sign in at the provider's login page, the pending list,
// accept and follow the promotion, reject with and without a comment,
// another project refused, the budget, a page in Ukrainian. Screenshots go
// to bin/portal/.
func TestInTheBrowser(t *testing.T) {
	ctx := context.Background()
	project(ctx, t, "gamma", []string{"alice@alpha.example"}, nil, 40)
	project(ctx, t, "delta", []string{"bob@beta.example"}, nil, 100)
	second := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-2", Namespace: "gamma"},
		Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: "gamma"}, Sprint: 2, Version: "10.0.4",
			Changes: []crmv1alpha1.Change{{ID: "CRM-9", Title: "Export to the ERP", Block: "integration", Hours: 6}}},
	}
	framework.NoError(t, admin.Create(ctx, second))
	second.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
	framework.NoError(t, admin.Status().Update(ctx, second))

	smtpAddr, _ := catcher(t, "gamma")
	catchesMail(ctx, t, "gamma")
	send(t, smtpAddr, "crm@test.gamma.invalid", "person-0c41d2e9a6b3@example.invalid", "Welcome to the customer portal",
		"Hello Person 5d1c0a7e,\nyour account at the customer portal is ready.\nThe Gamma team")

	// The pages read the portal's cache: wait until it holds what was just written.
	framework.Eventually(t, cacheWait, "the portal's cache holds gamma's project and increments", framework.Holds(func() bool {
		p, inc := &crmv1alpha1.ImplementationProject{}, &crmv1alpha1.Increment{}
		return objects.Get(ctx, client.ObjectKey{Name: "gamma"}, p) == nil && p.Status.Namespace == "gamma" && p.Status.DeliveredHours == 30 &&
			objects.Get(ctx, client.ObjectKey{Namespace: "gamma", Name: "sprint-1"}, inc) == nil && inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance &&
			objects.Get(ctx, client.ObjectKey{Namespace: "gamma", Name: "sprint-2"}, inc) == nil && inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance
	}))
	b := framework.NewBrowser(t, "portal")
	do, text, shot := b.Do, b.Text, b.Shot
	recorded := func(what string) {
		t.Helper()
		b.WaitText(what+": the page says the decision was recorded", ".notice", func(s string) bool { return s == "Your decision was recorded." })
	}

	do("signing in at the provider",
		chromedp.Navigate(browserSite.URL+"/"),
		chromedp.Click(chromedp.CSS(`a[href="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice@alpha.example"),
		chromedp.SendKeys(chromedp.CSS(`#password`), people["alice@alpha.example"]),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`.pending`)),
	)
	pending := text(".pending")
	if !strings.Contains(pending, "gamma: Sprint 1") || !strings.Contains(pending, "gamma: Sprint 2") || strings.Contains(pending, "delta") {
		t.Errorf("alice's pending list: %q", pending)
	}
	if who := text(".who span"); who != "Signed in as alice@alpha.example" {
		t.Errorf("the header says %q", who)
	}
	shot("home")

	do("the project page", chromedp.Navigate(browserSite.URL+"/projects/gamma"), chromedp.WaitVisible(chromedp.CSS(`#budget`)))
	if got := text("#budget"); got != "38 of 40 hours used (30 delivered, 8 accepted, not yet in production)" {
		t.Errorf("gamma's budget: %q", got)
	}
	shot("project")

	do("another project", chromedp.Navigate(browserSite.URL+"/projects/delta"), chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := text(".notice"); got != "This page does not exist or is not yours to see." {
		t.Errorf("delta as alice: %q", got)
	}

	do("a rejection without a comment",
		chromedp.Navigate(browserSite.URL+"/projects/gamma/increments/sprint-2"),
		chromedp.WaitVisible(chromedp.CSS(`#reject`)),
		chromedp.Click(chromedp.CSS(`#reject`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)))
	if got := text(".notice"); got != "Say what is wrong: a rejection needs a comment." {
		t.Errorf("a rejection without a comment says %q", got)
	}
	do("a rejection with a comment",
		chromedp.SendKeys(chromedp.CSS(`#comment`), "the export misses the VAT id"),
		chromedp.Click(chromedp.CSS(`#reject`)))
	recorded("the rejection")
	inc := &crmv1alpha1.Increment{}
	framework.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: "gamma", Name: "sprint-2"}, inc))
	if a := inc.Spec.Acceptance; a == nil || a.Decision != crmv1alpha1.DecisionRejected || a.Comment != "the export misses the VAT id" ||
		inc.Annotations[crmv1alpha1.AnnotationAcceptedBy] != "alice@alpha.example" {
		t.Errorf("sprint-2 after alice's rejection: %+v, recorded as %q", a, inc.Annotations[crmv1alpha1.AnnotationAcceptedBy])
	}

	do("the increment page on a phone",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(browserSite.URL+"/projects/gamma/increments/sprint-1"),
		chromedp.WaitVisible(chromedp.CSS(`#accept`)))
	shot("increment-phone")
	do("the increment page", chromedp.EmulateViewport(1280, 900), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#accept`)))
	if got := text("#mail tbody"); !strings.Contains(got, "person-0c41d2e9a6b3@example.invalid") || !strings.Contains(got, "Welcome to the customer portal") {
		t.Errorf("the caught mail on the increment page: %q", got)
	}
	shot("increment")
	do("a caught message", chromedp.Click(chromedp.CSS(`#mail tbody a`)), chromedp.WaitVisible(chromedp.CSS(`#mail-text`)))
	if got := text("#mail-text"); !strings.Contains(got, "your account at the customer portal is ready.") {
		t.Errorf("the caught message's text: %q", got)
	}
	shot("mail")
	do("back to the increment", chromedp.Navigate(browserSite.URL+"/projects/gamma/increments/sprint-1"), chromedp.WaitVisible(chromedp.CSS(`#accept`)))
	do("accepting", chromedp.Click(chromedp.CSS(`#accept`)))
	recorded("the acceptance")
	if strings.Contains(b.HTML(), `id="decision"`) {
		t.Error("the decision form is offered again right after the acceptance")
	}
	framework.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: "gamma", Name: "sprint-1"}, inc))
	if got := inc.Annotations[crmv1alpha1.AnnotationAcceptedBy]; got != "alice@alpha.example" {
		t.Fatalf("the acceptance is recorded as %q", got)
	}

	// The page follows the promotion: the operator's steps (played here on
	// the status) appear without a reload, until Promoted.
	for _, step := range []struct {
		phase crmv1alpha1.IncrementPhase
		stage crmv1alpha1.StagePhase
	}{{crmv1alpha1.IncrementPromoting, "BackingUp"}, {crmv1alpha1.IncrementPromoting, "Migrating"}, {crmv1alpha1.IncrementPromoted, "Succeeded"}} {
		framework.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: "gamma", Name: "sprint-1"}, inc))
		inc.Status.Phase = step.phase
		inc.Status.AcceptedBy = "alice@alpha.example"
		inc.Status.Stages = []crmv1alpha1.StageStatus{{Name: "test", Phase: "Succeeded", Version: "10.0.3"}, {Name: "production", Phase: step.stage, Version: "10.0.3"}}
		framework.NoError(t, admin.Status().Update(ctx, inc))
		b.WaitText("the page shows production "+string(step.stage), "#progress", func(s string) bool { return strings.Contains(s, string(step.stage)) })
	}
	b.WaitText("the heading says Promoted", "#phase", func(s string) bool { return s == "Promoted" })
	shot("promoted")

	do("the home page in Ukrainian", chromedp.Navigate(browserSite.URL+"/?lang=uk"), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if got := text("h1"); got != "Очікують вашого рішення" {
		t.Errorf("the Ukrainian home page's heading: %q", got)
	}
	shot("home-uk")
}
