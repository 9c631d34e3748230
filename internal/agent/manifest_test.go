package agent

import (
	"strings"
	"testing"
)

const validManifest = `{"format":1,"product":"espocrm","productVersion":"9.1.8","engine":"mariadb","environment":"production",
"startedAt":"2026-11-25T02:30:00Z","completedAt":"2026-11-25T02:31:10Z",
"objects":[{"name":"database.sql.zst","size":1024,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}`

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name, json, wantErr string
	}{
		{"valid", validManifest, ""},
		{"unknown format", strings.Replace(validManifest, `"format":1`, `"format":2`, 1), "format 2"},
		{"unknown engine", strings.Replace(validManifest, `"mariadb"`, `"oracle"`, 1), "unknown engine"},
		{"unknown field", strings.Replace(validManifest, `"format":1`, `"format":1,"extra":true`, 1), "unknown field"},
		{"traversal in a name", strings.Replace(validManifest, `database.sql.zst`, `../../etc/passwd`, 1), "invalid object name"},
		{"manifest lists itself", strings.Replace(validManifest, `database.sql.zst`, `manifest.json`, 1), "invalid object name"},
		{"bad sum", strings.Replace(validManifest, `9f86d0`, `zz86d0`, 1), "sha256"},
		{"negative size", strings.Replace(validManifest, `1024`, `-1`, 1), "negative size"},
		{"time travel", strings.Replace(validManifest, `02:31:10`, `02:29:10`, 1), "completed before"},
		{"no objects", strings.Replace(validManifest, validManifest[strings.Index(validManifest, `[`):strings.LastIndex(validManifest, `]`)+1], `[]`, 1), "no objects"},
		{"not json", `{"format":`, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.json))
			if tt.wantErr == "" {
				if err != nil || m.Size() != 1024 {
					t.Fatalf("ParseManifest = %v, %v", m, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	r := Result{Location: "s3://b/p/n", Size: 42, Checksum: "sha256:00", Objects: []Object{{Name: "database.sql.zst", Size: 42, SHA256: "00"}}}
	got, err := ParseResult(string(EncodeResult(r)))
	if err != nil || got.Location != r.Location || got.Size != 42 || len(got.Objects) != 1 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	long := Result{Error: strings.Repeat("x", 10000)}
	if n := len(EncodeResult(long)); n > MaxTerminationMessage {
		t.Errorf("encoded result of %d bytes exceeds the termination message limit", n)
	}
	if _, err := ParseResult(`{"size":3}`); err == nil {
		t.Error("a result with neither location nor error was accepted")
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":1,"engine":"postgresql","objects":[{"name":"a","size":1,"sha256":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err == nil && (m.Format != FormatVersion || len(m.Objects) == 0) {
			t.Fatalf("accepted an invalid manifest: %+v", m)
		}
	})
}

func FuzzParseResult(f *testing.F) {
	f.Add(`{"location":"s3://b/p","size":1}`)
	f.Add(`{"error":"boom"}`)
	f.Fuzz(func(t *testing.T, msg string) {
		_, _ = ParseResult(msg)
	})
}
