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
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/fixtures"
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

	// 1. The lower bound first, on the still empty cluster.
	if o.withLowerBound {
		if err := runLowerBound(ctx, c, o, "lb", &res); err != nil {
			return err
		}
	}

	// 2. The operator.
	cpu0, _ := cpuSeconds(o.managerPID)
	logf("operator: creating %d projects and %d environments", o.n, 2*o.n)
	metricsBefore, err := fixtures.Scrape(o.metricsURL)
	if err != nil {
		return err
	}
	op, err := operatorConvergence(ctx, c, o, "op", o.n)
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if metricsAfter, err := fixtures.Scrape(o.metricsURL); err == nil {
		res.ConvergenceControllers = latencies(metricsBefore, metricsAfter)
		logControllers("convergence", res.ConvergenceControllers, "implementationproject", "environment")
		logRequests("convergence", "environment", metricsBefore, metricsAfter, 2*o.n)
	}
	res.OperatorRuns = append(res.OperatorRuns, op.Seconds())
	logf("operator: all Ready in %.1fs", op.Seconds())

	// 3. Footprint after convergence.
	res.RSSMiB, _ = rssMiB(o.managerPID)
	res.GoMemLimit = environ(o.managerPID, "GOMEMLIMIT")
	cpu1, _ := cpuSeconds(o.managerPID)
	res.CPUSeconds = cpu1 - cpu0
	logf("footprint: RSS %.0f MiB, %.1f CPU seconds for convergence", res.RSSMiB, res.CPUSeconds)
	if o.pprofURL != "" {
		if err := saveHeapProfile(ctx, o.pprofURL, filepath.Join(o.workDir, "..", fmt.Sprintf("heap-%d.pprof", o.n))); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
		// The profile forced a collection: what the heap holds now is live.
		if m, err := fixtures.Scrape(o.metricsURL); err == nil {
			res.HeapLiveMiB = m.Sum("go_memstats_heap_alloc_bytes") / (1 << 20)
			logf("footprint: live Go heap after a collection %.0f MiB (RSS %.0f MiB)", res.HeapLiveMiB, res.RSSMiB)
		}
	}

	// 2b. Further pairs in reverse order each time (A B B A): the machine's
	// speed drifts by up to a third within a run, and a single pair put
	// the ratio anywhere between 1.2x and 1.6x.
	if o.withLowerBound {
		for k := 2; k <= o.pairs; k++ {
			lb := func() error { return runLowerBound(ctx, c, o, fmt.Sprintf("lb%d", k), &res) }
			op := func() error { return runOperatorAgain(ctx, c, o, k, &res) }
			first, second := op, lb // even pairs: the operator first
			if k%2 == 1 {
				first, second = lb, op
			}
			if err := first(); err != nil {
				return err
			}
			if err := second(); err != nil {
				return err
			}
		}
	}
	res.OperatorSeconds, res.LowerBoundSeconds = mean(res.OperatorRuns), mean(res.LowerBoundRuns)
	if res.LowerBoundSeconds > 0 {
		res.RatioToLowerBound = res.OperatorSeconds / res.LowerBoundSeconds
		logf("convergence: operator %.1fs / lower bound %.1fs = %.2fx (means of %d runs each)", res.OperatorSeconds, res.LowerBoundSeconds, res.RatioToLowerBound, len(res.OperatorRuns))
	}

	// 5. Promotions, once the convergence's last reconciles are done.
	if o.promotions > 0 {
		if _, err := settle(ctx, o.metricsURL); err != nil {
			return fmt.Errorf("waiting for the operator to settle: %w", err)
		}
		p := min(o.promotions, o.n)
		logf("promotions: %d increments in parallel", p)
		if err := promotions(ctx, c, o.metricsURL, "op", p, &res); err != nil {
			return fmt.Errorf("promotions: %w", err)
		}
		logf("promotions: acceptance to Promoted %.1fs on average, of which simulated Jobs and rollouts %.1fs: overhead %.2fs (max %.2fs)",
			res.PromotionMeanSeconds, res.SimulatedMeanSeconds, res.OverheadMeanSeconds, res.OverheadMaxSeconds)
	}

	// 4. helm, at helmN environments, against the operator at the same size.
	if o.helmN > 0 {
		projects := o.helmN / 2
		res.HelmN = 2 * projects
		opAt, err := operatorConvergence(ctx, c, o, "opref", projects)
		if err != nil {
			return err
		}
		res.OperatorAtHelmN = opAt.Seconds()
		logf("operator at %d environments: %.1fs", res.HelmN, res.OperatorAtHelmN)
		for _, par := range []int{1, helmParallelism} {
			d, err := helmLoop(ctx, c, o, fmt.Sprintf("helm%d", par), projects, par)
			if err != nil {
				return fmt.Errorf("helm: %w", err)
			}
			if par == 1 {
				res.HelmSequentialSeconds = d.Seconds()
			} else {
				res.HelmParallelSeconds = d.Seconds()
			}
			logf("helm (parallelism %d): %d releases, all Ready in %.1fs", par, res.HelmN, d.Seconds())
		}
		res.HelmSequentialRatio = res.HelmSequentialSeconds / res.OperatorAtHelmN
		res.HelmParallelRatio = res.HelmParallelSeconds / res.OperatorAtHelmN
	}

	// 6. Restart and idle, last: the operator runs with the default resync
	// period until here, so no resync lands in the timed windows above; it
	// is restarted with -restart-cmd (a short --sync-period), reconciles
	// everything once more from a cold cache, then idles through at least
	// one full resync. Neither should write.
	if o.restartCmd != "" {
		if err := restartAndIdle(ctx, o, &res); err != nil {
			return fmt.Errorf("restart and idle: %w", err)
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

// benchProject is the project every run uses: Odoo (an application and a
// database per environment), no backup schedule, no region.
func benchProject(name string) *crmv1alpha1.ImplementationProject {
	return &crmv1alpha1.ImplementationProject{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: crmv1alpha1.ImplementationProjectSpec{
			Customer:      crmv1alpha1.Customer{Name: "Bench " + name},
			Product:       crmv1alpha1.Product{Name: crmv1alpha1.ProductOdoo, Version: "18.0"},
			ProductOwners: crmv1alpha1.Subjects{Users: []string{"po@bench.example"}},
			Backup: &crmv1alpha1.BackupPolicy{Target: crmv1alpha1.BackupTarget{S3: &crmv1alpha1.S3Target{
				Endpoint: "https://s3.example.net", Bucket: "bench", SecretName: "bench-s3"}}},
		},
	}
}

// runLabel marks what one timed run created (its prefix), so that waiting
// for it lists only its objects.
const runLabel = "bench.crmops.io/run"

func benchEnv(project, name string, stage crmv1alpha1.Stage) *crmv1alpha1.Environment {
	return &crmv1alpha1.Environment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: project},
		Spec:       crmv1alpha1.EnvironmentSpec{ProjectRef: crmv1alpha1.ProjectReference{Name: project}, Stage: stage},
	}
}

