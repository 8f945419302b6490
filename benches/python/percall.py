"""What a Python call of `alloc` / `free` costs, against the binding alone.

    .venv/bin/python benches/python/percall.py [ROUNDS]

`PageAlloc._probe_alloc` and `_probe_free` take exactly the arguments of
`alloc` and `free`, converted the same way, take the same lock and return a
result of the same type, but do no allocator work: they are the no-op methods
of the same shape. Both loops run in this one process, alternating, ROUNDS
times (default 7); each cell is the median of the rounds' best-of-5 timings.

Workloads, per Python call:
  pair    scenario b: half of 64 chunks in use, then alloc(1) + free pairs
  churn   scenario c's churn over 256 chunks (splitmix64 seed 1), one call
          per op, in the same loop shape for both
"""

from __future__ import annotations

import statistics
import sys
import timeit

import pagealloc
from pagealloc.tracegen import churn

CHUNK = pagealloc.PALLOC_CHUNK_BYTES
BASE = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)


def pair_heap() -> pagealloc.PageAlloc:
    pa = pagealloc.PageAlloc()
    pa.grow(BASE, 64 * CHUNK)
    pa.alloc(64 * 512 // 2)
    return pa


def churn_ops() -> list[tuple[bool, int]]:
    ops = []
    for line in churn(seed=1, ops=200_000, chunks=256):
        kind, arg = line.split()[:2]
        if kind in ("alloc", "free"):
            ops.append((kind == "alloc", int(arg)))
    return ops


def run_churn(alloc, free, ops) -> float:
    """ns per call of one pass of the churn (addresses kept by index)."""
    addrs, sizes = [], []
    push_a, push_s = addrs.append, sizes.append
    t = timeit.default_timer()
    for is_alloc, arg in ops:
        if is_alloc:
            push_a(alloc(arg))
            push_s(arg)
        else:
            free(addrs[arg], sizes[arg])
    return (timeit.default_timer() - t) / len(ops) * 1e9


def main(rounds: int) -> None:
    n = 200_000
    cells: dict[str, list[float]] = {k: [] for k in
                                     ("pair", "pair probe", "churn", "churn probe")}
    ops = churn_ops()
    for _ in range(rounds):
        pa = pair_heap()
        for key, a, f in (("pair", pa.alloc, pa.free),
                          ("pair probe", pa._probe_alloc, pa._probe_free)):
            best = min(timeit.repeat("free(alloc(1), 1)", number=n, repeat=5,
                                     globals={"alloc": a, "free": f}))
            cells[key].append(best / n / 2 * 1e9)
        live = pagealloc.PageAlloc()
        live.grow(BASE, 256 * CHUNK)
        cells["churn"].append(run_churn(live.alloc, live.free, ops))
        probe = pagealloc.PageAlloc()
        cells["churn probe"].append(
            run_churn(probe._probe_alloc, probe._probe_free, ops))
    med = {k: statistics.median(v) for k, v in cells.items()}
    print(f"{rounds} rounds, medians, ns per Python call")
    print("| workload | alloc/free | no-op of the same shape | ratio |")
    print("|---|---|---|---|")
    for w in ("pair", "churn"):
        print(f"| {w} | {med[w]:.1f} | {med[w + ' probe']:.1f} | "
              f"{med[w] / med[w + ' probe']:.2f}x |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
