#!/usr/bin/env bash
# Runs Go's own runtime page allocator on pagealloc's workloads.
#
#   benches/go/run.sh scenarios [REPS]     Go ns/op for the six SCENARIOS.md scenarios
#   benches/go/run.sh traces T1 [T2 ...]   replay traces, writing T.go-results for each
#
# Go's allocator is reachable only from the runtime package's own tests, so
# this copies the toolchain's GOROOT once into target/go-harness/goroot, drops
# the two harness files into its src/runtime and runs `go test runtime`.
# Go comes from Debian (golang-go, Go 1.19); it is installed when missing.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${PAGEALLOC_GO_WORK:-$ROOT/target/go-harness}

if ! command -v go >/dev/null 2>&1; then
    echo "go not found; installing Debian's golang-go" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go) >&2
fi
SYS_GOROOT=$(go env GOROOT)
PRIV=$WORK/goroot
if [ ! -f "$PRIV/.pagealloc-ready" ]; then
    echo "copying $SYS_GOROOT to $PRIV (once)" >&2
    rm -rf "$PRIV"
    mkdir -p "$PRIV"
    for d in VERSION bin pkg src; do
        cp -rL "$SYS_GOROOT/$d" "$PRIV/"
    done
    touch "$PRIV/.pagealloc-ready"
fi
cp "$HERE/pagealloc_harness_internal_test.go" "$HERE/pagealloc_harness_test.go" "$PRIV/src/runtime/"

export GOROOT=$PRIV GOCACHE=$WORK/cache GOFLAGS= GO111MODULE=
run_go() {
    # -v so the harness's lines are printed; keep only those (and failures).
    "$PRIV/bin/go" test runtime -run '^TestPageallocHarness$' -count=1 -v 2>&1 |
        grep -vE '^(=== RUN|--- PASS|PASS|ok  )' || true
}

case "${1:-}" in
scenarios)
    churn=${PAGEALLOC_CHURN:-$ROOT/../shared/bench/traces/churn-mixed.trace}
    if [ ! -f "$churn" ]; then
        churn=$WORK/churn-mixed.trace
        "$ROOT/.venv/bin/pagealloc" gen churn --seed 1 -o "$churn" >/dev/null
    fi
    PAGEALLOC_HARNESS=scenarios PAGEALLOC_CHURN=$(cd "$(dirname "$churn")" && pwd)/$(basename "$churn") \
        PAGEALLOC_REPS=${2:-7} run_go
    ;;
traces)
    shift
    [ $# -gt 0 ] || { echo "usage: $0 traces T1 [T2 ...]" >&2; exit 2; }
    abs=()
    for t in "$@"; do abs+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")"); done
    PAGEALLOC_HARNESS=traces PAGEALLOC_TRACES=$(IFS=,; echo "${abs[*]}") run_go
    ;;
*)
    sed -n '2,10p' "$0" >&2
    exit 2
    ;;
esac
