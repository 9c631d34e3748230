//go:build real

package real

import (
	"fmt"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// figures fills p's main environment with about mb MiB of rows, then
// times a backup and a restore through the operator (Backup and Restore
// objects, crm-agent Jobs, the S3 server) and the same dump and load run
// directly on the database pod, and the application's downtime during the
// restore (stopped to Ready again: what the customer sees).
func figures(t *testing.T, p project, mb int) string {
	t.Helper()
	env, pod := p.main, p.main+"-db-0"
	// Rows of 256 random hex characters, about 300 bytes stored each (the
	// dumps compress to 55-85 % of the database's size).
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
	directDump := timed(func() {
		cluster.Must(t, kubectl, "exec", "-n", p.name, pod, "--", "bash", "-o", "pipefail", "-c", dump)
	})
	directLoad := timed(func() {
		cluster.Must(t, kubectl, "exec", "-n", p.name, pod, "--", "bash", "-o", "pipefail", "-c", load)
	})
	cluster.Must(t, kubectl, "exec", "-n", p.name, pod, "--", "rm", "-f", "/tmp/direct.sql.zst")

	name := fmt.Sprintf("figures-%dm", mb)
	jobBackup := timed(func() {
		apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: %s, namespace: %s}\nspec: {environmentRef: {name: %s}}\n", name, p.name, env))
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/"+name, "-n", p.name, "--timeout=30m")
	})
	stored := cluster.Get(t, p.name, "backup/"+name, "{.status.size}")
	confirm := ""
	if env == "production" {
		confirm = ", confirm: production"
	}
	var down, up time.Time
	restoreStart := time.Now()
	apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: %s, namespace: %s}\nspec: {backupRef: {name: %s}, environmentRef: {name: %s}%s}\n",
		name, p.name, name, env, confirm))
	var restoreDone time.Duration
	framework.Eventually(t, 30*time.Minute, "the restore completes and the environment is Ready again", func() (bool, error) {
		phase := cluster.Get(t, p.name, "restore/"+name, "{.status.phase}")
		if phase == "Failed" {
			t.Fatalf("restore %s/%s failed: %s", p.name, name, cluster.Get(t, p.name, "restore/"+name, "{.status.message}"))
		}
		if phase == "Completed" && restoreDone == 0 {
			restoreDone = time.Since(restoreStart)
		}
		ready := cluster.Get(t, p.name, "environment/"+env, `{.status.conditions[?(@.type=="Ready")].status}`) == "True"
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
