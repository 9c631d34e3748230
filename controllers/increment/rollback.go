package increment

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// rollBack undoes a failed promotion on a stage after the first: the
// Environment goes back to what ran before (when the rollout changed it),
// and the pre-promotion backup is restored when a migration ran and the
// project asks for it. RolledBack is recorded only once that Restore
// completed (awaitRollbackRestore).
func (x *run) rollBack(ctx context.Context, reason, msg string, rolledOut bool) (outcome, error) {
	stage, env := x.stage, x.env
	if rolledOut {
		if err := x.setEnvironmentVersion(ctx, stage.PreviousVersion, stage.PreviousImage, stage.PreviousIncrement); err != nil {
			return done, err
		}
	}
	restore, err := x.restoreAfterRollback(ctx)
	if err != nil {
		return done, err
	}
	if restore != "" {
		stage.Phase, stage.Restore = crmv1alpha1.StageRestoring, restore
		stage.Message = fmt.Sprintf("%s; restoring the database of %s from Backup %s (Restore %s)", msg, env.Name, stage.Backup, restore)
		x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "RestoringDatabase", stage.Message)
		x.event(corev1.EventTypeWarning, reason, "%s", stage.Message)
		return done, nil
	}
	if !rolledOut {
		x.fail(reason, fmt.Sprintf(
			"%s; %s still runs %s, its database may be partly migrated: Backup %s holds it as it was (spec.restoreDatabaseOnRollback restores it automatically)",
			msg, env.Name, stage.PreviousVersion, stage.Backup))
		return done, nil
	}
	x.rolledBack(ctx, reason, msg)
	return done, nil
}

// restoreAfterRollback restores the stage's pre-promotion backup when a
// migration ran and the project asks for it; it returns the Restore's name.
func (x *run) restoreAfterRollback(ctx context.Context) (string, error) {
	stage := x.stage
	if !x.project.Spec.RestoreDatabaseOnRollback || stage.MigrationJob == "" || stage.Backup == "" {
		return "", nil
	}
	// Confirmed: the project's policy is the confirmation.
	rs := resources.Restore(x.inc.Namespace, resources.AgentJobName(x.inc.Name, "rollback-"+stage.Name), stage.Backup, stage.Name, stage.Name)
	if err := x.ownByEnvironment(rs); err != nil {
		return "", err
	}
	if err := x.Create(ctx, rs); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	return rs.Name, nil
}

// awaitRollbackRestore waits for the rollback's Restore: Restoring ->
// RolledBack, or Failed saying how production is left.
func (x *run) awaitRollbackRestore(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	reason := "VerificationFailed"
	if stage.RolloutStartedAt == nil {
		reason = "MigrationFailed"
	}
	rs := &crmv1alpha1.Restore{}
	if err := x.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: stage.Restore}, rs); err != nil {
		if apierrors.IsNotFound(err) {
			return x.gone(ctx, &crmv1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: stage.Restore}}, "RollbackRestoreMissing",
				fmt.Sprintf("%s; Restore %s was deleted before it completed: restore Backup %s into %s by hand", stage.Message, stage.Restore, stage.Backup, env.Name))
		}
		return done, err
	}
	switch rs.Status.Phase {
	case crmv1alpha1.RestoreCompleted:
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		x.rolledBack(ctx, reason, stage.Message+"; restored")
	case crmv1alpha1.RestoreFailed:
		meta.RemoveStatusCondition(&inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		x.fail("RollbackRestoreFailed", fmt.Sprintf(
			"%s; Restore %s failed: %s; %s runs %s on the data the promotion left: restore Backup %s by hand", stage.Message, rs.Name, rs.Status.Message, env.Name, stage.PreviousVersion, stage.Backup))
	}
	return done, nil // the Restore's watch brings us back
}

// rolledBack records a completed rollback: the previous version runs again
// (and the data is restored, when a Restore ran).
func (x *run) rolledBack(ctx context.Context, reason, msg string) {
	inc, stage, env := x.inc, x.stage, x.env
	now := metav1.NewTime(x.Clock.Now())
	stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageRolledBack, &now, msg+"; rolled back to "+stage.PreviousVersion
	inc.Status.Phase = crmv1alpha1.IncrementRolledBack
	x.cond(crmv1alpha1.ConditionRolledBack, metav1.ConditionTrue, "RolledBack", fmt.Sprintf("%s runs %s again", env.Name, stage.PreviousVersion))
	x.cond(crmv1alpha1.ConditionFailed, metav1.ConditionTrue, reason, msg)
	kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeWarning, "RolledBack", "Promote", "%s; rolled back %s to %s", msg, env.Name, stage.PreviousVersion)
	recordPromotion(inc, stage, x.last, resultRolledBack, now.Time)
}
