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
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	return cluster.Must(t, name, args...)
}

func run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	return cluster.Run(t, nil, name, args...)
}

// get reads a jsonpath of objects (what: kind/name, or kind and a -l selector).
func get(t *testing.T, ns, what, path string, selector ...string) string {
	t.Helper()
	args := append([]string{"get", what, "-o", "jsonpath=" + path}, selector...)
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, _ := run(t, kubectl, args...)
	return strings.TrimSpace(out)
}

// eventually polls get until it equals want.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := framework.WaitFor(context.Background(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	// Not t.TempDir: a subtest's name has commas, which kubectl -f splits at.
	f, err := os.CreateTemp("", "crm-real-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(manifest); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	must(t, kubectl, "apply", "-f", f.Name())
}

// image is a reference hack/real-node-images.sh pushed.
func image(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cluster.Dir, "real-node", "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k == name {
			return v
		}
	}
	t.Fatalf("no %s image in %s/real-node/images", name, cluster.Dir)
	return ""
}

// s3Server is versitygw serving a directory at the node's address.
type s3Server struct {
	dir, endpoint string
}

const s3Access, s3Secret = "crm-real", "crm-real-secret-key"

func startS3(t *testing.T) *s3Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o755); err != nil { // a directory is a bucket
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", nodeAddress+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(filepath.Join(framework.Root, "bin", "versitygw"), "--port", addr, "--access", s3Access, "--secret", s3Secret, "posix", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	eventually(t, 30*time.Second, "the S3 server listens", func() (bool, error) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil, err
	})
	return &s3Server{dir: dir, endpoint: "http://" + addr}
}

// object is the path of a stored object in the server's directory.
func (s *s3Server) object(key string) string { return filepath.Join(s.dir, "backups", key) }

// project is an ImplementationProject of the custom product on the stand-in
// application, with the S3 server as its target: pg has test and
// production, my (MariaDB) test only: the real node has 2 CPUs, and a
// production database asks for half of one.
type project struct {
	name, engine string
	// main is the environment whose rows the steps write and back up.
	main string
	// stages of the promotion path.
	stages string
}

func (p project) manifest(t *testing.T, s3 *s3Server, secretName, schedule string) string {
	t.Helper()
	sched := ""
	if schedule != "" {
		sched = fmt.Sprintf("    schedule: %q\n", schedule)
	}
	return fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: ImplementationProject
metadata:
  name: %[1]s
spec:
  customer: {name: Kunde %[1]s GmbH, contact: crm@kunde.example}
  product:
    name: custom
    version: "1.0.0"
    image: %[2]s
    databaseEngine: %[3]s
  hosting: {mode: cloud, region: eu-central-1, domain: crm.local.example}
  productOwners: {users: ["jane.po@kunde.example"]}
  stages: [%[7]s]
  restoreDatabaseOnRollback: true
  backup:
%[6]s    retention: {keepLast: 10}
    target:
      s3: {endpoint: %[4]q, bucket: backups, region: us-east-1, secretName: %[5]s}
`, p.name, image(t, "crm-standin"), p.engine, s3.endpoint, secretName, sched, p.stages)
}

func (p project) create(t *testing.T, s3 *s3Server) {
	t.Helper()
	apply(t, p.manifest(t, s3, "backup-s3", ""))
	eventually(t, time.Minute, "namespace "+p.name, func() (bool, error) {
		return get(t, "", "implementationproject/"+p.name, "{.status.namespace}") == p.name, nil
	})
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: backup-s3, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
`, p.name, s3Access, s3Secret))
	p.environment(t, "test", "test", "Delete")
	if p.main == "production" {
		p.environment(t, "production", "production", "Retain")
	}
}

