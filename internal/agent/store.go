package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// ErrNotFound is returned for an object that does not exist.
var ErrNotFound = errors.New("object not found")

// Store keeps the objects of backups under keys "<backup>/<object>".
type Store interface {
	// Put stores r under key, streaming it; a failed Put leaves no object.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object at key.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete deletes the object at key; a missing object is no error.
	Delete(ctx context.Context, key string) error
	// DeletePrefix deletes every object under prefix.
	DeletePrefix(ctx context.Context, prefix string) error
	// Location names key for people, e.g. s3://bucket/prefix/key.
	Location(key string) string
}

// S3Config locates an S3-compatible bucket.
type S3Config struct {
	Endpoint  string // URL, e.g. https://s3.eu-central-1.amazonaws.com
	Bucket    string
	Prefix    string
	Region    string
	AccessKey string
	SecretKey string
}

// partSize bounds the memory of a streamed upload (one part is buffered).
const partSize = 16 << 20

type s3Store struct {
	client *minio.Client
	cfg    S3Config
}

// NewS3Store opens the bucket of cfg.
func NewS3Store(cfg S3Config) (Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("s3 endpoint %q is not a URL", cfg.Endpoint)
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, err
	}
	return &s3Store{client: c, cfg: cfg}, nil
}

func (s *s3Store) key(k string) string { return path.Join(s.cfg.Prefix, k) }

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader) error {
	// Unknown size: a multipart upload that is completed only when r ends
	// without error, and aborted otherwise, so no partial object appears.
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.key(key), r, -1, minio.PutObjectOptions{
		PartSize: partSize, ContentType: "application/octet-stream",
	})
	return err
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if _, err := s.client.StatObject(ctx, s.cfg.Bucket, s.key(key), minio.StatObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil, fmt.Errorf("%s: %w", s.Location(key), ErrNotFound)
		}
		return nil, err
	}
	return s.client.GetObject(ctx, s.cfg.Bucket, s.key(key), minio.GetObjectOptions{})
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	return s.client.RemoveObject(ctx, s.cfg.Bucket, s.key(key), minio.RemoveObjectOptions{})
}

func (s *s3Store) DeletePrefix(ctx context.Context, prefix string) error {
	objs := s.client.ListObjects(ctx, s.cfg.Bucket, minio.ListObjectsOptions{Prefix: s.key(prefix) + "/", Recursive: true})
	for err := range s.client.RemoveObjects(ctx, s.cfg.Bucket, objs, minio.RemoveObjectsOptions{}) {
		return err.Err
	}
	return nil
}

func (s *s3Store) Location(key string) string {
	return "s3://" + s.cfg.Bucket + "/" + s.key(key)
}

type dirStore struct{ root string }

// NewDirStore keeps objects as files under root (a mounted volume).
func NewDirStore(root string) Store { return &dirStore{root: root} }

func (d *dirStore) path(key string) (string, error) {
	clean := filepath.Clean("/" + key)
	if strings.Contains(key, "..") {
		return "", fmt.Errorf("invalid key %q", key)
	}
	return filepath.Join(d.root, clean), nil
}

func (d *dirStore) Put(_ context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	// Written to a temporary name and renamed only when complete.
	tmp, err := os.CreateTemp(filepath.Dir(p), ".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		_ = tmp.Close() // the copy's error is the one to report; the file is removed
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

func (d *dirStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", d.Location(key), ErrNotFound)
	}
	return f, err
}

func (d *dirStore) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (d *dirStore) DeletePrefix(_ context.Context, prefix string) error {
	p, err := d.path(prefix)
	if err != nil {
		return err
	}
	if p == filepath.Clean(d.root) {
		return fmt.Errorf("refusing to delete the whole backup volume")
	}
	return os.RemoveAll(p)
}

func (d *dirStore) Location(key string) string {
	p, _ := d.path(key)
	return "file://" + p
}
