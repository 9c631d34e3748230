// Command localcluster runs etcd and kube-apiserver on loopback (through
// controller-runtime's envtest control plane, with the binaries hack/ built),
// installs the crm.crmops.io CRDs, writes an admin kubeconfig and runs until
// it receives SIGINT or SIGTERM. `make run` starts it; `make down` stops it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	var (
		kubeconfig = flag.String("write-kubeconfig", "bin/local/kubeconfig", "Where to write the admin kubeconfig.")
		crds       = flag.String("crds", "config/crd/bases", "Directory of the CRDs to install.")
		assets     = flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory holding the etcd and kube-apiserver binaries.")
	)
	flag.Parse()
	if err := run(*kubeconfig, *crds, *assets); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(kubeconfigPath, crdDir, assets string) error {
	start := time.Now()
	env := &envtest.Environment{
		CRDDirectoryPaths:        []string{crdDir},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	if _, err := env.Start(); err != nil {
		_ = env.Stop() // Start may fail after launching etcd and kube-apiserver
		return fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}
	stop := func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localcluster: stopping:", err)
		}
	}
	admin, err := env.AddUser(envtest.User{Name: "local-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		stop()
		return err
	}
	data, err := admin.KubeConfig()
	if err != nil {
		stop()
		return err
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfigPath), 0o755); err != nil {
		stop()
		return err
	}
	// Written last and atomically: its presence tells `make run` the cluster is up.
	tmp := kubeconfigPath + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		stop()
		return err
	}
	if err := os.Rename(tmp, kubeconfigPath); err != nil {
		stop()
		return err
	}
	fmt.Printf("control plane up in %s at %s; CRDs installed\n", time.Since(start).Round(100*time.Millisecond), env.Config.Host)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = os.Remove(kubeconfigPath)
	stop()
	return nil
}
