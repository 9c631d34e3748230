package restore

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// Whether a restore anonymizes is decided by the identity the backup
// recorded of its environment, never by names.
func TestMustAnonymize(t *testing.T) {
	gdpr := &crmv1alpha1.GDPRPolicy{AnonymizeNonProduction: true}
	env := func(stage crmv1alpha1.Stage, uid types.UID, bootstrapAnonymize bool) *crmv1alpha1.Environment {
		e := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "copy", UID: uid}, Spec: crmv1alpha1.EnvironmentSpec{Stage: stage}}
		if bootstrapAnonymize {
			e.Spec.Bootstrap = &crmv1alpha1.Bootstrap{FromBackup: crmv1alpha1.BackupSource{Name: "prod-daily"}, Anonymize: true}
		}
		return e
	}
	backup := func(named string, origin *crmv1alpha1.BackupOrigin) *crmv1alpha1.Backup {
		return &crmv1alpha1.Backup{Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: named}}, Status: crmv1alpha1.BackupStatus{Origin: origin}}
	}
	for _, tc := range []struct {
		name   string
		policy *crmv1alpha1.GDPRPolicy
		env    *crmv1alpha1.Environment
		backup *crmv1alpha1.Backup
		want   bool
	}{
		{"production's backup into test", gdpr, env(crmv1alpha1.StageTest, "uid-copy", false),
			backup("production", &crmv1alpha1.BackupOrigin{Environment: "production", UID: "uid-prod", Stage: crmv1alpha1.StageProduction}), true},
		{"test's own backup back into test", gdpr, env(crmv1alpha1.StageTest, "uid-copy", false),
			backup("copy", &crmv1alpha1.BackupOrigin{Environment: "copy", UID: "uid-copy", Stage: crmv1alpha1.StageTest}), false},
		{"a backup of an earlier environment of the same name (production then)", gdpr, env(crmv1alpha1.StageTest, "uid-copy-2", false),
			backup("copy", &crmv1alpha1.BackupOrigin{Environment: "copy", UID: "uid-copy-1", Stage: crmv1alpha1.StageProduction}), true},
		{"a backup that recorded no origin counts as foreign", gdpr, env(crmv1alpha1.StageTest, "uid-copy", false), backup("copy", nil), true},
		{"into production: never", gdpr, env(crmv1alpha1.StageProduction, "uid-prod-2", false),
			backup("production", &crmv1alpha1.BackupOrigin{Environment: "production", UID: "uid-prod", Stage: crmv1alpha1.StageProduction}), false},
		{"no policy, no bootstrap anonymize", nil, env(crmv1alpha1.StageTest, "uid-copy", false),
			backup("production", &crmv1alpha1.BackupOrigin{Environment: "production", UID: "uid-prod", Stage: crmv1alpha1.StageProduction}), false},
		{"no policy, but the environment was created to be anonymized", nil, env(crmv1alpha1.StageTest, "uid-copy", true),
			backup("production", &crmv1alpha1.BackupOrigin{Environment: "production", UID: "uid-prod", Stage: crmv1alpha1.StageProduction}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &resources.EnvironmentInput{Project: &crmv1alpha1.ImplementationProject{Spec: crmv1alpha1.ImplementationProjectSpec{GDPR: tc.policy}}, Env: tc.env}
			if got := mustAnonymize(in, tc.backup); got != tc.want {
				t.Errorf("mustAnonymize = %v, want %v", got, tc.want)
			}
		})
	}
}
