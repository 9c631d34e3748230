//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// make down issued while make run is still starting the cluster leaves
// nothing: not the half-started run, not etcd or the API server, which
// the cluster's parent would have stopped had it lived.
func TestMakeDownWhileMakeRunStarts(t *testing.T) {
	_ = os.RemoveAll(localDir)
	up := exec.Command("make", "run")
	up.Dir, up.Env = framework.Root, cluster.Env()
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	// The moment the control plane's processes run and the demo does not yet.
	framework.Eventually(t, 5*time.Minute, "make run starts etcd", func() (bool, error) {
		for _, p := range cluster.Processes() {
			if strings.Contains(p, "etcd ") || strings.Contains(p, "/etcd --") {
				return true, nil
			}
		}
		return false, nil
	})
	cluster.Must(t, filepath.Join(framework.Root, "hack", "local-down.sh"))
	select {
	case err := <-exited:
		t.Logf("make run ended with make down: %v", err)
	case <-time.After(time.Minute):
		_ = up.Process.Kill()
		t.Fatal("make run still runs a minute after make down")
	}
	if left := cluster.Processes(); len(left) > 0 {
		t.Errorf("make down during make run left processes behind:\n%s", strings.Join(left, "\n"))
	}
}
