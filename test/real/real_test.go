//go:build real

// Package real runs the operator on real pods: `REAL_NODE=1 make run` adds
// a real node (containerd, kubelet, kube-proxy, CoreDNS) to the local
// cluster and installs the operator with its Helm chart; the databases,
// crm-agent Jobs, the S3 server and the volumes are real, the CRM
// application is a stand-in (hack/images/crm-standin) because the official
// CRM images cannot be pulled here. Every step checks real data: rows in
// the databases, objects in the S3 server. Run it with `make test-real`
// (root; it leaves the machine as it found it).
package real

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

var (
	cluster = framework.NewCluster("real", 18380, 18381, 19743)
	kubectl = framework.Kubectl()
	plugin  = framework.Plugin()
)

// nodeAddress is the real node's address (hack/real-node-up.sh): the S3
// server listens there so that pods reach it.
const nodeAddress = "10.250.0.1"

func TestRealNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("make test-real needs root: it runs containerd, kubelet and kube-proxy")
	}
	if _, err := os.Stat("/run/crm-local"); err == nil {
		t.Fatal("a real node runs on this machine already (REAL_NODE=1 make run?): stop it with make down first")
	}
	_ = os.RemoveAll(cluster.Dir)
	settings := sysctls(t)
	t.Cleanup(func() {
		if os.Getenv("REAL_KEEP") == "1" {
			t.Log("REAL_KEEP=1: the real node stays up for a look; make down stops it")
			return
		}
		down(t)
		if after := sysctls(t); after != settings {
			t.Errorf("make down left the sysctls at %s, they were %s", after, settings)
		}
	})
	start := time.Now()
	cluster.Up(t, "REAL_NODE=1", "DEMO=0")
	t.Logf("REAL_NODE=1 make run: cluster, real node and operator up in %s", time.Since(start).Round(time.Second))
	s3 := startS3(t)
	agent := filepath.Join(t.TempDir(), "crm-agent")
	cluster.Must(t, "go", "build", "-o", agent, "./cmd/crm-agent")

	pg, my := project{name: "pg", engine: "postgresql", main: "production", stages: "test, production"}, project{name: "my", engine: "mariadb", main: "test", stages: "test, training"}

	t.Run("1 the chart's operator runs on the real node, its webhook answers through its Service", func(t *testing.T) {
		if got := cluster.Get(t, "crm-system", "deployment/crm-operator", "{.status.readyReplicas}"); got != "2" {
			t.Fatalf("%s operator replicas ready, want 2", got)
		}
		if got := cluster.Get(t, "crm-system", "pods", "{.items[*].spec.nodeName}"); got != "crm-real-node crm-real-node" {
			t.Errorf("the operator's pods run on %q, want the real node", got)
		}
		if got := cluster.Get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}"); !strings.HasPrefix(got, "crm-operator-") {
			t.Errorf("the leader lease is held by %q, want an operator pod", got)
		}
		pg.create(t, s3)
		my.create(t, s3)
		path := filepath.Join(os.TempDir(), "crm-real-restore.yaml")
		_ = os.WriteFile(path, []byte("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: from-nothing, namespace: pg}\n"+
			"spec: {backupRef: {name: no-such-backup}, environmentRef: {name: production}, confirm: production}\n"), 0o600)
		defer os.Remove(path)
		out, code := cluster.Run(t, nil, kubectl, "apply", "-f", path)
		if code == 0 || !strings.Contains(out, `spec.backupRef.name: Not found: "no-such-backup"`) {
			t.Errorf("a Restore of a missing Backup was not refused by the webhook (exit %d): %s", code, out)
		}
	})

	t.Run("2 databases run as the profiles' non-root users under Pod Security restricted, with real rows", func(t *testing.T) {
		for _, p := range []project{pg, my} {
			cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "environment/"+p.main, "-n", p.name, "--timeout=180s")
			if got := cluster.Get(t, "", "namespace/"+p.name, `{.metadata.labels.pod-security\.kubernetes\.io/enforce}`); got != "restricted" {
				t.Errorf("namespace %s enforces %q, want restricted", p.name, got)
			}
			for _, env := range []string{"test", p.main} {
				if got := strings.TrimSpace(cluster.Must(t, kubectl, "exec", "-n", p.name, env+"-db-0", "--", "id", "-u")); got != "999" {
					t.Errorf("%s/%s's database runs as uid %s, want 999", p.name, env, got)
				}
			}
			// The operator's default version for a new database, and the
			// stand-in's server at the same major (hack/real-node-images.sh).
			wantVersion, wantSeries, serverQuery := "17.9", "17.", "SELECT current_setting('server_version')"
			if p.engine == "mariadb" {
				wantVersion, wantSeries, serverQuery = "11.8", "11.8.", "SELECT VERSION()"
			}
			if got := cluster.Get(t, p.name, "environment/"+p.main, "{.status.databaseVersion}"); got != wantVersion {
				t.Errorf("%s/%s: status.databaseVersion %q, want the operator's default %s", p.name, p.main, got, wantVersion)
			}
			if got := p.sql(t, p.main, serverQuery); !strings.HasPrefix(got, wantSeries) {
				t.Errorf("%s/%s's server is %q, not the series %s* the operator deploys by default", p.name, p.main, got, wantSeries)
			}
			p.seed(t, p.main, 1000)
			if got := p.fingerprint(t, p.main); !strings.HasPrefix(got, "1000 ") {
				t.Fatalf("%s %s holds %q, want 1000 rows", p.name, p.main, got)
			}
			status := cluster.Must(t, plugin, "status", p.name)
			if !strings.Contains(status, p.main) || !strings.Contains(status, "Ready") {
				t.Errorf("kubectl crm status %s:\n%s", p.name, status)
			}
		}
	})

	t.Run("3 isolation is enforced: a project's database answers its own application only", func(t *testing.T) {
		isolation(t, pg, my)
	})

	t.Run("4 manual and scheduled backups write real objects; their checksums are the manifests'", func(t *testing.T) {
		for _, p := range []project{pg, my} {
			apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: manual-1, namespace: %s}\nspec: {environmentRef: {name: %s}}\n", p.name, p.main))
		}
		for _, p := range []project{pg, my} {
			cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/manual-1", "-n", p.name, "--timeout=180s")
			checkBackup(t, s3, agent, p, "manual-1")
		}
		// A schedule every minute on pg: the next minute brings a scheduled Backup of each environment.
		apply(t, pg.manifest(t, s3, "backup-s3", "* * * * *"))
		var scheduled string
		framework.Eventually(t, 150*time.Second, "a scheduled backup of pg's production completes", func() (bool, error) {
			out := cluster.Get(t, pg.name, "backups", `{range .items[?(@.spec.reason=="scheduled")]}{.spec.environmentRef.name} {.metadata.name} {.status.phase}{"\n"}{end}`)
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == "production" && f[2] == "Completed" {
					scheduled = f[1]
					return true, nil
				}
			}
			return false, nil
		})
		apply(t, pg.manifest(t, s3, "backup-s3", ""))
		checkBackup(t, s3, agent, pg, scheduled)
	})

	t.Run("5 hibernate and wake keep every row; a Retain environment's deletion keeps its volume", func(t *testing.T) {
		before := pg.fingerprint(t, "production")
		cluster.Must(t, kubectl, "patch", "environment/production", "-n", pg.name, "--type=merge", "-p", `{"spec":{"hibernate":true}}`)
		framework.Eventually(t, 2*time.Minute, "pg production hibernated, its pods gone", func() (bool, error) {
			return cluster.Get(t, pg.name, "environment/production", "{.status.phase}") == "Hibernated" &&
				cluster.Get(t, pg.name, "pods", "{.items[*].metadata.name}", "-l", "app.kubernetes.io/instance=production,app.kubernetes.io/component in (database,app)") == "", nil
		})
		cluster.Must(t, kubectl, "patch", "environment/production", "-n", pg.name, "--type=merge", "-p", `{"spec":{"hibernate":false}}`)
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", pg.name, "--timeout=180s")
		if after := pg.fingerprint(t, "production"); after != before {
			t.Errorf("pg production after hibernation: %s, before: %s", after, before)
		}

		my.environment(t, "training", "training", "Retain")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/training", "-n", my.name, "--timeout=180s")
		my.seed(t, "training", 10)
		volume := cluster.Get(t, my.name, "pvc/training-db-data", "{.spec.volumeName}")
		path := cluster.Get(t, "", "pv/"+volume, "{.spec.hostPath.path}")
		cluster.Must(t, kubectl, "delete", "environment/training", "-n", my.name, "--timeout=120s")
		if got := cluster.Get(t, "", "pv/"+volume, "{.spec.persistentVolumeReclaimPolicy}"); got != "Retain" {
			t.Fatalf("training's volume %s after deletion: reclaim policy %q, want Retain (kept)", volume, got)
		}
		// MariaDB keeps a table as a directory of files in the data volume.
		if _, err := os.Stat(filepath.Join(path, "crm", "customers.frm")); err != nil {
			t.Errorf("the retained volume lost the data: %v", err)
		}
	})

	t.Run("6 the operator killed during a real backup and a real restore: one backup, the restore completes, no data lost", func(t *testing.T) {
		before := pg.fingerprint(t, "production")
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: under-fire, namespace: pg}\nspec: {environmentRef: {name: production}}\n")
		framework.Eventually(t, time.Minute, "the backup's Job is created", func() (bool, error) {
			return cluster.Get(t, pg.name, "backup/under-fire", "{.status.jobName}") != "", nil
		})
		killLeader(t, "--grace-period=0 --force")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/under-fire", "-n", pg.name, "--timeout=180s")
		if jobs := cluster.Get(t, pg.name, "jobs", "{.items[*].metadata.name}"); strings.Count(jobs, "under-fire") != 1 {
			t.Errorf("backup under-fire ran in the Jobs of %q, want one", jobs)
		}
		entries, err := os.ReadDir(s3.object("pg/production"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Count(strings.Join(names, " "), "under-fire") != 1 {
			t.Errorf("pg/production in the S3 server holds %v, want one under-fire", names)
		}
		checkBackup(t, s3, agent, pg, "under-fire")

		// The restore replaces test's data with production's; the leader's
		// process is SIGKILLed while the restore's Job runs.
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: test-from-production, namespace: pg}\n"+
			"spec: {backupRef: {name: under-fire}, environmentRef: {name: test}}\n")
		framework.Eventually(t, 2*time.Minute, "the restore's Job runs", func() (bool, error) {
			return cluster.Get(t, pg.name, "restore/test-from-production", "{.status.phase}") == "Running", nil
		})
		killLeader(t, "SIGKILL")
		restoreCompletes(t, pg.name, "test-from-production")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", pg.name, "--timeout=180s")
		if got := pg.fingerprint(t, "test"); got != before {
			t.Errorf("test after the restore holds %s, production's backup held %s", got, before)
		}
		if got := pg.fingerprint(t, "production"); got != before {
			t.Errorf("production changed during its backup and a restore elsewhere: %s, was %s", got, before)
		}
	})

	t.Run("7 a promotion runs a real migration; a migration that fails on production leaves its rows as they were", func(t *testing.T) {
		// The stand-in's image runs the migration with bash and psql, with
		// the custom product's variables.
		increment := func(sprint int, sql string, failOnProduction bool) {
			script := `PGPASSWORD="$DATABASE_PASSWORD" psql -v ON_ERROR_STOP=1 -h "$DATABASE_HOST" -U "$DATABASE_USER" -d "$DATABASE_NAME" -c "$0"`
			if failOnProduction {
				script += `; case "$DATABASE_HOST" in production-db*) echo "the migration fails on production" >&2; exit 3;; esac`
			}
			apply(t, fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Increment
metadata: {name: sprint-%[1]d, namespace: pg}
spec:
  projectRef: {name: pg}
  sprint: %[1]d
  image: %[2]s
  autoPromote: true
  changes: [{id: CRM-%[1]d, title: "Sprint %[1]d", hours: 8}]
  migration:
    command: [bash, -c, %[3]q, %[4]q]
`, sprint, image(t, "crm-standin"), script, sql))
			cluster.Must(t, kubectl, "wait", "--for=condition=Verified", fmt.Sprintf("increment/sprint-%d", sprint), "-n", pg.name, "--timeout=240s")
		}
		increment(1, "ALTER TABLE customers ADD COLUMN segment text; UPDATE customers SET segment = 'gold'", false)
		cluster.Must(t, plugin, "accept", "sprint-1", "-n", pg.name, "--as", "jane.po@kunde.example", "--wait")
		cluster.Must(t, kubectl, "wait", "--for=condition=Promoted", "increment/sprint-1", "-n", pg.name, "--timeout=240s")
		if got := pg.sql(t, "production", "SELECT count(*) FROM customers WHERE segment = 'gold'"); got != "1000" {
			t.Errorf("production after sprint 1's migration: %s customers in segment gold, want 1000", got)
		}
		before := pg.fingerprint(t, "production")

		increment(2, "UPDATE customers SET name = 'broken'", true)
		cluster.Must(t, plugin, "accept", "sprint-2", "-n", pg.name, "--as", "jane.po@kunde.example")
		framework.Eventually(t, 5*time.Minute, "sprint 2 is rolled back on production", func() (bool, error) {
			return cluster.Get(t, pg.name, "increment/sprint-2", `{.status.conditions[?(@.type=="RolledBack")].status}`) == "True", nil
		})
		t.Logf("sprint 2 on production: %s", cluster.Get(t, pg.name, "increment/sprint-2", "{.status.stages[1].message}"))
		if after := pg.fingerprint(t, "production"); after != before {
			t.Errorf("production after the failed migration holds %s, before it %s", after, before)
		}
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", pg.name, "--timeout=180s")
	})

	t.Run("8 figures: backup and restore through the Job path against pg_dump/mariadb-dump | zstd and a load on the pod", func(t *testing.T) {
		mb := 256
		if v, err := strconv.Atoi(os.Getenv("REAL_DATA_MB")); err == nil {
			mb = v
		}
		if mb == 0 {
			t.Skip("REAL_DATA_MB=0")
		}
		var report []string
		for _, p := range []project{pg, my} {
			report = append(report, figures(t, p, mb))
		}
		t.Logf("figures (REAL_DATA_MB=%d; times are wall clock on this machine):\n%s", mb, strings.Join(report, "\n"))
	})

	t.Run("9 failures a real cluster produces are named on the objects, quickly; a restore that fails half-way is not served", func(t *testing.T) {
		// An application image the node cannot pull.
		cluster.Must(t, kubectl, "patch", "environment/test", "-n", pg.name, "--type=merge", "-p", `{"spec":{"image":"127.0.0.1:5001/crm-local/no-such-app:1"}}`)
		framework.Eventually(t, 2*time.Minute, "pg test names the image it cannot pull", func() (bool, error) {
			msg := cluster.Get(t, pg.name, "environment/test", `{.status.conditions[?(@.type=="ApplicationReady")].message}`)
			return strings.Contains(msg, "ErrImagePull") || strings.Contains(msg, "ImagePullBackOff"), nil
		})
		// An S3 endpoint nothing answers at.
		unreachable := &s3Server{dir: s3.dir, endpoint: "http://" + nodeAddress + ":1"}
		apply(t, my.manifest(t, unreachable, "backup-s3", ""))
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: to-nowhere, namespace: my}\nspec: {environmentRef: {name: test}}\n")
		start := time.Now()
		framework.Eventually(t, 5*time.Minute, "the backup to an unreachable S3 endpoint fails", func() (bool, error) {
			return cluster.Get(t, my.name, "backup/to-nowhere", "{.status.phase}") == "Failed", nil
		})
		msg := cluster.Get(t, my.name, "backup/to-nowhere", `{.status.conditions[?(@.type=="Ready")].message}`)
		t.Logf("a backup to an unreachable S3 endpoint failed after %s: %s", time.Since(start).Round(time.Second), msg)
		if !strings.Contains(msg, nodeAddress+":1") {
			t.Errorf("the failed backup's message does not name the endpoint: %s", msg)
		}
		// The credentials Secret deleted.
		cluster.Must(t, kubectl, "delete", "secret/backup-s3", "-n", my.name)
		apply(t, my.manifest(t, s3, "backup-s3", ""))
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: without-credentials, namespace: my}\nspec: {environmentRef: {name: test}}\n")
		framework.Eventually(t, time.Minute, "the backup without its Secret says so", func() (bool, error) {
			return strings.Contains(cluster.Get(t, my.name, "backup/without-credentials", `{.status.conditions[?(@.type=="Ready")].message}`),
				"Secret backup-s3 does not exist in namespace my"), nil
		})
		// Once the Secret is back, the waiting backup runs.
		apply(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: backup-s3, namespace: my}\nstringData: {AWS_ACCESS_KEY_ID: %s, AWS_SECRET_ACCESS_KEY: %s}\n", s3Access, s3Secret))
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/without-credentials", "-n", my.name, "--timeout=120s")

		// A restore that fails half-way: a view its DBA made as root lets the
		// staged load (as root) through but sends the dump to an in-place
		// load as the environment's user, which MariaDB refuses the view's
		// DEFINER after the tables were replaced.
		cluster.Must(t, kubectl, "exec", "-n", my.name, "test-db-0", "--", "sh", "-c",
			`mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" crm -e "CREATE VIEW first_customers AS SELECT id, email FROM customers WHERE id <= 10"`)
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: with-a-root-view, namespace: my}\nspec: {environmentRef: {name: test}}\n")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/with-a-root-view", "-n", my.name, "--timeout=180s")
		// training's retained claims (step 5) are adopted by a training environment.
		my.environment(t, "training", "training", "Delete")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/training", "-n", my.name, "--timeout=180s")
		if got := my.sql(t, "training", "SELECT count(*) FROM customers"); got != "10" {
			t.Errorf("training adopted its retained volume with %s customers, it held 10", got)
		}
		if events := cluster.Get(t, my.name, "events", "{.items[*].reason}", "--field-selector", "involvedObject.kind=Environment,involvedObject.name=training"); !strings.Contains(events, "AdoptedRetainedData") {
			t.Errorf("training's Events do not say it adopted retained data: %s", events)
		}
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: half-way, namespace: my}\nspec: {backupRef: {name: with-a-root-view}, environmentRef: {name: training}}\n")
		framework.Eventually(t, 5*time.Minute, "the restore fails", func() (bool, error) {
			return cluster.Get(t, my.name, "restore/half-way", "{.status.phase}") == "Failed", nil
		})
		t.Logf("the restore that failed half-way: %s", cluster.Get(t, my.name, "restore/half-way", "{.status.message}"))
		if got := cluster.Get(t, my.name, "restore/half-way", "{.status.partialData}"); got != "true" {
			t.Errorf("restore half-way's status.partialData is %q, want true", got)
		}
		framework.Eventually(t, time.Minute, "training says why it stays stopped", func() (bool, error) {
			return cluster.Get(t, my.name, "environment/training", `{.status.conditions[?(@.type=="Ready")].reason}`) == "RestoreFailedHalfWay", nil
		})
		// What the load left is not served: the application stays at no
		// replicas while the operator reconciles training again.
		cluster.Must(t, kubectl, "annotate", "environment/training", "-n", my.name, "crm-real/poke=1")
		framework.Consistently(t, 20*time.Second, "training's application stays at no replicas", func() bool {
			got := strings.Fields(cluster.Get(t, my.name, "deployment/training-app", "{.spec.replicas} {.status.replicas}"))
			return len(got) > 0 && got[0] == "0" && (len(got) == 1 || got[1] == "0")
		})
		// A restore that completes brings it back.
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: after-half-way, namespace: my}\nspec: {backupRef: {name: manual-1}, environmentRef: {name: training}}\n")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/training", "-n", my.name, "--timeout=300s")
		if got := my.sql(t, "training", "SELECT count(*) FROM customers"); got != "1000" {
			t.Errorf("training after the completed restore holds %s customers, manual-1 held 1000", got)
		}
		cluster.Must(t, kubectl, "delete", "environment/training", "-n", my.name, "--timeout=120s")
	})

	t.Run("10 GDPR on real pods: an anonymized bootstrap copy, an erasure everywhere, a restore that re-applies it", func(t *testing.T) {
		gdprOnRealPods(t, s3, []project{pg, my})
	})

	t.Run("11 the portal reads the test environments' caught mail; nobody else does", func(t *testing.T) {
		portalReadsCaughtMail(t, pg.name)
	})

	t.Run("12 every product on a stand-in as strict as its image: Ready, healthy through its Service, restored, upgraded by a promotion", func(t *testing.T) {
		// Room for them: od (step 10) sleeps, when it ran.
		for _, env := range []string{"production", "staging"} {
			cluster.Run(t, nil, kubectl, "patch", "environment/"+env, "-n", "od", "--type=merge", "-p", `{"spec":{"hibernate":true}}`)
		}
		productsOnRealPods(t, s3)
	})
}
