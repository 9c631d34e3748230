package kube

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func storedDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: "test-app", Namespace: "p", UID: "u1", ResourceVersion: "7", Generation: 2,
			Labels:          map[string]string{"app.kubernetes.io/managed-by": "crm-operator"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "crm.crmops.io/v1alpha1", Kind: "Environment", Name: "test", UID: "e1", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "crm-operator", Operation: metav1.ManagedFieldsOperationApply}},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "espocrm:10.0.3"}}}},
		},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 2, AvailableReplicas: 2, UpdatedReplicas: 2},
	}
}

func mustFingerprint(t *testing.T, obj client.Object) uint64 {
	t.Helper()
	fp, err := fingerprint(obj)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// The fingerprint the cache stamps must be the one the Applier computes
// from the same stored object read in full, or every reconcile would read
// again; and it must move with every change someone could make to what the
// operator applies, but not with status or bookkeeping.
func TestFingerprint(t *testing.T) {
	base := mustFingerprint(t, storedDeployment())
	for _, tc := range []struct {
		name  string
		edit  func(d *appsv1.Deployment)
		moves bool
	}{
		{"status", func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 0 }, false},
		{"resourceVersion and generation", func(d *appsv1.Deployment) { d.ResourceVersion, d.Generation = "8", 3 }, false},
		{"managed fields", func(d *appsv1.Deployment) { d.ManagedFields = nil }, false},
		{"replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(int32(5)) }, true},
		{"image", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = "evil:1" }, true},
		{"a label", func(d *appsv1.Deployment) { d.Labels["touched-by"] = "someone" }, true},
		{"an annotation", func(d *appsv1.Deployment) { d.Annotations = map[string]string{"a": "b"} }, true},
		// Written by the Deployment controller on every rollout; the operator never sets it.
		{"the Deployment controller's revision", func(d *appsv1.Deployment) {
			d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "2"}
		}, false},
		{"another annotation beside the revision", func(d *appsv1.Deployment) {
			d.Annotations = map[string]string{"deployment.kubernetes.io/revision": "2", "a": "b"}
		}, true},
		{"owner", func(d *appsv1.Deployment) { d.OwnerReferences = nil }, true},
		{"deletion", func(d *appsv1.Deployment) { d.DeletionTimestamp = &metav1.Time{} }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := storedDeployment()
			tc.edit(d)
			if moved := mustFingerprint(t, d) != base; moved != tc.moves {
				t.Errorf("fingerprint moved = %v, want %v", moved, tc.moves)
			}
		})
	}
}

