#!/usr/bin/env bash
# Instructions per unit of each benchmark scenario (docs/benchmarks.md), counted by callgrind
# (deterministic: the same binary and inputs give the same count whatever the
# machine is doing), following each Go (PAGEALLOC_GO=1.19, then 1.26).
#
#   benches/rust/instructions.sh [NAME-FILTER]
#
# For each scenario the `scenarios` example runs under callgrind once with 1
# repetition and once with 3; (I3 - I1) / 2 is the cost of one repetition,
# divided by the scenario's units (allocs, pairs, ops, grows, pages). Two
# counts per Go:
#   timed   only the instructions inside `Scenario::run_timed`: the timed ops
#           of the unit, as the ns/op figures time them;
#   all     the whole repetition: its fresh allocator, the untimed set-up ops
#           (d's 3,072 allocations and 1,024 frees, say), the replay loop and
#           the result check (the program's start-up and the scenario's
#           construction cancel out).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 3; }
cargo build --release --example scenarios -q
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/scenarios
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # reps name [callgrind options] -> instructions
    local reps=$1 name=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$@" "$BIN" "$reps" "$name" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/err"
}
per_unit() { # name units [callgrind options] -> instructions per unit
    local name=$1 units=$2
    shift 2
    local i1 i3
    i1=$(count 1 "$name" "$@")
    i3=$(count 3 "$name" "$@")
    echo "($i3 - $i1) / 2 / $units" | bc -l
}
TIMED='--toggle-collect=*Scenario*run_timed*'
printf '%-22s %8s %12s %12s %12s %12s\n' scenario units "1.19 timed" "1.19 all" "1.26 timed" "1.26 all"
for entry in a_alloc1_exhaust:32768 b_alloc_free_1_pair:200000 c_churn_mixed:200000 \
    d_sparse_find:1024 e_grow:4096 f_cache_alloc1:32768; do
    name=${entry%%:*} units=${entry##*:}
    case "$name" in *"${1:-}"*) ;; *) continue ;; esac
    row=()
    for go in 1.19 1.26; do
        export PAGEALLOC_GO=$go
        row+=("$(per_unit "$name" "$units" "$TIMED")" "$(per_unit "$name" "$units")")
    done
    printf '%-22s %8d %12.1f %12.1f %12.1f %12.1f\n' "$name" "$units" "${row[@]}"
done
