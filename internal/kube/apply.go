package kube

import (
	"context"
	"fmt"
	"strconv"

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

// AppliedAnnotation holds a digest of the desired state the operator last
// applied to a child. The stored object is compared with the desired one
// as a subset (the API server adds defaults, others add fields), which
// cannot see a field the operator stopped setting (a spec field removed,
// an upgrade that drops a rule's peers): the digest changes then, and the
// apply that removes the field is sent.
const AppliedAnnotation = "crm.crmops.io/applied"

func setApplied(want *unstructured.Unstructured, desired uint64) {
	annotations := want.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AppliedAnnotation] = strconv.FormatUint(desired, 16)
	want.SetAnnotations(annotations)
}

// Applier writes children with server-side apply, but only when the stored
// object differs from the desired one: a reconcile that finds nothing to
// change sends no write request.
type Applier struct {
	client.Client
	// APIReader reads a child in full when the cache holds it slim and the
	// record cannot tell whether it still holds what was applied.
	APIReader client.Reader
	Records   *AppliedRecords
	// Generations, when set, receives each applied child's generation as
	// the API server holds it (kind/name). Right after a write the cache
	// may still hold the older object, whose status describes the older
	// generation: readiness is judged only from a cache that caught up.
	Generations map[string]int64
}

func GenerationKey(kind, name string) string { return kind + "/" + name }

// noteGeneration records the generation a child is known to have now.
func (a Applier) noteGeneration(child, stored client.Object) {
	if a.Generations != nil {
		a.Generations[GenerationKey(child.GetObjectKind().GroupVersionKind().Kind, child.GetName())] = stored.GetGeneration()
	}
}

// apply makes child, owned by owner, hold the desired fields. It reports
// whether it wrote.
func (a Applier) Ensure(ctx context.Context, owner, child client.Object) (bool, error) {
	if err := controllerutil.SetControllerReference(owner, child, a.Scheme()); err != nil {
		return false, err
	}
	gvk := child.GetObjectKind().GroupVersionKind()
	current, err := a.newObject(child)
	if err != nil {
		return false, err
	}
	switch err := a.Get(ctx, client.ObjectKeyFromObject(child), current); {
	case apierrors.IsNotFound(err):
		current = nil
	case err != nil:
		return false, err
	}
	want, err := toApply(child)
	if err != nil {
		return false, err
	}
	desired, err := digest(want.Object)
	if err != nil {
		return false, err
	}
	readInFull := false
	if current != nil && isSlim(current) {
		if a.Records.inSync(current, desired) {
			// The cache holds what was last applied, at its generation.
			a.noteGeneration(child, current)
			return false, nil
		}
		if _, claim := child.(*corev1.PersistentVolumeClaim); !claim && a.Records.untouched(current) {
			// Nobody changed the child since the operator last found it
			// holding what it applied (its fingerprint has not moved): only
			// the desired state did: it is applied without the read,
			// which would cost a request as slow as the apply. A claim is
			// read: its bound fields are kept.
			current = nil
		} else if current, readInFull, err = a.readInFull(ctx, child); err != nil {
			return false, err
		}
	}
	if pvc, ok := child.(*corev1.PersistentVolumeClaim); ok && current != nil {
		keepImmutableClaimFields(pvc, current.(*corev1.PersistentVolumeClaim))
		if want, err = toApply(child); err != nil {
			return false, err
		}
	}
	setApplied(want, desired)
	if current != nil {
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(current)
		if err != nil {
			return false, err
		}
		if subset(want.Object, have) {
			a.noteGeneration(child, current)
			if !readInFull {
				return false, nil // a full cache: nothing to remember
			}
			return false, a.remember(current, desired)
		}
	}
	if err := a.Apply(ctx, client.ApplyConfigurationFromUnstructured(want), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("applying %s %s: %w", gvk.Kind, child.GetName(), err)
	}
	a.noteGeneration(child, want) // the response is the stored object
	if a.Records == nil || !slimKind(child) {
		return true, nil
	}
	// The response is the stored object: its fingerprint is what the cache
	// will show once the watch delivers it.
	applied, err := a.newObject(child)
	if err != nil {
		return false, err
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(want.Object, applied); err != nil {
		return false, err
	}
	return true, a.remember(applied, desired)
}

// readInFull reads a child the cache holds slim from the API server; nil
// when it is gone.
func (a Applier) readInFull(ctx context.Context, child client.Object) (client.Object, bool, error) {
	gvk := child.GetObjectKind().GroupVersionKind()
	if a.APIReader == nil {
		return nil, false, fmt.Errorf("%s %s: the cache holds it slim and the Applier has no API reader", gvk.Kind, child.GetName())
	}
	full, err := a.newObject(child)
	if err != nil {
		return nil, false, err
	}
	switch err := a.APIReader.Get(ctx, client.ObjectKeyFromObject(child), full); {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	// A typed read leaves the kind empty; the cache sets it.
	full.GetObjectKind().SetGroupVersionKind(gvk)
	return full, true, nil
}

func (a Applier) newObject(like client.Object) (client.Object, error) {
	obj, err := a.Scheme().New(like.GetObjectKind().GroupVersionKind())
	if err != nil {
		return nil, err
	}
	return obj.(client.Object), nil
}

// remember records that stored, a child the cache holds slim, holds the
// desired state.
func (a Applier) remember(stored client.Object, desired uint64) error {
	if a.Records == nil {
		return nil
	}
	stored.SetManagedFields(nil)
	fp, err := fingerprint(stored)
	if err != nil {
		return err
	}
	a.Records.record(stored.GetUID(), desired, fp)
	return nil
}

// remove deletes obj when it exists and is controlled by owner.
func (a Applier) Remove(ctx context.Context, owner, obj client.Object) (bool, error) {
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