func projectName(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

// parallel runs f(i) for i in [0,n) on workers goroutines.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

var kwokToleration = []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpEqual, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}

// environmentObjects are the objects the operator creates for one
// environment, from its own builders.
func environmentObjects(p *crmv1alpha1.ImplementationProject, env *crmv1alpha1.Environment) ([]client.Object, error) {
	profile, err := crm.For(p.Spec.Product)
	if err != nil {
		return nil, err
	}
	in := &resources.EnvironmentInput{Project: p, Env: env, Profile: profile, Version: resources.DesiredVersion(p, env, profile),
		IngressNamespace: "ingress-nginx", Tolerations: kwokToleration}
	desired, _ := resources.EnvironmentObjects(in)
	values := map[string][]byte{}
	for _, k := range crm.SecretKeys {
		values[k] = []byte("bench-secret-" + k)
	}
	return append([]client.Object{resources.CredentialsSecret(in, values)}, desired...), nil
}

// foreign marks objects as someone else's: the operator caches only objects
// labelled as its own, so the lower bound's and helm's copies would
// otherwise count in its memory, which a real cluster's other workloads do
// not. Only the label's value changes; the objects stay the same size.
func foreign(objs []client.Object, run string) []client.Object {
	for _, o := range objs {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[crmv1alpha1.LabelManagedBy] = "bench"
		l[runLabel] = run
		o.SetLabels(l)
		if d, ok := o.(*appsv1.Deployment); ok {
			d.Spec.Template.Labels[crmv1alpha1.LabelManagedBy] = "bench"
		}
		if s, ok := o.(*appsv1.StatefulSet); ok {
			s.Spec.Template.Labels[crmv1alpha1.LabelManagedBy] = "bench"
		}
	}
	return objs
}

