package increment

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/controllers/shared"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/promotion"
)

// Reconciler carries a sprint increment from its first stage to
// production. Every step is recorded in status before the next one starts
// and is guarded by what status says already happened, so a restart never
// takes a second backup, runs a migration twice or rolls out twice.
type Reconciler struct {
	shared.Deps
	// written: this reconciler's last status write of each increment.
	written kube.OwnWrites
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments/status,verbs=get;update;patch
// The operator changes production's version (admission policy crm-production-version asks for
// environments/promote) and grants product owners increments/acceptance, which RBAC requires it to hold.
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/promote;increments/acceptance,verbs=update
// The project Roles it writes grant the production-protection subresources
// (config/admission/production_protection.yaml), so it holds them too; it
// uses restores/production itself (rollback and bootstrap restores confirm)
// and backups/production (retention deletes production's expired backups).
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/production,verbs=create;update;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=backups/production;increments/accepted,verbs=delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=restores/production,verbs=create
// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments/content,verbs=update

// Reconcile advances the increment by at most one step that acts outside
// its status (steps that only record chain within one reconcile). Every
// status write is locked: a step decided on a stale copy is never written.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return kube.Reconcile(ctx, r.Client, req.NamespacedName, &crmv1alpha1.Increment{}, r, kube.Tracking(&r.written), kube.LockedStatus())
}

// Settle lets a deleted increment go once nothing of it touches data (a
// deletion during a migration or rollout waits for its end, through Step);
// an increment in progress gets the finalizer first. A final increment
// still goes on to Step, which records the product owner's decision.
func (r *Reconciler) Settle(ctx context.Context, inc *crmv1alpha1.Increment) (bool, ctrl.Result, error) {
	deleting := !inc.DeletionTimestamp.IsZero()
	if deleting && !promotion.HoldsDeletion(&inc.Status) {
		return true, ctrl.Result{}, r.release(ctx, inc)
	}
	if !deleting && !promotion.Final(inc.Status.Phase) && controllerutil.AddFinalizer(inc, crmv1alpha1.IncrementFinalizer) {
		// Where the admission policy crm-data-finalizers is not installed.
		if err := r.Update(ctx, inc); err != nil {
			return true, ctrl.Result{}, err
		}
	}
	return false, ctrl.Result{}, nil
}

// Status is the increment's status and its observedGeneration.
func (r *Reconciler) Status(inc *crmv1alpha1.Increment) (any, *int64) {
	return inc.Status, &inc.Status.ObservedGeneration
}

// Step takes the increment's steps until one waits (run.advance). A
// deleted increment whose work on data ended in this step goes, its
// status on record first.
func (r *Reconciler) Step(ctx context.Context, inc *crmv1alpha1.Increment, persist kube.Persist) (ctrl.Result, error) {
	x := &run{Reconciler: r, inc: inc, persist: persist}
	result, err := x.advance(ctx)
	if err != nil || inc.DeletionTimestamp.IsZero() || promotion.HoldsDeletion(&inc.Status) {
		return result, err
	}
	if err := persist(ctx); err != nil {
		return result, err
	}
	return result, r.release(ctx, inc)
}

// release lets a deleted increment go: nothing of it touches data any more.
func (r *Reconciler) release(ctx context.Context, inc *crmv1alpha1.Increment) error {
	if !controllerutil.ContainsFinalizer(inc, crmv1alpha1.IncrementFinalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(inc.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(inc, crmv1alpha1.IncrementFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, inc, patch))
}

// SetupWithManager registers the reconciler. It follows the increment's
// Backups, Jobs and their pods, and the environments it rolls out to.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Increment{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(incrementOfWork)).
		// A migration pod that cannot start is named at once (migrate).
		Watches(&corev1.Pod{}, kube.EnqueueForJobPods(mgr.GetClient(), incrementOfWork), builder.WithPredicates(kube.PodStartChanged())).
		Watches(&crmv1alpha1.Restore{}, handler.EnqueueRequestsFromMapFunc(incrementOfWork)).
		Watches(&crmv1alpha1.Backup{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			b := o.(*crmv1alpha1.Backup)
			if b.Spec.Increment == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.Increment}}}
		})).
		Watches(&crmv1alpha1.Environment{}, handler.EnqueueRequestsFromMapFunc(r.incrementsOfEnvironment)).
		// A project that resumes (spec.paused) lets its increments go on.
		Watches(&crmv1alpha1.ImplementationProject{}, handler.EnqueueRequestsFromMapFunc(r.incrementsOfProject),
			builder.WithPredicates(pausedChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Workers}).
		Complete(r)
}

// incrementOfWork maps a migration Job or rollback Restore to the Increment
// that started it (label crm.crmops.io/increment; owner, for Jobs created
// before the label).
func incrementOfWork(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[crmv1alpha1.LabelIncrement]
	if ref := metav1.GetControllerOf(obj); name == "" && ref != nil && ref.Kind == "Increment" {
		name = ref.Name
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// incrementsOfProject wakes the increments in progress in the project's
// namespace (of the project's name).
func (r *Reconciler) incrementsOfProject(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.inProgress(ctx, obj.GetName())
}

// incrementsOfEnvironment wakes the increments in progress in its namespace.
func (r *Reconciler) incrementsOfEnvironment(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.inProgress(ctx, obj.GetNamespace())
}

func (r *Reconciler) inProgress(ctx context.Context, ns string) []reconcile.Request {
	list := &crmv1alpha1.IncrementList{}
	if err := r.List(ctx, list, client.InNamespace(ns)); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, inc := range list.Items {
		if !promotion.Final(inc.Status.Phase) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&inc)})
		}
	}
	return reqs
}
