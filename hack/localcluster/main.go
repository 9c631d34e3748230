// Command localcluster runs a small simulated Kubernetes cluster on loopback:
// etcd and kube-apiserver (through controller-runtime's envtest control plane,
// with the binaries hack/ built), and with --nodes also kube-controller-manager,
// kube-scheduler and kwok with simulated nodes in two regions on which pods
// become Running and Ready and Jobs complete. It installs the crm.crmops.io
// CRDs, writes an admin kubeconfig and runs until SIGINT or SIGTERM, then
// stops everything it started. `make run` starts it; `make down` stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Simulated nodes: kwok manages nodes with this annotation; the taint keeps
// real workloads off them, so the operator runs with a matching toleration.
const (
	kwokAnnotation = "kwok.x-k8s.io/node"
	kwokTaint      = "kwok.x-k8s.io/node"
	// localVolumeLabel marks the volumes provisionVolumes made.
	localVolumeLabel = "crm.crmops.io/local-volume"
)

// nodes of the local cluster: one per region, so that GDPR residency shows.
var nodes = []struct{ name, region, zone string }{
	{"kwok-eu-central-1a", "eu-central-1", "eu-central-1a"},
	{"kwok-eu-central-1b", "eu-central-1", "eu-central-1b"},
	{"kwok-us-east-1a", "us-east-1", "us-east-1a"},
}

func main() {
	var (
		kubeconfig = flag.String("write-kubeconfig", "bin/local/kubeconfig", "Where to write the admin kubeconfig.")
		crds       = flag.String("crds", "config/crd/bases", "Directory of the CRDs to install.")
		assets     = flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory holding etcd, kube-apiserver, kube-controller-manager and kube-scheduler.")
		withNodes  = flag.Bool("nodes", false, "Also run kube-controller-manager, kube-scheduler and kwok with simulated nodes.")
		kwok       = flag.String("kwok", "bin/kwok", "The kwok binary (with --nodes).")
		stages     = flag.String("kwok-stages", "", "Comma-separated kwok stage files (with --nodes).")
		logDir     = flag.String("log-dir", "bin/local", "Where the components log.")
		volumeDir  = flag.String("real-volumes", "", "With a real node: make each volume a directory below this one that any user can write (as local-path provisioners do), and remove it with its volume; empty: the volumes are never written (simulated pods).")
		serveAt    = flag.String("serve-to-pods", "", "With a real node: the address (of this machine, routed to pods) where the API server also serves pods, the kubernetes Service's endpoint; empty: loopback only.")
		authn      = flag.String("authentication-config", "", "The API server's AuthenticationConfiguration (make run: it trusts the local OpenID provider, for the portal); empty: none.")
		qps        = flag.Float64("component-qps", 200, "Client QPS of kube-controller-manager, kube-scheduler and the volume provisioner (burst twice that), and 16 workers per kube-controller-manager controller; 0 keeps their defaults (kube-controller-manager 20 QPS per controller and 5 workers, kube-scheduler 50, client-go 5). kwok sets no client limit of its own.")
	)
	flag.Parse()
	c := &cluster{authn: *authn, serveAt: *serveAt, volumeDir: *volumeDir, qps: *qps, kubeconfig: *kubeconfig, crds: *crds, assets: *assets, nodes: *withNodes, kwok: *kwok, logDir: *logDir}
	if *stages != "" {
		c.stages = strings.Split(*stages, ",")
	}
	if err := c.run(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

type cluster struct {
	qps                                    float64
	kubeconfig, crds, assets, kwok, logDir string
	volumeDir, serveAt, authn              string
	nodes                                  bool
	stages                                 []string
	env                                    *envtest.Environment
	procs                                  []*exec.Cmd
}

func (c *cluster) run() error {
	start := time.Now()
	c.env = &envtest.Environment{
		CRDDirectoryPaths:        []string{c.crds},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    c.assets,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// etcd's data and the API server's certificates below the log
	// directory: every process of the cluster names it, so that make down
	// finds one whose parent died before it could stop it.
	// Both begin empty: a start never reuses a previous cluster's data or CA.
	etcdData := filepath.Join(c.logDir, "etcd-data")
	if err := os.RemoveAll(etcdData); err != nil {
		return err
	}
	c.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdData}
	if c.serveAt == "" {
		certDir := filepath.Join(c.logDir, "apiserver-certs")
		if err := os.RemoveAll(certDir); err != nil {
			return err
		}
		if err := os.MkdirAll(certDir, 0o700); err != nil {
			return err
		}
		c.env.ControlPlane.GetAPIServer().CertDir = certDir
	}
	// Room for thousands of Services (envtest's default range has 254 addresses).
	apiServer := c.env.ControlPlane.GetAPIServer().Configure()
	apiServer.Set("service-cluster-ip-range", "10.96.0.0/12")
	// A real node's name does not resolve: logs and exec dial its address.
	apiServer.Set("kubelet-preferred-address-types", "InternalIP,Hostname")
	if c.authn != "" {
		apiServer.Set("authentication-config", c.authn)
	}
	if c.serveAt != "" {
		if err := serveToPods(c.env, c.serveAt, filepath.Join(c.logDir, "apiserver-certs")); err != nil {
			return err
		}
	}
	if _, err := c.env.Start(); err != nil {
		_ = c.env.Stop() // Start may fail after launching etcd and kube-apiserver
		return fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	defer c.stop()
	admin, err := c.env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.kubeconfig), 0o755); err != nil {
		return err
	}
	// The components use a copy: the user's kubeconfig is the readiness signal.
	componentConfig := filepath.Join(c.logDir, "components.kubeconfig")
	if err := os.WriteFile(componentConfig, data, 0o600); err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	if c.nodes {
		// client-go's default limit (QPS 5) would make the volume provisioner
		// the slowest part of the cluster: one volume per database.
		cfg := rest.CopyConfig(admin.Config())
		if c.qps > 0 {
			cfg.QPS, cfg.Burst = float32(c.qps), int(2*c.qps)
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return err
		}
		if err := c.startNodes(ctx, cs, componentConfig); err != nil {
			return err
		}
	}
	// Written last and atomically: its presence tells `make run` the cluster is up.
	tmp := c.kubeconfig + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.kubeconfig); err != nil {
		return err
	}
	what := "etcd, kube-apiserver"
	if c.nodes {
		what += fmt.Sprintf(", kube-controller-manager, kube-scheduler, kwok with %d simulated nodes", len(nodes))
	}
	fmt.Printf("cluster up in %s at %s: %s; CRDs installed\n", time.Since(start).Round(100*time.Millisecond), c.env.Config.Host, what)
	<-ctx.Done()
	_ = os.Remove(c.kubeconfig)
	return nil
}

