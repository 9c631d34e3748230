// Command bench measures the operator on the local simulated cluster
// (`make bench` starts it) against what it does not beat by construction:
//
//   - convergence of N projects with a test and a production environment,
//     against a lower bound: a plain client that creates exactly the same
//     objects (the operator's own builders) with the same rate limits and
//     workers and waits for the same readiness;
//   - the same environments installed as one helm release each, sequentially
//     and 8 at a time;
//   - the operator's API requests while idle, across forced full resyncs;
//   - its memory and CPU;
//   - the overhead of 50 parallel promotions beyond the simulated Jobs and
//     rollouts.
//
// It prints a table and writes the figures as JSON.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// helmParallelism is the parallel helm loop's: 8 releases at a time.
const helmParallelism = 8

type options struct {
	kubeconfig, metricsURL, helm, out, workDir string
	n, workers, helmN, promotions, pairs       int
	withLowerBound                             bool
	qps                                        float64
	burst                                      int
	managerPID                                 int
	managerPIDFile, restartCmd                 string
	clusterQPS                                 float64
	idle                                       time.Duration
	pprofURL                                   string
}

// Results are the figures of one run.
type Results struct {
	Machine string `json:"machine"`
	// ClusterQPS: the simulated cluster's component client limit (0: their defaults).
	ClusterQPS        float64 `json:"clusterComponentQPS"`
	N                 int     `json:"n"`
	Environments      int     `json:"environments"`
	OperatorSeconds   float64 `json:"operatorConvergenceSeconds"`
	LowerBoundSeconds float64 `json:"lowerBoundSeconds"`
	RatioToLowerBound float64 `json:"ratioToLowerBound"`
	// OperatorRuns and LowerBoundRuns: each convergence, in the order run
	// (lower bound, operator, operator, lower bound, ...); the figures
	// above are their means and the ratio of their sums.
	OperatorRuns          []float64 `json:"operatorConvergenceRunsSeconds,omitempty"`
	LowerBoundRuns        []float64 `json:"lowerBoundRunsSeconds,omitempty"`
	HelmN                 int       `json:"helmEnvironments,omitempty"`
	HelmSequentialSeconds float64   `json:"helmSequentialSeconds,omitempty"`
	HelmParallelSeconds   float64   `json:"helmParallel8Seconds,omitempty"`
	OperatorAtHelmN       float64   `json:"operatorSecondsAtHelmN,omitempty"`
	HelmSequentialRatio   float64   `json:"helmSequentialOverOperator,omitempty"`
	HelmParallelRatio     float64   `json:"helmParallel8OverOperator,omitempty"`
	IdleSeconds           float64   `json:"idleSeconds"`
	IdleWrites            float64   `json:"idleWrites"`
	IdleReads             float64   `json:"idleReadsNotFromCache"`
	IdleReconciles        float64   `json:"idleReconciles"`
	// Restart*: the restarted operator until its first full pass is done
	// (queues empty), from its process start; reads include its lists.
	RestartSeconds    float64 `json:"restartFirstPassSeconds,omitempty"`
	RestartWrites     float64 `json:"restartWrites"`
	RestartReads      float64 `json:"restartReadsNotFromCache"`
	RestartReconciles float64 `json:"restartReconciles"`
	// IdleRSSMiB: the restarted operator after the idle window.
	IdleRSSMiB           float64 `json:"managerRSSAfterIdleMiB,omitempty"`
	RSSMiB               float64 `json:"managerRSSMiB"`
	CPUSeconds           float64 `json:"managerCPUSeconds"`
	HeapLiveMiB          float64 `json:"managerHeapLiveMiB,omitempty"`
	GoMemLimit           string  `json:"managerGOMEMLIMIT,omitempty"`
	Promotions           int     `json:"promotions"`
	PromotionMeanSeconds float64 `json:"promotionMeanSeconds"`
	SimulatedMeanSeconds float64 `json:"simulatedMeanSeconds"`
	OverheadMeanSeconds  float64 `json:"promotionOverheadMeanSeconds"`
	OverheadMaxSeconds   float64 `json:"promotionOverheadMaxSeconds"`
	// PromotionSteps: mean seconds of each step outside the simulated work.
	PromotionSteps map[string]float64 `json:"promotionStepsMeanSeconds,omitempty"`
	// ConvergenceControllers: queue wait and reconcile time during convergence.
	ConvergenceControllers map[string]controllerLatency `json:"convergenceControllers,omitempty"`
	// PromotionControllers: queue wait and reconcile time during the promotions.
	PromotionControllers map[string]controllerLatency `json:"promotionControllers,omitempty"`
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "Kubeconfig of the local cluster.")
	flag.StringVar(&o.metricsURL, "metrics-url", "http://127.0.0.1:18280/metrics", "The operator's metrics endpoint.")
	flag.IntVar(&o.managerPID, "manager-pid", 0, "PID of the operator, for its memory and CPU.")
	flag.StringVar(&o.managerPIDFile, "manager-pid-file", "", "Where -restart-cmd leaves the restarted operator's PID.")
	flag.StringVar(&o.restartCmd, "restart-cmd", "", "Shell command that restarts the operator with a short --sync-period for the restart and idle measures (empty: skipped).")
	flag.StringVar(&o.helm, "helm", "bin/helm", "The helm binary.")
	flag.StringVar(&o.out, "out", "bin/bench/results.json", "Where to write the figures (appended to a JSON list).")
	flag.StringVar(&o.workDir, "work-dir", "bin/bench/work", "Scratch directory (helm charts).")
	flag.IntVar(&o.n, "n", 100, "Projects (each with a test and a production environment).")
	flag.IntVar(&o.helmN, "helm-n", 100, "Environments installed with helm (0 skips).")
	flag.IntVar(&o.promotions, "promotions", 50, "Parallel promotions (0 skips).")
	flag.IntVar(&o.pairs, "pairs", 2, "Convergence runs of the lower bound and of the operator each, in the order A B B A (a drift of the machine's speed falls on both); 1: one each.")
	flag.BoolVar(&o.withLowerBound, "lower-bound", true, "Measure the lower bound (false: the operator's figures only, e.g. footprint at N=1000).")
	flag.IntVar(&o.workers, "workers", 32, "Workers of the lower bound and of the benchmark's own creates (the operator's --concurrency).")
	flag.Float64Var(&o.qps, "qps", 200, "Client QPS of the lower bound (the operator's --kube-api-qps).")
	flag.IntVar(&o.burst, "burst", 400, "Client burst of the lower bound (the operator's --kube-api-burst).")
	flag.StringVar(&o.pprofURL, "pprof-url", "", "The operator's pprof endpoint (http://host:port): save its heap profile next to -work-dir after the idle window.")
	flag.Float64Var(&o.clusterQPS, "cluster-qps", 200, "The simulated cluster's component client QPS (hack/local-up.sh CLUSTER_QPS), recorded with the figures.")
	flag.DurationVar(&o.idle, "idle", 2*time.Minute, "How long to watch the idle operator.")
	growth := flag.Bool("growth", false, "Print how convergence grew across the sizes in -out, and exit.")
	flag.Parse()
	if *growth {
		if err := printGrowth(o.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Printf("[bench %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func newClient(o options) (client.WithWatch, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = crmv1alpha1.AddToScheme(scheme)
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme})
}

