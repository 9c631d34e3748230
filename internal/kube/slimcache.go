package kube

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The children the operator only applies are cached slim: their spec is
// replaced by a fingerprint of the stored object, which is most of what a
// thousand projects cost in memory. Whether a child still holds what the
// operator applied is then known from an in-memory record of the last
// fingerprint it saw in that state; without a record (after a restart), or
// when the fingerprint moved (someone edited the child), the Applier reads
// the child from the API server once and compares it in full.

// The cache's slim copies carry their fingerprint in metadata.selfLink, a
// field API servers have not set since Kubernetes 1.24 and no reconciler
// reads: an annotation map per object cost 12 MiB at 1,000 projects. The
// copies never reach the API server (the Applier writes desired objects).

// SlimKinds are the kinds the cache holds slim, with what of them is still
// read from the cache (readiness: replicas and status of Deployments and
// StatefulSets). Secrets, Jobs and Pods are kept whole: their data and
// status are read.
func SlimKinds() []client.Object {
	return []client.Object{
		&corev1.Namespace{}, &corev1.Service{}, &corev1.PersistentVolumeClaim{},
		&corev1.ResourceQuota{}, &corev1.LimitRange{},
		&appsv1.Deployment{}, &appsv1.StatefulSet{},
		&networkingv1.Ingress{}, &networkingv1.NetworkPolicy{}, &policyv1.PodDisruptionBudget{},
		&rbacv1.Role{}, &rbacv1.RoleBinding{},
	}
}

// SlimTransform is the cache transform of SlimKinds: it stamps the
// fingerprint and drops what no reconciler reads: managed fields, labels,
// annotations, and spec and status but for the readiness fields.
func SlimTransform(in any) (any, error) {
	obj, ok := in.(client.Object)
	if !ok {
		return in, nil // a tombstone of a deleted object
	}
	if isSlim(obj) {
		// client-go may transform an object again (it does with the
		// objects of an informer's first list): a transform must be
		// idempotent, or a slim copy's fingerprint matches no record and
		// every reconcile after a restart reads every child in full from
		// the API server.
		return obj, nil
	}
	obj.SetManagedFields(nil)
	fp, err := fingerprint(obj)
	if err != nil {
		return nil, err
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
	case *appsv1.StatefulSet:
		o.Spec = appsv1.StatefulSetSpec{Replicas: o.Spec.Replicas}
	case *corev1.Namespace:
		o.Spec, o.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{}
	case *corev1.Service:
		o.Spec, o.Status = corev1.ServiceSpec{}, corev1.ServiceStatus{}
	case *corev1.PersistentVolumeClaim:
		o.Spec, o.Status = corev1.PersistentVolumeClaimSpec{}, corev1.PersistentVolumeClaimStatus{}
	case *corev1.ResourceQuota:
		o.Spec, o.Status = corev1.ResourceQuotaSpec{}, corev1.ResourceQuotaStatus{}
	case *corev1.LimitRange:
		o.Spec = corev1.LimitRangeSpec{}
	case *networkingv1.Ingress:
		o.Spec, o.Status = networkingv1.IngressSpec{}, networkingv1.IngressStatus{}
	case *networkingv1.NetworkPolicy:
		o.Spec = networkingv1.NetworkPolicySpec{}
	case *policyv1.PodDisruptionBudget:
		o.Spec, o.Status = policyv1.PodDisruptionBudgetSpec{}, policyv1.PodDisruptionBudgetStatus{}
	case *rbacv1.Role:
		o.Rules = nil
	case *rbacv1.RoleBinding:
		o.Subjects, o.RoleRef = nil, rbacv1.RoleRef{}
	default:
		return obj, nil
	}
	// Labels and annotations are in the fingerprint; no reconciler reads
	// them from the cache (children are found by name and owner).
	obj.SetLabels(nil)
	obj.SetAnnotations(nil)
	obj.SetSelfLink(slimPrefix + strconv.FormatUint(fp, 36))
	return obj, nil
}

var _ toolscache.TransformFunc = SlimTransform

// slimTypes are the Go types of SlimKinds, for slimKind's lookup.
var slimTypes = func() map[reflect.Type]bool {
	m := map[reflect.Type]bool{}
	for _, k := range SlimKinds() {
		m[reflect.TypeOf(k)] = true
	}
	return m
}()

// slimKind reports whether the cache holds obj's kind slim.
func slimKind(obj client.Object) bool { return slimTypes[reflect.TypeOf(obj)] }

// slimPrefix marks a selfLink as a slim copy's fingerprint.
const slimPrefix = "crm-fingerprint:"

// isSlim reports whether obj is a cache's slim copy.
func isSlim(obj client.Object) bool {
	return strings.HasPrefix(obj.GetSelfLink(), slimPrefix)
}

