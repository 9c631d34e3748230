//go:build real

package real

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// odooPeople writes personal data where Odoo keeps it: partners, their
// leads and their mail, Jane Doe and Max Mustermann among 200 people; an
// outgoing mail server and the scheduled actions are active.
const odooPeople = `
INSERT INTO res_partner (name, complete_name, email, phone, street, city, zip, comment) VALUES
  ('Jane Doe', 'Jane Doe', 'jane.doe@kunde.example', '+49 30 1234567', 'Hauptstraße 1', 'Berlin', '10115', '<p>prefers calls</p>'),
  ('Max Mustermann', 'Max Mustermann', 'max.mustermann@kunde.example', '+49 89 7654321', 'Marienplatz 2', 'München', '80331', NULL);
INSERT INTO res_partner (name, complete_name, email, phone, city)
  SELECT 'Person ' || g, 'Person ' || g, 'person' || g || '@kunde.example', '+49 40 ' || (1000000 + g), 'Hamburg' FROM generate_series(3, 200) g;
INSERT INTO crm_lead (name, partner_id, contact_name, email_from, phone, description)
  SELECT 'Opportunity ' || id, id, name, email, phone, '<p>call ' || name || '</p>' FROM res_partner WHERE email IS NOT NULL;
INSERT INTO mail_message (model, res_id, subject, body, email_from, author_id, message_type)
  SELECT 'res.partner', id, 'Offer for ' || name, '<p>Dear ' || name || ', our offer</p>', name || ' <' || email || '>', id, 'email' FROM res_partner WHERE email IS NOT NULL;
INSERT INTO ir_mail_server (name, smtp_host, smtp_port) VALUES ('Kunde SMTP', 'smtp.kunde.example', 587);`

// odooDigest is the count and a digest of the partners, leads and messages,
// computed by the database.
const odooDigest = `SELECT (SELECT count(*) FROM res_partner) || ' ' || (SELECT count(*) FROM crm_lead) || ' ' || (SELECT count(*) FROM mail_message) || ' ' ||
  md5((SELECT string_agg(concat_ws(':', id, name, email, phone, street, city, comment), ',' ORDER BY id) FROM res_partner) ||
      (SELECT string_agg(concat_ws(':', id, contact_name, email_from, phone, description), ',' ORDER BY id) FROM crm_lead) ||
      (SELECT string_agg(concat_ws(':', id, subject, body, email_from), ',' ORDER BY id) FROM mail_message))`

// janeRows counts the rows that still name Jane Doe or her address.
const janeRows = `SELECT (SELECT count(*) FROM res_partner WHERE name = 'Jane Doe' OR lower(email) = 'jane.doe@kunde.example') +
  (SELECT count(*) FROM crm_lead WHERE contact_name = 'Jane Doe' OR lower(email_from) = 'jane.doe@kunde.example') +
  (SELECT count(*) FROM mail_message WHERE email_from LIKE '%jane.doe@kunde.example%' OR body LIKE '%Jane Doe%')`

