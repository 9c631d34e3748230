package increment

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// step takes the step of the stage's phase: the stage's state machine. A
// step records its move in status before (persist) or as it acts outside
// the increment, and is guarded by what status says already happened. The
// final phases (Succeeded, Failed, RolledBack) take none.
func (x *run) step(ctx context.Context) (outcome, error) {
	switch x.stage.Phase {
	case crmv1alpha1.StagePending:
		return x.start(ctx)
	case crmv1alpha1.StageWaiting:
		return x.openWindow(ctx)
	case crmv1alpha1.StageBackingUp:
		return x.backUp(ctx)
	case crmv1alpha1.StageMigrating:
		return x.migrate(ctx)
	case crmv1alpha1.StageRollingOut:
		return x.rollOut(ctx)
	case crmv1alpha1.StageVerifying:
		return x.verify(ctx)
	case crmv1alpha1.StageRestoring:
		return x.awaitRollbackRestore(ctx)
	}
	return done, nil
}

// start begins the stage: Pending -> Waiting.
func (x *run) start(context.Context) (outcome, error) {
	now := metav1.NewTime(x.Clock.Now())
	x.stage.StartedAt = &now
	meta.RemoveStatusCondition(&x.inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
	x.stage.Phase, x.stage.Message = crmv1alpha1.StageWaiting, ""
	if !x.last || x.i == 0 {
		// A stage that backs up first says so in one event, BackupStarted.
		x.event(corev1.EventTypeNormal, "StageStarted", "started on %s", x.stage.Name)
	}
	return next, nil
}

// openWindow waits for the Environment's maintenance window, checks that
// the product can be upgraded to the build's version, and goes on to the
// backup (production) or the change: Waiting -> BackingUp, Migrating or
// RollingOut.
func (x *run) openWindow(context.Context) (outcome, error) {
	stage, env := x.stage, x.env
	if w := env.Spec.MaintenanceWindow; w != nil && x.i > 0 {
		open, until, err := policy.InWindow(w, x.Clock.Now())
		if err != nil {
			x.fail("InvalidWindow", err.Error())
			return done, nil
		}
		if !open {
			msg := fmt.Sprintf("waiting for the maintenance window of %s, which opens at %s", env.Name, until.UTC().Format(time.RFC3339))
			stage.Message = msg
			x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, "MaintenanceWindow", msg)
			return waitFor(until.Sub(x.Clock.Now())), nil
		}
	}
	meta.RemoveStatusCondition(&x.inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
	if _, err := x.productUpgrade(); err != nil {
		x.fail("UnsupportedUpgrade", err.Error()+"; "+env.Name+" was not changed")
		return done, nil
	}
	if x.last && x.i > 0 {
		// The backup is taken now, with the window open, right before
		// the migration and rollout: a rollback restore brings back the
		// data of minutes ago, not of when the promotion was asked for.
		// What production runs now is what a rollback returns to: no
		// other promotion can change it while this one is in flight
		// (promotion.InFlight; production's version changes only
		// through promotions); on record before anything changes it.
		recordPrevious(stage, env)
		stage.Phase, stage.Message = crmv1alpha1.StageBackingUp, "taking a pre-promotion backup of "+env.Name
		return next, nil
	}
	x.beginChange()
	return next, nil
}

// beginChange moves a stage to its migration (the product's upgrade when
// the version changes, the increment's migration), or to its rollout when
// there is neither.
func (x *run) beginChange() {
	upgrade, _ := x.productUpgrade()
	if upgrade == nil && x.inc.Spec.Migration == nil {
		x.stage.Phase, x.stage.Message = crmv1alpha1.StageRollingOut, "rolling out"
		return
	}
	x.stage.Phase, x.stage.Message = crmv1alpha1.StageMigrating, "running "+x.migrationRuns()
}

// migrationRuns says what the stage's migration Job runs: the product's
// upgrade, the increment's migration, or both.
func (x *run) migrationRuns() string {
	upgrade, _ := x.productUpgrade()
	switch {
	case upgrade != nil && x.inc.Spec.Migration != nil:
		return "the product's upgrade, then the migration"
	case upgrade != nil:
		return "the product's upgrade"
	}
	return "the migration"
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

// backUp takes production's pre-promotion Backup, once, and waits for it:
// BackingUp -> Migrating or RollingOut, or Failed (production unchanged).
func (x *run) backUp(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	name := resources.AgentJobName(inc.Name, "pre-"+env.Name)
	if x.project.Spec.Backup == nil {
		x.fail("NoBackupTarget", "production is never changed without a backup: project "+x.project.Name+" has no spec.backup")
		return done, nil
	}
	if stage.Backup == "" {
		b := resources.Backup(inc.Namespace, name, env.Name, crmv1alpha1.BackupPrePromotion, inc.Name)
		// Created at most once: the name is fixed and recorded before anything else happens.
		if err := x.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return done, err
		}
		stage.Backup = name
		x.cond(crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupRunning", "waiting for Backup "+name)
		x.event(corev1.EventTypeNormal, "BackupStarted", "started on %s: pre-promotion Backup %s", env.Name, name)
		return done, nil
	}
	b := &crmv1alpha1.Backup{}
	if err := x.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: stage.Backup}, b); err != nil {
		if apierrors.IsNotFound(err) {
			return x.gone(ctx, &crmv1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: stage.Backup}},
				"BackupMissing", "pre-promotion Backup "+stage.Backup+" was deleted")
		}
		return done, err
	}
	switch b.Status.Phase {
	case crmv1alpha1.BackupCompleted:
		x.cond(crmv1alpha1.ConditionBackedUp, metav1.ConditionTrue, "BackupCompleted", fmt.Sprintf("Backup %s of %s completed (%s)", b.Name, env.Name, b.Status.Size))
		x.beginChange()
		return next, nil
	case crmv1alpha1.BackupFailed:
		x.cond(crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupFailed", b.Status.Error)
		x.fail("BackupFailed", "pre-promotion Backup "+b.Name+" failed: "+b.Status.Error+"; "+env.Name+" was not changed")
		return done, nil
	}
	msg := "waiting for Backup " + b.Name
	if c := meta.FindStatusCondition(b.Status.Conditions, crmv1alpha1.ConditionReady); c != nil && c.Message != "" {
		msg += ": " + c.Message // what it waits for, e.g. its target's Secret
	}
	x.cond(crmv1alpha1.ConditionBackedUp, metav1.ConditionFalse, "BackupRunning", msg)
	return done, nil // the Backup watch brings us back
}

// gone fails the stage when obj, which status says was created, is gone
// from the API server too (kube.Gone); it is never created again.
func (x *run) gone(ctx context.Context, obj client.Object, reason, msg string) (outcome, error) {
	res, err := kube.Gone(ctx, x.APIReader, obj, func() { x.fail(reason, msg) })
	return outcome{wait: true, requeue: res.RequeueAfter}, err
}
