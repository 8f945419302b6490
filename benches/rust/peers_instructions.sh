#!/usr/bin/env bash
# Instructions per op of the churn trace (scenario c, 200,000 allocs and
# frees over 131,072 pages) on every allocator of the peer benchmark
# (benches/rust/peers.rs), counted by callgrind inside each allocator's
# `Peer::churn_loop` (the loop the peer benchmark times, nothing else): a number no
# machine noise moves.
#
#   benches/rust/peers_instructions.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 3; }
BIN=$(cargo bench --bench peers --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "could not build the peers benchmark" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ops=$(valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$BIN" --count 2>/dev/null |
    sed -n 's/^churn ops\t//p')
callgrind_annotate --inclusive=yes --threshold=100 "$tmp/cg.out" 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) .*<peers::\([A-Za-z]*\) as peers::Peer>::churn_loop \[.*/\2 \1/p' |
    tr -d ',' | sort -u -k1,1 |
    awk -v ops="$ops" '
        BEGIN { printf "%-10s %14s\n", "allocator", "instr per op" }
        { per[$1] = $2 / ops; order[NR] = $1 }
        END {
            split("Pa PaCached Offset Tlsf Buddy Range XBitmap BitAlloc", names, " ")
            for (i = 1; i <= 8; i++) if (names[i] in per) printf "%-10s %14.1f\n", names[i], per[names[i]]
            if ("Pa" in per && "Tlsf" in per) printf "pagealloc / TLSF: %.2fx\n", per["Pa"] / per["Tlsf"]
            if ("Pa" in per && "Offset" in per) printf "pagealloc / offset-allocator: %.2fx\n", per["Pa"] / per["Offset"]
        }'
