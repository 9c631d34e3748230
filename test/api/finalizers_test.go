package api_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// The admission policy crm-data-finalizers gives environments, projects and
// Backups the finalizer that guards their data at creation, so the operator
// does not write each of them again to add it.
func TestDataFinalizersAreAddedAtCreation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	project := &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: "born-guarded"},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer:      crmv1alpha1.Customer{Name: "Guarded Ltd"},
			Product:       crmv1alpha1.Product{Name: crmv1alpha1.ProductEspoCRM},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po"}},
		},
	}
	ensureNamespace(ctx, t, project.Name)
	env := &crmv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: project.Name},
		Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project.Name}, Stage: crmv1alpha1.StageTest},
	}
	// A finalizer the client set already is not added twice; others are kept.
	backup := &crmv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "before-import", Namespace: project.Name, Finalizers: []string{crmv1alpha1.BackupFinalizer, "example.com/keep"}},
		Spec:       crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: env.Name}, Reason: crmv1alpha1.BackupManual},
	}
	want := map[client.Object][]string{
		project: {crmv1alpha1.ProjectFinalizer},
		env:     {crmv1alpha1.EnvironmentFinalizer},
		backup:  {crmv1alpha1.BackupFinalizer, "example.com/keep"},
	}
	for _, obj := range []client.Object{project, env, backup} {
		g.Eventually(func() error { return k8s.Create(ctx, obj) }).WithTimeout(wait).Should(Succeed())
		t.Cleanup(func() {
			_ = k8s.Patch(ctx, obj, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
			_ = k8s.Delete(ctx, obj)
		})
		// The create's response is the stored object.
		g.Expect(obj.GetFinalizers()).To(Equal(want[obj]), "%T %s", obj, obj.GetName())
	}
}
