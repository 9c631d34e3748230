package portal

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/test/framework"
)

// BenchmarkHomeWithAThousandProjects: a product owner's home page with a
// thousand projects in the cluster (one of them theirs), served from the
// cache, against one listing of the projects from the API server (what a
// page would cost at least without the cache). Run it with
// `go test -run '^$' -bench HomeWithAThousand ./test/portal/`.
func BenchmarkHomeWithAThousandProjects(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	for i := range n {
		p := &crmv1alpha1.ImplementationProject{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fleet-%04d", i)},
			Spec: crmv1alpha1.ImplementationProjectSpec{
				Customer:      crmv1alpha1.Customer{Name: fmt.Sprintf("Customer %d", i)},
				Product:       crmv1alpha1.Product{Name: "espocrm", Version: "10.0.3"},
				ProductOwners: crmv1alpha1.Subjects{Users: []string{fmt.Sprintf("po-%d@fleet.example", i)}},
			},
		}
		if err := admin.Create(ctx, p); err != nil {
			b.Fatal(err)
		}
		p.Status.Namespace = p.Name
		if err := admin.Status().Update(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	visitor := signIn(b, "po-500@fleet.example")
	// The cache holds them all before measuring.
	if err := framework.WaitFor(ctx, time.Minute, "the cache holds the thousand projects", func() (bool, error) {
		list := &crmv1alpha1.ImplementationProjectList{}
		err := objects.List(ctx, list)
		return err == nil && len(list.Items) >= n, err
	}); err != nil {
		b.Fatal(err)
	}
	var page, listing time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if code, body := visitor.get("/"); code != 200 || len(body) == 0 {
			b.Fatalf("home page: %d", code)
		}
		page += time.Since(start)
		start = time.Now()
		if err := admin.List(ctx, &crmv1alpha1.ImplementationProjectList{}); err != nil {
			b.Fatal(err)
		}
		listing += time.Since(start)
	}
	b.ReportMetric(float64(page.Microseconds())/float64(b.N)/1000, "ms/page")
	b.ReportMetric(float64(listing.Microseconds())/float64(b.N)/1000, "ms/API-listing")
	b.ReportMetric(listing.Seconds()/page.Seconds(), "listing/page")
}
