package controllers

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestPredicatesPassOnlyWhatIsRead(t *testing.T) {
	deployment := func() client.Object {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "production-app", Namespace: "acme", ResourceVersion: "10", Generation: 3},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(1))},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1,
				Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue}}},
		}
	}
	statefulSet := func() client.Object {
		return &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "production-db", Namespace: "acme", ResourceVersion: "10", Generation: 2},
			Status:     appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 1, ReadyReplicas: 1, UpdatedReplicas: 1, CurrentRevision: "a"},
		}
	}
	pdb := func() client.Object {
		return &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "production-app", Namespace: "acme", ResourceVersion: "10"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1))},
			Status:     policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 1},
		}
	}
	secret := func() client.Object {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "production-credentials", Namespace: "acme", ResourceVersion: "10"}}
	}
	environment := func() client.Object {
		return &crmv1alpha1.Environment{
			ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: "acme", ResourceVersion: "10", Generation: 1},
			Status: crmv1alpha1.EnvironmentStatus{Phase: crmv1alpha1.EnvironmentReady, Version: "17.0",
				Conditions: []metav1.Condition{{Type: crmv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Message: "ready"}}},
		}
	}
	increment := func() client.Object {
		return &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: "acme", ResourceVersion: "10", Generation: 1},
			Status:     crmv1alpha1.IncrementStatus{Phase: crmv1alpha1.IncrementPromoting},
		}
	}
	promotedIncrement := func() client.Object {
		inc := increment().(*crmv1alpha1.Increment)
		inc.Status.Phase = crmv1alpha1.IncrementPromoted
		inc.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionPromoted, Status: metav1.ConditionTrue}}
		return inc
	}
	specChanged := func(o client.Object) { o.SetGeneration(2) }
	deleted := func(o client.Object) {
		now := metav1.Now()
		o.SetDeletionTimestamp(&now)
	}
	cases := []struct {
		name      string
		predicate predicate.Predicate
		object    func() client.Object
		change    func(client.Object)
		pass      bool
	}{
		{"resync (same resourceVersion)", childChanged(), deployment, func(client.Object) {}, true},
		{"Deployment: only its conditions moved", childChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.Conditions[0].Message = "ReplicaSet has successfully progressed"
		}, false},
		{"Deployment: a replica became unavailable", childChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.AvailableReplicas = 0
		}, true},
		{"Deployment: rollout observed", childChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.ObservedGeneration = 4
		}, true},
		{"Deployment: someone edited its spec", childChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Spec.Replicas = ptr.To(int32(3))
		}, true},
		{"Deployment: a label added (the slim copy's fingerprint moves too)", childChanged(), deployment, func(o client.Object) {
			o.SetLabels(map[string]string{"team": "x"})
		}, true},
		{"Deployment: deletion started", childChanged(), deployment, func(o client.Object) {
			o.SetDeletionTimestamp(&metav1.Time{})
		}, true},
		{"StatefulSet: only its revision moved", childChanged(), statefulSet, func(o client.Object) {
			o.(*appsv1.StatefulSet).Status.CurrentRevision = "b"
		}, false},
		{"StatefulSet: database no longer ready", childChanged(), statefulSet, func(o client.Object) {
			o.(*appsv1.StatefulSet).Status.ReadyReplicas = 0
		}, true},
		{"PodDisruptionBudget: status only", childChanged(), pdb, func(o client.Object) {
			o.(*policyv1.PodDisruptionBudget).Status.CurrentHealthy = 0
		}, false},
		{"PodDisruptionBudget: spec edited", childChanged(), pdb, func(o client.Object) {
			o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable = ptr.To(intstr.FromInt32(0))
		}, true},
		{"Secret: any change (its data is read)", childChanged(), secret, func(o client.Object) {
			o.SetAnnotations(map[string]string{"x": "y"})
		}, true},
		{"Environment: readiness message only", environmentSummaryChanged(), environment, func(o client.Object) {
			o.(*crmv1alpha1.Environment).Status.Conditions[0].Message = "still ready"
		}, false},
		{"Environment: no longer ready", environmentSummaryChanged(), environment, func(o client.Object) {
			o.(*crmv1alpha1.Environment).Status.Conditions[0].Status = metav1.ConditionFalse
		}, true},
		{"Environment: new version", environmentSummaryChanged(), environment, func(o client.Object) {
			o.(*crmv1alpha1.Environment).Status.Version = "17.1"
		}, true},
		{"Increment: a step of its promotion", incrementDeliveryChanged(), increment, func(o client.Object) {
			o.(*crmv1alpha1.Increment).Status.Phase = crmv1alpha1.IncrementVerifying
		}, false},
		{"Increment: promoted", incrementDeliveryChanged(), increment, func(o client.Object) {
			o.(*crmv1alpha1.Increment).Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionPromoted, Status: metav1.ConditionTrue}}
		}, true},
		{"Increment on its way: accepted (spec changed)", incrementDeliveryChanged(), increment, specChanged, false},
		{"Increment on its way: deleted", incrementDeliveryChanged(), increment, deleted, false},
		{"promoted Increment: spec changed (its hours)", incrementDeliveryChanged(), promotedIncrement, specChanged, true},
		{"promoted Increment: deleted", incrementDeliveryChanged(), promotedIncrement, deleted, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, updated := tc.object(), tc.object()
			tc.change(updated)
			if tc.name != "resync (same resourceVersion)" {
				updated.SetResourceVersion("11")
			}
			if got := tc.predicate.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tc.pass {
				t.Errorf("update passed = %v, want %v", got, tc.pass)
			}
			if !tc.predicate.Create(event.CreateEvent{Object: updated}) || !tc.predicate.Delete(event.DeleteEvent{Object: updated}) {
				t.Error("creates and deletes must always pass")
			}
		})
	}
}
