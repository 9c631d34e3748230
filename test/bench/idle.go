package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/crmops/crm-operator/test/framework"
)

// Restart and idle: the operator's requests after a restart and across
// full resyncs, when it has nothing to change.

// restartAndIdle runs -restart-cmd, waits for the new operator's first
// full pass, then watches it idle for -idle.
func restartAndIdle(ctx context.Context, o options, res *Results) error {
	logf("restart: the operator again with a short resync period")
	// A third of the window: client-go resyncs a handler first between one
	// and two periods after it was added, so at least one full resync
	// lands in the window.
	cmd := exec.CommandContext(ctx, "bash", "-c", o.restartCmd)
	cmd.Env = append(os.Environ(), "BENCH_SYNC_PERIOD="+(o.idle/3).String())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return err
	}
	data, err := os.ReadFile(o.managerPIDFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("%s: %w", o.managerPIDFile, err)
	}
	first, err := settle(ctx, o.metricsURL)
	if err != nil {
		return fmt.Errorf("waiting for the first full pass: %w", err)
	}
	res.RestartSeconds, _ = framework.ProcessAge(pid)
	res.RestartWrites, res.RestartReads, res.RestartReconciles = first.writes, first.reads, first.reconciles
	logf("restart: first full pass done %.1fs after the process started: %.0f writes, %.0f reads not from the cache (lists included), %.0f reconciles",
		res.RestartSeconds, res.RestartWrites, res.RestartReads, res.RestartReconciles)

	logf("idle: watching the operator's API requests for %s", o.idle)
	time.Sleep(o.idle)
	after, err := scrape(o.metricsURL)
	if err != nil {
		return err
	}
	res.IdleSeconds = o.idle.Seconds()
	res.IdleWrites = after.writes - first.writes
	res.IdleReads = after.reads - first.reads
	res.IdleReconciles = after.reconciles - first.reconciles
	res.IdleRSSMiB, _ = framework.RSSMiB(pid)
	logf("idle: %.0f writes, %.0f reads not from the cache, %.0f reconciles; RSS %.0f MiB", res.IdleWrites, res.IdleReads, res.IdleReconciles, res.IdleRSSMiB)
	return nil
}

// settle waits until the operator's queues are empty and no reconcile ran
// between two scrapes a second apart, and returns its counters then.
func settle(ctx context.Context, metricsURL string) (counters, error) {
	var last counters
	err := wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(context.Context) (bool, error) {
		m, err := framework.Scrape(metricsURL)
		if err != nil {
			return false, nil // not serving yet
		}
		c := countersOf(m)
		done := c.reconciles > 0 && c.reconciles == last.reconciles && m.Sum("workqueue_depth") == 0
		last = c
		return done, nil
	})
	return last, err
}

type counters struct{ writes, reads, reconciles float64 }

// scrape sums the operator's client requests by kind and its reconciles.
func scrape(url string) (counters, error) {
	m, err := framework.Scrape(url)
	if err != nil {
		return counters{}, err
	}
	return countersOf(m), nil
}

func countersOf(m framework.Metrics) counters {
	return counters{
		reads:      m.Sum("rest_client_requests_total", `method="GET"`),
		writes:     m.Sum("rest_client_requests_total", framework.WriteMethods),
		reconciles: m.Sum("controller_runtime_reconcile_total"),
	}
}

// measureRestartAndIdle restarts the operator with -restart-cmd and
// watches it idle.
func measureRestartAndIdle(ctx context.Context, o options, res *Results) error {
	if o.restartCmd == "" {
		return nil
	}
	return restartAndIdle(ctx, o, res)
}
