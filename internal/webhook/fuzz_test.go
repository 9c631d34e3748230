package webhook

import (
	"context"
	"encoding/json"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// oneProject answers reads as an API server holding one project and nothing
// else would. The fuzz engine runs the target in worker processes that each
// would need their own API server; the checks' reads against a real one are
// covered by test/api/webhook_test.go.
type oneProject struct{ name string }

func (p oneProject) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if _, ok := obj.(*crmv1alpha1.ImplementationProject); ok && key.Namespace == "" && key.Name == p.name {
		return nil
	}
	return apierrors.NewNotFound(schema.GroupResource{Group: crmv1alpha1.GroupVersion.Group}, key.Name)
}

func (p oneProject) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// FuzzWebhookReferences sends arbitrary admission requests (any bytes as the
// object) through the webhook's handlers: it never panics, and it allows an
// object only if its project exists and it lives in the project's namespace.
func FuzzWebhookReferences(f *testing.F) {
	ctx := context.Background()
	ns := "fuzzrefs"
	refs := &References{Reader: oneProject{name: ns}}
	scheme := runtime.NewScheme()
	if err := crmv1alpha1.AddToScheme(scheme); err != nil {
		f.Fatal(err)
	}
	handlers := []struct {
		kind string
		hook *admission.Webhook
	}{
		{"Environment", admission.WithValidator(scheme, refs.Environment())},
		{"Increment", admission.WithValidator(scheme, refs.Increment())},
		{"ErasureRequest", admission.WithValidator(scheme, refs.ErasureRequest())},
		{"Backup", admission.WithValidator(scheme, refs.Backup())},
		{"Restore", admission.WithValidator(scheme, refs.Restore())},
	}
	f.Add(uint8(0), ns, `{"apiVersion":"crm.crmops.io/v1alpha1","kind":"Environment","metadata":{"name":"t","namespace":"fuzzrefs"},"spec":{"projectRef":{"name":"fuzzrefs"},"stage":"test"}}`)
	f.Add(uint8(1), "default", `{"apiVersion":"crm.crmops.io/v1alpha1","kind":"Increment","metadata":{"name":"s"},"spec":{"projectRef":{"name":"fuzzrefs"}}}`)
	f.Add(uint8(3), ns, `{"apiVersion":"crm.crmops.io/v1alpha1","kind":"Backup","metadata":{"name":"b"},"spec":{"environmentRef":{"name":"../../etc"}}}`)
	f.Add(uint8(4), ns, `{"kind":"Restore","spec":{"backupRef":{"name":"\u0000"}}}`)
	f.Add(uint8(2), ns, `[1,2,3]`)
	f.Fuzz(func(t *testing.T, pick uint8, namespace, raw string) {
		h := handlers[int(pick)%len(handlers)]
		// The API server sets the object's namespace to the request's (and
		// refuses a mismatch) before any webhook sees it.
		var body map[string]any
		if json.Unmarshal([]byte(raw), &body) == nil && body != nil {
			md, _ := body["metadata"].(map[string]any)
			if md == nil {
				md = map[string]any{}
			}
			md["namespace"] = namespace
			body["metadata"] = md
			b, _ := json.Marshal(body)
			raw = string(b)
		}
		req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			UID: "fuzz", Operation: admissionv1.Create, Namespace: namespace, Name: "fuzz",
			Kind:   metav1.GroupVersionKind{Group: crmv1alpha1.GroupVersion.Group, Version: crmv1alpha1.GroupVersion.Version, Kind: h.kind},
			Object: runtime.RawExtension{Raw: []byte(raw)},
		}}
		resp := h.hook.Handle(ctx, req)
		if !resp.Allowed || h.kind == "Backup" || h.kind == "Restore" {
			return
		}
		var obj struct {
			Spec struct {
				ProjectRef struct{ Name string } `json:"projectRef"`
			} `json:"spec"`
		}
		if err := json.Unmarshal([]byte(raw), &obj); err != nil {
			t.Fatalf("allowed an undecodable %s: %q", h.kind, raw)
		}
		if obj.Spec.ProjectRef.Name != ns || namespace != ns {
			t.Fatalf("allowed a %s of project %q in namespace %q", h.kind, obj.Spec.ProjectRef.Name, namespace)
		}
	})
}