// gdprOnRealPods: a copy of production bootstrapped with anonymization, an
// erasure in every environment, and a restore of a backup older than the
// erasure, with the erasure re-applied and, once its request is deleted,
// without.
func gdprOnRealPods(t *testing.T, s3 *s3Server, asleep []project) {
	// Room on the node's 2 CPUs: the other projects hibernate (their data stays).
	for _, p := range asleep {
		cluster.Must(t, kubectl, "patch", "environment/test", "-n", p.name, "--type=merge", "-p", `{"spec":{"hibernate":true}}`)
		if p.main != "test" {
			cluster.Must(t, kubectl, "patch", "environment/"+p.main, "-n", p.name, "--type=merge", "-p", `{"spec":{"hibernate":true}}`)
		}
	}
	for _, p := range asleep {
		framework.Eventually(t, 2*time.Minute, p.name+"'s databases stopped", func() (bool, error) {
			return cluster.Get(t, p.name, "pods", "{.items[*].metadata.name}", "-l", "app.kubernetes.io/component=database") == "", nil
		})
	}

	od := project{name: "od", engine: "postgresql", main: "production", stages: "staging, production", product: "odoo"}
	od.create(t, s3)
	cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", od.name, "--timeout=240s")
	od.sql(t, "production", odooPeople)
	before := od.sql(t, "production", odooDigest)
	if !strings.HasPrefix(before, "201 200 200 ") {
		t.Fatalf("od production holds %q, want 201 partners, 200 leads, 200 messages", before)
	}
	// Production has no mail server: Odoo 18 (and its stand-in) would not
	// start on an empty smtp_port. The init Job set the admin password and
	// every start the public URL.
	checkOdooSettings(t, od, "production")
	// Files production keeps in Odoo's data directory: an attachment in the
	// filestore (personal) and a module under addons/<series> (code).
	cluster.Must(t, kubectl, "exec", "-n", od.name, "deploy/production-app", "-c", "app", "--", "sh", "-c",
		`mkdir -p "$(dirname "$0")" "$(dirname "$1")" && echo "Jane Doe, passport scan" >"$0" && echo "{'name': 'Kunde custom'}" >"$1"`, odooAttachment, odooModule)
	apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: before-erasure, namespace: od}\nspec: {environmentRef: {name: production}}\n")
	cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/before-erasure", "-n", od.name, "--timeout=180s")

	t.Run("a staging copy bootstrapped from production's backup is anonymized, its mail and jobs off; production is unchanged", func(t *testing.T) {
		od.environment(t, "staging", "staging", "Delete", "  bootstrap: {fromBackup: {name: before-erasure}, anonymize: true}\n")
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/staging", "-n", od.name, "--timeout=300s")
		if got := cluster.Get(t, od.name, "environment/staging", `{.status.conditions[?(@.type=="Bootstrapped")].status}`); got != "True" {
			t.Errorf("staging's Bootstrapped condition is %q", got)
		}
		checkAnonymizedCopy(t, od, "staging", before)
		// Production's data, staging's own URL and admin password.
		checkOdooSettings(t, od, "staging")
		if got := od.sql(t, "production", odooDigest); got != before {
			t.Errorf("production changed while staging was copied from it: %s, was %s", got, before)
		}
		if got := od.sql(t, "production", `SELECT count(*) FROM ir_mail_server WHERE active`); got != "1" {
			t.Errorf("production's mail server is off (%s active), it must stay on", got)
		}
	})

	t.Run("the bootstrap Restore deleted and created again from production's backup anonymizes all the same: the decision is not its name", func(t *testing.T) {
		cluster.Must(t, kubectl, "delete", "restore/staging-bootstrap", "-n", od.name)
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: staging-bootstrap, namespace: od}\n"+
			"spec: {backupRef: {name: before-erasure}, environmentRef: {name: staging}}\n")
		restoreCompletes(t, od.name, "staging-bootstrap")
		if got := cluster.Get(t, od.name, "restore/staging-bootstrap", "{.status.anonymized}"); got != "true" {
			t.Errorf("the second staging-bootstrap's status.anonymized is %q, want true", got)
		}
		cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/staging", "-n", od.name, "--timeout=180s")
		checkAnonymizedCopy(t, od, "staging", before)
	})

	t.Run("an ErasureRequest erases Jane Doe everywhere; a restore of the older backup brings her back only without the erasure re-applied", func(t *testing.T) {
		apply(t, "apiVersion: crm.crmops.io/v1alpha1\nkind: ErasureRequest\nmetadata: {name: forget-jane, namespace: od}\n"+
			"spec: {projectRef: {name: od}, subject: {email: Jane.Doe@kunde.example}, reason: \"Art. 17 request of 2026-12-01\"}\n")
		cluster.Must(t, kubectl, "wait", "--for=condition=Complete", "erasurerequest/forget-jane", "-n", od.name, "--timeout=240s")
		if got := cluster.Get(t, od.name, "erasurerequest/forget-jane", `{range .status.environments[*]}{.name}={.phase} {end}`); got != "production=Completed staging=Completed" {
			t.Errorf("the erasure reports %q, want production and staging Completed", got)
		}
		if got := cluster.Get(t, od.name, "erasurerequest/forget-jane", "{.spec.subject.email}"); got != "" {
			t.Errorf("the erased address is still in the request's spec: %q", got)
		}
		if got := od.sql(t, "production", janeRows); got != "0" {
			t.Errorf("production still has %s rows naming Jane Doe after her erasure", got)
		}
		if got := od.sql(t, "production", `SELECT count(*) FROM res_partner WHERE name = 'Max Mustermann'`); got != "1" {
			t.Errorf("the erasure of Jane Doe touched Max Mustermann (%s rows left)", got)
		}

		restore := func(name string) {
			apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: %s, namespace: od}\n"+
				"spec: {backupRef: {name: before-erasure}, environmentRef: {name: production}, confirm: production}\n", name))
			restoreCompletes(t, od.name, name)
			cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/production", "-n", od.name, "--timeout=180s")
		}
		restore("with-erasure")
		if got := cluster.Get(t, od.name, "restore/with-erasure", "{.status.erasuresReapplied}"); got != "1" {
			t.Errorf("the restore re-applied %q erasures, want 1", got)
		}
		if got := od.sql(t, "production", janeRows); got != "0" {
			t.Errorf("the restore of a backup older than the erasure brought back %s rows naming Jane Doe", got)
		}
		if got := od.sql(t, "production", `SELECT count(*) FROM res_partner WHERE email LIKE 'person%@kunde.example'`); got != "198" {
			t.Errorf("production after the restore has %s of the 198 other people", got)
		}

		// Deleting the request (cluster administrators only) is what lets her come back.
		cluster.Must(t, kubectl, "delete", "erasurerequest/forget-jane", "-n", od.name)
		restore("without-erasure")
		if got := cluster.Get(t, od.name, "restore/without-erasure", "{.status.erasuresReapplied}"); got != "" && got != "0" {
			t.Errorf("the restore re-applied %q erasures, want none", got)
		}
		if got := od.sql(t, "production", odooDigest); got != before {
			t.Errorf("without the erasure re-applied production holds %s, the backup %s", got, before)
		}
	})
}

