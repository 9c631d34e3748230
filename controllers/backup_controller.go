package controllers

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
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
	"github.com/crmops/crm-operator/internal/agent"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/policy"
	"github.com/crmops/crm-operator/internal/resources"
)

// BackupFinalizer deletes a Backup's stored data before the Backup goes.
const BackupFinalizer = "crm.crmops.io/backup-data"

// BackupReconciler runs crm-agent in a Job for each Backup and records the
// result the agent reports in its termination message.
type BackupReconciler struct {
	client.Client
	APIReader               client.Reader
	Recorder                events.EventRecorder
	AgentImage              string
	MaxConcurrentReconciles int
	// Tolerations are added to every pod the operator creates.
	Tolerations []corev1.Toleration
	// Clock is the retention's time; nil is time.Now.
	Clock func() time.Time
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete

// Reconcile moves a Backup from Pending through Running to Completed or Failed.
func (r *BackupReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &crmv1alpha1.Backup{}
	if err := r.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, b)
	}
	if controllerutil.AddFinalizer(b, BackupFinalizer) {
		if err := r.Update(ctx, b); err != nil {
			return ctrl.Result{}, err
		}
	}
	if b.Status.Phase == crmv1alpha1.BackupCompleted {
		return r.expireOrphan(ctx, b)
	}
	if !resources.BackupInProgress(b.Status.Phase) {
		return ctrl.Result{}, nil // Failed is final
	}
	before := b.DeepCopy()
	result, err := r.reconcileNormal(ctx, b)
	b.Status.ObservedGeneration = b.Generation
	if perr := patchStatusIfChanged(ctx, r.Client, b, before, b.Status, before.Status); perr != nil && err == nil {
		err = perr
	}
	return result, err
}

func (r *BackupReconciler) reconcileNormal(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if b.Status.Phase == "" {
		b.Status.Phase = crmv1alpha1.BackupPending
	}
	in, err := loadEnvironmentInput(ctx, r.Client, r.APIReader, r.Tolerations, b.Namespace, b.Spec.EnvironmentRef.Name)
	if err != nil {
		if b.Status.JobName == "" {
			setCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Waiting", err.Error())
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
	}
	jobName := resources.AgentJobName(b.Name, "backup")
	job := &batchv1.Job{}
	switch err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job); {
	case apierrors.IsNotFound(err):
		if b.Status.JobName != "" {
			return jobGone(ctx, r.APIReader, b.Namespace, jobName, func(msg string) error { return r.fail(b, "JobDeleted", msg) })
		}
		if in == nil {
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		if in.Project.Spec.Backup == nil {
			return ctrl.Result{}, r.fail(b, "NoBackupTarget", fmt.Sprintf("project %s has no spec.backup target", in.Project.Name))
		}
		// A hibernated database is started for the dump: wait until it runs.
		if ok, msg := databaseRunning(ctx, r.Client, in); !ok {
			setCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "WaitingForDatabase", msg)
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		job, err := resources.AgentJob(resources.AgentJobInput{
			EnvironmentInput: in, Command: "backup", JobName: jobName, BackupName: b.Name,
			Increment: b.Spec.Increment, AgentImage: r.AgentImage,
		})
		if err != nil {
			return ctrl.Result{}, r.fail(b, "InvalidJob", err.Error())
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
		setCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, "Running", "crm-agent is backing up the environment in Job "+jobName)
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Started", "Backup", "backup Job %s started", jobName)
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, err
	}

	b.Status.Phase, b.Status.JobName = crmv1alpha1.BackupRunning, jobName
	done, res, why := jobOutcome(ctx, r.Client, job)
	switch {
	case !done:
		return ctrl.Result{}, nil // the Job watch brings us back
	case res.Error != "" || why != "":
		msg := res.Error
		if msg == "" {
			msg = why
		}
		return ctrl.Result{}, r.fail(b, "AgentFailed", msg)
	}
	now := metav1.Now()
	b.Status.Phase, b.Status.CompletedAt = crmv1alpha1.BackupCompleted, &now
	b.Status.Location, b.Status.SizeBytes, b.Status.Checksum = res.Location, res.Size, res.Checksum
	b.Status.Size = resource.NewQuantity(res.Size, resource.BinarySI).String()
	setCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionTrue, "Completed",
		fmt.Sprintf("%d objects, %s, checksums recorded in the manifest", len(res.Objects), b.Status.Size))
	r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Completed", "Backup", "backup stored at %s (%s)", res.Location, b.Status.Size)
	return ctrl.Result{}, nil
}

