package resources

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestProjectObjects(t *testing.T) {
	cpu := resource.MustParse("8")
	project := &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: "acme"},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@acme.example"}, Groups: []string{"acme:po"}},
			Integrators:   &crmv1alpha1.Subjects{Groups: []string{"integrators"}},
			Quota:         &crmv1alpha1.ProjectQuota{CPU: &cpu},
		},
	}
	desired, absent := ProjectObjects(project)
	ns := find[*corev1.Namespace](desired, "acme")
	if ns == nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" || ns.Labels[crmv1alpha1.LabelProject] != "acme" {
		t.Fatalf("namespace %+v lacks the project and restricted labels", ns)
	}
	q := find[*corev1.ResourceQuota](desired, ProjectQuotaName)
	if q == nil || !q.Spec.Hard[corev1.ResourceRequestsCPU].Equal(cpu) {
		t.Errorf("quota %+v does not cap requests.cpu at 8", q)
	}
	if len(absent) != 0 {
		t.Errorf("nothing should be absent: %v", absent)
	}
	deny := find[*networkingv1.NetworkPolicy](desired, DefaultDenyPolicyName)
	if deny == nil || len(deny.Spec.PodSelector.MatchLabels) != 0 || len(deny.Spec.Ingress) != 0 || len(deny.Spec.Egress) != 0 || len(deny.Spec.PolicyTypes) != 2 {
		t.Errorf("default deny policy wrong: %+v", deny)
	}
	po := find[*rbacv1.RoleBinding](desired, ProductOwnerRoleName)
	if po == nil || len(po.Subjects) != 2 || po.Subjects[0].Name != "po@acme.example" || po.Subjects[1].Kind != rbacv1.GroupKind {
		t.Errorf("product owner binding %+v", po)
	}
	for _, role := range []string{ProductOwnerRoleName, IntegratorRoleName} {
		r := find[*rbacv1.Role](desired, role)
		for _, rule := range r.Rules {
			for _, res := range rule.Resources {
				if res == "secrets" || res == "*" {
					t.Errorf("role %s grants %s", role, res)
				}
			}
			for _, v := range rule.Verbs {
				if v == "*" {
					t.Errorf("role %s grants every verb", role)
				}
			}
		}
	}

	project.Spec.Quota = nil
	_, absent = ProjectObjects(project)
	if find[*corev1.ResourceQuota](absent, ProjectQuotaName) == nil {
		t.Error("removing spec.quota must remove the ResourceQuota")
	}
}
