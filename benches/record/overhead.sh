#!/usr/bin/env bash
# What recording costs a program: gofmt -l over GOROOT/src at GOMAXPROCS=1,
# built plainly and with the recorder's hooks, run ROUNDS times each,
# interleaved (plain, hooked, plain, ...), on one machine in one run.
# Prints each run's seconds and the ratio of the medians (hooked / plain).
#
#   benches/record/overhead.sh [ROUNDS]      (default 5; needs .venv, see README)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
PY=${PY:-.venv/bin/python}
GOROOT_SRC=$(go env GOROOT)/src
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/gofmt-plain" cmd/gofmt
"$PY" -m pagealloc record -- go build -o "$work/gofmt-hooked" cmd/gofmt
mkdir "$work/logs"
run() { # BIN [env...]: prints the run's wall seconds
    local t0 t1
    t0=$(date +%s.%N)
    env GOMAXPROCS=1 "${@:2}" "$1" -l "$GOROOT_SRC" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
plain=() hooked=()
for _ in $(seq "$ROUNDS"); do
    plain+=("$(run "$work/gofmt-plain")")
    hooked+=("$(run "$work/gofmt-hooked" PAGEALLOC_RECORD_DIR="$work/logs")")
done
"$PY" - "${plain[*]}" "${hooked[*]}" "$(cat "$work"/logs/*.log | wc -l)" <<'PY'
import statistics, sys
plain = [float(x) for x in sys.argv[1].split()]
hooked = [float(x) for x in sys.argv[2].split()]
print("gofmt -l GOROOT/src, GOMAXPROCS=1, seconds per run")
print("  plain  ", " ".join(f"{x:.3f}" for x in plain))
print("  hooked ", " ".join(f"{x:.3f}" for x in hooked), f"(log lines over all runs: {sys.argv[3]})")
print(f"recording overhead (median hooked / median plain): {statistics.median(hooked) / statistics.median(plain):.3f}x")
PY
