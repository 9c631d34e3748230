//go:build faults

package faults

import (
	"context"
	"sort"
	"sync"
	"time"
)

// The killer: SIGKILLs the leading replica at each step of the promotions.

// killer SIGKILLs the manager the first time each step of the flow is seen,
// and again at seeded random intervals, restarting it after a seeded pause.
type killer struct {
	s       *suite
	r       *replica
	mu      sync.Mutex
	seen    map[string]bool
	byStep  map[string]int
	total   int
	pending chan string
}

func newKiller(s *suite, r *replica) *killer {
	return &killer{s: s, r: r, seen: map[string]bool{}, byStep: map[string]int{}, pending: make(chan string, 1024)}
}

func (k *killer) run() (stop func()) {
	ctx, cancel := context.WithCancel(k.s.ctx)
	k.s.steps.subscribe(func(step string) {
		k.mu.Lock()
		first := !k.seen[step]
		k.seen[step] = true
		k.mu.Unlock()
		if first {
			select {
			case k.pending <- step:
			default:
			}
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := time.After(k.interval())
		for {
			var step string
			select {
			case <-ctx.Done():
				return
			case step = <-k.pending:
				k.mu.Lock()
				already := k.byStep[step] > 0
				k.mu.Unlock()
				if already {
					continue
				}
			case <-next:
				step, next = "random", time.After(k.interval())
			}
			k.killAndRestart(step)
		}
	}()
	return func() {
		cancel()
		<-done
		if !k.r.alive() {
			k.r.start(k.s.t)
		}
	}
}

func (k *killer) interval() time.Duration {
	return time.Duration(4000+k.s.rng.Intn(6000)) * time.Millisecond
}

func (k *killer) killAndRestart(step string) {
	k.r.kill()
	k.mu.Lock()
	k.byStep[step]++
	k.total++
	k.mu.Unlock()
	pause(k.s.ctx, time.Duration(200+k.s.rng.Intn(2000))*time.Millisecond)
	k.r.start(k.s.t)
}

// unkilledSteps lists steps seen during the run in which no kill happened.
func (k *killer) unkilledSteps() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for step := range k.seen {
		if k.byStep[step] == 0 {
			out = append(out, step)
		}
	}
	sort.Strings(out)
	return out
}
