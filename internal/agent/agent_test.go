package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

var tables = []string{"accounts", "contacts", "notes"}

// seed fills a CRM-like schema: names, e-mail addresses, free text with
// quotes and newlines, binary data, and a foreign key.
func seed(t *testing.T, d Database, rows int) {
	t.Helper()
	blob, serial, text := "bytea", "SERIAL PRIMARY KEY", "TEXT"
	if d.Engine == "mariadb" {
		blob, serial, text = "LONGBLOB", "INT AUTO_INCREMENT PRIMARY KEY", "LONGTEXT"
	}
	sql(t, d, fmt.Sprintf(`CREATE TABLE accounts (id %s, name VARCHAR(200) NOT NULL, region VARCHAR(32));
CREATE TABLE contacts (id %s, account_id INT REFERENCES accounts(id), email VARCHAR(200), phone VARCHAR(50), photo %s);
CREATE TABLE notes (id %s, contact_id INT REFERENCES contacts(id), body %s);`, serial, serial, blob, serial, text))
	var b strings.Builder
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "INSERT INTO accounts (name, region) VALUES ('Account %d O''Brien & Söhne', 'eu-%d');\n", i, i%3)
		photo := fmt.Sprintf("'\\x%x'", []byte{0, byte(i), 0xff, 0x10})
		if d.Engine == "mariadb" {
			photo = fmt.Sprintf("X'%x'", []byte{0, byte(i), 0xff, 0x10})
		}
		fmt.Fprintf(&b, "INSERT INTO contacts (account_id, email, phone, photo) VALUES (%d, 'person%d@customer.example', '+49 30 %07d', %s);\n", i, i, i, photo)
		fmt.Fprintf(&b, "INSERT INTO notes (contact_id, body) VALUES (%d, 'Called on %d.\nSaid: \"renew\" -- maybe; ünïcödé');\n", i, i)
	}
	sql(t, d, b.String())
}

// fingerprint is each table's row count and content hash.
func fingerprint(t *testing.T, d Database) map[string]string {
	t.Helper()
	fp := map[string]string{}
	for _, tbl := range tables {
		if d.Engine == "postgresql" {
			fp[tbl] = sql(t, d, fmt.Sprintf("SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t", tbl))
		} else {
			// CHECKSUM TABLE prints "<db>.<table>\t<sum>": keep the sum.
			sum := strings.Fields(sql(t, d, "CHECKSUM TABLE "+tbl+" EXTENDED"))
			fp[tbl] = sql(t, d, fmt.Sprintf("SELECT COUNT(*) FROM %s", tbl)) + " " + sum[len(sum)-1]
		}
	}
	return fp
}

func writeFiles(t *testing.T, dir string) {
	t.Helper()
	for name, content := range map[string]string{
		"upload/2026/11/contract.pdf": "%PDF-1.7 \x00\x01\x02 binary",
		"upload/avatar.png":           string(bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0}, 5000)),
		"custom/Espo/Custom/a.json":   `{"fields": []}`,
		"empty.txt":                   "",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "cache", "empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("upload/avatar.png", filepath.Join(dir, "latest-avatar")); err != nil {
		t.Fatal(err)
	}
}

// tree maps every path under dir to its type, mode and content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, _ := d.Info()
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "link " + l
		case info.IsDir():
			out[rel] = "dir"
		default:
			data, _ := os.ReadFile(p)
			out[rel] = fmt.Sprintf("file %v %x", info.Mode().Perm(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalMaps(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s differs:\n got %.120s\nwant %.120s", what, k, got[k], v)
		}
	}
}

var seq int