func (r *BackupReconciler) fail(b *crmv1alpha1.Backup, reason, msg string) error {
	b.Status.Phase, b.Status.Error = crmv1alpha1.BackupFailed, msg
	setCondition(&b.Status.Conditions, b.Generation, crmv1alpha1.ConditionReady, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, reason, "Backup", "%s", msg)
	return nil
}

// reconcileDelete deletes the stored data with a crm-agent delete Job,
// unless the backup never stored anything.
func (r *BackupReconciler) reconcileDelete(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(b, BackupFinalizer) {
		return ctrl.Result{}, nil
	}
	if b.Status.JobName != "" {
		in, err := r.targetOf(ctx, b)
		if err == nil && in.Project.Spec.Backup != nil {
			jobName := resources.AgentJobName(b.Name, "delete")
			job := &batchv1.Job{}
			switch err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: jobName}, job); {
			case apierrors.IsNotFound(err):
				job, err := resources.AgentJob(resources.AgentJobInput{
					EnvironmentInput: in, Command: "delete", JobName: jobName, BackupName: b.Name, AgentImage: r.AgentImage,
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
			done, res, why := jobOutcome(ctx, r.Client, job)
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
	controllerutil.RemoveFinalizer(b, BackupFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.Update(ctx, b))
}

// backupsOfEnvironment maps a deleted environment to its Backups.
func (r *BackupReconciler) backupsOfEnvironment(ctx context.Context, obj client.Object) []reconcile.Request {
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
func (r *BackupReconciler) targetOf(ctx context.Context, b *crmv1alpha1.Backup) (*resources.EnvironmentInput, error) {
	in, err := loadEnvironmentInput(ctx, r.Client, r.APIReader, r.Tolerations, b.Namespace, b.Spec.EnvironmentRef.Name)
	if err == nil {
		return in, nil
	}
	// A project owns the namespace of its name.
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: b.Namespace}, project); err != nil {
		return nil, err
	}
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		return nil, err
	}
	env := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: b.Spec.EnvironmentRef.Name, Namespace: b.Namespace}}
	return &resources.EnvironmentInput{Project: project, Env: env, Profile: profile, Tolerations: r.Tolerations}, nil
}

// expireOrphan applies the project's maximum age (retention.maxAge, capped
// by gdpr.maxBackupAge) to a completed Backup whose environment is gone: the
// environment's own retention no longer runs for it, and stored personal
// data must not outlive the policy. keepLast does not hold it: no newer
// backup of that environment will ever come.
func (r *BackupReconciler) expireOrphan(ctx context.Context, b *crmv1alpha1.Backup) (ctrl.Result, error) {
	if b.Status.CompletedAt == nil {
		return ctrl.Result{}, nil
	}
	err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.EnvironmentRef.Name}, &crmv1alpha1.Environment{})
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, client.IgnoreNotFound(err) // its environment's retention applies
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, types.NamespacedName{Name: b.Namespace}, project); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if project.Spec.Paused {
		return ctrl.Result{}, nil // the project's resume brings retention back
	}
	_, maxAge, err := policy.EffectiveRetention(project, &crmv1alpha1.Environment{})
	if err != nil || maxAge == 0 {
		return ctrl.Result{}, err
	}
	if left := b.Status.CompletedAt.Add(maxAge).Sub(r.now()); left > 0 {
		return ctrl.Result{RequeueAfter: left}, nil
	}
	if err := r.Delete(ctx, b); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, err
	}
	r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "BackupExpired", "Retention",
		"Backup of environment %s, which is gone, deleted by the retention policy (max age %s)", b.Spec.EnvironmentRef.Name, maxAge)
	return ctrl.Result{}, nil
}

func (r *BackupReconciler) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

