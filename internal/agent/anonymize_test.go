package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const salt = "per-copy-random-salt-0123456789"

// The products' real tables, reduced to the columns the rules and the
// assertions touch (EspoCRM 9 on MariaDB, Odoo 18 on PostgreSQL).
const espoSchema = `
CREATE TABLE account (id VARCHAR(17) PRIMARY KEY, name VARCHAR(249), description MEDIUMTEXT, billing_address_street VARCHAR(255));
CREATE TABLE contact (id VARCHAR(17) PRIMARY KEY, first_name VARCHAR(100), last_name VARCHAR(100), description MEDIUMTEXT,
  address_street VARCHAR(255), address_city VARCHAR(100), address_postal_code VARCHAR(40), account_id VARCHAR(17),
  FOREIGN KEY (account_id) REFERENCES account(id));
CREATE TABLE email_address (id VARCHAR(17) PRIMARY KEY, name VARCHAR(255), ` + "`lower`" + ` VARCHAR(255));
CREATE TABLE entity_email_address (id INT AUTO_INCREMENT PRIMARY KEY, entity_id VARCHAR(17), entity_type VARCHAR(100), email_address_id VARCHAR(17),
  FOREIGN KEY (email_address_id) REFERENCES email_address(id));
CREATE TABLE phone_number (id VARCHAR(17) PRIMARY KEY, name VARCHAR(36), ` + "`numeric`" + ` VARCHAR(36));
CREATE TABLE note (id VARCHAR(17) PRIMARY KEY, post MEDIUMTEXT, parent_id VARCHAR(17));
CREATE TABLE email (id VARCHAR(17) PRIMARY KEY, name VARCHAR(255), body MEDIUMTEXT, body_plain MEDIUMTEXT, from_string VARCHAR(255));
CREATE TABLE scheduled_job (id VARCHAR(17) PRIMARY KEY, job VARCHAR(255), status VARCHAR(255));
CREATE TABLE email_account (id VARCHAR(17) PRIMARY KEY, email_address VARCHAR(255), status VARCHAR(255));`

const odooSchema = `
CREATE TABLE res_partner (id SERIAL PRIMARY KEY, name VARCHAR, complete_name VARCHAR, email VARCHAR, phone VARCHAR, mobile VARCHAR,
  street VARCHAR, street2 VARCHAR, city VARCHAR, zip VARCHAR, comment TEXT, vat VARCHAR, parent_id INT REFERENCES res_partner(id));
CREATE TABLE crm_lead (id SERIAL PRIMARY KEY, partner_id INT REFERENCES res_partner(id), contact_name VARCHAR, partner_name VARCHAR,
  email_from VARCHAR, phone VARCHAR, description TEXT, street VARCHAR);
CREATE TABLE mail_message (id SERIAL PRIMARY KEY, author_id INT REFERENCES res_partner(id), body TEXT, email_from VARCHAR, subject VARCHAR);
CREATE TABLE ir_mail_server (id SERIAL PRIMARY KEY, name VARCHAR, active BOOLEAN);
CREATE TABLE ir_cron (id SERIAL PRIMARY KEY, cron_name VARCHAR, active BOOLEAN);`

// SuiteCRM 8 keeps SuiteCRM 7's tables (MariaDB).
const suiteSchema = `
CREATE TABLE accounts (id CHAR(36) PRIMARY KEY, name VARCHAR(150), description TEXT, phone_office VARCHAR(100), billing_address_street VARCHAR(150));
CREATE TABLE contacts (id CHAR(36) PRIMARY KEY, first_name VARCHAR(100), last_name VARCHAR(100), description TEXT, phone_home VARCHAR(100),
  phone_mobile VARCHAR(100), phone_work VARCHAR(100), phone_other VARCHAR(100), primary_address_street VARCHAR(150), primary_address_city VARCHAR(100),
  primary_address_postalcode VARCHAR(20), alt_address_street VARCHAR(150), assistant VARCHAR(75), assistant_phone VARCHAR(100));
CREATE TABLE accounts_contacts (id CHAR(36) PRIMARY KEY, contact_id CHAR(36), account_id CHAR(36),
  FOREIGN KEY (contact_id) REFERENCES contacts(id), FOREIGN KEY (account_id) REFERENCES accounts(id));
CREATE TABLE email_addresses (id CHAR(36) PRIMARY KEY, email_address VARCHAR(255), email_address_caps VARCHAR(255));
CREATE TABLE email_addr_bean_rel (id CHAR(36) PRIMARY KEY, email_address_id CHAR(36), bean_id CHAR(36), bean_module VARCHAR(100),
  FOREIGN KEY (email_address_id) REFERENCES email_addresses(id));
CREATE TABLE notes (id CHAR(36) PRIMARY KEY, name VARCHAR(255), description TEXT, parent_type VARCHAR(255), parent_id CHAR(36));
CREATE TABLE emails_text (email_id CHAR(36) PRIMARY KEY, from_addr VARCHAR(255), to_addrs TEXT, cc_addrs TEXT, description LONGTEXT, description_html LONGTEXT);
CREATE TABLE schedulers (id CHAR(36) PRIMARY KEY, name VARCHAR(255), status VARCHAR(100));
CREATE TABLE outbound_email (id CHAR(36) PRIMARY KEY, name VARCHAR(50), mail_smtpserver VARCHAR(100));
CREATE TABLE job_queue (id CHAR(36) PRIMARY KEY, name VARCHAR(255), status VARCHAR(20));`

