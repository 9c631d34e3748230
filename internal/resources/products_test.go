package resources

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// input is one product's environment of a stage, hosted in the cloud
// (ingress host, TLS for production) unless onPrem.
func input(t *testing.T, product crmv1alpha1.ProductName, stage crmv1alpha1.Stage, onPrem bool) *EnvironmentInput {
	t.Helper()
	for _, c := range Combinations("acme") {
		if c.Input.Project.Spec.Product.Name == product && c.Input.Env.Spec.Stage == stage &&
			(c.Input.Project.Spec.Hosting.Mode == crmv1alpha1.HostingOnPrem) == onPrem {
			return c.Input
		}
	}
	t.Fatalf("no combination %s/%s", product, stage)
	return nil
}

func envValue(vars []corev1.EnvVar, name string) (string, bool) {
	for _, v := range vars {
		if v.Name == name {
			if v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil {
				return "secret:" + v.ValueFrom.SecretKeyRef.Name + "/" + v.ValueFrom.SecretKeyRef.Key, true
			}
			return v.Value, true
		}
	}
	return "", false
}

func deployment(t *testing.T, objs []any, name string) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok && d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s", name)
	return nil
}

func objects(in *EnvironmentInput) []any {
	desired, _ := EnvironmentObjects(in)
	out := make([]any, len(desired))
	for i, o := range desired {
		out[i] = o
	}
	return out
}

