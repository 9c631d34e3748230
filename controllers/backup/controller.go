package backup

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/agentjob"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/resources"
)

// Reconciler runs crm-agent in a Job for each Backup and records the
// result the agent reports in its termination message.
type Reconciler struct {
	agentjob.Deps
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete

// Reconcile moves a Backup from Pending through Running to Completed or Failed.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.Backup{}, r)
}

// Settle deletes the stored data of a Backup being deleted, and applies
// retention to a completed one whose environment is gone; a failed Backup is final.
func (r *Reconciler) Settle(ctx context.Context, b *crmv1alpha1.Backup) (bool, ctrl.Result, error) {
	if done, res, err := kube.Finalize(ctx, r.Client, b, crmv1alpha1.BackupFinalizer, func() (ctrl.Result, error) { return r.reconcileDelete(ctx, b) }); done || err != nil {
		return done, res, err
	}
	if b.Status.Phase == crmv1alpha1.BackupCompleted {
		res, err := r.expireOrphan(ctx, b)
		return true, res, err
	}
	return !resources.BackupInProgress(b.Status.Phase), ctrl.Result{}, nil
}

// Status is the Backup's status and its observedGeneration.
func (r *Reconciler) Status(b *crmv1alpha1.Backup) (any, *int64) {
	return b.Status, &b.Status.ObservedGeneration
}

// Step starts the backup Job and records its outcome.
func (r *Reconciler) Step(ctx context.Context, b *crmv1alpha1.Backup, _ kube.Persist) (ctrl.Result, error) {
	if b.Status.Phase == "" {
		b.Status.Phase = crmv1alpha1.BackupPending
	}
	in, err := r.LoadEnvironmentInput(ctx, b.Namespace, b.Spec.EnvironmentRef.Name)
	if err != nil {
		if b.Status.JobName == "" {
			kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Waiting", err.Error())
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
	}
	jobName := resources.AgentJobName(b.Name, "backup")
	job := &batchv1.Job{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job); {
	case apierrors.IsNotFound(err):
		if b.Status.JobName != "" {
			return kube.JobGone(ctx, r.APIReader, b.Namespace, jobName, func(msg string) { r.fail(b, "JobDeleted", msg) })
		}
		if in == nil {
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		if in.Project.Spec.Backup == nil {
			r.fail(b, "NoBackupTarget", fmt.Sprintf("project %s has no spec.backup target", in.Project.Name))
			return ctrl.Result{}, nil
		}
		// A hibernated database is started for the dump: wait until it runs.
		if ok, msg := agentjob.DatabaseRunning(ctx, r.Client, in); !ok {
			kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "WaitingForDatabase", msg)
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		if reason, msg, err := r.CheckBackupTarget(ctx, in); err != nil {
			return ctrl.Result{}, err
		} else if reason != "" {
			if c := meta.FindStatusCondition(b.Status.Conditions, crmv1alpha1.ConditionReady); c == nil || c.Reason != reason {
				r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, reason, "Backup", "%s", msg)
			}
			kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
			// Not watched (the cache holds only the operator's own Secrets): looked at again.
			return ctrl.Result{RequeueAfter: 15 * time.Second}, nil
		}
		job, err := r.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "backup", JobName: jobName, BackupName: b.Name,
			Increment: b.Spec.Increment,
		})
		if err != nil {
			r.fail(b, "InvalidJob", err.Error())
			return ctrl.Result{}, nil
		}
		if err := controllerutil.SetControllerReference(b, job, r.Scheme()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, err
		}
		now := metav1.Now()
		b.Status.Phase, b.Status.JobName, b.Status.StartedAt = crmv1alpha1.BackupRunning, jobName, &now
		b.Status.Product, b.Status.ProductVersion, b.Status.Engine = string(in.Project.Spec.Product.Name), in.Version, in.Profile.Engine
		b.Status.Origin = &crmv1alpha1.BackupOrigin{Environment: in.Env.Name, UID: in.Env.UID, Stage: in.Env.Spec.Stage}
		b.Status.Target = in.Project.Spec.Backup.Target.DeepCopy()
		kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Running", "crm-agent is backing up the environment in Job "+jobName)
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Started", "Backup", "backup Job %s started", jobName)
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}

	b.Status.Phase, b.Status.JobName = crmv1alpha1.BackupRunning, jobName
	done, res, why := agentjob.JobOutcome(ctx, r.Client, r.APIReader, job)
	switch {
	case !done:
		reason, msg, expired := r.NotStarting(ctx, job)
		switch {
		case expired:
			r.fail(b, reason, fmt.Sprintf("%s, for %s: the agent never ran, nothing was backed up", msg, agentjob.StartDeadline))
			return ctrl.Result{}, nil
		case reason != "":
			kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
		default:
			kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Running", "crm-agent is backing up the environment in Job "+jobName)
		}
		return ctrl.Result{RequeueAfter: agentjob.JobCheck}, nil // and the Job watch brings us back
	case res.Error != "" || why != "":
		msg := res.Error
		if msg == "" {
			msg = why
		}
		r.fail(b, "AgentFailed", msg)
		return ctrl.Result{}, nil
	}
	now := metav1.Now()
	b.Status.Phase, b.Status.CompletedAt = crmv1alpha1.BackupCompleted, &now
	if in != nil {
		if _, maxAge, err := policy.EffectiveRetention(in.Project, in.Env); err == nil && maxAge > 0 {
			b.Status.ExpiresAt = &metav1.Time{Time: now.Add(maxAge)}
		}
	}
	b.Status.Location, b.Status.SizeBytes, b.Status.Checksum = res.Location, res.Size, res.Checksum
	b.Status.Size = resource.NewQuantity(res.Size, resource.BinarySI).String()
	kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Completed",
		fmt.Sprintf("%d objects, %s, checksums recorded in the manifest", len(res.Objects), b.Status.Size))
	r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Completed", "Backup", "backup stored at %s (%s)", res.Location, b.Status.Size)
	return ctrl.Result{}, nil
}