// cachedFingerprint is the fingerprint of a slim copy; ok is false for any
// other object.
func cachedFingerprint(obj client.Object) (fp uint64, ok bool) {
	s, ok := strings.CutPrefix(obj.GetSelfLink(), slimPrefix)
	if !ok {
		return 0, false
	}
	fp, err := strconv.ParseUint(s, 36, 64)
	return fp, err == nil
}

// fingerprint hashes what a change by anyone would change: labels,
// annotations, owners and the object's content; not status, resourceVersion
// or managed fields, which move without anything to correct.
//
// Nor what Kubernetes' own controllers write into a child after it was
// created and the operator never sets (controllerWritten): a Deployment's
// revision, a claim's binding. The Applier compares only the fields it
// applies, so such a change never needs correcting, and kept out of the
// fingerprint it costs no uncached read.
func fingerprint(obj client.Object) (uint64, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return 0, err
	}
	delete(m, "status")
	delete(m, "apiVersion")
	delete(m, "kind")
	if spec, ok := m["spec"].(map[string]any); ok {
		if _, claim := obj.(*corev1.PersistentVolumeClaim); claim {
			delete(spec, "volumeName")
		}
	}
	m["metadata"] = map[string]any{
		"labels": obj.GetLabels(), "annotations": withoutControllerWritten(obj.GetAnnotations()), "ownerReferences": obj.GetOwnerReferences(),
		"finalizers": obj.GetFinalizers(), "deleting": obj.GetDeletionTimestamp() != nil,
	}
	return digest(m)
}

// withoutControllerWritten returns annotations without
// controllerWrittenAnnotations; nil when nothing else is left, as if they
// had never been written.
func withoutControllerWritten(annotations map[string]string) map[string]string {
	if !slices.ContainsFunc(controllerWrittenAnnotations, func(k string) bool { _, ok := annotations[k]; return ok }) {
		return annotations
	}
	out := maps.Clone(annotations)
	for _, k := range controllerWrittenAnnotations {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// controllerWrittenAnnotations are written by kube-controller-manager (the
// Deployment controller, the volume binder) and never by the operator.
var controllerWrittenAnnotations = []string{
	"deployment.kubernetes.io/revision",
	"pv.kubernetes.io/bind-completed",
	"pv.kubernetes.io/bound-by-controller",
	"volume.beta.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/storage-provisioner",
	"volume.kubernetes.io/selected-node",
}

// AppliedRecords remembers, per child, the desired state last found applied
// and the fingerprint the child had then. Shared by the reconcilers that
// apply children; safe for concurrent use.
type AppliedRecords struct {
	mu sync.Mutex
	m  map[types.UID]appliedRecord
}

type appliedRecord struct {
	desired, fingerprint uint64
}

// NewAppliedRecords returns an empty record.
func NewAppliedRecords() *AppliedRecords {
	return &AppliedRecords{m: map[types.UID]appliedRecord{}}
}

// inSync reports whether the child, as the cache holds it, still has the
// fingerprint it had when desired was last found applied.
func (r *AppliedRecords) inSync(cached client.Object, desired uint64) bool {
	rec, ok := r.untouchedRecord(cached)
	return ok && rec.desired == desired
}

// untouched reports whether the child, as the cache holds it, still has the
// fingerprint it had when the operator last found it holding what it
// applied: whatever the operator wants now, nobody else changed it since.
func (r *AppliedRecords) untouched(cached client.Object) bool {
	_, ok := r.untouchedRecord(cached)
	return ok
}

// untouchedRecord is the child's record, when its cached fingerprint is the
// one recorded.
func (r *AppliedRecords) untouchedRecord(cached client.Object) (appliedRecord, bool) {
	fp, ok := cachedFingerprint(cached)
	if r == nil || !ok {
		return appliedRecord{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.m[cached.GetUID()]
	return rec, ok && rec.fingerprint == fp
}

func (r *AppliedRecords) record(uid types.UID, desired, fingerprint uint64) {
	if r == nil || uid == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[uid] = appliedRecord{desired: desired, fingerprint: fingerprint}
}

func (r *AppliedRecords) forget(uid types.UID) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, uid)
}

// Len is the number of children recorded.
func (r *AppliedRecords) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m)
}

// ForgetDeleted drops the record of every slim child the cache sees deleted.
func (r *AppliedRecords) ForgetDeleted(ctx context.Context, c cache.Cache) error {
	for _, kind := range SlimKinds() {
		inf, err := c.GetInformer(ctx, kind)
		if err != nil {
			return err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(client.Object); ok {
				r.forget(o.GetUID())
			}
		}}); err != nil {
			return err
		}
	}
	return nil
}

// digest hashes a JSON-shaped value; maps are written with sorted keys, so
// the same content gives the same digest.
func digest(v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64(), nil
}
