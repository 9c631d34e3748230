package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// LoadCommand reads a dump on stdin into the database, stopping at the first error.
func (d Database) LoadCommand(ctx context.Context) (*exec.Cmd, error) {
	port := strconv.Itoa(d.Port)
	switch d.Engine {
	case "postgresql":
		return d.command(ctx, "psql", "--host", d.Host, "--port", port, "--username", d.User, "--dbname", d.Name,
			"--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--output", os.DevNull), nil
	case "mariadb":
		return d.command(ctx, "mariadb", "--host", d.Host, "--port", port, "--user", d.User, "--protocol=tcp", d.Name), nil
	}
	return nil, fmt.Errorf("unknown database engine %q", d.Engine)
}

// runStreaming starts cmd with its output (dump) or input (load) connected
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

// dump returns a reader of the database dump; the reader fails if the dump
// tool fails, so a broken dump never reaches the store as complete.
func dump(ctx context.Context, d Database) (io.ReadCloser, error) {
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
