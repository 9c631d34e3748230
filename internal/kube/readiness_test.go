package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestRolledOut(t *testing.T) {
	// A Deployment rolled out at generation 4, with one replica.
	deployment := func(change func(*appsv1.Deployment)) *appsv1.Deployment {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "production-app", Generation: 4},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(int32(1))},
			Status:     appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1},
		}
		if change != nil {
			change(d)
		}
		return d
	}
	cases := []struct {
		name      string
		d         *appsv1.Deployment
		hibernate bool
		applied   int64
		ready     bool
		// surge: the state only a Deployment has (an old pod beside the new
		// one); a StatefulSet replaces its pods in place.
		surge bool
	}{
		{"rolled out, nothing applied this reconcile", deployment(nil), false, 0, true, false},
		{"rolled out at the generation just applied", deployment(nil), false, 4, true, false},
		{"the cache still holds the generation before the apply", deployment(nil), false, 5, false, false},
		{"new generation not yet observed by its controller", deployment(func(d *appsv1.Deployment) { d.Generation = 5 }), false, 5, false, false},
		{"old pod still running beside the new one", deployment(func(d *appsv1.Deployment) { d.Status.Replicas = 2 }), false, 0, false, true},
		{"new pod not yet available", deployment(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 0 }), false, 0, false, false},
		{"hibernated and scaled to zero", deployment(func(d *appsv1.Deployment) {
			d.Spec.Replicas, d.Status = ptr.To(int32(0)), appsv1.DeploymentStatus{ObservedGeneration: 4}
		}), true, 4, true, false},
		{"hibernating, a replica still runs", deployment(nil), true, 0, false, false},
	}
	for _, tc := range cases {
		t.Run("Deployment: "+tc.name, func(t *testing.T) {
			if ready, msg := RolledOut(tc.d, tc.hibernate, tc.applied); ready != tc.ready {
				t.Errorf("ready = %v (%s), want %v", ready, msg, tc.ready)
			}
		})
		// The same states, told by a StatefulSet.
		s := &appsv1.StatefulSet{ObjectMeta: tc.d.ObjectMeta, Spec: appsv1.StatefulSetSpec{Replicas: tc.d.Spec.Replicas},
			Status: appsv1.StatefulSetStatus{ObservedGeneration: tc.d.Status.ObservedGeneration, Replicas: tc.d.Status.Replicas,
				UpdatedReplicas: tc.d.Status.UpdatedReplicas, ReadyReplicas: tc.d.Status.AvailableReplicas}}
		want := tc.ready || tc.surge
		t.Run("StatefulSet: "+tc.name, func(t *testing.T) {
			if ready, msg := RolledOut(s, tc.hibernate, tc.applied); ready != want {
				t.Errorf("ready = %v (%s), want %v", ready, msg, want)
			}
		})
	}
}
