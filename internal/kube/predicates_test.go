package kube

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
	cases := []struct {
		name      string
		predicate predicate.Predicate
		object    func() client.Object
		change    func(client.Object)
		pass      bool
	}{
		{"resync (same resourceVersion)", ChildChanged(), deployment, func(client.Object) {}, true},
		{"Deployment: only its conditions moved", ChildChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.Conditions[0].Message = "ReplicaSet has successfully progressed"
		}, false},
		{"Deployment: a replica became unavailable", ChildChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.AvailableReplicas = 0
		}, true},
		{"Deployment: rollout observed", ChildChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Status.ObservedGeneration = 4
		}, true},
		{"Deployment: someone edited its spec", ChildChanged(), deployment, func(o client.Object) {
			o.(*appsv1.Deployment).Spec.Replicas = ptr.To(int32(3))
		}, true},
		{"Deployment: a label added (the slim copy's fingerprint moves too)", ChildChanged(), deployment, func(o client.Object) {
			o.SetLabels(map[string]string{"team": "x"})
		}, true},
		{"Deployment: deletion started", ChildChanged(), deployment, func(o client.Object) {
			o.SetDeletionTimestamp(&metav1.Time{})
		}, true},
		{"StatefulSet: only its revision moved", ChildChanged(), statefulSet, func(o client.Object) {
			o.(*appsv1.StatefulSet).Status.CurrentRevision = "b"
		}, false},
		{"StatefulSet: database no longer ready", ChildChanged(), statefulSet, func(o client.Object) {
			o.(*appsv1.StatefulSet).Status.ReadyReplicas = 0
		}, true},
		{"PodDisruptionBudget: status only", ChildChanged(), pdb, func(o client.Object) {
			o.(*policyv1.PodDisruptionBudget).Status.CurrentHealthy = 0
		}, false},
		{"PodDisruptionBudget: spec edited", ChildChanged(), pdb, func(o client.Object) {
			o.(*policyv1.PodDisruptionBudget).Spec.MinAvailable = ptr.To(intstr.FromInt32(0))
		}, true},
		{"Secret: any change (its data is read)", ChildChanged(), secret, func(o client.Object) {
			o.SetAnnotations(map[string]string{"x": "y"})
		}, true},
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
