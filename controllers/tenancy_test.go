package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// Two customers' projects on one cluster: the people of project A get
// nothing of project B through the API, and the generated NetworkPolicies
// let no traffic cross from one project to the other.
func TestTenantIsolation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	for _, n := range []string{"tenant-a", "tenant-b"} {
		p := newProject(n)
		p.Spec.ProductOwners = crmv1alpha1.Subjects{Users: []string{"po@" + n + ".example"}}
		p.Spec.Integrators = &crmv1alpha1.Subjects{Users: []string{"ci@" + n + ".example"}}
		createProject(ctx, t, p)
		g.Expect(k8s.Create(ctx, newEnvironment(n, "test", crmv1alpha1.StageTest))).To(Succeed())
		g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "customer-data", Namespace: n},
			StringData: map[string]string{"smtp-password": "s3cret-" + n}})).To(Succeed())
		g.Expect(k8s.Create(ctx, &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: n},
			Spec: crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: n}, Sprint: 1, Version: "10.1.0"}})).To(Succeed())
	}
	poA, ciA := userClient(t, "po@tenant-a.example"), userClient(t, "ci@tenant-a.example")
	newEnv := func(ns string) *crmv1alpha1.Environment {
		return newEnvironment(ns, "training", crmv1alpha1.StageTraining)
	}

	// At home the roles work (so that the refusals below are about the border).
	g.Eventually(func() error {
		return ciA.Create(ctx, newEnv("tenant-a"), client.DryRunAll)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func() error {
		return poA.Get(ctx, key("tenant-a", "sprint-1"), &crmv1alpha1.Increment{})
	}).WithTimeout(wait).Should(Succeed())

	for user, c := range map[string]client.Client{"product owner of A": poA, "integrator of A": ciA} {
		t.Run(user+" cannot reach project B", func(t *testing.T) {
			g := NewWithT(t)
			forbidden := func(err error) {
				g.ExpectWithOffset(1, apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
			}
			forbidden(c.Get(ctx, key("tenant-b", "customer-data"), &corev1.Secret{}))
			forbidden(c.List(ctx, &corev1.SecretList{}, client.InNamespace("tenant-b")))
			forbidden(c.Get(ctx, key("tenant-b", "sprint-1"), &crmv1alpha1.Increment{}))
			forbidden(c.Create(ctx, newEnv("tenant-b")))
			forbidden(c.Patch(ctx, &crmv1alpha1.Increment{ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: "tenant-b"}},
				client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"acceptance":{"decision":"Accepted"}}}`))))
			// Not even their own project's Secrets: credentials stay with the operator.
			forbidden(c.Get(ctx, key("tenant-a", "customer-data"), &corev1.Secret{}))
		})
	}

	t.Run("network policies let no traffic in from another project", func(t *testing.T) {
		g := NewWithT(t)
		policies := &networkingv1.NetworkPolicyList{}
		g.Eventually(func() int {
			_ = k8s.List(ctx, policies, client.InNamespace("tenant-a"))
			return len(policies.Items)
		}).WithTimeout(wait).Should(BeNumerically(">=", 2))
		for _, np := range policies.Items {
			g.Expect(np.Spec.PolicyTypes).To(ContainElements(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress), np.Name)
			for _, rule := range np.Spec.Ingress {
				g.Expect(rule.From).NotTo(BeEmpty(), "%s: an ingress rule without from admits every namespace", np.Name)
				for _, peer := range rule.From {
					g.Expect(peer.IPBlock).To(BeNil(), "%s: ingress from addresses", np.Name)
					if peer.NamespaceSelector != nil {
						// Only the ingress controller's namespace, named exactly.
						name := peer.NamespaceSelector.MatchLabels[corev1.LabelMetadataName]
						g.Expect(name).NotTo(BeEmpty(), "%s: ingress from a namespace selector %v", np.Name, peer.NamespaceSelector)
						g.Expect(name).NotTo(HavePrefix("tenant-"), np.Name)
						g.Expect(peer.NamespaceSelector.MatchExpressions).To(BeEmpty(), np.Name)
					}
				}
			}
			for _, rule := range np.Spec.Egress {
				for _, peer := range rule.To {
					if peer.NamespaceSelector != nil {
						// Other namespaces only for DNS.
						g.Expect(rule.Ports).NotTo(BeEmpty(), "%s: egress to every namespace", np.Name)
						for _, port := range rule.Ports {
							g.Expect(port.Port.IntValue()).To(Equal(53), "%s: egress to other namespaces beyond DNS", np.Name)
						}
					}
					if peer.IPBlock != nil {
						// Outside addresses only: pod and service networks are private.
						g.Expect(peer.IPBlock.Except).To(ContainElements("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), np.Name)
					}
				}
			}
		}
	})
}

// 12: a project does not take over a namespace of its name that someone
// else made (its Secrets and workloads would become the project's people's),
// unless a cluster administrator labels it for adoption.
func TestAProjectDoesNotTakeOverAnotherNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payroll"}}
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bank", Namespace: "payroll"},
		StringData: map[string]string{"token": "s3cret"}})).To(Succeed())
	p := newProject("payroll")
	p.Spec.Integrators = &crmv1alpha1.Subjects{Users: []string{"ci@payroll.example"}}
	g.Expect(k8s.Create(ctx, p)).To(Succeed())
	g.Eventually(conditionReason(ctx, p, func() []metav1.Condition { return p.Status.Conditions }, crmv1alpha1.ConditionReady)).WithTimeout(wait).Should(Equal("NamespaceTaken"))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionReady).Message).To(ContainSubstring(
		"namespace payroll exists and is not this project's: label it crm.crmops.io/adopt=payroll"))
	g.Expect(k8s.Get(ctx, key("", "payroll"), ns)).To(Succeed())
	g.Expect(ns.OwnerReferences).To(BeEmpty())
	g.Expect(k8s.Get(ctx, key("payroll", resources.IntegratorRoleName), &rbacv1.RoleBinding{})).NotTo(Succeed(), "the project's people were let into someone else's namespace")

	// Labelled for adoption, it becomes the project's (the next look, here
	// brought on by a change of the project).
	ns.Labels = map[string]string{crmv1alpha1.LabelAdopt: "payroll"}
	g.Expect(k8s.Update(ctx, ns)).To(Succeed())
	g.Eventually(func() error {
		if err := k8s.Get(ctx, key("", "payroll"), p); err != nil {
			return err
		}
		p.Spec.BudgetHours = ptr.To[int32](100)
		return k8s.Update(ctx, p)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key("", "payroll"), ns)).To(Succeed())
		g.Expect(metav1.IsControlledBy(ns, p)).To(BeTrue())
	}).WithTimeout(wait).Should(Succeed())
}
