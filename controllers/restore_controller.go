package controllers

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// RestoreReconciler replaces an environment's data with a Backup: it checks
// the request, lets the Environment controller stop the application, runs
// crm-agent restore in a Job, and lets the application start again.
type RestoreReconciler struct {
	client.Client
	APIReader               client.Reader
	Recorder                events.EventRecorder
	AgentImage              string
	MaxConcurrentReconciles int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=restores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=restores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests,verbs=get;list;watch

// Reconcile moves a Restore from Pending through Running to Completed or Failed.
func (r *RestoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rs := &crmv1alpha1.Restore{}
	if err := r.Get(ctx, req.NamespacedName, rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if restoreFinished(rs.Status.Phase) {
		return ctrl.Result{}, nil
	}
	before := rs.DeepCopy()
	result, err := r.reconcileNormal(ctx, rs)
	rs.Status.ObservedGeneration = rs.Generation
	if perr := patchStatusIfChanged(ctx, r.Client, rs, before, rs.Status, before.Status); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

func (r *RestoreReconciler) pending(rs *crmv1alpha1.Restore, reason, msg string) {
	rs.Status.Phase, rs.Status.Message = crmv1alpha1.RestorePending, msg
	setCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

func (r *RestoreReconciler) fail(rs *crmv1alpha1.Restore, reason, msg string) {
	rs.Status.Phase, rs.Status.Message = crmv1alpha1.RestoreFailed, msg
	setCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, reason, "Restore", "%s", msg)
}

func (r *RestoreReconciler) reconcileNormal(ctx context.Context, rs *crmv1alpha1.Restore) (ctrl.Result, error) {
	backup := &crmv1alpha1.Backup{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: rs.Spec.BackupRef.Name}, backup); err != nil {
		if apierrors.IsNotFound(err) {
			r.pending(rs, "BackupNotFound", fmt.Sprintf("Backup %s does not exist", rs.Spec.BackupRef.Name))
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	switch backup.Status.Phase {
	case crmv1alpha1.BackupFailed:
		r.fail(rs, "BackupFailed", fmt.Sprintf("Backup %s failed: nothing to restore", backup.Name))
		return ctrl.Result{}, nil
	case crmv1alpha1.BackupCompleted:
	default:
		r.pending(rs, "BackupNotCompleted", fmt.Sprintf("waiting for Backup %s to complete", backup.Name))
		return ctrl.Result{}, nil // the Backup watch brings us back
	}
	in, err := loadEnvironmentInput(ctx, r.Client, r.APIReader, r.Tolerations, rs.Namespace, rs.Spec.EnvironmentRef.Name)
	if err != nil {
		r.pending(rs, "EnvironmentNotFound", err.Error())
		return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
	}
	env := in.Env
	if env.Spec.Stage == crmv1alpha1.StageProduction && rs.Spec.Confirm != env.Name {
		r.fail(rs, "ConfirmationRequired", fmt.Sprintf(
			"restoring into production environment %s replaces all of its data: set spec.confirm to %q in a new Restore", env.Name, env.Name))
		return ctrl.Result{}, nil
	}
	if backup.Status.Engine != "" && backup.Status.Engine != in.Profile.Engine {
		r.fail(rs, "EngineMismatch", fmt.Sprintf("Backup %s is a %s backup; environment %s runs %s", backup.Name, backup.Status.Engine, env.Name, in.Profile.Engine))
		return ctrl.Result{}, nil
	}

	if rs.Status.Phase != crmv1alpha1.RestoreRunning {
		if other, err := r.promotionInFlight(ctx, rs, env.Name); err != nil || other != "" {
			if other != "" {
				r.pending(rs, "PromotionInProgress", fmt.Sprintf("increment %s is migrating or rolling out %s: the restore waits for it to end", other, env.Name))
			}
			return ctrl.Result{RequeueAfter: 15 * time.Second}, err
		}
		now := metav1.Now()
		rs.Status.Phase, rs.Status.StartedAt = crmv1alpha1.RestoreRunning, &now
		rs.Status.Message = "stopping the application"
		setCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Running", rs.Status.Message)
		audit(ctx, r.Recorder, rs, corev1.EventTypeNormal, "Started", "Restore", "restoring Backup %s into %s", backup.Name, env.Name)
		return ctrl.Result{}, nil // the Environment controller now scales the application down
	}

	jobName := resources.AgentJobName(rs.Name, "restore")
	job := &batchv1.Job{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: jobName}, job); {
	case apierrors.IsNotFound(err):
		if rs.Status.JobName != "" {
			return jobGone(ctx, r.APIReader, rs.Namespace, jobName, func(msg string) error { r.fail(rs, "JobDeleted", msg); return nil })
		}
		if stopped, msg := applicationStopped(ctx, r.Client, in); !stopped {
			rs.Status.Message = msg
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		if ok, msg := databaseRunning(ctx, r.Client, in); !ok {
			rs.Status.Message = msg
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		// Every erasure of the project is applied again before the restore
		// reports success, so that an older backup brings no erased person back.
		hashes, err := erasureHashes(ctx, r.Client, rs.Namespace, in.Project.Spec.Product.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		anonymize := mustAnonymize(in, backup, rs)
		job, err := resources.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "restore", JobName: jobName, BackupName: backup.Name, AgentImage: r.AgentImage,
			ErasureHashes: hashes, Anonymize: anonymize,
		})
		if err != nil {
			r.fail(rs, "InvalidJob", err.Error())
			return ctrl.Result{}, nil
		}
		if err := controllerutil.SetControllerReference(rs, job, r.Scheme()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
		rs.Status.JobName, rs.Status.Message = jobName, "crm-agent is verifying and restoring the backup in Job "+jobName
		rs.Status.ErasuresReapplied = int32(len(hashes)) //nolint:gosec // G115: one hash per ErasureRequest of a project, far below 2^31
		rs.Status.Anonymized = anonymize
		if anonymize {
			rs.Status.Message += "; the copy is anonymized before the application sees it (gdpr.anonymizeNonProduction)"
		}
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	done, res, why := jobOutcome(ctx, r.Client, job)
	if !done {
		return ctrl.Result{}, nil
	}
	if res.Error != "" || why != "" {
		r.fail(rs, "AgentFailed", res.Error+why)
		return ctrl.Result{}, nil
	}
	now := metav1.Now()
	rs.Status.Phase, rs.Status.CompletedAt = crmv1alpha1.RestoreCompleted, &now
	rs.Status.Message = fmt.Sprintf("restored Backup %s (%s) into %s; %d erasures re-applied", backup.Name, backup.Status.Size, env.Name, rs.Status.ErasuresReapplied)
	if rs.Status.Anonymized {
		rs.Status.Message += "; personal data anonymized, outgoing mail and scheduled jobs off"
	}
	setCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Completed", rs.Status.Message)
	audit(ctx, r.Recorder, rs, corev1.EventTypeNormal, "Completed", "Restore", "%s", rs.Status.Message)
	return ctrl.Result{}, nil
}

// promotionInFlight names an increment whose stage on env is migrating,
// rolling out or verifying (not this Restore's own rollback): a restore then
// would race the migration or be undone by the rollout's verification.
func (r *RestoreReconciler) promotionInFlight(ctx context.Context, rs *crmv1alpha1.Restore, env string) (string, error) {
	incs := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, incs, client.InNamespace(rs.Namespace)); err != nil {
		return "", err
	}
	for _, inc := range incs.Items {
		if inc.Name == rs.Labels[crmv1alpha1.LabelIncrement] || promotion.Final(inc.Status.Phase) {
			continue
		}
		for _, s := range inc.Status.Stages {
			if s.Name == env && promotion.TouchesData(s.Phase) && s.Phase != crmv1alpha1.StageRestoring {
				return inc.Name, nil
			}
		}
	}
	return "", nil
}

// mustAnonymize says whether a restore pseudonymizes what it loads: into a
// non-production environment of a project whose GDPR policy asks for
// anonymized copies, of any backup but the environment's own (the same
// stance as the admission rule on bootstraps: the backup's origin may be
// production, and an environment gone cannot tell otherwise). A bootstrap
// that anonymizes already runs its own step before the application starts.
func mustAnonymize(in *resources.EnvironmentInput, backup *crmv1alpha1.Backup, rs *crmv1alpha1.Restore) bool {
	env, gdpr := in.Env, in.Project.Spec.GDPR
	switch {
	case gdpr == nil || !gdpr.AnonymizeNonProduction, env.Spec.Stage == crmv1alpha1.StageProduction:
		return false
	case backup.Spec.EnvironmentRef.Name == env.Name:
		return false
	case env.Spec.Bootstrap != nil && env.Spec.Bootstrap.Anonymize && rs.Name == BootstrapRestoreName(env.Name):
		return false
	}
	return true
}

// restoreFinished reports whether a Restore's phase is final.
func restoreFinished(p crmv1alpha1.RestorePhase) bool {
	return p == crmv1alpha1.RestoreCompleted || p == crmv1alpha1.RestoreFailed
}

// applicationStopped reports whether no application pod runs any more.
func applicationStopped(ctx context.Context, c client.Client, in *resources.EnvironmentInput) (bool, string) {
	names := []string{resources.AppName(in.Env.Name)}
	for _, comp := range in.Profile.Components {
		names = append(names, in.Env.Name+"-"+comp.Name)
	}
	for _, n := range names {
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: in.Env.Namespace, Name: n}, d); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return false, err.Error()
		}
		if (d.Spec.Replicas != nil && *d.Spec.Replicas > 0) || d.Status.Replicas > 0 {
			return false, fmt.Sprintf("waiting for Deployment %s to stop", n)
		}
	}
	return true, ""
}

// SetupWithManager registers the reconciler; it follows its Jobs and Backups.
func (r *RestoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Restore{}).
		Owns(&batchv1.Job{}).
		Watches(&crmv1alpha1.Backup{}, enqueueRestoresOfBackup(mgr.GetClient())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
