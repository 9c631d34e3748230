package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// IncrementReconciler carries a sprint increment from its first stage to
// production.
type IncrementReconciler struct {
	client.Client
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=crm.crmops.io,resources=increments/status,verbs=get;update;patch

// Reconcile records what it observed of the increment in its status.
func (r *IncrementReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inc := &crmv1alpha1.Increment{}
	if err := r.Get(ctx, req.NamespacedName, inc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := inc.DeepCopy()

	inc.Status.ObservedGeneration = inc.Generation
	if inc.Status.Phase == "" {
		inc.Status.Phase = crmv1alpha1.IncrementPending
	}

	return ctrl.Result{}, patchStatusIfChanged(ctx, r.Client, inc, before, inc.Status, before.Status)
}

// SetupWithManager registers the reconciler.
func (r *IncrementReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Increment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
