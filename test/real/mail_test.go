//go:build real

package real

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/crmops/crm-operator/test/framework"
)

// portalReadsCaughtMail: the operator configured for the portal (as the
// chart's portal.enabled does: --portal-namespace and the bcrypt line from
// a Secret) gives the test environments' real Mailpit pods the line (the
// kubelet turns the escaped "$$" back into the hash) and a NetworkPolicy
// rule: a pod labelled as the portal in that namespace reads the caught
// mail with the password; without it the catcher answers 401; another pod
// of the same namespace does not get through.
func portalReadsCaughtMail(t *testing.T, envNamespace string) {
	// The GDPR step leaves the environments hibernated (their catchers too).
	cluster.Must(t, kubectl, "patch", "environment/test", "-n", envNamespace, "--type=merge", "-p", `{"spec":{"hibernate":false}}`)
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	password := hex.EncodeToString(raw)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: crm-portal-mail, namespace: crm-system}\nstringData: {htpasswd: 'portal:%s'}\n", hash))
	cluster.Must(t, kubectl, "patch", "deployment/crm-operator", "-n", "crm-system", "--type=json", "-p", `[
{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--portal-namespace=crm-system"},
{"op":"add","path":"/spec/template/spec/containers/0/env/-","value":{"name":"PORTAL_MAIL_HTPASSWD","valueFrom":{"secretKeyRef":{"name":"crm-portal-mail","key":"htpasswd"}}}}]`)
	cluster.Must(t, kubectl, "rollout", "status", "deployment/crm-operator", "-n", "crm-system", "--timeout=180s")
	framework.Eventually(t, 2*time.Minute, "the test environment's catcher admits the portal's line", func() (bool, error) {
		return strings.Contains(cluster.Get(t, envNamespace, "deployment/test-mail", `{.spec.template.spec.containers[0].env[?(@.name=="MP_UI_AUTH")].value}`), "portal:"), nil
	})
	cluster.Must(t, kubectl, "rollout", "status", "deployment/test-mail", "-n", envNamespace, "--timeout=180s")
	framework.Eventually(t, 2*time.Minute, "the test environment's catcher runs", func() (bool, error) {
		return cluster.Get(t, envNamespace, "deployment/test-mail", "{.status.readyReplicas}") == "1", nil
	})

	probePod(t, "crm-system", "crm-portal-probe", "crm-portal")
	probePod(t, "crm-system", "not-the-portal-probe", "not-the-portal")
	// The status line of GET <catcher>/mail/api/v1/messages, over bash's /dev/tcp.
	ask := func(probe, auth string) string {
		header := ""
		if auth != "" {
			header = `Authorization: Basic ` + base64.StdEncoding.EncodeToString([]byte(auth)) + `\r\n`
		}
		out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", "crm-system", "pod/"+probe, "--", "timeout", "5", "bash", "-c",
			fmt.Sprintf(`exec 3<>/dev/tcp/test-mail.%s.svc/8025 && printf 'GET /mail/api/v1/messages HTTP/1.0\r\nHost: test-mail\r\n%s\r\n' >&3 && head -1 <&3`, envNamespace, header))
		return strings.TrimSpace(out)
	}
	framework.Eventually(t, time.Minute, "the portal's pod reads the caught mail with its password", func() (bool, error) {
		return strings.Contains(ask("crm-portal-probe", "portal:"+password), " 200 "), nil
	})
	if got := ask("crm-portal-probe", ""); !strings.Contains(got, " 401 ") {
		t.Errorf("the catcher answered %q without a password, want 401", got)
	}
	if got := ask("crm-portal-probe", "portal:not-the-password"); !strings.Contains(got, " 401 ") {
		t.Errorf("the catcher answered %q to a wrong password, want 401", got)
	}
	if got := ask("not-the-portal-probe", "portal:"+password); strings.Contains(got, "HTTP/") {
		t.Errorf("a pod not labelled as the portal reached the catcher: %q", got)
	}
}