func seedSuite(t *testing.T, d Database, ps []person) {
	t.Helper()
	var b strings.Builder
	b.WriteString(suiteSchema)
	b.WriteString("\nINSERT INTO schedulers VALUES ('s1','Run Nightly Mass Outbound Campaigns','Active'),('s2','Check Inbound Mailboxes','Active');")
	b.WriteString("\nINSERT INTO outbound_email VALUES ('o1','system','smtp.kunde.example');")
	b.WriteString("\nINSERT INTO job_queue VALUES ('q1','send campaign','queued'),('q2','done','done');")
	for i, p := range ps {
		fmt.Fprintf(&b, "\nINSERT INTO accounts VALUES ('a%d','%s GmbH','Key account of %s','%s','%s');", i, p.last, p.first, p.phone, p.street)
		fmt.Fprintf(&b, "\nINSERT INTO contacts VALUES ('c%d','%s','%s','Met %s at the fair','%s','%s','%s',NULL,'%s','Berlin','10115',NULL,NULL,NULL);",
			i, p.first, p.last, p.first, p.phone, p.phone, p.phone, p.street)
		fmt.Fprintf(&b, "\nINSERT INTO accounts_contacts VALUES ('ac%d','c%d','a%d');", i, i, i)
		fmt.Fprintf(&b, "\nINSERT INTO email_addresses VALUES ('e%d','%s','%s');", i, p.email, strings.ToUpper(p.email))
		fmt.Fprintf(&b, "\nINSERT INTO email_addr_bean_rel VALUES ('r%d','e%d','c%d','Contacts');", i, i, i)
		fmt.Fprintf(&b, "\nINSERT INTO notes VALUES ('n%d','Call with %s','Called %s %s about renewal','Contacts','c%d');", i, p.last, p.first, p.last, i)
		fmt.Fprintf(&b, "\nINSERT INTO emails_text VALUES ('m%d','%s','sales@kunde.example',NULL,'Dear %s, ...','<p>Dear %s</p>');", i, p.email, p.first, p.first)
	}
	sql(t, d, b.String())
}

