package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/resources"
	"github.com/crmops/crm-operator/test/framework"
)

// A promotion is split at the moments a watcher sees its objects change:
// API timestamps have whole seconds, a watch event arrives within
// milliseconds of the write.
type milestone int

const (
	msAccepted           milestone = iota // the acceptance patch was sent
	msAcceptanceStored                    // its response came back (admission included)
	msStarted                             // the production stage has started
	msJobCreated                          // the pre-promotion backup Job exists
	msJobSucceeded                        // the Job controller found its pods succeeded
	msBackupCompleted                     // the Backup says Completed
	msEnvironmentChanged                  // the production Environment asks for the new version
	msDeploymentChanged                   // the production Deployment has a new generation
	msRolledOut                           // that generation is rolled out, by the Deployment's status
	msEnvironmentUpdated                  // the Environment reports the new version Ready
	msPromoted                            // the increment says Promoted
	milestones
)

// promotionSteps are the operator's steps: the time between two
// milestones that is not simulated work (the backup Job's pods, the
// Deployment's rollout: kube-controller-manager, scheduler and kwok).
var promotionSteps = []struct {
	name     string
	from, to milestone
}{
	{"1a acceptance sent -> stored (admission policies)", msAccepted, msAcceptanceStored},
	{"1b acceptance stored -> production stage started (increment)", msAcceptanceStored, msStarted},
	{"2 stage started -> backup Job created (backup)", msStarted, msJobCreated},
	{"3 backup Job succeeded -> Backup Completed (backup)", msJobSucceeded, msBackupCompleted},
	{"4 Backup Completed -> Environment asks for the new version (increment)", msBackupCompleted, msEnvironmentChanged},
	{"5 Environment changed -> Deployment changed (environment)", msEnvironmentChanged, msDeploymentChanged},
	{"6a Deployment rolled out -> Environment Ready on it (environment)", msRolledOut, msEnvironmentUpdated},
	{"6b Environment Ready on it -> Promoted (increment)", msEnvironmentUpdated, msPromoted},
}

// controllerLatency is what a controller's work queue and reconciles took
// during the promotions, from the operator's metrics.
type controllerLatency struct {
	Reconciles    float64 `json:"reconciles"`
	QueueWaitMean float64 `json:"queueWaitMeanSeconds"`
	ReconcileMean float64 `json:"reconcileMeanSeconds"`
}

func latencies(before, after framework.Metrics) map[string]controllerLatency {
	out := map[string]controllerLatency{}
	delta := func(name string, fragments ...string) float64 {
		return after.Sum(name, fragments...) - before.Sum(name, fragments...)
	}
	for _, c := range []string{"implementationproject", "environment", "increment", "backup"} {
		l := controllerLatency{Reconciles: delta("controller_runtime_reconcile_time_seconds_count", `controller="`+c+`"`)}
		if n := delta("workqueue_queue_duration_seconds_count", `name="`+c+`"`); n > 0 {
			l.QueueWaitMean = delta("workqueue_queue_duration_seconds_sum", `name="`+c+`"`) / n
		}
		if l.Reconciles > 0 {
			l.ReconcileMean = delta("controller_runtime_reconcile_time_seconds_sum", `controller="`+c+`"`) / l.Reconciles
		}
		out[c] = l
	}
	return out
}

// tracer records when each promotion's milestones are first seen.
type tracer struct {
	prefix   string
	mu       sync.Mutex
	seen     map[string]*[milestones]time.Time // by namespace
	gen      map[string]int64                  // the production Deployment's generation before acceptance
	envGen   map[string]int64                  // the production Environment's generation before acceptance
	failures []string
}

func newTracer(ctx context.Context, c client.Client, prefix string) (*tracer, error) {
	t := &tracer{prefix: prefix + "-", seen: map[string]*[milestones]time.Time{}, gen: map[string]int64{}, envGen: map[string]int64{}}
	list := &appsv1.DeploymentList{}
	if err := c.List(ctx, list); err != nil {
		return nil, err
	}
	for _, d := range list.Items {
		if strings.HasPrefix(d.Namespace, t.prefix) && d.Name == resources.AppName("production") {
			t.gen[d.Namespace] = d.Generation
		}
	}
	envs := &crmv1alpha1.EnvironmentList{}
	if err := c.List(ctx, envs); err != nil {
		return nil, err
	}
	for _, e := range envs.Items {
		if strings.HasPrefix(e.Namespace, t.prefix) && e.Name == "production" {
			t.envGen[e.Namespace] = e.Generation
		}
	}
	return t, nil
}

func (t *tracer) mark(ns string, m milestone, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.seen[ns]
	if s == nil {
		s = &[milestones]time.Time{}
		t.seen[ns] = s
	}
	if s[m].IsZero() {
		s[m] = at
	}
}

