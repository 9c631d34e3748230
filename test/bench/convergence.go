package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

// Convergence: the lower bound (a plain client creating exactly what the
// operator's builders create) against the operator, N projects of two
// environments each.

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

// measureLowerBound runs the lower bound once, on the still empty cluster.
func measureLowerBound(ctx context.Context, c client.WithWatch, o options, res *Results) error {
	if !o.withLowerBound {
		return nil
	}
	return runLowerBound(ctx, c, o, "lb", res)
}

// measureConvergenceAndFootprint runs the operator's convergence once, with
// its requests and reconciles, then takes its footprint.
func measureConvergenceAndFootprint(ctx context.Context, c client.WithWatch, o options, res *Results) error {
	cpu0, _ := framework.CPUSeconds(o.managerPID)
	logf("operator: creating %d projects and %d environments", o.n, 2*o.n)
	metricsBefore, err := framework.Scrape(o.metricsURL)
	if err != nil {
		return err
	}
	op, err := operatorConvergence(ctx, c, o, "op", o.n)
	if err != nil {
		return err
	}
	if metricsAfter, err := framework.Scrape(o.metricsURL); err == nil {
		res.ConvergenceControllers = latencies(metricsBefore, metricsAfter)
		logControllers("convergence", res.ConvergenceControllers, "implementationproject", "environment")
		logRequests("convergence", "environment", metricsBefore, metricsAfter, 2*o.n)
	}
	res.OperatorRuns = append(res.OperatorRuns, op.Seconds())
	logf("operator: all Ready in %.1fs", op.Seconds())
	return measureFootprint(ctx, o, cpu0, res)
}

// measurePairs runs further pairs in reverse order each time (A B B A):
// the machine's speed drifts by up to a third within a run, and a single
// pair put the ratio anywhere between 1.2x and 1.6x.
func measurePairs(ctx context.Context, c client.WithWatch, o options, res *Results) error {
	if o.withLowerBound {
		for k := 2; k <= o.pairs; k++ {
			lb := func() error { return runLowerBound(ctx, c, o, fmt.Sprintf("lb%d", k), res) }
			op := func() error { return runOperatorAgain(ctx, c, o, k, res) }
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
	return nil
}
