package resources

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// wantEnv lists variables each product's image really reads (see internal/crm).
var wantEnv = map[crmv1alpha1.ProductName][]string{
	crmv1alpha1.ProductSuiteCRM: {"SUITECRM_DATABASE_HOST", "SUITECRM_DATABASE_PORT_NUMBER", "SUITECRM_DATABASE_NAME", "SUITECRM_DATABASE_USER", "SUITECRM_DATABASE_PASSWORD", "SUITECRM_USERNAME", "SUITECRM_PASSWORD", "SUITECRM_HOST"},
	crmv1alpha1.ProductEspoCRM:  {"ESPOCRM_DATABASE_PLATFORM", "ESPOCRM_DATABASE_HOST", "ESPOCRM_DATABASE_NAME", "ESPOCRM_DATABASE_USER", "ESPOCRM_DATABASE_PASSWORD", "ESPOCRM_ADMIN_USERNAME", "ESPOCRM_ADMIN_PASSWORD", "ESPOCRM_SITE_URL"},
	crmv1alpha1.ProductOdoo:     {"HOST", "PORT", "USER", "PASSWORD"},
	crmv1alpha1.ProductTwenty:   {"PG_DATABASE_URL", "REDIS_URL", "SERVER_URL", "APP_SECRET"},
	crmv1alpha1.ProductCustom:   {"DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD", "DATABASE_URL", "SITE_URL", "APP_MODE"},
}

func find[T client.Object](objs []client.Object, name string) T {
	var zero T
	for _, o := range objs {
		if t, ok := o.(T); ok && o.GetName() == name {
			return t
		}
	}
	return zero
}

