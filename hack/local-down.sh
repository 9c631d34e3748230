#!/usr/bin/env bash
# `make down`: stops what `make run` started, by PID, manager first; the
# local cluster stops its own components (kube-controller-manager,
# kube-scheduler, kwok, etcd, kube-apiserver) before it exits.
set -uo pipefail
dir=${LOCAL_DIR:-$(cd "$(dirname "$0")/.." && pwd)/bin/local}
stop() {
	local name=$1 pidfile=$dir/$1.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "stopped $name (pid $pid)"
	fi
	rm -f "$pidfile"
}
stop manager
# The real node (REAL_NODE=1): its processes and pods before the API server,
# the address the API server listens on after it.
LOCAL_DIR=$dir "$(dirname "$0")/real-node-down.sh" --keep-address
stop localcluster
LOCAL_DIR=$dir "$(dirname "$0")/real-node-down.sh"
