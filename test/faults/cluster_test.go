//go:build faults

package faults

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// The suite's own cluster, apart from `make run`'s and the e2e test's: the
// webhook port is the proxy the API server calls (replicas listen above
// it); metrics and probes of the replicas from portBase.
const (
	webhookPort = 19743
	portBase    = 18380
)

var (
	cluster  = framework.NewCluster("faults", portBase, portBase+1, webhookPort)
	localDir = cluster.Dir
	kubecfg  = cluster.Kubeconfig()
	root     = framework.Root
)

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