// watch follows the kinds a promotion touches until ctx ends; it returns
// once every watch is established, so nothing after it goes unseen.
func (t *tracer) watch(ctx context.Context, wc client.WithWatch) error {
	kinds := []struct {
		list client.ObjectList
		on   func(obj any, at time.Time)
	}{
		{&crmv1alpha1.IncrementList{}, t.increment},
		{&crmv1alpha1.BackupList{}, t.backup},
		{&batchv1.JobList{}, t.job},
		{&crmv1alpha1.EnvironmentList{}, t.environment},
		{&appsv1.DeploymentList{}, t.deployment},
	}
	for _, k := range kinds {
		w, err := wc.Watch(ctx, k.list)
		if err != nil {
			return err
		}
		go func() {
			for {
				for ev := range w.ResultChan() {
					if ev.Type == watch.Added || ev.Type == watch.Modified {
						k.on(ev.Object, time.Now())
					}
				}
				// The server ended the watch: start again (objects come
				// again as added; a milestone keeps its first sighting).
				for {
					if ctx.Err() != nil {
						return
					}
					if w, err = wc.Watch(ctx, k.list); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return nil
}

func (t *tracer) increment(obj any, at time.Time) {
	inc, ok := obj.(*crmv1alpha1.Increment)
	if !ok || !strings.HasPrefix(inc.Namespace, t.prefix) || len(inc.Status.Stages) < 2 {
		return
	}
	st := inc.Status.Stages[len(inc.Status.Stages)-1]
	if st.StartedAt != nil {
		t.mark(inc.Namespace, msStarted, at)
	}
	switch inc.Status.Phase {
	case crmv1alpha1.IncrementPromoted:
		t.mark(inc.Namespace, msPromoted, at)
	case crmv1alpha1.IncrementFailed, crmv1alpha1.IncrementRolledBack:
		t.mu.Lock()
		t.failures = append(t.failures, fmt.Sprintf("increment in %s ended %s", inc.Namespace, inc.Status.Phase))
		t.mu.Unlock()
	}
}

// changedSince reports whether obj is the promotion's object of that name
// and has a newer generation than before the acceptance (start).
func (t *tracer) changedSince(start map[string]int64, obj client.Object, name string) bool {
	if !strings.HasPrefix(obj.GetNamespace(), t.prefix) || obj.GetName() != name {
		return false
	}
	t.mu.Lock()
	gen, known := start[obj.GetNamespace()]
	t.mu.Unlock()
	return known && obj.GetGeneration() > gen
}

// environment marks the production Environment's new version, asked for
// and then reported Ready.
func (t *tracer) environment(obj any, at time.Time) {
	e, ok := obj.(*crmv1alpha1.Environment)
	if !ok || !t.changedSince(t.envGen, e, "production") {
		return
	}
	t.mark(e.Namespace, msEnvironmentChanged, at)
	if e.Status.ObservedGeneration >= e.Generation && e.Status.Version == e.Spec.Version &&
		meta.IsStatusConditionTrue(e.Status.Conditions, crmv1alpha1.ConditionReady) {
		t.mark(e.Namespace, msEnvironmentUpdated, at)
	}
}

func (t *tracer) backup(obj any, at time.Time) {
	b, ok := obj.(*crmv1alpha1.Backup)
	if ok && strings.HasPrefix(b.Namespace, t.prefix) && b.Spec.Reason == crmv1alpha1.BackupPrePromotion && b.Status.Phase == crmv1alpha1.BackupCompleted {
		t.mark(b.Namespace, msBackupCompleted, at)
	}
}

func (t *tracer) job(obj any, at time.Time) {
	job, ok := obj.(*batchv1.Job)
	if !ok || !strings.HasPrefix(job.Namespace, t.prefix) || job.Name != resources.AgentJobName(resources.AgentJobName("sprint-1", "pre-production"), "backup") {
		return
	}
	t.mark(job.Namespace, msJobCreated, at)
	for _, cond := range job.Status.Conditions {
		if (cond.Type == batchv1.JobSuccessCriteriaMet || cond.Type == batchv1.JobComplete) && cond.Status == corev1.ConditionTrue {
			t.mark(job.Namespace, msJobSucceeded, at)
		}
	}
}

// deployment marks the production Deployment's new generation, and its
// rollout by the rule the operator reads it with.
func (t *tracer) deployment(obj any, at time.Time) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok || !t.changedSince(t.gen, d, resources.AppName("production")) {
		return
	}
	t.mark(d.Namespace, msDeploymentChanged, at)
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= want && st.AvailableReplicas >= want && st.Replicas <= want {
		t.mark(d.Namespace, msRolledOut, at)
	}
}

// done counts the promotions seen to the end; an error names a failed one.
func (t *tracer) done() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.failures) > 0 {
		return 0, fmt.Errorf("%s", t.failures[0])
	}
	n := 0
	for _, s := range t.seen {
		if !s[msPromoted].IsZero() {
			n++
		}
	}
	return n, nil
}

// promotionFigures of one promotion: total, simulated work, and each
// operator step; ok is false when a milestone went unseen.
func promotionFigures(s *[milestones]time.Time) (total, simulated float64, steps map[string]float64, ok bool) {
	for _, at := range s {
		if at.IsZero() {
			return 0, 0, nil, false
		}
	}
	d := func(from, to milestone) float64 { return s[to].Sub(s[from]).Seconds() }
	steps = map[string]float64{}
	for _, st := range promotionSteps {
		steps[st.name] = d(st.from, st.to)
	}
	return d(msAccepted, msPromoted), d(msJobCreated, msJobSucceeded) + d(msDeploymentChanged, msRolledOut), steps, true
}