func (r *Reconciler) fail(b *crmv1alpha1.Backup, reason, msg string) {
	b.Status.Phase, b.Status.Error = crmv1alpha1.BackupFailed, msg
	kube.SetCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, reason, "Backup", "%s", msg)
}

// reconcileDelete deletes the stored data with a crm-agent delete Job,
// unless the backup never stored anything.
func (r *Reconciler) reconcileDelete(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(b, crmv1alpha1.BackupFinalizer) {
		return ctrl.Result{}, nil
	}
	if b.Status.JobName != "" {
		in, err := r.targetOf(ctx, b)
		if err == nil && in.Project.Spec.Backup != nil {
			jobName := resources.AgentJobName(b.Name, "delete")
			job := &batchv1.Job{}
			switch err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job); {
			case apierrors.IsNotFound(err):
				// The stored data is deleted only through the target: without
				// its Secret the Backup waits, and says for what.
				if reason, msg, err := r.CheckBackupTarget(ctx, in); err != nil || reason != "" {
					if reason != "" {
						r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, reason, "Delete", "stored data not deleted yet: %s", msg)
					}
					return ctrl.Result{RequeueAfter: 30 * time.Second}, err
				}
				job, err := r.AgentJob(resources.AgentJobInput{
					EnvironmentInput: in, Command: "delete", JobName: jobName, BackupName: b.Name,
				})
				if err != nil {
					return ctrl.Result{}, err
				}
				// Owned by the Backup, whose finalizer waits for it; it goes with the Backup.
				if err := controllerutil.SetControllerReference(b, job, r.Scheme()); err != nil {
					return ctrl.Result{}, err
				}
				return ctrl.Result{}, client.IgnoreAlreadyExists(r.Create(ctx, job))
			case err != nil:
				return ctrl.Result{}, err
			}
			done, res, why := agentjob.JobOutcome(ctx, r.Client, r.APIReader, job)
			if !done {
				return ctrl.Result{}, nil
			}
			if res.Error != "" || why != "" {
				// Keep the Backup: its data may still be stored.
				r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, "DeleteFailed", "Delete", "stored data not deleted: %s%s", res.Error, why)
				return ctrl.Result{RequeueAfter: 10 * time.Minute}, nil
			}
		}
		// Without its project the target cannot be reached: the Backup
		// goes, and the event says where the data is.
		if err != nil {
			r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, "DataKept", "Delete", "project gone, stored data kept at %s", b.Status.Location)
		}
	}
	controllerutil.RemoveFinalizer(b, crmv1alpha1.BackupFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, b))
}

