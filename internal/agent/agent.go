package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/crmops/crm-operator/internal/crm"
)

// BackupOptions say what to back up and how to label it.
type BackupOptions struct {
	// Name of the backup: the prefix of its objects in the store.
	Name           string
	Database       Database
	FilesDir       string // empty: the product keeps no files
	Product        string
	ProductVersion string
	Environment    string
	Increment      string
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

// Result is what the agent reports through its termination message.
type Result struct {
	Location string   `json:"location,omitempty"`
	Size     int64    `json:"size,omitempty"`
	Checksum string   `json:"checksum,omitempty"` // sha256 of the manifest
	Objects  []Object `json:"objects,omitempty"`
	Error    string   `json:"error,omitempty"`
	// Partial: a restore failed after it had begun to change the target
	// (an in-place load, the files): what is there is neither the old data
	// nor the backup's.
	Partial bool `json:"partial,omitempty"`
}

// ErrPartialRestore marks a restore that failed after it had changed the
// target: the application must not start on what it left.
var ErrPartialRestore = errors.New("the restore failed after it had begun to replace the data: what is left is partial")

// countingHash sums and counts what passes through.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// compressTo streams produce's output, zstd-compressed, into the store under
// key, summing the stored bytes.
func compressTo(ctx context.Context, store Store, key string, produce func(io.Writer) error) (Object, error) {
	pr, pw := io.Pipe()
	sum := &countingHash{h: sha256.New()}
	go func() {
		enc, err := zstd.NewWriter(io.MultiWriter(pw, sum), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		err = produce(enc)
		if cerr := enc.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err) // nil closes with EOF
	}()
	if err := store.Put(ctx, key, pr); err != nil {
		_ = pr.CloseWithError(err) // unblocks the writer; the store's error is the one to report
		return Object{}, fmt.Errorf("storing %s: %w", key, err)
	}
	return Object{Name: path.Base(key), Size: sum.n, SHA256: hex.EncodeToString(sum.h.Sum(nil))}, nil
}

// Backup dumps the database and archives the files into the store, then
// writes the manifest. Any failure before the manifest leaves the backup
// incomplete, and it is never restored.
func Backup(ctx context.Context, store Store, o BackupOptions) (*Manifest, Result, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	m := &Manifest{
		Format: FormatVersion, Product: o.Product, ProductVersion: o.ProductVersion, Engine: o.Database.Engine,
		Environment: o.Environment, Increment: o.Increment, StartedAt: now().UTC().Truncate(time.Second),
	}
	fail := func(err error) (*Manifest, Result, error) { return nil, Result{Error: err.Error()}, err }

	obj, err := compressTo(ctx, store, path.Join(o.Name, DatabaseObject), func(w io.Writer) error {
		r, err := dump(ctx, o.Database)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("database dump: %w", err))
	}
	m.Objects = append(m.Objects, obj)

	if o.FilesDir != "" {
		obj, err := compressTo(ctx, store, path.Join(o.Name, FilesObject), func(w io.Writer) error {
			return writeTar(o.FilesDir, w)
		})
		if err != nil {
			return fail(fmt.Errorf("files archive: %w", err))
		}
		m.Objects = append(m.Objects, obj)
	}

	m.CompletedAt = now().UTC().Truncate(time.Second)
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fail(err)
	}
	manifestKey := path.Join(o.Name, ManifestName)
	if err := store.Put(ctx, manifestKey, bytesReader(data)); err != nil {
		return fail(fmt.Errorf("writing the manifest: %w", err))
	}
	sum := sha256.Sum256(data)
	return m, Result{
		Location: store.Location(o.Name), Size: m.Size(), Checksum: "sha256:" + hex.EncodeToString(sum[:]), Objects: m.Objects,
	}, nil
}

// ErrIncomplete marks a backup without a manifest.
var ErrIncomplete = errors.New("backup is incomplete: it has no manifest")

// ReadManifest loads and validates the manifest of backup name.
func ReadManifest(ctx context.Context, store Store, name string) (*Manifest, error) {
	r, err := store.Get(ctx, path.Join(name, ManifestName))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", store.Location(name), ErrIncomplete)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	return ParseManifest(data)
}

// fetchVerified downloads every object of the backup into dir and checks
// its size and sum against the manifest.
func fetchVerified(ctx context.Context, store Store, name string, m *Manifest, dir string, skip ...string) (map[string]string, error) {
	files := map[string]string{}
	for _, o := range m.Objects {
		if slices.Contains(skip, o.Name) {
			continue
		}
		r, err := store.Get(ctx, path.Join(name, o.Name))
		if err != nil {
			return nil, err
		}
		f, err := os.CreateTemp(dir, o.Name+".*")
		if err != nil {
			_ = r.Close()
			return nil, err
		}
		sum := &countingHash{h: sha256.New()}
		_, err = io.Copy(io.MultiWriter(f, sum), r)
		_ = r.Close() // read to the end; the checksum below decides
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("downloading %s: %w", o.Name, err)
		}
		if got := hex.EncodeToString(sum.h.Sum(nil)); got != o.SHA256 || sum.n != o.Size {
			return nil, fmt.Errorf("object %s is corrupt: sha256 %s (%d bytes), manifest says %s (%d bytes)", o.Name, got, sum.n, o.SHA256, o.Size)
		}
		files[o.Name] = f.Name()
	}
	return files, nil
}

