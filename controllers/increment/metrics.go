package increment

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
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
