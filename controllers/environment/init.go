package environment

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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/resources"
)

// Annotations of the init Job: the version it brings the database to and
// whether it installs or upgrades.
const (
	annotationInitVersion = "crm.crmops.io/init-version"
	initDeadline          = int64(3600)
)

// initStep is what the product's database needs before the version the
// environment runs may start: nothing (step nil), its installation, or its
// upgrade from the version it was installed or upgraded for.
type initStep struct {
	step *crm.Run
	what string // "installation" or "upgrade"
	err  error  // the upgrade is not one the product supports
}

// planInit decides the environment's init step and records what needs no
// Job: a version a promotion already upgraded to, or a product without
// such steps.
func planInit(env *crmv1alpha1.Environment, in *resources.EnvironmentInput) initStep {
	version, p := in.Version, in.Profile
	switch {
	case p.Init == nil:
		return initStep{}
	case env.Status.SchemaVersion == version:
		return initStep{}
	case env.Annotations[crmv1alpha1.AnnotationSchemaVersion] == version:
		env.Status.SchemaVersion = version
		return initStep{}
	}
	from := env.Status.SchemaVersion
	if from == "" && (env.Status.Phase == crmv1alpha1.EnvironmentReady || env.Status.Phase == crmv1alpha1.EnvironmentDegraded) {
		// It ran before the operator recorded schema versions: the image
		// installed what it runs.
		from = env.Status.Version
	}
	switch from {
	case "":
		return initStep{step: p.Init, what: "installation"}
	case version:
		env.Status.SchemaVersion = version
		return initStep{}
	}
	if err := p.CheckUpgrade(from, version); err != nil {
		return initStep{err: err}
	}
	if p.Upgrade == nil {
		env.Status.SchemaVersion = version
		return initStep{}
	}
	return initStep{step: p.Upgrade, what: "upgrade from " + from}
}

// runInit runs the init step's Job once the database answers, and records
// the version when it completed. The application stays stopped meanwhile.
// A failed Job is not run again on its own: deleting it runs it again.
func (r *Reconciler) runInit(ctx context.Context, env *crmv1alpha1.Environment, in *resources.EnvironmentInput, plan initStep, applied map[string]int64) (ctrl.Result, error) {
	gen := env.Generation
	name := resources.InitJobName(env.Name)
	runs := fmt.Sprintf("Job %s runs the %s of %s %s", name, plan.what, in.Profile.Product, in.Version)
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: env.Namespace, Name: name}, job)
	if err == nil && job.Annotations[annotationInitVersion] != in.Version {
		// The Job of another version: it never counts for this one.
		if job.DeletionTimestamp.IsZero() {
			if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	if apierrors.IsNotFound(err) {
		if in.External == nil {
			if ready, msg := kube.WorkloadReady(ctx, r.Client, kube.StatefulSet, env.Namespace, resources.DatabaseName(env.Name), false, applied); !ready {
				kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "WaitingForDatabase", "the "+plan.what+" of "+in.Version+" starts when the database answers: "+msg)
				return ctrl.Result{}, nil // the StatefulSet watch brings us back
			}
		}
		job = resources.ProductJob(in, name, *plan.step, initDeadline)
		job.Annotations = map[string]string{annotationInitVersion: in.Version}
		if err := controllerutil.SetControllerReference(env, job, r.Scheme()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "Running", runs)
		r.Recorder.Eventf(env, job, corev1.EventTypeNormal, "InitStarted", "Initialize", "%s", runs)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	finished, failed, why := kube.JobFinished(job)
	switch {
	case failed:
		msg := fmt.Sprintf("Job %s (the %s of %s %s) failed: %s; its logs say why; delete the Job to run it again", name, plan.what, in.Profile.Product, in.Version, why)
		if c := meta.FindStatusCondition(env.Status.Conditions, crmv1alpha1.ConditionInitialized); c == nil || c.Reason != "Failed" {
			r.Recorder.Eventf(env, job, corev1.EventTypeWarning, "InitFailed", "Initialize", "%s", msg)
		}
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "Failed", msg)
		return ctrl.Result{}, nil
	case finished:
		env.Status.SchemaVersion = in.Version
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionTrue, "Completed", fmt.Sprintf("the %s of %s %s completed (Job %s)", plan.what, in.Profile.Product, in.Version, name))
		r.Recorder.Eventf(env, job, corev1.EventTypeNormal, "Initialized", "Initialize", "the %s of %s %s completed", plan.what, in.Profile.Product, in.Version)
		// The next reconcile, with the version on record, starts the application.
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	if stuck, ok := kube.JobCannotStart(ctx, r.Client, job); ok {
		// Said, not ended: the Job's own deadline ends it; an image or
		// Secret fixed meanwhile lets it run.
		kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, stuck.Reason,
			fmt.Sprintf("the %s of %s %s has not started: %s", plan.what, in.Profile.Product, in.Version, stuck.Message))
		return ctrl.Result{}, nil // the pod's watch brings us back
	}
	kube.SetCondition(&env.Status.Conditions, gen, crmv1alpha1.ConditionInitialized, metav1.ConditionFalse, "Running", runs)
	return ctrl.Result{}, nil // the Job watch brings us back
}
