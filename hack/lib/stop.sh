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
