//go:build real

package real

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// productsOnRealPods runs every product on its stand-in (hack/images/<product>,
// written from the product's contract and refusing what the real image
// refuses): each reaches Ready through its own start path, answers its
// health path through its Service, keeps what the operator set (the public
// URL), survives a restore of its own backup, and takes an upgrade to the
// next version through a promotion. Two at a time: the node has 2 CPUs.
func productsOnRealPods(t *testing.T, s3 *s3Server) {
	type product struct {
		name, engine, version, next, health string
		// image is the stand-in's name in the registry; empty: the
		// operator's default image (the chart maps it to the stand-in).
		image string
		// settled checks what the operator set in the product, once Ready.
		settled func(t *testing.T, p project, url string)
		// upgraded checks that the stand-in ran next's upgrade.
		upgraded func(t *testing.T, p project)
	}
	espocrm := product{name: "espocrm", engine: "mariadb", version: "10.0.3", next: "10.0.4", health: "/",
		settled: func(t *testing.T, p project, url string) {
			// ESPOCRM_CONFIG_SITE_URL, applied by every daemon start.
			framework.Eventually(t, 2*time.Minute, "EspoCRM's siteUrl is the environment's URL", func() (bool, error) {
				out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", p.name, "deploy/test-app", "-c", "app", "--", "bin/command", "config:get", "siteUrl")
				return strings.TrimSpace(out) == url, nil
			})
		},
		upgraded: func(t *testing.T, p project) {
			if got := p.sql(t, "test", "SELECT version FROM schema_version"); got != "10.0.4" {
				t.Errorf("EspoCRM's schema is at %q after the promotion, want 10.0.4 (bin/command migrate)", got)
			}
		}}
	// The published image as a non-root pod stops at restore_persisted_app:
	// the project runs the documented build with /opt/bitnami group-writable.
	suitecrm := product{name: "suitecrm", engine: "mariadb", version: "8.9.0", next: "8.9.1", health: "/", image: "suitecrm-groupwritable",
		settled: func(t *testing.T, p project, url string) {
			framework.Eventually(t, 2*time.Minute, "SuiteCRM's site_url override is the environment's URL", func() (bool, error) {
				out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", p.name, "deploy/test-app", "-c", "app", "--", "cat", "/bitnami/suitecrm/public/legacy/config_override.php")
				return strings.Contains(out, fmt.Sprintf("$sugar_config['site_url'] = '%s';", url)), nil
			})
			// Installed through Apache's unprivileged port: the installer's URL names it.
			out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", p.name, "deploy/test-app", "-c", "app", "--", "grep", "site_url", "/bitnami/suitecrm/public/legacy/config.php")
			if !strings.Contains(out, ":8080'") {
				t.Errorf("SuiteCRM's installer wrote %q, want the URL on Apache's port 8080", out)
			}
		},
		upgraded: func(t *testing.T, p project) {
			if out, _ := cluster.Run(t, nil, kubectl, "logs", "-n", p.name, "deploy/test-app", "-c", "app"); !strings.Contains(out, "serving SuiteCRM 8.9.1") {
				t.Errorf("the application after the promotion: %s", out)
			}
		}}
	twenty := product{name: "twenty", engine: "postgresql", version: "v1.8.0", next: "v1.9.0", health: "/healthz",
		settled: func(t *testing.T, p project, url string) {
			if out, _ := cluster.Run(t, nil, kubectl, "logs", "-n", p.name, "deploy/test-app", "-c", "app"); !strings.Contains(out, "SERVER_URL "+url) || strings.Contains(out, "telemetry on") {
				t.Errorf("Twenty's server started with: %s", out)
			}
		},
		upgraded: func(t *testing.T, p project) {
			if got := p.sql(t, "test", "SELECT version FROM core.workspace"); got != "v1.9.0" {
				t.Errorf("Twenty's workspace is at %q after the promotion, want v1.9.0 (yarn command:prod upgrade)", got)
			}
		}}
	odoo := product{name: "odoo", engine: "postgresql", version: "18.0", next: "18.0.1", health: "/web/health",
		settled: func(t *testing.T, p project, _ string) { checkOdooSettings(t, p, "test") },
		upgraded: func(t *testing.T, p project) {
			if got := p.sql(t, "test", "SELECT count(*) FROM ir_module_module WHERE latest_version LIKE '18.0.2%'"); got != "3" {
				t.Errorf("%s of Odoo's modules were updated by the promotion (-u all), want 3", got)
			}
		}}
	for _, pair := range [][]product{{espocrm, twenty}, {suitecrm, odoo}} {
		t.Run(pair[0].name+" and "+pair[1].name, func(t *testing.T) {
			for _, c := range pair {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					p := project{name: "p-" + c.name, engine: c.engine, main: "test", stages: "test, production", product: c.name, version: c.version}
					if c.image != "" {
						ref := image(t, c.image)
						p.image = ref[:strings.LastIndex(ref, ":")] // the version is the tag
					}
					p.create(t, s3)
					p.environment(t, "test", "test", "Delete")
					t.Cleanup(func() { cluster.Run(t, nil, kubectl, "delete", "environment/test", "-n", p.name, "--timeout=120s") })
					start := time.Now()
					cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", p.name, "--timeout=360s")
					t.Logf("%s %s Ready after %s", c.name, c.version, time.Since(start).Round(time.Second))
					url := cluster.Get(t, p.name, "environment/test", "{.status.url}")

					port := cluster.Get(t, p.name, "service/test-app", "{.spec.ports[0].port}")
					status := func() string {
						out, _ := cluster.Run(t, nil, kubectl, "exec", "-n", p.name, "deploy/test-app", "-c", "app", "--", "timeout", "5", "bash", "-c",
							fmt.Sprintf(`exec 3<>/dev/tcp/test-app/%s && printf 'GET %s HTTP/1.0\r\nHost: test-app\r\n\r\n' >&3 && head -1 <&3`, port, c.health))
						return strings.TrimSpace(out)
					}
					if got := status(); !strings.Contains(got, " 200 ") {
						t.Errorf("GET %s through Service test-app:%s answered %q", c.health, port, got)
					}
					c.settled(t, p, url)

					// A restore of its own backup brings back what was there.
					p.sql(t, "test", "CREATE TABLE standin_marker (what varchar(20)); INSERT INTO standin_marker VALUES ('before')")
					apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Backup\nmetadata: {name: own, namespace: %s}\nspec: {environmentRef: {name: test}}\n", p.name))
					cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "backup/own", "-n", p.name, "--timeout=180s")
					p.sql(t, "test", "INSERT INTO standin_marker VALUES ('after')")
					apply(t, fmt.Sprintf("apiVersion: crm.crmops.io/v1alpha1\nkind: Restore\nmetadata: {name: own, namespace: %s}\nspec: {backupRef: {name: own}, environmentRef: {name: test}}\n", p.name))
					restoreCompletes(t, p.name, "own")
					cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", p.name, "--timeout=240s")
					if got := p.sql(t, "test", "SELECT count(*) FROM standin_marker WHERE what = 'after'") + " " + p.sql(t, "test", "SELECT count(*) FROM standin_marker"); got != "0 1" {
						t.Errorf("after the restore of its own backup the marker rows are %q, want only 'before'", got)
					}
					if got := status(); !strings.Contains(got, " 200 ") {
						t.Errorf("after the restore GET %s answered %q", c.health, got)
					}

					// The next version through a promotion: backup, upgrade, rollout, verification.
					apply(t, fmt.Sprintf(`apiVersion: crm.crmops.io/v1alpha1
kind: Increment
metadata: {name: sprint-1, namespace: %s}
spec:
  projectRef: {name: %s}
  sprint: 1
  version: %q
  autoPromote: true
  changes: [{id: CRM-1, title: "%s %s", hours: 4}]
`, p.name, p.name, c.next, c.name, c.next))
					cluster.Must(t, kubectl, "wait", "--for=condition=Verified", "increment/sprint-1", "-n", p.name, "--timeout=360s")
					if got := cluster.Get(t, p.name, "environment/test", "{.status.version}"); got != c.next {
						t.Errorf("test runs %q after the promotion, want %s", got, c.next)
					}
					cluster.Must(t, kubectl, "wait", "--for=condition=Ready", "environment/test", "-n", p.name, "--timeout=240s")
					c.upgraded(t, p)
					if got := status(); !strings.Contains(got, " 200 ") {
						t.Errorf("after the upgrade GET %s answered %q", c.health, got)
					}
				})
			}
		})
	}
	// The published SuiteCRM image, alone on the node once the pairs are
	// done: as the operator's uid 1001 it stops where the real one does.
	t.Run("the published suitecrm image stops at restore_persisted_app", func(t *testing.T) {
		p := project{name: "p-suitecrm"}
		p.environment(t, "published", "test", "Delete", "  image: "+image(t, "suitecrm")+"\n")
		t.Cleanup(func() {
			cluster.Run(t, nil, kubectl, "delete", "environment/published", "-n", p.name, "--timeout=120s")
		})
		framework.Eventually(t, 4*time.Minute, "the published image stops as uid 1001 at restore_persisted_app", func() (bool, error) {
			// The running container's log, or the last one's while it waits to restart.
			out, _ := cluster.Run(t, nil, kubectl, "logs", "-n", p.name, "deploy/published-app", "-c", "app")
			previous, _ := cluster.Run(t, nil, kubectl, "logs", "-n", p.name, "deploy/published-app", "-c", "app", "--previous")
			return strings.Contains(out+previous, "cannot remove '/opt/bitnami/suitecrm'"), nil
		})
		if got := cluster.Get(t, p.name, "environment/published", `{.status.conditions[?(@.type=="Ready")].status}`); got == "True" {
			t.Errorf("the published SuiteCRM image is Ready as uid 1001")
		}
	})
}
