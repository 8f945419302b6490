"""Sample trace generators (``pagealloc gen``), deterministic for a seed.

``churn`` with ``seed=1, ops=200000, chunks=256`` reproduces the benchmark
trace churn-mixed exactly (docs/benchmarks.md); ``exhaust`` and
``sparse`` follow scenarios a and d; ``mheap`` writes a v2 trace (Go 1.19's
scavenger and page caches, the trace formats, v2), or with
``go="1.26"`` a v3 trace (Go 1.26's: background and forced scavenges,
generations, heap-base padding; "Trace format v3"). Generators that need to know whether an
alloc succeeds (to free only live allocations) run a PageAlloc alongside.
"""

from __future__ import annotations

from typing import Iterator

from . import PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES, PageAlloc, PageCache, chunk_base, layout

MASK64 = (1 << 64) - 1
BASE = chunk_base(layout("amd64").base_chunk_idx)  # 0x3000000000


class SplitMix64:
    """The benchmark PRNG (docs/benchmarks.md), arithmetic mod 2**64."""

    def __init__(self, seed: int) -> None:
        self.s = seed & MASK64

    def next(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)


# Size classes as (percentile bound, smallest size, span): a draw r = next() % 100
# picks the first class with r < bound, then the size is smallest + next() % span
# (no second draw when span is 0). CHURN_SIZES is scenario c's (docs/benchmarks.md).
CHURN_SIZES = ((70, 1, 0), (90, 2, 15), (99, 17, 112), (100, 129, 896))
RANDOM_SIZES = ((55, 1, 0), (80, 2, 63), (95, 65, 448), (100, 513, 4 * PALLOC_CHUNK_PAGES))


def _size(rng: SplitMix64, classes) -> int:
    r = rng.next() % 100
    for bound, smallest, span in classes:
        if r < bound:
            return smallest + (rng.next() % span if span else 0)
    raise AssertionError("size classes must end at 100")


def _take(live: list[int], rng: SplitMix64) -> int:
    """Removes and returns a random live alloc index (swap with the last)."""
    j = rng.next() % len(live)
    k = live[j]
    live[j] = live[-1]
    live.pop()
    return k


def _grow(base: int, chunks: int) -> str:
    return f"grow {base:#x} {chunks * PALLOC_CHUNK_BYTES:#x}"


def churn(seed: int = 1, ops: int = 200_000, chunks: int = 256) -> Iterator[str]:
    """Mixed-size allocs and random frees around 50% occupancy (scenario c)."""
    yield f"# churn: {chunks} chunks, splitmix64 seed {seed}, {ops} alloc/free ops"
    rng = SplitMix64(seed)
    pa = PageAlloc()
    pa.grow(BASE, chunks * PALLOC_CHUNK_BYTES)
    yield _grow(BASE, chunks)
    live: list[int] = []
    npages: list[int] = []
    addrs: list[int] = []
    used, threshold = 0, chunks * PALLOC_CHUNK_PAGES // 2
    for _ in range(ops):
        if used > threshold:
            k = _take(live, rng)
            pa.free(addrs[k], npages[k])
            used -= npages[k]
            yield f"free {k}"
        else:
            n = _size(rng, CHURN_SIZES)
            a = pa.alloc(n) or 0
            k = len(addrs)
            addrs.append(a)
            npages.append(n)
            yield f"alloc {n}"
            if a:
                live.append(k)
                used += n


def exhaust(chunks: int = 64) -> Iterator[str]:
    """alloc(1) until the heap is full, then one failing alloc (scenario a)."""
    yield f"# exhaust: {chunks} chunks, alloc(1) until full, then one failing alloc(1)"
    yield _grow(BASE, chunks)
    for _ in range(chunks * PALLOC_CHUNK_PAGES + 1):
        yield "alloc 1"


