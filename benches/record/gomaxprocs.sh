#!/usr/bin/env bash
# How exact a recording is with more than one P: records each program given
# (default: tests/goprog/concurrent, allocheavy and fragment) at each
# GOMAXPROCS (default 1 2 4 8) with each Go (default 1.26 and 1.19), and
# prints the replay's check (results and final chunks matching) and the
# finds it followed. Every line must say identical.
#
#   benches/record/gomaxprocs.sh [--go 1.19|1.26] [--prog DIR] [N ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
GOS="1.26 1.19"
PROGS="tests/goprog/concurrent tests/goprog/allocheavy tests/goprog/fragment"
while [ $# -gt 0 ]; do
    case "$1" in
        --go) GOS=$2; shift 2 ;;
        --prog) PROGS=$2; shift 2 ;;
        *) break ;;
    esac
done
PY=${PY:-$PWD/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for prog in $PROGS; do
    for go in $GOS; do
        for p in "${@:-1 2 4 8}"; do
            for n in $p; do
                t="$work/$(basename "$prog")-$go-$n.trace"
                (cd "$prog" && GOMAXPROCS=$n "$PY" -m pagealloc record --go "$go" -o "$t" -- go run . >/dev/null 2>&1)
                out=$("$PY" -m pagealloc replay "$t" --check "$t.real" || true)
                followed=$(echo "$out" | grep -o 'followed [0-9]* recorded find(s)' || echo "followed 0 recorded find(s)")
                echo "$(basename "$prog") go$go GOMAXPROCS=$n: $(echo "$out" | tail -1 | sed 's/^check against [^:]*: //'); $followed"
            done
        done
    done
done
