package agent

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Real servers for the agent's tests, started once per test binary on
// loopback in temporary directories and stopped at the end, also on failure.
// A server that cannot start fails its tests; SKIP_DATABASES=1 skips them
// instead, by request only (make test installs the servers or names the
// command that does: hack/test-prerequisites.sh).
var (
	postgres *server
	mariadb  *server
	s3       *server
)

type server struct {
	engine  string
	port    int
	dir     string
	stop    func()
	bin     string // client tools' directory
	skipWhy string
}

func (s *server) db(name string) Database {
	d := Database{Engine: s.engine, Host: "127.0.0.1", Port: s.port, Name: name, BinDir: s.bin}
	if s.engine == "postgresql" {
		d.User, d.Password = "postgres", "unused"
	} else {
		// root creates databases: restores load beside and swap (restoreBeside).
		d.User, d.Password, d.AdminUser = "root", "", "root"
	}
	return d
}

// need fails a test whose server could not start, or skips it when
// SKIP_DATABASES=1 asks for that.
func need(t *testing.T, s *server) {
	t.Helper()
	if s.skipWhy == "" {
		return
	}
	if os.Getenv("SKIP_DATABASES") == "1" {
		t.Skip("SKIP_DATABASES=1: " + s.skipWhy)
	}
	t.Fatalf("test server unavailable: %s (hack/test-prerequisites.sh installs it; SKIP_DATABASES=1 skips these tests)", s.skipWhy)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(port int, d time.Duration) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, d, true, func(context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("nothing listens on %s after %s", addr, d)
	}
	return nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// startPostgres: initdb refuses to run as root, so the cluster belongs to the
// postgres user (docs/contributing/testing.md#real-database-servers-in-the-tests).
func startPostgres() *server {
	s := &server{engine: "postgresql"}
	bin := postgresBin()
	if bin == "" {
		s.skipWhy = "PostgreSQL server binaries not installed (Debian package postgresql)"
		return s
	}
	s.bin = bin
	dir, err := os.MkdirTemp("", "crm-pg-")
	if err != nil {
		s.skipWhy = err.Error()
		return s
	}
	s.dir = dir
	s.port = freePort()
	asPostgres := func(cmd string) error { return run("su", "postgres", "-s", "/bin/sh", "-c", cmd) }
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		if err := run("chown", "postgres:postgres", dir); err != nil {
			s.skipWhy = err.Error()
			return s
		}
	} else {
		asPostgres = func(cmd string) error { return run("/bin/sh", "-c", cmd) }
	}
	data := filepath.Join(dir, "data")
	if err := asPostgres(fmt.Sprintf("%s/initdb -D %s -A trust -U postgres >/dev/null", bin, data)); err != nil {
		s.skipWhy = err.Error()
		return s
	}
	if err := asPostgres(fmt.Sprintf("%s/pg_ctl -D %s -o '-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off' -l %s/log -w start >/dev/null",
		bin, data, s.port, dir, dir)); err != nil {
		s.skipWhy = err.Error()
		return s
	}
	s.stop = func() {
		_ = asPostgres(fmt.Sprintf("%s/pg_ctl -D %s -m immediate stop >/dev/null", bin, data))
		os.RemoveAll(dir)
	}
	return s
}

func startMariaDB() *server {
	s := &server{engine: "mariadb"}
	mariadbd, err := exec.LookPath("mariadbd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mariadbd"); serr != nil {
			s.skipWhy = "MariaDB server not installed (Debian package mariadb-server)"
			return s
		}
		mariadbd = "/usr/sbin/mariadbd"
	}
	dir, err := os.MkdirTemp("", "crm-mariadb-")
	if err != nil {
		s.skipWhy = err.Error()
		return s
	}
	s.dir = dir
	s.port = freePort()
	data := filepath.Join(dir, "data")
	if err := run("mariadb-install-db", "--no-defaults", "--datadir="+data, "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db"); err != nil {
		s.skipWhy = err.Error()
		return s
	}
	cmd := exec.Command(mariadbd, "--no-defaults", "--datadir="+data, "--user=root", "--socket="+filepath.Join(dir, "sock"),
		"--port="+strconv.Itoa(s.port), "--bind-address=127.0.0.1", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
		"--log-error="+filepath.Join(dir, "log"))
	return s.run(cmd, 60*time.Second)
}

// run starts the server process, arranges its stop (which also removes its
// directory) and waits until it listens.
func (s *server) run(cmd *exec.Cmd, timeout time.Duration) *server {
	if err := cmd.Start(); err != nil {
		s.skipWhy = err.Error()
		return s
	}
	s.stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(s.dir)
	}
	if err := waitPort(s.port, timeout); err != nil {
		s.skipWhy = err.Error()
	}
	return s
}

const s3Key, s3Secret = "crm-test-access", "crm-test-secret-key"

func startS3() *server {
	s := &server{engine: "s3"}
	bin, _ := filepath.Abs(filepath.Join("..", "..", "bin", "versitygw"))
	if _, err := os.Stat(bin); err != nil {
		s.skipWhy = "bin/versitygw missing: run `make test` (hack/build-tools.sh versitygw builds it)"
		return s
	}
	dir, err := os.MkdirTemp("", "crm-s3-")
	if err != nil {
		s.skipWhy = err.Error()
		return s
	}
	s.dir = dir
	s.port = freePort()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o755); err != nil { // a directory is a bucket
		s.skipWhy = err.Error()
		return s
	}
	cmd := exec.Command(bin, "--port", fmt.Sprintf("127.0.0.1:%d", s.port), "--access", s3Key, "--secret", s3Secret, "posix", dir)
	return s.run(cmd, 30*time.Second)
}

func (s *server) store(t testing.TB, prefix string) Store {
	t.Helper()
	st, err := NewS3Store(S3Config{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", s.port), Bucket: "backups", Prefix: prefix,
		Region: "us-east-1", AccessKey: s3Key, SecretKey: s3Secret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestMain(m *testing.M) {
	flag.Parse()
	// The fuzz targets are pure; the fuzzer's worker processes each run
	// TestMain and would start (and fight over) servers of their own.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	postgres, mariadb, s3 = startPostgres(), startMariaDB(), startS3()
	code := m.Run()
	for _, s := range []*server{postgres, mariadb, s3} {
		if s.stop != nil {
			s.stop()
		}
	}
	os.Exit(code)
}

// sql runs statements with the agent's own client helper and returns the
// rows, fields separated by tabs.
func sql(t testing.TB, d Database, statements string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := query(ctx, d, statements)
	if err != nil {
		t.Fatalf("%s: %v", statements, err)
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = strings.Join(r, "\t")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// createDatabase makes an empty database on the server.
func createDatabase(t testing.TB, s *server, name string) Database {
	t.Helper()
	admin := s.db(map[string]string{"postgresql": "postgres", "mariadb": "mysql"}[s.engine])
	stmt := "CREATE DATABASE " + name
	if s.engine == "mariadb" {
		stmt += " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" // as EspoCRM and SuiteCRM require
	}
	sql(t, admin, stmt)
	return s.db(name)
}
