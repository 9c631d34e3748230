package restore

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
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/promotion"
	"github.com/crmops/crm-operator/internal/resources"
)

// Reconciler replaces an environment's data with a Backup: it checks
// the request, lets the Environment controller stop the application, runs
// crm-agent restore in a Job, and lets the application start again.
type Reconciler struct {
	agentjob.Deps
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=restores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=restores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=erasurerequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Reconcile moves a Restore from Pending through Running to Completed or Failed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.Restore{}, r)
}

// Settle ends the reconcile of a finished Restore.
func (r *Reconciler) Settle(_ context.Context, rs *crmv1alpha1.Restore) (bool, ctrl.Result, error) {
	return resources.RestoreFinished(rs.Status.Phase), ctrl.Result{}, nil
}

// Status is the object's status and its observedGeneration.
func (r *Reconciler) Status(o *crmv1alpha1.Restore) (any, *int64) {
	return o.Status, &o.Status.ObservedGeneration
}

func (r *Reconciler) pending(rs *crmv1alpha1.Restore, reason, msg string) {
	rs.Status.Phase, rs.Status.Message = crmv1alpha1.RestorePending, msg
	kube.SetCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
}

func (r *Reconciler) fail(rs *crmv1alpha1.Restore, reason, msg string) {
	rs.Status.Phase, rs.Status.Message = crmv1alpha1.RestoreFailed, msg
	kube.SetCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(rs, nil, corev1.EventTypeWarning, reason, "Restore", "%s", msg)
}