// startNodes runs the components that make pods run on simulated nodes.
func (c *cluster) startNodes(ctx context.Context, cs kubernetes.Interface, kubeconfig string) error {
	bin := func(name string) string { return filepath.Join(c.assets, name) }
	controllerManager := []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
		// Simulated nodes go NotReady without leases; the grace period matches kwok's lease.
		"--node-monitor-grace-period=50s",
		"--controllers=*,-node-ipam-controller,-persistentvolume-expander-controller,-horizontal-pod-autoscaler-controller",
	}
	scheduler := []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig,
		"--leader-elect=false", "--secure-port=0"}
	if c.qps > 0 {
		// With their defaults the components, not the API server, set the
		// pace: kube-controller-manager's StatefulSet controller (20 QPS, 5
		// workers) started about 4 databases a second, and every benchmark
		// measured that instead of the operator or helm. kwokctl lifts the
		// same limits (--disable-qps-limits).
		limits := []string{fmt.Sprintf("--kube-api-qps=%g", c.qps), fmt.Sprintf("--kube-api-burst=%d", int(2*c.qps))}
		controllerManager = append(controllerManager, limits...)
		controllerManager = append(controllerManager, "--concurrent-statefulset-syncs=16", "--concurrent-deployment-syncs=16",
			"--concurrent-replicaset-syncs=16", "--concurrent-job-syncs=16")
		scheduler = append(scheduler, limits...)
	}
	if err := c.spawn("kube-controller-manager", bin("kube-controller-manager"), controllerManager...); err != nil {
		return err
	}
	if err := c.spawn("kube-scheduler", bin("kube-scheduler"), scheduler...); err != nil {
		return err
	}
	if len(c.stages) == 0 {
		return errors.New("--nodes needs --kwok-stages (kwok has no stages of its own)")
	}
	args := []string{"--kubeconfig=" + kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
		// Without leases the heartbeat stage fires every 600 s and the nodes go NotReady.
		"--node-lease-duration-seconds=40", "--server-address=", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1"}
	for _, s := range c.stages {
		if _, err := os.Stat(s); err != nil {
			return fmt.Errorf("kwok stage file: %w", err)
		}
		args = append(args, "--config="+s)
	}
	if err := c.spawn("kwok", c.kwok, args...); err != nil {
		return err
	}
	for _, n := range nodes {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        n.name,
				Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
					"type": "kwok", corev1.LabelTopologyRegion: n.region, corev1.LabelTopologyZone: n.zone,
				},
			},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: kwokTaint, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{
				Capacity: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("4000"), corev1.ResourceMemory: resource.MustParse("16Ti"), corev1.ResourcePods: resource.MustParse("10000"),
				},
				Allocatable: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("4000"), corev1.ResourceMemory: resource.MustParse("16Ti"), corev1.ResourcePods: resource.MustParse("10000"),
				},
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating node %s: %w", n.name, err)
		}
	}
	go provisionVolumes(ctx, cs, c.volumeDir)
	return nil
}