def sparse(seed: int = 42, chunks: int = 1024) -> Iterator[str]:
    """One 3-page hole per chunk, then allocs that must each find the next
    chunk's hole (scenario d)."""
    yield f"# sparse: {chunks} chunks, hole of 3 pages at 1+splitmix64({seed})%508 per chunk"
    yield _grow(BASE, chunks)
    rng = SplitMix64(seed)
    holes = []
    k = 0
    for _ in range(chunks):
        off = 1 + rng.next() % 508
        yield f"alloc {off}"
        yield "alloc 3"
        yield f"alloc {509 - off}"
        holes.append(k + 1)
        k += 3
    for h in holes:
        yield f"free {h}"
    for _ in range(chunks):
        yield "alloc 3"
    yield "alloc 1"


def random_ops(seed: int = 1, ops: int = 20_000, chunks: int = 64) -> Iterator[str]:
    """A varied mix: grows with gaps below and above the heap (up to `chunks`
    chunks in all), allocs from 1 page to several chunks, random frees."""
    yield f"# random: splitmix64 seed {seed}, {ops} ops, up to {chunks} chunks"
    rng = SplitMix64(seed)
    pa = PageAlloc()
    lo = hi = layout("amd64").base_chunk_idx  # grown chunk hull [lo, hi)
    grown = 0
    live: list[int] = []
    addrs: list[int] = []
    sizes: list[int] = []
    for step in range(ops):
        r = rng.next() % 100
        if grown < chunks and (step == 0 or r < 2):
            n = min(chunks - grown, 1 + rng.next() % 4)
            gap = [0, 0, 1, 3, 0x100][rng.next() % 5]
            if step == 0:
                c = lo
            elif rng.next() % 4 == 0 and lo - gap - n > 0:
                c = lo - gap - n
            else:
                c = hi + gap
            base = chunk_base(c)
            pa.grow(base, n * PALLOC_CHUNK_BYTES)
            lo, hi = min(lo, c), max(hi, c + n)
            grown += n
            yield _grow(base, n)
        elif r < 60 or not live:
            n = _size(rng, RANDOM_SIZES)
            a = pa.alloc(n) or 0
            k = len(addrs)
            addrs.append(a)
            sizes.append(n)
            if a:
                live.append(k)
            yield f"alloc {n}"
        else:
            k = _take(live, rng)
            pa.free(addrs[k], sizes[k])
            yield f"free {k}"


# Go 1.19's scavenge index re-maps (and so forgets) part of itself when a
# grow starts below its lowest mapped window of 2**15 chunks (one 4 KiB page
# of index bytes; golang/go#63385). pagealloc implements the fixed behaviour,
# so v2 traces meant to match Go 1.19 never grow below that window.
INDEX_WINDOW_CHUNKS = 1 << 15
# v2 scavenge requests: nothing, a page, 64 KiB, 1 MiB, 3 MiB, "all".
SCAVENGE_BYTES = (0, PAGE_SIZE, 64 << 10, 1 << 20, 3 << 20, 1 << 40)
V2_HUGE_PAGE_SIZE = 2 << 20


