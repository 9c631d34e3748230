//go:build tools

// Package tools pins the Kubernetes commands that hack/build-tools.sh builds:
// the control plane for envtest and the local cluster, kubelet and kube-proxy
// for its real node (REAL_NODE=1).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