// Each product's pods keep the contract its image's sources state (see
// docs/products.md): user and group, writable paths, the files layout,
// the install step and how the application starts. Expected values are
// the images' facts, written here, not read from the profiles.
func TestProductContracts(t *testing.T) {
	cases := []struct {
		product        crmv1alpha1.ProductName
		uid, gid       int64
		port           int32
		args           []string
		mounts         map[string]string // path -> subPath of the files volume
		env            map[string]string
		initScriptHas  []string // the init Job's command or args contain these
		prepareHas     []string
		components     []string
		scratch        []string
		readOnlyRootFS bool
	}{
		{
			product: crmv1alpha1.ProductOdoo, uid: 100, gid: 101, port: 8069, args: []string{"odoo"},
			mounts: map[string]string{"/var/lib/odoo": ""},
			env:    map[string]string{"HOME": "/var/lib/odoo", "ODOO_RC": "/run/odoo/odoo.conf", "ODOO_MASTER_PASSWORD": "secret:test-credentials/app-secret"},
			// The empty database is initialized once, through the image's entrypoint.
			initScriptHas: []string{"/entrypoint.sh odoo -d \"$ODOO_DATABASE\" -i base --without-demo=all --stop-after-init", "odoo shell", "ir_module_module"},
			prepareHas:    []string{"list_db = False", "admin_passwd = $ODOO_MASTER_PASSWORD", "db_password = $PASSWORD", "data_dir = /var/lib/odoo", "addons_path = /mnt/extra-addons"},
			scratch:       []string{"/tmp", "/run/odoo"}, readOnlyRootFS: true,
		},
		{
			product: crmv1alpha1.ProductEspoCRM, uid: 33, gid: 33, port: 80, args: []string{"/usr/local/bin/apache2-foreground"},
			mounts: map[string]string{"/var/www/html/data": "data", "/var/www/html/custom": "custom", "/var/www/html/client/custom": "client-custom"},
			env: map[string]string{
				"ESPOCRM_CONFIG_WEB_SOCKET_URL":                     "ws://test.acme.crm.example.net/ws",
				"ESPOCRM_CONFIG_SITE_URL":                           "http://test.acme.crm.example.net",
				"ESPOCRM_CONFIG_WEB_SOCKET_ZERO_M_Q_SUBMISSION_DSN": "tcp://test-websocket:7777",
			},
			initScriptHas: []string{"apache2ctl"},
			prepareHas:    []string{"mkdir -p /crm-files/data /crm-files/custom /crm-files/client-custom"},
			components:    []string{"daemon", "websocket"},
			scratch:       []string{"/tmp", "/var/run/apache2", "/var/lock/apache2"},
		},
		{
			// Bitnami's Apache setup refuses a port below 1024 to a non-root user.
			product: crmv1alpha1.ProductSuiteCRM, uid: 1001, gid: 0, port: 8080,
			mounts: map[string]string{"/bitnami/suitecrm": ""},
			env: map[string]string{"APACHE_HTTP_PORT_NUMBER": "8080", "APACHE_HTTPS_PORT_NUMBER": "8443", "SUITECRM_HOST": "test.acme.crm.example.net",
				"SUITECRM_ENABLE_HTTPS": "no", "SUITECRM_SITE_URL": "http://test.acme.crm.example.net"},
			components: []string{"scheduler"},
			scratch:    []string{"/tmp"},
		},
		{
			product: crmv1alpha1.ProductTwenty, uid: 1000, gid: 1000, port: 3000,
			mounts: map[string]string{"/app/packages/twenty-server/.local-storage": ""},
			env: map[string]string{"HOME": "/tmp", "DISABLE_DB_MIGRATIONS": "true",
				// Telemetry is on by default; stored settings would override these.
				"TELEMETRY_ENABLED": "false", "IS_CONFIG_VARIABLES_IN_DB_ENABLED": "false"},
			initScriptHas: []string{"true"},
			components:    []string{"worker"},
			scratch:       []string{"/tmp", "/app/docker-data"}, readOnlyRootFS: true,
		},
	}
	for _, tc := range cases {
		t.Run(string(tc.product), func(t *testing.T) {
			in := input(t, tc.product, crmv1alpha1.StageTest, false)
			objs := objects(in)
			app := deployment(t, objs, AppName("test"))
			spec := app.Spec.Template.Spec
			c := spec.Containers[0]
			sc := spec.SecurityContext
			if *sc.RunAsUser != tc.uid || *sc.RunAsGroup != tc.gid || *sc.FSGroup != tc.gid {
				t.Errorf("runs as %d:%d fsGroup %d, the image needs %d:%d", *sc.RunAsUser, *sc.RunAsGroup, *sc.FSGroup, tc.uid, tc.gid)
			}
			if sc.FSGroupChangePolicy == nil || *sc.FSGroupChangePolicy != corev1.FSGroupChangeOnRootMismatch {
				t.Errorf("fsGroupChangePolicy %v: a large files tree would be walked on every start", sc.FSGroupChangePolicy)
			}
			if c.Ports[0].ContainerPort != tc.port {
				t.Errorf("port %d, want %d", c.Ports[0].ContainerPort, tc.port)
			}
			if c.Command != nil || strings.Join(c.Args, " ") != strings.Join(tc.args, " ") {
				t.Errorf("command %v args %v: the image's entrypoint must run with args %v", c.Command, c.Args, tc.args)
			}
			got := map[string]string{}
			for _, m := range c.VolumeMounts {
				if m.Name == "files" {
					got[m.MountPath] = m.SubPath
				}
			}
			if len(got) != len(tc.mounts) {
				t.Errorf("files mounts %v, want %v", got, tc.mounts)
			}
			for path, sub := range tc.mounts {
				if s, ok := got[path]; !ok || s != sub {
					t.Errorf("files volume at %s (subPath %q): got %v", path, sub, got)
				}
			}
			for name, want := range tc.env {
				if v, ok := envValue(c.Env, name); !ok || v != want {
					t.Errorf("env %s = %q, want %q", name, v, want)
				}
			}
			for _, p := range tc.scratch {
				if !mounts(c, p) {
					t.Errorf("%s is not writable (no emptyDir)", p)
				}
			}
			if *c.SecurityContext.ReadOnlyRootFilesystem != tc.readOnlyRootFS {
				t.Errorf("readOnlyRootFilesystem %v, want %v", *c.SecurityContext.ReadOnlyRootFilesystem, tc.readOnlyRootFS)
			}
			if len(tc.prepareHas) > 0 {
				if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "prepare" {
					t.Fatalf("no prepare step before the application: %v", spec.InitContainers)
				}
				script := strings.Join(append(spec.InitContainers[0].Command, spec.InitContainers[0].Args...), " ")
				for _, want := range tc.prepareHas {
					if !strings.Contains(script, want) {
						t.Errorf("prepare step lacks %q:\n%s", want, script)
					}
				}
				if *spec.InitContainers[0].SecurityContext.RunAsNonRoot != true {
					t.Error("prepare step may run as root")
				}
				// A subPath mount would have the kubelet create its
				// directory as root before the prepare step runs.
				for _, m := range spec.InitContainers[0].VolumeMounts {
					if m.SubPath != "" {
						t.Errorf("the prepare step mounts subPath %s", m.SubPath)
					}
				}
			}
			for _, name := range tc.components {
				d := deployment(t, objs, "test-"+name)
				if *d.Spec.Template.Spec.SecurityContext.RunAsGroup != tc.gid {
					t.Errorf("component %s runs with group %d", name, *d.Spec.Template.Spec.SecurityContext.RunAsGroup)
				}
			}
			// The files are the product's user's: a backup reads what it may
			// read, a restore extracts them so that it may chown or write
			// them at its next start.
			in.Project.Spec.Backup = &crmv1alpha1.BackupPolicy{Target: crmv1alpha1.BackupTarget{Volume: &crmv1alpha1.VolumeTarget{ClaimName: "backups"}}}
			for _, command := range []string{"backup", "restore"} {
				job, err := AgentJob(AgentJobInput{EnvironmentInput: in, Command: command, JobName: "r-" + command, BackupName: "b"})
				if err != nil {
					t.Fatal(err)
				}
				if jsc := job.Spec.Template.Spec.SecurityContext; *jsc.RunAsUser != tc.uid || *jsc.RunAsGroup != tc.gid {
					t.Errorf("the %s Job handles the files as %d:%d, the product runs as %d:%d", command, *jsc.RunAsUser, *jsc.RunAsGroup, tc.uid, tc.gid)
				}
			}
			if in.Profile.Init == nil {
				if len(tc.initScriptHas) > 0 {
					t.Fatal("no init step")
				}
				return
			}
			job := ProductJob(in, InitJobName("test"), *in.Profile.Init, 600)
			jc := job.Spec.Template.Spec.Containers[0]
			script := strings.Join(append(append([]string{}, jc.Command...), jc.Args...), " ")
			for _, want := range tc.initScriptHas {
				if !strings.Contains(script, want) {
					t.Errorf("init Job %q lacks %q", script, want)
				}
			}
			if *job.Spec.BackoffLimit != 0 || job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Error("the init Job retries on its own")
			}
			if v, _ := envValue(jc.Env, "DISABLE_DB_MIGRATIONS"); tc.product == crmv1alpha1.ProductTwenty && v != "false" {
				t.Errorf("Twenty's init runs with DISABLE_DB_MIGRATIONS=%q: its entrypoint would skip the migrations", v)
			}
		})
	}
}

