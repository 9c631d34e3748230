// Command crm-agent backs up, verifies, restores and deletes an environment's
// database and files. The operator runs it in Jobs, in the database image
// itself so that pg_dump or mariadb-dump match the server's version; it
// reports through its termination message and needs no Kubernetes API access.
//
//	crm-agent install DIR                      copy this binary into DIR (init container)
//	crm-agent backup  --name N [flags]         dump database and files, write the manifest last
//	crm-agent restore --name N [flags]         verify every object, then replace database and files
//	crm-agent verify  --name N [flags]         check the manifest and every checksum
//	crm-agent delete  --name N [flags]         delete a backup's objects, manifest first
//	crm-agent anonymize --product P [flags]    pseudonymize personal data of a restored copy in place,
//	                                           switch off its outgoing mail and scheduled jobs
//	crm-agent clean [flags]                    drop what a killed restore left beside the database
//	                                           (MariaDB: <db>_restoring, <db>_replaced)
//	crm-agent erase --product P [flags]        erase the person whose e-mail address is in
//	                                           ERASE_SUBJECT_EMAIL, or the people whose salted hashes
//	                                           are in ERASE_SUBJECT_HASHES (comma-separated) with
//	                                           ERASE_SALT (GDPR Art. 17)
//
// restore also re-applies the erasures in ERASE_SUBJECT_HASHES, when set,
// and with --anonymize pseudonymizes the copy (as anonymize does), before it
// reports success.
//
// Secrets come from the environment: DB_PASSWORD, DB_ADMIN_PASSWORD, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/crmops/crm-operator/internal/agent"
)

const usageText = `usage: crm-agent COMMAND [flags]   (crm-agent COMMAND --help lists the flags)

  install DIR                      copy this binary into DIR (init container)
  backup  --name N [flags]         dump database and files, write the manifest last
  restore --name N [flags]         verify, then replace database and files; re-apply the
                                   erasures in ERASE_SUBJECT_HASHES; --anonymize pseudonymizes
  verify  --name N [flags]         check the manifest and every checksum
  delete  --name N [flags]         delete a backup's objects, manifest first
  anonymize --product P [flags]    pseudonymize a restored copy's personal data in place,
                                   switch off its outgoing mail and scheduled jobs
  clean [flags]                    drop what a killed restore left beside the database
                                   (MariaDB: <db>_restoring, <db>_replaced)
  erase --product P [flags]        erase the person in ERASE_SUBJECT_EMAIL, or the people
                                   whose salted hashes are in ERASE_SUBJECT_HASHES (with
                                   ERASE_SALT) (GDPR Art. 17)
  help                             this text

Secrets come from the environment: DB_PASSWORD, DB_ADMIN_PASSWORD, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
`

var commands = map[string]bool{"install": true, "backup": true, "restore": true, "verify": true, "delete": true, "anonymize": true, "clean": true, "erase": true}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	switch {
	case cmd == "help" || cmd == "-h" || cmd == "-help" || cmd == "--help":
		fmt.Print(usageText)
		return
	case !commands[cmd]:
		fmt.Fprintf(os.Stderr, "crm-agent: unknown command %q\n\n", cmd)
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cmd == "install" {
		if len(args) != 1 {
			usage()
		}
		exitOn(install(args[0]))
		return
	}
	start := time.Now()
	progress("%s started", cmd)
	res, err := run(ctx, cmd, args)
	if err != nil {
		res.Error, res.Partial = err.Error(), errors.Is(err, agent.ErrPartialRestore)
	}
	// The Job's log tells where the time went (the result is on stdout).
	progress("%s ended after %.1fs", cmd, time.Since(start).Seconds())
	if werr := agent.WriteResult(terminationLog, res); werr != nil {
		fmt.Fprintln(os.Stderr, "crm-agent: writing the termination message:", werr)
	}
	os.Stdout.Write(append(agent.EncodeResult(res), '\n'))
	exitOn(err)
}

var terminationLog string

// progress logs a step's end on stderr: the Job's log says where the time went.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "crm-agent: "+format+"\n", args...)
}

