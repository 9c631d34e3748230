package portal

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/test/framework"
)

// The portal reads the catchers as the operator configures them: admin with
// the environment's password, and the portal's line as a bcrypt hash (the
// chart's htpasswd). mailPassword is the portal's; each catcher's admin
// password is its own.
const mailPassword = "portal-mail-password-for-the-tests"

var (
	catchersMu sync.Mutex
	// catchers maps a test environment's namespace to its catcher's web root.
	catchers = map[string]string{}
)

func catcherURL(env *crmv1alpha1.Environment) string {
	catchersMu.Lock()
	defer catchersMu.Unlock()
	if u, ok := catchers[env.Namespace]; ok {
		return u
	}
	return "http://127.0.0.1:1/mail/" // no catcher: nothing answers
}

// catcher starts a real Mailpit (bin/mailpit, hack/build-tools.sh mailpit)
// for namespace's test environment, configured as the operator runs it
// (internal/resources/mail.go), and returns its SMTP address and web root.
func catcher(t *testing.T, namespace string) (smtpAddr, web string) {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin", "mailpit"))
	framework.NoError(t, err)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/mailpit is missing (make test builds it): %v", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(mailPassword), bcrypt.MinCost)
	framework.NoError(t, err)
	smtpPort, webPort := freePort(t), freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("MP_SMTP_BIND_ADDR=127.0.0.1:%d", smtpPort), fmt.Sprintf("MP_UI_BIND_ADDR=127.0.0.1:%d", webPort),
		"MP_WEBROOT=/mail/", "MP_MAX_MESSAGES=5000", "MP_SMTP_AUTH_ACCEPT_ANY=true", "MP_SMTP_AUTH_ALLOW_INSECURE=true",
		"MP_DATABASE="+filepath.Join(t.TempDir(), "mail.db"),
		"MP_UI_AUTH=admin:admin-password-of-"+namespace+" portal:"+string(hash))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	framework.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	web = fmt.Sprintf("http://127.0.0.1:%d/mail/", webPort)
	framework.Eventually(t, cacheWait, "the mail catcher answers", framework.Holds(func() bool {
		resp, err := http.Get(web + "readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}))
	catchersMu.Lock()
	catchers[namespace] = web
	catchersMu.Unlock()
	t.Cleanup(func() { catchersMu.Lock(); delete(catchers, namespace); catchersMu.Unlock() })
	return fmt.Sprintf("127.0.0.1:%d", smtpPort), web
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	framework.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// send delivers a message as the CRM application does, to the catcher.
func send(t *testing.T, smtpAddr, from, to, subject, body string) {
	t.Helper()
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", from, to, subject, body)
	framework.NoError(t, smtp.SendMail(smtpAddr, nil, from, []string{to}, []byte(msg)))
}

// catchesMail sets the test environment's mail URL as the operator does
// for an environment whose mail goes to its catcher.
func catchesMail(ctx context.Context, t *testing.T, namespace string) {
	t.Helper()
	env := &crmv1alpha1.Environment{}
	framework.NoError(t, admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "test"}, env))
	env.Status.MailURL = "https://test." + namespace + ".crm.example/mail/"
	framework.NoError(t, admin.Status().Update(ctx, env))
	framework.Eventually(t, cacheWait, "the portal's cache holds "+namespace+"'s mail URL", framework.Holds(func() bool {
		cached := &crmv1alpha1.Environment{}
		return objects.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "test"}, cached) == nil && cached.Status.MailURL != ""
	}))
}

// The product owner reads the mail the test environment sent on the
// increment page, each message as text; another project's owner reaches
// none of it; the catcher admits nobody without a password; a catcher that
// does not answer is said, and the page still serves.
func TestTheProductOwnerReadsTheTestEnvironmentsMail(t *testing.T) {
	ctx := context.Background()
	project(ctx, t, "mailco", []string{"mia@mailco.example"}, nil, 60)
	project(ctx, t, "othermail", []string{"otto@other.example"}, nil, 60)
	smtpAddr, web := catcher(t, "mailco")
	catchesMail(ctx, t, "mailco")
	send(t, smtpAddr, "crm@test.mailco.invalid", "person-3f2a9c1b7d0e@example.invalid", "Your quote Q-1001 is ready",
		"Dear customer,\nyour quote Q-1001 is attached.\nKind regards")

	mia := signIn(t, "mia@mailco.example")
	var page string
	framework.Eventually(t, cacheWait, "the increment page lists the caught message", framework.Holds(func() bool {
		_, page = mia.get("/projects/mailco/increments/sprint-1")
		return strings.Contains(page, "Your quote Q-1001 is ready")
	}))
	if !strings.Contains(page, "person-3f2a9c1b7d0e@example.invalid") || !strings.Contains(page, "Mail the test environment sent") {
		t.Errorf("the mail table lacks the recipient or its heading:\n%s", page)
	}
	_, rest, _ := strings.Cut(page, `href="/projects/mailco/increments/sprint-1/mail/`)
	id, _, _ := strings.Cut(rest, `"`)
	if id == "" {
		t.Fatalf("no link to the message:\n%s", page)
	}
	status, message := mia.get("/projects/mailco/increments/sprint-1/mail/" + id)
	if status != http.StatusOK || !strings.Contains(message, "your quote Q-1001 is attached.") || !strings.Contains(message, "crm@test.mailco.invalid") {
		t.Errorf("the message page (%d):\n%s", status, message)
	}

	otto := signIn(t, "otto@other.example")
	status, other := otto.get("/projects/mailco/increments/sprint-1/mail/" + id)
	if status != http.StatusNotFound || strings.Contains(other, "Q-1001") {
		t.Errorf("another project's owner reading mailco's message: %d\n%s", status, other)
	}
	// othermail's environment catches no mail: no mail section at all.
	if _, page := otto.get("/projects/othermail/increments/sprint-1"); strings.Contains(page, "mail-heading") {
		t.Errorf("an environment without a catcher shows a mail section:\n%s", page)
	}

	for _, auth := range []struct{ user, password string }{{"", ""}, {"portal", "a guessed password"}} {
		req, _ := http.NewRequest(http.MethodGet, web+"api/v1/messages", nil)
		if auth.user != "" {
			req.SetBasicAuth(auth.user, auth.password)
		}
		resp, err := http.DefaultClient.Do(req)
		framework.NoError(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the catcher answered %s to user %q with password %q, want 401", resp.Status, auth.user, auth.password)
		}
	}

	catchersMu.Lock()
	delete(catchers, "mailco")
	catchersMu.Unlock()
	status, page = mia.get("/projects/mailco/increments/sprint-1")
	if status != http.StatusOK || !strings.Contains(page, "mail catcher did not answer") || !strings.Contains(page, "Lead scoring for mailco") {
		t.Errorf("the increment page with its catcher down (%d):\n%s", status, page)
	}
}