func unique(prefix string) string {
	seq++
	return fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%100000, seq)
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	for _, srv := range []**server{&postgres, &mariadb} {
		s := *srv
		t.Run(s.engine, func(t *testing.T) {
			need(t, s)
			need(t, s3)
			ctx := context.Background()
			src := createDatabase(t, s, unique("src"))
			seed(t, src, 200)
			files := t.TempDir()
			writeFiles(t, files)
			store := s3.store(t, "acme")

			m, res, err := Backup(ctx, store, BackupOptions{
				Name: "test-20261125", Database: src, FilesDir: files,
				Product: "espocrm", ProductVersion: "9.1.8", Environment: "test", Increment: "sprint-7",
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Objects) != 2 || res.Size != m.Size() || !strings.HasPrefix(res.Checksum, "sha256:") ||
				res.Location != "s3://backups/acme/test-20261125" {
				t.Errorf("unexpected result %+v", res)
			}
			if _, err := Verify(ctx, store, "test-20261125"); err != nil {
				t.Fatalf("verify: %v", err)
			}

			dst := createDatabase(t, s, unique("dst"))
			target := t.TempDir()
			if err := os.WriteFile(filepath.Join(target, "stale.txt"), []byte("replaced by the restore"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Restore(ctx, store, RestoreOptions{Name: "test-20261125", Database: dst, FilesDir: target, Product: "espocrm"}); err != nil {
				t.Fatal(err)
			}
			equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
			equalMaps(t, "file", tree(t, target), tree(t, files))

			// Restoring again over the restored data is idempotent.
			if _, err := Restore(ctx, store, RestoreOptions{Name: "test-20261125", Database: dst, FilesDir: target}); err != nil {
				t.Fatalf("second restore: %v", err)
			}
			equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
		})
	}
}

func TestCorruptObjectIsDetectedAndNothingRestored(t *testing.T) {
	need(t, postgres)
	need(t, s3)
	ctx := context.Background()
	src := createDatabase(t, postgres, unique("src"))
	seed(t, src, 20)
	store := s3.store(t, "corrupt")
	if _, _, err := Backup(ctx, store, BackupOptions{Name: "b1", Database: src, Product: "odoo", Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	// Flip one byte of the stored dump behind the store's back.
	p := filepath.Join(s3.dir, "backups", "corrupt", "b1", DatabaseObject)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}

	dst := createDatabase(t, postgres, unique("dst"))
	sql(t, dst, "CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('untouched')")
	_, err = Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst})
	if err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), "nothing restored") {
		t.Fatalf("restore of a corrupt backup: %v", err)
	}
	if got := sql(t, dst, "SELECT v FROM keep"); got != "untouched" {
		t.Errorf("the target was changed: %q", got)
	}
	if _, err := Verify(ctx, store, "b1"); err == nil {
		t.Error("verify passed a corrupt backup")
	}
}

// failingStore passes objects to a real store but breaks the upload of the
// database dump midway, as a lost connection would.
type failingStore struct {
	Store
	after int64
}

type failAfter struct {
	r    io.Reader
	left int64
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.r.Read(p)
	f.left -= int64(n)
	return n, err
}

func (f failingStore) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasSuffix(key, DatabaseObject) {
		return f.Store.Put(ctx, key, &failAfter{r: r, left: f.after})
	}
	return f.Store.Put(ctx, key, r)
}

func TestInterruptedUploadIsNeverComplete(t *testing.T) {
	need(t, mariadb)
	need(t, s3)
	ctx := context.Background()
	src := createDatabase(t, mariadb, unique("src"))
	seed(t, src, 300)
	store := s3.store(t, "interrupted")
	_, res, err := Backup(ctx, failingStore{Store: store, after: 4096}, BackupOptions{Name: "b1", Database: src, Product: "espocrm"})
	if err == nil || res.Error == "" {
		t.Fatalf("a broken upload reported success: %+v", res)
	}
	if _, err := ReadManifest(ctx, store, "b1"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("manifest after a broken upload: %v", err)
	}
	dst := createDatabase(t, mariadb, unique("dst"))
	if _, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst}); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("restore of an incomplete backup: %v", err)
	}
}

func TestFailingDumpIsNeverComplete(t *testing.T) {
	need(t, postgres)
	ctx := context.Background()
	store := NewDirStore(t.TempDir())
	missing := postgres.db("no_such_database")
	if _, _, err := Backup(ctx, store, BackupOptions{Name: "b1", Database: missing}); err == nil {
		t.Fatal("a dump of a missing database succeeded")
	}
	if _, err := ReadManifest(ctx, store, "b1"); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("manifest after a failed dump: %v", err)
	}
}

