#!/usr/bin/env bash
# Runs Go's own runtime page allocator on pagealloc's workloads.
#
#   tests/goharness/run.sh [--go 1.19|1.26] scenarios [REPS]     Go ns/op for the six benchmark scenarios (docs/benchmarks.md)
#   tests/goharness/run.sh [--go 1.19|1.26] traces T1 [T2 ...]   replay traces, writing T.go-results for each
#
# Go's allocator is reachable only from the runtime package's own tests, so
# this copies the toolchain's GOROOT once into target/go-harness/goVERSION/goroot,
# drops the harness files into its src/runtime (the shared two, and the
# version's own from tests/goharness/goVERSION) and runs `go test runtime`.
#
# Each version has its own toolchain, never whatever `go` is on PATH by
# chance: the harness speaks that version's export_test.go API, and the
# traces it replays are defined by that version's behaviour.
# - 1.19 (the default; traces v1, v2): Debian's golang-1.19 at
#   /usr/lib/go-1.19, installed when missing.
# - 1.26 (traces v1, v3): Go 1.26.8: the `go` on PATH when it is 1.26.8
#   (this machine kind's), else the module proxy's go1.26.8 toolchain
#   (GOTOOLCHAIN=go1.26.8).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GOVER=1.19
if [ "${1:-}" = "--go" ]; then
    GOVER=${2:-}
    shift 2
fi
case "$GOVER" in
1.19 | 1.26) ;;
*) echo "unsupported Go version '$GOVER': supported are 1.19 and 1.26" >&2; exit 2 ;;
esac
WORK=${PAGEALLOC_GO_WORK:-$ROOT/target/go-harness/go$GOVER}

if [ "$GOVER" = 1.19 ]; then
    SRC_GOROOT=${PAGEALLOC_GO119_ROOT:-/usr/lib/go-1.19}
    if [ ! -x "$SRC_GOROOT/bin/go" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "Go 1.19 not at $SRC_GOROOT; installing Debian's golang-1.19" >&2
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-1.19) >&2
        fi
        if [ ! -x "$SRC_GOROOT/bin/go" ]; then
            echo "Go 1.19 is required at $SRC_GOROOT (apt-get install golang-1.19)" >&2
            exit 3
        fi
    fi
    WANT=" go1.19"
else
    WANT=" go1.26.8 "
    SRC_GOROOT=${PAGEALLOC_GO126_ROOT:-}
    if [ -z "$SRC_GOROOT" ]; then
        if command -v go >/dev/null 2>&1 && case "$(GOTOOLCHAIN=local go version)" in *" go1.26.8 "*) true ;; *) false ;; esac; then
            SRC_GOROOT=$(GOTOOLCHAIN=local go env GOROOT)
        elif command -v go >/dev/null 2>&1; then
            echo "fetching the go1.26.8 toolchain from the module proxy" >&2
            SRC_GOROOT=$(GOTOOLCHAIN=go1.26.8 go env GOROOT)
        else
            echo "Go 1.26.8 is required: no go on PATH to run or fetch it with" >&2
            exit 3
        fi
    fi
fi
case "$("$SRC_GOROOT/bin/go" version) " in
*"$WANT"*) ;;
*) echo "$SRC_GOROOT/bin/go is not Go $GOVER: $("$SRC_GOROOT/bin/go" version)" >&2; exit 3 ;;
esac

PRIV=$WORK/goroot
if [ ! -f "$PRIV/.pagealloc-ready" ]; then
    echo "copying $SRC_GOROOT to $PRIV (once)" >&2
    rm -rf "$PRIV"
    mkdir -p "$PRIV"
    for d in VERSION go.env bin pkg src; do
        if [ -e "$SRC_GOROOT/$d" ]; then
            cp -rL "$SRC_GOROOT/$d" "$PRIV/"
        fi
    done
    touch "$PRIV/.pagealloc-ready"
fi
cp "$HERE/pagealloc_harness_internal_test.go" "$HERE/pagealloc_harness_test.go" \
    "$HERE/go$GOVER/pagealloc_harness_version_test.go" "$PRIV/src/runtime/"

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
    churn=${PAGEALLOC_CHURN:-}
    if [ -z "$churn" ] || [ ! -f "$churn" ]; then
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
    sed -n '2,5p' "$0" >&2
    exit 2
    ;;
esac
