"""Python-level comparison: pagealloc against what a Python user would pick.

    .venv/bin/python benches/python/compare.py [--quick]

Workloads (all per op, including the Python call):
  churn-64   the churn of scenario c (splitmix64 seed 1, mixed sizes around
             50% occupancy) over 64 chunks, as in the peer numbers of the benchmark scenarios (docs/benchmarks.md)
  churn-256  scenario c exactly (256 chunks, 200,000 ops); pagealloc only
  exhaust    alloc(1) until 64 chunks are full (32,768 allocs)

Allocators: pagealloc called per op; pagealloc's bulk paths (TraceReplay for
churn, alloc_many for exhaust); the pure-Python first-fit model of the test
suite (pagealloc.model); virtual-allocator (pure-Python first fit over a list
of regions) and tlsfallocator (C++ OffsetAllocator via pybind11, O(1), not
first fit), both from PyPI: install them yourself with
``.venv/bin/pip install virtual-allocator tlsfallocator``; a peer that is not
installed is left out of the table, with a note.
Slow peers run a prefix of the workload (virtual-allocator: timed after a
warm-up prefix, at its steady state); ns/op is per op either way.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import time

import pagealloc
from pagealloc.tracegen import churn

from pagealloc.model import Model

PAGE = pagealloc.PAGE_SIZE
CHUNK = pagealloc.PALLOC_CHUNK_BYTES
BASE = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)


def optional(module: str, dist: str):
    """The peer module, or None (with a note) when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"note: {dist} is not installed; its rows are left out "
              f"(pip install {dist})", file=sys.stderr)
        return None


def churn_ops(chunks: int, ops: int):
    """The churn as (kind, arg) tuples: ("a", npages) or ("f", alloc index)."""
    out = []
    for line in churn(seed=1, ops=ops, chunks=chunks):
        if line.startswith("alloc"):
            out.append(("a", int(line.split()[1])))
        elif line.startswith("free"):
            out.append(("f", int(line.split()[1])))
    return out


def run_churn(ops, alloc, free, warm=0):
    """Replays churn ops through alloc(n) -> handle and free(handle, n);
    returns ns per op over ops[warm:] (the first `warm` run untimed)."""
    handles, sizes = [], []

    def replay(part):
        for kind, arg in part:
            if kind == "a":
                handles.append(alloc(arg))
                sizes.append(arg)
            else:
                free(handles[arg], sizes[arg])

    replay(ops[:warm])
    timed = ops[warm:]
    t0 = time.perf_counter_ns()
    replay(timed)
    return (time.perf_counter_ns() - t0) / len(timed)