// Step advances the request by what it observes and starts.
func (r *Reconciler) Step(ctx context.Context, rs *crmv1alpha1.Restore, _ kube.Persist) (ctrl.Result, error) {
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
	in, err := r.LoadEnvironmentInput(ctx, rs.Namespace, rs.Spec.EnvironmentRef.Name)
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
	if env.Spec.Stage == crmv1alpha1.StageProduction {
		if ok, err := r.productionBackup(ctx, backup); err != nil || !ok {
			if err == nil {
				r.fail(rs, "NotAProductionBackup", fmt.Sprintf(
					"production environment %s takes only backups of a production environment (its own, or another production's for disaster recovery); Backup %s was taken of %s",
					env.Name, backup.Name, originOf(backup)))
			}
			return ctrl.Result{}, err
		}
	}
	if backup.Status.Engine != "" && backup.Status.Engine != in.Profile.Engine {
		r.fail(rs, "EngineMismatch", fmt.Sprintf("Backup %s is a %s backup; environment %s runs %s", backup.Name, backup.Status.Engine, env.Name, in.Profile.Engine))
		return ctrl.Result{}, nil
	}

	if rs.Status.Phase != crmv1alpha1.RestoreRunning {
		// Checked before the application stops: it keeps serving while the
		// restore cannot start.
		if reason, msg, err := r.CheckBackupTarget(ctx, in); err != nil || reason != "" {
			if reason != "" {
				r.pending(rs, reason, msg)
			}
			return ctrl.Result{RequeueAfter: 15 * time.Second}, err
		}
		if other, err := r.promotionInFlight(ctx, rs, env.Name); err != nil || other != "" {
			if other != "" {
				r.pending(rs, "PromotionInProgress", fmt.Sprintf("increment %s is migrating or rolling out %s: the restore waits for it to end", other, env.Name))
			}
			return ctrl.Result{RequeueAfter: 15 * time.Second}, err
		}
		now := metav1.Now()
		rs.Status.Phase, rs.Status.StartedAt = crmv1alpha1.RestoreRunning, &now
		rs.Status.Message = "stopping the application"
		kube.SetCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Running", rs.Status.Message)
		kube.Audit(ctx, r.Recorder, rs, corev1.EventTypeNormal, "Started", "Restore", "restoring Backup %s into %s", backup.Name, env.Name)
		return ctrl.Result{}, nil // the Environment controller now scales the application down
	}

	jobName := resources.AgentJobName(rs.Name, "restore")
	job := &batchv1.Job{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: jobName}, job); {
	case apierrors.IsNotFound(err):
		if rs.Status.JobName != "" {
			return kube.JobGone(ctx, r.APIReader, rs.Namespace, jobName, func(msg string) { r.fail(rs, "JobDeleted", msg) })
		}
		if stopped, msg := applicationStopped(ctx, r.Client, r.APIReader, in); !stopped {
			// The Deployments' watch brings us back; a pod's end changes no
			// Deployment (and application pods are not cached), so pods in
			// their grace period are looked at again every half second: the
			// customer's downtime, bounded by the pods' grace period.
			rs.Status.Message = msg
			return ctrl.Result{RequeueAfter: 500 * time.Millisecond}, nil
		}
		if ok, msg := agentjob.DatabaseRunning(ctx, r.Client, in); !ok {
			rs.Status.Message = msg
			return ctrl.Result{RequeueAfter: 5 * time.Second}, nil
		}
		// Every erasure of the project is applied again before the restore
		// reports success, so that an older backup brings no erased person back.
		hashes, err := agentjob.ErasureHashes(ctx, r.Client, rs.Namespace, in.Project.Spec.Product.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		anonymize := mustAnonymize(in, backup)
		job, err := r.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "restore", JobName: jobName,
			BackupName: backup.Name, BackupEnvironment: backup.Spec.EnvironmentRef.Name,
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
		rs.Status.ErasuresReapplied = int32(len(hashes)) //nolint:gosec // G115: one hash per ErasureRequest of a project, far below 2^31
		rs.Status.Anonymized = anonymize
		rs.Status.JobName, rs.Status.Message = jobName, runningMessage(jobName, anonymize)
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}
	done, res, why := agentjob.JobOutcome(ctx, r.Client, r.APIReader, job)
	if !done {
		reason, msg, expired := r.NotStarting(ctx, job)
		switch {
		case expired:
			// The agent never ran: the data is as it was, and the application starts again.
			r.fail(rs, reason, fmt.Sprintf("%s, for %s: the agent never ran, %s is unchanged", msg, agentjob.StartDeadline, env.Name))
			return ctrl.Result{}, nil
		case reason != "":
			rs.Status.Message = msg
		default:
			rs.Status.Message = runningMessage(jobName, rs.Status.Anonymized)
		}
		return ctrl.Result{RequeueAfter: agentjob.JobCheck}, nil // and the Job watch brings us back
	}
	if res.Error != "" || why != "" {
		// An agent that ended without a result was killed (out of memory, a
		// lost node) or its pod vanished: it may have been half-way through
		// an in-place load or the files, and a staged MariaDB load leaves
		// its copy beside the database, which a Job of the operator's drops
		// before the restore is reported.
		killed := res.Error == ""
		if killed && leavesStagingCopy(in) {
			done, msg, err := r.dropLeftovers(ctx, rs, in)
			if err != nil || !done {
				rs.Status.Message = msg
				return ctrl.Result{RequeueAfter: agentjob.JobCheck}, err
			}
			why += "; " + msg
		}
		if res.Partial || killed {
			rs.Status.PartialData = true
			r.fail(rs, "FailedHalfWay", fmt.Sprintf("%s%s; the data of %s is partial: its application stays stopped until a new Restore into it completes", res.Error, why, env.Name))
			return ctrl.Result{}, nil
		}
		r.fail(rs, "AgentFailed", res.Error+why)
		return ctrl.Result{}, nil
	}
	now := metav1.Now()
	rs.Status.Phase, rs.Status.CompletedAt = crmv1alpha1.RestoreCompleted, &now
	rs.Status.Message = fmt.Sprintf("restored Backup %s (%s) into %s; %d erasures re-applied", backup.Name, backup.Status.Size, env.Name, rs.Status.ErasuresReapplied)
	if rs.Status.Anonymized {
		rs.Status.Message += "; personal data anonymized, outgoing mail and scheduled jobs off"
	}
	kube.SetCondition(&rs.Status.Conditions, rs.Generation, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Completed", rs.Status.Message)
	kube.Audit(ctx, r.Recorder, rs, corev1.EventTypeNormal, "Completed", "Restore", "%s", rs.Status.Message)
	return ctrl.Result{}, nil
}

// leavesStagingCopy says whether a killed restore into the environment may
// have left a staging copy beside its database: MariaDB run by the operator,
// whose restore loads beside the database as the server's root.
func leavesStagingCopy(in *resources.EnvironmentInput) bool {
	return in.Profile.Engine == crmv1alpha1.DatabaseMariaDB && in.External == nil
}

// dropLeftovers runs crm-agent clean for a restore whose agent was killed:
// the raw rows it was loading must not stay on the server, beyond the reach
// of erasures. It says whether the Job has ended and what it did; a clean
// that fails is said, not retried (the next restore or erasure drops the
// copy as well).
func (r *Reconciler) dropLeftovers(ctx context.Context, rs *crmv1alpha1.Restore, in *resources.EnvironmentInput) (bool, string, error) {
	name := resources.AgentJobName(rs.Name, "clean")
	job := &batchv1.Job{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: rs.Namespace, Name: name}, job); {
	case apierrors.IsNotFound(err):
		job, err := r.AgentJob(resources.AgentJobInput{EnvironmentInput: in, Command: "clean", JobName: name})
		if err != nil {
			return true, "the copy a killed load may have left beside the database was not dropped: " + err.Error(), nil
		}
		if err := controllerutil.SetControllerReference(rs, job, r.Scheme()); err != nil {
			return false, "", err
		}
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return false, "", err
		}
		return false, "the agent was killed; Job " + name + " drops what its load left beside the database", nil
	case err != nil:
		return false, "", err
	}
	done, res, why := agentjob.JobOutcome(ctx, r.Client, r.APIReader, job)
	if !done {
		if reason, msg, expired := r.NotStarting(ctx, job); expired {
			return true, fmt.Sprintf("Job %s, which was to drop what the killed load left beside the database, did not start (%s: %s): the next restore or erasure drops it", name, reason, msg), nil
		}
		return false, "the agent was killed; Job " + name + " drops what its load left beside the database", nil
	}
	switch {
	case res.Error != "" || why != "":
		return true, fmt.Sprintf("dropping what the killed load left beside the database failed (%s%s): the next restore or erasure drops it", res.Error, why), nil
	}
	return true, "what the killed load left beside the database was dropped (Job " + name + ")", nil
}