// SetupWithManager registers the reconciler; it follows its Jobs.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Backup{}).
		Owns(&batchv1.Job{}).
		// An environment's deletion hands its backups' retention to them (expireOrphan).
		Watches(&crmv1alpha1.Environment{}, handler.EnqueueRequestsFromMapFunc(r.backupsOfEnvironment),
			builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false }, UpdateFunc: func(event.UpdateEvent) bool { return false },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// gone handles an object the status says was created but the cache does not
// have. If the API server confirms it is gone (deleted mid-run), fail is
// called: creating it again would make retries unbounded and could run a
// backup, restore or migration twice. If the API server still has it, the
// cache is behind (a restarted manager, a watch not yet delivered) and the
// owner looks again shortly: the cache alone never fails a step whose
// object was just created.
func gone(ctx context.Context, apiReader client.Reader, obj client.Object, fail func() error) (ctrl.Result, error) {
	err := apiReader.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	switch {
	case apierrors.IsNotFound(err):
		return ctrl.Result{}, fail()
	case err != nil:
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: time.Second}, nil
}

// jobGone is gone for an agent Job; fail receives the reason's message.
func jobGone(ctx context.Context, apiReader client.Reader, ns, name string, fail func(msg string) error) (ctrl.Result, error) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	return gone(ctx, apiReader, job, func() error { return fail(fmt.Sprintf("Job %s was deleted before it reported a result", name)) })
}

// loadEnvironmentInput gathers what the builders need about an environment.
func loadEnvironmentInput(ctx context.Context, c client.Client, apiReader client.Reader, tolerations []corev1.Toleration, ns, name string) (*resources.EnvironmentInput, error) {
	env := &crmv1alpha1.Environment{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, env); err != nil {
		return nil, fmt.Errorf("environment %s: %w", name, err)
	}
	project := &crmv1alpha1.ImplementationProject{}
	if err := c.Get(ctx, types.NamespacedName{Name: env.Spec.ProjectRef.Name}, project); err != nil {
		return nil, fmt.Errorf("project %s: %w", env.Spec.ProjectRef.Name, err)
	}
	profile, err := crm.For(project.Spec.Product)
	if err != nil {
		return nil, err
	}
	in := &resources.EnvironmentInput{Project: project, Env: env, Profile: profile, Version: resources.DesiredVersion(project, env, profile), Tolerations: tolerations}
	if env.Status.Version != "" {
		in.Version = env.Status.Version
	}
	if ext := env.Spec.Database.External; ext != nil {
		if in.External, err = readExternalDatabase(ctx, apiReader, ns, ext.SecretName, profile.Engine); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// databaseRunning reports whether the environment's database serves.
func databaseRunning(ctx context.Context, c client.Client, in *resources.EnvironmentInput) (bool, string) {
	if in.External != nil {
		return true, ""
	}
	return statefulSetReady(ctx, c, in.Env.Namespace, resources.DatabaseName(in.Env.Name), false, nil)
}

// jobOutcome reads a finished Job's result from its pod's termination message.
func jobOutcome(ctx context.Context, c client.Client, job *batchv1.Job) (done bool, res agent.Result, why string) {
	finished, failed := false, false
	for _, cond := range job.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			continue
		}
		switch cond.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			// SuccessCriteriaMet: the pods succeeded; Complete follows once
			// the Job controller has finished with them, one watch hop later.
			finished = true
		case batchv1.JobFailed:
			finished, failed, why = true, true, cond.Message
			if why == "" {
				why = cond.Reason
			}
		}
	}
	if !finished {
		return false, res, ""
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		return true, res, err.Error()
	}
	var newest *corev1.ContainerStateTerminated
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; cs.Name == "agent" && t != nil && t.Message != "" &&
				(newest == nil || t.FinishedAt.After(newest.FinishedAt.Time)) {
				newest = t
			}
		}
	}
	if newest == nil {
		if failed {
			return true, res, why
		}
		return true, res, "the agent's pod reported no result"
	}
	parsed, err := agent.ParseResult(newest.Message)
	if err != nil {
		return true, res, err.Error()
	}
	if failed && parsed.Error == "" {
		parsed.Error = why
	}
	return true, parsed, ""
}
