package kube

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Most updates of a busy cluster change nothing a reconciler reads: a
// Deployment's conditions move their timestamps several times per rollout,
// the disruption controller rewrites every PodDisruptionBudget's status
// when a pod changes, and an Environment's status patch changes nothing its
// project reads unless its summary moves. The predicates here compare what
// their reconciler reads of the old and new object and pass the update only
// when it differs, so such noise never fills a queue.
//
// An update that keeps the resourceVersion is the informer's resync, which
// the operator asks for (--sync-period) as a full pass over everything: it
// always passes.

// OnlyWhen passes creates, deletes, resyncs, and updates whose read
// projections differ. read returns nil for an object it does not know,
// which always passes.
func OnlyWhen(read func(client.Object) any) predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil || e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
			return true
		}
		before, after := read(e.ObjectOld), read(e.ObjectNew)
		return before == nil || after == nil || !equality.Semantic.DeepEqual(before, after)
	}}
}

// ChildChanged passes the updates of an owned child that change what the
// operator reads of it: anything but status, and of Deployments and
// StatefulSets the status fields readiness is judged from (RolledOut).
// Secrets and Jobs, whose data and status are read, pass whole.
func ChildChanged() predicate.Predicate { return OnlyWhen(childAsRead) }

func childAsRead(obj client.Object) any {
	c := obj.DeepCopyObject().(client.Object)
	switch o := c.(type) {
	case *appsv1.Deployment:
		s := o.Status
		o.Status = appsv1.DeploymentStatus{ObservedGeneration: s.ObservedGeneration, Replicas: s.Replicas,
			UpdatedReplicas: s.UpdatedReplicas, AvailableReplicas: s.AvailableReplicas, ReadyReplicas: s.ReadyReplicas}
	case *appsv1.StatefulSet:
		s := o.Status
		o.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.ObservedGeneration, Replicas: s.Replicas,
			UpdatedReplicas: s.UpdatedReplicas, ReadyReplicas: s.ReadyReplicas}
	case *corev1.Service:
		o.Status = corev1.ServiceStatus{}
	case *corev1.PersistentVolumeClaim:
		o.Status = corev1.PersistentVolumeClaimStatus{}
	case *networkingv1.Ingress:
		o.Status = networkingv1.IngressStatus{}
	case *policyv1.PodDisruptionBudget:
		o.Status = policyv1.PodDisruptionBudgetStatus{}
	case *corev1.Namespace:
		o.Status = corev1.NamespaceStatus{}
	case *corev1.ResourceQuota:
		o.Status = corev1.ResourceQuotaStatus{}
	case *networkingv1.NetworkPolicy, *corev1.LimitRange:
		// no status
	default:
		return nil // Secrets, Jobs, Roles: every change passes
	}
	c.SetResourceVersion("")
	c.SetManagedFields(nil)
	return c
}

// DeletionStarted passes the updates of an object being deleted, which do
// not change its generation (GenerationChangedPredicate misses them).
func DeletionStarted() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !e.ObjectNew.GetDeletionTimestamp().IsZero()
		},
	}
}
