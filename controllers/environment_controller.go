package controllers

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// EnvironmentReconciler keeps one CRM instance (application, database,
// storage, ingress, credentials, network policy) in shape.
type EnvironmentReconciler struct {
	client.Client
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments,verbs=get;list;watch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=environments/status,verbs=get;update;patch

// Reconcile records what it observed of the environment in its status.
func (r *EnvironmentReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	env := &crmv1alpha1.Environment{}
	if err := r.Get(ctx, req.NamespacedName, env); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := env.DeepCopy()

	env.Status.ObservedGeneration = env.Generation
	if env.Status.Phase == "" {
		env.Status.Phase = crmv1alpha1.EnvironmentProvisioning
	}
	setCondition(&env.Status.Conditions, env.Generation, crmv1alpha1.ConditionReady,
		metav1.ConditionUnknown, "Provisioning", "the environment is being provisioned")

	return ctrl.Result{}, patchStatusIfChanged(ctx, r.Client, env, before, env.Status, before.Status)
}

// SetupWithManager registers the reconciler.
func (r *EnvironmentReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.Environment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
