package api_test

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/webhook"
)

// The reference checks, reading from the real API server (test/e2e sends a
// request through the API server to the running webhook).
func TestWebhookReferences(t *testing.T) {
	ctx := context.Background()
	ns := "refs"
	ensureNamespace(ctx, t, ns)
	if err := k8s.Create(ctx, &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: crmv1alpha1.ImplementationProjectSpec{Customer: crmv1alpha1.Customer{Name: "Refs"}, Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@refs.example"}}},
	}); err != nil {
		t.Fatal(err)
	}
	env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns},
		Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Stage: crmv1alpha1.StageTest}}
	if err := k8s.Create(ctx, env); err != nil {
		t.Fatal(err)
	}
	prod := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns},
		Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Stage: crmv1alpha1.StageProduction}}
	testBackup := &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "test-nightly", Namespace: ns},
		Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}}
	for _, o := range []client.Object{prod, testBackup} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	testBackup.Status = crmv1alpha1.BackupStatus{Phase: crmv1alpha1.BackupCompleted,
		Origin: &crmv1alpha1.BackupOrigin{Environment: "test", UID: env.UID, Stage: crmv1alpha1.StageTest}}
	if err := k8s.Status().Update(ctx, testBackup); err != nil {
		t.Fatal(err)
	}
	restoreOf := func(backup, into string) *crmv1alpha1.Restore {
		return &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: ns},
			Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: backup}, EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: into}, Confirm: into}}
	}
	refs := &webhook.References{Reader: k8s}
	check := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	for _, tc := range []struct {
		name, want string
		err        func() error
	}{
		{"environment of an existing project", "", func() error { _, err := refs.Environment().ValidateCreate(ctx, env); return err }},
		{"environment of a missing project", `spec.projectRef.name: Not found: "ghost"`, func() error {
			e := env.DeepCopy()
			e.Spec.ProjectRef.Name = "ghost"
			_, err := refs.Environment().ValidateCreate(ctx, e)
			return err
		}},
		{"environment in another project's namespace", "must be created in the namespace of project refs", func() error {
			e := env.DeepCopy()
			e.Namespace = "default"
			_, err := refs.Environment().ValidateCreate(ctx, e)
			return err
		}},
		{"bootstrap from a missing backup", `spec.bootstrap.fromBackup.name: Not found: "gone"`, func() error {
			e := env.DeepCopy()
			e.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "gone"}}
			_, err := refs.Environment().ValidateCreate(ctx, e)
			return err
		}},
		{"backup of a missing environment", `spec.environmentRef.name: Not found: "staging"`, func() error {
			_, err := refs.Backup().ValidateCreate(ctx, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: ns},
				Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "staging"}}})
			return err
		}},
		{"restore of a missing backup into an existing environment", `spec.backupRef.name: Not found: "nightly"`, func() error {
			_, err := refs.Restore().ValidateCreate(ctx, &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: ns},
				Spec: crmv1alpha1.RestoreSpec{BackupRef: crmv1alpha1.LocalObjectReference{Name: "nightly"}, EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "test"}}})
			return err
		}},
		{"a test backup into production", `spec.backupRef.name: Forbidden: production environment production takes only backups of a production environment; Backup test-nightly was taken of test environment test`, func() error {
			_, err := refs.Restore().ValidateCreate(ctx, restoreOf("test-nightly", "production"))
			return err
		}},
		{"a test backup into test", "", func() error {
			_, err := refs.Restore().ValidateCreate(ctx, restoreOf("test-nightly", "test"))
			return err
		}},
		{"increment of a missing project", `spec.projectRef.name: Not found: "ghost"`, func() error {
			_, err := refs.Increment().ValidateCreate(ctx, &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: "ghost"},
				Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: "ghost"}, Sprint: 1, Version: "1"}})
			return err
		}},
		{"erasure in the project's namespace", "", func() error {
			_, err := refs.ErasureRequest().ValidateCreate(ctx, &crmv1alpha1.ErasureRequest{ObjectMeta: metav1.ObjectMeta{Name: "e", Namespace: ns},
				Spec: crmv1alpha1.ErasureRequestSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}}})
			return err
		}},
	} {
		got := check(tc.err())
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// One project must never take another's host: an environment's ingress host
// lies in its project's hosting.domain (or a domain the cluster allows) and
// is served by no other environment, of any project.
func TestWebhookIngressHosts(t *testing.T) {
	ctx := context.Background()
	project := func(name, domain string) {
		ensureNamespace(ctx, t, name)
		if err := k8s.Create(ctx, &crmv1alpha1.ImplementationProject{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: crmv1alpha1.ImplementationProjectSpec{Customer: crmv1alpha1.Customer{Name: name}, Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo},
				ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@" + name + ".example"}}, Hosting: crmv1alpha1.Hosting{Domain: domain}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	env := func(project, name, host string) *crmv1alpha1.Environment {
		e := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project},
			Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}, Stage: crmv1alpha1.StageTest}}
		if host != "" {
			e.Spec.Ingress = &crmv1alpha1.EnvironmentIngress{Host: host}
		}
		return e
	}
	project("hosta", "a.crm.example")
	project("hostb", "b.crm.example")
	for _, e := range []*crmv1alpha1.Environment{env("hosta", "test", ""), env("hosta", "shop", "crm.shared.example")} {
		if err := k8s.Create(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	refs := &webhook.References{Reader: k8s, AllowedIngressDomains: []string{"shared.example"}}
	for _, tc := range []struct {
		name, host, want string
	}{
		{"a host in the project's domain", "www.b.crm.example", ""},
		{"the project's domain itself", "b.crm.example", ""},
		{"a host in another project's domain", "portal.a.crm.example", `spec.ingress.host: Forbidden: host portal.a.crm.example is outside hosting.domain "b.crm.example" of project hostb`},
		{"another project's default host", "test.hosta.a.crm.example", "outside hosting.domain"},
		{"a free host of an allowed domain", "b.shared.example", ""},
		{"a host of an allowed domain another project serves", "CRM.shared.example", "spec.ingress.host: Duplicate value: \"crm.shared.example is already served by environment hosta/shop\""},
		{"a look-alike of the domain", "evilb.crm.example", "outside hosting.domain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := refs.Environment().ValidateCreate(ctx, env("hostb", "prod", tc.host))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("host %s: got %q, want %q", tc.host, got, tc.want)
			}
		})
	}
	t.Run("a host changed to one another project serves", func(t *testing.T) {
		old := env("hostb", "prod", "www.b.crm.example")
		_, err := refs.Environment().ValidateUpdate(ctx, old, env("hostb", "prod", "crm.shared.example"))
		if err == nil || !strings.Contains(err.Error(), "already served by environment hosta/shop") {
			t.Errorf("got %v", err)
		}
		if _, err := refs.Environment().ValidateUpdate(ctx, old, old.DeepCopy()); err != nil {
			t.Errorf("an unchanged host is refused: %v", err)
		}
	})
	t.Run("a project's own default host, claimed by another of its environments", func(t *testing.T) {
		_, err := refs.Environment().ValidateCreate(ctx, env("hosta", "copy", "test.hosta.a.crm.example"))
		if err == nil || !strings.Contains(err.Error(), "already served by environment hosta/test") {
			t.Errorf("got %v", err)
		}
	})
}

