package portal

import (
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// Identity is the signed-in person as the cluster authenticates them: the
// same user name and groups the projects' productOwners and integrators name.
type Identity struct {
	User   string
	Groups []string
}

// ProductOwnerOf says whether the project names id among its product owners.
func (id Identity) ProductOwnerOf(p *crmv1alpha1.ImplementationProject) bool {
	return resources.Holds(&p.Spec.ProductOwners, id.User, id.Groups)
}

// Sees says whether id may see the project: whoever holds one of its roles
// (resources.ProjectRoles, the same people its RoleBindings let read it),
// nobody else (not even to learn that it exists).
func (id Identity) Sees(p *crmv1alpha1.ImplementationProject) bool {
	for _, role := range resources.ProjectRoles(p) {
		if resources.Holds(role.Subjects, id.User, id.Groups) {
			return true
		}
	}
	return false
}

// Pending is an increment that waits for a product owner's decision.
type Pending struct {
	Project   string
	Namespace string
	Increment *crmv1alpha1.Increment
	Since     time.Time
	Waited    time.Duration
}

// PendingFor lists the increments awaiting acceptance in the projects id is
// a product owner of, the longest waiting first.
func PendingFor(id Identity, projects []crmv1alpha1.ImplementationProject, increments []crmv1alpha1.Increment, now time.Time) []Pending {
	owned := map[string]bool{} // namespace/project
	for i := range projects {
		p := &projects[i]
		if id.ProductOwnerOf(p) && p.Status.Namespace != "" {
			owned[p.Status.Namespace+"/"+p.Name] = true
		}
	}
	var out []Pending
	for i := range increments {
		inc := &increments[i]
		if inc.Status.Phase != crmv1alpha1.IncrementAwaitingAcceptance || !owned[inc.Namespace+"/"+inc.Spec.ProjectRef.Name] {
			continue
		}
		since := awaitingSince(inc)
		out = append(out, Pending{Project: inc.Spec.ProjectRef.Name, Namespace: inc.Namespace, Increment: inc, Since: since, Waited: now.Sub(since)})
	}
	slices.SortStableFunc(out, func(a, b Pending) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Increment.Name, b.Namespace+"/"+b.Increment.Name)
	})
	return out
}

// awaitingSince is when the increment passed its checks on test (its
// Verified condition), else when it was created.
func awaitingSince(inc *crmv1alpha1.Increment) time.Time {
	if c := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionVerified); c != nil && c.Status == "True" {
		return c.LastTransitionTime.Time
	}
	return inc.CreationTimestamp.Time
}

// Budget is a project's hours against its budget.
type Budget struct {
	Budget, Delivered, Accepted, Used int32
	HasBudget, Exceeded               bool
	Blocks                            []crmv1alpha1.BlockHours
}

// BudgetOf reads the hours the project controller counted.
func BudgetOf(p *crmv1alpha1.ImplementationProject) Budget {
	b := Budget{Delivered: p.Status.DeliveredHours, Accepted: p.Status.AcceptedHours, Blocks: p.Status.Blocks}
	b.Used = b.Delivered + b.Accepted
	if p.Spec.BudgetHours != nil {
		b.HasBudget, b.Budget = true, *p.Spec.BudgetHours
	}
	b.Exceeded = meta.IsStatusConditionTrue(p.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded) &&
		meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded).Reason == crmv1alpha1.BudgetOver
	return b
}

// Hours sums an increment's changes.
func Hours(inc *crmv1alpha1.Increment) int32 {
	var n int32
	for _, c := range inc.Spec.Changes {
		n += c.Hours
	}
	return n
}

// WaitedParts splits a wait into what a page says: days and hours past a
// day, hours and minutes past an hour, else minutes.
func WaitedParts(d time.Duration) (key string, a, b int) {
	m := int(d / time.Minute)
	switch {
	case m >= 24*60:
		return "days-hours", m / (24 * 60), m % (24 * 60) / 60
	case m >= 60:
		return "hours-minutes", m / 60, m % 60
	}
	return "minutes", m, 0
}
