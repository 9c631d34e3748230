package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strings"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// query runs one statement with the engine's client and returns its rows as
// tab-separated fields.
func query(ctx context.Context, d Database, statement string) ([][]string, error) {
	var cmd = d.command(ctx, "mariadb", "--host", d.Host, "--port", fmt.Sprint(d.Port), "--user", d.User, "--protocol=tcp",
		"--batch", "--skip-column-names", "-e", statement, d.Name)
	if d.Engine == "postgresql" {
		cmd = d.command(ctx, "psql", "--host", d.Host, "--port", fmt.Sprint(d.Port), "--username", d.User, "--dbname", d.Name,
			"--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--field-separator=\t", "--set", "ON_ERROR_STOP=1", "-c", statement)
	}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %w: %s", cmd.Args[0], err, strings.TrimSpace(lastLines(string(ee.Stderr), 12)))
		}
		return nil, fmt.Errorf("%s: %w", cmd.Args[0], err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

// pseudonym is SQL common to PostgreSQL and MariaDB that replaces a value by
// a deterministic pseudonym: the same original gives the same result in
// every table, so that relations and duplicates stay consistent, while the
// salt keeps it from being reversed by hashing guesses.
func pseudonym(kind crm.PersonalData, column, salt string) string {
	h := func(n int) string {
		return fmt.Sprintf("SUBSTRING(MD5(CONCAT('%s', LOWER(%s))), 1, %d)", salt, column, n)
	}
	var expr string
	switch kind {
	case crm.Email:
		expr = fmt.Sprintf("CONCAT('person-', %s, '@example.invalid')", h(12))
	case crm.Name:
		expr = fmt.Sprintf("CONCAT('Person ', %s)", h(8))
	case crm.Phone:
		expr = fmt.Sprintf("CONCAT('+000', %s)", h(10))
	case crm.Address:
		expr = fmt.Sprintf("CONCAT('Street ', %s)", h(6))
	default:
		expr = fmt.Sprintf("CONCAT('[anonymized ', %s, ']')", h(8))
	}
	return fmt.Sprintf("CASE WHEN %s IS NULL OR %s = '' THEN %s ELSE %s END", column, column, column, expr)
}

// AnonymizeResult tells what was rewritten.
type AnonymizeResult struct {
	Columns  []string `json:"columns"`
	Disabled int      `json:"disabled"`
}

// Anonymize rewrites the personal data of a product's database in place
// (a copy of production restored into another environment) and switches
// off outgoing mail and scheduled jobs there. Columns the schema lacks are
// skipped; everything runs in one transaction.
func Anonymize(ctx context.Context, d Database, product, salt string) (AnonymizeResult, error) {
	rules, ok := crm.AnonymizationFor(crmProduct(product))
	if !ok {
		return AnonymizeResult{}, fmt.Errorf("no anonymization rules for product %q", product)
	}
	if strings.ContainsAny(salt, `'\`) || len(salt) < 16 {
		return AnonymizeResult{}, fmt.Errorf("the anonymization salt must be at least 16 characters without quotes")
	}
	present, err := schemaColumns(ctx, d)
	if err != nil {
		return AnonymizeResult{}, err
	}
	byTable := map[string][]string{}
	var res AnonymizeResult
	for _, c := range rules.Columns {
		if !present[c.Table+"."+c.Column] {
			continue
		}
		col := quoteIdent(d.Engine, c.Column)
		byTable[c.Table] = append(byTable[c.Table], fmt.Sprintf("%s = %s", col, pseudonym(c.Kind, col, salt)))
		res.Columns = append(res.Columns, c.Table+"."+c.Column)
	}
	names := make([]string, 0, len(byTable))
	for t := range byTable {
		names = append(names, t)
	}
	sort.Strings(names)
	var stmts []string
	for _, t := range names {
		stmts = append(stmts, fmt.Sprintf("UPDATE %s SET %s", quoteIdent(d.Engine, t), strings.Join(byTable[t], ", ")))
	}
	for _, s := range rules.Disable {
		if present[statementTable(s)] {
			stmts = append(stmts, s)
			res.Disabled++
		}
	}
	script := "START TRANSACTION;\n" + strings.Join(stmts, ";\n") + ";\nCOMMIT;"
	if d.Engine == "postgresql" {
		script = "BEGIN;\n" + strings.Join(stmts, ";\n") + ";\nCOMMIT;"
	}
	if len(stmts) == 0 {
		return res, fmt.Errorf("none of the product's personal-data columns exist in database %s", d.Name)
	}
	if _, err := query(ctx, d, script); err != nil {
		return AnonymizeResult{}, fmt.Errorf("anonymizing: %w", err)
	}
	return res, nil
}

// schemaColumns is the set of the database's tables and columns, as "table"
// and "table.column".
func schemaColumns(ctx context.Context, d Database) (map[string]bool, error) {
	schema := "DATABASE()"
	if d.Engine == "postgresql" {
		schema = "current_schema()"
	}
	rows, err := query(ctx, d, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = "+schema)
	if err != nil {
		return nil, fmt.Errorf("reading the schema: %w", err)
	}
	present := map[string]bool{}
	for _, r := range rows {
		if len(r) == 2 {
			present[r[0]] = true
			present[r[0]+"."+r[1]] = true
		}
	}
	return present, nil
}

// statementTable names the table of an UPDATE t ... or DELETE FROM t ... statement.
func statementTable(statement string) string {
	f := strings.Fields(statement)
	if len(f) > 2 && strings.EqualFold(f[0], "DELETE") {
		return f[2]
	}
	if len(f) > 1 {
		return f[1]
	}
	return ""
}

func quoteIdent(engine, name string) string {
	if engine == "postgresql" {
		return `"` + name + `"`
	}
	return "`" + name + "`"
}

func crmProduct(p string) crmv1alpha1.ProductName { return crmv1alpha1.ProductName(p) }

// Subject names the people to erase: one by e-mail address, or any number by
// the salted SHA-256 of their lowercased address (hex), which is all that is
// kept once an erasure is done and is enough to apply it again after a restore.
type Subject struct {
	Email  string
	Hashes []string
	Salt   string
}

// ParseHashes reads a comma-separated list of subject hashes.
func ParseHashes(s string) []string {
	var hs []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	return hs
}

// SubjectHash is the salted hash an erasure is remembered by.
func SubjectHash(salt, email string) string {
	sum := sha256.Sum256([]byte(salt + strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])
}

var subjectExpr = regexp.MustCompile(`\{subject:([^}]+)\}`)

// matchSQL renders the condition "EXPR holds the subject's address".
func (s Subject) matchSQL(engine, expr string) (string, error) {
	if s.Email != "" {
		email := strings.ToLower(strings.TrimSpace(s.Email))
		if strings.ContainsAny(email, "\\\x00") {
			return "", fmt.Errorf("invalid subject e-mail address")
		}
		return fmt.Sprintf("LOWER(%s) = '%s'", expr, strings.ReplaceAll(email, "'", "''")), nil
	}
	if strings.ContainsAny(s.Salt, `'\`) || s.Salt == "" {
		return "", fmt.Errorf("invalid erasure salt")
	}
	for _, h := range s.Hashes {
		if !hexHash.MatchString(h) {
			return "", fmt.Errorf("invalid subject hash")
		}
	}
	list := "'" + strings.Join(s.Hashes, "', '") + "'"
	if engine == "postgresql" {
		return fmt.Sprintf("encode(sha256(convert_to(CONCAT('%s', LOWER(%s)), 'UTF8')), 'hex') IN (%s)", s.Salt, expr, list), nil
	}
	return fmt.Sprintf("SHA2(CONCAT('%s', LOWER(%s)), 256) IN (%s)", s.Salt, expr, list), nil
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Erase removes one person from a product's database in one transaction.
// Tables the schema lacks are skipped, and assignments to columns it lacks
// left out. It reports how many statements ran.
func Erase(ctx context.Context, d Database, product string, subject Subject) (int, error) {
	rules, ok := crm.ErasureFor(crmProduct(product))
	if !ok {
		return 0, fmt.Errorf("no erasure rules for product %q", product)
	}
	if subject.Email == "" && len(subject.Hashes) == 0 {
		return 0, fmt.Errorf("no subject to erase")
	}
	columns, err := schemaColumns(ctx, d)
	if err != nil {
		return 0, err
	}
	var stmts []string
	for _, step := range rules.Steps {
		var set []string
		for _, a := range step.Set {
			if columns[step.Table+"."+strings.Trim(strings.Fields(a)[0], "`")] {
				set = append(set, a)
			}
		}
		if len(set) == 0 {
			continue
		}
		var merr error
		where := subjectExpr.ReplaceAllStringFunc(step.Where, func(m string) string {
			cond, err := subject.matchSQL(d.Engine, subjectExpr.FindStringSubmatch(m)[1])
			if err != nil {
				merr = err
			}
			return cond
		})
		if merr != nil {
			return 0, merr
		}
		s := fmt.Sprintf("UPDATE %s SET %s WHERE %s", step.Table, strings.Join(set, ", "), where)
		if d.Engine == "postgresql" {
			s = strings.ReplaceAll(s, "`", `"`)
		}
		stmts = append(stmts, s)
	}
	if len(stmts) == 0 {
		return 0, fmt.Errorf("none of the product's tables exist in database %s", d.Name)
	}
	begin := "START TRANSACTION;\n"
	if d.Engine == "postgresql" {
		begin = "BEGIN;\n"
	}
	if _, err := query(ctx, d, begin+strings.Join(stmts, ";\n")+";\nCOMMIT;"); err != nil {
		return 0, fmt.Errorf("erasing: %w", err)
	}
	return len(stmts), nil
}
