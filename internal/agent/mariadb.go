package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// A MariaDB restore with an administrator's credentials loads the dump
// into a staging database beside the environment's while it downloads, and
// only once the download's checksum matched (and the copy was anonymized or
// erasures re-applied, when asked) swaps the staging tables in with one
// RENAME TABLE, which MariaDB performs atomically across tables. A corrupt
// dump, a load that fails half-way or a full volume leaves the environment's
// database as it was; the download costs no time of its own. MariaDB
// commits each DDL statement at once, so this is the only way its restore
// can be all or nothing.
//
// RENAME TABLE cannot carry views or a table's triggers into another
// database: a dump that holds views, triggers, routines or events is
// restored in place instead (errRestoreInPlace), as without the credentials.

// errRestoreInPlace says the staged restore cannot take this dump.
var errRestoreInPlace = errors.New("the dump holds views, triggers, routines or events, which cannot be moved between databases")

// maxDatabaseName is MariaDB's limit on a database name's length.
const maxDatabaseName = 64

// stagingNames are the databases a staged restore of target uses: the copy
// being loaded, and the one the replaced tables pass through on their way
// out.
func stagingNames(target string) (staging, replaced string) {
	return target + "_restoring", target + "_replaced"
}

// canStage reports whether a restore into d can load beside the database
// and swap: MariaDB with an administrator, and a name short enough for the
// staging databases'.
func (d Database) canStage() bool {
	_, replaced := stagingNames(d.Name)
	return d.Engine == "mariadb" && d.AdminUser != "" && len(replaced) <= maxDatabaseName
}

// asAdmin is d reached with the administrator's credentials, in database name.
func (d Database) asAdmin(name string) Database {
	d.User, d.Password, d.Name = d.AdminUser, d.AdminPassword, name
	return d
}

func quoteName(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// restoreBeside loads body into the staging database, calls verify once body
// is read to its end, then treat on the staging copy, then swaps the copy's
// tables in. Any failure before the swap drops the staging database and
// leaves the target untouched.
func restoreBeside(ctx context.Context, d Database, body io.Reader, verify func() error, treat func(Database) error) (err error) {
	staging, replaced := stagingNames(d.Name)
	admin := d.asAdmin(d.Name)
	drop := func() {
		// Also when ctx is cancelled: nothing of the restore stays behind.
		_, _ = query(context.WithoutCancel(ctx), admin, "DROP DATABASE IF EXISTS "+quoteName(staging)+"; DROP DATABASE IF EXISTS "+quoteName(replaced))
	}
	// What a killed restore left (its deferred drop never ran) goes first.
	if _, err := query(ctx, admin, fmt.Sprintf("DROP DATABASE IF EXISTS %[1]s; DROP DATABASE IF EXISTS %[2]s; CREATE DATABASE %[1]s", quoteName(staging), quoteName(replaced))); err != nil {
		return fmt.Errorf("creating the staging database %s: %w", staging, err)
	}
	defer func() {
		if err != nil {
			drop()
		}
	}()
	copyDB := d.asAdmin(staging)
	l, err := startLoad(ctx, copyDB)
	if err != nil {
		return err
	}
	// The copy is disposable: whatever the load did stays in it.
	err = l.feed(body)
	_ = l.stdin.Close()
	werr := l.wait()
	// A corrupt object is the likelier cause of a failed load: say so first.
	if verr := verify(); verr != nil {
		return fmt.Errorf("%w: nothing restored (the database is as it was)", verr)
	}
	if err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("loading beside the database: %w: nothing restored (the database is as it was)", err)
	}
	others, err := query(ctx, admin, "SELECT "+schemaObjects(staging))
	if err != nil {
		return err
	}
	if len(others) != 1 || len(others[0]) != 1 || others[0][0] != "0" {
		return errRestoreInPlace
	}
	if err := treat(copyDB); err != nil {
		return fmt.Errorf("%w: nothing restored (the database is as it was)", err)
	}
	return swapIn(ctx, admin, staging, replaced)
}

// DropLeftovers drops the staging databases a staged restore of d that was
// killed (SIGKILL, a lost node: its deferred cleanup never ran) left on the
// server: the copy being loaded holds raw rows of a backup, beyond the reach
// of erasures and of the database's own access rules. Erasure Jobs run it
// before they erase, so an erased person survives in no leftover; the next
// restore does the same. Without an administrator (or for PostgreSQL, whose
// restore loads in one transaction and leaves nothing) there is nothing to do.
func DropLeftovers(ctx context.Context, d Database) error {
	if !d.canStage() {
		return nil
	}
	staging, replaced := stagingNames(d.Name)
	_, err := query(ctx, d.asAdmin(d.Name), "DROP DATABASE IF EXISTS "+quoteName(staging)+"; DROP DATABASE IF EXISTS "+quoteName(replaced))
	if err != nil {
		return fmt.Errorf("dropping what an interrupted restore left (%s, %s): %w", staging, replaced, err)
	}
	return nil
}

// schemaObjects counts the views, triggers, routines and events of schema.
func schemaObjects(schema string) string {
	s := quoteString(schema)
	return "(SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = " + s + " AND table_type = 'VIEW')" +
		" + (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = " + s + ")" +
		" + (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = " + s + ")" +
		" + (SELECT COUNT(*) FROM information_schema.events WHERE event_schema = " + s + ")"
}

// swapIn replaces the target's tables by the staging database's in one
// RENAME TABLE, then drops the replaced ones. The target's views and
// triggers go first (they were not in the backup, and a table with
// triggers cannot move to another database); its routines and events stay,
// as an in-place load leaves them.
func swapIn(ctx context.Context, admin Database, staging, replaced string) error {
	target := admin.Name
	list := func(schema, q string) ([]string, error) {
		rows, err := query(ctx, admin, fmt.Sprintf(q, quoteString(schema)))
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(rows))
		for _, r := range rows {
			names = append(names, r[0])
		}
		return names, nil
	}
	const tablesOf = "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type <> 'VIEW'"
	old, err := list(target, tablesOf)
	if err != nil {
		return err
	}
	restored, err := list(staging, tablesOf)
	if err != nil {
		return err
	}
	views, err := list(target, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'VIEW'")
	if err != nil {
		return err
	}
	triggers, err := list(target, "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = %s")
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, t := range triggers {
		fmt.Fprintf(&b, "DROP TRIGGER IF EXISTS %s.%s; ", quoteName(target), quoteName(t))
	}
	for _, v := range views {
		fmt.Fprintf(&b, "DROP VIEW IF EXISTS %s.%s; ", quoteName(target), quoteName(v))
	}
	fmt.Fprintf(&b, "DROP DATABASE IF EXISTS %[1]s; CREATE DATABASE %[1]s; ", quoteName(replaced))
	var renames []string
	for _, t := range old {
		renames = append(renames, fmt.Sprintf("%s.%s TO %s.%s", quoteName(target), quoteName(t), quoteName(replaced), quoteName(t)))
	}
	for _, t := range restored {
		renames = append(renames, fmt.Sprintf("%s.%s TO %s.%s", quoteName(staging), quoteName(t), quoteName(target), quoteName(t)))
	}
	if len(renames) > 0 {
		b.WriteString("RENAME TABLE " + strings.Join(renames, ", ") + "; ")
	}
	fmt.Fprintf(&b, "DROP DATABASE %s; DROP DATABASE %s", quoteName(replaced), quoteName(staging))
	if _, err := query(ctx, admin, b.String()); err != nil {
		return fmt.Errorf("swapping the restored tables in: %w", err)
	}
	return nil
}
