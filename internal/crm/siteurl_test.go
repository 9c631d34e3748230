package crm

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The scheduler's site URL step keeps the administrators' overrides,
// replaces its own line, and quotes the URL for PHP.
func TestSuiteCRMSiteURLOverride(t *testing.T) {
	for _, tc := range []struct {
		name, before, url, want string
	}{
		{"no override yet", "", "https://crm.acme.example",
			"<?php\n$sugar_config['site_url'] = 'https://crm.acme.example'; // crm-operator: site URL\n"},
		{"an administrator's override and an older URL", "<?php\n/***CONFIGURATOR***/\n$sugar_config['default_currency_iso4217'] = 'EUR';\n/***CONFIGURATOR***/\n$sugar_config['site_url'] = 'http://old.example:8080'; // crm-operator: site URL\n",
			"https://new.example",
			"<?php\n/***CONFIGURATOR***/\n$sugar_config['default_currency_iso4217'] = 'EUR';\n/***CONFIGURATOR***/\n$sugar_config['site_url'] = 'https://new.example'; // crm-operator: site URL\n"},
		{"a closing tag", "<?php\n$sugar_config['x'] = 1;\n?>\n", "http://test-app.acme.svc:8080",
			"<?php\n$sugar_config['x'] = 1;\n\n$sugar_config['site_url'] = 'http://test-app.acme.svc:8080'; // crm-operator: site URL\n"},
		{"a quote in the URL", "", "https://crm.acme.example/o'brien",
			"<?php\n$sugar_config['site_url'] = 'https://crm.acme.example/o\\'brien'; // crm-operator: site URL\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			legacy := filepath.Join(dir, "public", "legacy")
			if err := os.MkdirAll(legacy, 0o755); err != nil {
				t.Fatal(err)
			}
			override := filepath.Join(legacy, "config_override.php")
			if tc.before != "" {
				if err := os.WriteFile(override, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			run := func() {
				cmd := exec.Command("bash", "-ec", suiteSiteURL)
				cmd.Env = append(os.Environ(), "SUITECRM_VOLUME_DIR="+dir, "SUITECRM_SITE_URL="+tc.url)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
			}
			run()
			got, err := os.ReadFile(override)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("config_override.php:\n%s\nwant:\n%s", got, tc.want)
			}
			// A second run changes nothing.
			run()
			if again, _ := os.ReadFile(override); string(again) != tc.want {
				t.Errorf("a second run left:\n%s", again)
			}
			if !strings.HasPrefix(string(got), "<?php") {
				t.Error("the override does not start as PHP")
			}
		})
	}
}