func TestRestoreRefusesAnotherEngineOrProduct(t *testing.T) {
	need(t, postgres)
	ctx := context.Background()
	src := createDatabase(t, postgres, unique("src"))
	seed(t, src, 5)
	store := NewDirStore(t.TempDir())
	if _, _, err := Backup(ctx, store, BackupOptions{Name: "b1", Database: src, Product: "odoo"}); err != nil {
		t.Fatal(err)
	}
	other := Database{Engine: "mariadb", Host: "127.0.0.1", Port: 1, Name: "x", User: "x"}
	if _, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: other}); err == nil || !strings.Contains(err.Error(), "postgresql backup") {
		t.Errorf("restore into another engine: %v", err)
	}
	if _, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: postgres.db("x"), Product: "twenty"}); err == nil || !strings.Contains(err.Error(), "product odoo") {
		t.Errorf("restore into another product: %v", err)
	}
}

func TestVolumeTargetAndDelete(t *testing.T) {
	need(t, mariadb)
	ctx := context.Background()
	src := createDatabase(t, mariadb, unique("src"))
	seed(t, src, 50)
	root := t.TempDir()
	store := NewDirStore(root)
	_, res, err := Backup(ctx, store, BackupOptions{Name: "nightly", Database: src, Product: "suitecrm"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Location, "file://"+root) {
		t.Errorf("location %s", res.Location)
	}
	dst := createDatabase(t, mariadb, unique("dst"))
	if _, err := Restore(ctx, store, RestoreOptions{Name: "nightly", Database: dst}); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
	if err := Delete(ctx, store, "nightly"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "nightly")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("backup data left after delete: %v", err)
	}
}

// A completed restore equals the backup: tables created after it are gone,
// whichever way the database is loaded (MariaDB beside the database and
// swapped in, or in place without an administrator).
// A failed PostgreSQL load leaves the database as it was.
func TestRestoreIsExactAndAllOrNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		srv     **server
		inPlace bool
	}{{"postgresql", &postgres, false}, {"mariadb beside", &mariadb, false}, {"mariadb in place", &mariadb, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := *tc.srv
			need(t, s)
			need(t, s3)
			ctx := context.Background()
			src := createDatabase(t, s, unique("src"))
			seed(t, src, 50)
			store := s3.store(t, "exact")
			if _, _, err := Backup(ctx, store, BackupOptions{Name: "before", Database: src, Product: "espocrm", Environment: "production"}); err != nil {
				t.Fatal(err)
			}
			dst := createDatabase(t, s, unique("dst"))
			if tc.inPlace {
				dst.AdminUser = ""
			}
			seed(t, dst, 70)
			sql(t, dst, "CREATE TABLE created_after_the_backup (id INT PRIMARY KEY); INSERT INTO created_after_the_backup VALUES (1)")
			sql(t, dst, "CREATE VIEW view_after_the_backup AS SELECT id FROM created_after_the_backup")
			if _, err := Restore(ctx, store, RestoreOptions{Name: "before", Database: dst, Product: "espocrm"}); err != nil {
				t.Fatal(err)
			}
			equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
			left := "SELECT COUNT(*) FROM information_schema.tables WHERE table_name IN ('created_after_the_backup', 'view_after_the_backup')"
			if s.engine == "postgresql" {
				left += " AND table_schema = 'public'"
			} else {
				left += " AND table_schema = DATABASE()"
			}
			if got := sql(t, dst, left); got != "0" {
				t.Errorf("%s objects created after the backup survived the restore", got)
			}
			if s.engine != "postgresql" {
				noStagingLeft(t, dst)
				return
			}
			// A load that fails at its last statement changes nothing.
			before := fingerprint(t, dst)
			err := load(ctx, dst, strings.NewReader("DROP TABLE IF EXISTS "+tables[0]+" CASCADE; CREATE TABLE half (id INT); SELECT 1/0;"))
			if err == nil {
				t.Fatal("a failing load reported success")
			}
			equalMaps(t, "table after a failed load", fingerprint(t, dst), before)
			if got := sql(t, dst, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'half'"); got != "0" {
				t.Error("a failed load left a table behind")
			}
		})
	}
}

