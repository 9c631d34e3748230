package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
)

// applyGDPRDocs creates a file's documents in order. For a project it also
// creates the project namespace as the operator would (with the GDPR policy
// in its annotations), since no operator runs in this suite.
func applyGDPRDocs(ctx context.Context, t *testing.T, docs []*unstructured.Unstructured) error {
	t.Helper()
	var err error
	for _, d := range docs {
		if err = k8s.Create(ctx, d); err != nil {
			return err
		}
		if d.GetKind() == "ImplementationProject" {
			p := &crmv1alpha1.ImplementationProject{}
			if cerr := runtime.DefaultUnstructuredConverter.FromUnstructured(d.Object, p); cerr != nil {
				t.Fatal(cerr)
			}
			desired, _ := resources.ProjectObjects(p)
			ns := desired[0]
			if cerr := k8s.Create(ctx, ns); cerr != nil && !apierrors.IsAlreadyExists(cerr) {
				t.Fatal(cerr)
			}
		}
	}
	return nil
}

const wait = 20 * time.Second

func TestGDPRPolicyIsEnforcedAtAdmission(t *testing.T) {
	files := yamlFiles(t, filepath.Join("..", "testdata", "gdpr"))
	if len(files) < 6 {
		t.Fatalf("the GDPR corpus has %d manifests", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			raw, _ := os.ReadFile(file)
			var expects []string
			for _, m := range expectLine.FindAllStringSubmatch(string(raw), -1) {
				expects = append(expects, strings.TrimSpace(m[1]))
			}
			g.Expect(string(raw)).To(HavePrefix("# violates: "))
			g.Expect(expects).NotTo(BeEmpty())
			docs := readDocs(t, file)
			cleanup(t, docs)
			g.Expect(applyGDPRDocs(ctx, t, docs[:len(docs)-1])).To(Succeed())
			// Admission policies take effect shortly after they are created.
			g.Eventually(func() string {
				last := docs[len(docs)-1].DeepCopy()
				err := k8s.Create(ctx, last)
				if err == nil {
					_ = k8s.Delete(ctx, last)
					return "accepted"
				}
				return err.Error()
			}).WithTimeout(wait).Should(SatisfyAll(ContainSubstring(expects[0]), ContainSubstring(expects[len(expects)-1])))
		})
	}
	t.Run("compliant", func(t *testing.T) {
		ctx := context.Background()
		docs := readDocs(t, filepath.Join("..", "testdata", "gdpr", "compliant", "eu-project.yaml"))
		cleanup(t, docs)
		NewWithT(t).Expect(applyGDPRDocs(ctx, t, docs)).To(Succeed())
	})
}
