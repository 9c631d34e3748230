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

// appContainer is the application container the operator generates for
// product's test environment in the cloud.
func appContainer(t *testing.T, product crmv1alpha1.ProductName) corev1.Container {
	t.Helper()
	for _, c := range resources.Combinations("acme") {
		in := c.Input
		if in.Project.Spec.Product.Name != product || in.Env.Spec.Stage != crmv1alpha1.StageTest || in.Project.Spec.Hosting.Mode != crmv1alpha1.HostingCloud {
			continue
		}
		desired, _ := resources.EnvironmentObjects(in)
		for _, o := range desired {
			if d, ok := o.(*appsv1.Deployment); ok && d.Name == resources.AppName(in.Env.Name) {
				return d.Spec.Template.Spec.Containers[0]
			}
		}
	}
	t.Fatalf("no %s application", product)
	return corev1.Container{}
}

// asUser runs the command as uid:gid when this process is root (setpriv),
// as itself otherwise: either way not as root, as the operator's pods.
func asUser(uid, gid string, name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("setpriv", append([]string{"--reuid=" + uid, "--regid=" + gid, "--clear-groups", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// SuiteCRM's Apache setup refuses a port below 1024 to a non-root user,
// whatever the kernel allows: the stand-in refuses the pod main generated
// (80 as uid 1001) and takes the one generated now.
func TestTheSuiteCRMStandinRefusesAPrivilegedPortAsNonRoot(t *testing.T) {
	app := appContainer(t, crmv1alpha1.ProductSuiteCRM)
	dir, err := filepath.Abs("../../hack/images/suitecrm")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		port    string // APACHE_HTTP_PORT_NUMBER; empty: the generated one
		refusal string
	}{
		{"the generated pod", "", ""},
		{"Apache on 80, as main generated it", "80", "APACHE_HTTP_PORT_NUMBER: privileged port requested"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append(containerEnv(app), "BITNAMI_SCRIPTS_DIR="+dir, "SUITECRM_STANDIN_VALIDATE_ONLY=1", "PATH="+os.Getenv("PATH"))
			if tc.port != "" {
				env = append(env, "APACHE_HTTP_PORT_NUMBER="+tc.port, "APACHE_HTTPS_PORT_NUMBER=443")
			}
			cmd := asUser("1001", "0", "bash", filepath.Join(dir, "entrypoint.sh"), "/opt/bitnami/scripts/suitecrm/run.sh")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("the stand-in refused the generated pod: %v: %s", err, out)
			case tc.refusal != "" && (err == nil || !strings.Contains(string(out), tc.refusal)):
				t.Errorf("the stand-in took it (%v): %s", err, out)
			}
		})
	}
}

// EspoCRM's config:set takes a value beginning with "-" for an option: the
// stand-in refuses it, and no ESPOCRM_CONFIG_* value the operator generates
// begins so.
func TestTheEspoCRMStandinRefusesAnOptionForAValue(t *testing.T) {
	command, err := filepath.Abs("../../hack/images/espocrm/command")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	set := func(name, value string) ([]byte, error) {
		cmd := exec.Command("bash", command, "config:set", name, value)
		cmd.Env = append(os.Environ(), "ESPOCRM_ROOT="+root)
		return cmd.CombinedOutput()
	}
	if out, err := set("database.password", "-Kx3"); err == nil || !strings.Contains(string(out), `"-Kx3" option does not exist`) {
		t.Errorf("a value beginning with - was taken (%v): %s", err, out)
	}
	app := appContainer(t, crmv1alpha1.ProductEspoCRM)
	for _, v := range containerEnv(app) {
		name, value, _ := strings.Cut(v, "=")
		if !strings.HasPrefix(name, "ESPOCRM_CONFIG_") {
			continue
		}
		if out, err := set(name, value); err != nil {
			t.Errorf("%s=%s: %v: %s", name, value, err, out)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(root, "data", "config.php"))
	if !strings.Contains(string(conf), "ESPOCRM_CONFIG_SITE_URL=http://test.acme.crm.example.net") {
		t.Errorf("data/config.php:\n%s", conf)
	}
}

// Twenty's server stops without APP_SECRET.
func TestTheTwentyStandinRefusesAServerWithoutItsSecret(t *testing.T) {
	node, err := filepath.Abs("../../hack/images/twenty/node")
	if err != nil {
		t.Fatal(err)
	}
	app := appContainer(t, crmv1alpha1.ProductTwenty)
	var env []string
	for _, v := range containerEnv(app) {
		if !strings.HasPrefix(v, "APP_SECRET=") {
			env = append(env, v)
		}
	}
	cmd := exec.Command("bash", node, "dist/src/main")
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "APP_SECRET is not set") {
		t.Errorf("the server started without APP_SECRET (%v): %s", err, out)
	}
}

// Bitnami's restore_persisted_app replaces /opt/bitnami/suitecrm with a link
// to the volume on every start: as uid 1001 that needs /opt/bitnami
// writable by group 0, which the published 8.9.0 image does not make it
// (docs/products.md, SuiteCRM "persistence"). The stand-in refuses the
// image's layout and takes the derived one (RUN chmod g+rwX /opt/bitnami).
func TestTheSuiteCRMStandinNeedsOptBitnamiWritable(t *testing.T) {
	scripts, err := filepath.Abs("../../hack/images/suitecrm")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		mode    os.FileMode // of /opt/bitnami
		refusal string
	}{
		{"the published image: /opt/bitnami not writable", 0o555, "cannot remove"},
		{"a build with RUN chmod g+rwX /opt/bitnami", 0o775, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			// The pod's user (1001) walks down to it.
			for _, d := range []string{filepath.Dir(root), root} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			opt, volume := filepath.Join(root, "opt", "bitnami"), filepath.Join(root, "bitnami")
			for _, d := range []string{filepath.Join(opt, "suitecrm", "public"), filepath.Join(volume, "suitecrm", "public")} {
				if err := os.MkdirAll(d, 0o775); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range []string{filepath.Join(opt, "suitecrm"), filepath.Join(opt, "suitecrm", "public"), filepath.Join(volume, "suitecrm"), filepath.Join(volume, "suitecrm", "public"), volume} {
				if err := os.Chmod(d, 0o775); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(opt, tc.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(opt, 0o755) })
			cmd := asUser("1001", "0", "bash", "-c", `set -euo pipefail; . "$0/libpersistence.sh"; restore_persisted_app suitecrm "$BITNAMI_ROOT_DIR/suitecrm"`, scripts)
			cmd.Env = []string{"BITNAMI_ROOT_DIR=" + opt, "BITNAMI_VOLUME_DIR=" + volume, "PATH=" + os.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			switch {
			case tc.refusal == "" && err != nil:
				t.Errorf("the stand-in refused the derived image's layout: %v: %s", err, out)
			case tc.refusal != "" && (err == nil || !strings.Contains(string(out), tc.refusal)):
				t.Errorf("the stand-in took the published image's layout (%v): %s", err, out)
			case tc.refusal == "":
				if target, err := os.Readlink(filepath.Join(opt, "suitecrm")); err != nil || target != filepath.Join(volume, "suitecrm") {
					t.Errorf("/opt/bitnami/suitecrm links to %q (%v), want the volume", target, err)
				}
			}
		})
	}
}
