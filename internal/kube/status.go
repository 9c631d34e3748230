package kube

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StatusOption changes how PatchStatus writes.
type StatusOption func(*statusPatch)

type statusPatch struct{ locked bool }

// Locked makes the patch fail with a conflict when obj changed since
// before was read: a state machine must not write a step decided on a
// stale copy; the conflict requeues the reconcile with fresh data.
func Locked() StatusOption { return func(p *statusPatch) { p.locked = true } }

// PatchStatus writes the status of obj once, as a merge patch against
// before, and only when status differs from beforeStatus: a reconcile that
// finds nothing to change costs the API server nothing.
func PatchStatus(ctx context.Context, c client.Client, obj, before client.Object, status, beforeStatus any, opts ...StatusOption) error {
	if equality.Semantic.DeepEqual(status, beforeStatus) {
		return nil
	}
	var p statusPatch
	for _, o := range opts {
		o(&p)
	}
	patch := client.MergeFrom(before)
	if p.locked {
		patch = client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	}
	return c.Status().Patch(ctx, obj, patch)
}

// SetCondition sets a condition stamped with the object's generation,
// keeping lastTransitionTime when the status does not change.
func SetCondition(conditions *[]metav1.Condition, generation int64, condType string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: generation,
	})
}

// ConditionStatus is a condition's status for b.
func ConditionStatus(b bool) metav1.ConditionStatus {
	if b {
		return metav1.ConditionTrue
	}
	return metav1.ConditionFalse
}
