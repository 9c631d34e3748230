package plugin

import (
	"context"
	"io"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// The plugin's Backups and Restores carry the labels the operator's own
// do: their environment, and a Backup's reason.
func TestThePluginsBackupsAndRestoresAreLabelled(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := crmv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	prod := &crmv1alpha1.Environment{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: "acme"},
		Spec: crmv1alpha1.EnvironmentSpec{Stage: crmv1alpha1.StageProduction}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(prod).Build()
	now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	cli := &CLI{Client: c, Out: io.Discard, Namespace: "acme", Now: func() time.Time { return now }}

	if err := cli.Backup(ctx, "production", false); err != nil {
		t.Fatal(err)
	}
	b := &crmv1alpha1.Backup{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "acme", Name: "production-manual-20261201-093000"}, b); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"crm.crmops.io/environment": "production", "crm.crmops.io/backup-reason": "manual"}
	if len(b.Labels) != len(want) || b.Labels["crm.crmops.io/environment"] != "production" || b.Labels["crm.crmops.io/backup-reason"] != "manual" {
		t.Errorf("Backup labels = %v, want %v", b.Labels, want)
	}
	if b.Spec.Reason != crmv1alpha1.BackupManual || b.Spec.EnvironmentRef.Name != "production" {
		t.Errorf("Backup spec = %+v", b.Spec)
	}

	if err := cli.Restore(ctx, b.Name, "production", true, false); err != nil {
		t.Fatal(err)
	}
	rs := &crmv1alpha1.Restore{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "acme", Name: "production-restore-20261201-093000"}, rs); err != nil {
		t.Fatal(err)
	}
	if len(rs.Labels) != 1 || rs.Labels["crm.crmops.io/environment"] != "production" {
		t.Errorf("Restore labels = %v, want only crm.crmops.io/environment=production", rs.Labels)
	}
	if rs.Spec.BackupRef.Name != b.Name || rs.Spec.EnvironmentRef.Name != "production" || rs.Spec.Confirm != "production" {
		t.Errorf("Restore spec = %+v", rs.Spec)
	}
}
