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
for t in "${targets[@]}"; do
	set -- $t
	pkg=$1 target=$2
	echo "=== fuzz $target ($pkg) for $FUZZ_TIME"
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZ_TIME" "$pkg" 2>&1 | grep -vE '^fuzz: elapsed: [0-9]+s, (execs|gathering)' || { echo "fuzz $target failed; the failing input is under $pkg/testdata/fuzz/$target"; exit 1; }
	if [ "${FUZZ_SAVE:-0}" = 1 ] && [ -d "$cache/${pkg#./}/$target" ]; then
		mkdir -p "$pkg/testdata/fuzz/$target"
		cp -n "$cache/${pkg#./}/$target"/* "$pkg/testdata/fuzz/$target/"
	fi
done
