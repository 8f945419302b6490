#!/usr/bin/env bash
# How exact a recording is with more than one P: records
# tests/goprog/allocheavy at each GOMAXPROCS given (default 1 2 4) with the
# Go given (default 1.26), and prints the recorder's report and the replay's
# check (results and final chunks matching). At 1 it must say identical; above
# 1 the gap is the scavenger (README, "Record any Go program").
#
#   benches/record/gomaxprocs.sh [--go 1.19|1.26] [N ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=1.26
if [ "${1:-}" = "--go" ]; then GO=$2; shift 2; fi
PY=${PY:-$PWD/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for n in "${@:-1 2 4}"; do
    for p in $n; do
        (cd tests/goprog/allocheavy && GOMAXPROCS=$p "$PY" -m pagealloc record --go "$GO" -o "$work/p$p.trace" -- go run . >/dev/null)
        echo "GOMAXPROCS=$p: $("$PY" -m pagealloc replay "$work/p$p.trace" --check "$work/p$p.trace.real" | tail -1 || true)"
    done
done