// noStagingLeft fails if a MariaDB restore left its staging databases.
func noStagingLeft(t *testing.T, d Database) {
	t.Helper()
	staging, replaced := stagingNames(d.Name)
	q := fmt.Sprintf("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name IN ('%s', '%s')", staging, replaced)
	if got := sql(t, d, q); got != "0" {
		t.Errorf("%s staging databases of %s left behind", got, d.Name)
	}
}

func compressed(t *testing.T, sqlText string) io.Reader {
	t.Helper()
	var b bytes.Buffer
	enc, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(enc, sqlText); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// backedUp is a database of s seeded with rows and what prepare adds,
// backed up as b1 to a store under prefix.
func backedUp(t *testing.T, s *server, prefix, product string, rows int, prepare ...func(Database)) (Database, Store) {
	t.Helper()
	src := createDatabase(t, s, unique("src"))
	seed(t, src, rows)
	for _, p := range prepare {
		p(src)
	}
	store := s3.store(t, prefix)
	if _, _, err := Backup(context.Background(), store, BackupOptions{Name: "b1", Database: src, Product: product, Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	return src, store
}

// MariaDB commits DDL at once; its restore loads beside the database and
// swaps, so a load that fails half-way (its first statement dropped a
// table), a dump found corrupt at its end, or a failed anonymization leaves
// the target as it was, foreign keys included; a completed one carries them.
func TestAMariaDBRestoreIsAllOrNothing(t *testing.T) {
	need(t, mariadb)
	need(t, s3)
	ctx := context.Background()
	withKey := func(d Database) {
		sql(t, d, "ALTER TABLE contacts ADD CONSTRAINT contact_account FOREIGN KEY (account_id) REFERENCES accounts (id)")
	}
	keys := func(d Database) string {
		return sql(t, d, "SELECT COUNT(*) FROM information_schema.referential_constraints WHERE constraint_schema = DATABASE() AND constraint_name = 'contact_account'")
	}
	src, store := backedUp(t, mariadb, "beside", "espocrm", 30, withKey)
	dst := createDatabase(t, mariadb, unique("dst"))
	seed(t, dst, 70)
	withKey(dst)
	sql(t, dst, "CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('untouched')")
	before := fingerprint(t, dst)
	unchanged := func(what string) {
		t.Helper()
		equalMaps(t, what, fingerprint(t, dst), before)
		if got := sql(t, dst, "SELECT v FROM keep"); got != "untouched" {
			t.Errorf("%s: the target's own table holds %q", what, got)
		}
		if got := keys(dst); got != "1" {
			t.Errorf("%s: the target's foreign key is gone", what)
		}
		noStagingLeft(t, dst)
	}

	failing := "DROP TABLE IF EXISTS accounts; CREATE TABLE half (id INT); SELECT no_such_column FROM nowhere;"
	err := restoreBeside(ctx, dst, compressed(t, failing), func() error { return nil }, func(Database) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nothing restored") {
		t.Fatalf("a load failing half-way: %v", err)
	}
	unchanged("after a load that failed half-way")

	wrong := errors.New("object database.sql.zst is corrupt")
	err = restoreBeside(ctx, dst, compressed(t, "CREATE TABLE half (id INT);"), func() error { return wrong }, func(Database) error { return nil })
	if !errors.Is(err, wrong) {
		t.Fatalf("a dump found corrupt at its end: %v", err)
	}
	unchanged("after a dump found corrupt at its end")

	_, err = Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst, AnonymizeSalt: "too short"})
	if err == nil {
		t.Fatal("a restore whose anonymization fails reported success")
	}
	unchanged("after an anonymization that failed")

	if _, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst}); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
	if got := keys(dst); got != "1" {
		t.Error("the restored tables lost their foreign key")
	}
	if got := sql(t, dst, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'keep'"); got != "0" {
		t.Error("a table created after the backup survived the restore")
	}
	noStagingLeft(t, dst)
}