// environment creates an environment whose application asks for little CPU
// (the stand-in needs none).
func (p project) environment(t *testing.T, name, stage, deletionPolicy string) {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Environment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  projectRef: {name: %[1]s}
  stage: %[3]s
  deletionPolicy: %[4]s
  resources: {requests: {cpu: 20m, memory: 32Mi}, limits: {memory: 128Mi}}
`, p.name, name, stage, deletionPolicy))
}

// sql runs statements with the database client inside the environment's
// database pod and returns the rows, tab-separated.
func (p project) sql(t *testing.T, env, statements string) string {
	t.Helper()
	pod := env + "-db-0"
	var out string
	var code int
	if p.engine == "postgresql" {
		out, code = run(t, kubectl, "exec", "-n", p.name, pod, "--", "psql", "-v", "ON_ERROR_STOP=1", "-U", "crm", "-d", "crm", "-tA", "-F", "\t", "-c", statements)
	} else {
		out, code = run(t, kubectl, "exec", "-n", p.name, pod, "--", "sh", "-c", `mariadb -ucrm -p"$MARIADB_PASSWORD" crm -N -B -e "$0"`, statements)
	}
	if code != 0 {
		t.Fatalf("%s on %s/%s: exit %d: %s", statements, p.name, env, code, out)
	}
	return strings.TrimSpace(out)
}

// seed writes n customers (id, e-mail, name) into env's database.
func (p project) seed(t *testing.T, env string, n int) {
	t.Helper()
	if p.engine == "postgresql" {
		p.sql(t, env, fmt.Sprintf(`CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL);
INSERT INTO customers SELECT g, 'person' || g || '@kunde.example', 'Person ' || g FROM generate_series(1, %d) g;`, n))
		return
	}
	p.sql(t, env, fmt.Sprintf(`CREATE TABLE customers (id int PRIMARY KEY, email varchar(200) NOT NULL, name varchar(200) NOT NULL);
