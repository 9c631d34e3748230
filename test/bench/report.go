package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/crmops/crm-operator/test/framework"
)

// Reporting: the log lines, the table and the JSON results.

// logRequests prints the operator's API requests per unit of work, by
// method and response code (a PATCH answered 201 is a server-side apply
// that created its object).
func logRequests(phase, unit string, before, after framework.Metrics, n int) {
	per := func(method, code string) float64 {
		f := []string{`method="` + method + `"`}
		if code != "" {
			f = append(f, `code="`+code+`"`)
		}
		return (after.Sum("rest_client_requests_total", f...) - before.Sum("rest_client_requests_total", f...)) / float64(n)
	}
	logf("%s: the operator's API requests per %s: %.1f POST, %.1f PATCH creating, %.1f PATCH changing, %.1f PUT, %.1f DELETE, %.1f GET",
		phase, unit, per("POST", ""), per("PATCH", "201"), per("PATCH", "200"), per("PUT", ""), per("DELETE", ""), per("GET", ""))
}

// logControllers prints what the named controllers' queues and reconciles took.
func logControllers(phase string, ls map[string]controllerLatency, names ...string) {
	for _, name := range names {
		l := ls[name]
		logf("%s: %s controller: %.0f reconciles, %.0f ms in the queue and %.0f ms reconciling on average", phase, name, l.Reconciles, 1000*l.QueueWaitMean, 1000*l.ReconcileMean)
	}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func printTable(r Results) {
	fmt.Printf("\n%-58s %s\n", "measure", "figure")
	row := func(k, v string) { fmt.Printf("%-58s %s\n", k, v) }
	cluster := "their defaults"
	if r.ClusterQPS > 0 {
		cluster = fmt.Sprintf("QPS %g", r.ClusterQPS)
	}
	row("simulated cluster's controller manager and scheduler", cluster)
	runs := ""
	if len(r.OperatorRuns) > 1 {
		runs = fmt.Sprintf(" (mean of %d runs)", len(r.OperatorRuns))
	}
	row(fmt.Sprintf("convergence, %d environments: operator", r.Environments), fmt.Sprintf("%.1fs%s", r.OperatorSeconds, runs))
	row("  lower bound (plain client, same objects and limits)", fmt.Sprintf("%.1fs%s", r.LowerBoundSeconds, runs))
	row("  operator / lower bound", fmt.Sprintf("%.2fx (goal <= 1.3x)", r.RatioToLowerBound))
	if len(r.OperatorRuns) > 1 {
		pairs := make([]string, 0, len(r.OperatorRuns))
		for i := range min(len(r.OperatorRuns), len(r.LowerBoundRuns)) {
			pairs = append(pairs, fmt.Sprintf("%.1f/%.1fs = %.2fx", r.OperatorRuns[i], r.LowerBoundRuns[i], r.OperatorRuns[i]/r.LowerBoundRuns[i]))
		}
		row("  each pair (runs in the order A B B A ...)", strings.Join(pairs, ", "))
	}
	if r.HelmN > 0 {
		row(fmt.Sprintf("helm install per environment, %d environments, sequential", r.HelmN), fmt.Sprintf("%.1fs = %.1fx the operator's %.1fs", r.HelmSequentialSeconds, r.HelmSequentialRatio, r.OperatorAtHelmN))
		row("  parallelism 8", fmt.Sprintf("%.1fs = %.1fx the operator (goal >= 5x)", r.HelmParallelSeconds, r.HelmParallelRatio))
	}
	if r.IdleSeconds > 0 {
		row("restart: first full pass from a cold cache", fmt.Sprintf("%.1fs; %.0f writes, %.0f reads (lists included), %.0f reconciles", r.RestartSeconds, r.RestartWrites, r.RestartReads, r.RestartReconciles))
		row(fmt.Sprintf("idle %.0fs with full resyncs: API writes", r.IdleSeconds), fmt.Sprintf("%.0f (goal 0); reads not from cache %.0f; reconciles %.0f", r.IdleWrites, r.IdleReads, r.IdleReconciles))
	}
	limit := "no GOMEMLIMIT"
	if r.GoMemLimit != "" {
		limit = "GOMEMLIMIT=" + r.GoMemLimit
	}
	row("manager RSS / CPU seconds after convergence", fmt.Sprintf("%.0f MiB / %.1fs (%s)", r.RSSMiB, r.CPUSeconds, limit))
	if r.IdleRSSMiB > 0 {
		row("  RSS of the restarted manager after idle", fmt.Sprintf("%.0f MiB", r.IdleRSSMiB))
	}
	if r.HeapLiveMiB > 0 {
		row("  live Go heap after a collection", fmt.Sprintf("%.0f MiB", r.HeapLiveMiB))
	}
	if r.Promotions > 0 {
		row(fmt.Sprintf("%d parallel promotions: acceptance to Promoted", r.Promotions), fmt.Sprintf("%.1fs mean, simulated work %.1fs", r.PromotionMeanSeconds, r.SimulatedMeanSeconds))
		row("  operator overhead per promotion", fmt.Sprintf("%.2fs mean, %.2fs max (goal < 2s)", r.OverheadMeanSeconds, r.OverheadMaxSeconds))
		for _, step := range promotionSteps {
			if d, ok := r.PromotionSteps[step.name]; ok {
				row("    "+step.name, fmt.Sprintf("%.2fs", d))
			}
		}
	}
	fmt.Println()
}

func appendResult(path string, r Results) error {
	var all []Results
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &all)
	}
	all = append(all, r)
	data, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// printGrowth reports convergence per environment across sizes: linear
// growth keeps it flat.
func printGrowth(path string) error {
	var all []Results
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	if len(all) < 2 {
		return nil
	}
	fmt.Printf("%-14s %-12s %-16s %-14s %s\n", "environments", "operator", "ms/environment", "lower bound", "RSS")
	for _, r := range all {
		fmt.Printf("%-14d %-12s %-16.0f %-14s %.0f MiB\n", r.Environments, fmt.Sprintf("%.1fs", r.OperatorSeconds),
			1000*r.OperatorSeconds/float64(r.Environments), fmt.Sprintf("%.1fs", r.LowerBoundSeconds), r.RSSMiB)
	}
	first, last := all[0], all[len(all)-1]
	perFirst := first.OperatorSeconds / float64(first.Environments)
	perLast := last.OperatorSeconds / float64(last.Environments)
	verdict := "linear (or better)"
	if perLast > 1.25*perFirst {
		verdict = "worse than linear"
	}
	fmt.Printf("time per environment at %d vs %d environments: %.2fx: %s\n", last.Environments, first.Environments, perLast/perFirst, verdict)
	return nil
}
