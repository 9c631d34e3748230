package policy

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestRegionAllowed(t *testing.T) {
	for _, tt := range []struct {
		region   string
		patterns []string
		want     bool
	}{
		{"eu-central-1", []string{"eu-*"}, true},
		{"us-east-1", []string{"eu-*"}, false},
		{"us-east-1", nil, true},
		{"eu-west-1", []string{"us-*", "eu-west-?"}, true},
		{"", []string{"eu-*"}, false},
		{"", nil, true},
	} {
		if got := RegionAllowed(tt.region, tt.patterns); got != tt.want {
			t.Errorf("RegionAllowed(%q, %v) = %v", tt.region, tt.patterns, got)
		}
	}
}

func TestViolations(t *testing.T) {
	p := &crmv1alpha1.ImplementationProject{Spec: crmv1alpha1.ImplementationProjectSpec{
		Hosting: crmv1alpha1.Hosting{Region: "us-east-1", StorageClassName: "enc", Domain: "crm.example.eu"},
		GDPR: &crmv1alpha1.GDPRPolicy{AllowedRegions: []string{"eu-*"}, RequireEncryptedStorage: true,
			EncryptedStorageClasses: []string{"enc"}, RequireTLS: true, AnonymizeNonProduction: true},
	}}
	env := func(name string, stage crmv1alpha1.Stage, mutate func(*crmv1alpha1.Environment)) crmv1alpha1.Environment {
		e := crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: crmv1alpha1.EnvironmentSpec{Stage: stage,
			Ingress: &crmv1alpha1.EnvironmentIngress{TLSSecretName: "tls"}}}
		if mutate != nil {
			mutate(&e)
		}
		return e
	}
	got := Violations(p, []crmv1alpha1.Environment{
		env("ok", crmv1alpha1.StageProduction, nil),
		env("plain", crmv1alpha1.StageTest, func(e *crmv1alpha1.Environment) { e.Spec.Storage.StorageClassName = "standard" }),
		env("http", crmv1alpha1.StageTest, func(e *crmv1alpha1.Environment) { e.Spec.Ingress = nil }),
		env("copy", crmv1alpha1.StageTraining, func(e *crmv1alpha1.Environment) {
			e.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "b"}}
		}),
	})
	want := []string{
		"environment copy: bootstrapped from a backup without anonymize",
		"environment http: ingress without TLS",
		`environment plain: storage class "standard" is not encrypted`,
		"project region us-east-1 is outside gdpr.allowedRegions [eu-*]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	p.Spec.GDPR = nil
	if v := Violations(p, nil); v != nil {
		t.Errorf("no policy, violations %v", v)
	}
	if a := NamespaceAnnotations(p); a[AnnotationRequireTLS] != "false" || a[AnnotationProjectDomain] != "crm.example.eu" {
		t.Errorf("annotations %v", a)
	}
}
