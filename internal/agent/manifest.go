// Package agent is crm-agent's logic: it backs up, verifies and restores an
// environment's database and files to and from an S3-compatible store or a
// mounted volume. A backup is a set of objects under one prefix; the
// manifest, written last, lists them with their sizes and SHA-256 sums, so a
// backup without a manifest is incomplete and never restored.
package agent

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// ManifestName is the object written last: its presence makes a backup complete.
const ManifestName = "manifest.json"

// FormatVersion of the manifest; restore refuses formats it does not know.
const FormatVersion = 1

// Object names inside a backup.
const (
	DatabaseObject = "database.sql.zst"
	FilesObject    = "files.tar.zst"
)

// Object is one stored object of a backup.
type Object struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a complete backup.
type Manifest struct {
	Format         int       `json:"format"`
	Product        string    `json:"product"`
	ProductVersion string    `json:"productVersion"`
	Engine         string    `json:"engine"`
	Environment    string    `json:"environment"`
	Increment      string    `json:"increment,omitempty"`
	StartedAt      time.Time `json:"startedAt"`
	CompletedAt    time.Time `json:"completedAt"`
	Objects        []Object  `json:"objects"`
}

// Size is the sum of the objects' sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, o := range m.Objects {
		n += o.Size
	}
	return n
}

var objectName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ParseManifest decodes and validates a manifest: unknown fields, unknown
// formats, odd object names and malformed sums are refused.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Format != FormatVersion {
		return nil, fmt.Errorf("manifest: format %d, this agent reads %d", m.Format, FormatVersion)
	}
	if m.Engine != "postgresql" && m.Engine != "mariadb" {
		return nil, fmt.Errorf("manifest: unknown engine %q", m.Engine)
	}
	if len(m.Objects) == 0 {
		return nil, fmt.Errorf("manifest: lists no objects")
	}
	seen := map[string]bool{}
	for _, o := range m.Objects {
		if !objectName.MatchString(o.Name) || o.Name == ManifestName {
			return nil, fmt.Errorf("manifest: invalid object name %q", o.Name)
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("manifest: object %q listed twice", o.Name)
		}
		seen[o.Name] = true
		if o.Size < 0 {
			return nil, fmt.Errorf("manifest: object %q has negative size", o.Name)
		}
		if b, err := hex.DecodeString(o.SHA256); err != nil || len(b) != 32 {
			return nil, fmt.Errorf("manifest: object %q has no valid sha256", o.Name)
		}
	}
	if m.CompletedAt.Before(m.StartedAt) {
		return nil, fmt.Errorf("manifest: completed before it started")
	}
	return m, nil
}
