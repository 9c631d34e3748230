package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Database is how the agent reaches the environment's database. The
// password reaches the client tools through their environment, never argv.
type Database struct {
	Engine   string // postgresql or mariadb
	Host     string
	Port     int
	Name     string
	User     string
	Password string
	// BinDir holds the client tools; empty uses PATH (the database image's).
	BinDir string
	// AdminUser, when set, may create and drop databases: a MariaDB
	// restore then loads beside the database and swaps (restoreBeside).
	AdminUser     string
	AdminPassword string
}

func (d Database) tool(name string) string {
	if d.BinDir != "" {
		return d.BinDir + "/" + name
	}
	return name
}

func (d Database) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.tool(name), args...) //nolint:gosec // G204: name is one of the fixed dump/restore client tools
	env := os.Environ()
	switch d.Engine {
	case "postgresql":
		env = append(env, "PGPASSWORD="+d.Password, "PGCONNECT_TIMEOUT=30")
	case "mariadb":
		env = append(env, "MYSQL_PWD="+d.Password)
	}
	cmd.Env = env
	return cmd
}

// DumpCommand streams a logical dump that restores into an existing
// database, replacing what is there.
func (d Database) DumpCommand(ctx context.Context) (*exec.Cmd, error) {
	port := strconv.Itoa(d.Port)
	switch d.Engine {
	case "postgresql":
		return d.command(ctx, "pg_dump", "--host", d.Host, "--port", port, "--username", d.User, "--dbname", d.Name,
			"--clean", "--if-exists", "--no-owner", "--no-privileges"), nil
	case "mariadb":
		return d.command(ctx, "mariadb-dump", "--host", d.Host, "--port", port, "--user", d.User, "--protocol=tcp",
			"--single-transaction", "--routines", "--triggers", "--events", "--add-drop-table", d.Name), nil
	}
	return nil, fmt.Errorf("unknown database engine %q", d.Engine)
}

// clearPostgreSQL empties the database of everything a dump may hold, so
// that what the restore leaves equals the backup (objects created after it
// included): every schema but the system ones and public is dropped, and
// public is emptied of its tables, views, sequences, routines and types.
// Objects an extension owns stay (the dump re-creates extensions with IF
// NOT EXISTS). It runs in the load's transaction: a failed load rolls it
// back too.
const clearPostgreSQL = `DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
      WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = n.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
  END LOOP;
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE 'DROP ROUTINE IF EXISTS ' || r.sig || ' CASCADE';
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c', 'r', 'm') AND t.typrelid = 0
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname);
  END LOOP;
END $$;`

// LoadCommand reads a dump on stdin into the database, stopping at the
// first error. PostgreSQL loads it in one transaction after clearing the
// database (clearPostgreSQL): a failed load leaves the database as it was,
// a completed one equals the backup. MariaDB cannot roll DDL back: see
// clearMariaDB.
func (d Database) LoadCommand(ctx context.Context) (*exec.Cmd, error) {
	port := strconv.Itoa(d.Port)
	switch d.Engine {
	case "postgresql":
		return d.command(ctx, "psql", "--host", d.Host, "--port", port, "--username", d.User, "--dbname", d.Name,
			"--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--output", os.DevNull,
			"--single-transaction", "--command", clearPostgreSQL, "--file", "-"), nil
	case "mariadb":
		return d.command(ctx, "mariadb", "--host", d.Host, "--port", port, "--user", d.User, "--protocol=tcp", d.Name), nil
	}
	return nil, fmt.Errorf("unknown database engine %q", d.Engine)
}

// clearMariaDB drops every table and view of the database before a load, so
// that a completed restore equals the backup (tables created after it
// included). MariaDB commits each DDL statement at once: a load that fails
// half-way leaves a partly restored database, which the Restore reports as
// Failed with the application kept stopped.
func clearMariaDB(ctx context.Context, d Database) error {
	rows, err := query(ctx, d, "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = DATABASE()")
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("SET FOREIGN_KEY_CHECKS = 0;")
	for _, r := range rows {
		kind := "TABLE"
		if len(r) > 1 && r[1] == "VIEW" {
			kind = "VIEW"
		}
		fmt.Fprintf(&b, " DROP %s IF EXISTS `%s`;", kind, strings.ReplaceAll(r[0], "`", "``"))
	}
	_, err = query(ctx, d, b.String())
	return err
}

