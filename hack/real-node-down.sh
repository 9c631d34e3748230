#!/usr/bin/env bash
# Undoes hack/real-node-up.sh completely: the node's processes by PID, every
# container (their shims, mounts and cgroups), the rules kubelet, kube-proxy
# and the CNI plugins wrote, the bridge and the node's address, and
# the sysctls as they were before. Safe to run twice, and after a crash.
# --keep-address leaves the node's address (and the settings) for a second
# run: the API server listens there until it has stopped.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOCAL_DIR:-$root/bin/local}/real-node
state=/var/lib/crm-local
run=/run/crm-local
[ -d "$dir" ] || [ -d "$run" ] || exit 0
# One real node per machine, owned by the LOCAL_DIR that started it: another
# cluster's make down (the e2e suite's, the faults suite's) leaves it alone.
[ ! -f "$run/owner" ] || [ "$(cat "$run/owner")" = "$dir" ] || exit 0

# shellcheck source=hack/lib/stop.sh
. "$root/hack/lib/stop.sh"
for name in kubelet kube-proxy kube-router coredns; do stop "$dir" "$name" 10; done

# The containers: their shims are started by our containerd (its socket on
# their command line); killing a shim ends its container's processes.
shims=$(pgrep -f "containerd-shim-runc-v2 .*-address $run/containerd/containerd.sock" || true)
if [ -n "$shims" ]; then
	for pid in $shims; do
		# The container processes first: a shim killed first leaves them behind.
		for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null; done
	done
	sleep 0.5
	# shellcheck disable=SC2086
	kill -KILL $shims 2>/dev/null
	echo "stopped $(wc -w <<<"$shims") container shims"
fi
stop "$dir" containerd 10
stop "$dir" registry 10

# Mounts below the node's directories (overlays, netns, volumes, tokens), deepest first.
awk -v s="$state/" -v r="$run/" '$2 ~ "^"s || $2 ~ "^"r {print $2}' /proc/self/mounts | sort -r | while read -r m; do
	umount -l "$m" 2>/dev/null
done
# cgroups kubelet and runc made (cgroup v1 hierarchies: kubepods below each).
for hierarchy in /sys/fs/cgroup/*/; do
	[ -d "$hierarchy/kubepods" ] || continue
	find "$hierarchy/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null
done
# kubelet's, kube-proxy's and the CNI plugins' rules, every table.
for save in iptables-save ip6tables-save; do
	command -v "$save" >/dev/null || continue
	restore=${save%-save}-restore
	if "$save" | grep -E 'KUBE-|CNI-' >/dev/null; then
		"$save" | grep -vE 'KUBE-|CNI-' | "$restore"
		echo "removed the KUBE-/CNI- rules ($save)"
	fi
done
if [ -f "$dir/nft-tables" ] && command -v nft >/dev/null; then
	nft list tables | grep -vxF -f "$dir/nft-tables" | while read -r _ family name; do
		nft delete table "$family" "$name" && echo "removed the netfilter table $family $name"
	done
	rm -f "$dir/nft-tables"
fi
# kube-router's ipsets, once no rule refers to them.
if [ -f "$dir/ipsets" ] && command -v ipset >/dev/null; then
	ipset list -n | grep -vxF -f "$dir/ipsets" | while read -r set; do ipset destroy "$set"; done
	echo "removed kube-router's ipsets"
	rm -f "$dir/ipsets"
fi
ip link del crm-cni0 2>/dev/null && echo "removed the bridge crm-cni0"
if [ "${1:-}" = --keep-address ]; then
	exit 0
fi
ip addr del 10.250.0.1/32 dev lo 2>/dev/null && echo "removed the node's address 10.250.0.1 from lo"
if [ -f "$dir/sysctls" ]; then
	while IFS='=' read -r key value; do sysctl -qw "$key=$value"; done <"$dir/sysctls"
	rm -f "$dir/sysctls"
	echo "restored the sysctls (kernel.panic, kernel.panic_on_oops, vm.overcommit_memory, ip_forward, bridge-nf-call-iptables)"
fi
# The node's state; the volumes below $state/volumes hold the databases of
# the stopped cluster, whose etcd is gone with it: nothing refers to them.
rm -rf "$run" "$state"
find /var/log/containers -lname "$state/*" -delete 2>/dev/null
if [ -f "$dir/created" ]; then
	xargs -r rm -rf <"$dir/created"
	rm -f "$dir/created"
fi
echo "removed $state, $run and what kubelet made outside them"