INSERT INTO customers SELECT seq, CONCAT('person', seq, '@kunde.example'), CONCAT('Person ', seq) FROM seq_1_to_%d;`, n))
}

// fingerprint is the count and a digest of every customer row, computed by
// the database: equal fingerprints, equal rows.
func (p project) fingerprint(t *testing.T, env string) string {
	t.Helper()
	if p.engine == "postgresql" {
		return p.sql(t, env, `SELECT count(*) || ' ' || md5(string_agg(id || ':' || email || ':' || name, ',' ORDER BY id)) FROM customers`)
	}
	return p.sql(t, env, `SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(id, ':', email, ':', name ORDER BY id SEPARATOR ','))) FROM customers`)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

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
	must(t, "go", "build", "-o", agent, "./cmd/crm-agent")

	pg, my := project{"pg", "postgresql", "production", "test, production"}, project{"my", "mariadb", "test", "test, training"}

	t.Run("1 the chart's operator runs on the real node, its webhook answers through its Service", func(t *testing.T) {
		if got := get(t, "crm-system", "deployment/crm-operator", "{.status.readyReplicas}"); got != "2" {
			t.Fatalf("%s operator replicas ready, want 2", got)
		}
		if got := get(t, "crm-system", "pods", "{.items[*].spec.nodeName}"); got != "crm-real-node crm-real-node" {
			t.Errorf("the operator's pods run on %q, want the real node", got)
		}
		if got := get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}"); !strings.HasPrefix(got, "crm-operator-") {
			t.Errorf("the leader lease is held by %q, want an operator pod", got)
		}
		pg.create(t, s3)
		my.create(t, s3)
		path := filepath.Join(os.TempDir(), "crm-real-restore.yaml")
		_ = os.WriteFile(path, []byte("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: from-nothing, namespace: pg}\n"+
			"spec: {backupRef: {name: no-such-backup}, environmentRef: {name: production}, confirm: production}\n"), 0o600)
		defer os.Remove(path)
		out, code := run(t, kubectl, "apply", "-f", path)
		if code == 0 || !strings.Contains(out, `spec.backupRef.name: Not found: "no-such-backup"`) {
			t.Errorf("a Restore of a missing Backup was not refused by the webhook (exit %d): %s", code, out)
		}
	})

	t.Run("2 databases run as the profiles' non-root users under Pod Security restricted, with real rows", func(t *testing.T) {
		for _, p := range []project{pg, my} {
			must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "environment/"+p.main, "-n", p.name, "--timeout=180s")
			if got := get(t, "", "namespace/"+p.name, `{.metadata.labels.pod-security\.kubernetes\.io/enforce}`); got != "restricted" {
				t.Errorf("namespace %s enforces %q, want restricted", p.name, got)
			}
			for _, env := range []string{"test", p.main} {
				if got := strings.TrimSpace(must(t, kubectl, "exec", "-n", p.name, env+"-db-0", "--", "id", "-u")); got != "999" {
					t.Errorf("%s/%s's database runs as uid %s, want 999", p.name, env, got)
				}
			}
			p.seed(t, p.main, 1000)
			if got := p.fingerprint(t, p.main); !strings.HasPrefix(got, "1000 ") {
				t.Fatalf("%s %s holds %q, want 1000 rows", p.name, p.main, got)
			}
			status := must(t, plugin, "status", p.name)
			if !strings.Contains(status, p.main) || !strings.Contains(status, "Ready") {
				t.Errorf("kubectl crm status %s:\n%s", p.name, status)
			}
		}
	})

	t.Run("3 manual and scheduled backups write real objects; their checksums are the manifests'", func(t *testing.T) {
		for _, p := range []project{pg, my} {
			apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: manual-1, namespace: %s}\nspec: {environmentRef: {name: %s}}\n", p.name, p.main))
		}
		for _, p := range []project{pg, my} {
			must(t, kubectl, "wait", "--for=condition=Ready", "backup/manual-1", "-n", p.name, "--timeout=180s")
			checkBackup(t, s3, agent, p, "manual-1")
		}
		// A schedule every minute on pg: the next minute brings a scheduled Backup of each environment.
		apply(t, pg.manifest(t, s3, "backup-s3", "* * * * *"))
		var scheduled string
		eventually(t, 150*time.Second, "a scheduled backup of pg's production completes", func() (bool, error) {
			out := get(t, pg.name, "backups", `{range .items[?(@.spec.reason=="scheduled")]}{.spec.environmentRef.name} {.metadata.name} {.status.phase}{"\n"}{end}`)
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

	t.Run("4 hibernate and wake keep every row; a Retain environment's deletion keeps its volume", func(t *testing.T) {
		before := pg.fingerprint(t, "production")
		must(t, kubectl, "patch", "environment/production", "-n", pg.name, "--type=merge", "-p", `{"spec":{"hibernate":true}}`)
		eventually(t, 2*time.Minute, "pg production hibernated, its pods gone", func() (bool, error) {
			return get(t, pg.name, "environment/production", "{.status.phase}") == "Hibernated" &&
				get(t, pg.name, "pods", "{.items[*].metadata.name}", "-l", "app.kubernetes.io/instance=production,app.kubernetes.io/component in (database,app)") == "", nil
		})
		must(t, kubectl, "patch", "environment/production", "-n", pg.name, "--type=merge", "-p", `{"spec":{"hibernate":false}}`)
		must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", pg.name, "--timeout=180s")
		if after := pg.fingerprint(t, "production"); after != before {
			t.Errorf("pg production after hibernation: %s, before: %s", after, before)
		}

		my.environment(t, "training", "training", "Retain")
		must(t, kubectl, "wait", "--for=condition=Ready", "environment/training", "-n", my.name, "--timeout=180s")
		my.seed(t, "training", 10)
		volume := get(t, my.name, "pvc/training-db-data", "{.spec.volumeName}")
		path := get(t, "", "pv/"+volume, "{.spec.hostPath.path}")
		must(t, kubectl, "delete", "environment/training", "-n", my.name, "--timeout=120s")
		if got := get(t, "", "pv/"+volume, "{.spec.persistentVolumeReclaimPolicy}"); got != "Retain" {
			t.Fatalf("training's volume %s after deletion: reclaim policy %q, want Retain (kept)", volume, got)
		}
		// MariaDB keeps a table as a directory of files in the data volume.
		if _, err := os.Stat(filepath.Join(path, "crm", "customers.frm")); err != nil {
			t.Errorf("the retained volume lost the data: %v", err)
		}
	})

	t.Run("5 the operator killed during a real backup and a real restore: one backup, the restore completes, no data lost", func(t *testing.T) {
		before := pg.fingerprint(t, "production")
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: under-fire, namespace: pg}\nspec: {environmentRef: {name: production}}\n")
		eventually(t, time.Minute, "the backup's Job is created", func() (bool, error) {
			return get(t, pg.name, "backup/under-fire", "{.status.jobName}") != "", nil
		})
		killLeader(t, "--grace-period=0 --force")
		must(t, kubectl, "wait", "--for=condition=Ready", "backup/under-fire", "-n", pg.name, "--timeout=180s")
		if jobs := get(t, pg.name, "jobs", "{.items[*].metadata.name}"); strings.Count(jobs, "under-fire") != 1 {
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
		eventually(t, 2*time.Minute, "the restore's Job runs", func() (bool, error) {
			return get(t, pg.name, "restore/test-from-production", "{.status.phase}") == "Running", nil
		})
		killLeader(t, "SIGKILL")
		eventually(t, 5*time.Minute, "the restore completes", func() (bool, error) {
			phase := get(t, pg.name, "restore/test-from-production", "{.status.phase}")
			if phase == "Failed" {
				t.Fatalf("the restore failed: %s", get(t, pg.name, "restore/test-from-production", "{.status.message}"))
			}
			return phase == "Completed", nil
		})
		must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", pg.name, "--timeout=180s")
		if got := pg.fingerprint(t, "test"); got != before {
			t.Errorf("test after the restore holds %s, production's backup held %s", got, before)
		}
		if got := pg.fingerprint(t, "production"); got != before {
			t.Errorf("production changed during its backup and a restore elsewhere: %s, was %s", got, before)
		}
	})

	t.Run("6 a promotion runs a real migration; a migration that fails on production leaves its rows as they were", func(t *testing.T) {
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
			must(t, kubectl, "wait", "--for=condition=Verified", fmt.Sprintf("increment/sprint-%d", sprint), "-n", pg.name, "--timeout=240s")
		}
		increment(1, "ALTER TABLE customers ADD COLUMN segment text; UPDATE customers SET segment = 'gold'", false)
		must(t, plugin, "accept", "sprint-1", "-n", pg.name, "--as", "jane.po@kunde.example", "--wait")
		must(t, kubectl, "wait", "--for=condition=Promoted", "increment/sprint-1", "-n", pg.name, "--timeout=240s")
		if got := pg.sql(t, "production", "SELECT count(*) FROM customers WHERE segment = 'gold'"); got != "1000" {
			t.Errorf("production after sprint 1's migration: %s customers in segment gold, want 1000", got)
		}
		before := pg.fingerprint(t, "production")

		increment(2, "UPDATE customers SET name = 'broken'", true)
		must(t, plugin, "accept", "sprint-2", "-n", pg.name, "--as", "jane.po@kunde.example")
		eventually(t, 5*time.Minute, "sprint 2 is rolled back on production", func() (bool, error) {
			return get(t, pg.name, "increment/sprint-2", `{.status.conditions[?(@.type=="RolledBack")].status}`) == "True", nil
		})
		t.Logf("sprint 2 on production: %s", get(t, pg.name, "increment/sprint-2", "{.status.stages[1].message}"))
		if after := pg.fingerprint(t, "production"); after != before {
			t.Errorf("production after the failed migration holds %s, before it %s", after, before)
		}
		must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", pg.name, "--timeout=180s")
	})

	t.Run("7 figures: backup and restore through the Job path against pg_dump/mariadb-dump | zstd and a load on the pod", func(t *testing.T) {
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

	t.Run("8 failures a real cluster produces are named on the objects, quickly", func(t *testing.T) {
		// An application image the node cannot pull.
		must(t, kubectl, "patch", "environment/test", "-n", pg.name, "--type=merge", "-p", `{"spec":{"image":"127.0.0.1:5001/crm-local/no-such-app:1"}}`)
		eventually(t, 2*time.Minute, "pg test names the image it cannot pull", func() (bool, error) {
			msg := get(t, pg.name, "environment/test", `{.status.conditions[?(@.type=="ApplicationReady")].message}`)
			return strings.Contains(msg, "ErrImagePull") || strings.Contains(msg, "ImagePullBackOff"), nil
		})
		// An S3 endpoint nothing answers at.
		unreachable := &s3Server{dir: s3.dir, endpoint: "http://" + nodeAddress + ":1"}
		apply(t, my.manifest(t, unreachable, "backup-s3", ""))
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: to-nowhere, namespace: my}\nspec: {environmentRef: {name: test}}\n")
		start := time.Now()
		eventually(t, 5*time.Minute, "the backup to an unreachable S3 endpoint fails", func() (bool, error) {
			return get(t, my.name, "backup/to-nowhere", "{.status.phase}") == "Failed", nil
		})
		msg := get(t, my.name, "backup/to-nowhere", `{.status.conditions[?(@.type=="Ready")].message}`)
		t.Logf("a backup to an unreachable S3 endpoint failed after %s: %s", time.Since(start).Round(time.Second), msg)
		if !strings.Contains(msg, nodeAddress+":1") {
			t.Errorf("the failed backup's message does not name the endpoint: %s", msg)
		}
		// The credentials Secret deleted.
		must(t, kubectl, "delete", "secret/backup-s3", "-n", my.name)
		apply(t, my.manifest(t, s3, "backup-s3", ""))
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: without-credentials, namespace: my}\nspec: {environmentRef: {name: test}}\n")
		eventually(t, time.Minute, "the backup without its Secret says so", func() (bool, error) {
			return strings.Contains(get(t, my.name, "backup/without-credentials", `{.status.conditions[?(@.type=="Ready")].message}`),
				"Secret backup-s3 does not exist in namespace my"), nil
		})
	})
}

// figures fills p's main environment with about mb MiB of rows, then
// times a backup and a restore through the operator (Backup and Restore
// objects, crm-agent Jobs, the S3 server) and the same dump and load run
// directly on the database pod, and the application's downtime during the
// restore (stopped to Ready again: what the customer sees).
func figures(t *testing.T, p project, mb int) string {
	t.Helper()
	env, pod := p.main, p.main+"-db-0"
	// Rows of 256 random hex characters (about 2:1 under zstd), ~300 bytes stored.
	rows := mb * 1024 * 1024 / 300
	if p.engine == "postgresql" {
		p.sql(t, env, fmt.Sprintf(`DROP TABLE IF EXISTS bulk; CREATE TABLE bulk (id bigint PRIMARY KEY, payload text NOT NULL);
