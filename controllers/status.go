package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// patchStatusIfChanged writes the status of obj once, as a merge patch against
// before, and only when it differs: a reconcile that finds nothing to change
// must cost the API server nothing.
func patchStatusIfChanged(ctx context.Context, c client.Client, obj, before client.Object, status, beforeStatus any) error {
	if equality.Semantic.DeepEqual(status, beforeStatus) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFrom(before))
}

// setCondition sets a condition stamped with the object's generation, keeping
// lastTransitionTime when the status does not change.
func setCondition(conditions *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// patchStatusLocked is patchStatusIfChanged with optimistic locking: a state
// machine must not write a step decided on a stale copy; the conflict
// requeues the reconcile with fresh data.
func patchStatusLocked(ctx context.Context, c client.Client, obj, before client.Object, status, beforeStatus any) error {
	if equality.Semantic.DeepEqual(status, beforeStatus) {
		return nil
	}
	return c.Status().Patch(ctx, obj, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
}
