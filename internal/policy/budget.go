package policy

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Hours is what a project's increments count against its budget.
type Hours struct {
	// Delivered: changes of increments promoted to production.
	Delivered int32
	// Accepted: changes of increments a product owner accepted that are
	// not in production and did not end (rolled back, failed, superseded).
	Accepted int32
	// Blocks: both by the changes' block, sorted by block.
	Blocks []crmv1alpha1.BlockHours
}

// CountHours adds up the hours of the project's increments.
func CountHours(project string, incs []crmv1alpha1.Increment) Hours {
	var h Hours
	blocks := map[string]*crmv1alpha1.BlockHours{}
	for i := range incs {
		inc := &incs[i]
		if inc.Spec.ProjectRef.Name != project {
			continue
		}
		delivered := meta.IsStatusConditionTrue(inc.Status.Conditions, crmv1alpha1.ConditionPromoted)
		accepted := !delivered && inc.Spec.Acceptance != nil && inc.Spec.Acceptance.Decision == crmv1alpha1.DecisionAccepted
		switch inc.Status.Phase {
		case crmv1alpha1.IncrementRolledBack, crmv1alpha1.IncrementFailed, crmv1alpha1.IncrementSuperseded, crmv1alpha1.IncrementRejected:
			accepted = false
		}
		if !delivered && !accepted {
			continue
		}
		for _, ch := range inc.Spec.Changes {
			b := blocks[ch.Block]
			if b == nil {
				b = &crmv1alpha1.BlockHours{Block: ch.Block}
				blocks[ch.Block] = b
			}
			if delivered {
				h.Delivered += ch.Hours
				b.DeliveredHours += ch.Hours
			} else {
				h.Accepted += ch.Hours
				b.AcceptedHours += ch.Hours
			}
		}
	}
	for _, b := range blocks {
		h.Blocks = append(h.Blocks, *b)
	}
	sort.Slice(h.Blocks, func(i, j int) bool { return h.Blocks[i].Block < h.Blocks[j].Block })
	return h
}

// NearlyExhaustedShare is the share of the budget from which the
// condition's reason warns.
const NearlyExhaustedShare = 0.9

// BudgetCondition judges the hours against the budget: the status, reason
// and message of condition BudgetExceeded.
func BudgetCondition(budget *int32, h Hours) (metav1.ConditionStatus, string, string) {
	used := h.Delivered + h.Accepted
	if budget == nil {
		return metav1.ConditionFalse, crmv1alpha1.BudgetNone, fmt.Sprintf("no budget set; %d h delivered, %d h accepted", h.Delivered, h.Accepted)
	}
	msg := fmt.Sprintf("%d h of a budget of %d h: %d h delivered, %d h accepted and not yet in production", used, *budget, h.Delivered, h.Accepted)
	switch {
	case used > *budget:
		return metav1.ConditionTrue, crmv1alpha1.BudgetOver, fmt.Sprintf("%s (%d h over)", msg, used-*budget)
	case float64(used) >= NearlyExhaustedShare*float64(*budget):
		return metav1.ConditionFalse, crmv1alpha1.BudgetNearlyExhausted, msg
	default:
		return metav1.ConditionFalse, crmv1alpha1.BudgetWithin, msg
	}
}