// provisionVolumes stands in for a storage provisioner, which the local
// cluster lacks: every pending claim gets a pre-bound hostPath volume with
// reclaim policy Delete, as dynamic provisioners give, and released volumes
// with that policy are deleted (one switched to Retain, as the operator does
// for retained data, stays). With realDir (a real node) the volume is a
// directory there that the pods' non-root users can write (hostPath volumes
// ignore fsGroup), removed with its volume; without, pods are simulated and
// nothing is written. It reacts to watch events: a poll once a second put up
// to a second before every database pod's start.
func provisionVolumes(ctx context.Context, cs kubernetes.Interface, realDir string) {
	volumePath := func(uid string) string { return "/var/lib/crm-local/" + uid }
	if realDir != "" {
		volumePath = func(uid string) string { return filepath.Join(realDir, uid) }
	}
	factory := informers.NewSharedInformerFactory(cs, 10*time.Minute)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	volumes := factory.Core().V1().PersistentVolumes().Informer()
	onClaim := func(obj any) {
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok || pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil {
			return
		}
		path := volumePath(string(pvc.UID))
		if realDir != "" {
			// 0777 after MkdirAll: the umask would narrow it.
			if err := os.MkdirAll(path, 0o700); err != nil {
				fmt.Fprintln(os.Stderr, "localcluster: volume for", pvc.Namespace+"/"+pvc.Name+":", err)
				return
			}
			if err := os.Chmod(path, 0o777); err != nil { //nolint:gosec // any pod user writes its volume, as with local-path provisioners
				fmt.Fprintln(os.Stderr, "localcluster: volume for", pvc.Namespace+"/"+pvc.Name+":", err)
				return
			}
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "local-" + string(pvc.UID), Labels: map[string]string{localVolumeLabel: "true"}},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]},
				AccessModes:                   pvc.Spec.AccessModes,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName:              ptrValue(pvc.Spec.StorageClassName),
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
					Path: path,
				}},
			},
		}
		if _, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			fmt.Fprintln(os.Stderr, "localcluster: volume for", pvc.Namespace+"/"+pvc.Name+":", err)
		}
	}
	onVolume := func(obj any) {
		pv, ok := obj.(*corev1.PersistentVolume)
		if ok && pv.Labels[localVolumeLabel] == "true" && pv.Status.Phase == corev1.VolumeReleased && pv.DeletionTimestamp == nil &&
			pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete {
			if err := cs.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{}); err == nil && realDir != "" &&
				pv.Spec.HostPath != nil && filepath.Dir(pv.Spec.HostPath.Path) == filepath.Clean(realDir) {
				_ = os.RemoveAll(pv.Spec.HostPath.Path)
			}
		}
	}
	// The informers' resync (10 minutes) retries a create or delete that failed.
	for _, h := range []struct {
		informer cache.SharedIndexInformer
		handle   func(any)
	}{{claims, onClaim}, {volumes, onVolume}} {
		handle := h.handle
		if _, err := h.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: handle, UpdateFunc: func(_, obj any) { handle(obj) },
		}); err != nil {
			fmt.Fprintln(os.Stderr, "localcluster: volume provisioner:", err)
			return
		}
	}
	factory.Start(ctx.Done())
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// spawn starts a component that dies with this process, logging to logDir.
func (c *cluster) spawn(name, path string, args ...string) error {
	logFile, err := os.Create(filepath.Join(c.logDir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Even a SIGKILLed localcluster leaves no component behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	go func() {
		_ = cmd.Wait()
		logFile.Close()
	}()
	return nil
}

// stop ends the components in reverse order, then the control plane.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i].Process
		_ = p.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			for p.Signal(syscall.Signal(0)) == nil {
				time.Sleep(100 * time.Millisecond)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Kill()
		}
	}
	if err := c.env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster: stopping:", err)
	}
	// envtest keeps a data directory it was given: the next start begins empty.
	_ = os.RemoveAll(filepath.Join(c.logDir, "etcd-data"))
}
