package resources

import (
	"reflect"
	"testing"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Every Backup carries its environment and reason, and a pre-promotion
// one its increment; every Restore its environment.
func TestBackupsAndRestoresAreLabelled(t *testing.T) {
	pre := Backup("acme", "sprint-1-pre-production", "production", crmv1alpha1.BackupPrePromotion, "sprint-1")
	if want := map[string]string{"crm.crmops.io/environment": "production", "crm.crmops.io/backup-reason": "pre-promotion", "crm.crmops.io/increment": "sprint-1"}; !reflect.DeepEqual(pre.Labels, want) {
		t.Errorf("pre-promotion Backup labels = %v, want %v", pre.Labels, want)
	}
	if pre.Spec.Increment != "sprint-1" || pre.Spec.Reason != "pre-promotion" || pre.Spec.EnvironmentRef.Name != "production" || pre.Namespace != "acme" {
		t.Errorf("pre-promotion Backup = %+v", pre)
	}
	scheduled := Backup("acme", "test-20261201-0200", "test", crmv1alpha1.BackupScheduled, "")
	if want := map[string]string{"crm.crmops.io/environment": "test", "crm.crmops.io/backup-reason": "scheduled"}; !reflect.DeepEqual(scheduled.Labels, want) {
		t.Errorf("scheduled Backup labels = %v, want %v", scheduled.Labels, want)
	}
	rs := Restore("acme", "test-bootstrap", "production-20261201-0200", "test", "test")
	if want := map[string]string{"crm.crmops.io/environment": "test"}; !reflect.DeepEqual(rs.Labels, want) {
		t.Errorf("Restore labels = %v, want %v", rs.Labels, want)
	}
	if rs.Spec.BackupRef.Name != "production-20261201-0200" || rs.Spec.EnvironmentRef.Name != "test" || rs.Spec.Confirm != "test" {
		t.Errorf("Restore spec = %+v", rs.Spec)
	}
}
