package api_test

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// restrictedNamespace creates the project namespace the builders describe,
// with the Pod Security "restricted" profile enforced by the API server.
func restrictedNamespace(ctx context.Context, t *testing.T, project *crmv1alpha1.ImplementationProject) {
	t.Helper()
	desired, _ := resources.ProjectObjects(project)
	ns := desired[0].(*corev1.Namespace)
	if err := k8s.Create(ctx, ns.DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// podOf turns a workload's template into a Pod, which PodSecurity admission
// judges (it only warns on workloads themselves).
func podOf(o client.Object) *corev1.Pod {
	var tpl corev1.PodTemplateSpec
	switch w := o.(type) {
	case *appsv1.Deployment:
		tpl = w.Spec.Template
	case *appsv1.StatefulSet:
		tpl = w.Spec.Template
	default:
		return nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: o.GetName() + "-probe", Namespace: o.GetNamespace(), Labels: tpl.Labels},
		Spec:       tpl.Spec,
	}
}

// TestBuiltObjectsPassAPIServerValidation sends every object built for every
// product x stage x hosting mode through the API server with a server-side
// dry run, and a Pod of every workload through PodSecurity admission.
func TestBuiltObjectsPassAPIServerValidation(t *testing.T) {
	ctx := context.Background()
	combos := resources.Combinations("builders")
	restrictedNamespace(ctx, t, combos[0].Input.Project)

	// The check can fail: a privileged pod is refused in this namespace.
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "privileged", Namespace: "builders"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if err := k8s.Create(ctx, bad, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "PodSecurity") {
		t.Fatalf("a non-restricted pod was not refused by PodSecurity admission: %v", err)
	}

	projectObjs, _ := resources.ProjectObjects(combos[0].Input.Project)
	for _, o := range projectObjs[1:] {
		if err := k8s.Create(ctx, o, client.DryRunAll); err != nil {
			t.Errorf("project object %T %s refused: %v", o, o.GetName(), err)
		}
	}
	for _, tc := range combos {
		t.Run(tc.Name, func(t *testing.T) {
			desired, _ := resources.EnvironmentObjects(tc.Input)
			desired = append(desired, resources.CredentialsSecret(tc.Input, map[string][]byte{"k": []byte("v")}))
			for _, o := range desired {
				if err := k8s.Create(ctx, o.DeepCopyObject().(client.Object), client.DryRunAll); err != nil {
					t.Errorf("%T %s refused: %v", o, o.GetName(), err)
				}
				if pod := podOf(o); pod != nil {
					if err := k8s.Create(ctx, pod, client.DryRunAll); err != nil {
						t.Errorf("pod of %s refused: %v", o.GetName(), err)
					}
				}
			}
		})
	}
}