// RENAME TABLE cannot move views or triggers between databases: a dump
// holding them is restored in place, and equals the backup all the same.
func TestAMariaDBDumpWithViewsAndTriggersIsRestoredInPlace(t *testing.T) {
	need(t, mariadb)
	need(t, s3)
	ctx := context.Background()
	src, store := backedUp(t, mariadb, "in-place", "espocrm", 20, func(src Database) {
		sql(t, src, "CREATE VIEW account_names AS SELECT name FROM accounts")
		sql(t, src, "CREATE TRIGGER lower_email BEFORE INSERT ON contacts FOR EACH ROW SET NEW.email = LOWER(NEW.email)")
	})
	dst := createDatabase(t, mariadb, unique("dst"))
	seed(t, dst, 40)
	var said []string
	if _, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst, Progress: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }}); err != nil {
		t.Fatal(err)
	}
	equalMaps(t, "table", fingerprint(t, dst), fingerprint(t, src))
	if got := sql(t, dst, "SELECT COUNT(*) FROM account_names"); got != "20" {
		t.Errorf("the restored view counts %s accounts, want 20", got)
	}
	sql(t, dst, "INSERT INTO contacts (account_id, email) VALUES (1, 'UPPER@CASE.EXAMPLE')")
	if got := sql(t, dst, "SELECT email FROM contacts WHERE email LIKE 'upper@%'"); got != "upper@case.example" {
		t.Errorf("the restored trigger did not run: %q", got)
	}
	if !strings.Contains(strings.Join(said, "\n"), "restoring in place") {
		t.Errorf("the restore did not say it loaded in place: %q", said)
	}
	noStagingLeft(t, dst)
}

// Client tools older than the server (an external PostgreSQL of a newer
// major version) are refused before anything is dumped or loaded, naming
// both versions and the setting that picks matching tools.
func TestToolsOlderThanTheServerAreRefused(t *testing.T) {
	need(t, postgres)
	need(t, s3)
	ctx := context.Background()
	d := createDatabase(t, postgres, unique("newer"))
	seed(t, d, 5)
	server := sql(t, d, "SHOW server_version_num")
	major, _ := strconv.Atoi(server[:len(server)-4])
	// A pg_dump one major version older than the server (psql stays real).
	bin := t.TempDir()
	if err := os.Symlink(filepath.Join(d.BinDir, "psql"), filepath.Join(bin, "psql")); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = --version ] && echo 'pg_dump (PostgreSQL) %d.4' && exit 0\necho 'pg_dump: error: aborting because of server version mismatch' >&2; exit 1\n", major-1)
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	old := d
	old.BinDir = bin
	_, _, err := Backup(ctx, s3.store(t, "tools"), BackupOptions{Name: "n", Database: old, Product: "odoo"})
	want := fmt.Sprintf("the database server runs PostgreSQL %d, this Job's client tools are PostgreSQL %d", major, major-1)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "serverVersion") {
		t.Fatalf("backup with older tools: got %v, want an error saying %q", err, want)
	}
	// Tools of the server's own version pass.
	if err := CheckTools(ctx, d); err != nil {
		t.Errorf("matching tools refused: %v", err)
	}
}

