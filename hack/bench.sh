#!/usr/bin/env bash
# `make bench`: the operator against a plain client and a helm loop on the
# local simulated cluster, one fresh cluster per size.
#
#   BENCH_N="100"            sizes in projects (2 environments each); several
#                            sizes ("100 300 1000") also report growth
#   BENCH_IDLE=2m            how long the idle operator is watched
#   BENCH_MANAGER_ARGS=...   extra operator flags, to measure a tuning step
#                            ("--kube-api-qps=20 --kube-api-burst=30",
#                            "--concurrency=1", "--cache-everything")
#   BENCH_ONLY_CONVERGENCE=1 skip the helm loop and the promotions
#   BENCH_WORKERS=32         workers of the lower bound (match the operator's
#                            --concurrency); the parallel helm loop runs 8
#   BENCH_SKIP_HELM=1        skip the helm loop
#   BENCH_SKIP_LOWER_BOUND=1 the operator's figures only (footprint at N=1000)
#   BENCH_PAIRS=2            convergence runs of the lower bound and of the
#                            operator each, in the order A B B A; 1: one each
#   BENCH_GOMEMLIMIT=150MiB  the operator's soft memory limit (the chart sets
#                            GOMEMLIMIT from the container's memory limit)
#   CLUSTER_QPS=200          client QPS of the simulated cluster's controller
#                            manager and scheduler; 0 keeps their defaults,
#                            which set the pace of every measure (docs/performance.md)
#   BENCH_PPROF=1            save the operator's heap profile after the idle
#                            window: bin/bench/heap-<N>.pprof
# Figures: the table printed, and bin/bench/results.json.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
sizes=${BENCH_N:-100}
idle=${BENCH_IDLE:-2m}
mkdir -p bin/bench
rm -f bin/bench/results.json
hack/build-tools.sh helm >/dev/null 2>&1
go build -o bin/bench/bench ./test/bench
first=1
for n in ${sizes//,/ }; do
	dir=$root/bin/bench/cluster-$n
	export LOCAL_DIR=$dir METRICS_PORT=18280 PROBE_PORT=18281 WEBHOOK_PORT=19643
	trap 'hack/local-down.sh >/dev/null' EXIT
	rm -rf "$dir" bin/bench/work
	pprof=()
	[ -z "${BENCH_PPROF:-}" ] || pprof=(-pprof-url http://127.0.0.1:18282)
	# The bench build of the operator has the flags that only measure (--cache-everything).
	export DEMO=0 MANAGER_GOMEMLIMIT=${BENCH_GOMEMLIMIT:-} MANAGER_BUILD_TAGS=bench
	args="${BENCH_PPROF:+--pprof-bind-address=127.0.0.1:18282} ${BENCH_MANAGER_ARGS:-}"
	MANAGER_ARGS="$args" hack/local-up.sh | grep -E '^\[run' || { tail -n 30 "$dir/manager.log"; exit 1; }
	# The timed windows run with the default resync period (10h); the restart
	# and idle measures come last, after a restart with a short resync period
	# (the bench sets BENCH_SYNC_PERIOD to a third of the idle window), so the
	# idle window sees every object reconciled again and no resync lands in a
	# timed window.
	export RESTART_MANAGER_ARGS=$args
	restart='set -o pipefail; pid=$(cat "$LOCAL_DIR/manager.pid"); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		MANAGER_ARGS="--sync-period=$BENCH_SYNC_PERIOD $RESTART_MANAGER_ARGS" hack/local-up.sh | grep -E "^\[run" >&2'
	extra=()
	[ $first = 1 ] && [ -z "${BENCH_ONLY_CONVERGENCE:-}" ] || extra=(-helm-n 0 -promotions 0)
	[ -z "${BENCH_SKIP_HELM:-}" ] || extra+=(-helm-n 0)
	[ -z "${BENCH_SKIP_LOWER_BOUND:-}" ] || extra+=(-lower-bound=false)
	bin/bench/bench -kubeconfig "$dir/kubeconfig" -n "$n" -idle "$idle" -manager-pid "$(cat "$dir/manager.pid")" \
		-manager-pid-file "$dir/manager.pid" -restart-cmd "$restart" \
		-metrics-url "http://127.0.0.1:$METRICS_PORT/metrics" -cluster-qps "${CLUSTER_QPS:-200}" -workers "${BENCH_WORKERS:-32}" -pairs "${BENCH_PAIRS:-2}" -helm bin/helm -work-dir bin/bench/work -out bin/bench/results.json "${extra[@]}" "${pprof[@]}"
	hack/local-down.sh >/dev/null
	first=0
done
bin/bench/bench -growth -out bin/bench/results.json
