package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crmops/crm-operator/internal/crm"
)

// treatmentSQL renders what a PostgreSQL restore applies to the loaded data
// (the erasures again, then the anonymization, as Erase and Anonymize do)
// as one DO block that loadInTransaction runs inside the load's transaction,
// before its commit. Each column is looked up in the restored schema when
// the block runs; any failure, "none of the product's columns exist"
// included, rolls the whole restore back: a copy of production is never
// committed un-anonymized, nor a person erased since the backup committed
// back. Empty when the restore asks for neither.
func treatmentSQL(product string, erasures *Subject, salt string) (string, error) {
	if erasures == nil && salt == "" {
		return "", nil
	}
	var b strings.Builder
	literal := func(sql string) (string, error) {
		if strings.Contains(sql, "$q$") {
			return "", fmt.Errorf("a statement of the rules contains $q$")
		}
		return "$q$" + sql + "$q$::text", nil
	}
	column := func(table, col string) string {
		return fmt.Sprintf("EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '%s' AND column_name = '%s')", table, col)
	}
	// pg_dump's output empties search_path; the product's tables are in the
	// connection's default schema, as for Erase and Anonymize.
	b.WriteString("RESET search_path;\nDO $crm_treat$\nDECLARE sets text[]; done int := 0;\nBEGIN\n")
	if erasures != nil {
		rules, ok := crm.ErasureFor(crmProduct(product))
		if !ok {
			return "", fmt.Errorf("no erasure rules for product %q", product)
		}
		if erasures.Email == "" && len(erasures.Hashes) == 0 {
			return "", fmt.Errorf("no subject to erase")
		}
		for _, step := range rules.Steps {
			b.WriteString("sets := ARRAY[]::text[];\n")
			for _, a := range step.Set {
				set, err := literal(strings.ReplaceAll(a, "`", `"`))
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "IF %s THEN sets := sets || %s; END IF;\n", column(step.Table, strings.Trim(strings.Fields(a)[0], "`")), set)
			}
			var merr error
			where := subjectExpr.ReplaceAllStringFunc(step.Where, func(m string) string {
				cond, err := erasures.matchSQL("postgresql", subjectExpr.FindStringSubmatch(m)[1])
				if err != nil {
					merr = err
				}
				return cond
			})
			if merr != nil {
				return "", merr
			}
			cond, err := literal(strings.ReplaceAll(where, "`", `"`))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "IF cardinality(sets) > 0 THEN EXECUTE 'UPDATE %s SET ' || array_to_string(sets, ', ') || ' WHERE ' || %s; done := done + 1; END IF;\n",
				strings.ReplaceAll(step.Table, "`", `"`), cond)
		}
		b.WriteString("IF done = 0 THEN RAISE EXCEPTION 'none of the product''s tables exist: the erasures cannot be applied again'; END IF;\ndone := 0;\n")
	}
	if salt != "" {
		rules, ok := crm.AnonymizationFor(crmProduct(product))
		if !ok {
			return "", fmt.Errorf("no anonymization rules for product %q", product)
		}
		if strings.ContainsAny(salt, `'\`) || len(salt) < 16 {
			return "", fmt.Errorf("the anonymization salt must be at least 16 characters without quotes")
		}
		var tables []string
		for _, c := range rules.Columns {
			if !slices.Contains(tables, c.Table) {
				tables = append(tables, c.Table)
			}
		}
		slices.Sort(tables)
		for _, table := range tables {
			b.WriteString("sets := ARRAY[]::text[];\n")
			for _, c := range rules.Columns {
				if c.Table != table {
					continue
				}
				col := quoteIdent("postgresql", c.Column)
				set, err := literal(fmt.Sprintf("%s = %s", col, pseudonym(c.Kind, col, salt)))
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "IF %s THEN sets := sets || %s; done := done + 1; END IF;\n", column(table, c.Column), set)
			}
			fmt.Fprintf(&b, "IF cardinality(sets) > 0 THEN EXECUTE 'UPDATE %s SET ' || array_to_string(sets, ', '); END IF;\n", quoteIdent("postgresql", table))
		}
		for _, s := range rules.Disable {
			stmt, err := literal(s)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "IF EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '%s') THEN EXECUTE %s; done := done + 1; END IF;\n",
				statementTable(s), stmt)
		}
		b.WriteString("IF done = 0 THEN RAISE EXCEPTION 'none of the product''s personal-data columns exist in the restored database'; END IF;\n")
	}
	b.WriteString("END $crm_treat$;\n")
	return b.String(), nil
}
