#!/usr/bin/env bash
# The main job: build and install pagealloc into .venv, replay the bundled
# churn trace, print what the allocator did, and draw the heap to heap.png;
# then run a Heap of real memory under a memory limit and chart its resident
# memory to heap-rss.png.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
TRACE=${1:-examples/traces/churn-demo.trace}
echo "== replaying $TRACE"
.venv/bin/pagealloc replay "$TRACE" --map heap.png
echo "== a Heap of real pages under a memory limit"
.venv/bin/pagealloc heap-demo -o heap-rss.png