// Where the files of od's production are written: an attachment (Odoo's
// filestore/<database>/<2 hex>/<sha1>) and a module of the data directory's
// addons/<series>.
const (
	odooAttachment = "/var/lib/odoo/filestore/crm/3f/3f786850e387550fdab836ed7e6dc881de23001b"
	odooModule     = "/var/lib/odoo/addons/18.0/kunde_custom/__manifest__.py"
)

// checkAnonymizedCopy checks that env, a copy of od's production whose
// rows digest to before, holds every row rewritten, no personal value, mail
// and scheduled actions off, and production's code files without its
// attachments.
func checkAnonymizedCopy(t *testing.T, od project, env, before string) {
	t.Helper()
	copyDigest := od.sql(t, env, odooDigest)
	if !strings.HasPrefix(copyDigest, "201 200 200 ") || copyDigest == before {
		t.Errorf("%s holds %q: want every row of production's %q, rewritten", env, copyDigest, before)
	}
	// No value of a personal column survives in the copy (pseudonyms are
	// 'Person <hash>', 'person-<hash>@example.invalid', '+000<hash>', ...).
	for _, check := range []struct{ what, query string }{
		{"partners' names, e-mail addresses, phones, streets or notes", `SELECT count(*) FROM res_partner WHERE (name IN (SELECT 'Person ' || g FROM generate_series(3, 200) g) OR name IN ('Jane Doe', 'Max Mustermann') OR email LIKE '%@kunde.example' OR phone LIKE '+49%' OR street LIKE 'Hauptstra%' OR comment LIKE '%calls%')`},
		{"leads' contacts, addresses, phones or descriptions", `SELECT count(*) FROM crm_lead WHERE contact_name IN (SELECT 'Person ' || g FROM generate_series(3, 200) g) OR contact_name LIKE '%Doe' OR email_from LIKE '%@kunde.example' OR phone LIKE '+49%' OR description LIKE '%call %'`},
		{"messages' senders, subjects or bodies", `SELECT count(*) FROM mail_message WHERE email_from LIKE '%@kunde.example%' OR subject LIKE 'Offer for %' OR body LIKE '%Dear %'`},
		{"active outgoing mail servers", `SELECT count(*) FROM ir_mail_server WHERE active`},
		{"active scheduled actions", `SELECT count(*) FROM ir_cron WHERE active`},
	} {
		if got := od.sql(t, env, check.query); got != "0" {
			t.Errorf("%s's copy has %s rows of %s, want 0", env, got, check.what)
		}
	}
	// Each person keeps a distinct pseudonym: the copy is still a CRM's data.
	if got := od.sql(t, env, `SELECT count(DISTINCT email) FROM res_partner WHERE email IS NOT NULL`); got != "200" {
		t.Errorf("%s's partners have %s distinct pseudonymous addresses, want 200", env, got)
	}
	if out, code := cluster.Run(t, nil, kubectl, "exec", "-n", od.name, "deploy/"+env+"-app", "-c", "app", "--", "cat", odooModule); code != 0 || !strings.Contains(out, "Kunde custom") {
		t.Errorf("%s lacks production's module %s (exit %d): %s", env, odooModule, code, out)
	}
	// Restored as Odoo's user (100:101), so Odoo may write where it wrote before.
	if out, code := cluster.Run(t, nil, kubectl, "exec", "-n", od.name, "deploy/"+env+"-app", "-c", "app", "--", "stat", "-c", "%u:%g", odooModule, path.Dir(odooModule)); code != 0 || strings.Join(strings.Fields(out), " ") != "100:101 100:101" {
		t.Errorf("%s's restored module and its directory are owned by %q (exit %d), want Odoo's 100:101", env, out, code)
	}
	if out, code := cluster.Run(t, nil, kubectl, "exec", "-n", od.name, "deploy/"+env+"-app", "-c", "app", "--", "ls", "-R", "/var/lib/odoo"); code != 0 || strings.Contains(out, path.Base(odooAttachment)) {
		t.Errorf("%s holds production's attachment %s, or its data directory cannot be listed (exit %d):\n%s", env, odooAttachment, code, out)
	}
	if _, code := cluster.Run(t, nil, kubectl, "exec", "-n", od.name, "deploy/production-app", "-c", "app", "--", "test", "-f", odooAttachment); code != 0 {
		t.Errorf("production lost its attachment %s while %s was copied from it", odooAttachment, env)
	}
}

// checkOdooSettings checks what the operator sets in env's Odoo database:
// the public URL (web.base.url, frozen) is the environment's, and the admin
// password is the one in its credentials Secret (the stand-in keeps its
// SHA-256).
func checkOdooSettings(t *testing.T, od project, env string) {
	t.Helper()
	url := cluster.Get(t, od.name, "environment/"+env, "{.status.url}")
	if got := od.sql(t, env, `SELECT string_agg(key || '=' || value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key LIKE 'web.base.url%'`); got != "web.base.url="+url+" web.base.url.freeze=True" {
		t.Errorf("%s's Odoo has %q, want web.base.url=%s, frozen", env, got, url)
	}
	encoded := cluster.Get(t, od.name, "secret/"+env+"-credentials", `{.data.admin-password}`)
	password, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(password) == 0 {
		t.Fatalf("%s's admin password in its Secret: %q (%v)", env, encoded, err)
	}
	sum := sha256.Sum256(password)
	if got := od.sql(t, env, `SELECT password FROM res_users WHERE login = 'admin'`); got != hex.EncodeToString(sum[:]) {
		t.Errorf("%s's Odoo admin password is not its Secret's (stored %q)", env, got)
	}
}