// EspoCRM's websocket component: the application submits on ZeroMQ 7777
// and browsers connect on 8080 through /ws, with wss behind TLS.
func TestEspoCRMWebsocket(t *testing.T) {
	in := input(t, crmv1alpha1.ProductEspoCRM, crmv1alpha1.StageProduction, false)
	desired, _ := EnvironmentObjects(in)
	svc := find[*corev1.Service](desired, "production-websocket")
	if svc == nil {
		t.Fatal("no websocket Service")
	}
	ports := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		ports[p.Port] = true
	}
	if !ports[8080] || !ports[7777] {
		t.Errorf("websocket Service ports %v, want 8080 and 7777", svc.Spec.Ports)
	}
	ing := find[*networkingv1.Ingress](desired, "production")
	var wsBackend int32
	for _, p := range ing.Spec.Rules[0].HTTP.Paths {
		if p.Path == "/ws" {
			wsBackend = p.Backend.Service.Port.Number
		}
	}
	if wsBackend != 8080 {
		t.Errorf("/ws routes to port %d, want 8080", wsBackend)
	}
	app := find[*appsv1.Deployment](desired, AppName("production"))
	if v, _ := envValue(app.Spec.Template.Spec.Containers[0].Env, "ESPOCRM_CONFIG_WEB_SOCKET_URL"); v != "wss://crm.acme.example/ws" {
		t.Errorf("webSocketUrl %q, want wss://crm.acme.example/ws", v)
	}
	np := find[*networkingv1.NetworkPolicy](desired, AppName("production"))
	allowed := map[int32]bool{}
	for _, p := range np.Spec.Ingress[0].Ports {
		allowed[p.Port.IntVal] = true
	}
	if !allowed[7777] || !allowed[8080] {
		t.Errorf("the application policy admits ports %v", allowed)
	}
}

