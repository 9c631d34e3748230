package environment

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
)

// backupOrRestorePhaseChanged passes the Backup and Restore updates that
// change what an environment reads of them: spec, labels, deletion, phase
// and completion (backupState, recordLastBackup, retention); not the
// conditions and progress a Job's run writes on the way.
func backupOrRestorePhaseChanged() predicate.Predicate {
	return kube.OnlyWhen(func(obj client.Object) any {
		switch o := obj.(type) {
		case *crmv1alpha1.Backup:
			return []any{o.Generation, o.Labels, o.DeletionTimestamp, o.Status.Phase, o.Status.CompletedAt}
		case *crmv1alpha1.Restore:
			return []any{o.Generation, o.Labels, o.DeletionTimestamp, o.Status.Phase}
		}
		return nil
	})
}

// incrementRecorded passes an Environment whose increment or schema-version
// annotation changed: a promotion writes them, and an increment that ships
// the image already running (a migration-only sprint) changes nothing else,
// so without this its verification waited for a rollout that never came.
func incrementRecorded() predicate.Predicate {
	return kube.OnlyWhen(func(obj client.Object) any {
		a := obj.GetAnnotations()
		return []string{a[crmv1alpha1.AnnotationIncrement], a[crmv1alpha1.AnnotationSchemaVersion]}
	})
}
