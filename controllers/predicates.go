package controllers

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
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

// onlyWhen passes creates, deletes, resyncs, and updates whose read
// projections differ. read returns nil for an object it does not know,
// which always passes.
func onlyWhen(read func(client.Object) any) predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld == nil || e.ObjectNew == nil || e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
			return true
		}
		before, after := read(e.ObjectOld), read(e.ObjectNew)
		return before == nil || after == nil || !equality.Semantic.DeepEqual(before, after)
	}}
}

// childChanged passes the updates of an owned child that change what the
// operator reads of it: anything but status, and of Deployments and
// StatefulSets the status fields readiness is judged from
// (deploymentRolledOut, statefulSetRolledOut). Secrets and Jobs, whose
// data and status are read, pass whole.
func childChanged() predicate.Predicate { return onlyWhen(childAsRead) }

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

// environmentSummaryChanged passes the Environment updates that change
// what its project records: spec (compliance), deletion, and the phase,
// version, URL and readiness of its summary.
func environmentSummaryChanged() predicate.Predicate {
	return onlyWhen(func(obj client.Object) any {
		e, ok := obj.(*crmv1alpha1.Environment)
		if !ok {
			return nil
		}
		return []any{e.Generation, e.DeletionTimestamp, e.Status.Phase, e.Status.Version, e.Status.URL,
			meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady)}
	})
}

// incrementDeliveryChanged passes the Increment updates that change what
// its project records (recordDeliveries): its promotion to production, and
// of a promoted increment the spec (changes and their hours, sprint,
// version) and deletion. An increment on its way records nothing: its
// acceptance and its steps wake no project.
func incrementDeliveryChanged() predicate.Predicate {
	return onlyWhen(func(obj client.Object) any {
		inc, ok := obj.(*crmv1alpha1.Increment)
		if !ok {
			return nil
		}
		promoted := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionPromoted)
		if promoted == nil || promoted.Status != metav1.ConditionTrue {
			return false
		}
		return []any{inc.Generation, inc.DeletionTimestamp, promoted}
	})
}

// backupOrRestorePhaseChanged passes the Backup and Restore updates that
// change what an environment reads of them: spec, labels, deletion, phase
// and completion (backupState, recordLastBackup, retention); not the
// conditions and progress a Job's run writes on the way.
func backupOrRestorePhaseChanged() predicate.Predicate {
	return onlyWhen(func(obj client.Object) any {
		switch o := obj.(type) {
		case *crmv1alpha1.Backup:
			return []any{o.Generation, o.Labels, o.DeletionTimestamp, o.Status.Phase, o.Status.CompletedAt}
		case *crmv1alpha1.Restore:
			return []any{o.Generation, o.Labels, o.DeletionTimestamp, o.Status.Phase}
		}
		return nil
	})
}

// pausedChanged passes the project updates that pause or resume it.
func pausedChanged() predicate.Predicate {
	return onlyWhen(func(obj client.Object) any {
		p, ok := obj.(*crmv1alpha1.ImplementationProject)
		if !ok {
			return nil
		}
		return p.Spec.Paused
	})
}
