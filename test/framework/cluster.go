package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// KubernetesVersion is the version of the local cluster's binaries (hack/).
const KubernetesVersion = "1.37.2"

// Root is the repository's root directory.
var Root = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

// Cluster is a local simulated cluster started by `make run` with its own
// state directory (bin/<name>) and ports, so that several suites and a
// user's `make run` run side by side.
type Cluster struct {
	Dir                                 string
	MetricsPort, ProbePort, WebhookPort int
}

// NewCluster names a cluster whose state lives in bin/<name>.
func NewCluster(name string, metricsPort, probePort, webhookPort int) *Cluster {
	return &Cluster{Dir: filepath.Join(Root, "bin", name), MetricsPort: metricsPort, ProbePort: probePort, WebhookPort: webhookPort}
}

// Kubeconfig is the cluster's kubeconfig file (the admin's).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.Dir, "kubeconfig") }

// Kubectl is the kubectl built for the cluster's version.
func Kubectl() string { return filepath.Join(Root, "bin", "k8s", KubernetesVersion, "kubectl") }

// Plugin is the kubectl crm plugin built by `make run`.
func Plugin() string { return filepath.Join(Root, "bin", "kubectl-crm") }

// Env is the environment of commands run against the cluster: its
// kubeconfig, state directory and ports (what hack/local-up.sh reads), and
// extra.
func (c *Cluster) Env(extra ...string) []string {
	return append(append(os.Environ(), "KUBECONFIG="+c.Kubeconfig(), "LOCAL_DIR="+c.Dir,
		"METRICS_PORT="+strconv.Itoa(c.MetricsPort), "PROBE_PORT="+strconv.Itoa(c.ProbePort), "WEBHOOK_PORT="+strconv.Itoa(c.WebhookPort)), extra...)
}

// Run executes a command in the repository against the cluster, logs it
// with its output, and returns the combined output and the exit code.
func (c *Cluster) Run(t testing.TB, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = Root
	cmd.Env = c.Env(env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	line := strings.Join(append(append(slices.Clone(env), filepath.Base(name)), args...), " ")
	t.Logf("$ %s  (%s, exit %d)\n%s", line, time.Since(start).Round(time.Millisecond), code, out.String())
	return out.String(), code
}

// Must is Run that fails the test on a non-zero exit.
func (c *Cluster) Must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := c.Run(t, nil, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d", name, strings.Join(args, " "), code)
	}
	return out
}

// Up starts the cluster with `make run`; env selects what runs (DEMO=0,
// OPERATOR=0).
func (c *Cluster) Up(t testing.TB, env ...string) {
	t.Helper()
	if _, code := c.Run(t, env, "make", "run"); code != 0 {
		t.Fatalf("make run: exit %d", code)
	}
}

// Down stops everything the cluster started (`make down`).
func (c *Cluster) Down(t testing.TB) {
	t.Helper()
	if _, code := c.Run(t, nil, filepath.Join(Root, "hack", "local-down.sh")); code != 0 {
		t.Errorf("make down: exit %d", code)
	}
}

// Processes lists the live processes started for the cluster (their
// command lines mention its directory).
func (c *Cluster) Processes() []string { return ProcessesMentioning(c.Dir) }

// ControlPlaneProcess is one process of the cluster's control plane (etcd,
// kube-apiserver, ...), which a test kills and starts again.
type ControlPlaneProcess struct {
	Name     string
	pid      int
	argv     []string
	cwd, log string
	replaced []*exec.Cmd
}

// ControlPlaneProcess finds the process named name that hack/localcluster
// started for the cluster.
func (c *Cluster) ControlPlaneProcess(t testing.TB, name string) *ControlPlaneProcess {
	t.Helper()
	pidData, err := os.ReadFile(filepath.Join(c.Dir, "localcluster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	parent, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range Children(parent) {
		// The command's name, not comm: comm is cut at 15 characters
		// (kube-controller-manager).
		argv := Argv(pid)
		if filepath.Base(argv[0]) != name {
			continue
		}
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		return &ControlPlaneProcess{Name: name, pid: pid, argv: argv, cwd: cwd, log: filepath.Join(c.Dir, name+"-restarted.log")}
	}
	t.Fatalf("no %s process under localcluster (pid %d)", name, parent)
	return nil
}

// Restart kills the process with SIGKILL, waits down, runs beforeStart
// (when set) and starts it again. It runs beside the test's goroutine, so
// it reports instead of stopping the test.
func (p *ControlPlaneProcess) Restart(down time.Duration, beforeStart func() error) error {
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %s: %w", p.Name, err)
	}
	for syscall.Kill(p.pid, 0) == nil {
		<-time.After(20 * time.Millisecond) // reaped by localcluster
	}
	<-time.After(down)
	if beforeStart != nil {
		if err := beforeStart(); err != nil {
			return fmt.Errorf("before restarting %s: %w", p.Name, err)
		}
	}
	log, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.cwd
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("restarting %s: %w", p.Name, err)
	}
	p.pid = cmd.Process.Pid
	p.replaced = append(p.replaced, cmd)
	go func() { _ = cmd.Wait(); _ = log.Close() }()
	return nil
}

// Stop ends the processes Restart started (localcluster ends the others).
func (p *ControlPlaneProcess) Stop() {
	for _, c := range p.replaced {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
}

// WaitFor polls cond until it holds or timeout passes; an error of cond is
// remembered for the message and cond is polled again.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: not within %s (last error: %v)", what, timeout, last)
	}
	return err
}