// PostgreSQL's dump is loaded while it downloads: a dump that loads
// cleanly but is not the one the manifest sums (swapped behind the store's
// back) is found only at its end, and the load is rolled back then.
func TestAStreamedLoadCommitsOnlyAVerifiedDump(t *testing.T) {
	need(t, postgres)
	need(t, s3)
	ctx := context.Background()
	store := s3.store(t, "swapped")
	for i, name := range []string{"b1", "b2"} {
		src := createDatabase(t, postgres, unique("src"))
		seed(t, src, 10+i)
		if _, _, err := Backup(ctx, store, BackupOptions{Name: name, Database: src, Product: "odoo", Environment: "production"}); err != nil {
			t.Fatal(err)
		}
	}
	other, err := os.ReadFile(filepath.Join(s3.dir, "backups", "swapped", "b2", DatabaseObject))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s3.dir, "backups", "swapped", "b1", DatabaseObject), other, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := createDatabase(t, postgres, unique("dst"))
	sql(t, dst, "CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('untouched')")
	_, err = Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst})
	if err == nil || !strings.Contains(err.Error(), "is corrupt") || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("restore of a swapped dump: %v", err)
	}
	if got := sql(t, dst, "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'"); got != "keep" {
		t.Errorf("the target's tables after the rolled-back load: %q, want keep only", got)
	}
	if got := sql(t, dst, "SELECT v FROM keep"); got != "untouched" {
		t.Errorf("the target was changed: %q", got)
	}
}

func TestWaitForDatabase(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	// Nothing listens yet: the wait goes on until the server comes up.
	d := Database{Host: "127.0.0.1", Port: port}
	done := make(chan error, 1)
	go func() { done <- WaitForDatabase(context.Background(), d, 30*time.Second) }()
	select {
	case err := <-done:
		t.Fatalf("the wait ended while nothing listened: %v", err)
	case <-time.After(time.Second):
	}
	up, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("a database that comes up within the wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting 10 s after the database came up")
	}
	d.Port = freePort()
	err = WaitForDatabase(context.Background(), d, time.Second)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d accepts no connection after 1s", d.Port)) {
		t.Errorf("a database that never answers: %v", err)
	}
}

// A restore that cannot anonymize the copy, or apply the erasures again,
// restores nothing: the loaded data is never committed (PostgreSQL: the
// treatment runs in the load's transaction) or swapped in (MariaDB).
// A committed load would leave a copy of production un-anonymized in the
// target.
func TestARestoreThatCannotTreatTheCopyRestoresNothing(t *testing.T) {
	for _, srv := range []**server{&postgres, &mariadb} {
		s := *srv
		t.Run(s.engine, func(t *testing.T) {
			need(t, s)
			need(t, s3)
			ctx := context.Background()
			// None of Odoo's tables: its rules find nothing to rewrite.
			_, store := backedUp(t, s, "untreatable", "odoo", 10)
			for _, o := range []RestoreOptions{
				{AnonymizeSalt: "a-salt-of-at-least-16-characters"},
				{Erasures: &Subject{Hashes: []string{SubjectHash("erasure-salt", "someone@example.org")}, Salt: "erasure-salt"}},
			} {
				dst := createDatabase(t, s, unique("dst"))
				sql(t, dst, "CREATE TABLE keep (v TEXT); INSERT INTO keep VALUES ('untouched')")
				o.Name, o.Database = "b1", dst
				_, err := Restore(ctx, store, o)
				if err == nil || !strings.Contains(err.Error(), "none of the product's") {
					t.Fatalf("anonymize %v, erasures %v: a restore whose treatment finds nothing: %v", o.AnonymizeSalt != "", o.Erasures != nil, err)
				}
				schema := "DATABASE()"
				if s.engine == "postgresql" {
					schema = "current_schema()"
				}
				if got := sql(t, dst, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "+schema); got != "1" {
					t.Errorf("anonymize %v, erasures %v: the target holds %s tables after the failed restore, want its own 1", o.AnonymizeSalt != "", o.Erasures != nil, got)
				}
				if got := sql(t, dst, "SELECT v FROM keep"); got != "untouched" {
					t.Errorf("the target's own table holds %q", got)
				}
			}
		})
	}
	// MariaDB loaded in place (no administrator): the loaded copy cannot be
	// kept from the target, so one that cannot be anonymized is dropped.
	t.Run("mariadb in place", func(t *testing.T) {
		need(t, mariadb)
		need(t, s3)
		ctx := context.Background()
		_, store := backedUp(t, mariadb, "untreatable-in-place", "odoo", 10)
		dst := createDatabase(t, mariadb, unique("dst"))
		dst.AdminUser = ""
		_, err := Restore(ctx, store, RestoreOptions{Name: "b1", Database: dst, AnonymizeSalt: "a-salt-of-at-least-16-characters"})
		if err == nil || !strings.Contains(err.Error(), "the restored copy was dropped") {
			t.Fatalf("an in-place restore whose anonymization fails: %v", err)
		}
		if got := sql(t, dst, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"); got != "0" {
			t.Errorf("%s tables of the un-anonymized copy are left in the target", got)
		}
	})
}

