package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	projectcontroller "github.com/crmops/crm-operator/controllers/project"
)

func newProject(name string) *crmv1alpha1.ImplementationProject {
	return &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer:      crmv1alpha1.Customer{Name: "Test Customer"},
			Product:       crmv1alpha1.Product{Name: crmv1alpha1.ProductEspoCRM},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@customer.example"}},
		},
	}
}

// observedGeneration returns a function Eventually polls for obj's status.observedGeneration.
func observedGeneration(ctx context.Context, obj client.Object, get func() int64) func() int64 {
	return func() int64 {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return -1
		}
		return get()
	}
}

func TestEveryKindRecordsObservedGeneration(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()

	project := newProject("observed")
	g.Expect(k8s.Create(ctx, project)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, project) })
	// The project's namespace is the operator's to create: one made by
	// someone else would be refused (NamespaceTaken).
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: project.Name}}
	g.Eventually(exists(ctx, ns, "", project.Name)).WithTimeout(wait).Should(Succeed())

	env := &crmv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns.Name},
		Spec: crmv1alpha1.EnvironmentSpec{
			ProjectRef: crmv1alpha1.ProjectReference{Name: project.Name},
			Stage:      crmv1alpha1.StageTest,
		},
	}
	g.Expect(k8s.Create(ctx, env)).To(Succeed())
	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns.Name},
		Spec: crmv1alpha1.IncrementSpec{
			ProjectRef: crmv1alpha1.ProjectReference{Name: project.Name},
			Sprint:     1,
			Version:    "10.0.3",
		},
	}
	g.Expect(k8s.Create(ctx, inc)).To(Succeed())

	g.Eventually(observedGeneration(ctx, project, func() int64 { return project.Status.ObservedGeneration })).
		WithTimeout(20 * time.Second).Should(Equal(int64(1)))
	g.Expect(project.Status.Namespace).To(Equal(project.Name))
	// The increment rolls out to this first stage, which changes its spec:
	// status follows whatever generation it reached.
	g.Eventually(func() bool {
		return k8s.Get(ctx, client.ObjectKeyFromObject(env), env) == nil && env.Status.ObservedGeneration == env.Generation && env.Generation >= 1
	}).WithTimeout(20 * time.Second).Should(BeTrue())
	g.Expect(env.Status.Phase).To(Equal(crmv1alpha1.EnvironmentProvisioning))
	g.Eventually(observedGeneration(ctx, inc, func() int64 { return inc.Status.ObservedGeneration })).
		WithTimeout(20 * time.Second).Should(Equal(int64(1)))
	g.Expect(inc.Status.Phase).To(Equal(crmv1alpha1.IncrementDeploying), "the increment starts on its first stage at once")

	// A spec change bumps the generation, and status follows it.
	g.Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(env), env); err != nil {
			return err
		}
		env.Spec.Replicas = ptr.To(int32(2))
		return k8s.Update(ctx, env)
	}).WithTimeout(20 * time.Second).Should(Succeed())
	gen := env.Generation
	g.Eventually(observedGeneration(ctx, env, func() int64 { return env.Status.ObservedGeneration })).
		WithTimeout(20 * time.Second).Should(BeNumerically(">=", gen))
}

// A reconcile that finds nothing to change must not write: calling the
// reconciler again on a settled project leaves its resourceVersion alone.
func TestNoWriteWhenNothingChanged(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	project := newProject("idle")
	g.Expect(k8s.Create(ctx, project)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, project) })
	g.Eventually(observedGeneration(ctx, project, func() int64 { return project.Status.ObservedGeneration })).
		WithTimeout(20 * time.Second).Should(Equal(int64(1)))
	settled := project.ResourceVersion

	r := &projectcontroller.Reconciler{Client: k8s}
	for range 3 {
		_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(project)})
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(project), project)).To(Succeed())
	g.Expect(project.ResourceVersion).To(Equal(settled), "a reconcile with nothing to change wrote to the API server")
}
