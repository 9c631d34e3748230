package controllers

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/policy"
)

// Promotion results as metric labels.
const (
	resultPromoted   = "promoted"
	resultRolledBack = "rolled_back"
	resultFailed     = "failed"
)

var (
	promotionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crm_promotions_total",
		Help: "Rollouts of increments to a stage, by target (production or pre-production) and result (promoted, rolled_back, failed).",
	}, []string{"target", "result"})
	promotionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "crm_promotion_duration_seconds",
		Help:    "Time from the start of a stage's rollout (backup, migration, rollout, health check) to its result.",
		Buckets: []float64{5, 15, 30, 60, 120, 300, 600, 1200, 3600},
	}, []string{"target", "result"})
	acceptanceToProduction = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "crm_acceptance_to_production_seconds",
		Help:    "Time from the product owner's acceptance to the increment running in production.",
		Buckets: []float64{10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600},
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(promotionsTotal, promotionDuration, acceptanceToProduction)
}

// recordPromotion counts a stage's result once it is final.
func recordPromotion(inc *crmv1alpha1.Increment, stage *crmv1alpha1.StageStatus, last bool, result string, now time.Time) {
	target := "pre-production"
	if last {
		target = "production"
	}
	promotionsTotal.WithLabelValues(target, result).Inc()
	if stage.StartedAt != nil {
		promotionDuration.WithLabelValues(target, result).Observe(now.Sub(stage.StartedAt.Time).Seconds())
	}
	if last && result == resultPromoted && inc.Status.AcceptedAt != nil {
		acceptanceToProduction.Observe(now.Sub(inc.Status.AcceptedAt.Time).Seconds())
	}
}

// stateCollector reports the state of every project, environment and
// erasure request from the manager's cache when Prometheus scrapes, so that
// the figures cannot drift from the objects.
type stateCollector struct {
	client client.Reader
}

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
)

// BackupGrace is how late a scheduled backup may complete before
// crm_environment_backup_deadline_timestamp_seconds passes.
const BackupGrace = time.Hour

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnvironments, descEnvironmentReady, descLastBackup, descBackupDeadline, descProjectCompliant, descPendingErasures} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
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
