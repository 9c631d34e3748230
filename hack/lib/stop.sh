# Sourced by hack/local-down.sh and hack/real-node-down.sh.
# stop DIR NAME SECONDS: ends the process whose pid is in DIR/NAME.pid (what
# `make run` started): TERM, then KILL after SECONDS; removes the pid file.
stop() {
	local pidfile=$1/$2.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 1 $(($3 * 2))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "stopped $2 (pid $pid)"
	fi
	rm -f "$pidfile"
}

# stop_tree DIR NAME: ends the process whose pid is in DIR/NAME.pid (a
# `make run` still starting things) and what it runs in the foreground (a
# build, a wait), children first. The components it started (their pids in
# DIR/*.pid) are left to stop, which ends them gracefully.
stop_tree() {
	local pidfile=$1/$2.pid pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill -0 "$pid" 2>/dev/null; then
		kill -STOP "$pid" 2>/dev/null # it starts nothing more while its children end
		kill_descendants "$1" "$pid"
		kill -KILL "$pid" 2>/dev/null
		echo "stopped $2 (pid $pid), still running, with what it ran in the foreground"
	fi
	rm -f "$pidfile"
}
kill_descendants() { # DIR PID
	local child
	for child in $(pgrep -P "$2"); do
		grep -qsx "$child" "$1"/*.pid && continue
		kill -STOP "$child" 2>/dev/null
		kill_descendants "$1" "$child"
		kill -KILL "$child" 2>/dev/null
	done
}

# sweep DIR BINDIR...: ends every process left that runs a program from one
# of the BINDIRs (the repository's bin/, the tools cache) and whose command
# line names DIR (a component whose parent died before it could stop it:
# etcd's data directory, the manager's kubeconfig, ...): TERM, then KILL
# after 10 s. A user's own `tail -f DIR/manager.log` is not ours to end.
sweep() {
	local dir=$1 pids
	shift
	pids=$(ours "$dir" "$@")
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	for _ in $(seq 1 20); do
		pids=$(ours "$dir" "$@")
		[ -n "$pids" ] || return 0
		sleep 0.5
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	echo "ended what was left of $dir: $(echo $pids)"
}
ours() { # DIR BINDIR...
	local dir=$1 pid exe b
	shift
	for pid in $(pgrep -f -- "$dir/"); do
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
		for b in "$@"; do
			case $exe in "$b"/*) echo "$pid" ;; esac
		done
	done
}
