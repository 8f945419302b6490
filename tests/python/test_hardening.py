"""Hardening: threads, Go's historical edge cases, and leaks.

Each Go bug-history test names its golang/go issue. The checks are the same
as everywhere else: addresses against the pure-Python model, and verify().
"""

import gc
import random
import threading

import pytest

import pagealloc
from pagealloc.model import CHUNK_BYTES, CHUNK_PAGES, Model

P = CHUNK_PAGES


def both(arch):
    return pagealloc.PageAlloc(arch), Model(arch)


def grow_both(pa, m, base, size):
    pa.grow(base, size)
    m.grow(base, size)


def alloc_both(pa, m, n):
    got, want = pa.alloc(n), m.alloc(n)
    assert got == want, f"alloc({n}): got {got}, model {want}"
    return got


# -- threads ------------------------------------------------------------------


def test_threads_share_one_allocator():
    """8 threads x 10,000 mixed allocs and frees on one PageAlloc: no errors,
    no overlapping live allocations, and the in-use page count adds up."""
    pa = pagealloc.PageAlloc()
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    pa.grow(base, 64 * CHUNK_BYTES)
    errors, results = [], []
    start = threading.Barrier(8)

    def worker(seed):
        rng = random.Random(seed)
        live = []
        try:
            start.wait()
            for _ in range(10_000):
                if live and rng.random() < 0.45:
                    a, n = live.pop(rng.randrange(len(live)))
                    pa.free(a, n)
                else:
                    n = rng.choice([1, 1, 1, 2, 3, 8, 17, 64, 100, 513])
                    a = pa.alloc(n)
                    if a is not None:
                        live.append((a, n))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))
        results.append(live)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    pa.verify()
    live = sorted(x for r in results for x in r)
    for (a, n), (b, _) in zip(live, live[1:]):
        assert a + n * pagealloc.PAGE_SIZE <= b, f"overlap at {a:#x}"
    assert pa.pages_in_use == sum(n for _, n in live)
    # Each live allocation's pages really are in use.
    for a, n in live:
        pa.free(a, n)
    assert pa.pages_in_use == 0
    pa.verify()


def test_grow_from_another_thread_while_allocating():
    """A long grow (it releases the GIL) interleaves safely with allocs."""
    pa = pagealloc.PageAlloc()
    b = pagealloc.BASE_CHUNK_IDX
    pa.grow(pagealloc.chunk_base(b), CHUNK_BYTES)
    stop = threading.Event()
    got = []

    def allocator():
        while not stop.is_set():
            a = pa.alloc(1)
            if a is not None:
                got.append(a)

    t = threading.Thread(target=allocator)
    t.start()
    for k in range(1, 9):
        pa.grow(pagealloc.chunk_base(b + 512 * k), 256 * CHUNK_BYTES)
    stop.set()
    t.join()
    pa.verify()
    assert len(got) == len(set(got)) == pa.pages_in_use


# -- Go's bug history ---------------------------------------------------------------


@pytest.mark.parametrize("arch", ["386", "amd64", "arm64"])
def test_grow_into_last_chunk_of_address_space_go35954(arch):
    """golang/go#35954: growing into the very last chunk of the address space,
    where limit arithmetic can wrap (386: [0xff000000, 2**32))."""
    pa, m = both(arch)
    ly = pa.layout
    if arch == "386":
        base, size = 0xFF000000, 1 << 24
    else:
        base, size = ly.chunk_base(ly.max_chunks - 1), CHUNK_BYTES
    grow_both(pa, m, base, size)
    assert pa.bounds[1] == ly.max_chunks
    n = size // pagealloc.PAGE_SIZE
    addrs = [alloc_both(pa, m, 1) for _ in range(n)]
    assert addrs[-1] == base + size - pagealloc.PAGE_SIZE
    assert alloc_both(pa, m, 1) is None
    assert pa.search_addr == ly.max_search_addr
    pa.free(addrs[-1], 1)
    m.free(addrs[-1], 1)
    assert alloc_both(pa, m, 1) == addrs[-1]
    pa.free(addrs[3], 1)
    m.free(addrs[3], 1)
    assert alloc_both(pa, m, 2) is None
    assert alloc_both(pa, m, 1) == addrs[3]
    pa.verify()


