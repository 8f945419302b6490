#!/usr/bin/env bash
# Instructions per unit of each benchmark scenario (docs/benchmarks.md), counted by callgrind
# (deterministic: the same binary and inputs give the same count whatever the
# machine is doing).
#
#   benches/rust/instructions.sh [NAME-FILTER]
#
# For each scenario the `scenarios` example runs under callgrind once with 1
# repetition and once with 3; (I3 - I1) / 2 is the cost of one repetition
# (its set-up, the replay loop and the result check included, the program's
# start-up and the scenario's construction cancelled out), divided by the
# scenario's units (allocs, pairs, ops, grows, pages).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 3; }
cargo build --release --example scenarios -q
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/scenarios
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # reps name -> instructions
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$BIN" "$1" "$2" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/err"
}
printf '%-22s %10s %16s\n' scenario units "instr per unit"
for entry in a_alloc1_exhaust:32768 b_alloc_free_1_pair:200000 c_churn_mixed:200000 \
    d_sparse_find:1024 e_grow:4096 f_cache_alloc1:32768; do
    name=${entry%%:*} units=${entry##*:}
    case "$name" in *"${1:-}"*) ;; *) continue ;; esac
    i1=$(count 1 "$name")
    i3=$(count 3 "$name")
    printf '%-22s %10d %16.1f\n' "$name" "$units" "$(echo "($i3 - $i1) / 2 / $units" | bc -l)"
done