func TestEnvironmentObjects(t *testing.T) {
	for _, tc := range Combinations("acme") {
		t.Run(tc.Name, func(t *testing.T) {
			in := tc.Input
			desired, absent := EnvironmentObjects(in)
			env := in.Env.Name

			seen := map[string]bool{}
			for _, o := range desired {
				id := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
				if seen[id] {
					t.Errorf("%s is built twice", id)
				}
				seen[id] = true
				l := o.GetLabels()
				if l[crmv1alpha1.LabelManagedBy] != crmv1alpha1.ManagedByValue || l[crmv1alpha1.LabelProject] != "acme" || l[crmv1alpha1.LabelEnvironment] != env {
					t.Errorf("%T %s: labels %v lack managed-by/project/environment", o, o.GetName(), l)
				}
				if o.GetObjectKind().GroupVersionKind().Kind == "" {
					t.Errorf("%T %s: no kind set: server-side apply needs it", o, o.GetName())
				}
			}

			app := find[*appsv1.Deployment](desired, AppName(env))
			if app == nil {
				t.Fatal("no application Deployment")
			}
			c := app.Spec.Template.Spec.Containers[0]
			names := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				names[e.Name] = e
			}
			for _, want := range wantEnv[in.Project.Spec.Product.Name] {
				if _, ok := names[want]; !ok {
					t.Errorf("application lacks env %s", want)
				}
			}
			for _, e := range c.Env {
				secretish := strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "SECRET")
				if secretish && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
					t.Errorf("env %s holds a secret as a plain value", e.Name)
				}
			}
			if !strings.HasPrefix(c.Image, in.Profile.Image) || !strings.Contains(c.Image, in.Version) {
				t.Errorf("image %s does not run %s at %s", c.Image, in.Profile.Image, in.Version)
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.StartupProbe == nil ||
				c.ReadinessProbe.HTTPGet.Path != in.Profile.HealthPath || c.ReadinessProbe.HTTPGet.Port.IntVal != in.Profile.Port {
				t.Errorf("probes %+v do not check %s on %d", c.ReadinessProbe, in.Profile.HealthPath, in.Profile.Port)
			}
			for _, f := range in.Profile.Files {
				if !mounts(c, f.Path) || find[*corev1.PersistentVolumeClaim](desired, FilesClaimName(env)) == nil {
					t.Errorf("files path %s is not on the files claim", f.Path)
				}
			}

			// Every pod of the environment: restricted security, region affinity.
			for _, o := range desired {
				spec := podSpec(o)
				if spec == nil {
					continue
				}
				checkRestricted(t, o.GetName(), spec)
				region := in.Project.Spec.Hosting.Region
				hasAffinity := spec.Affinity != nil && spec.Affinity.NodeAffinity != nil
				if (region != "") != hasAffinity {
					t.Errorf("%s: region %q but node affinity %v", o.GetName(), region, hasAffinity)
				}
				if hasAffinity {
					expr := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0]
					if expr.Key != RegionLabel || expr.Values[0] != region {
						t.Errorf("%s: affinity %v, want %s in %s", o.GetName(), expr, RegionLabel, region)
					}
				}
			}

			db := find[*appsv1.StatefulSet](desired, DatabaseName(env))
			if db == nil || find[*corev1.PersistentVolumeClaim](desired, DataClaimName(env)) == nil {
				t.Fatal("no database StatefulSet or data claim")
			}
			if got := db.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(got, crm.DatabaseFor(in.Profile.Engine).Image+":") {
				t.Errorf("database image %s, want the %s image", got, in.Profile.Engine)
			}
			if (find[*appsv1.Deployment](desired, RedisName(env)) != nil) != in.Profile.NeedsRedis {
				t.Errorf("Redis present = %v, product needs it = %v", !in.Profile.NeedsRedis, in.Profile.NeedsRedis)
			}
			for _, comp := range in.Profile.Components {
				if find[*appsv1.Deployment](desired, env+"-"+comp.Name) == nil {
					t.Errorf("component %s has no Deployment", comp.Name)
				}
			}

			isProd := in.Env.Spec.Stage == crmv1alpha1.StageProduction
			if (find[*policyv1.PodDisruptionBudget](desired, AppName(env)) != nil) != isProd {
				t.Errorf("PodDisruptionBudget only for production (stage %s)", in.Env.Spec.Stage)
			}
			if !isProd && find[*policyv1.PodDisruptionBudget](absent, AppName(env)) == nil {
				t.Errorf("a non-production environment must remove a PodDisruptionBudget")
			}
			ing := find[*networkingv1.Ingress](desired, env)
			if host := IngressHost(in); (host != "") != (ing != nil) {
				t.Errorf("ingress host %q but Ingress present %v", host, ing != nil)
			}
			if ing != nil && isProd && (len(ing.Spec.TLS) == 0 || ing.Spec.TLS[0].SecretName != "acme-tls") {
				t.Errorf("TLS secret not used: %+v", ing.Spec.TLS)
			}
			svc := find[*corev1.Service](desired, AppName(env))
			wantType := corev1.ServiceTypeClusterIP
			if in.Project.Spec.Hosting.Mode == crmv1alpha1.HostingOnPrem && IngressHost(in) == "" {
				wantType = corev1.ServiceTypeNodePort
			}
			if svc.Spec.Type != wantType {
				t.Errorf("application Service type %s, want %s", svc.Spec.Type, wantType)
			}
			for _, name := range []string{AppName(env), DatabaseName(env)} {
				if find[*networkingv1.NetworkPolicy](desired, name) == nil {
					t.Errorf("no NetworkPolicy %s", name)
				}
			}
		})
	}
}

func mounts(c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return true
		}
	}
	return false
}

func podSpec(o client.Object) *corev1.PodSpec {
	switch w := o.(type) {
	case *appsv1.Deployment:
		return &w.Spec.Template.Spec
	case *appsv1.StatefulSet:
		return &w.Spec.Template.Spec
	}
	return nil
}

