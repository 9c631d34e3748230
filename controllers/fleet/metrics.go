// Package fleet reports the state of every project, environment and
// erasure request as Prometheus metrics, read from the cache when scraped.
package fleet

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/policy"
)

// Collector reports the state of every project, environment and
// erasure request from the manager's cache when Prometheus scrapes, so that
// the figures cannot drift from the objects.
type Collector struct {
	client client.Reader
}

// NewCollector reports the state of the objects c (the manager's cache) holds.
func NewCollector(c client.Reader) *Collector { return &Collector{client: c} }

var (
	descEnvironments = prometheus.NewDesc("crm_environments",
		"Environments by phase.", []string{"phase"}, nil)
	descEnvironmentReady = prometheus.NewDesc("crm_environment_ready",
		"1 when the environment is Ready, 0 otherwise (hibernated environments are not reported).", []string{"namespace", "environment", "stage"}, nil)
	descLastBackup = prometheus.NewDesc("crm_environment_last_backup_timestamp_seconds",
		"Completion time of the environment's newest successful backup.", []string{"namespace", "environment", "stage"}, nil)
	descBackupDeadline = prometheus.NewDesc("crm_environment_backup_deadline_timestamp_seconds",
		"Time by which a new successful backup is due: the schedule's next slot after the newest backup, plus one hour of grace.",
		[]string{"namespace", "environment", "stage"}, nil)
	descProjectCompliant = prometheus.NewDesc("crm_project_compliant",
		"1 when every object of the project satisfies its GDPR policy (condition Compliant), 0 otherwise.", []string{"project"}, nil)
	descPendingErasures = prometheus.NewDesc("crm_erasure_requests_pending",
		"Erasure requests (GDPR Art. 17) not yet completed in every environment.", nil, nil)
	descProjectHours = prometheus.NewDesc("crm_project_hours",
		"Hours of the project's increments: delivered (promoted to production) and accepted (signed off, not yet in production).", []string{"project", "state"}, nil)
	descProjectBudget = prometheus.NewDesc("crm_project_budget_hours",
		"The project's budget in hours (spec.budgetHours), for projects that set one.", []string{"project"}, nil)
)

// BackupGrace is how late a scheduled backup may complete before
// crm_environment_backup_deadline_timestamp_seconds passes.
const BackupGrace = time.Hour

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnvironments, descEnvironmentReady, descLastBackup, descBackupDeadline, descProjectCompliant, descPendingErasures, descProjectHours, descProjectBudget} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	projects := &crmv1alpha1.ImplementationProjectList{}
	envs := &crmv1alpha1.EnvironmentList{}
	erasures := &crmv1alpha1.ErasureRequestList{}
	// Read only: the cache's own objects, not a copy of every project and
	// environment per scrape.
	noCopy := client.UnsafeDisableDeepCopy
	if c.client.List(ctx, projects, noCopy) != nil || c.client.List(ctx, envs, noCopy) != nil || c.client.List(ctx, erasures, noCopy) != nil {
		return // the cache is not ready yet: report nothing rather than zeros
	}
	byName := map[string]*crmv1alpha1.ImplementationProject{}
	for i := range projects.Items {
		p := &projects.Items[i]
		byName[p.Name] = p
		compliant := 1.0
		if cond := meta.FindStatusCondition(p.Status.Conditions, crmv1alpha1.ConditionCompliant); cond != nil && cond.Status != "True" {
			compliant = 0
		}
		ch <- prometheus.MustNewConstMetric(descProjectCompliant, prometheus.GaugeValue, compliant, p.Name)
		ch <- prometheus.MustNewConstMetric(descProjectHours, prometheus.GaugeValue, float64(p.Status.DeliveredHours), p.Name, "delivered")
		ch <- prometheus.MustNewConstMetric(descProjectHours, prometheus.GaugeValue, float64(p.Status.AcceptedHours), p.Name, "accepted")
		if p.Spec.BudgetHours != nil {
			ch <- prometheus.MustNewConstMetric(descProjectBudget, prometheus.GaugeValue, float64(*p.Spec.BudgetHours), p.Name)
		}
	}
	phases := map[string]float64{}
	for i := range envs.Items {
		e := &envs.Items[i]
		phase := string(e.Status.Phase)
		if phase == "" {
			phase = string(crmv1alpha1.EnvironmentProvisioning)
		}
		phases[phase]++
		labels := []string{e.Namespace, e.Name, string(e.Spec.Stage)}
		if e.Status.Phase != crmv1alpha1.EnvironmentHibernated {
			ready := 0.0
			if meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady) {
				ready = 1
			}
			ch <- prometheus.MustNewConstMetric(descEnvironmentReady, prometheus.GaugeValue, ready, labels...)
		}
		last := e.CreationTimestamp.Time
		if b := e.Status.LastBackup; b != nil && b.CompletedAt != nil {
			last = b.CompletedAt.Time
			ch <- prometheus.MustNewConstMetric(descLastBackup, prometheus.GaugeValue, float64(last.Unix()), labels...)
		}
		p := byName[e.Spec.ProjectRef.Name]
		if p == nil || p.Spec.Paused || p.Spec.Backup == nil {
			continue
		}
		if s := policy.EffectiveSchedule(p, e); s != "" {
			if sched, err := policy.Schedule(s); err == nil {
				ch <- prometheus.MustNewConstMetric(descBackupDeadline, prometheus.GaugeValue, float64(sched.Next(last).Add(BackupGrace).Unix()), labels...)
			}
		}
	}
	for _, phase := range []crmv1alpha1.EnvironmentPhase{crmv1alpha1.EnvironmentProvisioning, crmv1alpha1.EnvironmentReady,
		crmv1alpha1.EnvironmentDegraded, crmv1alpha1.EnvironmentHibernated, crmv1alpha1.EnvironmentDeleting} {
		ch <- prometheus.MustNewConstMetric(descEnvironments, prometheus.GaugeValue, phases[string(phase)], string(phase))
	}
	pending := 0.0
	for _, er := range erasures.Items {
		if er.Status.Phase != crmv1alpha1.ErasureCompleted {
			pending++
		}
	}
	ch <- prometheus.MustNewConstMetric(descPendingErasures, prometheus.GaugeValue, pending)
}
