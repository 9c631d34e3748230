//go:build real

package real

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmops/crm-operator/test/framework"
)

// restoreCompletes waits up to 5 minutes for Restore name in ns to
// complete, and fails t with its message when it fails.
func restoreCompletes(t *testing.T, ns, name string) {
	t.Helper()
	framework.Eventually(t, 5*time.Minute, "restore "+name+" completes", func() (bool, error) {
		phase := cluster.Get(t, ns, "restore/"+name, "{.status.phase}")
		if phase == "Failed" {
			t.Fatalf("restore %s failed: %s", name, cluster.Get(t, ns, "restore/"+name, "{.status.message}"))
		}
		return phase == "Completed", nil
	})
}

func apply(t *testing.T, manifest string) {
	t.Helper()
	// Not t.TempDir: a subtest's name has commas, which kubectl -f splits at.
	f, err := os.CreateTemp("", "crm-real-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(manifest); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	cluster.Must(t, kubectl, "apply", "-f", f.Name())
}

// image is a reference hack/real-node-images.sh pushed.
func image(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cluster.Dir, "real-node", "images"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k == name {
			return v
		}
	}
	t.Fatalf("no %s image in %s/real-node/images", name, cluster.Dir)
	return ""
}

// s3Server is versitygw serving a directory at the node's address.
type s3Server struct {
	dir, endpoint string
}

const s3Access, s3Secret = "crm-real", "crm-real-secret-key"

func startS3(t *testing.T) *s3Server {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "backups"), 0o755); err != nil { // a directory is a bucket
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", nodeAddress+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(filepath.Join(framework.Root, "bin", "versitygw"), "--port", addr, "--access", s3Access, "--secret", s3Secret, "posix", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	framework.Eventually(t, 30*time.Second, "the S3 server listens", func() (bool, error) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err == nil, err
	})
	return &s3Server{dir: dir, endpoint: "http://" + addr}
}

// object is the path of a stored object in the server's directory.
func (s *s3Server) object(key string) string { return filepath.Join(s.dir, "backups", key) }

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// killLeader kills the operator replica holding the leader lease: "SIGKILL"
// kills its process from this machine, anything else is kubectl delete's
// flags for its pod. Another replica must take over.
func killLeader(t *testing.T, how string) {
	t.Helper()
	holder := cluster.Get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}")
	pod, _, _ := strings.Cut(holder, "_")
	if how == "SIGKILL" {
		uid := cluster.Get(t, "crm-system", "pod/"+pod, "{.metadata.uid}")
		killed := 0
		for _, line := range framework.ProcessesMentioning("/manager") {
			field, _, _ := strings.Cut(line, ":")
			pid, err := strconv.Atoi(field)
			if err != nil {
				continue
			}
			cgroup, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if strings.Contains(string(cgroup), uid) || strings.Contains(string(cgroup), strings.ReplaceAll(uid, "-", "_")) {
				if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
					killed++
				}
			}
		}
		if killed == 0 {
			t.Fatalf("no manager process of the leader %s found", pod)
		}
		t.Logf("SIGKILLed the leader %s's manager", pod)
	} else {
		cluster.Must(t, kubectl, append([]string{"delete", "pod", pod, "-n", "crm-system"}, strings.Fields(how)...)...)
	}
	framework.Eventually(t, 2*time.Minute, "another replica leads", func() (bool, error) {
		h := cluster.Get(t, "crm-system", "lease/crm-operator.crmops.io", "{.spec.holderIdentity}")
		return h != "" && h != holder, nil
	})
}

// checkBackup compares a Backup with what the S3 server holds: the objects
// are there, the recorded checksum is the stored manifest's sha256, and
// crm-agent verify reads every object back against the manifest.
func checkBackup(t *testing.T, s3 *s3Server, agent string, p project, name string) {
	t.Helper()
	prefix := p.name + "/" + p.main + "/" + name
	if got := cluster.Get(t, p.name, "backup/"+name, "{.status.location}"); got != "s3://backups/"+prefix {
		t.Errorf("backup %s/%s location %q, want s3://backups/%s", p.name, name, got, prefix)
	}
	manifest := s3.object(prefix + "/manifest.json")
	if got, want := cluster.Get(t, p.name, "backup/"+name, "{.status.checksum}"), sha256File(t, manifest); got != want {
		t.Errorf("backup %s/%s checksum %s, the stored manifest's is %s", p.name, name, got, want)
	}
	dump, err := os.Stat(s3.object(prefix + "/database.sql.zst"))
	if err != nil || dump.Size() == 0 {
		t.Errorf("backup %s/%s: no database dump in the S3 server: %v", p.name, name, err)
	}
	cmd := exec.Command(agent, "verify", "--name", name, "--termination-log", "", "--s3-endpoint", s3.endpoint,
		"--s3-bucket", "backups", "--s3-prefix", p.name+"/"+p.main, "--s3-region", "us-east-1")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3Access, "AWS_SECRET_ACCESS_KEY="+s3Secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("crm-agent verify %s/%s: %v\n%s", p.name, name, err, out)
	}
}

// sysctls are the settings kubelet and the bridge plugin change.
func sysctls(t *testing.T) string {
	t.Helper()
	var values []string
	for _, key := range []string{"kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory", "net/ipv4/ip_forward"} {
		v, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, key+"="+strings.TrimSpace(string(v)))
	}
	return strings.Join(values, " ")
}

// down runs make down and checks that the machine is as before: no process
// of the cluster, no node state, no rules, no bridge, no node address.
func down(t *testing.T) {
	cluster.Down(t)
	if left := cluster.Processes(); len(left) > 0 {
		t.Errorf("make down left processes behind:\n%s", strings.Join(left, "\n"))
	}
	for _, path := range []string{"/run/crm-local", "/var/lib/crm-local"} {
		if _, err := os.Stat(path); err == nil {
			t.Errorf("make down left %s behind", path)
		}
	}
	if out, _ := exec.Command("iptables-save").Output(); strings.Contains(string(out), "KUBE-") {
		t.Error("make down left KUBE- rules behind")
	}
	if out, _ := exec.Command("ipset", "list", "-n").Output(); strings.Contains(string(out), "KUBE-") {
		t.Errorf("make down left kube-router's ipsets behind:\n%s", out)
	}
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), nodeAddress) || strings.Contains(string(out), "crm-cni0") {
		t.Errorf("make down left the node's address or bridge behind:\n%s", out)
	}
}
