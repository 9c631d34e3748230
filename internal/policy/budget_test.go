package policy

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestCountHours(t *testing.T) {
	inc := func(project string, phase crmv1alpha1.IncrementPhase, decision crmv1alpha1.AcceptanceDecision, promoted bool, changes ...crmv1alpha1.Change) crmv1alpha1.Increment {
		i := crmv1alpha1.Increment{Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}, Changes: changes},
			Status: crmv1alpha1.IncrementStatus{Phase: phase}}
		if decision != "" {
			i.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: decision}
		}
		if promoted {
			i.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionPromoted, Status: metav1.ConditionTrue}}
		}
		return i
	}
	ch := func(block string, hours int32) crmv1alpha1.Change {
		return crmv1alpha1.Change{ID: "CRM-1", Title: "t", Block: block, Hours: hours}
	}
	incs := []crmv1alpha1.Increment{
		inc("acme", crmv1alpha1.IncrementPromoted, crmv1alpha1.DecisionAccepted, true, ch("sales", 30), ch("", 5)),
		inc("acme", crmv1alpha1.IncrementAwaitingPromotion, crmv1alpha1.DecisionAccepted, false, ch("sales", 8), ch("service", 4)),
		inc("acme", crmv1alpha1.IncrementAwaitingAcceptance, "", false, ch("sales", 100)),                     // not signed off
		inc("acme", crmv1alpha1.IncrementRejected, crmv1alpha1.DecisionRejected, false, ch("sales", 100)),     // rejected
		inc("acme", crmv1alpha1.IncrementRolledBack, crmv1alpha1.DecisionAccepted, false, ch("service", 100)), // rolled back
		inc("acme", crmv1alpha1.IncrementSuperseded, crmv1alpha1.DecisionAccepted, false, ch("service", 100)), // superseded
		inc("other", crmv1alpha1.IncrementPromoted, crmv1alpha1.DecisionAccepted, true, ch("sales", 100)),     // another project
	}
	got := CountHours("acme", incs)
	want := Hours{Delivered: 35, Accepted: 12, Blocks: []crmv1alpha1.BlockHours{
		{Block: "", DeliveredHours: 5}, {Block: "sales", DeliveredHours: 30, AcceptedHours: 8}, {Block: "service", AcceptedHours: 4}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CountHours = %+v\nwant %+v", got, want)
	}
}

func TestBudgetCondition(t *testing.T) {
	for _, tc := range []struct {
		budget              *int32
		delivered, accepted int32
		status              metav1.ConditionStatus
		reason, message     string
	}{
		{nil, 40, 8, metav1.ConditionFalse, "NoBudget", "no budget set; 40 h delivered, 8 h accepted"},
		{ptr.To(int32(100)), 40, 8, metav1.ConditionFalse, "WithinBudget", "48 h of a budget of 100 h: 40 h delivered, 8 h accepted and not yet in production"},
		{ptr.To(int32(100)), 82, 8, metav1.ConditionFalse, "NearlyExhausted", "90 h of a budget of 100 h: 82 h delivered, 8 h accepted and not yet in production"},
		{ptr.To(int32(100)), 100, 0, metav1.ConditionFalse, "NearlyExhausted", "100 h of a budget of 100 h: 100 h delivered, 0 h accepted and not yet in production"},
		{ptr.To(int32(100)), 96, 12, metav1.ConditionTrue, "OverBudget", "108 h of a budget of 100 h: 96 h delivered, 12 h accepted and not yet in production (8 h over)"},
		{ptr.To(int32(0)), 0, 0, metav1.ConditionFalse, "NearlyExhausted", "0 h of a budget of 0 h: 0 h delivered, 0 h accepted and not yet in production"},
	} {
		status, reason, message := BudgetCondition(tc.budget, Hours{Delivered: tc.delivered, Accepted: tc.accepted})
		if status != tc.status || reason != tc.reason || message != tc.message {
			t.Errorf("budget %v, %d+%d h: %s %s %q; want %s %s %q", tc.budget, tc.delivered, tc.accepted, status, reason, message, tc.status, tc.reason, tc.message)
		}
	}
}
