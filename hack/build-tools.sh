#!/usr/bin/env bash
# Builds the binaries the tests and the local cluster need from the Go module
# proxy, since no download site (setup-envtest, GitHub releases) is reachable.
#
#   hack/build-tools.sh kube-apiserver etcd controller-gen ...
#
# Each binary is built once into a per-user cache keyed by version
# ($CRM_TOOLS_CACHE, default ~/.cache/crm-operator) and linked into bin/, so a
# fresh clone on the same machine reuses it. A new machine spends about 15-20
# minutes here once (kube-apiserver alone is ~11 minutes and 2.8 GB of RAM).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CRM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm-operator}
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.23.0}
VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
# make test's runner: the packages' results, then one line counting the tests
# that ran and were skipped.
GOTESTSUM_VERSION=${GOTESTSUM_VERSION:-v1.13.0}
# The real node of the local cluster (REAL_NODE=1): container runtime, cluster
# DNS, image registry and image tool.
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.3.7}
COREDNS_VERSION=${COREDNS_VERSION:-v1.14.7}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
# The mail catcher of test environments on the real node (the operator's
# default image is docker.io/axllent/mailpit of this version).
MAILPIT_VERSION=${MAILPIT_VERSION:-v1.30.5}
# NetworkPolicy enforcement on the real node: kube-router's firewall alone
# (iptables and ipset). The only version the Go module proxy serves here;
# security flaws are reported for it, and it runs only on the local test
# node, with its router, service proxy and CNI off. kube-network-policies
# (SIG Network) needs the nftables queue expression, which these kernels lack.
KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}
export GOFLAGS=${GOFLAGS:--buildvcs=false}

k8s_bin=$root/bin/k8s/$K8S_VERSION
mkdir -p "$k8s_bin" "$root/bin"

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# build NAME DEST CMD...: runs CMD (which writes DEST) unless DEST exists,
# saying how long the last build of NAME took on this machine and, every
# 30 s, that it still builds.
build() {
	local name=$1 dest=$2
	shift 2
	if [ -x "$dest" ]; then
		log "$name: cached ($dest)"
		return
	fi
	mkdir -p "$(dirname "$dest")" "$cache/.build-seconds"
	local last=$cache/.build-seconds/${name%% *}
	if [ -s "$last" ]; then
		log "$name: building (its last build here took $(cat "$last")s)"
	else
		log "$name: building (first time on this machine; this takes minutes)"
	fi
	local start=$SECONDS tmp="$dest.tmp.$$"
	(while sleep 30 </dev/null >/dev/null 2>&1; do log "$name: still building ($((SECONDS - start))s)"; done) &
	local ticker=$!
	"$@" "$tmp" || { kill "$ticker" 2>/dev/null; return 1; }
	kill "$ticker" 2>/dev/null
	mv -f "$tmp" "$dest"
	echo "$((SECONDS - start))" >"$last"
	log "$name: built in $((SECONDS - start))s"
}

