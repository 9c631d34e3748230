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
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

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
	finished, failed, why := kube.JobFinished(job)
	if finished {
		x.notStartedNoMore()
	}
	switch {
	case failed:
		msg := fmt.Sprintf("migration Job %s failed on %s: %s", name, env.Name, why)
		if x.i == 0 {
			x.fail("MigrationFailed", msg)
			return done, nil
		}
		// Nothing rolled out yet, but the schema may be half-migrated.
		return x.rollBack(ctx, "MigrationFailed", msg, false)
	case finished:
		stage.Phase, stage.Message = crmv1alpha1.StageRollingOut, "migration done; rolling out"
		x.event(corev1.EventTypeNormal, "MigrationCompleted", "migration on %s completed", env.Name)
		return next, nil
	}
	if stuck, ok := kube.JobCannotStart(ctx, x.Client, job); ok {
		// Said at once, not ended early: the Job's own deadline (the
		// migration's timeout) ends it, so that it can never start after
		// the increment gave up on it; a pull secret or image fixed
		// meanwhile lets it run.
		stage.Message = "the migration has not started: " + stuck.Message + "; its Job fails at its deadline (spec.migration.timeout) unless the pod starts"
		x.cond(crmv1alpha1.ConditionWaiting, metav1.ConditionTrue, stuck.Reason, stage.Message)
		return done, nil // the pod's watch brings us back
	}
	x.notStartedNoMore()
	return done, nil // the Job's watch brings us back
}

// notStartedNoMore clears what a migration pod that could not start left
// on record (migrate), once it started or its Job ended.
func (x *run) notStartedNoMore() {
	if c := meta.FindStatusCondition(x.inc.Status.Conditions, crmv1alpha1.ConditionWaiting); c != nil && kube.NotStarting[c.Reason] {
		meta.RemoveStatusCondition(&x.inc.Status.Conditions, crmv1alpha1.ConditionWaiting)
		x.stage.Message = "running " + x.migrationRuns()
	}
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
		if in.External, err = shared.ReadExternalDatabase(ctx, x.APIReader, env.Namespace, ext.SecretName, profile.Engine); err != nil {
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

// deleteMigrationJob deletes the migration Job of a stage, if any.
func (x *run) deleteMigrationJob(ctx context.Context, stage string) error {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: x.inc.Namespace, Name: resources.AgentJobName(x.inc.Name, "migrate-"+stage)}}
	if err := x.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