INSERT INTO bulk SELECT g, md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text)||md5(random()::text) FROM generate_series(1, %d) g;`, rows))
	} else {
		p.sql(t, env, fmt.Sprintf(`DROP TABLE IF EXISTS bulk; CREATE TABLE bulk (id bigint PRIMARY KEY, payload varchar(300) NOT NULL);
INSERT INTO bulk SELECT seq, CONCAT(MD5(RAND()),MD5(RAND()),MD5(RAND()),MD5(RAND()),MD5(RAND()),MD5(RAND()),MD5(RAND()),MD5(RAND())) FROM seq_1_to_%d;`, rows))
	}
	if p.engine == "mariadb" {
		p.sql(t, env, "ANALYZE TABLE bulk") // information_schema's sizes are estimates until then
	}
	size := p.sql(t, env, map[string]string{
		"postgresql": "SELECT pg_size_pretty(pg_database_size('crm'))",
		"mariadb":    "SELECT CONCAT(ROUND(SUM(data_length + index_length) / 1048576), ' MB') FROM information_schema.tables WHERE table_schema = 'crm'",
	}[p.engine])
	before := p.sql(t, env, "SELECT count(*) FROM bulk")

	dump, load := `pg_dump -U crm crm | zstd -q -o /tmp/direct.sql.zst`,
		`dropdb -U crm --if-exists direct && createdb -U crm direct && zstd -dc /tmp/direct.sql.zst | psql -q -U crm -d direct >/dev/null`
	if p.engine == "mariadb" {
		dump = `mariadb-dump --single-transaction -uroot -p"$MARIADB_ROOT_PASSWORD" crm | zstd -q -o /tmp/direct.sql.zst`
		load = `mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" -e "DROP DATABASE IF EXISTS direct; CREATE DATABASE direct" && zstd -dc /tmp/direct.sql.zst | mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" direct`
	}
	timed := func(f func()) time.Duration { start := time.Now(); f(); return time.Since(start) }
	directDump := timed(func() { must(t, kubectl, "exec", "-n", p.name, pod, "--", "bash", "-o", "pipefail", "-c", dump) })
	directLoad := timed(func() { must(t, kubectl, "exec", "-n", p.name, pod, "--", "bash", "-o", "pipefail", "-c", load) })
	must(t, kubectl, "exec", "-n", p.name, pod, "--", "rm", "-f", "/tmp/direct.sql.zst")

	name := fmt.Sprintf("figures-%dm", mb)
	jobBackup := timed(func() {
		apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: %s, namespace: %s}\nspec: {environmentRef: {name: %s}}\n", name, p.name, env))
		must(t, kubectl, "wait", "--for=condition=Ready", "backup/"+name, "-n", p.name, "--timeout=30m")
	})
	stored := get(t, p.name, "backup/"+name, "{.status.size}")
	confirm := ""
	if env == "production" {
		confirm = ", confirm: production"
	}
	var down, up time.Time
	restoreStart := time.Now()
	apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: %s, namespace: %s}\nspec: {backupRef: {name: %s}, environmentRef: {name: %s}%s}\n",
		name, p.name, name, env, confirm))
	var restoreDone time.Duration
	eventually(t, 30*time.Minute, "the restore completes and the environment is Ready again", func() (bool, error) {
		phase := get(t, p.name, "restore/"+name, "{.status.phase}")
		if phase == "Failed" {
			t.Fatalf("restore %s/%s failed: %s", p.name, name, get(t, p.name, "restore/"+name, "{.status.message}"))
		}
		if phase == "Completed" && restoreDone == 0 {
			restoreDone = time.Since(restoreStart)
		}
		ready := get(t, p.name, "environment/"+env, `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
		switch {
		case !ready && down.IsZero():
			down = time.Now()
		case ready && !down.IsZero() && restoreDone > 0:
			up = time.Now()
			return true, nil
		}
		return false, nil
	})
	if got := p.sql(t, env, "SELECT count(*) FROM bulk"); got != before {
		t.Errorf("%s after the restore holds %s bulk rows, before %s", p.name, got, before)
	}
	p.sql(t, env, "DROP TABLE bulk")
	return fmt.Sprintf("%-10s database %s, %s rows, stored %s bytes: backup Job %s vs dump on the pod %s (%.2fx); restore Job %s vs load on the pod %s (%.2fx); application down %s",
		p.engine, size, before, stored, jobBackup.Round(100*time.Millisecond), directDump.Round(100*time.Millisecond), jobBackup.Seconds()/directDump.Seconds(),
		restoreDone.Round(100*time.Millisecond), directLoad.Round(100*time.Millisecond), restoreDone.Seconds()/directLoad.Seconds(), up.Sub(down).Round(100*time.Millisecond))
}