// runOperatorAgain measures the operator's convergence run k (k >= 2) once
// its queues are empty, in namespaces named op<k>-*.
func runOperatorAgain(ctx context.Context, c client.WithWatch, o options, k int, res *Results) error {
	if _, err := settle(ctx, o.metricsURL); err != nil {
		return fmt.Errorf("waiting for the operator to settle: %w", err)
	}
	logf("operator (run %d): creating %d projects and %d environments", k, o.n, 2*o.n)
	op, err := operatorConvergence(ctx, c, o, fmt.Sprintf("op%d", k), o.n)
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	res.OperatorRuns = append(res.OperatorRuns, op.Seconds())
	logf("operator (run %d): all Ready in %.1fs", k, op.Seconds())
	return nil
}

// runLowerBound measures the lower bound once, in namespaces named prefix-*.
func runLowerBound(ctx context.Context, c client.Client, o options, prefix string, res *Results) error {
	logf("lower bound (%s): creating the objects of %d environments with a plain client (%d workers, QPS %.0f, burst %d)", prefix, 2*o.n, o.workers, o.qps, o.burst)
	lb, err := lowerBound(ctx, c, o, prefix, o.n)
	if err != nil {
		return fmt.Errorf("lower bound: %w", err)
	}
	res.LowerBoundRuns = append(res.LowerBoundRuns, lb.Seconds())
	logf("lower bound (%s): all Ready in %.1fs", prefix, lb.Seconds())
	return nil
}

