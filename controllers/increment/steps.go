package increment

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// steps is the stage's state machine: the step each phase takes. A step
// records its move in status before (persist) or as it acts outside the
// increment, and is guarded by what status says already happened. The
// final phases (Succeeded, Failed, RolledBack) take none.
var steps = map[crmv1alpha1.StagePhase]func(*run, context.Context) (outcome, error){
	crmv1alpha1.StagePending:    (*run).start,
	crmv1alpha1.StageWaiting:    (*run).openWindow,
	crmv1alpha1.StageBackingUp:  (*run).backUp,
	crmv1alpha1.StageMigrating:  (*run).migrate,
	crmv1alpha1.StageRollingOut: (*run).rollOut,
	crmv1alpha1.StageVerifying:  (*run).verify,
	crmv1alpha1.StageRestoring:  (*run).awaitRollbackRestore,
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
		b := &crmv1alpha1.Backup{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: inc.Namespace, Labels: map[string]string{
				crmv1alpha1.LabelEnvironment: env.Name, crmv1alpha1.LabelBackupReason: string(crmv1alpha1.BackupPrePromotion)}},
			Spec: crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env.Name}, Reason: crmv1alpha1.BackupPrePromotion, Increment: inc.Name},
		}
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

// migrate runs the product's upgrade and the increment's migration in one
// Job, once, and waits for it: Migrating -> RollingOut, or Failed / rolled
// back (the schema may be half-migrated).
func (x *run) migrate(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	name := resources.AgentJobName(inc.Name, "migrate-"+env.Name)
	build := promotion.BuildOf(inc)
	job := &batchv1.Job{}
	err := x.Get(ctx, types.NamespacedName{Namespace: inc.Namespace, Name: name}, job)
	if err == nil && job.Annotations[crmv1alpha1.AnnotationBuild] != "" && job.Annotations[crmv1alpha1.AnnotationBuild] != build.Fingerprint {
		// The Job of a build this increment had before a restart: it is
		// being deleted (checkBuild) and never counts for this build.
		if job.DeletionTimestamp.IsZero() {
			if err := x.deleteMigrationJob(ctx, env.Name); err != nil {
				return done, err
			}
		}
		return waitFor(2 * time.Second), nil
	}
	if apierrors.IsNotFound(err) {
		if stage.MigrationJob != "" {
			return x.gone(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: inc.Namespace, Name: name}},
				"MigrationJobMissing", "migration Job "+name+" disappeared; it is not run again")
		}
		return x.startMigration(ctx, name, build)
	}
	if err != nil {
		return done, err
	}
	stage.MigrationJob = name
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet: // see agentjob.JobOutcome
			stage.Phase, stage.Message = crmv1alpha1.StageRollingOut, "migration done; rolling out"
			x.event(corev1.EventTypeNormal, "MigrationCompleted", "migration on %s completed", env.Name)
			return next, nil
		case batchv1.JobFailed:
			msg := fmt.Sprintf("migration Job %s failed on %s: %s", name, env.Name, c.Message)
			if x.i == 0 {
				x.fail("MigrationFailed", msg)
				return done, nil
			}
			// Nothing rolled out yet, but the schema may be half-migrated.
			return x.rollBack(ctx, "MigrationFailed", msg, false)
		}
	}
	return done, nil // the Job's watch brings us back
}

// startMigration creates the stage's migration Job, on record first.
func (x *run) startMigration(ctx context.Context, name string, build crmv1alpha1.Build) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	profile, err := crm.For(x.project.Spec.Product)
	if err != nil {
		x.fail("InvalidProduct", err.Error())
		return done, nil
	}
	in := &resources.EnvironmentInput{Project: x.project, Env: env.DeepCopy(), Profile: profile, Version: promotion.Version(inc), Tolerations: x.Tolerations, Images: x.Images}
	in.Env.Spec.Image = inc.Spec.Image
	if ext := env.Spec.Database.External; ext != nil {
		if in.External, err = agentjob.ReadExternalDatabase(ctx, x.APIReader, env.Namespace, ext.SecretName, profile.Engine); err != nil {
			x.fail("ExternalDatabaseInvalid", err.Error())
			return done, nil
		}
	}
	timeout := 30 * time.Minute
	var args []string
	if m := inc.Spec.Migration; m != nil {
		args = m.Command
		if d, err := policy.ParseDuration(m.Timeout); err == nil && d > 0 {
			timeout = d
		}
	}
	upgrade, err := x.productUpgrade()
	if err != nil {
		x.fail("UnsupportedUpgrade", err.Error())
		return done, nil
	}
	job := resources.MigrationJob(in, name, upgrade, args, int64(timeout.Seconds()))
	job.Annotations = map[string]string{crmv1alpha1.AnnotationBuild: build.Fingerprint}
	if err := x.ownByEnvironment(job); err != nil {
		return done, err
	}
	// Migrating is on record before the Job exists: a deletion of the
	// increment from now on waits for the migration's end (TouchesData);
	// a conflict ends the reconcile before it starts.
	if err := x.persist(ctx); err != nil {
		return done, err
	}
	// Recorded with the Job's creation: a restart finds it and never runs it twice.
	if err := x.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		return done, err
	}
	stage.MigrationJob = name
	x.event(corev1.EventTypeNormal, "MigrationStarted", "migration Job %s on %s", name, env.Name)
	return done, nil
}

