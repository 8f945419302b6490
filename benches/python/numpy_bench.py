"""NumPy's arrays from a Heap against NumPy's default allocator, side by side
in one run: each workload runs in a fresh process per allocator (so peak RSS
and page faults are the workload's own), alternating, ROUNDS times; medians.

    .venv/bin/python benches/python/numpy_bench.py [ROUNDS]

Workloads:
- temporaries N MiB (N = 16, 64, 256): 100 x ``c = a + b`` then 100 x
  ``np.zeros`` of N MiB each, every temporary freed before the next;
- pipeline: 400 arrays of mixed sizes (64 KiB to 32 MiB), written, some
  kept a while, all freed, as a processing pipeline does;
- pipeline under a limit: the same with ``heap.memory_limit`` = 256 MiB for
  the Heap; reported: RSS at the end (arrays freed), against the default.

Reported per workload and allocator: seconds, minor page faults (from
/proc/self/stat), peak RSS (ru_maxrss); and the ratios default / heap.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

MIB = 1 << 20

WORKER = r"""
import json, resource, sys, time
import numpy as np
import pagealloc

MIB = 1 << 20
kind, which = sys.argv[1], sys.argv[2]
budget = sys.argv[3] if len(sys.argv) > 3 else "default"

def minflt():
    with open("/proc/self/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def temporaries(n):
    a = np.ones(n * MIB // 8)
    b = np.ones(n * MIB // 8)
    for _ in range(100):
        c = a + b
        del c
    for _ in range(100):
        z = np.zeros(n * MIB // 8)
        z[::4096] = 1.0  # touch one word per page, as a consumer would
        del z

def pipeline():
    rng = np.random.default_rng(1)
    kept = []
    for i in range(400):
        n = int(rng.integers(64 << 10, 32 * MIB)) // 8
        x = np.empty(n)
        x[:] = i
        y = x * 2.0
        del x
        kept.append(y)
        if len(kept) > 6:
            kept.pop(int(rng.integers(0, len(kept))))
    kept.clear()

heap = None
if which == "heap":
    heap = pagealloc.Heap(16 << 30)
    if kind == "limit":
        heap.memory_limit = 256 * MIB
    if budget != "default":
        heap.idle_budget = None if budget == "none" else int(budget) * MIB
    pagealloc.numpy_heap(heap, threshold=64 << 10).install()
work = {"limit": pipeline, "pipeline": pipeline}.get(kind) or (lambda: temporaries(int(kind)))
f0, t0 = minflt(), time.perf_counter()
work()
t1, f1 = time.perf_counter(), minflt()
if heap is not None and kind == "limit":
    time.sleep(1.5)  # the background scavenger's second
print(json.dumps({"s": t1 - t0, "faults": f1 - f0, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_end": rss()}))
"""


def run(kind: str, which: str, budget: str = "default") -> dict:
    """One workload in a fresh process; `budget`: the Heap's idle_budget in
    MiB, "none", or "default" (left as a new Heap has it)."""
    out = subprocess.run([sys.executable, "-c", WORKER, kind, which, budget], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    kinds = ["16", "64", "256", "pipeline", "limit"]
    res: dict[tuple[str, str], list[dict]] = {}
    for _ in range(rounds):
        for kind in kinds:
            for which in ("default", "heap"):
                res.setdefault((kind, which), []).append(run(kind, which))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("s", "faults", "peak", "rss_end")}
           for k, v in res.items()}
    print(f"NumPy arrays: default allocator vs Heap (numpy_heap installed), medians of {rounds} rounds")
    print(f"{'workload':<26}{'allocator':<10}{'seconds':>9}{'faults':>10}{'peak MiB':>10}{'end MiB':>9}")
    for kind in kinds:
        name = {"pipeline": "pipeline", "limit": "pipeline, 256 MiB limit"}.get(kind, f"temporaries {kind} MiB")
        for which in ("default", "heap"):
            m = med[(kind, which)]
            print(f"{name:<26}{which:<10}{m['s']:>9.3f}{m['faults']:>10.0f}{m['peak'] / MIB:>10.0f}{m['rss_end'] / MIB:>9.0f}")
        d, h = med[(kind, "default")], med[(kind, "heap")]
        print(f"{'':<26}{'ratio':<10}{d['s'] / h['s']:>8.2f}x{d['faults'] / max(1, h['faults']):>9.1f}x"
              f"{d['peak'] / h['peak']:>9.2f}x  (default / heap)")


if __name__ == "__main__":
    main()
