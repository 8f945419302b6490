#!/usr/bin/env bash
# Runs Go's own runtime page allocator on pagealloc's workloads.
#
#   benches/go/run.sh scenarios [REPS]     Go ns/op for the six SCENARIOS.md scenarios
#   benches/go/run.sh traces T1 [T2 ...]   replay traces, writing T.go-results for each
#
# Go's allocator is reachable only from the runtime package's own tests, so
# this copies the toolchain's GOROOT once into target/go-harness/go1.19/goroot,
# drops the two harness files into its src/runtime and runs `go test runtime`.
#
# The toolchain is always Go 1.19 from Debian's golang-1.19 package
# (/usr/lib/go-1.19), installed when missing, never whatever `go` is on PATH:
# the harness speaks Go 1.19's export_test.go API and the traces it replays
# (v1, v2) are defined by Go 1.19's behaviour.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${PAGEALLOC_GO_WORK:-$ROOT/target/go-harness/go1.19}
GOROOT119=${PAGEALLOC_GO119_ROOT:-/usr/lib/go-1.19}

if [ ! -x "$GOROOT119/bin/go" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Go 1.19 not at $GOROOT119; installing Debian's golang-1.19" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19) >&2
    fi
    if [ ! -x "$GOROOT119/bin/go" ]; then
        echo "Go 1.19 is required at $GOROOT119 (apt-get install golang-1.19)" >&2
        exit 3
    fi
fi
case "$("$GOROOT119/bin/go" version)" in
*" go1.19"*) ;;
*) echo "$GOROOT119/bin/go is not Go 1.19: $("$GOROOT119/bin/go" version)" >&2; exit 3 ;;
esac

PRIV=$WORK/goroot
if [ ! -f "$PRIV/.pagealloc-ready" ]; then
    echo "copying $GOROOT119 to $PRIV (once)" >&2
    rm -rf "$PRIV"
    mkdir -p "$PRIV"
    for d in VERSION bin pkg src; do
        cp -rL "$GOROOT119/$d" "$PRIV/"
    done
    touch "$PRIV/.pagealloc-ready"
fi
cp "$HERE/pagealloc_harness_internal_test.go" "$HERE/pagealloc_harness_test.go" "$PRIV/src/runtime/"

# GOTOOLCHAIN=local: a newer `go` must never be fetched or switched to.
export GOROOT=$PRIV GOCACHE=$WORK/cache GOFLAGS= GO111MODULE= GOTOOLCHAIN=local
export PATH="$PRIV/bin:$PATH"
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
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
