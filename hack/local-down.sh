#!/usr/bin/env bash
# `make down`: stops what `make run` started, by PID, manager first; the
# local cluster stops its own components (kube-controller-manager,
# kube-scheduler, kwok, etcd, kube-apiserver) before it exits.
set -uo pipefail
dir=${LOCAL_DIR:-$(cd "$(dirname "$0")/.." && pwd)/bin/local}
for name in manager localcluster; do
	pidfile=$dir/$name.pid
	[ -f "$pidfile" ] || continue
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "stopped $name (pid $pid)"
	fi
	rm -f "$pidfile"
done
