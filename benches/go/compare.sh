#!/usr/bin/env bash
# One table, one run: the six benchmark scenarios (docs/benchmarks.md) on Go's own page
# allocator, Go 1.19 and Go 1.26 (via tests/goharness/run.sh --go), and on
# pagealloc's engine following each (PAGEALLOC_GO), with the ratios
# pagealloc / Go (lower is better).
#
#   benches/go/compare.sh [ROUNDS] [REPS]
#
# The four sides alternate for ROUNDS rounds (default 3) of REPS repetitions
# each (default 5), so that all see the same machine weather; each cell is
# the median over all repetitions' medians. Scenarios a-e are v1 traces,
# the same on both versions; f's page caches run as v2 on Go 1.19 and as v3
# on Go 1.26.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-3}
REPS=${2:-5}
cd "$ROOT"
cargo build --release --example scenarios -q
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/scenarios
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$ROUNDS"); do
    for v in 1.19 1.26; do
        "$ROOT/tests/goharness/run.sh" --go "$v" scenarios "$REPS" | grep '^go_ns_per_op' | sed "s/^go_ns_per_op/go$v/" >>"$out"
        PAGEALLOC_GO=$v "$BIN" "$REPS" | sed "s/^rust_ns_per_op/pagealloc$v/" >>"$out"
    done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%Y-%m-%d); $ROUNDS rounds x $REPS reps"
printf '%-22s %10s %10s %7s %10s %10s %7s\n' scenario "Go 1.19" pagealloc ratio "Go 1.26" pagealloc ratio
python3 - "$out" <<'PY'
import statistics, sys
cells = {}
for line in open(sys.argv[1]):
    side, name, ns = line.split()
    cells.setdefault(name, {}).setdefault(side, []).append(float(ns))
for name in sorted(cells):
    m = {side: statistics.median(v) for side, v in cells[name].items()}
    row = [f"{name:<22}"]
    for v in ("1.19", "1.26"):
        go, rs = m[f"go{v}"], m[f"pagealloc{v}"]
        row.append(f"{go:10.1f} {rs:10.1f} {rs / go:6.2f}x")
    print(" ".join(row))
PY