// Verify checks that the backup is complete and every object matches its sum.
func Verify(ctx context.Context, store Store, name string) (*Manifest, error) {
	m, err := ReadManifest(ctx, store, name)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "crm-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	_, err = fetchVerified(ctx, store, name, m, dir)
	return m, err
}

// RestoreOptions say where to restore a backup.
type RestoreOptions struct {
	Name     string
	Database Database
	FilesDir string
	// Product the target runs: a backup of another product is refused.
	Product string
	// ScratchDir holds the verified download; empty uses the system's.
	ScratchDir string
	// Erasures, when set, are erased again once the database is loaded, so
	// that a backup taken before an erasure does not bring the person back.
	Erasures *Subject
	// AnonymizeSalt, when set, pseudonymizes the loaded data with the
	// product's rules (Anonymize) before the restore reports success: a
	// copy of production restored into another environment.
	AnonymizeSalt string
	// Progress, when set, is told each step's end (the Job's log).
	Progress func(format string, args ...any)
}

// Restore verifies the whole backup first, and only then replaces the
// database and the files.
func Restore(ctx context.Context, store Store, o RestoreOptions) (*Manifest, error) {
	m, err := ReadManifest(ctx, store, o.Name)
	if err != nil {
		return nil, err
	}
	if m.Engine != o.Database.Engine {
		return nil, fmt.Errorf("backup %s is a %s backup; the target runs %s", o.Name, m.Engine, o.Database.Engine)
	}
	if o.Product != "" && m.Product != o.Product {
		return nil, fmt.Errorf("backup %s is of product %s; the target runs %s", o.Name, m.Product, o.Product)
	}
	dir, err := os.MkdirTemp(o.ScratchDir, "crm-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// PostgreSQL's dump streams from the store into a load that commits
	// only once its checksum matched (loadInTransaction); MariaDB's, given
	// an administrator, into a staging database swapped in once it matched
	// (restoreBeside). The other objects, and MariaDB's dump otherwise, are
	// verified before anything is changed.
	streamed := o.Database.Engine == "postgresql" || o.Database.canStage()
	var skip []string
	if streamed {
		skip = append(skip, DatabaseObject)
	}
	files, err := fetchVerified(ctx, store, o.Name, m, dir, skip...)
	if err != nil {
		return nil, fmt.Errorf("nothing restored: %w", err)
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	// treat anonymizes the copy or erases people again, when asked; a staged
	// restore treats the copy before it is swapped in.
	treat := func(d Database) error {
		if o.Erasures != nil {
			if _, err := Erase(ctx, d, m.Product, *o.Erasures); err != nil {
				return fmt.Errorf("re-applying erasures after the restore: %w", err)
			}
		}
		if o.AnonymizeSalt != "" {
			if _, err := Anonymize(ctx, d, m.Product, o.AnonymizeSalt); err != nil {
				return fmt.Errorf("anonymizing the restored copy: %w", err)
			}
		}
		return nil
	}
	loadStart := time.Now()
	treated := false
	switch {
	case o.Database.Engine == "postgresql":
		// Erasures and anonymization run inside the load's transaction.
		var finish string
		if finish, err = treatmentSQL(m.Product, o.Erasures, o.AnonymizeSalt); err != nil {
			return nil, fmt.Errorf("nothing restored: %w", err)
		}
		err = streamDatabase(ctx, store, o, m, func(body io.Reader, verify func() error) error {
			return loadInTransaction(ctx, o.Database, body, verify, finish)
		})
		treated = err == nil
	case streamed:
		err = streamDatabase(ctx, store, o, m, func(body io.Reader, verify func() error) error {
			return restoreBeside(ctx, o.Database, body, verify, treat)
		})
		treated = err == nil
		if errors.Is(err, errRestoreInPlace) {
			progress("restoring in place: %v", err)
			var only map[string]string
			if only, err = fetchVerified(ctx, store, o.Name, m, dir, otherThan(m, DatabaseObject)...); err == nil {
				err = inPlace(ctx, o, func() error {
					return decompressFile(only[DatabaseObject], func(r io.Reader) error { return load(ctx, o.Database, r) })
				})
			}
		}
	default:
		err = inPlace(ctx, o, func() error {
			return decompressFile(files[DatabaseObject], func(r io.Reader) error { return load(ctx, o.Database, r) })
		})
	}
	if err != nil {
		return nil, fmt.Errorf("restoring the database: %w", err)
	}
	progress("database loaded, verified and committed in %.1fs", time.Since(loadStart).Seconds())
	if !treated {
		if err := treat(o.Database); err != nil {
			// Loaded in place (MariaDB without an administrator, or a dump
			// with views or triggers): a copy that could not be anonymized
			// is dropped rather than left un-anonymized.
			if o.AnonymizeSalt != "" && o.Database.Engine == "mariadb" {
				if cerr := clearMariaDB(context.WithoutCancel(ctx), o.Database); cerr != nil {
					return nil, fmt.Errorf("%w; dropping the copy that could not be anonymized failed too: %v", err, cerr)
				}
				return nil, fmt.Errorf("%w: the restored copy was dropped", err)
			}
			return nil, err
		}
	}
	if p, ok := files[FilesObject]; ok && o.FilesDir != "" {
		if err := clearDir(o.FilesDir); err != nil {
			return nil, fmt.Errorf("clearing the files: %w: %w", err, ErrPartialRestore)
		}
		// An anonymized copy leaves out the files that hold personal data
		// (uploads, attachments, pictures, sessions, logs: crm.PersonalFile);
		// code and configuration come along.
		var personal func(string) bool
		if o.AnonymizeSalt != "" {
			personal = func(name string) bool { return crm.PersonalFile(crmProduct(m.Product), name) }
		}
		var left int
		if err := decompressFile(p, func(r io.Reader) error {
			var err error
			left, err = extractTar(r, o.FilesDir, personal)
			return err
		}); err != nil {
			return nil, fmt.Errorf("restoring the files: %w: %w", err, ErrPartialRestore)
		}
		if left > 0 {
			progress("left out %d files that hold personal data (uploads, attachments, pictures, sessions, logs)", left)
		}
	}
	return m, nil
}

// inPlace runs a load into the target database itself (MariaDB without an
// administrator, or a dump with views or triggers). Once it failed half-way
// the database is partial: a copy that was to be anonymized is dropped
// (never left raw), and the error says the data is partial, so that the
// application stays stopped.
func inPlace(ctx context.Context, o RestoreOptions, loadIt func() error) error {
	err := loadIt()
	if err == nil {
		return nil
	}
	if o.AnonymizeSalt != "" && o.Database.Engine == "mariadb" {
		if cerr := clearMariaDB(context.WithoutCancel(ctx), o.Database); cerr != nil {
			return fmt.Errorf("%w; dropping the partial copy, which was not anonymized yet, failed too: %v: %w", err, cerr, ErrPartialRestore)
		}
		return fmt.Errorf("%w: the partial copy was dropped (it was not anonymized yet): %w", err, ErrPartialRestore)
	}
	return fmt.Errorf("%w: %w", err, ErrPartialRestore)
}

// streamDatabase hands the backup's database object to load as it
// downloads, summing what is read: verify, which load calls once the body is
// read to its end, fails unless sum and size are the manifest's.
func streamDatabase(ctx context.Context, store Store, o RestoreOptions, m *Manifest, load func(body io.Reader, verify func() error) error) error {
	i := slices.IndexFunc(m.Objects, func(obj Object) bool { return obj.Name == DatabaseObject })
	if i < 0 {
		return fmt.Errorf("backup %s has no %s", o.Name, DatabaseObject)
	}
	want := m.Objects[i]
	body, err := store.Get(ctx, path.Join(o.Name, want.Name))
	if err != nil {
		return err
	}
	defer body.Close()
	sum := &countingHash{h: sha256.New()}
	read := io.TeeReader(body, sum)
	return load(read, func() error {
		if _, err := io.Copy(io.Discard, read); err != nil { // what follows the compressed stream, if anything
			return fmt.Errorf("downloading %s: %w", want.Name, err)
		}
		if got := hex.EncodeToString(sum.h.Sum(nil)); got != want.SHA256 || sum.n != want.Size {
			return fmt.Errorf("object %s is corrupt: sha256 %s (%d bytes), manifest says %s (%d bytes)", want.Name, got, sum.n, want.SHA256, want.Size)
		}
		return nil
	})
}

// otherThan names the backup's objects but name.
func otherThan(m *Manifest, name string) []string {
	var names []string
	for _, obj := range m.Objects {
		if obj.Name != name {
			names = append(names, obj.Name)
		}
	}
	return names
}

func decompressFile(p string, consume func(io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	dec, err := newStreamDecoder(f)
	if err != nil {
		return err
	}
	defer dec.Close()
	return consume(dec)
}

// Delete removes every object of a backup, manifest first so that a
// half-deleted backup is never taken for complete.
func Delete(ctx context.Context, store Store, name string) error {
	if err := store.Delete(ctx, path.Join(name, ManifestName)); err != nil {
		return err
	}
	return store.DeletePrefix(ctx, name)
}

// newStreamDecoder decodes a restore's dump in the goroutine that feeds the
// load. The decoder's default, goroutines decoding blocks ahead, took 1.2 s
// of a 245 MB object against 0.75 s in one goroutine on a 2-core machine,
// and competed for the cores with the database client and server, which
// set the pace.
func newStreamDecoder(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
}