// backupsOfEnvironment maps a deleted environment to its Backups.
func (r *Reconciler) backupsOfEnvironment(ctx context.Context, obj client.Object) []reconcile.Request {
	list := &crmv1alpha1.BackupList{}
	if err := r.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, b := range list.Items {
		if b.Spec.EnvironmentRef.Name == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&b)})
		}
	}
	return reqs
}

// targetOf is what a delete Job of b needs: the project's target and the
// environment's name (the prefix of its objects). The environment may be
// gone: its backups outlive it.
func (r *Reconciler) targetOf(ctx context.Context, b *crmv1alpha1.Backup) (*resources.EnvironmentInput, error) {
	in, err := r.LoadEnvironmentInput(ctx, b.Namespace, b.Spec.EnvironmentRef.Name)
	if err == nil {
		return in, nil
	}
	// A project owns the namespace of its name; once it is gone, the
	// target and product the backup recorded reach its data.
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: b.Namespace}, project); err != nil {
		if !apierrors.IsNotFound(err) || b.Status.Target == nil || b.Status.Product == "" {
			return nil, err
		}
		project = &crmv1alpha1.ImplementationProject{ObjectMeta: metav1.ObjectMeta{Name: b.Namespace}, Spec: crmv1alpha1.ImplementationProjectSpec{
			Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductName(b.Status.Product), Version: b.Status.ProductVersion},
			Backup:  &crmv1alpha1.BackupPolicy{Target: *b.Status.Target},
		}}
	}
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		return nil, err
	}
	env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: b.Spec.EnvironmentRef.Name, Namespace: b.Namespace}}
	return &resources.EnvironmentInput{Project: project, Env: env, Profile: profile, Tolerations: r.Tolerations, Images: r.Images}, nil
}

// expireOrphan applies the project's maximum age (retention.maxAge, capped
// by gdpr.maxBackupAge) to a completed Backup whose environment is gone: the
// environment's own retention no longer runs for it, and stored personal
// data must not outlive the policy. keepLast does not hold it: no newer
// backup of that environment will ever come.
func (r *Reconciler) expireOrphan(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if b.Status.CompletedAt == nil {
		return ctrl.Result{}, nil
	}
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.EnvironmentRef.Name}, &crmv1alpha1.Environment{})
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, client.IgnoreNotFound(err) // its environment's retention applies
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: b.Namespace}, project); err != nil {
		if apierrors.IsNotFound(err) {
			return r.expireWithoutProject(ctx, b)
		}
		return ctrl.Result{}, err
	}
	if project.Spec.Paused {
		return ctrl.Result{}, nil // the project's resume brings retention back
	}
	_, maxAge, err := policy.EffectiveRetention(project, &crmv1alpha1.Environment{})
	if err != nil || maxAge == 0 {
		return ctrl.Result{}, err
	}
	if left := b.Status.CompletedAt.Add(maxAge).Sub(r.Clock.Now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if err := r.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "BackupExpired", "Retention",
		"Backup of environment %s, which is gone, deleted by the retention policy (max age %s)", b.Spec.EnvironmentRef.Name, maxAge)
	return ctrl.Result{}, nil
}

// expireWithoutProject deletes, once its recorded time has come, a backup
// whose project is gone (its namespace kept for it): the maximum age the
// project set when the backup completed still holds.
func (r *Reconciler) expireWithoutProject(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if b.Status.ExpiresAt == nil {
		return ctrl.Result{}, nil // no maximum age: kept until deleted explicitly
	}
	if left := b.Status.ExpiresAt.Sub(r.Clock.Now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if err := r.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "BackupExpired", "Retention",
		"Backup of project %s, which is gone, deleted at the maximum age it recorded (%s)", b.Namespace, b.Status.ExpiresAt.UTC().Format(time.RFC3339))
	return ctrl.Result{}, nil
}

// SetupWithManager registers the reconciler; it follows its Jobs.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Backup{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, kube.EnqueueForJobPods(mgr.GetClient(), kube.ControllerOfKind("Backup"))).
		// An environment's deletion hands its backups' retention to them (expireOrphan).
		Watches(&crmv1alpha1.Environment{}, handler.EnqueueRequestsFromMapFunc(r.backupsOfEnvironment),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}