// 9: a load into the database itself (MariaDB without an administrator, or
// a dump with views or triggers) that fails half-way says the data is
// partial, so that the operator keeps the application stopped; a copy that
// was to be anonymized is dropped rather than left half-loaded and raw.
func TestAnInPlaceLoadThatFailsHalfWaySaysTheDataIsPartial(t *testing.T) {
	need(t, mariadb)
	ctx := context.Background()
	failing := "CREATE TABLE contacts (id INT, email TEXT); INSERT INTO contacts VALUES (1, 'jane@kunde.example'); SELECT no_such_column FROM nowhere; CREATE TABLE never (id INT);"
	loadFailing := func(d Database) func() error {
		return func() error {
			return load(ctx, d, strings.NewReader(failing))
		}
	}
	for _, tc := range []struct {
		name, salt, wantRows string
	}{
		{"a copy of the environment's own data", "", "1"},
		{"a copy that was to be anonymized", "salt-of-this-copy-0123456789", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := createDatabase(t, mariadb, unique("inplace"))
			seed(t, d, 10)
			d.AdminUser = ""
			err := inPlace(ctx, RestoreOptions{Database: d, AnonymizeSalt: tc.salt}, loadFailing(d))
			if !errors.Is(err, ErrPartialRestore) {
				t.Fatalf("a load that failed half-way: %v, want it to say the data is partial", err)
			}
			tables := sql(t, d, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
			if tc.wantRows == "" {
				if tables != "0" {
					t.Errorf("the half-loaded raw copy was left: %s tables", tables)
				}
				return
			}
			if got := sql(t, d, "SELECT COUNT(*) FROM contacts"); got != tc.wantRows {
				t.Errorf("contacts after the half load: %s, want %s (the partial state the operator must not serve)", got, tc.wantRows)
			}
		})
	}
}

// 10: a staged restore killed before its deferred cleanup ran leaves a copy
// of the backup beside the database; the next erasure drops it before it
// erases (so the person survives in no leftover), and so does the next restore.
func TestWhatAKilledRestoreLeftIsDropped(t *testing.T) {
	need(t, mariadb)
	ctx := context.Background()
	d := createDatabase(t, mariadb, unique("killed"))
	seed(t, d, 5)
	if !d.canStage() {
		t.Fatal("the test server's database has no administrator")
	}
	staging, replaced := stagingNames(d.Name)
	leave := func() {
		admin := d.asAdmin(d.Name)
		if _, err := query(ctx, admin, fmt.Sprintf("CREATE DATABASE %[1]s; CREATE TABLE %[1]s.contacts (email TEXT); INSERT INTO %[1]s.contacts VALUES ('jane@kunde.example'); CREATE DATABASE %[2]s",
			quoteName(staging), quoteName(replaced))); err != nil {
			t.Fatal(err)
		}
	}
	leave()
	if err := DropLeftovers(ctx, d); err != nil {
		t.Fatal(err)
	}
	noStagingLeft(t, d)

	// The next restore starts by dropping them too (here it fails at once on an empty dump's checksum).
	leave()
	wrong := errors.New("object database.sql.zst is corrupt")
	if err := restoreBeside(ctx, d, compressed(t, ""), func() error { return wrong }, func(Database) error { return nil }); !errors.Is(err, wrong) {
		t.Fatalf("restore: %v", err)
	}
	noStagingLeft(t, d)
}
