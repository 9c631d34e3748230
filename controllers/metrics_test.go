package controllers_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"

	. "github.com/onsi/gomega"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// metricValue reads a metric from the operator's registry: the sum of the
// series whose labels include want (a histogram's sample count).
func metricValue(g Gomega, name string, want map[string]string) (float64, bool) {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	total, found := 0.0, false
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			found = true
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total, found
}

func TestStateMetrics(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	p := backupProject("metrics", 3)
	createProject(ctx, t, p)
	readyEnvironment(ctx, t, p, "production", crmv1alpha1.StageProduction)
	env := map[string]string{"namespace": "metrics", "environment": "production", "stage": "production"}

	g.Eventually(func(g Gomega) {
		v, ok := metricValue(g, "crm_environment_ready", env)
		g.Expect(ok).To(BeTrue())
		g.Expect(v).To(Equal(1.0))
	}).WithTimeout(wait).Should(Succeed())
	ready, _ := metricValue(g, "crm_environments", map[string]string{"phase": "Ready"})
	g.Expect(ready).To(BeNumerically(">=", 1))
	compliant, ok := metricValue(g, "crm_project_compliant", map[string]string{"project": "metrics"})
	g.Expect(ok).To(BeTrue())
	g.Expect(compliant).To(Equal(1.0))
	// @daily from the environment's creation (no backup yet): due by tomorrow 01:00.
	deadline, ok := metricValue(g, "crm_environment_backup_deadline_timestamp_seconds", env)
	g.Expect(ok).To(BeTrue())
	g.Expect(time.Unix(int64(deadline), 0)).To(BeTemporally("~", time.Now().Add(13*time.Hour), 13*time.Hour))
	_, hasBackup := metricValue(g, "crm_environment_last_backup_timestamp_seconds", env)
	g.Expect(hasBackup).To(BeFalse(), "no backup completed yet")

	// The hours against a budget, as the project records them.
	_, hasBudget := metricValue(g, "crm_project_budget_hours", map[string]string{"project": "metrics"})
	g.Expect(hasBudget).To(BeFalse(), "no budget set")
	g.Eventually(func() error {
		if err := k8s.Get(ctx, key("", p.Name), p); err != nil {
			return err
		}
		p.Spec.BudgetHours = ptr.To(int32(120))
		return k8s.Update(ctx, p)
	}).WithTimeout(wait).Should(Succeed())
	g.Eventually(func(g Gomega) {
		budget, ok := metricValue(g, "crm_project_budget_hours", map[string]string{"project": "metrics"})
		g.Expect(ok).To(BeTrue())
		g.Expect(budget).To(Equal(120.0))
	}).WithTimeout(wait).Should(Succeed())
	for _, state := range []string{"delivered", "accepted"} {
		hours, ok := metricValue(g, "crm_project_hours", map[string]string{"project": "metrics", "state": state})
		g.Expect(ok).To(BeTrue(), state)
		g.Expect(hours).To(BeZero(), state)
	}
	g.Eventually(func() string {
		_ = k8s.Get(ctx, key("", p.Name), p)
		if c := meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionBudgetExceeded); c != nil {
			return c.Reason + ": " + c.Message
		}
		return ""
	}).WithTimeout(wait).Should(Equal("WithinBudget: 0 h of a budget of 120 h: 0 h delivered, 0 h accepted and not yet in production"))
}