// A non-production environment never names a real mail server unless its
// project allows it; production may.
func TestWebhookRealMailOutsideProduction(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"mailstrict", "mailopen"} {
		ensureNamespace(ctx, t, name)
		p := &crmv1alpha1.ImplementationProject{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: crmv1alpha1.ImplementationProjectSpec{Customer: crmv1alpha1.Customer{Name: name}, Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo},
				ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@" + name + ".example"}}},
		}
		if name == "mailopen" {
			p.Spec.Mail = &crmv1alpha1.MailPolicy{AllowRealMailOutsideProduction: true}
		}
		if err := k8s.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	env := func(project string, stage crmv1alpha1.Stage) *crmv1alpha1.Environment {
		return &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: string(stage), Namespace: project},
			Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}, Stage: stage,
				Mail: &crmv1alpha1.EnvironmentMail{SMTP: &crmv1alpha1.SMTPServer{Host: "smtp.kunde.example", Port: 587, From: "crm@kunde.example"}}}}
	}
	refs := &webhook.References{Reader: k8s}
	for _, tc := range []struct {
		project string
		stage   crmv1alpha1.Stage
		want    string
	}{
		{"mailstrict", crmv1alpha1.StageTest, "spec.mail.smtp: Forbidden: a test environment sends to its mail catcher"},
		{"mailstrict", crmv1alpha1.StageTraining, "must set spec.mail.allowRealMailOutsideProduction"},
		{"mailstrict", crmv1alpha1.StageProduction, ""},
		{"mailopen", crmv1alpha1.StageTest, ""},
	} {
		e := env(tc.project, tc.stage)
		_, err := refs.Environment().ValidateCreate(ctx, e)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s/%s: got %q, want %q", tc.project, tc.stage, got, tc.want)
		}
		// An update that adds the server is checked too.
		old := e.DeepCopy()
		old.Spec.Mail = nil
		_, err = refs.Environment().ValidateUpdate(ctx, old, e)
		if (err != nil) != (tc.want != "") {
			t.Errorf("%s/%s: update adding the server: %v", tc.project, tc.stage, err)
		}
	}
}

// An Increment whose version the product cannot reach in one step from an
// environment's version is refused, naming both.
func TestWebhookRefusesUnsupportedUpgrades(t *testing.T) {
	ctx := context.Background()
	ns := "jumps"
	ensureNamespace(ctx, t, ns)
	if err := k8s.Create(ctx, &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: crmv1alpha1.ImplementationProjectSpec{Customer: crmv1alpha1.Customer{Name: ns}, Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "17.0"},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@jumps.example"}}},
	}); err != nil {
		t.Fatal(err)
	}
	prod := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns},
		Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Stage: crmv1alpha1.StageProduction}}
	if err := k8s.Create(ctx, prod); err != nil {
		t.Fatal(err)
	}
	prod.Status.Version, prod.Status.SchemaVersion = "17.0", "17.0"
	if err := k8s.Status().Update(ctx, prod); err != nil {
		t.Fatal(err)
	}
	refs := &webhook.References{Reader: k8s}
	for version, want := range map[string]string{
		"17.0-20261201": "",
		"18.0":          `spec.version: Invalid value: "18.0": environment production runs 17.0: Odoo 17.0 -> 18.0 changes the major version`,
	} {
		_, err := refs.Increment().ValidateCreate(ctx, &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "i", Namespace: ns},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: version}})
		got := ""
		if err != nil {
			got = err.Error()
		}
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want %q", version, got, want)
		}
	}
}
