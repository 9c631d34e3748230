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

// ImplementationProjectReconciler keeps a project's namespace and shared
// objects in shape and summarises its environments in status.
type ImplementationProjectReconciler struct {
	client.Client
	MaxConcurrentReconciles int
}

// +kubebuilder:rbac:groups=crm.crmops.io,resources=implementationprojects,verbs=get;list;watch
// +kubebuilder:rbac:groups=crm.crmops.io,resources=implementationprojects/status,verbs=get;update;patch

// Reconcile records what it observed of the project in its status.
func (r *ImplementationProjectReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	project := &crmv1alpha1.ImplementationProject{}
	if err := r.Get(ctx, req.NamespacedName, project); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := project.DeepCopy()

	project.Status.ObservedGeneration = project.Generation
	project.Status.Namespace = project.Name
	// The environments and their readiness arrive with the Environment
	// controller; until then the project says plainly that it is not Ready.
	setCondition(&project.Status.Conditions, project.Generation, crmv1alpha1.ConditionReady,
		metav1.ConditionUnknown, "Reconciling", "waiting for the project's environments")

	return ctrl.Result{}, patchStatusIfChanged(ctx, r.Client, project, before, project.Status, before.Status)
}

// SetupWithManager registers the reconciler; status-only changes do not
// trigger it, since it wrote them.
func (r *ImplementationProjectReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&crmv1alpha1.ImplementationProject{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}
