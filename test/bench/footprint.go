package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/crmops/crm-operator/test/framework"
)

// Footprint: the operator's memory and CPU, and its heap profile.

// saveHeapProfile writes the operator's live heap (after a GC) to path, for
// `go tool pprof -sample_index=inuse_space path`.
func saveHeapProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	logf("heap profile: %s", path)
	return f.Close()
}

// measureFootprint records the operator's memory and the CPU it used since
// cpu0, and saves its heap profile when asked.
func measureFootprint(ctx context.Context, o options, cpu0 float64, res *Results) error {
	res.RSSMiB, _ = framework.RSSMiB(o.managerPID)
	res.GoMemLimit = framework.Environ(o.managerPID, "GOMEMLIMIT")
	cpu1, _ := framework.CPUSeconds(o.managerPID)
	res.CPUSeconds = cpu1 - cpu0
	logf("footprint: RSS %.0f MiB, %.1f CPU seconds for convergence", res.RSSMiB, res.CPUSeconds)
	if o.pprofURL == "" {
		return nil
	}
	if err := saveHeapProfile(ctx, o.pprofURL, filepath.Join(o.workDir, "..", fmt.Sprintf("heap-%d.pprof", o.n))); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	// The profile forced a collection: what the heap holds now is live.
	if m, err := framework.Scrape(o.metricsURL); err == nil {
		res.HeapLiveMiB = m.Sum("go_memstats_heap_alloc_bytes") / (1 << 20)
		logf("footprint: live Go heap after a collection %.0f MiB (RSS %.0f MiB)", res.HeapLiveMiB, res.RSSMiB)
	}
	return nil
}