def mheap(seed: int = 1, ops: int = 20_000, chunks: int = 32, go: str = "1.19") -> Iterator[str]:
    """A trace in the style of Go's mheap: grows (gaps above, and below
    within Go 1.19's scavenge index window), allocs from 1 page to several
    chunks, frees, page caches (allocToCache, pageCache.alloc, flush) and
    scavenges of assorted sizes. Go 1.19: a v2 trace. Go 1.26: a v3 trace,
    whose scavenges are forced or the background scavenger's, with GC
    cycles (``nextgen``) and padding pages (``pad``) at the base of some
    grown ranges and at random free pages."""
    v3 = go == "1.26"
    if go not in ("1.19", "1.26"):
        raise ValueError(f"go must be '1.19' or '1.26', got {go!r}")
    yield f"# mheap ({'v3' if v3 else 'v2'}): splitmix64 seed {seed}, {ops} ops, up to {chunks} chunks"
    yield "version 3" if v3 else "version 2"
    rng = SplitMix64(seed)
    pa = PageAlloc(go=go)
    pa.phys_huge_page_size = V2_HUGE_PAGE_SIZE
    lo = hi = layout("amd64").base_chunk_idx
    floor = lo // INDEX_WINDOW_CHUNKS * INDEX_WINDOW_CHUNKS
    grown = 0
    live: list[int] = []  # allocation indices still allocated
    addrs: list[int] = []
    sizes: list[int] = []
    caches: dict[int, PageCache] = {}  # live caches by number
    ncaches = 0

    def allocated(a: int | None, n: int) -> None:
        if a:
            live.append(len(addrs))
        addrs.append(a or 0)
        sizes.append(n)

    for step in range(ops):
        r = rng.next() % 100
        if grown < chunks and (step == 0 or r < 2):
            n = min(chunks - grown, 1 + rng.next() % 4)
            gap = [0, 0, 1, 5][rng.next() % 4]
            if step > 0 and rng.next() % 3 == 0 and lo - gap - n >= floor:
                c = lo - gap - n
            else:
                c = hi + gap if step > 0 else lo
            pa.grow(chunk_base(c), n * PALLOC_CHUNK_BYTES)
            lo, hi = min(lo, c), max(hi, c + n)
            grown += n
            yield _grow(chunk_base(c), n)
            if v3 and rng.next() % 2 == 0:
                # Heap-base randomization pads the start of a new range.
                npad = 1 + rng.next() % 64
                pa.mark_padding(chunk_base(c), npad)
                yield f"pad {chunk_base(c):#x} {npad}"
        elif r < 35:
            n = _size(rng, RANDOM_SIZES)
            allocated(pa.alloc_scav(n)[0], n)
            yield f"alloc {n}"
        elif r < 62 and live:
            k = _take(live, rng)
            pa.free(addrs[k], sizes[k])
            yield f"free {k}"
        elif r < 67:
            caches[ncaches] = pa.alloc_to_cache()
            ncaches += 1
            yield "cache"
        elif r < 87 and caches:
            c = list(caches)[rng.next() % len(caches)]
            n = 1 if rng.next() % 4 else 1 + rng.next() % 16
            allocated(caches[c].alloc(n)[0], n)
            yield f"calloc {c} {n}"
        elif r < 92 and caches:
            c = list(caches)[rng.next() % len(caches)]
            caches.pop(c).flush(pa)
            yield f"flush {c}"
        elif v3 and r < 94:
            pa.next_gen()
            yield "nextgen"
        elif v3 and r < 95:
            # A padding run at a random page, when it is grown and free.
            addr = chunk_base(lo) + (rng.next() % ((hi - lo) * PALLOC_CHUNK_PAGES)) * PAGE_SIZE
            npad = 1 + rng.next() % 8
            try:
                pa.mark_padding(addr, npad)
            except ValueError:
                continue
            yield f"pad {addr:#x} {npad}"
        else:
            nbytes = SCAVENGE_BYTES[rng.next() % len(SCAVENGE_BYTES)]
            bg = v3 and rng.next() % 2 == 0
            pa.scavenge(nbytes, force=not bg)
            yield f"scavenge {nbytes:#x}" + (" bg" if bg else "")


GENERATORS = {
    "churn": churn,
    "exhaust": exhaust,
    "sparse": sparse,
    "random": random_ops,
    "mheap": mheap,
}


def generate(
    kind: str, seed: int | None = None, ops: int | None = None, chunks: int | None = None, go: str | None = None
) -> str:
    """The text of a generated trace; parameters left None take each kind's
    default. go ("1.19" or "1.26") is for ``mheap``, the one generator whose
    trace depends on the Go version."""
    gen = GENERATORS[kind]
    kwargs = {}
    if go is not None:
        if kind != "mheap":
            raise ValueError(f"--go applies to mheap traces only, not {kind}")
        kwargs["go"] = go
    if seed is not None and kind in ("churn", "sparse", "random", "mheap"):
        kwargs["seed"] = seed
    if ops is not None and kind in ("churn", "random", "mheap"):
        kwargs["ops"] = ops
    if chunks is not None:
        kwargs["chunks"] = chunks
    return "\n".join(gen(**kwargs)) + "\n"