func run(ctx context.Context, o options) error {
	c, err := newClient(o)
	if err != nil {
		return err
	}
	res := Results{N: o.n, Environments: 2 * o.n, Machine: machine(), ClusterQPS: o.clusterQPS}
	// The measures, in the order they run; each appends its figures to res.
	measures := []struct {
		name string
		run  func() error
	}{
		// 1. The lower bound first, on the still empty cluster.
		{"lower bound", func() error { return measureLowerBound(ctx, c, o, &res) }},
		// 2. The operator's convergence, and 3. its footprint after it.
		{"operator", func() error { return measureConvergenceAndFootprint(ctx, c, o, &res) }},
		// 4. Further pairs of lower bound and operator, in the order A B B A.
		{"further pairs", func() error { return measurePairs(ctx, c, o, &res) }},
		// 5. Promotions, once the convergence's last reconciles are done.
		{"promotions", func() error { return measurePromotions(ctx, c, o, &res) }},
		// 6. helm, at helmN environments, against the operator at the same size.
		{"helm", func() error { return measureHelm(ctx, c, o, &res) }},
		// 7. Restart and idle, last: the operator runs with the default
		// resync period until here, so no resync lands in the timed windows
		// above; it is restarted with -restart-cmd (a short --sync-period),
		// reconciles everything once more from a cold cache, then idles
		// through at least one full resync. Neither should write.
		{"restart and idle", func() error { return measureRestartAndIdle(ctx, o, &res) }},
	}
	for _, m := range measures {
		if err := m.run(); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	printTable(res)
	return appendResult(o.out, res)
}

func machine() string {
	cpus := 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "processor") {
				cpus++
			}
		}
		f.Close()
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d CPUs", host, cpus)
}