k8s_ldflags() {
	local major=${K8S_VERSION%%.*} rest=${K8S_VERSION#*.}
	local minor=${rest%%.*} flags="-s -w"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	printf '%s' "$flags"
}

go_build_k8s() { # CMD OUT
	(cd "$root/hack/tools/k8s" && go build -trimpath -ldflags "$(k8s_ldflags)" -o "$2" "k8s.io/kubernetes/cmd/$1")
}
go_build_etcd() { # OUT
	(cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$1" go.etcd.io/etcd/server/v3)
}
go_install() { # PACKAGE@VERSION OUT
	local gobin
	gobin=$(mktemp -d)
	GOBIN=$gobin go install "$1"
	mv "$gobin/$(basename "${1%@*}")" "$2"
	rmdir "$gobin"
}
go_install_controller_gen() { go_install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" "$1"; }
# versitygw serves S3 over a directory: the agent's tests use it as a real S3 server.
go_install_versitygw() { go_install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" "$1"; }

# kwok simulates nodes and pods for the local cluster (`make run`).
go_install_kwok() { go_install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "$1"; }
# helm renders and lints the chart in the tests.
go_install_helm() { go_install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$1"; }
# Linters and the vulnerability scanner of `make lint` / `make vulncheck`.
go_install_golangci_lint() { go_install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION" "$1"; }
go_install_govulncheck() { go_install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" "$1"; }
go_install_gotestsum() { go_install "gotest.tools/gotestsum@$GOTESTSUM_VERSION" "$1"; }

# containerd, its runc shim and ctr, static (no cgo), without the snapshotters
# that need C libraries; runc itself is Debian's.
go_install_containerd() { # OUT (a directory)
	mkdir -p "$1"
	GOBIN=$1 CGO_ENABLED=0 go install -tags no_btrfs,no_devmapper,no_zfs \
		"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
		"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
}
go_install_coredns() { CGO_ENABLED=0 go_install "github.com/coredns/coredns@$COREDNS_VERSION" "$1"; }
# The CNCF distribution registry: the real node pulls images from it.
go_install_registry() { go_install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" "$1"; }
# crane (go-containerregistry) assembles and pushes images without a Docker engine.
# Without its web UI's bundle (built by npm, not in the module): the API and
# the SMTP server are whole.
go_install_mailpit() { CGO_ENABLED=0 go_install "github.com/axllent/mailpit@$MAILPIT_VERSION" "$1"; }
go_install_crane() { go_install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION" "$1"; }
go_install_kube_router() { CGO_ENABLED=0 go_install "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" "$1"; }

link() { # TARGET LINK
	ln -sfn "$1" "$2"
}

# go_tool NAME VERSION INSTALLER: one binary, cached as NAME/VERSION/NAME,
# linked as bin/NAME.
go_tool() {
	local dest=$cache/$1/$2/$1
	build "$1 $2" "$dest" "$3"
	link "$dest" "$root/bin/$1"
}

# one TOOL: builds (or finds) one tool and links it.
one() {
	local tool=$1 dest
	case $tool in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl | kubelet | kube-proxy)
		dest=$cache/k8s/$K8S_VERSION/$tool
		build "$tool v$K8S_VERSION" "$dest" go_build_k8s "$tool"
		link "$dest" "$k8s_bin/$tool"
		;;
	etcd)
		dest=$cache/etcd/$ETCD_VERSION/etcd
		build "etcd v$ETCD_VERSION" "$dest" go_build_etcd
		link "$dest" "$k8s_bin/etcd"
		;;
	controller-gen) go_tool controller-gen "$CONTROLLER_TOOLS_VERSION" go_install_controller_gen ;;
	versitygw) go_tool versitygw "$VERSITYGW_VERSION" go_install_versitygw ;;
	kwok) go_tool kwok "$KWOK_VERSION" go_install_kwok ;;
	helm) go_tool helm "$HELM_VERSION" go_install_helm ;;
	golangci-lint) go_tool golangci-lint "$GOLANGCI_LINT_VERSION" go_install_golangci_lint ;;
	govulncheck) go_tool govulncheck "$GOVULNCHECK_VERSION" go_install_govulncheck ;;
	gotestsum) go_tool gotestsum "$GOTESTSUM_VERSION" go_install_gotestsum ;;
	containerd)
		dest=$cache/containerd/$CONTAINERD_VERSION
		build "containerd $CONTAINERD_VERSION" "$dest" go_install_containerd # a directory of three
		for b in containerd containerd-shim-runc-v2 ctr; do link "$dest/$b" "$root/bin/$b"; done
		;;
	coredns) go_tool coredns "$COREDNS_VERSION" go_install_coredns ;;
	registry) go_tool registry "$REGISTRY_VERSION" go_install_registry ;;
	mailpit) go_tool mailpit "$MAILPIT_VERSION" go_install_mailpit ;;
	crane) go_tool crane "$CRANE_VERSION" go_install_crane ;;
	kube-router) go_tool kube-router "$KUBE_ROUTER_VERSION" go_install_kube_router ;;
	*)
		log "unknown tool: $tool"
		return 2
		;;
	esac
}

# The tools build side by side, BUILD_JOBS at a time (the machine's cores).
jobs=${BUILD_JOBS:-$(nproc)}
failed=0
running=0
for tool in "$@"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
	one "$tool" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
exit "$failed"
