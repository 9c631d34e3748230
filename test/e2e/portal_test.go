//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/crmops/crm-operator/test/framework"
)

// The e2e cluster's portal and provider ports follow its operator's
// (hack/local-up.sh: metrics + 10, probe + 363).
const portalURL = "http://127.0.0.1:18190"

// portalAcceptsTheNextSprint: CI creates sprint-2; the demo's product owner
// signs in at make run's portal with the password generated for her, finds
// it waiting, accepts it, and the page follows it to production.
func portalAcceptsTheNextSprint(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "sprint-2.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: crm.crmops.io/v1alpha1
kind: Increment
metadata: {name: sprint-2, namespace: demo}
spec:
  projectRef: {name: demo}
  sprint: 2
  version: "10.1.0"
  autoPromote: true
  changes:
    - {id: DEMO-3, title: Duplicate check on Lead import, block: Sales, hours: 8}
    - {id: DEMO-4, title: Consent report for the DPO, block: Compliance, hours: 4}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cluster.Must(t, kubectl, "apply", "-f", manifest)
	cluster.Must(t, kubectl, "wait", "--for=jsonpath={.status.phase}=AwaitingAcceptance", "increment/sprint-2", "-n", "demo", "--timeout=180s")
	passwords, err := os.ReadFile(filepath.Join(localDir, "idp", "passwords"))
	if err != nil {
		t.Fatal(err)
	}
	password := ""
	for _, line := range strings.Split(string(passwords), "\n") {
		if user, pw, ok := strings.Cut(line, " "); ok && user == "jane.po@kunde.example" {
			password = pw
		}
	}
	if password == "" {
		t.Fatalf("no password generated for jane.po@kunde.example in %s/idp/passwords", localDir)
	}

	b := framework.NewBrowser(t, "e2e-portal")
	b.Do("signing in as the demo's product owner",
		chromedp.Navigate(portalURL+"/"),
		chromedp.Click(chromedp.CSS(`a[href="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "jane.po@kunde.example"),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`.pending`)))
	if got := b.Text(".pending"); !strings.Contains(got, "demo: Sprint 2, 10.1.0") {
		t.Fatalf("jane's pending list: %q", got)
	}
	b.Shot("home")
	b.Do("opening sprint-2", chromedp.Click(chromedp.CSS(`.pending a`)), chromedp.WaitVisible(chromedp.CSS(`#accept`)))
	b.Shot("increment")
	b.Do("accepting", chromedp.Click(chromedp.CSS(`#accept`)))
	b.WaitText("the decision is recorded", ".notice", func(s string) bool { return s == "Your decision was recorded." })
	b.WaitText("the page follows sprint-2 to production", "#phase", func(s string) bool { return s == "Promoted" })
	b.Shot("promoted")
	if got := jsonpath(t, "increment", "sprint-2", "{.status.acceptedBy}"); got != "jane.po@kunde.example" {
		t.Errorf("sprint-2 accepted by %q, want the product owner who signed in", got)
	}
}
