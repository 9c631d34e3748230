package project

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// A project wakes only for the changes of its environments and increments
// that move what it records.
func TestPredicatesPassOnlyWhatTheProjectRecords(t *testing.T) {
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
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: "acme"},
				Changes: []crmv1alpha1.Change{{ID: "CRM-1", Title: "Lead scoring", Block: "sales", Hours: 8}}},
			Status: crmv1alpha1.IncrementStatus{Phase: crmv1alpha1.IncrementPromoting},
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
		{"Increment on its way: its spec changed before acceptance", incrementDeliveryChanged(), increment, specChanged, false},
		{"Increment on its way: accepted (its hours count against the budget)", incrementDeliveryChanged(), increment, func(o client.Object) {
			o.(*crmv1alpha1.Increment).Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
		}, true},
		{"Increment on its way: deleted", incrementDeliveryChanged(), increment, deleted, false},
		{"promoted Increment: spec changed (its hours)", incrementDeliveryChanged(), promotedIncrement, specChanged, true},
		{"promoted Increment: deleted", incrementDeliveryChanged(), promotedIncrement, deleted, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old, updated := tc.object(), tc.object()
			tc.change(updated)
			updated.SetResourceVersion("11")
			if got := tc.predicate.Update(event.UpdateEvent{ObjectOld: old, ObjectNew: updated}); got != tc.pass {
				t.Errorf("update passed = %v, want %v", got, tc.pass)
			}
			if !tc.predicate.Create(event.CreateEvent{Object: updated}) || !tc.predicate.Delete(event.DeleteEvent{Object: updated}) {
				t.Error("creates and deletes must always pass")
			}
		})
	}
}
