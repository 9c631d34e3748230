package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// FieldOwner is the server-side-apply field manager of everything the operator writes.
const FieldOwner = "crm-operator"

// applier writes children with server-side apply, but only when the stored
// object differs from the desired one: a reconcile that finds nothing to
// change sends no write request.
type applier struct {
	client.Client
}

// apply makes child, owned by owner, hold the desired fields. It reports
// whether it wrote.
func (a applier) apply(ctx context.Context, owner, child client.Object) (bool, error) {
	if err := controllerutil.SetControllerReference(owner, child, a.Scheme()); err != nil {
		return false, err
	}
	existing, err := a.Scheme().New(child.GetObjectKind().GroupVersionKind())
	if err != nil {
		return false, err
	}
	current := existing.(client.Object)
	switch err := a.Get(ctx, client.ObjectKeyFromObject(child), current); {
	case apierrors.IsNotFound(err):
		current = nil
	case err != nil:
		return false, err
	}
	if pvc, ok := child.(*corev1.PersistentVolumeClaim); ok && current != nil {
		keepImmutableClaimFields(pvc, current.(*corev1.PersistentVolumeClaim))
	}
	want, err := toApply(child)
	if err != nil {
		return false, err
	}
	if current != nil {
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(current)
		if err != nil {
			return false, err
		}
		if subset(want.Object, have) {
			return false, nil
		}
	}
	if err := a.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("applying %s %s: %w", child.GetObjectKind().GroupVersionKind().Kind, child.GetName(), err)
	}
	return true, nil
}

// remove deletes obj when it exists and is controlled by owner.
func (a applier) remove(ctx context.Context, owner, obj client.Object) (bool, error) {
	if err := a.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if ref := metav1.GetControllerOf(obj); ref == nil || ref.UID != owner.GetUID() || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	return true, client.IgnoreNotFound(a.Delete(ctx, obj))
}

// toApply renders a typed object as the apply request: without status and
// without the empty fields Go's zero values would claim.
func toApply(obj client.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// subset reports whether every field set in want has the same value in have;
// fields the API server defaulted or others own are ignored.
func subset(want, have any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		for k, v := range w {
			if !subset(v, h[k]) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok {
			return len(w) == 0 && have == nil
		}
		if len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return want == have
	}
}

// keepImmutableClaimFields copies what a bound claim can no longer change
// into the desired claim; its size may only grow.
func keepImmutableClaimFields(want, have *corev1.PersistentVolumeClaim) {
	want.Spec.AccessModes = have.Spec.AccessModes
	want.Spec.StorageClassName = have.Spec.StorageClassName
	want.Spec.VolumeMode = have.Spec.VolumeMode
	want.Spec.VolumeName = have.Spec.VolumeName
	w := want.Spec.Resources.Requests[corev1.ResourceStorage]
	if h, ok := have.Spec.Resources.Requests[corev1.ResourceStorage]; ok && h.Cmp(w) > 0 {
		want.Spec.Resources.Requests[corev1.ResourceStorage] = h
	}
}
