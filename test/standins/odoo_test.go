// Package standins runs the real node's stand-ins (hack/images) against
// what the operator generates, without a cluster: each stand-in refuses
// what its product refuses, so a generated pod the real image would refuse
// fails here and on the real node, not first at a customer's.
package standins

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

const odooStandin = "../../hack/images/odoo/odoo"

// odooInput is Odoo's environment of stage, hosted in the cloud (the
// project's SMTP server) or on premises (no mail server).
func odooInput(t *testing.T, stage crmv1alpha1.Stage, mode crmv1alpha1.HostingMode) *resources.EnvironmentInput {
	t.Helper()
	for _, c := range resources.Combinations("acme") {
		in := c.Input
		if in.Project.Spec.Product.Name == crmv1alpha1.ProductOdoo && in.Env.Spec.Stage == stage && in.Project.Spec.Hosting.Mode == mode {
			return in
		}
	}
	t.Fatalf("no Odoo %s %s", stage, mode)
	return nil
}

// containerEnv is c's environment as the kubelet would give it: a Secret's
// key becomes a stand-in value.
func containerEnv(c corev1.Container) []string {
	var vars []string
	for _, v := range c.Env {
		value := v.Value
		if v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil {
			value = "secret-" + v.ValueFrom.SecretKeyRef.Key
		}
		vars = append(vars, v.Name+"="+value)
	}
	return vars
}

// stubs is a directory of commands standing in for the database client:
// psql records its arguments, answers "f" to whether Odoo's tables exist,
// whether base is installed from STUB_BASE (1 unless 0), and 1 otherwise.
func stubs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	psql := "#!/bin/sh\necho \"$*\" >>\"$STUB_LOG\"\ncase \"$*\" in *ir_module_module*) [ \"$STUB_BASE\" = 0 ] || echo 1;; *to_regclass*) echo f;; *) echo 1;; esac\n"
	if err := os.WriteFile(filepath.Join(dir, "psql"), []byte(psql), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The configuration the operator's prepare step writes is one Odoo 18.0
// loads, with and without a mail server, and the stand-in refuses the one
// Odoo refuses (an empty smtp_port: odoo/tools/config.py casts it at import).
func TestOdooLoadsTheGeneratedConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stage    crmv1alpha1.Stage
		mode     crmv1alpha1.HostingMode
		smtpPort string // "" when no mail line is written
	}{
		{"production without a mail server", crmv1alpha1.StageProduction, crmv1alpha1.HostingOnPrem, ""},
		{"production with the project's server", crmv1alpha1.StageProduction, crmv1alpha1.HostingCloud, "587"},
		{"test with its catcher", crmv1alpha1.StageTest, crmv1alpha1.HostingCloud, "1025"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := odooInput(t, tc.stage, tc.mode)
			desired, _ := resources.EnvironmentObjects(in)
			var app *appsv1.Deployment
			for _, o := range desired {
				if d, ok := o.(*appsv1.Deployment); ok && d.Name == resources.AppName(in.Env.Name) {
					app = d
				}
			}
			if app == nil || len(app.Spec.Template.Spec.InitContainers) == 0 {
				t.Fatal("no application Deployment with a prepare step")
			}
			prepare := app.Spec.Template.Spec.InitContainers[0]
			dir := t.TempDir()
			rc := filepath.Join(dir, "odoo.conf")
			env := append(containerEnv(prepare), "ODOO_RC="+rc, "PATH="+stubs(t)+":"+os.Getenv("PATH"), "STUB_LOG="+filepath.Join(dir, "psql.log"))
			cmd := exec.Command(prepare.Command[0], append(prepare.Command[1:], prepare.Args...)...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the prepare step failed: %v: %s", err, out)
			}
			conf, err := os.ReadFile(rc)
			if err != nil {
				t.Fatal(err)
			}
			load := exec.Command("bash", odooStandin, "--version")
			load.Env = env
			if out, err := load.CombinedOutput(); err != nil {
				t.Fatalf("Odoo would not load the configuration: %v: %s\n%s", err, out, conf)
			}
			port := ""
			for _, line := range strings.Split(string(conf), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "smtp_port" {
					port = strings.TrimSpace(v)
				}
			}
			if port != tc.smtpPort {
				t.Errorf("smtp_port is %q, want %q:\n%s", port, tc.smtpPort, conf)
			}
		})
	}
}

// The stand-in is as strict as Odoo: a configuration Odoo 18.0 refuses at
// import stops it before it does anything.
func TestTheOdooStandinRefusesWhatOdooRefuses(t *testing.T) {
	for _, tc := range []struct{ name, conf, refusal string }{
		{"an empty smtp_port", "[options]\ndb_host = db\nsmtp_port = \n", "option smtp_port: invalid integer value: ''"},
		{"a word for db_port", "[options]\ndb_port = five\n", "option db_port: invalid integer value: 'five'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := filepath.Join(t.TempDir(), "odoo.conf")
			if err := os.WriteFile(rc, []byte(tc.conf), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", odooStandin, "--version")
			cmd.Env = append(os.Environ(), "ODOO_RC="+rc)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.refusal) {
				t.Errorf("the stand-in took %q (%v): %s", tc.conf, err, out)
			}
		})
	}
}

// The init Job installs base once and sets the admin password on every
// run: a run after one whose password step failed finishes it.
func TestTheOdooInitSetsTheAdminPasswordOnEveryRun(t *testing.T) {
	for _, tc := range []struct {
		name          string
		baseInstalled bool
		wantInstall   bool
	}{
		{"an empty database", false, true},
		{"base installed by an earlier run", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := odooInput(t, crmv1alpha1.StageTest, crmv1alpha1.HostingCloud)
			job := resources.ProductJob(in, resources.InitJobName("test"), *in.Profile.Init, 600)
			c := job.Spec.Template.Spec.Containers[0]
			if len(c.Command) != 3 || c.Command[1] != "-c" {
				t.Fatalf("the init Job runs %v, not a script", c.Command)
			}
			dir := t.TempDir()
			log := filepath.Join(dir, "calls.log")
			// The image's entrypoint, recording what it is asked and given.
			entrypoint := filepath.Join(dir, "entrypoint.sh")
			if err := os.WriteFile(entrypoint, []byte("#!/bin/sh\necho \"entrypoint $*\" >>\"$STUB_LOG\"\n[ \"$2\" = shell ] && cat >>\"$STUB_LOG\"\nexit 0\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			bin := stubs(t)
			base := "0"
			if tc.baseInstalled {
				base = "1"
			}
			cmd := exec.Command(c.Command[0], "-c", strings.ReplaceAll(c.Command[2], "/entrypoint.sh", entrypoint))
			cmd.Env = append(containerEnv(c), "PATH="+bin+":"+os.Getenv("PATH"), "STUB_LOG="+log, "STUB_BASE="+base)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the init script failed: %v: %s", err, out)
			}
			calls, _ := os.ReadFile(log)
			if got := strings.Contains(string(calls), "-i base"); got != tc.wantInstall {
				t.Errorf("base installed: %v, want %v:\n%s", got, tc.wantInstall, calls)
			}
			if !strings.Contains(string(calls), "entrypoint odoo shell -d") ||
				!strings.Contains(string(calls), "env.ref('base.user_admin').write({'password': __import__('os').environ['ADMIN_PASSWORD']})\nenv.cr.commit()") {
				t.Errorf("the admin password was not set and committed:\n%s", calls)
			}
		})
	}
}
