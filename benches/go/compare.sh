#!/usr/bin/env bash
# One table, one run: the six SCENARIOS.md scenarios on Go's own page
# allocator (Go 1.19, via benches/go/run.sh) and on pagealloc's engine, with
# the ratio pagealloc / Go (lower is better).
#
#   benches/go/compare.sh [ROUNDS] [REPS]
#
# The two sides alternate for ROUNDS rounds (default 3) of REPS repetitions
# each (default 5), so that both see the same machine weather; each cell is
# the median over all repetitions' medians.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${1:-3}
REPS=${2:-5}
cd "$ROOT"
cargo build --release --example scenarios -q
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$ROUNDS"); do
    "$HERE/run.sh" scenarios "$REPS" | grep '^go_ns_per_op' >>"$out"
    ./target/release/examples/scenarios "$REPS" >>"$out"
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%Y-%m-%d); $ROUNDS rounds x $REPS reps"
printf '%-22s %12s %16s %8s\n' scenario "Go ns/op" "pagealloc ns/op" ratio
python3 - "$out" <<'PY'
import statistics, sys
cells = {}
for line in open(sys.argv[1]):
    side, name, ns = line.split()
    cells.setdefault(name, {}).setdefault(side, []).append(float(ns))
for name in sorted(cells):
    go = statistics.median(cells[name]["go_ns_per_op"])
    rs = statistics.median(cells[name]["rust_ns_per_op"])
    print(f"{name:<22} {go:12.1f} {rs:16.1f} {rs / go:7.2f}x")
PY
