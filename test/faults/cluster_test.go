//go:build faults

package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

var (
	root, _  = filepath.Abs(filepath.Join("..", ".."))
	localDir = filepath.Join(root, "bin", "faults")
	kubecfg  = filepath.Join(localDir, "kubeconfig")
)

// Ports of this suite's cluster, apart from `make run`'s and the e2e test's.
const (
	webhookPort = 19743 // the proxy the API server calls; replicas listen above it
	portBase    = 18380 // metrics and probes of the replicas
)

// makeRun starts the simulated cluster without an operator.
func makeRun(t *testing.T) {
	t.Helper()
	cmd := exec.Command("make", "run")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DEMO=0", "OPERATOR=0", "LOCAL_DIR="+localDir,
		"METRICS_PORT="+strconv.Itoa(portBase), "PROBE_PORT="+strconv.Itoa(portBase+1), "WEBHOOK_PORT="+strconv.Itoa(webhookPort))
	out, err := cmd.CombinedOutput()
	t.Logf("$ make run (DEMO=0 OPERATOR=0)\n%s", out)
	if err != nil {
		t.Fatalf("make run: %v", err)
	}
}

func makeDown(t *testing.T) {
	cmd := exec.Command(filepath.Join(root, "hack", "local-down.sh"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "LOCAL_DIR="+localDir)
	out, err := cmd.CombinedOutput()
	t.Logf("$ make down\n%s", out)
	if err != nil {
		t.Errorf("make down: %v", err)
	}
}

// replica is one operator process, killed and restarted by the suite.
type replica struct {
	name                             string
	metricsPort, probePort, hookPort int
	args                             []string
	mu                               sync.Mutex
	cmd                              *exec.Cmd
	done                             chan struct{}
	starts                           int
	crashes                          int // exits the suite did not cause
	killing                          bool
}

func newReplica(name string, index int, extra ...string) *replica {
	r := &replica{name: name, metricsPort: portBase + 2 + 2*index, probePort: portBase + 3 + 2*index, hookPort: webhookPort + 1 + index}
	r.args = append([]string{
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(r.metricsPort),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(r.probePort),
		"--webhook-port=" + strconv.Itoa(r.hookPort), "--webhook-cert-mode=self",
		"--webhook-cert-dir=" + filepath.Join(localDir, "webhook-certs-"+name),
		"--webhook-configuration=crm-operator-references-local", "--webhook-extra-dns-names=localhost", "--webhook-write-cert-files",
		"--pod-toleration=kwok.x-k8s.io/node=fake:NoSchedule", "--agent-image=crm-operator:local",
	}, extra...)
	return r
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(localDir, "manager-"+r.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "bin", "manager"), r.args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubecfg, "POD_NAMESPACE=crm-system")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting replica %s: %v", r.name, err)
	}
	r.cmd, r.done, r.killing = cmd, make(chan struct{}), false
	r.starts++
	done := r.done
	go func() {
		_ = cmd.Wait()
		_ = log.Close()
		r.mu.Lock()
		if !r.killing {
			r.crashes++
		}
		r.mu.Unlock()
		close(done)
	}()
}

// kill sends SIGKILL and waits until the process is gone.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.killing = true
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (r *replica) alive() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// webhookProxy stands in for the webhook Service: it forwards the API
// server's connections to whichever replica is alive, as a Service does.
type webhookProxy struct {
	mu       sync.Mutex
	backends []int
	ln       net.Listener
}

func startWebhookProxy(t *testing.T) *webhookProxy {
	t.Helper()
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(webhookPort))
	if err != nil {
		t.Fatalf("webhook proxy: %v", err)
	}
	p := &webhookProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

func (p *webhookProxy) setBackends(ports ...int) {
	p.mu.Lock()
	p.backends = ports
	p.mu.Unlock()
}

func (p *webhookProxy) forward(c net.Conn) {
	defer c.Close()
	p.mu.Lock()
	ports := append([]int(nil), p.backends...)
	p.mu.Unlock()
	for _, port := range ports {
		b, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err != nil {
			continue
		}
		defer b.Close()
		go func() { _, _ = io.Copy(b, c) }()
		_, _ = io.Copy(c, b)
		return
	}
}

// controlPlaneProcess is a component localcluster started (etcd,
// kube-apiserver, kwok, kube-controller-manager);
// restart kills it and starts the same command line again, as a crashed
// static pod is restarted by its kubelet.
type controlPlaneProcess struct {
	name     string
	pid      int
	argv     []string
	cwd      string
	replaced []*exec.Cmd
}

func findControlPlaneProcess(t *testing.T, name string) *controlPlaneProcess {
	t.Helper()
	pidData, err := os.ReadFile(filepath.Join(localDir, "localcluster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	parent := strings.TrimSpace(string(pidData))
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i < 0 {
			continue
		} else if fields := strings.Fields(string(stat[i+1:])); len(fields) < 2 || fields[1] != parent {
			continue
		}
		// The command's name, not comm: comm is cut at 15 characters
		// (kube-controller-manager).
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(argv[0]) != name {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		return &controlPlaneProcess{name: name, pid: pid, argv: argv, cwd: cwd}
	}
	t.Fatalf("no %s process under localcluster (pid %s)", name, parent)
	return nil
}

// restart kills the process with SIGKILL, waits down, and starts it again.
// It runs beside the test's goroutine, so it reports instead of stopping.
func (p *controlPlaneProcess) restart(down time.Duration) error {
	return p.restartWith(down, nil)
}

// restartWith is restart with beforeStart run while the process is down.
func (p *controlPlaneProcess) restartWith(down time.Duration, beforeStart func() error) error {
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %s: %w", p.name, err)
	}
	for syscall.Kill(p.pid, 0) == nil {
		<-time.After(20 * time.Millisecond) // reaped by localcluster
	}
	<-time.After(down)
	if beforeStart != nil {
		if err := beforeStart(); err != nil {
			return fmt.Errorf("before restarting %s: %w", p.name, err)
		}
	}
	log, err := os.OpenFile(filepath.Join(localDir, p.name+"-restarted.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Dir = p.cwd
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("restarting %s: %w", p.name, err)
	}
	p.pid = cmd.Process.Pid
	p.replaced = append(p.replaced, cmd)
	go func() { _ = cmd.Wait(); _ = log.Close() }()
	return nil
}

func (p *controlPlaneProcess) stop() {
	for _, c := range p.replaced {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err // remembered for the message; the condition is polled again
		}
		return ok, nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: not within %s (last error: %v)", what, timeout, last)
	}
	return err
}