func lowerBound(ctx context.Context, c client.Client, o options, prefix string, n int) (time.Duration, error) {
	start := time.Now()
	err := parallel(n, o.workers, func(i int) error {
		p := benchProject(projectName(prefix, i))
		objs, _ := resources.ProjectObjects(p)
		for _, stage := range []crmv1alpha1.Stage{crmv1alpha1.StageTest, crmv1alpha1.StageProduction} {
			eo, err := environmentObjects(p, benchEnv(p.Name, string(stage), stage))
			if err != nil {
				return err
			}
			objs = append(objs, eo...)
		}
		for _, obj := range foreign(objs, prefix) {
			if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%T %s: %w", obj, obj.GetName(), err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	logf("lower bound: objects created in %.1fs; waiting for readiness", time.Since(start).Seconds())
	err = waitWorkloads(ctx, c, prefix, 2*n)
	return time.Since(start), err
}

// waitWorkloads waits until every environment of run (the objects labelled
// with it) has its database StatefulSet ready and its Deployments
// available: what the operator's Ready condition asks. Only the run's
// objects are listed: listing the whole cluster's every second slowed the
// later runs on the grown cluster (the second lower bound by about half).
func waitWorkloads(ctx context.Context, c client.Client, run string, envs int) error {
	ofRun := client.MatchingLabels{runLabel: run}
	return wait.PollUntilContextTimeout(ctx, time.Second, 60*time.Minute, false, func(ctx context.Context) (bool, error) {
		sts := &appsv1.StatefulSetList{}
		deps := &appsv1.DeploymentList{}
		if err := c.List(ctx, sts, ofRun); err != nil {
			return false, nil
		}
		if err := c.List(ctx, deps, ofRun); err != nil {
			return false, nil
		}
		readySts, total := 0, 0
		for _, s := range sts.Items {
			total++
			if s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas == ptrDeref(s.Spec.Replicas) {
				readySts++
			}
		}
		for _, d := range deps.Items {
			if d.Status.ObservedGeneration < d.Generation || d.Status.AvailableReplicas != ptrDeref(d.Spec.Replicas) || d.Status.UpdatedReplicas != ptrDeref(d.Spec.Replicas) {
				return false, nil
			}
		}
		return total == envs && readySts == envs, nil
	})
}

func ptrDeref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// namespaceWatch tells when the operator has created a project's
// namespace. One watch instead of a poll per project: polling 32 projects
// every 200 ms put 160 reads a second on the API server the operator was
// measured against.
type namespaceWatch struct {
	mu      sync.Mutex
	created map[string]chan struct{}
}

func watchNamespaces(ctx context.Context, c client.WithWatch, prefix string, n int) (*namespaceWatch, error) {
	nw := &namespaceWatch{created: map[string]chan struct{}{}}
	for i := 0; i < n; i++ {
		nw.created[projectName(prefix, i)] = make(chan struct{})
	}
	w, err := c.Watch(ctx, &corev1.NamespaceList{})
	if err != nil {
		return nil, err
	}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			ns, ok := ev.Object.(*corev1.Namespace)
			if !ok {
				continue
			}
			nw.mu.Lock()
			if ch, ok := nw.created[ns.Name]; ok {
				close(ch)
				delete(nw.created, ns.Name)
			}
			all := len(nw.created) == 0
			nw.mu.Unlock()
			if all {
				return // every namespace seen: the watch ends here
			}
		}
	}()
	return nw, nil
}

// wait returns once the namespace exists; a watch that ended early (the
// API server closes watches after a while) falls back to reading it.
func (nw *namespaceWatch) wait(ctx context.Context, c client.Client, name string) error {
	nw.mu.Lock()
	ch, pending := nw.created[name]
	nw.mu.Unlock()
	if !pending {
		return nil
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	timeout := time.After(5 * time.Minute)
	for {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("namespace %s: not created within 5m", name)
		case <-tick.C:
			if c.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}) == nil {
				return nil
			}
		}
	}
}

