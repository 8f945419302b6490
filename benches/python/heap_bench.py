"""Heap from Python, side by side in one run (medians over alternating rounds).

    .venv/bin/python benches/python/heap_bench.py [ROUNDS]

1. One 8 KiB page: ``heap.alloc(1)`` + ``span.free()``, against
   ``mmap.mmap(-1, 8192)`` + ``close()`` and ``bytearray(8192)``.
2. A 64 MiB span: alloc + free of memory that was scavenged (returned to the
   OS: it reads as zero, so ``zero=True`` writes nothing), of memory freed
   dirty (``zero=True`` clears it), and with ``zero=False``; against
   ``bytearray(64 MiB)``, which always writes its zeros.
"""

from __future__ import annotations

import mmap
import statistics
import sys
import time

import pagealloc

MIB = 1 << 20
BIG = 64 * MIB // pagealloc.PAGE_SIZE


def per_op(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    fn(n)
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    heap = pagealloc.Heap(max_bytes=4 << 30)
    heap.alloc(1).free()  # grow the first arena outside the timing

    def heap_page(n):
        alloc = heap.alloc
        for _ in range(n):
            alloc(1).free()

    def mmap_page(n):
        for _ in range(n):
            mmap.mmap(-1, 8192).close()

    def bytearray_page(n):
        for _ in range(n):
            bytearray(8192)

    def big_scavenged(n):
        for _ in range(n):
            heap.scavenge(1 << 40)  # untimed below: subtracted
            t0 = time.perf_counter_ns()
            heap.alloc(BIG).free()
            big_scavenged.ns += time.perf_counter_ns() - t0

    def big_dirty(n, zero=True):
        for _ in range(n):
            s = heap.alloc(BIG, zero=False)
            with memoryview(s) as v:
                v[::4096] = b"\x01" * len(v[::4096])
            s.free()
            t0 = time.perf_counter_ns()
            heap.alloc(BIG, zero=zero).free()
            big_dirty.ns += time.perf_counter_ns() - t0

    def big_bytearray(n):
        for _ in range(n):
            bytearray(64 * MIB)

    cells: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, fn, n in [
            ("heap.alloc(1) + free()", heap_page, 20000),
            ("mmap.mmap(-1, 8192) + close()", mmap_page, 20000),
            ("bytearray(8192)", bytearray_page, 20000),
            ("bytearray(64 MiB)", big_bytearray, 5),
        ]:
            cells.setdefault(name, []).append(per_op(fn, n))
        big_scavenged.ns = 0
        big_scavenged(5)
        cells.setdefault("heap.alloc(64 MiB) + free(), scavenged memory", []).append(big_scavenged.ns / 5)
        big_dirty.ns = 0
        big_dirty(5)
        cells.setdefault("heap.alloc(64 MiB) + free(), dirty memory (clears it)", []).append(big_dirty.ns / 5)
        big_dirty.ns = 0
        big_dirty(5, zero=False)
        cells.setdefault("heap.alloc(64 MiB, zero=False) + free(), dirty memory", []).append(big_dirty.ns / 5)

    med = {k: statistics.median(v) for k, v in cells.items()}
    page = med["heap.alloc(1) + free()"]
    print(f"{rounds} rounds, medians")
    print(f"| {'operation':<55} | {'ns/op':>12} | {'vs heap.alloc(1)+free()':>24} |")
    print(f"|{'-' * 57}|{'-' * 14}|{'-' * 26}|")
    for k, v in med.items():
        print(f"| {k:<55} | {v:12,.0f} | {v / page:23.2f}x |")


if __name__ == "__main__":
    main()