func TestSlimTransform(t *testing.T) {
	full := storedDeployment()
	want := mustFingerprint(t, full)
	out, err := SlimTransform(storedDeployment())
	if err != nil {
		t.Fatal(err)
	}
	slim := out.(*appsv1.Deployment)
	if got, ok := cachedFingerprint(slim); !ok || got != want {
		t.Errorf("cached fingerprint %d (%v), want the full object's %d", got, ok, want)
	}
	if got := mustFingerprint(t, slim); got == want {
		t.Error("the slim copy hashes like the full object: the spec was not dropped")
	}
	if slim.Spec.Template.Spec.Containers != nil || slim.Spec.Selector != nil || slim.ManagedFields != nil || slim.Labels != nil || slim.Annotations != nil {
		t.Errorf("spec, labels or managed fields kept: %+v", slim)
	}
	// What the readiness checks read stays.
	if *slim.Spec.Replicas != 2 || slim.Status.AvailableReplicas != 2 || slim.Generation != 2 || slim.OwnerReferences == nil {
		t.Errorf("readiness fields lost: replicas %v, status %+v", slim.Spec.Replicas, slim.Status)
	}
	if !isSlim(slim) || isSlim(full) {
		t.Error("isSlim does not tell the slim copy from the full object")
	}
	// client-go transforms some objects twice: the second pass keeps the
	// full object's fingerprint.
	again, err := SlimTransform(slim.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cachedFingerprint(again.(client.Object)); got != want {
		t.Errorf("transformed twice: fingerprint %d, want the full object's %d", got, want)
	}

	for _, obj := range []client.Object{
		&corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}},
		&networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}},
		&rbacv1.Role{Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}}}},
		&rbacv1.RoleBinding{RoleRef: rbacv1.RoleRef{Name: "r"}, Subjects: []rbacv1.Subject{{Name: "u"}}},
	} {
		fp := mustFingerprint(t, obj)
		out, err := SlimTransform(obj)
		if err != nil {
			t.Fatal(err)
		}
		o := out.(client.Object)
		if got, ok := cachedFingerprint(o); !ok || got != fp || mustFingerprint(t, o) == fp {
			t.Errorf("%T: not slimmed with its fingerprint", obj)
		}
	}
	// Every slim kind is slimmed by the transform (the two lists agree).
	for _, kind := range SlimKinds() {
		out, err := SlimTransform(kind.DeepCopyObject())
		if err != nil || !isSlim(out.(client.Object)) || !slimKind(out.(client.Object)) {
			t.Errorf("%T: listed as slim, not slimmed by the transform (%v)", kind, err)
		}
	}
	// Kept whole: Secrets' data and Jobs' status are read.
	secret := &corev1.Secret{Data: map[string][]byte{"salt": []byte("x")}}
	if out, _ := SlimTransform(secret); isSlim(out.(client.Object)) || out.(*corev1.Secret).Data == nil {
		t.Error("a Secret was slimmed")
	}
	if out, err := SlimTransform("tombstone"); err != nil || out != "tombstone" {
		t.Errorf("a non-object came back as %v, %v", out, err)
	}
}

func TestAppliedRecords(t *testing.T) {
	out, _ := SlimTransform(storedDeployment())
	cached := out.(*appsv1.Deployment)
	r := NewAppliedRecords()
	if r.inSync(cached, 1) {
		t.Fatal("in sync without a record")
	}
	fp, _ := cachedFingerprint(cached)
	r.record(cached.UID, 1, fp)
	if !r.inSync(cached, 1) {
		t.Error("not in sync with its own record")
	}
	if r.inSync(storedDeployment(), 1) {
		t.Error("a full object (no cached fingerprint) counted as in sync")
	}
	if r.inSync(cached, 2) {
		t.Error("in sync although the desired state changed")
	}
	if !r.untouched(cached) {
		t.Error("untouched is false for the child as last found (the Applier would read it again)")
	}
	edited := storedDeployment()
	edited.Spec.Replicas = ptr.To(int32(5))
	out, _ = SlimTransform(edited)
	if r.inSync(out.(client.Object), 1) {
		t.Error("in sync although someone edited the child")
	}
	if r.untouched(out.(client.Object)) {
		t.Error("untouched although someone edited the child")
	}
	r.forget(cached.UID)
	if r.inSync(cached, 1) || r.Len() != 0 {
		t.Error("a forgotten child is still recorded")
	}
	var none *AppliedRecords
	if none.inSync(cached, 1) {
		t.Error("a nil record claims a child in sync")
	}
}

// The volume binder's writes into a claim are no drift: the operator never
// sets them, and reading the claim again after each cost a request.
func TestFingerprintIgnoresTheVolumeBinder(t *testing.T) {
	claim := func() *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "production-data", Namespace: "acme"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}},
		}
	}
	base := mustFingerprint(t, claim())
	bound := claim()
	bound.Spec.VolumeName = "pv-1"
	bound.Annotations = map[string]string{"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}
	if mustFingerprint(t, bound) != base {
		t.Error("binding the claim moved its fingerprint")
	}
	resized := claim()
	resized.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("20Gi")
	if mustFingerprint(t, resized) == base {
		t.Error("a resized claim kept its fingerprint")
	}
}