// runningMessage says what a running restore does.
func runningMessage(jobName string, anonymized bool) string {
	msg := "crm-agent is verifying and restoring the backup in Job " + jobName
	if anonymized {
		msg += "; the copy is anonymized before the application sees it (gdpr.anonymizeNonProduction)"
	}
	return msg
}

// promotionInFlight names an increment whose stage on env is migrating,
// rolling out or verifying (not this Restore's own rollback): a restore then
// would race the migration or be undone by the rollout's verification.
func (r *Reconciler) promotionInFlight(ctx context.Context, rs *crmv1alpha1.Restore, env string) (string, error) {
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
// anonymized copies, or created with bootstrap.anonymize, of any backup but
// the environment's own. "Own" is the environment's UID recorded in the
// backup (status.origin), never a name: an environment deleted and created
// again under the same name is another environment, and a Restore's name
// says nothing about what it loads. A backup that recorded no origin (taken
// before origins were recorded) counts as foreign.
func mustAnonymize(in *resources.EnvironmentInput, backup *crmv1alpha1.Backup) bool {
	env, gdpr := in.Env, in.Project.Spec.GDPR
	asked := (gdpr != nil && gdpr.AnonymizeNonProduction) || (env.Spec.Bootstrap != nil && env.Spec.Bootstrap.Anonymize)
	switch {
	case !asked, env.Spec.Stage == crmv1alpha1.StageProduction:
		return false
	case backup.Status.Origin != nil && backup.Status.Origin.UID == env.UID:
		return false
	}
	return true
}

// productionBackup says whether a backup holds a production environment's
// data and code, which alone production may take. A backup that recorded no
// origin (taken by an older operator) counts when the environment it names
// is production now.
func (r *Reconciler) productionBackup(ctx context.Context, b *crmv1alpha1.Backup) (bool, error) {
	if b.Status.Origin != nil {
		return b.Status.Origin.Stage == crmv1alpha1.StageProduction, nil
	}
	named := &crmv1alpha1.Environment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.EnvironmentRef.Name}, named); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return named.Spec.Stage == crmv1alpha1.StageProduction, nil
}

