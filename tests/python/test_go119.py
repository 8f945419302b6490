"""Go 1.19's layers around the seed's core: scavenged pages, the scavenge
index with scavenge(), and page caches (the trace formats, v2).

The scavenger is checked against pagealloc.model, a direct reading of
the trace formats' description of Go 1.19's pageAlloc.scavenge (highest marked chunk
first, highest free unscavenged run, never splitting a 2 MiB huge page)."""

import random

import pytest

import pagealloc
from pagealloc.model import Model
from pagealloc import PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES as P

BASE = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
B = pagealloc.BASE_CHUNK_IDX
ALL = (1 << P) - 1
HUGE = 2 << 20  # bytes, as in trace replay
HP = HUGE // PAGE_SIZE


def fresh(chunks=4, arch="amd64"):
    pa = pagealloc.PageAlloc(arch, go="1.19")
    pa.phys_huge_page_size = HUGE
    ly = pa.layout
    pa.grow(ly.chunk_base(ly.base_chunk_idx), chunks * PALLOC_CHUNK_BYTES)
    return pa


@pytest.mark.parametrize("arch", pagealloc.ARCHES)
def test_grow_marks_new_pages_scavenged(arch):
    pa = fresh(2, arch)
    b = pa.layout.base_chunk_idx
    assert pa.chunk_scavenged(b) == ALL and pa.chunk_scavenged(b + 1) == ALL
    # Allocating scavenged pages reports them and clears their bits.
    addr, scav = pa.alloc_scav(3)
    assert addr == pa.layout.page_base(b, 0) and scav == 3 * PAGE_SIZE
    assert pa.chunk_scavenged(b) == ALL & ~0b111
    # Freeing leaves them unscavenged; reallocating reports no scavenged bytes.
    pa.free(addr, 3)
    assert pa.chunk_scavenged(b) == ALL & ~0b111
    assert pa.alloc_scav(3) == (addr, 0)
    # Across a chunk boundary: 2 unscavenged-but-free... pages counted exactly.
    pa.free(addr, 3)
    a2, s2 = pa.alloc_scav(P + 10)
    assert a2 == addr and s2 == (P + 10 - 3) * PAGE_SIZE
    pa.verify()


@pytest.mark.parametrize("arch", pagealloc.ARCHES)
def test_scavenge_after_grow_releases_nothing(arch):
    pa = fresh(2, arch)
    assert pa.scavenge(1 << 40) == 0


def test_scavenge_matches_design_model():
    """Random allocs, frees and scavenges on 4 chunks, each result and every
    scavenged bitmap against pagealloc.model (the trace formats' reading of Go 1.19)."""
    rng = random.Random(19)
    for trial in range(25):
        pa = fresh(4)
        model = Model("amd64", huge_pages=HP)
        model.grow(BASE, 4 * PALLOC_CHUNK_BYTES)
        live = []
        for step in range(120):
            r = rng.random()
            if r < 0.45 or not live:
                n = rng.choice([1, 1, 2, 7, 64, 300, 700])
                got = pa.alloc_scav(n)
                assert got == model.alloc_scav(n), (trial, step)
                if got[0] is not None:
                    live.append((got[0], n))
            elif r < 0.85:
                addr, n = live.pop(rng.randrange(len(live)))
                pa.free(addr, n)
                model.free(addr, n)
            else:
                nbytes = rng.choice([1, PAGE_SIZE, 5 * PAGE_SIZE, HUGE, 3 * HUGE, 1 << 30])
                assert pa.scavenge(nbytes) == model.scavenge(nbytes), (trial, step)
            for c in range(4):
                assert pa.chunk_scavenged(B + c) == model.chunk_scavenged(B + c), (trial, step)
        pa.verify()


def test_cache_alloc1_scenario_f():
    """Scenario f (docs/benchmarks.md): each cache is the next 64 fresh pages, all scavenged,
    handed out in ascending order; then an empty cache."""
    pa = fresh(64)
    for k in range(512):
        c = pa.alloc_to_cache()
        assert (c.base, c.cache, c.scav) == (BASE + k * 64 * PAGE_SIZE, (1 << 64) - 1, (1 << 64) - 1)
        for i in range(64):
            assert c.alloc(1) == (BASE + (k * 64 + i) * PAGE_SIZE, PAGE_SIZE)
        assert c.empty
    assert pa.alloc_to_cache().empty
    pa.verify()


def test_cache_alloc_n_and_flush():
    pa = fresh(1)
    a, _ = pa.alloc_scav(3)  # pages 0..2 in use, unscavenged
    c = pa.alloc_to_cache()
    assert c.base == BASE and c.cache == ((1 << 64) - 1) & ~0b111 and c.scav == c.cache
    assert c.alloc(5) == (BASE + 3 * PAGE_SIZE, 5 * PAGE_SIZE)
    assert c.alloc(64) == (None, 0)
    assert c.alloc(65) == (None, 0)  # more than a cache holds: no fit, as in Go
    with pytest.raises(ValueError, match="at least 1 page"):
        c.alloc(0)
    # The cache's pages count as in use until flushed.
    assert pa.chunk_bitmap(B) & ((1 << 64) - 1) == (1 << 64) - 1
    left = c.cache
    c.flush(pa)
    assert c.empty and c.cache == 0
    assert pa.chunk_bitmap(B) & ((1 << 64) - 1) == 0b111 | (0b11111 << 3)
    assert pa.chunk_scavenged(B) & ((1 << 64) - 1) == left
    # Flushing a cache whose pages are not in use here is refused, unchanged.
    bogus = pagealloc.PageCache(BASE, 1 << 20, 0)
    with pytest.raises(ValueError):
        bogus.flush(pa)
    with pytest.raises(ValueError):
        pagealloc.PageCache(BASE + PAGE_SIZE, 1, 0)
    with pytest.raises(ValueError):
        pagealloc.PageCache(BASE, 1, 2)
    pa.verify()


def test_from_chunks_scav_go119():
    """NewPageAlloc(chunks, scav): listed scavenged runs, cleared where in use."""
    pa = pagealloc.PageAlloc.from_chunks({B: [(0, 10)], B + 1: []}, scav={B: [(5, 20)], B + 1: [(0, P)]}, go="1.19")
    assert pa.chunk_scavenged(B) == sum(1 << p for p in range(10, 25))
    assert pa.chunk_scavenged(B + 1) == ALL
    assert pa.alloc_scav(20) == (BASE + 10 * PAGE_SIZE, 15 * PAGE_SIZE)
    pa.verify()
