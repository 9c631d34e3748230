//go:build faults

package faults

import (
	"context"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

// Watches that record what happened while the faults ran.

// uidRecorder remembers every UID seen per Job and Backup name: a name with
// two UIDs was created twice, i.e. work was done twice.
type uidRecorder struct {
	mu   sync.Mutex
	seen map[string]map[types.UID]bool
}

func startUIDRecorder(ctx context.Context, c client.WithWatch) *uidRecorder {
	r := &uidRecorder{seen: map[string]map[types.UID]bool{}}
	record := func(kind string) func(client.Object) {
		return func(o client.Object) {
			if o.GetLabels()[crmv1alpha1.LabelManagedBy] != crmv1alpha1.ManagedByValue && kind == "Job" {
				return
			}
			k := kind + "/" + o.GetNamespace() + "/" + o.GetName()
			r.mu.Lock()
			if r.seen[k] == nil {
				r.seen[k] = map[types.UID]bool{}
			}
			r.seen[k][o.GetUID()] = true
			r.mu.Unlock()
		}
	}
	go watchAll(ctx, c, func() client.ObjectList { return &batchv1.JobList{} }, record("Job"))
	go watchAll(ctx, c, func() client.ObjectList { return &crmv1alpha1.BackupList{} }, record("Backup"))
	return r
}

func (r *uidRecorder) count(kind, ns, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[kind+"/"+ns+"/"+name])
}

func (r *uidRecorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, uids := range r.seen {
		if len(uids) > 1 {
			n++
		}
	}
	return n
}

// watchAll lists and watches a kind across namespaces for as long as ctx
// lives, listing again after the watch breaks (an API server restart).
func watchAll(ctx context.Context, c client.WithWatch, newList func() client.ObjectList, handle func(client.Object)) {
	for ctx.Err() == nil {
		list := newList()
		if err := c.List(ctx, list); err != nil {
			pause(ctx, 300*time.Millisecond)
			continue
		}
		items, _ := meta.ExtractList(list)
		for _, it := range items {
			handle(it.(client.Object))
		}
		w, err := c.Watch(ctx, newList(), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.GetResourceVersion()}})
		if err != nil {
			pause(ctx, 300*time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				break
			}
			if o, ok := ev.Object.(client.Object); ok {
				handle(o)
			}
		}
		w.Stop()
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// stepFeed turns Increment events into steps of the flow ("acceptance",
// "production:BackingUp", ...) for the fault schedule.
type stepFeed struct {
	mu   sync.Mutex
	subs []func(step string)
}

func startStepFeed(ctx context.Context, c client.WithWatch) *stepFeed {
	f := &stepFeed{}
	go watchAll(ctx, c, func() client.ObjectList { return &crmv1alpha1.IncrementList{} }, func(o client.Object) {
		inc, ok := o.(*crmv1alpha1.Increment)
		if !ok {
			return
		}
		var steps []string
		if inc.Status.Phase == crmv1alpha1.IncrementAwaitingAcceptance {
			steps = append(steps, "acceptance")
		}
		for _, st := range inc.Status.Stages {
			switch st.Phase {
			case crmv1alpha1.StageSucceeded, crmv1alpha1.StageFailed, crmv1alpha1.StageRolledBack, "":
			default:
				steps = append(steps, st.Name+":"+string(st.Phase))
			}
		}
		f.mu.Lock()
		subs := append([]func(string){}, f.subs...)
		f.mu.Unlock()
		for _, step := range steps {
			for _, sub := range subs {
				sub(step)
			}
		}
	})
	return f
}

func (f *stepFeed) subscribe(fn func(step string)) {
	f.mu.Lock()
	f.subs = append(f.subs, fn)
	f.mu.Unlock()
}

// first returns a channel closed when a step matching match is first seen.
func (f *stepFeed) first(match func(string) bool) <-chan struct{} {
	ch := make(chan struct{})
	var once sync.Once
	f.subscribe(func(step string) {
		if match(step) {
			once.Do(func() { close(ch) })
		}
	})
	return ch
}