def test_discontiguous_heap_candidate_search_addr_go40191():
    """golang/go#40191: a run found across root entries yields a candidate
    search address at the base of a root summary entry, in a gap between
    grown regions, where metadata need not be committed. The candidate must
    be moved onto the heap (Go's later findMappedAddr)."""
    pa, m = both("amd64")
    root = 1 << 12  # chunks per root summary entry (16 GiB)
    low = pagealloc.BASE_CHUNK_IDX
    r = low // root + 3
    first = r * root + root - 1  # the last chunk of one root entry, and the next
    grow_both(pa, m, pagealloc.chunk_base(low), CHUNK_BYTES)
    grow_both(pa, m, pagealloc.chunk_base(first), 2 * CHUNK_BYTES)
    assert alloc_both(pa, m, P) == pagealloc.chunk_base(low)  # the low heap is full
    a = alloc_both(pa, m, P + P // 2)  # straddles the root boundary
    assert a == pagealloc.chunk_base(first)
    # The walk proposed the base of root entry r (chunk r*4096, never grown);
    # the search address must instead be the first grown chunk above it.
    assert pa.search_addr == pagealloc.chunk_base(first)
    assert any(s <= pagealloc.chunk_index(pa.search_addr) < e for s, e in pa.grown_ranges)
    pa.verify()
    pa.free(a, P + P // 2)
    m.free(a, P + P // 2)
    assert alloc_both(pa, m, 1) == a
    pa.verify()


def test_terabyte_gaps_go40191():
    """golang/go#40191: heaps separated by terabytes; every alloc matches the
    model and the committed metadata stays what the seed's rounding gives."""
    pa, m = both("amd64")
    b = pagealloc.BASE_CHUNK_IDX
    tib = (1 << 40) // CHUNK_BYTES
    for c in (b + 5 * tib, b, b + 2 * tib + 7, b + 9 * tib + 4095):
        grow_both(pa, m, pagealloc.chunk_base(c), 2 * CHUNK_BYTES)
    rng = random.Random(40191)
    live = []
    for _ in range(600):
        if live and rng.random() < 0.4:
            a, n = live.pop(rng.randrange(len(live)))
            pa.free(a, n)
            m.free(a, n)
        else:
            n = rng.choice([1, 7, 300, 600, 1024, 1025])
            a = alloc_both(pa, m, n)
            if a is not None:
                live.append((a, n))
    pa.verify()
    # Nearly 10 TiB of hull: the chunk bitmaps (alloc and scavenged) commit
    # 128 B per chunk of it.
    assert pa.mapped_bytes < 400 << 20


def test_grow_low_high_low_go63385():
    """golang/go#63385: growth low, then high, then low again."""
    for arch in ("amd64", "arm64", "386"):
        pa, m = both(arch)
        b = pa.layout.base_chunk_idx
        for c, n in [(b + 0x20, 2), (b + 0x1A0, 3), (b + 0x10, 1), (b + 0x30, 1), (b + 1, 4)]:
            grow_both(pa, m, pa.layout.chunk_base(c), n * CHUNK_BYTES)
            for k in (1, 600, 5, 2048):
                alloc_both(pa, m, k)
            pa.verify()
        assert pa.bounds == (b + 1, b + 0x1A3)


@pytest.mark.parametrize("arch", ["amd64", "arm64", "386"])
def test_exhaust_free_anywhere_alloc_again(arch):
    """Exhaust with 1-page allocs, free one page anywhere, allocate again:
    the search address must come back down to it."""
    pa = pagealloc.PageAlloc.from_chunks({pagealloc.layout(arch).base_chunk_idx + i: [] for i in range(3)}, arch=arch)
    ly = pa.layout
    b = ly.base_chunk_idx
    addrs = [pa.alloc(1) for _ in range(3 * P)]
    assert pa.alloc(1) is None
    for page in (0, 1, 511, 512, 700, 3 * P - 1, 5):
        a = ly.page_base(b, page)
        pa.free(a, 1)
        assert pa.search_addr == a
        assert pa.alloc(1) == a
        assert pa.alloc(1) is None
    pa.verify()
    assert addrs == [ly.page_base(b, i) for i in range(3 * P)]


def test_heap_sized_allocs_and_chunk_straddles():
    """An alloc larger than the heap fails, one exactly its size succeeds, and
    allocs that straddle every chunk boundary of a 16-chunk heap land right."""
    pa, m = both("amd64")
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    grow_both(pa, m, base, 16 * CHUNK_BYTES)
    assert alloc_both(pa, m, 16 * P + 1) is None
    assert alloc_both(pa, m, 16 * P) == base
    pa.free(base, 16 * P)
    m.free(base, 16 * P)
    assert alloc_both(pa, m, P // 2) == base
    for c in range(15):  # each P-page alloc covers the boundary into chunk c+1
        a = alloc_both(pa, m, P)
        assert a == base + (c * P + P // 2) * pagealloc.PAGE_SIZE
    assert alloc_both(pa, m, P) is None
    assert alloc_both(pa, m, P // 2) is not None
    assert alloc_both(pa, m, 1) is None
    pa.verify()


def test_amd64_linearized_order():
    """arenaBaseOffset: addresses from 0xffff800000000000 up sort before user
    addresses, so a heap there is searched first; a grow covering address 0 or
    linearized chunk 0 is refused."""
    pa, m = both("amd64")
    kernel = 0xFFFF800000000000 + 8 * CHUNK_BYTES  # linearized chunk 8
    user = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    grow_both(pa, m, user, CHUNK_BYTES)
    grow_both(pa, m, kernel, CHUNK_BYTES)
    assert pa.bounds == (8, pagealloc.BASE_CHUNK_IDX + 1)
    assert alloc_both(pa, m, 1) == kernel
    assert alloc_both(pa, m, P - 1) == kernel + pagealloc.PAGE_SIZE
    assert alloc_both(pa, m, 1) == user  # the kernel-half heap is full
    pa.free(kernel, 1)
    m.free(kernel, 1)
    assert alloc_both(pa, m, 1) == kernel
    with pytest.raises(ValueError, match="chunk 0"):
        pa.grow(0xFFFF800000000000, CHUNK_BYTES)
    with pytest.raises(ValueError, match="address 0"):
        pa.grow((1 << 64) - CHUNK_BYTES, 2 * CHUNK_BYTES)
    with pytest.raises(ValueError, match="address 0"):
        pa.grow(0, 1)
    # The chunk just below address 0 is fine: it is the top of the kernel half.
    grow_both(pa, m, (1 << 64) - CHUNK_BYTES, CHUNK_BYTES)
    assert pa.chunk_ranges(pagealloc.chunk_index((1 << 64) - CHUNK_BYTES)) == []
    pa.verify()


# -- leaks ---------------------------------------------------------------------------


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def test_no_leaks_over_10000_allocators():
    """Creating and dropping 10,000 allocators, each grown by a few chunks,
    leaves RSS and the number of mappings flat."""
    b = pagealloc.BASE_CHUNK_IDX

    def cycle(n):
        for i in range(n):
            pa = pagealloc.PageAlloc("amd64" if i % 2 else "386")
            c = pa.layout.base_chunk_idx + i % 7
            pa.grow(pa.layout.chunk_base(c), 3 * CHUNK_BYTES)
            pa.alloc(700)
            del pa

    cycle(200)  # warm up allocator caches and code paths
    gc.collect()
    rss0, maps0 = _rss_kib(), _maps()
    cycle(10_000)
    gc.collect()
    rss1, maps1 = _rss_kib(), _maps()
    print(f"RSS {rss0} -> {rss1} KiB, mappings {maps0} -> {maps1}")
    assert maps1 <= maps0 + 2, (maps0, maps1)
    assert rss1 - rss0 < 16 * 1024, (rss0, rss1)  # generous: 16 MiB
    assert b > 0
