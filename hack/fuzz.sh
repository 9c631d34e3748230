#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target for FUZZ_TIME (default 30s) each. The
# seed corpus lives in the tests (f.Add) and in testdata/fuzz/<Target>/,
# which `go test` replays on every run; FUZZ_SAVE=1 copies the inputs the
# fuzzer found interesting (from the Go build cache) there, to be committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
FUZZ_TIME=${FUZZ_TIME:-30s}
targets=(
	"./internal/agent FuzzParseManifest"
	"./internal/agent FuzzParseResult"
	"./internal/policy FuzzInWindow"
	"./internal/policy FuzzDueBackup"
	"./internal/resources FuzzEnvironmentObjects"
	"./internal/webhook FuzzWebhookReferences"
)
cache=$(go env GOCACHE)/fuzz/github.com/crmops/crm-operator
# run_target PKG TARGET: 0 unless the fuzzer wrote a failing input. Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline exceeded"
# when -fuzztime runs out (golang/go#75804, fixed in Go 1.27) although it
# found nothing; such a run is retried once and never counts as a failure.
run_target() {
	local pkg=$1 target=$2 dir="$1/testdata/fuzz/$2" before after out rc
	before=$(ls "$dir" 2>/dev/null | sort || true)
	for attempt in 1 2; do
		rc=0
		out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZ_TIME" "$pkg" 2>&1) || rc=$?
		printf '%s\n' "$out" | grep -vE '^fuzz: elapsed: [0-9]+s, (execs|gathering)' || true
		[ $rc = 0 ] && return 0
		after=$(ls "$dir" 2>/dev/null | sort || true)
		if [ "$before" != "$after" ]; then
			echo "fuzz $target failed; the failing input is under $dir:"
			comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after")
			return 1
		fi
		if ! grep -q 'context deadline exceeded' <<<"$out"; then
			echo "fuzz $target failed without writing an input"
			return 1
		fi
		echo "fuzz $target: the Go fuzz coordinator's deadline race (golang/go#75804), no failing input; attempt $attempt"
	done
	return 0
}

for t in "${targets[@]}"; do
	set -- $t
	pkg=$1 target=$2
	echo "=== fuzz $target ($pkg) for $FUZZ_TIME"
	run_target "$pkg" "$target"
	if [ "${FUZZ_SAVE:-0}" = 1 ] && [ -d "$cache/${pkg#./}/$target" ]; then
		mkdir -p "$pkg/testdata/fuzz/$target"
		cp -n "$cache/${pkg#./}/$target"/* "$pkg/testdata/fuzz/$target/"
	fi
done
