//go:build e2e

// Package e2e drives the product the way a newcomer and a CI pipeline do:
// `make run` from scratch on the simulated local cluster, then the kubectl
// crm plugin and `kubectl wait`, then `make down`. Run it with `make test-e2e`.
// It uses its own state directory and ports, so a `make run` of yours keeps
// running beside it.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// The suite's own cluster: state in bin/e2e, ports beside make run's.
var (
	cluster  = framework.NewCluster("e2e", 18180, 18181, 19543)
	localDir = cluster.Dir
	kubectl  = framework.Kubectl()
	plugin   = framework.Plugin()
)

func jsonpath(t *testing.T, kind, name, path string) string {
	t.Helper()
	return strings.TrimSpace(cluster.Must(t, kubectl, "get", kind, name, "-n", "demo", "-o", "jsonpath="+path))
}

func TestDemoFromMakeRunToProduction(t *testing.T) {
	_ = os.RemoveAll(localDir)
	t.Cleanup(func() {
		cluster.Run(t, nil, filepath.Join(framework.Root, "hack", "local-down.sh"))
		if left := cluster.Processes(); len(left) > 0 {
			t.Errorf("make down left processes behind:\n%s", strings.Join(left, "\n"))
		}
	})

	start := time.Now()
	out := cluster.Must(t, "make", "run")
	t.Logf("make run reached a verified demo in %s", time.Since(start).Round(time.Second))
	for _, want := range []string{"kwok with 3 simulated nodes", "awaits the product owner's acceptance", "kubectl crm accept sprint-1 -n demo --as jane.po@kunde.example --wait",
		"identity provider: https://127.0.0.1:18544", "portal: http://127.0.0.1:18190", "sign in as jane.po@kunde.example"} {
		if !strings.Contains(out, want) {
			t.Errorf("make run's output lacks %q", want)
		}
	}
	// The last table before "deployed and verified" says so too (it once
	// showed test Degraded and sprint-1 Verifying).
	if before, _, ok := strings.Cut(out, "sprint-1 is deployed and verified on test"); ok {
		table := before[strings.LastIndex(before, "status:"):]
		for _, line := range strings.Split(table, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 2 && f[0] == "test" && f[1] == "test" && f[2] != "Ready":
				t.Errorf("make run's last table shows the test environment %s beside \"deployed and verified\":\n%s", f[2], table)
			case len(f) > 3 && f[0] == "sprint-1" && f[3] != "AwaitingAcceptance":
				t.Errorf("make run's last table shows sprint-1 %s beside \"deployed and verified\":\n%s", f[3], table)
			}
		}
	} else {
		t.Error("make run's output lacks \"sprint-1 is deployed and verified on test\"")
	}
	// What CI does: wait on conditions.
	cluster.Must(t, kubectl, "wait", "--for=condition=Verified", "increment/sprint-1", "-n", "demo", "--timeout=60s")
	cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "environment/production", "-n", "demo", "--timeout=60s")

	t.Run("only the product owner may accept", func(t *testing.T) {
		out, code := cluster.Run(t, nil, plugin, "accept", "sprint-1", "-n", "demo", "--as", "ci@integrator.example")
		if code == 0 || !strings.Contains(out, "only a product owner of project demo may accept") {
			t.Fatalf("an integrator accepted the increment (exit %d)", code)
		}
	})

	t.Run("acceptance promotes to production step by step", func(t *testing.T) {
		out := cluster.Must(t, plugin, "accept", "sprint-1", "-n", "demo", "--as", "jane.po@kunde.example", "--wait")
		for _, want := range []string{"production: BackingUp", "production: Migrating", "production: Verifying", "Promoted"} {
			if !strings.Contains(out, want) {
				t.Errorf("the promotion's progress lacks %q", want)
			}
		}
		cluster.Must(t, kubectl, "wait", "--for=condition=Promoted", "increment/sprint-1", "-n", "demo", "--timeout=60s")
		if got := jsonpath(t, "environment", "production", "{.status.version}"); got != "10.1.0" {
			t.Errorf("production runs %q, want 10.1.0", got)
		}
		if got := jsonpath(t, "increment", "sprint-1", "{.status.acceptedBy}"); got != "jane.po@kunde.example" {
			t.Errorf("accepted by %q, want the product owner's identity", got)
		}
		if got := jsonpath(t, "increment", "sprint-1", "{.status.stages[1].backup}"); got == "" {
			t.Error("no pre-promotion backup recorded")
		}
		status := cluster.Must(t, plugin, "status", "demo")
		if !strings.Contains(status, "PRODUCTION 10.1.0") {
			t.Error("kubectl crm status does not show production on 10.1.0")
		}
		// 10.0.3 -> 10.1.0 is an upgrade: EspoCRM's own step (its
		// entrypoint's migrate) ran before the increment's migration, both
		// through the image's entrypoint, once the database answered.
		job := "sprint-1-migrate-production"
		if got := jsonpath(t, "job", job, "{.spec.template.spec.initContainers[*].name}"); got != "prepare wait-for-database upgrade" {
			t.Errorf("production's migration Job runs %q before its migration, want the files' preparation, the wait for the database, EspoCRM's upgrade", got)
		}
		if got := jsonpath(t, "job", job, "{.spec.template.spec.initContainers[2].args}"); got != `["apache2ctl","-v"]` {
			t.Errorf("production's migration Job upgrades with %q, want EspoCRM's entrypoint's migrate", got)
		}
		if got := jsonpath(t, "job", job, "{.spec.template.spec.containers[0].command}{.spec.template.spec.containers[0].args}"); got != `["php","command.php","rebuild"]` {
			t.Errorf("the increment's migration runs %q, want its command as the entrypoint's arguments", got)
		}
	})

	t.Run("the product owner accepts the next sprint in the portal", portalAcceptsTheNextSprint)

	t.Run("test's mail goes to its catcher, production's does not", func(t *testing.T) {
		if got := jsonpath(t, "service", "test-mail", "{.spec.ports[*].port}"); got != "1025 8025" {
			t.Errorf("test's mail catcher Service serves %q, want 1025 8025", got)
		}
		if got := jsonpath(t, "deployment", "test-app", `{.spec.template.spec.containers[0].env[?(@.name=="ESPOCRM_CONFIG_SMTP_SERVER")].value}`); got != "test-mail" {
			t.Errorf("test's EspoCRM sends through %q, want its catcher", got)
		}
		out := cluster.Must(t, plugin, "mail", "test", "-n", "demo")
		if !strings.Contains(out, "https://test.demo.crm.local.example/mail/") || !strings.Contains(out, "mail-password") {
			t.Errorf("kubectl crm mail test says:\n%s", out)
		}
		if _, code := cluster.Run(t, nil, plugin, "mail", "production", "-n", "demo"); code == 0 {
			t.Error("kubectl crm mail production found a catcher")
		}
	})

	t.Run("the webhook refuses references to what does not exist", func(t *testing.T) {
		manifest := filepath.Join(t.TempDir(), "bad.yaml")
		bad := "apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: from-nowhere, namespace: demo}\n" +
			"spec: {backupRef: {name: no-such-backup}, environmentRef: {name: test}}\n"
		if err := os.WriteFile(manifest, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		out, code := cluster.Run(t, nil, kubectl, "apply", "-f", manifest)
		if code == 0 || !strings.Contains(out, `spec.backupRef.name: Not found: "no-such-backup"`) {
			t.Fatalf("a Restore of a missing backup was accepted or refused without naming the field (exit %d)", code)
		}
		// An Environment update reaches the webhook when its host changes.
		out, code = cluster.Run(t, nil, kubectl, "patch", "environment", "test", "-n", "demo", "--type", "merge", "-p", `{"spec":{"ingress":{"host":"crm.someone-else.example"}}}`)
		if code == 0 || !strings.Contains(out, "spec.ingress.host: Forbidden: host crm.someone-else.example is outside hosting.domain") {
			t.Fatalf("a host outside the project's domain was accepted or refused without naming the field (exit %d)", code)
		}
		// ... and when its mail server changes: test may not mail real people.
		out, code = cluster.Run(t, nil, kubectl, "patch", "environment", "test", "-n", "demo", "--type", "merge", "-p", `{"spec":{"mail":{"smtp":{"host":"smtp.kunde.example","from":"crm@kunde.example"}}}}`)
		if code == 0 || !strings.Contains(out, "spec.mail.smtp: Forbidden: a test environment sends to its mail catcher") {
			t.Fatalf("a real SMTP server on test was accepted or refused without naming the field (exit %d): %s", code, out)
		}
	})

	t.Run("every pod runs in the allowed region", func(t *testing.T) {
		nodes := cluster.Must(t, kubectl, "get", "pods", "-n", "demo", "-o", "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}")
		if strings.Contains(nodes, "us-east") {
			t.Errorf("a pod of the EU-only project runs in us-east-1:\n%s", nodes)
		}
		if !strings.Contains(nodes, "eu-central") {
			t.Error("no pod was scheduled")
		}
	})

	t.Run("the plugin's other commands", func(t *testing.T) {
		out := cluster.Must(t, plugin, "backup", "test", "-n", "demo", "--wait")
		if !strings.Contains(out, "completed") {
			t.Errorf("backup --wait: %s", out)
		}
		backup := strings.Fields(out)[1]
		if out, code := cluster.Run(t, nil, plugin, "restore", backup, "--to", "production", "-n", "demo"); code == 0 || !strings.Contains(out, "--confirm") {
			t.Error("a restore into production without --confirm was not refused")
		}
		cluster.Must(t, plugin, "restore", backup, "--to", "test", "-n", "demo", "--wait")
		cluster.Must(t, plugin, "hibernate", "test", "-n", "demo")
		cluster.Must(t, kubectl, "wait", "--for=jsonpath={.status.phase}=Hibernated", "environment/test", "-n", "demo", "--timeout=60s")
		cluster.Must(t, plugin, "wake", "test", "-n", "demo")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", "demo", "--timeout=60s")
		out = cluster.Must(t, plugin, "erase", "--project", "demo", "--email", "max.mustermann@kunde.example", "--reason", "e2e", "--wait")
		if !strings.Contains(out, "completed in 2 environments") {
			t.Errorf("erase --wait: %s", out)
		}
		if strings.Contains(out, "max.mustermann") {
			t.Error("the plugin echoed the erased address")
		}
		if out, code := cluster.Run(t, nil, plugin, "reject", "sprint-1", "-n", "demo"); code == 0 || !strings.Contains(out, "--comment") {
			t.Error("a rejection without a comment was not refused")
		}
	})

	t.Run("no credential or erased address in the operator's log or events", func(t *testing.T) {
		log, err := os.ReadFile(filepath.Join(localDir, "manager.log"))
		if err != nil {
			t.Fatal(err)
		}
		events := cluster.Must(t, kubectl, "get", "events.events.k8s.io", "-n", "demo", "-o", "jsonpath={range .items[*]}{.note}{\"\\n\"}{end}")
		secrets := 0
		for _, env := range []string{"test", "production"} {
			data := cluster.Must(t, kubectl, "get", "secret", env+"-credentials", "-n", "demo", "-o", "jsonpath={range .data.*}{@}{\"\\n\"}{end}")
			for _, b64 := range strings.Fields(data) {
				v, err := base64.StdEncoding.DecodeString(b64)
				if err != nil || len(v) < 16 {
					continue
				}
				secrets++
				if bytes.Contains(log, v) || strings.Contains(events, string(v)) {
					t.Errorf("a generated credential of %s appears in the log or events", env)
				}
			}
		}
		if secrets == 0 {
			t.Fatal("no generated credential found: the scan proves nothing")
		}
		if bytes.Contains(bytes.ToLower(log), []byte("max.mustermann")) || strings.Contains(strings.ToLower(events), "max.mustermann") {
			t.Error("the erased address appears in the log or events")
		}
		fmt.Printf("scanned %d KiB of operator log and %d events for %d credentials\n", len(log)/1024, strings.Count(events, "\n"), secrets)
	})

	t.Run("production and its backups are the administrators'", func(t *testing.T) {
		backup := jsonpath(t, "increment", "sprint-1", "{.status.stages[1].backup}")
		for what, args := range map[string][]string{
			"production":          {"delete", "environment", "production"},
			"production's backup": {"delete", "backup", backup},
		} {
			out, code := cluster.Run(t, nil, kubectl, append(args, "-n", "demo", "--as", "ci@integrator.example", "--dry-run=server")...)
			if code == 0 || !strings.Contains(out, "administrator of project demo (spec.administrators)") {
				t.Errorf("an integrator deleted %s (exit %d): %s", what, code, out)
			}
			cluster.Must(t, kubectl, append(args, "-n", "demo", "--as", "ops@provider.example", "--dry-run=server")...)
		}
	})

	t.Run("a project does not take over a namespace someone else made", func(t *testing.T) {
		cluster.Must(t, kubectl, "create", "namespace", "payroll")
		project := "apiVersion: crm.crmops.io/v1alpha1\nkind: ImplementationProject\nmetadata: {name: payroll}\n" +
			"spec: {customer: {name: Payroll}, product: {name: espocrm, version: \"10.0.3\"}, hosting: {region: eu-central-1}, productOwners: {users: [po@payroll.example]}}\n"
		manifest := filepath.Join(t.TempDir(), "payroll.yaml")
		if err := os.WriteFile(manifest, []byte(project), 0o600); err != nil {
			t.Fatal(err)
		}
		cluster.Must(t, kubectl, "apply", "-f", manifest)
		if err := framework.WaitFor(context.Background(), time.Minute, "project payroll Ready with reason NamespaceTaken", func() (bool, error) {
			out, _ := cluster.Run(t, nil, kubectl, "get", "implementationproject", "payroll", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
			return strings.TrimSpace(out) == "NamespaceTaken", nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(cluster.Must(t, kubectl, "get", "namespace", "payroll", "-o", "jsonpath={.metadata.ownerReferences}")); got != "" {
			t.Errorf("the project took namespace payroll over: %s", got)
		}
		cluster.Must(t, kubectl, "delete", "implementationproject", "payroll", "--timeout=60s")
		cluster.Must(t, kubectl, "delete", "namespace", "payroll", "--wait=false")
	})

	t.Run("make run again is idempotent", func(t *testing.T) {
		out := cluster.Must(t, "make", "run")
		if !strings.Contains(out, "cluster: already running") || !strings.Contains(out, "operator: already running") {
			t.Error("a second make run restarted what runs")
		}
	})

	// Last: it deletes the demo. kube-controller-manager's garbage collector
	// and namespace controller run here (envtest has neither).
	t.Run("production's retained data outlives its project", func(t *testing.T) {
		claim := "production-db-data"
		volume := jsonpath(t, "pvc", claim, "{.spec.volumeName}")
		if volume == "" {
			t.Fatal("production's data claim is not bound")
		}
		cluster.Must(t, kubectl, "delete", "environment", "production", "test", "-n", "demo", "--timeout=120s")
		// The project no longer waits (DeletionBlocked): production is gone, its data retained.
		cluster.Must(t, kubectl, "delete", "implementationproject", "demo", "--timeout=120s")
		cluster.Must(t, kubectl, "wait", "--for=delete", "role/crm-product-owner", "-n", "demo", "--timeout=60s")
		// The garbage collector took the project's children, not the namespace with the data.
		if got := strings.TrimSpace(cluster.Must(t, kubectl, "get", "namespace", "demo", "-o", `jsonpath={.metadata.labels.crm\.crmops\.io/retained-data}`)); got != "true" {
			t.Errorf("namespace demo is not marked as holding retained data: %q", got)
		}
		if got := jsonpath(t, "pvc", claim, `{.metadata.labels.crm\.crmops\.io/retained-from}`); got != "production" {
			t.Errorf("claim %s: retained-from %q", claim, got)
		}
		pv := strings.TrimSpace(cluster.Must(t, kubectl, "get", "pv", volume, "-o",
			`jsonpath={.spec.persistentVolumeReclaimPolicy} {.metadata.labels.crm\.crmops\.io/retained-project}`))
		if pv != "Retain demo" {
			t.Errorf("volume %s: %q, want reclaim policy Retain and project demo", volume, pv)
		}
		if out := cluster.Must(t, kubectl, "get", "secret", "production-credentials", "-n", "demo", "-o", "name"); !strings.Contains(out, "production-credentials") {
			t.Error("production's credentials are gone")
		}
		// The stored backups stay with the kept namespace, each with the
		// date the project's maximum age deletes it.
		if got := strings.Fields(strings.TrimSpace(cluster.Must(t, kubectl, "get", "backups", "-n", "demo", "-o", `jsonpath={range .items[?(@.status.location)]}{.status.expiresAt}{" "}{end}`))); len(got) == 0 {
			t.Error("the stored backups went with the project, or recorded no expiry")
		}
	})
}
