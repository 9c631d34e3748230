package crm

import (
	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// PersonalData is the kind of personal data a column holds; it picks the
// pseudonym that replaces it.
type PersonalData string

// The kinds of personal data.
const (
	Name    PersonalData = "name"
	Email   PersonalData = "email"
	Phone   PersonalData = "phone"
	Address PersonalData = "address"
	Text    PersonalData = "text"
)

// Column is one column of a product's database holding personal data.
type Column struct {
	Table, Column string
	Kind          PersonalData
}

// Anonymization says how to anonymize a copy of a product's database: the
// columns to pseudonymize and the statements that switch off outgoing mail
// and scheduled jobs in the copy. Tables or columns a version lacks are skipped.
type Anonymization struct {
	Columns []Column
	// Disable are statements run after the columns are rewritten.
	Disable []string
}

// AnonymizationFor returns the rules of a product; custom products have none.
func AnonymizationFor(p crmv1alpha1.ProductName) (Anonymization, bool) {
	a, ok := anonymizations[p]
	return a, ok
}

var anonymizations = map[crmv1alpha1.ProductName]Anonymization{
	// SuiteCRM's schema (SuiteCRM 7 tables under SuiteCRM 8, MariaDB): people
	// in contacts, leads and accounts; e-mail addresses in email_addresses
	// linked by email_addr_bean_rel; e-mail bodies in emails_text; free text
	// in notes. Schedulers have a status, outgoing mail servers a host, and
	// queued jobs wait in job_queue.
	crmv1alpha1.ProductSuiteCRM: {
		Columns: []Column{
			{"contacts", "first_name", Name}, {"contacts", "last_name", Name}, {"contacts", "description", Text},
			{"contacts", "phone_home", Phone}, {"contacts", "phone_mobile", Phone}, {"contacts", "phone_work", Phone}, {"contacts", "phone_other", Phone},
			{"contacts", "primary_address_street", Address}, {"contacts", "primary_address_city", Address}, {"contacts", "primary_address_postalcode", Address},
			{"contacts", "alt_address_street", Address}, {"contacts", "assistant", Name}, {"contacts", "assistant_phone", Phone},
			{"leads", "first_name", Name}, {"leads", "last_name", Name}, {"leads", "account_name", Name}, {"leads", "description", Text},
			{"leads", "phone_mobile", Phone}, {"leads", "phone_work", Phone}, {"leads", "primary_address_street", Address}, {"leads", "primary_address_city", Address},
			{"accounts", "description", Text}, {"accounts", "phone_office", Phone}, {"accounts", "billing_address_street", Address},
			{"email_addresses", "email_address", Email}, {"email_addresses", "email_address_caps", Email},
			{"notes", "name", Text}, {"notes", "description", Text},
			{"emails_text", "description", Text}, {"emails_text", "description_html", Text}, {"emails_text", "from_addr", Email},
			{"emails_text", "to_addrs", Text}, {"emails_text", "cc_addrs", Text},
		},
		Disable: []string{
			"UPDATE schedulers SET status = 'Inactive'",
			"UPDATE outbound_email SET mail_smtpserver = 'mail-disabled.invalid'",
			"DELETE FROM job_queue WHERE status = 'queued'",
			"UPDATE inbound_email SET status = 'Inactive'",
		},
	},
	// EspoCRM's schema (MariaDB, snake_case): people in contact, lead, account
	// and user; e-mail addresses and phone numbers in their own tables linked
	// to entities; free text in note.post, email bodies and descriptions.
	// Mail accounts and scheduled jobs have a status column.
	crmv1alpha1.ProductEspoCRM: {
		Columns: []Column{
			{"contact", "first_name", Name}, {"contact", "last_name", Name}, {"contact", "description", Text},
			{"contact", "address_street", Address}, {"contact", "address_city", Address}, {"contact", "address_postal_code", Address},
			{"lead", "first_name", Name}, {"lead", "last_name", Name}, {"lead", "account_name", Name}, {"lead", "description", Text},
			{"lead", "address_street", Address}, {"lead", "address_city", Address},
			{"account", "description", Text}, {"account", "billing_address_street", Address},
			{"email_address", "name", Email}, {"email_address", "lower", Email},
			{"phone_number", "name", Phone}, {"phone_number", "numeric", Phone},
			{"note", "post", Text},
			{"email", "name", Text}, {"email", "body", Text}, {"email", "body_plain", Text}, {"email", "from_string", Email},
		},
		Disable: []string{
			"UPDATE scheduled_job SET status = 'Inactive'",
			"UPDATE inbound_email SET status = 'Inactive'",
			"UPDATE email_account SET status = 'Inactive'",
		},
	},
	// Odoo's schema (PostgreSQL): partners (people and companies) in
	// res_partner, leads in crm_lead, chatter in mail_message; outgoing mail
	// servers in ir_mail_server, scheduled actions in ir_cron.
	crmv1alpha1.ProductOdoo: {
		Columns: []Column{
			{"res_partner", "name", Name}, {"res_partner", "complete_name", Name}, {"res_partner", "email", Email},
			{"res_partner", "phone", Phone}, {"res_partner", "mobile", Phone}, {"res_partner", "street", Address},
			{"res_partner", "street2", Address}, {"res_partner", "city", Address}, {"res_partner", "zip", Address},
			{"res_partner", "comment", Text}, {"res_partner", "vat", Text},
			{"crm_lead", "contact_name", Name}, {"crm_lead", "partner_name", Name}, {"crm_lead", "email_from", Email},
			{"crm_lead", "phone", Phone}, {"crm_lead", "description", Text}, {"crm_lead", "street", Address},
			{"mail_message", "body", Text}, {"mail_message", "email_from", Email}, {"mail_message", "subject", Text},
		},
		Disable: []string{
			"UPDATE ir_mail_server SET active = false",
			"UPDATE ir_cron SET active = false",
			// The copy's filestore holds no attachments (PersonalFile):
			// the asset bundles' rows go too, so that Odoo builds them anew
			// rather than serving bundles whose files are missing
			// (odoo/odoo addons/base/models/assetsbundle.py get_attachments
			// reads only the rows).
			"DELETE FROM ir_attachment WHERE res_model = 'ir.ui.view' AND res_id = 0 AND url LIKE '/web/assets/%'",
		},
	},
}

// Erasure lists how to erase one person (GDPR Art. 17) from a product's
// database: records that reference the person are overwritten rather than
// deleted, so that foreign keys and the history of other people stay intact.
type Erasure struct {
	// Steps run in order, in one transaction.
	Steps []ErasureStep
}

// ErasureStep overwrites the rows of one table that reference the person.
// A table a version lacks is skipped, and so is an assignment to a column
// the table lacks (Odoo 19's res_partner has no mobile): an erasure must
// not fail on the columns one version dropped.
type ErasureStep struct {
	Table string
	// Set are the assignments, "column = value" (a column in backquotes if
	// it is a reserved word).
	Set []string
	// Where selects the rows. {subject:EXPR} stands for a condition true
	// when the e-mail address in the SQL expression EXPR is the subject's
	// (the agent matches the address itself, or its salted hash, so that an
	// erasure can be re-applied without keeping the address).
	Where string
}

// ErasureFor returns the erasure of a product; custom products have none.
func ErasureFor(p crmv1alpha1.ProductName) (Erasure, bool) {
	e, ok := erasures[p]
	return e, ok
}

// Conditions the steps share: the entities an e-mail address is linked to.
const (
	suiteBeans = "id IN (SELECT r.bean_id FROM email_addr_bean_rel r JOIN email_addresses e ON e.id = r.email_address_id WHERE {subject:e.email_address})"
	espoEntity = "id IN (SELECT x.entity_id FROM entity_email_address x JOIN email_address e ON e.id = x.email_address_id WHERE {subject:e.`lower`})"
	odooAuthor = "author_id IN (SELECT id FROM res_partner WHERE {subject:LOWER(email)})"
)

var erasures = map[crmv1alpha1.ProductName]Erasure{
	crmv1alpha1.ProductSuiteCRM: {Steps: []ErasureStep{
		{"contacts", []string{"first_name = 'Erased'", "last_name = 'Erased'", "description = NULL", "phone_home = NULL", "phone_mobile = NULL",
			"phone_work = NULL", "phone_other = NULL", "primary_address_street = NULL", "primary_address_city = NULL",
			"primary_address_postalcode = NULL", "alt_address_street = NULL", "assistant = NULL", "assistant_phone = NULL"}, suiteBeans},
		{"leads", []string{"first_name = 'Erased'", "last_name = 'Erased'", "account_name = NULL", "description = NULL", "phone_mobile = NULL",
			"phone_work = NULL", "primary_address_street = NULL", "primary_address_city = NULL"}, suiteBeans},
		{"notes", []string{"name = '[erased]'", "description = NULL"}, "parent_" + suiteBeans},
		{"emails_text", []string{"description = NULL", "description_html = NULL", "from_addr = NULL", "to_addrs = NULL", "cc_addrs = NULL"}, "{subject:from_addr}"},
		{"email_addresses", []string{"email_address = CONCAT('erased-', id, '@example.invalid')",
			"email_address_caps = UPPER(CONCAT('erased-', id, '@example.invalid'))"}, "{subject:email_address}"},
	}},
	crmv1alpha1.ProductEspoCRM: {Steps: []ErasureStep{
		{"contact", []string{"first_name = 'Erased'", "last_name = 'Erased'", "description = NULL", "address_street = NULL", "address_city = NULL",
			"address_postal_code = NULL"}, espoEntity},
		{"lead", []string{"first_name = 'Erased'", "last_name = 'Erased'", "account_name = NULL", "description = NULL", "address_street = NULL",
			"address_city = NULL"}, espoEntity},
		{"note", []string{"post = '[erased]'"}, "parent_" + espoEntity},
		{"email", []string{"name = '[erased]'", "body = NULL", "body_plain = NULL", "from_string = NULL"}, "{subject:LOWER(from_string)}"},
		{"email_address", []string{"name = CONCAT('erased-', id, '@example.invalid')", "`lower` = CONCAT('erased-', id, '@example.invalid')"}, "{subject:`lower`}"},
	}},
	crmv1alpha1.ProductOdoo: {Steps: []ErasureStep{
		{"mail_message", []string{"body = '[erased]'", "email_from = NULL", "subject = NULL"}, "{subject:LOWER(email_from)} OR " + odooAuthor},
		{"crm_lead", []string{"contact_name = 'Erased'", "partner_name = NULL", "email_from = NULL", "phone = NULL",
			"description = NULL", "street = NULL"}, "{subject:LOWER(email_from)} OR partner_id IN (SELECT id FROM res_partner WHERE {subject:LOWER(email)})"},
		{"res_partner", []string{"name = 'Erased'", "complete_name = 'Erased'", "email = NULL", "phone = NULL", "mobile = NULL", "street = NULL",
			"street2 = NULL", "city = NULL", "zip = NULL", "comment = NULL", "vat = NULL"}, "{subject:LOWER(email)}"},
	}},
}