func operatorConvergence(ctx context.Context, c client.WithWatch, o options, prefix string, n int) (time.Duration, error) {
	namespaces, err := watchNamespaces(ctx, c, prefix, n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(n, o.workers, func(i int) error {
		p := benchProject(projectName(prefix, i))
		if err := c.Create(ctx, p); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The operator creates the namespace; environments go in once it exists.
		if err := namespaces.wait(ctx, c, p.Name); err != nil {
			return err
		}
		for _, stage := range []crmv1alpha1.Stage{crmv1alpha1.StageTest, crmv1alpha1.StageProduction} {
			env := benchEnv(p.Name, string(stage), stage)
			env.Labels = map[string]string{runLabel: prefix}
			if err := c.Create(ctx, env); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	logf("operator: objects created in %.1fs; waiting for Ready", time.Since(start).Seconds())
	err = wait.PollUntilContextTimeout(ctx, time.Second, 60*time.Minute, false, func(ctx context.Context) (bool, error) {
		list := &crmv1alpha1.EnvironmentList{}
		if err := c.List(ctx, list, client.MatchingLabels{runLabel: prefix}); err != nil {
			return false, nil
		}
		ready := 0
		for _, e := range list.Items {
			if meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady) {
				ready++
			}
		}
		return ready == 2*n, nil
	})
	return time.Since(start), err
}

// helmLoop installs one release per environment, holding the same objects
// (the project's objects travel with its test environment).
func helmLoop(ctx context.Context, c client.Client, o options, prefix string, projects, par int) (time.Duration, error) {
	type release struct{ name, ns, dir string }
	var releases []release
	for i := 0; i < projects; i++ {
		p := benchProject(projectName(prefix, i))
		projectObjs, _ := resources.ProjectObjects(p)
		for _, stage := range []crmv1alpha1.Stage{crmv1alpha1.StageTest, crmv1alpha1.StageProduction} {
			objs, err := environmentObjects(p, benchEnv(p.Name, string(stage), stage))
			if err != nil {
				return 0, err
			}
			if stage == crmv1alpha1.StageTest {
				for _, obj := range projectObjs {
					if _, ok := obj.(*corev1.Namespace); !ok { // helm creates it
						objs = append(objs, obj)
					}
				}
			}
			dir := filepath.Join(o.workDir, p.Name+"-"+string(stage))
			if err := writeChart(dir, foreign(objs, prefix)); err != nil {
				return 0, err
			}
			releases = append(releases, release{name: string(stage), ns: p.Name, dir: dir})
		}
	}
	start := time.Now()
	err := parallel(len(releases), par, func(i int) error {
		r := releases[i]
		cmd := exec.CommandContext(ctx, o.helm, "install", r.name, r.dir, "--namespace", r.ns, "--create-namespace", "--kubeconfig", o.kubeconfig)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("helm install %s/%s: %v: %s", r.ns, r.name, err, out)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	logf("helm (parallelism %d): releases installed in %.1fs; waiting for readiness", par, time.Since(start).Seconds())
	err = waitWorkloads(ctx, c, prefix, len(releases))
	return time.Since(start), err
}

func writeChart(dir string, objs []client.Object) error {
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: crm-environment\nversion: 0.1.0\n"), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, obj := range objs {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return os.WriteFile(filepath.Join(dir, "templates", "objects.yaml"), []byte(b.String()), 0o644)
}

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
	res.RestartSeconds, _ = processAge(pid)
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
	res.IdleRSSMiB, _ = rssMiB(pid)
	logf("idle: %.0f writes, %.0f reads not from the cache, %.0f reconciles; RSS %.0f MiB", res.IdleWrites, res.IdleReads, res.IdleReconciles, res.IdleRSSMiB)
	return nil
}

// settle waits until the operator's queues are empty and no reconcile ran
// between two scrapes a second apart, and returns its counters then.
func settle(ctx context.Context, metricsURL string) (counters, error) {
	var last counters
	err := wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(context.Context) (bool, error) {
		m, err := fixtures.Scrape(metricsURL)
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

// processAge is how long ago the process started (its start time in
// clock ticks after boot, against the system's uptime).
func processAge(pid int) (float64, error) {
	stat, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	uptime, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	started, _ := strconv.ParseFloat(stat[19], 64) // starttime, the 22nd field
	up, _ := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	return up - started/100, nil // USER_HZ is 100 on Linux
}

type counters struct{ writes, reads, reconciles float64 }

// scrape sums the operator's client requests by kind and its reconciles.
func scrape(url string) (counters, error) {
	m, err := fixtures.Scrape(url)
	if err != nil {
		return counters{}, err
	}
	return countersOf(m), nil
}

func countersOf(m fixtures.Metrics) counters {
	return counters{
		reads:      m.Sum("rest_client_requests_total", `method="GET"`),
		writes:     m.Sum("rest_client_requests_total", fixtures.WriteMethods),
		reconciles: m.Sum("controller_runtime_reconcile_total"),
	}
}

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

func rssMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// environ is a variable of the process's environment ("" when unset).
func environ(pid int, name string) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// procStat is /proc/<pid>/stat after the command name (which may hold
// spaces): its first element is the state, the 3rd field.
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:])), nil
}

func cpuSeconds(pid int) (float64, error) {
	stat, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	utime, _ := strconv.ParseFloat(stat[11], 64) // the 14th field
	stime, _ := strconv.ParseFloat(stat[12], 64)
	return (utime + stime) / 100, nil // USER_HZ is 100 on Linux
}

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
	metricsBefore, err := fixtures.Scrape(metricsURL)
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
	if metricsAfter, err := fixtures.Scrape(metricsURL); err == nil {
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

// logRequests prints the operator's API requests per unit of work, by
// method and response code (a PATCH answered 201 is a server-side apply
// that created its object).
func logRequests(phase, unit string, before, after fixtures.Metrics, n int) {
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
