package project

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
	"github.com/crmops/crm-operator/internal/policy"
)

// environmentSummaryChanged passes the Environment updates that change
// what its project records: spec (compliance), deletion, and the phase,
// version, URL and readiness of its summary.
func environmentSummaryChanged() predicate.Predicate {
	return kube.OnlyWhen(func(obj client.Object) any {
		e, ok := obj.(*crmv1alpha1.Environment)
		if !ok {
			return nil
		}
		return []any{e.Generation, e.DeletionTimestamp, e.Status.Phase, e.Status.Version, e.Status.URL,
			meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady)}
	})
}

// incrementDeliveryChanged passes the Increment updates that change what
// its project records (recordDeliveries and the budget): its acceptance
// and promotion to production, an accepted increment's end (rolled back,
// failed, superseded), and of a counted increment the spec (changes and
// their hours, sprint, version) and deletion. The steps of an increment's
// promotion wake no project.
func incrementDeliveryChanged() predicate.Predicate {
	return kube.OnlyWhen(func(obj client.Object) any {
		inc, ok := obj.(*crmv1alpha1.Increment)
		if !ok {
			return nil
		}
		promoted := meta.FindStatusCondition(inc.Status.Conditions, crmv1alpha1.ConditionPromoted)
		counted := policy.CountHours(inc.Spec.ProjectRef.Name, []crmv1alpha1.Increment{*inc})
		if (promoted == nil || promoted.Status != metav1.ConditionTrue) && len(counted.Blocks) == 0 {
			return false
		}
		return []any{inc.Generation, inc.DeletionTimestamp, promoted, counted}
	})
}

// summaryDelay is how long a project waits after a change of one of its
// environments before it summarizes them. An environment's phase moves
// several times while it is provisioned or rolled out, and a project's two
// or more environments move together: changes within the delay share one
// reconcile and one status write of the project. The project's own objects
// (namespace, quota, RBAC) and its increments' promotions are not delayed.
const summaryDelay = time.Second
