package agent

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writeTar writes the tree under root to w: directories, regular files and
// symlinks with their modes and times.
func writeTar(root string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		} else if !info.Mode().IsRegular() && !info.IsDir() {
			return nil // sockets and devices are not data
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p) //nolint:gosec // G122: walks the agent's own files volume as its only user; no privilege boundary to cross
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// clearDir removes the contents of dir, keeping dir itself (a mount point).
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// extractTar unpacks r into root, refusing entries that would land
// outside it, and leaves out the entries (files, links; directories stay,
// empty) for which skip (may be nil) is true, counting them.
func extractTar(r io.Reader, root string, skip func(name string) bool) (skipped int, err error) {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return skipped, nil
		}
		if err != nil {
			return skipped, err
		}
		name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
		if name == "" || filepath.IsAbs(name) || strings.HasPrefix(filepath.Clean(name), "..") {
			return skipped, fmt.Errorf("archive entry %q leaves the target directory", hdr.Name)
		}
		if skip != nil && hdr.Typeflag != tar.TypeDir && skip(filepath.ToSlash(name)) {
			skipped++
			continue
		}
		target := filepath.Join(root, name)
		mode := fs.FileMode(hdr.Mode & 0o777) //nolint:gosec // G115: masked to the permission bits
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return skipped, err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
				return skipped, err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return skipped, err
			}
			if _, err := io.CopyN(f, tr, hdr.Size); err != nil {
				_ = f.Close() // the copy's error is the one to report
				return skipped, err
			}
			if err := f.Close(); err != nil {
				return skipped, err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(hdr.Linkname) || strings.HasPrefix(filepath.Clean(filepath.Join(filepath.Dir(name), hdr.Linkname)), "..") { //nolint:gosec // G305: this line is the traversal check
				return skipped, fmt.Errorf("archive symlink %q points outside the target directory", hdr.Name)
			}
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return skipped, err
			}
			continue
		default:
			continue
		}
		_ = os.Chtimes(target, hdr.ModTime, hdr.ModTime)
	}
}