// rollOut points the Environment at the build, on record first:
// RollingOut -> Verifying.
func (x *run) rollOut(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	if stage.RolloutStartedAt == nil {
		if stage.PreviousVersion == "" {
			// Not recorded when the window opened (a stage without a
			// backup): a restart rolls back to what ran before, never
			// to this increment.
			recordPrevious(stage, env)
		}
		// On record before the Environment changes: a deletion of the
		// increment from now on waits for the rollout's end
		// (TouchesData), and a conflict (the increment changed, or was
		// deleted, meanwhile) ends the reconcile without touching it.
		now := metav1.NewTime(x.Clock.Now())
		stage.RolloutStartedAt = &now
		if err := x.persist(ctx); err != nil {
			return done, err
		}
	}
	if err := x.setEnvironmentVersion(ctx, promotion.Version(inc), inc.Spec.Image, inc.Name); err != nil {
		return done, err
	}
	stage.Phase, stage.Version, stage.Image, stage.Message = crmv1alpha1.StageVerifying, promotion.Version(inc), inc.Spec.Image, "verifying the rollout"
	stage.Build = promotion.BuildOf(inc).Fingerprint
	x.cond(crmv1alpha1.ConditionDeployed, metav1.ConditionTrue, "RolledOut", fmt.Sprintf("%s rolled out to %s", promotion.Version(inc), env.Name))
	x.event(corev1.EventTypeNormal, "RolledOut", "rolled out to %s", env.Name)
	return done, nil
}

// verify waits until the Environment is Ready on the build, up to the
// deadline: Verifying -> Succeeded (Promoted on production), or Failed /
// rolled back.
func (x *run) verify(ctx context.Context) (outcome, error) {
	inc, stage, env := x.inc, x.stage, x.env
	if promotion.Healthy(env, inc) {
		now := metav1.NewTime(x.Clock.Now())
		stage.Phase, stage.FinishedAt, stage.Message = crmv1alpha1.StageSucceeded, &now, "verified"
		x.cond(crmv1alpha1.ConditionVerified, metav1.ConditionTrue, "Verified", fmt.Sprintf("%s is Ready on %s", promotion.Version(inc), env.Name))
		if !x.last {
			x.event(corev1.EventTypeNormal, "Verified", "verified on %s", env.Name)
		}
		switch {
		case x.last:
			inc.Status.Phase = crmv1alpha1.IncrementPromoted
			x.cond(crmv1alpha1.ConditionPromoted, metav1.ConditionTrue, "Promoted", fmt.Sprintf("%s runs on %s", promotion.Version(inc), env.Name))
			// One event says both (Verified and Promoted).
			kube.Audit(ctx, x.Recorder, inc, corev1.EventTypeNormal, "Promoted", "Promote", "promoted %s to %s: verified Ready", promotion.Version(inc), env.Name)
			recordPromotion(inc, stage, true, resultPromoted, now.Time)
		case meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionAccepted):
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingPromotion
		default:
			inc.Status.Phase = crmv1alpha1.IncrementAwaitingAcceptance
		}
		return done, nil
	}
	deadline := stage.RolloutStartedAt.Add(promotion.VerifyTimeout(inc))
	if now := x.Clock.Now(); now.Before(deadline) {
		return waitFor(deadline.Sub(now)), nil
	}
	reason := fmt.Sprintf("%s did not become Ready on %s within %s", promotion.Version(inc), env.Name, promotion.VerifyTimeout(inc))
	if x.i == 0 {
		x.fail("VerificationFailed", reason)
		return done, nil
	}
	x.cond(crmv1alpha1.ConditionVerified, metav1.ConditionFalse, "VerificationFailed", reason)
	return x.rollBack(ctx, "VerificationFailed", reason, true)
}

// gone fails the stage when obj, which status says was created, is gone
// from the API server too (agentjob.Gone); it is never created again.
func (x *run) gone(ctx context.Context, obj client.Object, reason, msg string) (outcome, error) {
	res, err := agentjob.Gone(ctx, x.APIReader, obj, func() { x.fail(reason, msg) })
	return outcome{wait: true, requeue: res.RequeueAfter}, err
}

// deleteMigrationJob deletes the migration Job of a stage, if any.
func (x *run) deleteMigrationJob(ctx context.Context, stage string) error {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: x.inc.Namespace, Name: resources.AgentJobName(x.inc.Name, "migrate-"+stage)}}
	if err := x.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
