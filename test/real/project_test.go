//go:build real

package real

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// project is an ImplementationProject with the S3 server as its target,
// of the custom product on the stand-in application unless product is
// odoo (the Odoo stand-in, hack/images/odoo, under gdpr.anonymizeNonProduction):
// pg has test and production, my (MariaDB) test only: the real node has 2
// CPUs, and a production database asks for half of one.
type project struct {
	name, engine string
	// main is the environment whose rows the steps write and back up.
	main string
	// stages of the promotion path.
	stages string
	// product is odoo, espocrm, suitecrm, twenty or, empty, custom.
	product string
	// version of the product; empty: the operator's default.
	version string
	// image repository of the product; empty: the operator's default.
	image string
}

func (p project) manifest(t *testing.T, s3 *s3Server, secretName, schedule string) string {
	t.Helper()
	sched := ""
	if schedule != "" {
		sched = fmt.Sprintf("    schedule: %q\n", schedule)
	}
	product := fmt.Sprintf("{name: custom, version: \"1.0.0\", image: %s, databaseEngine: %s}", image(t, "crm-standin"), p.engine)
	gdpr := ""
	switch {
	case p.product == "odoo" && p.version == "":
		product, gdpr = `{name: odoo, version: "18.0"}`, "  gdpr: {anonymizeNonProduction: true}\n"
	case p.product != "" && p.image != "":
		product = fmt.Sprintf("{name: %s, version: %q, image: %s}", p.product, p.version, p.image)
	case p.product != "":
		product = fmt.Sprintf("{name: %s, version: %q}", p.product, p.version)
	}
	return fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: ImplementationProject
metadata:
  name: %[1]s
spec:
  customer: {name: Kunde %[1]s GmbH, contact: crm@kunde.example}
  product: %[2]s
%[3]s  hosting: {mode: cloud, region: eu-central-1, domain: crm.local.example}
  productOwners: {users: ["jane.po@kunde.example"]}
  stages: [%[7]s]
  restoreDatabaseOnRollback: true
  backup:
%[6]s    retention: {keepLast: 10}
    target:
      s3: {endpoint: %[4]q, bucket: backups, region: us-east-1, secretName: %[5]s}
`, p.name, product, gdpr, s3.endpoint, secretName, sched, p.stages)
}

func (p project) create(t *testing.T, s3 *s3Server) {
	t.Helper()
	apply(t, p.manifest(t, s3, "backup-s3", ""))
	framework.Eventually(t, time.Minute, "namespace "+p.name, func() (bool, error) {
		return cluster.Get(t, "", "implementationproject/"+p.name, "{.status.namespace}") == p.name, nil
	})
	apply(t, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: backup-s3, namespace: %[1]s}
stringData: {AWS_ACCESS_KEY_ID: %[2]s, AWS_SECRET_ACCESS_KEY: %[3]s}
`, p.name, s3Access, s3Secret))
	if p.product == "" {
		p.environment(t, "test", "test", "Delete")
	}
	if p.main == "production" {
		p.environment(t, "production", "production", "Retain")
	}
}

// environment creates an environment whose application asks for little CPU
// (the stand-in needs none); more is added to its spec as YAML lines.
func (p project) environment(t *testing.T, name, stage, deletionPolicy string, more ...string) {
	t.Helper()
	apply(t, fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Environment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  projectRef: {name: %[1]s}
  stage: %[3]s
  deletionPolicy: %[4]s
  resources: {requests: {cpu: 20m, memory: 32Mi}, limits: {memory: 128Mi}}
%[5]s`, p.name, name, stage, deletionPolicy, strings.Join(more, "")))
}

// sql runs statements with the database client inside the environment's
// database pod and returns the rows, tab-separated.
func (p project) sql(t *testing.T, env, statements string) string {
	t.Helper()
	pod := env + "-db-0"
	var out string
	var code int
	if p.engine == "postgresql" {
		out, code = cluster.Run(t, nil, kubectl, "exec", "-n", p.name, pod, "--", "psql", "-v", "ON_ERROR_STOP=1", "-U", "crm", "-d", "crm", "-tA", "-F", "\t", "-c", statements)
	} else {
		out, code = cluster.Run(t, nil, kubectl, "exec", "-n", p.name, pod, "--", "sh", "-c", `mariadb -ucrm -p"$MARIADB_PASSWORD" crm -N -B -e "$0"`, statements)
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
