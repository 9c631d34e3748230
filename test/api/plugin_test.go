package api_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiwait "k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/plugin"
)

// The plugin against the real API server, with no operator: the test plays
// the operator's status updates. test/e2e drives it with the operator.
func TestPluginCommands(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := "plugin"
	ensureNamespace(ctx, t, ns)
	p := &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer: crmv1alpha1.Customer{Name: "Plugin GmbH"}, Product: crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@plugin.example"}},
		},
	}
	envs := []*crmv1alpha1.Environment{
		{ObjectMeta: metav1.ObjectMeta{Name: "production", Namespace: ns}, Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Stage: crmv1alpha1.StageProduction}},
		{ObjectMeta: metav1.ObjectMeta{Name: "test", Namespace: ns}, Spec: crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Stage: crmv1alpha1.StageTest}},
	}
	inc := &crmv1alpha1.Increment{
		ObjectMeta: metav1.ObjectMeta{Name: "sprint-3", Namespace: ns},
		Spec:       crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 3, Version: "18.0.1"},
	}
	backup := &crmv1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec:       crmv1alpha1.BackupSpec{EnvironmentRef: crmv1alpha1.LocalObjectReference{Name: "production"}},
	}
	for _, obj := range []client.Object{p, envs[0], envs[1], inc, backup} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	envs[1].Status = crmv1alpha1.EnvironmentStatus{Phase: crmv1alpha1.EnvironmentReady, Version: "18.0.1", CurrentIncrement: "sprint-3", URL: "https://test.plugin.example"}
	if err := c.Status().Update(ctx, envs[1]); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cli := &plugin.CLI{Client: c, Out: &out, Namespace: ns, Timeout: 30 * time.Second, Poll: 100 * time.Millisecond}

	t.Run("status lists environments in stage order and increments", func(t *testing.T) {
		out.Reset()
		if err := cli.Status(ctx, ""); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"PROJECT plugin", "odoo 18.0", "test         test        Ready  18.0.1   sprint-3", "sprint-3   3"} {
			if !strings.Contains(got, want) {
				t.Errorf("status lacks %q:\n%s", want, got)
			}
		}
		if strings.Index(got, "test   ") > strings.Index(got, "production ") {
			t.Errorf("test is not listed before production:\n%s", got)
		}
	})

	t.Run("status shows the hours against the budget, by block", func(t *testing.T) {
		cur := &crmv1alpha1.ImplementationProject{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(p), cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.BudgetHours = ptr.To(int32(100))
		if err := c.Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		// What the project controller records (policy.CountHours, BudgetCondition).
		cur.Status.DeliveredHours, cur.Status.AcceptedHours = 96, 12
		cur.Status.Blocks = []crmv1alpha1.BlockHours{{Block: "", DeliveredHours: 6}, {Block: "sales", DeliveredHours: 90, AcceptedHours: 12}}
		cur.Status.Conditions = []metav1.Condition{{Type: crmv1alpha1.ConditionBudgetExceeded, Status: metav1.ConditionTrue, Reason: "OverBudget",
			Message: "108 h of a budget of 100 h", LastTransitionTime: metav1.Now()}}
		if err := c.Status().Update(ctx, cur); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := cli.Status(ctx, ""); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{"BUDGET 108h of 100h (96h delivered, 12h accepted)  OVER BUDGET by 8h", "BLOCK  DELIVERED  ACCEPTED", "-      6h         0h", "sales  90h        12h"} {
			if !strings.Contains(got, want) {
				t.Errorf("status lacks %q:\n%s", want, got)
			}
		}
	})

	t.Run("reject needs a comment", func(t *testing.T) {
		if err := cli.Reject(ctx, "sprint-3", " "); err == nil || !strings.Contains(err.Error(), "--comment") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("promote --wait fails when production is rolled back", func(t *testing.T) {
		out.Reset()
		// The test plays the operator: it reacts to the plugin's request,
		// and moves on once the plugin has shown the step.
		go func() {
			cur := &crmv1alpha1.Increment{}
			_ = apiwait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				return c.Get(ctx, client.ObjectKeyFromObject(inc), cur) == nil && cur.Spec.Promote, nil
			})
			cur.Status.Phase = crmv1alpha1.IncrementPromoting
			cur.Status.Stages = []crmv1alpha1.StageStatus{{Name: "test", Phase: crmv1alpha1.StageSucceeded}, {Name: "production", Phase: crmv1alpha1.StageVerifying}}
			_ = c.Status().Update(ctx, cur)
			_ = apiwait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
				return strings.Contains(out.String(), "production: Verifying"), nil
			})
			cur.Status.Phase = crmv1alpha1.IncrementRolledBack
			cur.Status.Stages[1] = crmv1alpha1.StageStatus{Name: "production", Phase: crmv1alpha1.StageRolledBack, Message: "not healthy within 10m"}
			_ = c.Status().Update(ctx, cur)
		}()
		err := cli.Promote(ctx, "sprint-3", true)
		if !errors.Is(err, plugin.ErrNotSucceeded) {
			t.Fatalf("promote --wait returned %v, want a failure the command turns into exit 1", err)
		}
		for _, want := range []string{"production: Verifying", "production: RolledBack (not healthy within 10m)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("progress lacks %q:\n%s", want, out.String())
			}
		}
		got := &crmv1alpha1.Increment{}
		_ = c.Get(ctx, client.ObjectKeyFromObject(inc), got)
		if !got.Spec.Promote {
			t.Error("spec.promote was not set")
		}
	})

	t.Run("restore into production needs --confirm", func(t *testing.T) {
		if err := cli.Restore(ctx, "nightly", "production", false, false); err == nil || !strings.Contains(err.Error(), "--confirm") {
			t.Fatalf("got %v", err)
		}
		out.Reset()
		if err := cli.Restore(ctx, "nightly", "production", true, false); err != nil {
			t.Fatal(err)
		}
		list := &crmv1alpha1.RestoreList{}
		_ = c.List(ctx, list, client.InNamespace(ns))
		if len(list.Items) != 1 || list.Items[0].Spec.Confirm != "production" {
			t.Fatalf("restores: %+v", list.Items)
		}
	})

	t.Run("hibernate and wake", func(t *testing.T) {
		for _, h := range []bool{true, false} {
			if err := cli.Hibernate(ctx, "test", h); err != nil {
				t.Fatal(err)
			}
			got := &crmv1alpha1.Environment{}
			_ = c.Get(ctx, client.ObjectKeyFromObject(envs[1]), got)
			if got.Spec.Hibernate != h {
				t.Errorf("hibernate = %v, want %v", got.Spec.Hibernate, h)
			}
		}
	})

	t.Run("erase files a request without echoing the address", func(t *testing.T) {
		out.Reset()
		if err := cli.Erase(ctx, ns, "erika@plugin.example", "", false); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "erika") {
			t.Errorf("the address was echoed: %s", out.String())
		}
		list := &crmv1alpha1.ErasureRequestList{}
		_ = c.List(ctx, list, client.InNamespace(ns))
		if len(list.Items) != 1 || list.Items[0].Spec.Subject.Email != "erika@plugin.example" {
			t.Fatalf("erasure requests: %+v", list.Items)
		}
	})
}

// lockedBuffer is the plugin's output, read by the test while the plugin writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