func usage() {
	fmt.Fprint(os.Stderr, usageText)
	os.Exit(2)
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "crm-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) (agent.Result, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var (
		name, filesDir, volume                   string
		product, version, environment, increment string
		anonymize                                bool
		s3                                       agent.S3Config
		db                                       agent.Database
	)
	fs.StringVar(&terminationLog, "termination-log", "/dev/termination-log", "Where to write the result for the kubelet; empty: stdout only.")
	fs.StringVar(&name, "name", "", "Name of the backup (the prefix of its objects).")
	fs.StringVar(&filesDir, "files-dir", "", "The environment's files volume; empty: no files.")
	fs.StringVar(&volume, "volume", "", "Store backups under this mounted directory instead of S3.")
	fs.StringVar(&s3.Endpoint, "s3-endpoint", "", "S3 endpoint URL.")
	fs.StringVar(&s3.Bucket, "s3-bucket", "", "S3 bucket.")
	fs.StringVar(&s3.Prefix, "s3-prefix", "", "Prefix of every object key.")
	fs.StringVar(&s3.Region, "s3-region", "", "S3 region.")
	fs.StringVar(&db.Engine, "engine", "", "Database engine: postgresql or mariadb.")
	fs.StringVar(&db.Host, "db-host", "127.0.0.1", "Database host.")
	fs.IntVar(&db.Port, "db-port", 0, "Database port (default: the engine's).")
	fs.StringVar(&db.Name, "db-name", "crm", "Database name.")
	fs.StringVar(&db.User, "db-user", "crm", "Database user.")
	fs.StringVar(&db.AdminUser, "db-admin-user", "", "restore, erase, clean (MariaDB): a user allowed to create and drop databases, password in DB_ADMIN_PASSWORD; a restore then loads the dump beside the database and swaps it in once verified, and both drop what a killed restore left beside the database.")
	fs.StringVar(&product, "product", "", "Product of the environment (recorded; restore refuses another).")
	fs.StringVar(&version, "product-version", "", "Product version (recorded).")
	fs.StringVar(&environment, "environment", "", "Environment (recorded).")
	fs.StringVar(&increment, "increment", "", "Increment the backup precedes (recorded).")
	fs.BoolVar(&anonymize, "anonymize", false, "restore: pseudonymize the restored copy before reporting success.")
	fs.SetOutput(os.Stdout) // --help is an answer, not an error
	fs.Usage = func() {
		fmt.Printf("usage: crm-agent %s [flags]\n\nflags:\n", cmd)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	} else if err != nil {
		return agent.Result{}, err
	}
	db.Password, db.AdminPassword = os.Getenv("DB_PASSWORD"), os.Getenv("DB_ADMIN_PASSWORD")
	if db.Port == 0 {
		db.Port = map[string]int{"postgresql": 5432, "mariadb": 3306}[db.Engine]
	}
	if cmd != "verify" && cmd != "delete" {
		start := time.Now()
		if err := agent.WaitForDatabase(ctx, db, 2*time.Minute); err != nil {
			return agent.Result{}, err
		}
		progress("the database at %s:%d accepts connections (after %.1fs)", db.Host, db.Port, time.Since(start).Seconds())
	}
	if cmd == "anonymize" {
		salt, err := anonymizeSalt()
		if err != nil {
			return agent.Result{}, err
		}
		res, err := agent.Anonymize(ctx, db, product, salt)
		if err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: fmt.Sprintf("%s/%s", db.Host, db.Name), Size: int64(len(res.Columns))}, nil
	}
	if cmd == "clean" {
		if err := agent.DropLeftovers(ctx, db); err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: fmt.Sprintf("%s/%s", db.Host, db.Name)}, nil
	}
	if cmd == "erase" {
		if err := agent.DropLeftovers(ctx, db); err != nil {
			return agent.Result{}, err
		}
		// From the environment, not argv: process listings show arguments.
		n, err := agent.Erase(ctx, db, product, agent.Subject{
			Email: os.Getenv("ERASE_SUBJECT_EMAIL"), Hashes: agent.ParseHashes(os.Getenv("ERASE_SUBJECT_HASHES")), Salt: os.Getenv("ERASE_SALT"),
		})
		if err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: fmt.Sprintf("%s/%s", db.Host, db.Name), Size: int64(n)}, nil
	}
	if name == "" {
		return agent.Result{}, errors.New("--name is required")
	}
	var store agent.Store
	if volume != "" {
		store = agent.NewDirStore(volume)
	} else {
		s3.AccessKey, s3.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		var err error
		if store, err = agent.NewS3Store(s3); err != nil {
			return agent.Result{}, err
		}
	}
	switch cmd {
	case "backup":
		_, res, err := agent.Backup(ctx, store, agent.BackupOptions{
			Name: name, Database: db, FilesDir: filesDir,
			Product: product, ProductVersion: version, Environment: environment, Increment: increment,
		})
		return res, err
	case "restore":
		o := agent.RestoreOptions{Name: name, Database: db, FilesDir: filesDir, Product: product, Progress: progress}
		if hashes := agent.ParseHashes(os.Getenv("ERASE_SUBJECT_HASHES")); len(hashes) > 0 {
			o.Erasures = &agent.Subject{Hashes: hashes, Salt: os.Getenv("ERASE_SALT")}
		}
		if anonymize {
			var err error
			if o.AnonymizeSalt, err = anonymizeSalt(); err != nil {
				return agent.Result{}, err
			}
		}
		m, err := agent.Restore(ctx, store, o)
		if err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: store.Location(name), Size: m.Size(), Objects: m.Objects}, nil
	case "verify":
		m, err := agent.Verify(ctx, store, name)
		if err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: store.Location(name), Size: m.Size(), Objects: m.Objects}, nil
	case "delete":
		if err := agent.Delete(ctx, store, name); err != nil {
			return agent.Result{}, err
		}
		return agent.Result{Location: store.Location(name)}, nil
	}
	usage()
	return agent.Result{}, nil
}

// anonymizeSalt is ANONYMIZE_SALT, else a fresh random salt per copy:
// pseudonyms stay consistent inside the copy but cannot be linked across
// copies.
func anonymizeSalt() (string, error) {
	if salt := os.Getenv("ANONYMIZE_SALT"); salt != "" {
		return salt, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// install copies this binary into dir: the init container of a backup Job
// puts the agent beside the database image's own client tools.
func install(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	src, err := os.Open(self)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, "crm-agent"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755) //nolint:gosec // G302: the copy must stay executable for the job container
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