// killLeader kills the operator replica holding the leader lease: "SIGKILL"
// kills its process from this machine, anything else is kubectl delete's
// flags for its pod. Another replica must take over.
func killLeader(t *testing.T, how string) {
	t.Helper()
	holder := get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}")
	pod, _, _ := strings.Cut(holder, "_")
	if how == "SIGKILL" {
		uid := get(t, "crm-system", "pod/"+pod, "{.metadata.uid}")
		killed := 0
		for _, line := range framework.ProcessesMentioning("/manager") {
			field, _, _ := strings.Cut(line, ":")
			pid, err := strconv.Atoi(field)
			if err != nil {
				continue
			}
			cgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if strings.Contains(string(cgroup), uid) || strings.Contains(string(cgroup), strings.ReplaceAll(uid, "-", "_")) {
				if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
					killed++
				}
			}
		}
		if killed == 0 {
			t.Fatalf("no manager process of the leader %s found", pod)
		}
		t.Logf("SIGKILLed the leader %s's manager", pod)
	} else {
		must(t, kubectl, append([]string{"delete", "pod", pod, "-n", "crm-system"}, strings.Fields(how)...)...)
	}
	eventually(t, 2*time.Minute, "another replica leads", func() (bool, error) {
		h := get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}")
		return h != "" && h != holder, nil
	})
}

