//go:build real

package real

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// probePod starts a pod of the stand-in image on the real node that only
// waits (a place to open connections from with bash's /dev/tcp), labelled
// app.kubernetes.io/name=app, and removes it at the test's end.
func probePod(t *testing.T, ns, name, app string) {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: %s, labels: {app.kubernetes.io/name: %s}}
spec:
  nodeSelector: {crm.crmops.io/real-node: "true"}
  tolerations: [{key: crm.crmops.io/real-node, operator: Exists, effect: NoSchedule}]
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: probe
    image: %s
    command: [bash, -c, "sleep 3600"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`, name, ns, app, image(t, "crm-standin")))
	t.Cleanup(func() { cluster.Run(t, nil, kubectl, "delete", "pod/"+name, "-n", ns, "--grace-period=0", "--force") })
	cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "pod/"+name, "-n", ns, "--timeout=120s")
}

// connects reports whether a pod (namespace, kubectl exec target) opens a
// TCP connection to addr within 5 s, with bash's /dev/tcp.
func connects(t *testing.T, ns, target, addr string) bool {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", ns, target, "--", "bash", "-c",
		fmt.Sprintf(`if timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%s'; then echo open; else echo closed; fi`, host, port))
	return strings.TrimSpace(out) == "open"
}

// isolation: with kube-network-policies enforcing the operator's policies,
// a project's database answers its own application only. Addresses are pod
// IPs, so that a refusal is the policy's and not a name that did not resolve.
func isolation(t *testing.T, pg, my project) {
	db := cluster.Get(t, pg.name, "pod/production-db-0", "{.status.podIP}") + ":5432"
	other := cluster.Get(t, my.name, "pod/test-db-0", "{.status.podIP}") + ":3306"
	// A pod outside every project, in a namespace without policies: only
	// pg's own policies stand between it and pg's database.
	probePod(t, "default", "netpol-probe", "netpol-probe")

	for _, c := range []struct {
		what, ns, from, to string
		open               bool
	}{
		{"pg production's application to its database", pg.name, "deploy/production-app", db, true},
		{"my's application (project B) to pg production's database", my.name, "deploy/test-app", db, false},
		{"a pod of another namespace to pg production's database", "default", "pod/netpol-probe", db, false},
		{"pg test's application (another environment) to pg production's database", pg.name, "deploy/test-app", db, false},
		{"my's application to its own database", my.name, "deploy/test-app", other, true},
		{"pg production's application to my's database", pg.name, "deploy/production-app", other, false},
	} {
		if got := connects(t, c.ns, c.from, c.to); got != c.open {
			t.Errorf("%s (%s): connected %v, want %v", c.what, c.to, got, c.open)
		}
	}
	// Names resolve for the applications (DNS is allowed out), and the
	// application reaches its database through its Service.
	framework.Eventually(t, 30*time.Second, "pg production's application reaches production-db by name", func() (bool, error) {
		return connects(t, pg.name, "deploy/production-app", "production-db:5432"), nil
	})
}
