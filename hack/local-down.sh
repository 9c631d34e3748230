#!/usr/bin/env bash
# `make down`: stops what `make run` started, whatever state it is in: a
# `make run` still running first (and what it was starting), then by PID,
# manager first; the local cluster stops its own components
# (kube-controller-manager, kube-scheduler, kwok, etcd, kube-apiserver)
# before it exits; last, any process still naming the directory.
set -uo pipefail
dir=${LOCAL_DIR:-$(cd "$(dirname "$0")/.." && pwd)/bin/local}
# shellcheck source=hack/lib/stop.sh
. "$(dirname "$0")/lib/stop.sh"
stop_tree "$dir" up
stop "$dir" portal 10
stop "$dir" manager 30
# The real node (REAL_NODE=1): its processes and pods before the API server,
# the address the API server listens on after it.
LOCAL_DIR=$dir "$(dirname "$0")/real-node-down.sh" --keep-address
stop "$dir" localcluster 30
stop "$dir" dev-idp 10
LOCAL_DIR=$dir "$(dirname "$0")/real-node-down.sh"
# Whatever `make run`'s state was: nothing that names its directory is left.
root=$(cd "$(dirname "$0")/.." && pwd)
sweep "$dir" "$root/bin" "$(readlink -f "${CRM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crm-operator}")"
