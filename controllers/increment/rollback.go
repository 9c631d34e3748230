package increment

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// beginChange moves a stage to its migration (the product's upgrade when
// the version changes, the increment's migration), or to its rollout when
// there is neither.
func (x *run) beginChange() {
	upgrade, _ := x.productUpgrade()
	stage := x.stage
	switch {
	case upgrade != nil && x.inc.Spec.Migration != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the product's upgrade, then the migration"
	case upgrade != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the product's upgrade"
	case x.inc.Spec.Migration != nil:
		stage.Phase, stage.Message = crmv1alpha1.StageMigrating, "running the migration"
	default:
		stage.Phase, stage.Message = crmv1alpha1.StageRollingOut, "rolling out"
	}
}

// productUpgrade is the product's upgrade step the stage runs in its
// migration slot: nil when the version does not change or the product has
// no such step; an error names the versions when the product cannot go
// from one to the other in one step.
func (x *run) productUpgrade() (*crm.Run, error) {
	profile, err := crm.For(x.project.Spec.Product)
	if err != nil {
		return nil, err
	}
	from, to := resources.SchemaVersion(x.env), promotion.Version(x.inc)
	if from == "" || from == to {
		return nil, nil
	}
	if err := profile.CheckUpgrade(from, to); err != nil {
		return nil, err
	}
	return profile.Upgrade, nil
}

// recordPrevious notes what the stage's Environment runs, for a rollback.
func recordPrevious(stage *crmv1alpha1.StageStatus, env *crmv1alpha1.Environment) {
	stage.PreviousVersion, stage.PreviousImage = env.Spec.Version, env.Spec.Image
	if stage.PreviousVersion == "" {
		stage.PreviousVersion = env.Status.Version
	}
	stage.PreviousIncrement = env.Annotations[crmv1alpha1.AnnotationIncrement]
}

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
	rs := &crmv1alpha1.Restore{
		ObjectMeta: metav1.ObjectMeta{Name: resources.AgentJobName(x.inc.Name, "rollback-"+stage.Name), Namespace: x.inc.Namespace},
		Spec: crmv1alpha1.RestoreSpec{
			BackupRef:      crmv1alpha1.LocalObjectReference{Name: stage.Backup},
			EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: stage.Name},
			// The project's policy is the confirmation.
			Confirm: stage.Name,
		},
	}
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

// setEnvironmentVersion points the stage's Environment at a version (and
// image), recording the increment it runs. Idempotent.
func (x *run) setEnvironmentVersion(ctx context.Context, version, image, increment string) error {
	env := x.env
	if env.Spec.Version == version && env.Spec.Image == image && env.Annotations[crmv1alpha1.AnnotationIncrement] == increment && env.Annotations[crmv1alpha1.AnnotationSchemaVersion] == version {
		return nil
	}
	patch := client.MergeFrom(env.DeepCopy())
	env.Spec.Version, env.Spec.Image = version, image
	if env.Annotations == nil {
		env.Annotations = map[string]string{}
	}
	env.Annotations[crmv1alpha1.AnnotationIncrement] = increment
	// The stage's migration slot ran the product's upgrade to this version
	// (or none was needed): the Environment does not run it a second time.
	env.Annotations[crmv1alpha1.AnnotationSchemaVersion] = version
	return x.Patch(ctx, env, patch)
}

// ownByEnvironment makes the Environment, not the Increment, own work on
// its data (a migration Job, a rollback Restore): deleting the Increment
// never stops it half-way. The label leads events back to the Increment.
func (x *run) ownByEnvironment(obj client.Object) error {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[crmv1alpha1.LabelIncrement] = x.inc.Name
	obj.SetLabels(labels)
	return controllerutil.SetOwnerReference(x.env, obj, x.Scheme())
}
