package framework

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The assertions every suite shares: one signature each, so that a test
// reads the same in test/e2e, test/real and test/portal.

// Eventually polls cond until it holds and fails t after timeout, naming
// what and cond's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := WaitFor(context.Background(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

// Holds adapts a predicate that cannot fail for Eventually.
func Holds(cond func() bool) func() (bool, error) {
	return func() (bool, error) { return cond(), nil }
}

// Consistently fails t as soon as cond does not hold, polling it every
// second for d.
func Consistently(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); <-tick.C {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
	}
}

// NoError fails t at once on err.
func NoError(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Get reads a jsonpath of objects with kubectl (what: kind/name, or a kind
// and a -l selector), trimmed; empty when there is none.
func (c *Cluster) Get(t testing.TB, ns, what, path string, selector ...string) string {
	t.Helper()
	args := append([]string{"get", what, "-o", "jsonpath=" + path}, selector...)
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, _ := c.Run(t, nil, Kubectl(), args...)
	return strings.TrimSpace(out)
}