// checkRestricted asserts the Pod Security "restricted" rules; the API test
// also sends these pods through the API server's own PodSecurity admission.
func checkRestricted(t *testing.T, name string, spec *corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v is not restricted", name, psc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
			t.Errorf("%s/%s: container security context %+v is not restricted", name, c.Name, sc)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: requests and memory limit must be set: %+v", name, c.Name, c.Resources)
		}
	}
}

func TestStageResources(t *testing.T) {
	prod := stageResources(crmv1alpha1.StageProduction)
	test := stageResources(crmv1alpha1.StageTest)
	if prod.Requests.Memory().Cmp(*test.Requests.Memory()) <= 0 || prod.Requests.Cpu().Cmp(*test.Requests.Cpu()) <= 0 {
		t.Errorf("production %v should get more than test %v", prod.Requests, test.Requests)
	}
}

func TestHibernateScalesEverythingToZero(t *testing.T) {
	for _, tc := range Combinations("acme") {
		tc.Input.Env.Spec.Hibernate = true
		desired, absent := EnvironmentObjects(tc.Input)
		for _, o := range desired {
			switch w := o.(type) {
			case *appsv1.Deployment:
				if *w.Spec.Replicas != 0 {
					t.Errorf("%s: Deployment %s has %d replicas while hibernated", tc.Name, w.Name, *w.Spec.Replicas)
				}
			case *appsv1.StatefulSet:
				if *w.Spec.Replicas != 0 {
					t.Errorf("%s: StatefulSet %s has %d replicas while hibernated", tc.Name, w.Name, *w.Spec.Replicas)
				}
			case *policyv1.PodDisruptionBudget:
				t.Errorf("%s: a hibernated environment keeps a PodDisruptionBudget", tc.Name)
			}
		}
		// Hibernation keeps every volume.
		for _, o := range absent {
			if _, ok := o.(*corev1.PersistentVolumeClaim); ok {
				t.Errorf("%s: hibernation removes claim %s", tc.Name, o.GetName())
			}
		}
		if find[*corev1.PersistentVolumeClaim](desired, DataClaimName(tc.Input.Env.Name)) == nil {
			t.Errorf("%s: hibernation drops the data claim", tc.Name)
		}
	}
}