// WaitForDatabase dials the database until it accepts a connection, for at
// most within: a NetworkPolicy engine admits a new pod's address a moment
// after the pod starts, and a database may be starting (a hibernated one
// woken for a backup).
func WaitForDatabase(ctx context.Context, d Database, within time.Duration) error {
	addr := net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	deadline := time.Now().Add(within)
	dialer := net.Dialer{Timeout: 2 * time.Second}
	// Soon at first (a policy engine admits a new pod within a second or
	// so, and a restore's downtime waits on it), then at most once a second.
	pause := 50 * time.Millisecond
	for {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database %s accepts no connection after %s: %w", addr, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// loadInTransaction loads a PostgreSQL dump while it is read from body (a
// download), in one transaction that commits only if verify, called once
// body is read to its end, passes, and finish (SQL run after the dump:
// treatmentSQL) succeeds: on any failure psql is killed before it sees the
// end of its input or stops at the failing statement, so the server rolls
// everything back and the database is as it was. MariaDB commits its DDL at
// once: see restoreBeside.
func loadInTransaction(ctx context.Context, d Database, body io.Reader, verify func() error, finish string) error {
	if d.Engine != "postgresql" {
		return fmt.Errorf("a streamed load needs PostgreSQL's transactional DDL, not %s", d.Engine)
	}
	if err := CheckTools(ctx, d); err != nil {
		return err
	}
	l, err := startLoad(ctx, d) // --single-transaction: COMMIT at the end of the input
	if err != nil {
		return err
	}
	if err := l.feed(body); err != nil {
		// A corrupt object is the likelier cause of a failed load: say so.
		werr := l.kill()
		if verr := verify(); verr != nil {
			err = verr
		} else if werr != nil && !strings.Contains(werr.Error(), "signal: killed") {
			err = fmt.Errorf("%w (%v)", err, werr)
		}
		return fmt.Errorf("%w: nothing restored (the load's transaction was rolled back)", err)
	}
	if err := verify(); err != nil {
		_ = l.kill()
		return fmt.Errorf("%w: nothing restored (the load's transaction was rolled back)", err)
	}
	if finish != "" {
		if _, err := io.WriteString(l.stdin, "\n"+finish); err != nil {
			_ = l.kill()
			return err
		}
	}
	if err := l.stdin.Close(); err != nil {
		_ = l.kill()
		return err
	}
	if err := l.wait(); err != nil {
		return fmt.Errorf("%w: nothing restored (the load's transaction was rolled back)", err)
	}
	return nil
}

// streamedLoad is a load command being fed a dump on its stdin.
type streamedLoad struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wait  func() error
}

// startLoad starts d's load command with its stdin open.
func startLoad(ctx context.Context, d Database) (*streamedLoad, error) {
	cmd, err := d.LoadCommand(ctx)
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	wait, err := runWait(cmd)
	if err != nil {
		return nil, err
	}
	return &streamedLoad{cmd: cmd, stdin: stdin, wait: wait}, nil
}

// feed writes body, decompressed, to the load; stdin stays open (a
// transaction commits only when it closes).
func (l *streamedLoad) feed(body io.Reader) error {
	dec, err := newStreamDecoder(body)
	if err != nil {
		return err
	}
	defer dec.Close()
	_, err = io.Copy(l.stdin, dec)
	return err
}

// kill stops the load before the end of its input and waits for it.
func (l *streamedLoad) kill() error {
	_ = l.cmd.Process.Kill()
	return l.wait()
}

// runWait starts cmd with its output (dump) or input (load) connected
// and returns a wait function that reports the command's error with stderr.
func runWait(cmd *exec.Cmd) (func() error, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() error {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%s: %w: %s", cmd.Args[0], err, strings.TrimSpace(lastLines(stderr.String(), 5)))
		}
		return nil
	}, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CheckTools refuses to work on a PostgreSQL server of a newer major
// version than this image's client tools (pg_dump refuses such a server
// half-way through a backup's start; psql would load a dump it cannot
// judge): the message names both versions and how to choose the tools.
func CheckTools(ctx context.Context, d Database) error {
	if d.Engine != "postgresql" {
		return nil // mariadb-dump reads older and newer servers alike
	}
	out, err := d.command(ctx, "pg_dump", "--version").Output()
	if err != nil {
		return fmt.Errorf("pg_dump --version: %w", err)
	}
	tools := majorOf(string(out))
	rows, err := query(ctx, d, "SHOW server_version_num")
	if err != nil {
		return err
	}
	server := 0
	if len(rows) == 1 && len(rows[0]) == 1 {
		if n, err := strconv.Atoi(strings.TrimSpace(rows[0][0])); err == nil {
			server = n / 10000
		}
	}
	if tools > 0 && server > tools {
		return fmt.Errorf("the database server runs PostgreSQL %d, this Job's client tools are PostgreSQL %d (%s): "+
			"set spec.database.external.serverVersion to %d so that backup Jobs run the postgres:%d image",
			server, tools, strings.TrimSpace(string(out)), server, server)
	}
	return nil
}

// majorOf reads the major version from "pg_dump (PostgreSQL) 16.6 (Debian 16.6-1)".
func majorOf(version string) int {
	for _, f := range strings.Fields(version) {
		if n, err := strconv.Atoi(strings.SplitN(f, ".", 2)[0]); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// dump returns a reader of the database dump; the reader fails if the dump
// tool fails, so a broken dump never reaches the store as complete.
func dump(ctx context.Context, d Database) (io.ReadCloser, error) {
	if err := CheckTools(ctx, d); err != nil {
		return nil, err
	}
	cmd, err := d.DumpCommand(ctx)
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	wait, err := runWait(cmd)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, out)
		if werr := wait(); werr != nil {
			err = werr
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// load pipes r into the database.
func load(ctx context.Context, d Database, r io.Reader) error {
	if err := CheckTools(ctx, d); err != nil {
		return err
	}
	if d.Engine == "mariadb" {
		if err := clearMariaDB(ctx, d); err != nil {
			return fmt.Errorf("clearing the database before the load: %w", err)
		}
	}
	cmd, err := d.LoadCommand(ctx)
	if err != nil {
		return err
	}
	cmd.Stdin = r
	wait, err := runWait(cmd)
	if err != nil {
		return err
	}
	return wait()
}