func TestAnonymizeSuiteCRM(t *testing.T) {
	need(t, mariadb)
	d := createDatabase(t, mariadb, unique("suite"))
	ps := people(25)
	seedSuite(t, d, ps)
	joins := "SELECT COUNT(*) FROM contacts c JOIN accounts_contacts ac ON ac.contact_id = c.id JOIN accounts a ON a.id = ac.account_id " +
		"JOIN email_addr_bean_rel r ON r.bean_id = c.id JOIN email_addresses e ON e.id = r.email_address_id"
	before := sql(t, d, joins)
	res, err := Anonymize(context.Background(), d, "suitecrm", salt)
	if err != nil {
		t.Fatal(err)
	}
	survivors(t, d, res.Columns, ps)
	if after := sql(t, d, joins); after != before {
		t.Errorf("relations broken: %s joined rows before, %s after", before, after)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM emails_text m JOIN email_addresses e ON e.email_address = m.from_addr"); got != "25" {
		t.Errorf("pseudonymized addresses no longer match across tables: %s of 25", got)
	}
	for q, want := range map[string]string{
		"SELECT COUNT(*) FROM schedulers WHERE status <> 'Inactive'":               "0",
		"SELECT COUNT(*) FROM outbound_email WHERE mail_smtpserver LIKE '%kunde%'": "0",
		"SELECT COUNT(*) FROM job_queue WHERE status = 'queued'":                   "0",
		"SELECT COUNT(*) FROM job_queue WHERE status = 'done'":                     "1",
	} {
		if got := sql(t, d, q); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	if res.Disabled != 3 { // inbound_email does not exist in this schema: skipped
		t.Errorf("disabled %d, want 3", res.Disabled)
	}
}

type person struct{ first, last, email, phone, street string }

func people(n int) []person {
	var ps []person
	for i := 1; i <= n; i++ {
		ps = append(ps, person{fmt.Sprintf("Anna%d", i), fmt.Sprintf("Müller%d", i), fmt.Sprintf("Anna.Mueller%d@Kunde.example", i),
			fmt.Sprintf("+49 30 555%04d", i), fmt.Sprintf("Hauptstraße %d", i)})
	}
	return ps
}

func seedEspo(t *testing.T, d Database, ps []person) {
	t.Helper()
	var b strings.Builder
	b.WriteString(espoSchema)
	b.WriteString("\nINSERT INTO scheduled_job VALUES ('j1','CheckInboundEmails','Active'),('j2','Cleanup','Active');")
	b.WriteString("\nINSERT INTO email_account VALUES ('m1','sales@kunde.example','Active');")
	for i, p := range ps {
		fmt.Fprintf(&b, "\nINSERT INTO account VALUES ('a%d','%s GmbH','Key account of %s','%s');", i, p.last, p.first, p.street)
		fmt.Fprintf(&b, "\nINSERT INTO contact VALUES ('c%d','%s','%s','Met %s at the fair','%s','Berlin','10115','a%d');", i, p.first, p.last, p.first, p.street, i)
		fmt.Fprintf(&b, "\nINSERT INTO email_address VALUES ('e%d','%s','%s');", i, p.email, strings.ToLower(p.email))
		fmt.Fprintf(&b, "\nINSERT INTO entity_email_address (entity_id, entity_type, email_address_id) VALUES ('c%d','Contact','e%d');", i, i)
		fmt.Fprintf(&b, "\nINSERT INTO phone_number VALUES ('p%d','%s','%s');", i, p.phone, strings.NewReplacer(" ", "", "+", "").Replace(p.phone))
		fmt.Fprintf(&b, "\nINSERT INTO note VALUES ('n%d','Called %s %s about renewal','c%d');", i, p.first, p.last, i)
		fmt.Fprintf(&b, "\nINSERT INTO email VALUES ('m%d','Offer for %s','Dear %s, ...','Dear %s','%s');", i, p.last, p.first, p.first, p.email)
	}
	sql(t, d, b.String())
}

func seedOdoo(t *testing.T, d Database, ps []person) {
	t.Helper()
	var b strings.Builder
	b.WriteString(odooSchema)
	b.WriteString("\nINSERT INTO ir_mail_server (name, active) VALUES ('smtp', true); INSERT INTO ir_cron (cron_name, active) VALUES ('Mail: send queue', true), ('Leads: assign', true);")
	for i, p := range ps {
		fmt.Fprintf(&b, "\nINSERT INTO res_partner (id, name, complete_name, email, phone, mobile, street, city, zip, comment) VALUES (%d, '%s %s', '%s %s', '%s', '%s', '%s', '%s', 'Berlin', '10115', 'VIP: %s');",
			i+1, p.first, p.last, p.first, p.last, p.email, p.phone, p.phone, p.street, p.first)
		fmt.Fprintf(&b, "\nINSERT INTO crm_lead (partner_id, contact_name, email_from, phone, description) VALUES (%d, '%s %s', '%s', '%s', 'Wants a demo, ask %s');", i+1, p.first, p.last, p.email, p.phone, p.first)
		fmt.Fprintf(&b, "\nINSERT INTO mail_message (author_id, body, email_from, subject) VALUES (%d, '<p>Hi %s</p>', '%s', 'Re: %s');", i+1, p.first, p.email, p.last)
	}
	sql(t, d, b.String())
}

// survivors fails the test for every column in which an original name,
// e-mail, phone or street of ps still appears.
func survivors(t *testing.T, d Database, columns []string, ps []person) {
	t.Helper()
	countSurvivors(t, d, columns, ps, t.Errorf)
}

// countSurvivors counts the rows in which personal data of ps appears,
// reporting each column through report when given.
func countSurvivors(t *testing.T, d Database, columns []string, ps []person, report ...func(string, ...any)) int {
	t.Helper()
	n := 0
	for _, tc := range columns {
		table, col, _ := strings.Cut(tc, ".")
		col = quoteIdent(d.Engine, col)
		var conds []string
		for _, p := range ps {
			for _, v := range []string{p.first, p.last, strings.ToLower(p.email), p.phone, p.street} {
				conds = append(conds, fmt.Sprintf("LOWER(%s) LIKE '%%%s%%'", col, strings.ToLower(v)))
			}
		}
		var cnt int
		if _, err := fmt.Sscan(sql(t, d, fmt.Sprintf("SELECT COUNT(*) FROM %s WHERE %s", quoteIdent(d.Engine, table), strings.Join(conds, " OR "))), &cnt); err != nil {
			t.Fatalf("%s: counting rows of %s: %v", tc, table, err)
		}
		if cnt > 0 && len(report) > 0 {
			report[0]("%s: %d rows keep original personal data", tc, cnt)
		}
		n += cnt
	}
	return n
}

func TestAnonymizeEspoCRM(t *testing.T) {
	need(t, mariadb)
	ctx := context.Background()
	d := createDatabase(t, mariadb, unique("espo"))
	ps := people(25)
	seedEspo(t, d, ps)
	joins := "SELECT COUNT(*) FROM contact c JOIN account a ON a.id = c.account_id JOIN entity_email_address x ON x.entity_id = c.id JOIN email_address e ON e.id = x.email_address_id"
	before := sql(t, d, joins)

	res, err := Anonymize(ctx, d, "espocrm", salt)
	if err != nil {
		t.Fatal(err)
	}
	survivors(t, d, res.Columns, ps)
	if after := sql(t, d, joins); after != before {
		t.Errorf("relations broken: %s joined rows before, %s after", before, after)
	}
	// Deterministic: the address in email_address and in the e-mail's sender agree.
	if got := sql(t, d, "SELECT COUNT(*) FROM email m JOIN email_address e ON e.`lower` = LOWER(m.from_string)"); got != "25" {
		t.Errorf("pseudonymized addresses no longer match across tables: %s of 25", got)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM email_address WHERE name NOT LIKE 'person-%@example.invalid'"); got != "0" {
		t.Errorf("%s addresses are not pseudonyms", got)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM scheduled_job WHERE status <> 'Inactive'"); got != "0" {
		t.Errorf("%s scheduled jobs still active", got)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM email_account WHERE status <> 'Inactive'"); got != "0" {
		t.Errorf("%s mail accounts still active", got)
	}
	if res.Disabled != 2 { // inbound_email does not exist in this schema: skipped
		t.Errorf("disabled %d, want 2", res.Disabled)
	}
}

func TestAnonymizeOdoo(t *testing.T) {
	need(t, postgres)
	ctx := context.Background()
	d := createDatabase(t, postgres, unique("odoo"))
	ps := people(25)
	seedOdoo(t, d, ps)
	joins := "SELECT COUNT(*) FROM crm_lead l JOIN res_partner p ON p.id = l.partner_id JOIN mail_message m ON m.author_id = p.id"
	before := sql(t, d, joins)
	res, err := Anonymize(ctx, d, "odoo", salt)
	if err != nil {
		t.Fatal(err)
	}
	survivors(t, d, res.Columns, ps)
	if after := sql(t, d, joins); after != before {
		t.Errorf("relations broken: %s joined rows before, %s after", before, after)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM crm_lead l JOIN res_partner p ON p.id = l.partner_id WHERE l.email_from = p.email"); got != "25" {
		t.Errorf("a partner's address and the lead's sender no longer agree: %s of 25", got)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM ir_cron WHERE active"); got != "0" {
		t.Errorf("%s scheduled actions still active", got)
	}
	if got := sql(t, d, "SELECT COUNT(*) FROM ir_mail_server WHERE active"); got != "0" {
		t.Errorf("%s mail servers still active", got)
	}
	// Another salt gives other pseudonyms: copies cannot be joined with each other.
	d2 := createDatabase(t, postgres, unique("odoo"))
	seedOdoo(t, d2, ps[:1])
	if _, err := Anonymize(ctx, d2, "odoo", "another-salt-0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if sql(t, d2, "SELECT email FROM res_partner WHERE id = 1") == sql(t, d, "SELECT email FROM res_partner WHERE id = 1") {
		t.Error("the same pseudonym under two salts")
	}
	if _, err := Anonymize(ctx, d2, "odoo", "short"); err == nil {
		t.Error("a short salt was accepted")
	}
}

// A copy of production restored with AnonymizeSalt keeps no real person,
// whichever way it reaches a test environment (a Restore, not only a
// bootstrap): the same rules as anonymize, before the restore reports success.
func TestRestoreAnonymizesACopyBeforeItReportsSuccess(t *testing.T) {
	need(t, postgres)
	need(t, s3)
	ctx := context.Background()
	prod := createDatabase(t, postgres, unique("prod"))
	ps := people(10)
	seedOdoo(t, prod, ps)
	store := s3.store(t, "anon")
	if _, _, err := Backup(ctx, store, BackupOptions{Name: "nightly", Database: prod, Product: "odoo", ProductVersion: "18.0", Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	copyDB := createDatabase(t, postgres, unique("test"))
	if _, err := Restore(ctx, store, RestoreOptions{Name: "nightly", Database: copyDB, Product: "odoo", AnonymizeSalt: salt}); err != nil {
		t.Fatal(err)
	}
	// The columns seedOdoo fills with people's data.
	columns := []string{"res_partner.name", "res_partner.email", "res_partner.phone", "res_partner.street", "res_partner.comment",
		"crm_lead.contact_name", "crm_lead.email_from", "crm_lead.phone", "crm_lead.description", "mail_message.body", "mail_message.email_from"}
	if n := countSurvivors(t, copyDB, columns, ps); n != 0 {
		t.Errorf("%d rows of the restored copy keep original personal data", n)
	}
	if got := sql(t, copyDB, "SELECT COUNT(*) FROM ir_mail_server WHERE active"); got != "0" {
		t.Errorf("%s mail servers of the copy still active", got)
	}
	// Without it (a restore into production), the data comes back as it was.
	same := createDatabase(t, postgres, unique("prod2"))
	if _, err := Restore(ctx, store, RestoreOptions{Name: "nightly", Database: same, Product: "odoo"}); err != nil {
		t.Fatal(err)
	}
	if n := countSurvivors(t, same, columns, ps); n == 0 {
		t.Error("a plain restore changed the data")
	}
}

func TestEraseOneSubject(t *testing.T) {
	for _, tc := range []struct {
		product string
		srv     **server
		seed    func(*testing.T, Database, []person)
		columns []string
	}{
		{"espocrm", &mariadb, seedEspo, []string{"contact.first_name", "contact.last_name", "contact.description", "contact.address_street",
			"email_address.name", "email_address.lower", "note.post", "email.body", "email.from_string"}},
		{"suitecrm", &mariadb, seedSuite, []string{"contacts.first_name", "contacts.last_name", "contacts.description", "contacts.phone_mobile",
			"contacts.primary_address_street", "email_addresses.email_address", "notes.description", "emails_text.description", "emails_text.from_addr"}},
		{"odoo", &postgres, seedOdoo, []string{"res_partner.name", "res_partner.email", "res_partner.phone", "res_partner.street",
			"res_partner.comment", "crm_lead.contact_name", "crm_lead.email_from", "crm_lead.description", "mail_message.body", "mail_message.email_from"}},
	} {
		t.Run(tc.product, func(t *testing.T) {
			s := *tc.srv
			need(t, s)
			d := createDatabase(t, s, unique("erase"))
			ps := people(10)
			tc.seed(t, d, ps)
			subject, others := ps[3], append(append([]person{}, ps[:3]...), ps[4:]...)
			// A backup taken before the erasure still holds the person.
			store := NewDirStore(t.TempDir())
			if _, _, err := Backup(context.Background(), store, BackupOptions{Name: "before", Database: d, Product: tc.product}); err != nil {
				t.Fatal(err)
			}
			// The request may name the address in any case.
			if _, err := Erase(context.Background(), d, tc.product, Subject{Email: strings.ToUpper(subject.email)}); err != nil {
				t.Fatal(err)
			}
			survivors(t, d, tc.columns, []person{subject})

			// A plain restore of the older backup brings the person back...
			if _, err := Restore(context.Background(), store, RestoreOptions{Name: "before", Database: d, Product: tc.product}); err != nil {
				t.Fatal(err)
			}
			if n := countSurvivors(t, d, tc.columns, []person{subject}); n == 0 {
				t.Fatal("the backup taken before the erasure does not hold the subject: the test proves nothing")
			}
			// ...a restore with the remembered hashes (the operator passes every
			// erasure of the project) does not: only the salted hash is needed.
			const salt = "project-erasure-salt-0123456789"
			hashes := []string{SubjectHash(salt, "someone.else@example.org"), SubjectHash(salt, strings.ToUpper(subject.email))}
			if _, err := Restore(context.Background(), store, RestoreOptions{Name: "before", Database: d, Product: tc.product,
				Erasures: &Subject{Hashes: hashes, Salt: salt}}); err != nil {
				t.Fatal(err)
			}
			survivors(t, d, tc.columns, []person{subject})
			// Everyone else is untouched.
			for _, p := range others {
				var n int
				col := map[string]string{"espocrm": "SELECT COUNT(*) FROM email_address WHERE name = '%s'", "odoo": "SELECT COUNT(*) FROM res_partner WHERE email = '%s'",
					"suitecrm": "SELECT COUNT(*) FROM email_addresses WHERE email_address = '%s'"}[tc.product]
				if _, err := fmt.Sscan(sql(t, d, fmt.Sprintf(col, p.email)), &n); err != nil {
					t.Fatalf("counting %s: %v", p.email, err)
				}
				if n != 1 {
					t.Errorf("%s was touched by the erasure of another person", p.email)
				}
			}
		})
	}
}

// Odoo 19 dropped res_partner.mobile (odoo/odoo@0002184
// odoo/addons/base/models/res_partner.py has no such field), which the
// erasure of Odoo 18 clears: the erasure clears what the schema has and
// does not fail on the rest.
func TestEraseLeavesOutColumnsAVersionDropped(t *testing.T) {
	need(t, postgres)
	d := createDatabase(t, postgres, unique("odoo19"))
	ps := people(3)
	seedOdoo(t, d, ps)
	sql(t, d, "ALTER TABLE res_partner DROP COLUMN mobile")
	n, err := Erase(context.Background(), d, "odoo", Subject{Email: ps[1].email})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("%d statements ran, want 3 (mail_message, crm_lead, res_partner)", n)
	}
	survivors(t, d, []string{"res_partner.name", "res_partner.email", "res_partner.phone", "crm_lead.email_from", "mail_message.email_from"}, ps[1:2])
	if got := sql(t, d, fmt.Sprintf("SELECT COUNT(*) FROM res_partner WHERE email = '%s'", ps[0].email)); got != "1" {
		t.Errorf("the erasure touched another person: %s rows of %s left", got, ps[0].email)
	}
}

// 8: an anonymized copy takes the product's code and configuration from the
// files volume but none of its uploads, attachments or logs; a plain
// restore (production from its own backup) takes everything.
func TestAnAnonymizedCopyLeavesThePersonalFilesOut(t *testing.T) {
	need(t, mariadb)
	need(t, s3)
	ctx := context.Background()
	prod := createDatabase(t, mariadb, unique("prod"))
	seedEspo(t, prod, people(3))
	files := t.TempDir()
	personal := map[string]string{
		"data/upload/6571a3f0e1b2c4d5e":        "scan of Jane Doe's passport",
		"data/upload/thumbs/6571a3f0e1b2c4d5e": "thumbnail",
		"data/logs/espo-2026-12-07.log":        "login failed for jane.doe@kunde.example",
	}
	code := map[string]string{
		"data/config-internal.php":                        "<?php return ['passwordSalt' => 'x'];",
		"data/upload/extensions/sales-pack/manifest.json": "{}",
		"custom/Espo/Custom/Resources/metadata/x.json":    "{}",
		"client-custom/src/views/lead.js":                 "define()",
	}
	for _, set := range []map[string]string{personal, code} {
		for name, content := range set {
			p := filepath.Join(files, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	store := s3.store(t, "files")
	if _, _, err := Backup(ctx, store, BackupOptions{Name: "nightly", Database: prod, FilesDir: files, Product: "espocrm", Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	exists := func(root, name string) bool {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
		return err == nil
	}
	copyFiles := t.TempDir()
	if _, err := Restore(ctx, store, RestoreOptions{Name: "nightly", Database: createDatabase(t, mariadb, unique("copy")), FilesDir: copyFiles, Product: "espocrm", AnonymizeSalt: salt}); err != nil {
		t.Fatal(err)
	}
	for name := range personal {
		if exists(copyFiles, name) {
			t.Errorf("the anonymized copy carries %s", name)
		}
	}
	for name := range code {
		if !exists(copyFiles, name) {
			t.Errorf("the anonymized copy lacks %s, which it needs to run", name)
		}
	}
	whole := t.TempDir()
	if _, err := Restore(ctx, store, RestoreOptions{Name: "nightly", Database: createDatabase(t, mariadb, unique("again")), FilesDir: whole, Product: "espocrm"}); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, "file", tree(t, whole), tree(t, files))
}
