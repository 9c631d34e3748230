package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/test/framework"
)

// Promotions: acceptance to Promoted of many increments at once, minus the
// simulated work.

// promotions accepts an increment in each of the first n projects at once
// and measures acceptance to Promoted, minus the simulated work: the
// pre-promotion backup Job and the production rollout. A watch times
// every step (trace.go).
func promotions(ctx context.Context, c client.WithWatch, metricsURL, prefix string, n int, res *Results) error {
	for i := 0; i < n; i++ {
		ns := projectName(prefix, i)
		inc := &crmv1alpha1.Increment{
			ObjectMeta: metav1.ObjectMeta{Name: "sprint-1", Namespace: ns},
			Spec:       crmv1alpha1.IncrementSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: ns}, Sprint: 1, Version: "18.0.1", AutoPromote: true},
		}
		if err := c.Create(ctx, inc); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 30*time.Minute, true, func(context.Context) (bool, error) {
		list := &crmv1alpha1.IncrementList{}
		if err := c.List(ctx, list); err != nil {
			return false, nil
		}
		waiting := 0
		for _, inc := range list.Items {
			if strings.HasPrefix(inc.Namespace, prefix+"-") && inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance {
				waiting++
			}
		}
		return waiting == n, nil
	}); err != nil {
		return fmt.Errorf("waiting for the increments on test: %w", err)
	}
	tr, err := newTracer(ctx, c, prefix)
	if err != nil {
		return err
	}
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := tr.watch(watchCtx, c); err != nil {
		return err
	}
	metricsBefore, err := framework.Scrape(metricsURL)
	if err != nil {
		return err
	}
	if err := parallel(n, 16, func(i int) error {
		ns := projectName(prefix, i)
		inc := &crmv1alpha1.Increment{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "sprint-1"}, inc); err != nil {
			return err
		}
		patch := client.MergeFrom(inc.DeepCopy())
		inc.Spec.Acceptance = &crmv1alpha1.Acceptance{Decision: crmv1alpha1.DecisionAccepted}
		tr.mark(ns, msAccepted, time.Now())
		if err := c.Patch(ctx, inc, patch); err != nil {
			return err
		}
		tr.mark(ns, msAcceptanceStored, time.Now())
		return nil
	}); err != nil {
		return err
	}
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 30*time.Minute, true, func(context.Context) (bool, error) {
		promoted, err := tr.done()
		return promoted == n, err
	}); err != nil {
		return err
	}
	stop()
	if metricsAfter, err := framework.Scrape(metricsURL); err == nil {
		res.PromotionControllers = latencies(metricsBefore, metricsAfter)
		logRequests("promotions", "promotion", metricsBefore, metricsAfter, n)
		logControllers("promotions", res.PromotionControllers, "increment", "backup", "environment")
	}
	var totals, simulated, overheads []float64
	steps := map[string][]float64{}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for ns, seen := range tr.seen {
		total, sim, st, ok := promotionFigures(seen)
		if !ok {
			return fmt.Errorf("promotion in %s: a step went unseen: %v", ns, *seen)
		}
		totals, simulated, overheads = append(totals, total), append(simulated, sim), append(overheads, total-sim)
		for step, d := range st {
			steps[step] = append(steps[step], d)
		}
	}
	res.PromotionSteps = map[string]float64{}
	for _, step := range promotionSteps {
		ds := steps[step.name]
		res.PromotionSteps[step.name] = mean(ds)
		sort.Float64s(ds)
		if len(ds) > 0 {
			logf("promotions: step %s: mean %.2fs, median %.2fs, max %.2fs", step.name, mean(ds), ds[len(ds)/2], ds[len(ds)-1])
		}
	}
	res.Promotions = n
	res.PromotionMeanSeconds, res.SimulatedMeanSeconds, res.OverheadMeanSeconds = mean(totals), mean(simulated), mean(overheads)
	sort.Float64s(overheads)
	res.OverheadMaxSeconds = overheads[len(overheads)-1]
	return nil
}

// measurePromotions promotes an increment in each of the first
// -promotions projects at once, once the operator has settled.
func measurePromotions(ctx context.Context, c client.WithWatch, o options, res *Results) error {
	if o.promotions <= 0 {
		return nil
	}
	if _, err := settle(ctx, o.metricsURL); err != nil {
		return fmt.Errorf("waiting for the operator to settle: %w", err)
	}
	p := min(o.promotions, o.n)
	logf("promotions: %d increments in parallel", p)
	if err := promotions(ctx, c, o.metricsURL, "op", p, res); err != nil {
		return err
	}
	logf("promotions: acceptance to Promoted %.1fs on average, of which simulated Jobs and rollouts %.1fs: overhead %.2fs (max %.2fs)",
		res.PromotionMeanSeconds, res.SimulatedMeanSeconds, res.OverheadMeanSeconds, res.OverheadMaxSeconds)
	return nil
}