// checkBackup compares a Backup with what the S3 server holds: the objects
// are there, the recorded checksum is the stored manifest's sha256, and
// crm-agent verify reads every object back against the manifest.
func checkBackup(t *testing.T, s3 *s3Server, agent string, p project, name string) {
	t.Helper()
	prefix := p.name + "/" + p.main + "/" + name
	if got := get(t, p.name, "backup/"+name, "{.status.location}"); got != "s3://backups/"+prefix {
		t.Errorf("backup %s/%s location %q, want s3://backups/%s", p.name, name, got, prefix)
	}
	manifest := s3.object(prefix + "/manifest.json")
	if got, want := get(t, p.name, "backup/"+name, "{.status.checksum}"), sha256File(t, manifest); got != want {
		t.Errorf("backup %s/%s checksum %s, the stored manifest's is %s", p.name, name, got, want)
	}
	dump, err := os.Stat(s3.object(prefix + "/database.sql.zst"))
	if err != nil || dump.Size() == 0 {
		t.Errorf("backup %s/%s: no database dump in the S3 server: %v", p.name, name, err)
	}
	cmd := exec.Command(agent, "verify", "--name", name, "--termination-log", "", "--s3-endpoint", s3.endpoint,
		"--s3-bucket", "backups", "--s3-prefix", p.name+"/"+p.main, "--s3-region", "us-east-1")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3Access, "AWS_SECRET_ACCESS_KEY="+s3Secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("crm-agent verify %s/%s: %v\n%s", p.name, name, err, out)
	}
}

// sysctls are the settings kubelet and the bridge plugin change.
func sysctls(t *testing.T) string {
	t.Helper()
	var values []string
	for _, key := range []string{"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "net/ipv4/ip_forward"} {
		v, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, key+"="+strings.TrimSpace(string(v)))
	}
	return strings.Join(values, " ")
}

// down runs make down and checks that the machine is as before: no process
// of the cluster, no node state, no rules, no bridge, no node address.
func down(t *testing.T) {
	cluster.Down(t)
	if left := cluster.Processes(); len(left) > 0 {
		t.Errorf("make down left processes behind:\n%s", strings.Join(left, "\n"))
	}
	for _, path := range []string{"/run/crm-local", "/var/lib/crm-local"} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("make down left %s behind", path)
		}
	}
	if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), "KUBE-") {
		t.Error("make down left KUBE- rules behind")
	}
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), nodeAddress) || strings.Contains(string(out), "crm-cni0") {
		t.Errorf("make down left the node's address or bridge behind:\n%s", out)
	}
}