func TestDesiredVersion(t *testing.T) {
	prof, _ := crm.For(crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo})
	project := &crmv1alpha1.ImplementationProject{Spec: crmv1alpha1.ImplementationProjectSpec{Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo}}}
	pinned := project.DeepCopy()
	pinned.Spec.Product.Version = "17.0"
	tests := []struct {
		name    string
		project *crmv1alpha1.ImplementationProject
		stage   crmv1alpha1.Stage
		spec    string
		running string
		want    string
	}{
		{"product default", project, crmv1alpha1.StageTest, "", "", prof.DefaultVersion},
		{"project version", pinned, crmv1alpha1.StageTest, "", "", "17.0"},
		{"environment version wins", pinned, crmv1alpha1.StageTest, "18.0", "17.0", "18.0"},
		{"production starts at its spec", pinned, crmv1alpha1.StageProduction, "16.0", "", "16.0"},
		{"production follows its spec (changed only by promotions)", pinned, crmv1alpha1.StageProduction, "18.0", "17.0", "18.0"},
		{"production keeps what it runs when the project default moves", pinned, crmv1alpha1.StageProduction, "", "16.0", "16.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &crmv1alpha1.Environment{Spec: crmv1alpha1.EnvironmentSpec{Stage: tt.stage, Version: tt.spec}}
			env.Status.Version = tt.running
			if got := DesiredVersion(tt.project, env, prof); got != tt.want {
				t.Errorf("DesiredVersion = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestExternalDatabase(t *testing.T) {
	in := Combinations("acme")[0].Input
	in.External = &ExternalDatabase{Host: "db.internal.example", Port: 3307, Name: "crm_prod", User: "crm", SecretName: "ext-db"}
	desired, absent := EnvironmentObjects(in)
	if find[*appsv1.StatefulSet](desired, DatabaseName(in.Env.Name)) != nil {
		t.Error("an external database must not run a StatefulSet")
	}
	if find[*appsv1.StatefulSet](absent, DatabaseName(in.Env.Name)) == nil {
		t.Error("switching to an external database must remove the StatefulSet")
	}
	app := find[*appsv1.Deployment](desired, AppName(in.Env.Name))
	var host, pass corev1.EnvVar
	for _, e := range app.Spec.Template.Spec.Containers[0].Env {
		switch e.Name {
		case "SUITECRM_DATABASE_HOST":
			host = e
		case "SUITECRM_DATABASE_PASSWORD":
			pass = e
		}
	}
	if host.Value != "db.internal.example" || pass.ValueFrom.SecretKeyRef.Name != "ext-db" || pass.ValueFrom.SecretKeyRef.Key != "password" {
		t.Errorf("external database not wired: host %+v password %+v", host, pass.ValueFrom.SecretKeyRef)
	}
}

// A migration mounts the application's files volume: on a ReadWriteOnce
// claim it must run on the application's node, as backups do, or it hangs
// on a multi-attach error.
func TestMigrationRunsBesideTheApplication(t *testing.T) {
	for _, c := range Combinations("acme") {
		in := c.Input
		job := MigrationJob(in, "sprint-1-migrate-"+in.Env.Name, nil, []string{"migrate"}, 600)
		aff := job.Spec.Template.Spec.Affinity
		if !in.Profile.HasFiles() {
			continue
		}
		if aff == nil || aff.PodAffinity == nil || len(aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
			t.Errorf("%s: migration Job has no affinity to the application's node: %+v", c.Name, aff)
			continue
		}
		term := aff.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
		if term.TopologyKey != corev1.LabelHostname || term.LabelSelector.MatchLabels[LabelComponent] != ComponentApp ||
			term.LabelSelector.MatchLabels[crmv1alpha1.LabelEnvironment] != in.Env.Name {
			t.Errorf("%s: migration Job's affinity is not to %s's application node: %+v", c.Name, in.Env.Name, term)
		}
		if r := in.Project.Spec.Hosting.Region; r != "" && (aff.NodeAffinity == nil ||
			aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions[0].Values[0] != r) {
			t.Errorf("%s: migration Job lost the region affinity %s", c.Name, r)
		}
	}
}

// spec.product.env reaches the application, its components and its
// migrations for every product, after the product's own variables.
func TestProductEnvReachesEveryContainer(t *testing.T) {
	for _, c := range Combinations("acme") {
		in := c.Input
		product := in.Project.Spec.Product
		product.Env = []corev1.EnvVar{{Name: "CRM_FEATURE_FLAGS", Value: "reports"}}
		prof, err := crm.For(product)
		if err != nil {
			t.Fatal(err)
		}
		in.Profile = prof
		desired, _ := EnvironmentObjects(in)
		names := []string{AppName(in.Env.Name)}
		for _, comp := range prof.Components {
			names = append(names, in.Env.Name+"-"+comp.Name)
		}
		for _, n := range names {
			d := find[*appsv1.Deployment](desired, n)
			if d == nil {
				t.Fatalf("%s: no Deployment %s", c.Name, n)
			}
			if !hasEnv(d.Spec.Template.Spec.Containers[0].Env, "CRM_FEATURE_FLAGS", "reports") {
				t.Errorf("%s: spec.product.env does not reach Deployment %s", c.Name, n)
			}
		}
		job := MigrationJob(in, "m", nil, []string{"migrate"}, 60)
		if !hasEnv(job.Spec.Template.Spec.Containers[0].Env, "CRM_FEATURE_FLAGS", "reports") {
			t.Errorf("%s: spec.product.env does not reach the migration", c.Name)
		}
	}
}

func hasEnv(vars []corev1.EnvVar, name, value string) bool {
	for _, v := range vars {
		if v.Name == name && v.Value == value {
			return true
		}
	}
	return false
}

// Backup Jobs run the tools of the server they read: an external server's
// version when it is given, else the version the managed database was
// created with (status.databaseVersion), else the operator's default.
func TestAgentToolsFollowTheServer(t *testing.T) {
	for _, tc := range []struct {
		name            string
		product         crmv1alpha1.ProductName
		external        bool
		serverVersion   string
		recorded        string
		wantAgent       string
		wantStatefulSet string
	}{
		{"external, no version: the default", crmv1alpha1.ProductOdoo, true, "", "", "postgres:17.9", ""},
		{"external at 17", crmv1alpha1.ProductOdoo, true, "17", "", "postgres:17", ""},
		{"external at 11.8", crmv1alpha1.ProductEspoCRM, true, "11.8", "", "mariadb:11.8", ""},
		{"external: a version recorded while it was managed does not count", crmv1alpha1.ProductOdoo, true, "", "16.6", "postgres:17.9", ""},
		{"managed, new: the default", crmv1alpha1.ProductOdoo, false, "", "", "postgres:17.9", "postgres:17.9"},
		{"managed, created at 16.6 by an older release", crmv1alpha1.ProductOdoo, false, "", "16.6", "postgres:16.6", "postgres:16.6"},
		{"managed, created at 11.4 by an older release", crmv1alpha1.ProductEspoCRM, false, "", "11.4", "mariadb:11.4", "mariadb:11.4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in *EnvironmentInput
			for _, c := range Combinations("acme") {
				if c.Input.Project.Spec.Product.Name == tc.product && c.Input.Env.Spec.Database.External == nil {
					in = c.Input
					break
				}
			}
			in.Project.Spec.Backup = &crmv1alpha1.BackupPolicy{Target: crmv1alpha1.BackupTarget{Volume: &crmv1alpha1.VolumeTarget{ClaimName: "backups"}}}
			in.Env.Status.DatabaseVersion = tc.recorded
			if tc.external {
				in.External = &ExternalDatabase{Host: "db.example", Port: 5432, Name: "crm", User: "crm", SecretName: "ext"}
				in.Env.Spec.Database.External = &crmv1alpha1.ExternalDatabase{SecretName: "ext", ServerVersion: tc.serverVersion}
			}
			job, err := AgentJob(AgentJobInput{EnvironmentInput: in, Command: "backup", JobName: "b-backup", BackupName: "b", AgentImage: "op"})
			if err != nil {
				t.Fatal(err)
			}
			if got := job.Spec.Template.Spec.Containers[0].Image; got != tc.wantAgent {
				t.Errorf("agent image %s, want %s", got, tc.wantAgent)
			}
			got := ""
			desired, _ := EnvironmentObjects(in)
			for _, obj := range desired {
				if sts, ok := obj.(*appsv1.StatefulSet); ok && sts.Name == DatabaseName(in.Env.Name) {
					got = sts.Spec.Template.Spec.Containers[0].Image
				}
			}
			if got != tc.wantStatefulSet {
				t.Errorf("database StatefulSet image %q, want %q", got, tc.wantStatefulSet)
			}
		})
	}
}

// crm-agent reaches the database image's container either copied by an
// init container or mounted straight from the operator's image.
func TestAgentJobDeliversCrmAgent(t *testing.T) {
	in := Combinations("acme")[0].Input
	in.Project.Spec.Backup = &crmv1alpha1.BackupPolicy{Target: crmv1alpha1.BackupTarget{Volume: &crmv1alpha1.VolumeTarget{ClaimName: "backups"}}}
	for _, tc := range []struct {
		imageVolume    bool
		initContainers int
		volume         string
	}{
		{imageVolume: false, initContainers: 1, volume: "emptyDir"},
		{imageVolume: true, initContainers: 0, volume: "image registry.example.com/crm-operator:v1"},
	} {
		job, err := AgentJob(AgentJobInput{EnvironmentInput: in, Command: "restore", JobName: "r-restore", BackupName: "b",
			AgentImage: "registry.example.com/crm-operator:v1", AgentImageVolume: tc.imageVolume})
		if err != nil {
			t.Fatal(err)
		}
		spec := job.Spec.Template.Spec
		if len(spec.InitContainers) != tc.initContainers {
			t.Errorf("imageVolume=%v: %d init containers, want %d", tc.imageVolume, len(spec.InitContainers), tc.initContainers)
		}
		volume := ""
		for _, v := range spec.Volumes {
			switch {
			case v.Name == "agent" && v.EmptyDir != nil:
				volume = "emptyDir"
			case v.Name == "agent" && v.Image != nil:
				volume = fmt.Sprintf("image %s", v.Image.Reference)
			}
		}
		if volume != tc.volume {
			t.Errorf("imageVolume=%v: the agent volume is %q, want %q", tc.imageVolume, volume, tc.volume)
		}
		if got := spec.Containers[0].Command[0]; got != "/agent/crm-agent" {
			t.Errorf("imageVolume=%v: the Job runs %s, want /agent/crm-agent", tc.imageVolume, got)
		}
	}
}

// Only a restore into a MariaDB the operator runs gets the server's root:
// it creates the staging database the dump is loaded into beside the
// environment's. Backups, PostgreSQL and external servers get no admin.
func TestOnlyAManagedMariaDBRestoreGetsAnAdministrator(t *testing.T) {
	input := func(product crmv1alpha1.ProductName, external bool) *EnvironmentInput {
		for _, c := range Combinations("acme") {
			if in := c.Input; in.Project.Spec.Product.Name == product {
				in.Project.Spec.Backup = &crmv1alpha1.BackupPolicy{Target: crmv1alpha1.BackupTarget{Volume: &crmv1alpha1.VolumeTarget{ClaimName: "backups"}}}
				if external {
					in.External = &ExternalDatabase{Host: "db.example", Port: 3306, Name: "crm", User: "crm", SecretName: "ext"}
					in.Env.Spec.Database.External = &crmv1alpha1.ExternalDatabase{SecretName: "ext"}
				}
				return in
			}
		}
		t.Fatalf("no combination of %s", product)
		return nil
	}
	for _, tc := range []struct {
		product  crmv1alpha1.ProductName
		external bool
		command  string
		admin    bool
	}{
		{crmv1alpha1.ProductEspoCRM, false, "restore", true},
		{crmv1alpha1.ProductEspoCRM, false, "backup", false},
		{crmv1alpha1.ProductEspoCRM, false, "erase", true},
		{crmv1alpha1.ProductEspoCRM, true, "erase", false},
		{crmv1alpha1.ProductEspoCRM, true, "restore", false},
		{crmv1alpha1.ProductOdoo, false, "restore", false},
	} {
		in := input(tc.product, tc.external)
		job, err := AgentJob(AgentJobInput{EnvironmentInput: in, Command: tc.command, JobName: "j", BackupName: "b", AgentImage: "op"})
		if err != nil {
			t.Fatal(err)
		}
		c := job.Spec.Template.Spec.Containers[0]
		args := strings.Join(append(c.Command, c.Args...), " ")
		var password *corev1.SecretKeySelector
		for _, v := range c.Env {
			if v.Name == "DB_ADMIN_PASSWORD" {
				password = v.ValueFrom.SecretKeyRef
			}
		}
		got := strings.Contains(args, "--db-admin-user root") && password != nil &&
			password.Name == in.Env.Name+"-credentials" && password.Key == "database-root-password"
		if got != tc.admin || (!tc.admin && (password != nil || strings.Contains(args, "--db-admin-user"))) {
			t.Errorf("%s %s (external %v): administrator %v (args %q, password %+v), want %v", tc.product, tc.command, tc.external, got, args, password, tc.admin)
		}
	}
}
