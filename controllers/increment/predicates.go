package increment

import (
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/kube"
)

// pausedChanged passes the project updates that pause or resume it.
func pausedChanged() predicate.Predicate {
	return kube.OnlyWhen(func(obj client.Object) any {
		p, ok := obj.(*crmv1alpha1.ImplementationProject)
		if !ok {
			return nil
		}
		return p.Spec.Paused
	})
}