def best(fn, reps):
    return min(fn() for _ in range(reps))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer ops and repetitions")
    args = ap.parse_args(argv)
    reps = 2 if args.quick else 5
    va = optional("virtual_allocator", "virtual-allocator")
    tlsf = optional("TLSFAllocator", "tlsfallocator")

    n64 = 50_000 if args.quick else 200_000
    ops64 = churn_ops(64, n64)
    rows = []

    def pa_churn(ops, chunks):
        def once():
            pa = pagealloc.PageAlloc()
            pa.grow(BASE, chunks * CHUNK)
            return run_churn(ops, pa.alloc, pa.free)

        return best(once, reps)

    def pa_replay(chunks, nops):
        text = "\n".join(churn(seed=1, ops=nops, chunks=chunks)) + "\n"

        def once():
            rep = pagealloc.TraceReplay(text)
            t0 = time.perf_counter_ns()
            rep.run()
            return (time.perf_counter_ns() - t0) / (rep.ops - 1)

        return best(once, reps)

    def model_churn(ops, chunks):
        def once():
            m = Model()
            m.grow(BASE, chunks * CHUNK)
            return run_churn(ops, m.alloc, m.free)

        return best(once, 1)

    def va_churn(ops, chunks, warm):
        """virtual-allocator slows down as its region list grows, so replay
        `warm` ops untimed first and time the rest (its steady state, where
        the 515,000 ns per op once measured for it comes from)."""
        a = va.Allocator(BASE, chunks * CHUNK, PAGE, PAGE, va.AllocationPolicy.FIRST_FIT)

        def alloc(n):
            try:
                return a.allocate(n * PAGE)
            except va.OutOfMemoryError:
                return None

        return run_churn(ops, alloc, lambda r, n: a.free(r), warm)

    def tlsf_churn(ops, chunks):
        def once():
            a = tlsf.OffsetAllocator(chunks * pagealloc.PALLOC_CHUNK_PAGES, 1 << 17)
            return run_churn(ops, a.allocate, lambda h, n: a.free(h))

        return best(once, reps)

    print("measuring churn-64 ...", file=sys.stderr)
    rows.append(("churn-64", "pagealloc (per call)", len(ops64), pa_churn(ops64, 64)))
    rows.append(("churn-64", "pagealloc (TraceReplay, bulk)", len(ops64), pa_replay(64, n64)))
    if tlsf:
        rows.append(("churn-64", "tlsfallocator", len(ops64), tlsf_churn(ops64, 64)))
    prefix = ops64[: 5_000 if args.quick else 20_000]
    rows.append(("churn-64", "pure-Python model (pagealloc.model)", len(prefix), model_churn(prefix, 64)))
    warm, timed = (2_000, 200) if args.quick else (20_000, 1_000)
    if va:
        rows.append(("churn-64", "virtual-allocator", timed, va_churn(ops64[: warm + timed], 64, warm)))

    if not args.quick:
        print("measuring churn-256 ...", file=sys.stderr)
        ops256 = churn_ops(256, 200_000)
        rows.append(("churn-256 (scenario c)", "pagealloc (per call)", len(ops256), pa_churn(ops256, 256)))
        rows.append(("churn-256 (scenario c)", "pagealloc (TraceReplay, bulk)", len(ops256), pa_replay(256, 200_000)))

    print("measuring exhaust ...", file=sys.stderr)
    n = 64 * pagealloc.PALLOC_CHUNK_PAGES

    def pa_exhaust_calls():
        pa = pagealloc.PageAlloc()
        pa.grow(BASE, 64 * CHUNK)
        alloc = pa.alloc
        t0 = time.perf_counter_ns()
        for _ in range(n):
            alloc(1)
        return (time.perf_counter_ns() - t0) / n

    def pa_exhaust_bulk():
        pa = pagealloc.PageAlloc()
        pa.grow(BASE, 64 * CHUNK)
        t0 = time.perf_counter_ns()
        got = pa.alloc_many(1, n)
        dt = (time.perf_counter_ns() - t0) / n
        assert len(got) == n
        return dt

    def tlsf_exhaust():
        a = tlsf.OffsetAllocator(n, n + 1)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            a.allocate(1)
        return (time.perf_counter_ns() - t0) / n

    def va_exhaust(k):
        a = va.Allocator(BASE, 64 * CHUNK, PAGE, PAGE, va.AllocationPolicy.FIRST_FIT)
        t0 = time.perf_counter_ns()
        for _ in range(k):
            a.allocate(PAGE)
        return (time.perf_counter_ns() - t0) / k

    rows.append(("exhaust", "pagealloc (per call)", n, best(pa_exhaust_calls, reps)))
    rows.append(("exhaust", "pagealloc (alloc_many, bulk)", n, best(pa_exhaust_bulk, reps)))
    if tlsf:
        rows.append(("exhaust", "tlsfallocator", n, best(tlsf_exhaust, reps)))
    if va:
        vk = 300 if args.quick else 2_000
        rows.append(("exhaust", "virtual-allocator", vk, va_exhaust(vk)))

    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d')}; command: python benches/python/compare.py{' --quick' if args.quick else ''}")
    print(f"{'workload':<24} {'allocator':<36} {'ops':>8} {'ns/op':>12} {'ops/s':>14} {'vs pagealloc':>13}")
    ref = {}
    for w, name, ops, ns in rows:
        if name == "pagealloc (per call)":
            ref[w] = ns
    for w, name, ops, ns in rows:
        ratio = ns / ref[w] if w in ref else float("nan")
        print(f"{w:<24} {name:<36} {ops:>8} {ns:>12,.1f} {1e9 / ns:>14,.0f} {ratio:>12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
