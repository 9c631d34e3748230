#!/usr/bin/env bash
# REAL_NODE=1 make run: one real node beside the simulated ones, on which pods
# run for real: containerd 2 and runc, the CNI bridge plugin, kubelet and
# kube-proxy (iptables mode), CoreDNS for the cluster's names, kube-router's
# network policy controller (NetworkPolicies enforced), and a local image
# registry the node pulls from. Every binary comes from the Go module
# proxy (hack/build-tools.sh) or from Debian's packages; hack/real-node-down.sh
# undoes all of it (`make down` calls it).
#
# The node is named crm-real-node, lives in region eu-central-1 and is tainted
# crm.crmops.io/real-node=true:NoSchedule: only pods that tolerate it land
# there (the chart's operator and, through manager.podTolerations, the pods
# it creates). Its address, 10.250.0.1, is on the loopback interface, routed
# on this machine only: kubelet's port, CoreDNS, the API server and the test
# S3 server listen there, never on an outward interface. Settings and why:
# docs/contributing/real-node.md#how-the-node-is-set-up-and-why.
#
#   KUBECONFIG      the cluster's admin kubeconfig (required)
#   LOCAL_DIR       where pids, logs and configuration go (bin/local)
#   REGISTRY_PORT   the registry's port on 127.0.0.1 (5001)
#
# `hack/real-node-up.sh address` only saves the machine's settings and adds
# the node's address: hack/local-up.sh does that before it starts the API
# server, which serves pods there. `hack/real-node-up.sh prepare` only builds
# what the node needs (Debian packages, tools, images in the registry's
# cache) and stops: make test-real runs it before the test's timeout starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-1.37.2}
dir=${LOCAL_DIR:-$root/bin/local}/real-node
what=${1:-all}
case $what in address | prepare) ;; *) kubeconfig=${KUBECONFIG:?the cluster\'s kubeconfig} ;; esac
REGISTRY_PORT=${REGISTRY_PORT:-5001}
cache=${CRM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm-operator}
# Fixed, machine-wide: one real node per machine (one bridge, one set of rules).
state=/var/lib/crm-local
run=/run/crm-local
node=crm-real-node
node_ip=10.250.0.1
pod_cidr=10.88.0.0/16
bin=$root/bin
kubectl=$bin/k8s/$K8S_VERSION/kubectl
mkdir -p "$dir"
# The node's own directories mark a running node: prepare makes none.
if [ "$what" != prepare ]; then
	if [ -f "$run/owner" ] && [ "$(cat "$run/owner")" != "$dir" ]; then
		echo "a real node of $(cat "$run/owner") runs on this machine: stop it with LOCAL_DIR=$(dirname "$(cat "$run/owner")") make down" >&2
		exit 1
	fi
	mkdir -p "$state" "$run"
	echo "$dir" >"$run/owner"
fi
t0=$SECONDS
step() { printf '[real-node %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
# start NAME CMD...: runs CMD in the background unless it runs already.
start() {
	local name=$1
	shift
	if alive "$name"; then return; fi
	nohup "$@" >"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
}
wait_for() { # WHAT SECONDS CMD...
	local what=$1 secs=$2
	shift 2
	for _ in $(seq 1 $((secs * 2))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	echo "real node: $what did not come up in ${secs}s; logs in $dir" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || { echo "REAL_NODE=1 needs root (containerd, kubelet, iptables)" >&2; exit 1; }
# packages: the Debian packages the node needs.
packages() {
	local missing=() pkgs
	for c in runc iptables nft conntrack ip ipset mmdebstrap gcc; do command -v "$c" >/dev/null || missing+=("$c"); done
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	if [ ${#missing[@]} -gt 0 ]; then
		pkgs=$(printf '%s\n' "${missing[@]}" | sed -e 's/^ip$/iproute2/' -e 's/^nft$/nftables/' | sort -u | tr '\n' ' ')
		step "Debian packages: $pkgs"
		apt-get update -qq
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs >/dev/null
	fi
}

# address: the saved settings, the node's address.
address() {
	local key d
	# What kubelet and the bridge plugin change on the machine, restored by
	# real-node-down.sh: saved once, so a second `up` does not save its own values.
	if [ ! -f "$dir/sysctls" ]; then
		for key in kernel.panic kernel.panic_on_oops vm.overcommit_memory net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables; do
			echo "$key=$(sysctl -n "$key")"
		done >"$dir/sysctls"
		# The netfilter tables (iptables-nft makes them): those that were not
		# here are removed, the others keep their rules but ours.
		nft list tables >"$dir/nft-tables"
	fi
	# Directories kubelet and containerd write outside their own roots, removed by
	# real-node-down.sh when they were not there before.
	for d in /var/lib/kubelet /var/lib/cni /var/log/containers /var/log/pods; do
		[ -e "$d" ] || grep -qx "$d" "$dir/created" 2>/dev/null || echo "$d" >>"$dir/created"
	done
	# The node's address, on loopback (these kernels have no dummy interfaces):
	# routed on this machine only.
	[ -n "$(ip -4 -o addr show dev lo to "$node_ip/32")" ] || ip addr add "$node_ip/32" dev lo label lo:crm-node
	# Services answer pods on the same bridge only when bridged traffic passes iptables.
	sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
}
packages
if [ "$what" = prepare ]; then
	step "tools: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok (built once per machine, then cached)"
	"$root/hack/build-tools.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm 2>&1 | sed 's/^/          /'
else
	address
fi
[ "$what" = address ] && exit 0
step "tools: containerd, kubelet, kube-proxy, CoreDNS, registry, crane, mailpit, kube-router (built once per machine, then cached)"
"$root/hack/build-tools.sh" containerd kubelet kube-proxy coredns registry crane mailpit kube-router 2>&1 | sed 's/^/          /'

# The registry keeps its blobs in the tools cache: images built once are
# pushed once per machine (hack/real-node-images.sh skips what is there).
mkdir -p "$cache/registry-data"
cat >"$dir/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $cache/registry-data}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
start registry env OTEL_TRACES_EXPORTER=none "$bin/registry" serve "$dir/registry.yml"
wait_for registry 20 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
step "registry: http://127.0.0.1:$REGISTRY_PORT (CNCF distribution)"

# The pause image, the images of the tests and the operator's image.
REGISTRY=127.0.0.1:$REGISTRY_PORT "$root/hack/real-node-images.sh" 2>&1 | sed 's/^/          /'
if [ "$what" = prepare ]; then
	kill "$(cat "$dir/registry.pid")" 2>/dev/null || true
	rm -f "$dir/registry.pid"
	step "prepared: tools built, images in the registry's cache"
	exit 0
fi

mkdir -p "$run/containerd" "$state/containerd" "$dir/cni" "$dir/certs.d/127.0.0.1:$REGISTRY_PORT"
cat >"$dir/certs.d/127.0.0.1:$REGISTRY_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REGISTRY_PORT"
[host."http://127.0.0.1:$REGISTRY_PORT"]
  capabilities = ["pull", "resolve"]
EOF
cat >"$dir/cni/10-crm-local.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "crm-local",
  "plugins": [
    {"type": "bridge", "bridge": "crm-cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$state/cni"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
cat >"$dir/containerd.toml" <<EOF
version = 3
root = "$state/containerd"
state = "$run/containerd/state"
[grpc]
  address = "$run/containerd/containerd.sock"
[ttrpc]
  address = "$run/containerd/containerd.sock.ttrpc"
[plugins.'io.containerd.cri.v1.runtime']
  # This VM withholds CAP_SYS_RESOURCE: without it every sandbox fails
  # ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  # Products listen on ports below 1024 as non-root users (EspoCRM on 80).
  enable_unprivileged_ports = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$dir/cni"
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$(sed -n "s/^pause=//p" "$dir/images")"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "$dir/certs.d"
EOF
# containerd finds its shim on the PATH.
start containerd env PATH="$bin:$PATH" "$bin/containerd" --config "$dir/containerd.toml"
wait_for containerd 30 "$bin/ctr" --address "$run/containerd/containerd.sock" version
step "containerd: $("$bin/ctr" --address "$run/containerd/containerd.sock" version 2>/dev/null | awk '/Server/{s=1} s && /Version/{print $2; exit}'), runc $(runc --version | awk 'NR==1{print $3}')"

# kubelet and kube-proxy talk to the API server with the cluster's admin
# credentials: this is a local development cluster (docs/operator-guide/security.md).
cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
# Anonymous and unauthorized on an address only this machine routes: the API
# server reaches it for logs and exec without a client certificate.
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
# These hosts are cgroup v1 (hybrid); kubelet refuses that by default since 1.35.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
# The images come from a local registry: never collect them.
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
clusterDNS: [$node_ip]
clusterDomain: cluster.local
containerRuntimeEndpoint: unix://$run/containerd/containerd.sock
registerWithTaints: [{key: crm.crmops.io/real-node, value: "true", effect: NoSchedule}]
serializeImagePulls: false
maxPods: 60
podLogsDir: $state/pod-logs
EOF
mkdir -p "$state/kubelet"
start kubelet "$bin/k8s/$K8S_VERSION/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$kubeconfig" \
	--hostname-override "$node" --node-ip "$node_ip" --root-dir "$state/kubelet" \
	--node-labels "crm.crmops.io/real-node=true,topology.kubernetes.io/region=eu-central-1,topology.kubernetes.io/zone=eu-central-1r"
wait_for "kubelet's node" 60 "$kubectl" --kubeconfig "$kubeconfig" get node "$node"

# kube-proxy exits when its configuration file changes: written only when new.
cat >"$dir/kube-proxy.yaml.new" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
clusterCIDR: $pod_cidr
hostnameOverride: $node
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the kernel's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0}
iptables: {localhostNodePorts: false}
EOF
cmp -s "$dir/kube-proxy.yaml.new" "$dir/kube-proxy.yaml" || mv "$dir/kube-proxy.yaml.new" "$dir/kube-proxy.yaml"
rm -f "$dir/kube-proxy.yaml.new"
start kube-proxy "$bin/k8s/$K8S_VERSION/kube-proxy" --config "$dir/kube-proxy.yaml"

cat >"$dir/Corefile" <<EOF
.:53 {
    bind $node_ip
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $kubeconfig
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 10
}
EOF
start coredns "$bin/coredns" -conf "$dir/Corefile"
"$kubectl" --kubeconfig "$kubeconfig" wait --for=condition=Ready "node/$node" --timeout=120s >/dev/null
step "node: $node ready at $node_ip (kubelet v$K8S_VERSION, kube-proxy iptables, CoreDNS $node_ip:53, pods in $pod_cidr)"

# NetworkPolicies are enforced on the node: kube-router's network policy
# controller alone (iptables and ipsets; no routing, service proxy or CNI of
# its own), a process like kube-proxy. Its KUBE- chains go with the others
# at make down, its ipsets with the ones that were not there before.
[ -f "$dir/ipsets" ] || ipset list -n >"$dir/ipsets"
start kube-router "$bin/kube-router" --kubeconfig "$kubeconfig" --hostname-override "$node" \
	--run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
	--enable-cni=false --enable-pod-egress=false --health-port=0 --metrics-port=0
wait_for "kube-router's firewall chains" 60 iptables -S KUBE-ROUTER-FORWARD
step "network policies: enforced by kube-router $(basename "$(dirname "$(readlink -f "$bin/kube-router")")") (iptables, ipset)"