// SuiteCRM behind TLS: Apache stays on its unprivileged ports without
// HTTPS of its own (SUITECRM_ENABLE_HTTPS=yes aborts the first install),
// and the scheduler overrides the site URL with the public https one.
func TestSuiteCRMSiteURL(t *testing.T) {
	in := input(t, crmv1alpha1.ProductSuiteCRM, crmv1alpha1.StageProduction, false)
	desired, _ := EnvironmentObjects(in)
	app := find[*appsv1.Deployment](desired, AppName("production"))
	vars := app.Spec.Template.Spec.Containers[0].Env
	for name, want := range map[string]string{"SUITECRM_HOST": "crm.acme.example", "SUITECRM_ENABLE_HTTPS": "no",
		"APACHE_HTTP_PORT_NUMBER": "8080", "APACHE_HTTPS_PORT_NUMBER": "8443", "SUITECRM_SITE_URL": "https://crm.acme.example"} {
		if v, _ := envValue(vars, name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if s := app.Spec.Template.Spec.SecurityContext.Sysctls; len(s) != 0 {
		t.Errorf("Apache on 8080 needs no sysctl: %v", s)
	}
	scheduler := find[*appsv1.Deployment](desired, "production-scheduler").Spec.Template.Spec.Containers[0]
	if script := strings.Join(scheduler.Command, " "); !strings.Contains(script, "config_override.php") {
		t.Errorf("the scheduler does not set the site URL:\n%s", script)
	}
	if v, _ := envValue(scheduler.Env, "SUITECRM_SITE_URL"); v != "https://crm.acme.example" {
		t.Errorf("the scheduler's SUITECRM_SITE_URL is %q", v)
	}
}

// The files volume works on ReadWriteOnce classes: the pods that share it
// run on the application's node; ReadWriteMany only when asked.
func TestFilesVolumeAccessMode(t *testing.T) {
	for _, tc := range []struct{ asked, existing, rwx bool }{{false, false, false}, {true, false, true}, {false, true, true}} {
		rwx := tc.rwx
		in := input(t, crmv1alpha1.ProductEspoCRM, crmv1alpha1.StageProduction, false)
		in.Env = in.Env.DeepCopy()
		if tc.asked {
			in.Env.Spec.Storage.FilesAccessMode = corev1.ReadWriteMany
		}
		// A claim created ReadWriteMany before stays so: an access mode is immutable.
		in.FilesClaimShared = tc.existing
		desired, _ := EnvironmentObjects(in)
		pvc := find[*corev1.PersistentVolumeClaim](desired, FilesClaimName("production"))
		want := corev1.ReadWriteOnce
		if rwx {
			want = corev1.ReadWriteMany
		}
		if pvc.Spec.AccessModes[0] != want {
			t.Errorf("rwx=%v: files claim %v, want %s", rwx, pvc.Spec.AccessModes, want)
		}
		for _, name := range []string{AppName("production"), "production-daemon", "production-websocket"} {
			a := find[*appsv1.Deployment](desired, name).Spec.Template.Spec.Affinity
			pinned := a != nil && a.PodAffinity != nil && len(a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 1 &&
				a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey == corev1.LabelHostname &&
				a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels[LabelComponent] == ComponentApp
			if pinned == rwx {
				t.Errorf("rwx=%v: %s pinned to the application's node = %v", rwx, name, pinned)
			}
		}
	}
}

// Mail: every environment but production sends to its own catcher; a real
// server outside production needs the project's allowance.
func TestMailNeverLeavesNonProduction(t *testing.T) {
	real := &crmv1alpha1.SMTPServer{Host: "smtp.kunde.example", Port: 587, From: "crm@kunde.example"}
	cases := []struct {
		name      string
		stage     crmv1alpha1.Stage
		envSMTP   bool
		allow     bool
		wantHost  string
		wantCatch bool
	}{
		{"test goes to the catcher", crmv1alpha1.StageTest, false, false, "test-mail", true},
		{"a real server on test is ignored without the allowance", crmv1alpha1.StageTest, true, false, "test-mail", true},
		{"a real server on test with the allowance", crmv1alpha1.StageTest, true, true, "smtp.kunde.example", false},
		{"production uses the project's server", crmv1alpha1.StageProduction, false, false, "smtp.acme.example", false},
		{"production's own server wins", crmv1alpha1.StageProduction, true, false, "smtp.kunde.example", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, product := range []crmv1alpha1.ProductName{crmv1alpha1.ProductOdoo, crmv1alpha1.ProductEspoCRM, crmv1alpha1.ProductSuiteCRM, crmv1alpha1.ProductTwenty} {
				in := input(t, product, tc.stage, false)
				in.Project = in.Project.DeepCopy()
				in.Env = in.Env.DeepCopy()
				in.Project.Spec.Mail.AllowRealMailOutsideProduction = tc.allow
				if tc.envSMTP {
					in.Env.Spec.Mail = &crmv1alpha1.EnvironmentMail{SMTP: real}
				}
				desired, absent := EnvironmentObjects(in)
				hostVar := map[crmv1alpha1.ProductName]string{
					crmv1alpha1.ProductOdoo: "ODOO_SMTP_SERVER", crmv1alpha1.ProductEspoCRM: "ESPOCRM_CONFIG_SMTP_SERVER",
					crmv1alpha1.ProductSuiteCRM: "SUITECRM_SMTP_HOST", crmv1alpha1.ProductTwenty: "EMAIL_SMTP_HOST",
				}[product]
				app := find[*appsv1.Deployment](desired, AppName(in.Env.Name))
				if v, _ := envValue(app.Spec.Template.Spec.Containers[0].Env, hostVar); v != tc.wantHost {
					t.Errorf("%s: %s = %q, want %q", product, hostVar, v, tc.wantHost)
				}
				catcher := find[*appsv1.Deployment](desired, MailName(in.Env.Name))
				if (catcher != nil) != tc.wantCatch {
					t.Errorf("%s: mail catcher present = %v", product, catcher != nil)
				}
				if !tc.wantCatch && find[*appsv1.Deployment](absent, MailName(in.Env.Name)) == nil {
					t.Errorf("%s: a catcher left over from before is not removed", product)
				}
				if tc.wantCatch {
					checkRestricted(t, catcher.Name, &catcher.Spec.Template.Spec)
					if v, _ := envValue(catcher.Spec.Template.Spec.Containers[0].Env, "MP_UI_AUTH"); v != "admin:$(MAIL_PASSWORD)" {
						t.Errorf("the catcher's web UI is open: MP_UI_AUTH=%q", v)
					}
					// Its own password: reading caught mail must not open the CRM.
					for _, e := range catcher.Spec.Template.Spec.Containers[0].Env {
						if e.Name == "MAIL_PASSWORD" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Key != "mail-password") {
							t.Errorf("the catcher's password is not its own: %+v", e.ValueFrom)
						}
					}
				}
			}
		})
	}
}

// A promotion's migration slot runs the product's upgrade first, then the
// increment's migration, each through the image's entrypoint.
func TestMigrationJobRunsTheUpgradeFirst(t *testing.T) {
	in := input(t, crmv1alpha1.ProductOdoo, crmv1alpha1.StageProduction, false)
	job := MigrationJob(in, "m", in.Profile.Upgrade, []string{"odoo", "-d", "crm", "-u", "acme_sales", "--stop-after-init"}, 600)
	spec := job.Spec.Template.Spec
	var names []string
	for _, c := range spec.InitContainers {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "prepare,wait-for-database,upgrade" {
		t.Fatalf("init containers %v, want prepare, the wait for the database, then upgrade", names)
	}
	up := spec.InitContainers[2]
	if up.Command != nil || strings.Join(up.Args, " ") != "odoo -d $(ODOO_DATABASE) -u all --stop-after-init --no-http" {
		t.Errorf("upgrade runs %v %v, want Odoo's -u all through the entrypoint", up.Command, up.Args)
	}
	main := spec.Containers[0]
	if main.Command != nil || main.Args[0] != "odoo" {
		t.Errorf("the migration replaces the entrypoint: command %v args %v", main.Command, main.Args)
	}
	if len(up.VolumeMounts) == 0 || up.Image != main.Image {
		t.Error("the upgrade does not run in the increment's image with the application's volumes")
	}
	only := MigrationJob(in, "m", in.Profile.Upgrade, nil, 600)
	if c := only.Spec.Template.Spec.Containers[0]; c.Name != "upgrade" || c.Args[3] != "-u" {
		t.Errorf("an increment without a migration runs %v", c.Args)
	}
}

// Outside production the application leaves the cluster on HTTP(S) only:
// production's SMTP settings restored into test reach no real server.
func TestNonProductionReachesNoRealMailServer(t *testing.T) {
	for _, tc := range []struct {
		stage crmv1alpha1.Stage
		allow bool
		want  string // allowed internet ports, "" for all
	}{
		{crmv1alpha1.StageTest, false, "80,443"},
		{crmv1alpha1.StageTraining, false, "80,443"},
		{crmv1alpha1.StageTest, true, "80,443,2525"},
		{crmv1alpha1.StageProduction, false, ""},
	} {
		in := input(t, crmv1alpha1.ProductOdoo, tc.stage, false)
		in.Project, in.Env = in.Project.DeepCopy(), in.Env.DeepCopy()
		if tc.allow {
			in.Project.Spec.Mail.AllowRealMailOutsideProduction = true
			in.Env.Spec.Mail = &crmv1alpha1.EnvironmentMail{SMTP: &crmv1alpha1.SMTPServer{Host: "smtp.kunde.example", Port: 2525, From: "crm@kunde.example"}}
		}
		desired, _ := EnvironmentObjects(in)
		np := find[*networkingv1.NetworkPolicy](desired, AppName(in.Env.Name))
		found := false
		for _, rule := range np.Spec.Egress {
			if len(rule.To) == 1 && rule.To[0].IPBlock != nil && rule.To[0].IPBlock.CIDR == "0.0.0.0/0" {
				found = true
				var ports []string
				for _, p := range rule.Ports {
					ports = append(ports, p.Port.String())
				}
				if got := strings.Join(ports, ","); got != tc.want {
					t.Errorf("%s (allow=%v): internet ports %q, want %q", tc.stage, tc.allow, got, tc.want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no internet egress rule", tc.stage)
		}
	}
}

// The application resolves names wherever the cluster's DNS answers: a
// pod in kube-system, NodeLocal DNSCache's link-local address, the node
// itself (the local cluster's real node: a peer-restricted rule left the
// database's Service name unresolved there). Only port 53, to any address.
func TestApplicationsResolveNamesWhereverDNSRuns(t *testing.T) {
	for _, product := range []crmv1alpha1.ProductName{crmv1alpha1.ProductOdoo, crmv1alpha1.ProductEspoCRM, crmv1alpha1.ProductSuiteCRM, crmv1alpha1.ProductTwenty} {
		in := input(t, product, crmv1alpha1.StageTest, false)
		desired, _ := EnvironmentObjects(in)
		np := find[*networkingv1.NetworkPolicy](desired, AppName(in.Env.Name))
		found := false
		for _, rule := range np.Spec.Egress {
			var ports []string
			for _, p := range rule.Ports {
				ports = append(ports, string(*p.Protocol)+"/"+p.Port.String())
			}
			if strings.Join(ports, ",") == "UDP/53,TCP/53" {
				found = true
				if len(rule.To) != 0 {
					t.Errorf("%s: DNS only to %v: a resolver on the node or a link-local address is not reached", product, rule.To)
				}
			}
		}
		if !found {
			t.Errorf("%s: no egress rule for DNS (UDP and TCP 53)", product)
		}
	}
}

// An application started again (after a restore, a wake, a rollout) is
// seen ready within 2 s of answering, and a first start still has 10
// minutes to install its schema.
func TestTheStartupProbeSeesAnApplicationSoon(t *testing.T) {
	for _, product := range []crmv1alpha1.ProductName{crmv1alpha1.ProductOdoo, crmv1alpha1.ProductEspoCRM, crmv1alpha1.ProductSuiteCRM, crmv1alpha1.ProductTwenty} {
		in := input(t, product, crmv1alpha1.StageProduction, false)
		desired, _ := EnvironmentObjects(in)
		d := find[*appsv1.Deployment](desired, AppName(in.Env.Name))
		p := d.Spec.Template.Spec.Containers[0].StartupProbe
		if p.InitialDelaySeconds+p.PeriodSeconds > 2 {
			t.Errorf("%s: a started application is seen after up to %d s", product, p.InitialDelaySeconds+p.PeriodSeconds)
		}
		if allowed := p.InitialDelaySeconds + p.PeriodSeconds*p.FailureThreshold; allowed < 600 {
			t.Errorf("%s: a first start has %d s, want 10 minutes", product, allowed)
		}
	}
}

// A Job's steps start once the database answers the Job's own pod: a
// NetworkPolicy engine admits a new pod a moment after it starts (a
// migration's first connection was refused on the real node).
func TestJobsWaitForTheirDatabase(t *testing.T) {
	for _, tc := range []struct {
		product crmv1alpha1.ProductName
		client  string
	}{
		{crmv1alpha1.ProductOdoo, `pg_isready -q -h "$0" -p "$1" -U "$2"`},
		{crmv1alpha1.ProductEspoCRM, `mariadb-admin ping -h "$0" -P "$1" -u "$2"`},
	} {
		in := input(t, tc.product, crmv1alpha1.StageTest, false)
		for _, job := range []*batchv1.Job{MigrationJob(in, "m", nil, []string{"true"}, 600), ProductJob(in, "i", crm.Run{Args: []string{"true"}}, 600)} {
			var wait *corev1.Container
			for i, c := range job.Spec.Template.Spec.InitContainers {
				if c.Name == "wait-for-database" {
					wait = &job.Spec.Template.Spec.InitContainers[i]
				}
			}
			if wait == nil {
				t.Fatalf("%s %s: no wait for the database", tc.product, job.Name)
			}
			cmd := strings.Join(wait.Command, " ")
			if !strings.Contains(cmd, "until "+tc.client) || !strings.HasSuffix(cmd, " test-db "+map[crmv1alpha1.ProductName]string{crmv1alpha1.ProductOdoo: "5432", crmv1alpha1.ProductEspoCRM: "3306"}[tc.product]+" crm") {
				t.Errorf("%s %s: waits with %q", tc.product, job.Name, cmd)
			}
		}
	}
}

// With the portal configured, a test environment's mail catcher admits its
// htpasswd line besides the admin (dollar signs escaped for the kubelet)
// and its pods, in its namespace only, to the web port.
func TestTheMailCatcherAdmitsThePortal(t *testing.T) {
	const line = "portal:$2y$10$abcdefghijklmnopqrstuu5t6h0k1Ffi7WJcPsRLXb7vH1AGl6w2" // bcrypt, as helm's htpasswd writes it
	for _, reader := range []*MailReader{nil, {Namespace: "crm-system", Htpasswd: line}} {
		in := input(t, crmv1alpha1.ProductEspoCRM, crmv1alpha1.StageTest, false)
		in.MailReader = reader
		desired, _ := EnvironmentObjects(in)
		catcher := find[*appsv1.Deployment](desired, MailName(in.Env.Name))
		auth, _ := envValue(catcher.Spec.Template.Spec.Containers[0].Env, "MP_UI_AUTH")
		wantAuth := "admin:$(MAIL_PASSWORD)"
		if reader != nil {
			wantAuth += " portal:$$2y$$10$$abcdefghijklmnopqrstuu5t6h0k1Ffi7WJcPsRLXb7vH1AGl6w2"
		}
		if auth != wantAuth {
			t.Errorf("reader %v: MP_UI_AUTH=%q, want %q", reader, auth, wantAuth)
		}
		np := find[*networkingv1.NetworkPolicy](desired, MailName(in.Env.Name))
		var portal []string
		for _, rule := range np.Spec.Ingress {
			for _, from := range rule.From {
				if from.PodSelector != nil && from.PodSelector.MatchLabels["app.kubernetes.io/name"] == "crm-portal" && from.NamespaceSelector != nil {
					portal = append(portal, fmt.Sprintf("%s:%d", from.NamespaceSelector.MatchLabels[corev1.LabelMetadataName], rule.Ports[0].Port.IntVal))
				}
			}
		}
		want := ""
		if reader != nil {
			want = "crm-system:8025"
		}
		if strings.Join(portal, ",") != want {
			t.Errorf("reader %v: the catcher admits portal pods from %v, want %q", reader, portal, want)
		}
	}
}