func originOf(b *crmv1alpha1.Backup) string {
	if o := b.Status.Origin; o != nil {
		return fmt.Sprintf("%s environment %s", o.Stage, o.Environment)
	}
	return fmt.Sprintf("environment %s, whose stage it did not record", b.Spec.EnvironmentRef.Name)
}

// applicationStopped reports whether no application pod runs any more:
// the Deployments are scaled to zero and no pod of theirs is left, not
// even one in its grace period (a Deployment stops counting a pod once it
// terminates, while the pod may still write to the database).
func applicationStopped(ctx context.Context, c client.Client, pods client.Reader, in *resources.EnvironmentInput) (bool, string) {
	names := []string{resources.AppName(in.Env.Name)}
	components := map[string]bool{resources.ComponentApp: true}
	for _, comp := range in.Profile.Components {
		names = append(names, in.Env.Name+"-"+comp.Name)
		components[comp.Name] = true
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
	list := &corev1.PodList{}
	if err := pods.List(ctx, list, client.InNamespace(in.Env.Namespace), client.MatchingLabels{crmv1alpha1.LabelEnvironment: in.Env.Name}); err != nil {
		return false, err.Error()
	}
	for _, p := range list.Items {
		// A pod whose containers all ended (Failed or Succeeded, as a
		// stopped pod is until it is removed) writes nothing any more.
		if components[p.Labels[resources.LabelComponent]] && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			return false, fmt.Sprintf("waiting for pod %s to end", p.Name)
		}
	}
	return true, ""
}

// SetupWithManager registers the reconciler; it follows its Jobs, Backups
// and the Deployments of the environments it restores.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Restore{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, kube.EnqueueForJobPods(mgr.GetClient(), kube.ControllerOfKind("Restore"))).
		Watches(&crmv1alpha1.Backup{}, enqueueRestoresOfBackup(mgr.GetClient())).
		// The application's Deployments scaling down start the Job at once,
		// not at the next look: the restore is the customer's downtime.
		Watches(&appsv1.Deployment{}, enqueueRunningRestoresOfEnvironment(mgr.GetClient())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// enqueueRunningRestoresOfEnvironment wakes the running Restores of the
// environment a Deployment belongs to.
func enqueueRunningRestoresOfEnvironment(c client.Client) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		env := obj.GetLabels()[crmv1alpha1.LabelEnvironment]
		if env == "" {
			return nil
		}
		list := &crmv1alpha1.RestoreList{}
		if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, rs := range list.Items {
			if rs.Spec.EnvironmentRef.Name == env && rs.Status.Phase == crmv1alpha1.RestoreRunning && rs.Status.JobName == "" {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
			}
		}
		return reqs
	})
}

// enqueueRestoresOfBackup wakes the Restores waiting on a Backup.
func enqueueRestoresOfBackup(c client.Client) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
		list := &crmv1alpha1.RestoreList{}
		if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, rs := range list.Items {
			if rs.Spec.BackupRef.Name == obj.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rs)})
			}
		}
		return reqs
	})
}
