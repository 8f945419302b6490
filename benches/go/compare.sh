#!/usr/bin/env bash
# One table, one run: the five SCENARIOS.md scenarios on Go's own page
# allocator (Go 1.19, via benches/go/run.sh) and on pagealloc's engine, with
# the ratio pagealloc / Go (lower is better). Usage: benches/go/compare.sh [REPS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REPS=${1:-9}
cd "$ROOT"
cargo build --release --example scenarios -q
go_out=$("$HERE/run.sh" scenarios "$REPS" | grep '^go_ns_per_op')
rust_out=$(./target/release/examples/scenarios "$REPS")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%Y-%m-%d); reps $REPS"
printf '%-22s %12s %16s %8s\n' scenario "Go ns/op" "pagealloc ns/op" ratio
join <(echo "$go_out" | awk '{print $2, $3}' | sort) <(echo "$rust_out" | awk '{print $2, $3}' | sort) |
    awk '{printf "%-22s %12.1f %16.1f %7.2fx\n", $1, $2, $3, $3 / $2}'
