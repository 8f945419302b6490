"""The questions an allocator is asked (first_fit, would_fit, largest_free,
alloc_or_raise), against a model that scans every page of the bitmaps."""

from __future__ import annotations

import random

import pytest

import pagealloc
from pagealloc import AllocFailure, PageAlloc

P = pagealloc.PALLOC_CHUNK_PAGES
PS = pagealloc.PAGE_SIZE


def free_pages(pa: PageAlloc) -> list[int]:
    """Every grown page's address, free ones only, ascending."""
    out = []
    for s, e in pa.grown_ranges:
        for ci in range(s, e):
            bits = int(pa.chunk_bitmap(ci))
            base = pagealloc.chunk_base(ci)
            out += [base + i * PS for i in range(P) if not bits >> i & 1]
    return out


def model_first_fit(free: set[int], grown: list[int], n: int, align: int, within) -> int | None:
    lo, hi = within or (0, 1 << 64)
    for a in grown:
        if a < lo or a + n * PS > hi or (a // PS) % align:
            continue
        if all(a + k * PS in free for k in range(n)):
            return a
    return None


def model_largest(free: set[int], grown: list[int], align: int, within) -> int:
    lo, hi = within or (0, 1 << 64)
    best = 0
    for a in grown:
        if a < lo or (a // PS) % align or a not in free:
            continue
        n = 0
        while a + n * PS in free and a + (n + 1) * PS <= hi:
            n += 1
        best = max(best, n)
    return best


@pytest.mark.parametrize("go", ["1.19", "1.26"])
def test_queries_match_the_scanning_model(go):
    rng = random.Random(7)
    pa = PageAlloc(go=go)
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    pa.grow(base, 2 * pagealloc.PALLOC_CHUNK_BYTES)
    pa.grow(base + 5 * pagealloc.PALLOC_CHUNK_BYTES, pagealloc.PALLOC_CHUNK_BYTES)
    live = []
    for step in range(120):
        if rng.random() < 0.6 or not live:
            n = rng.choice([1, 2, 3, 17, 64, 200, 511, 700])
            a = pa.alloc(n)
            if a:
                live.append((a, n))
        else:
            pa.free(*live.pop(rng.randrange(len(live))))
        if step % 6:
            continue
        grown = [base + i * PS for i in range(2 * P)] + [base + (5 * P + i) * PS for i in range(P)]
        free = set(free_pages(pa))
        for align in (1, 4, 64, 512):
            for within in (None, (base + 100 * PS, base + 900 * PS), (base + 3, base + 6 * P * PS)):
                want = model_largest(free, grown, align, within)
                assert pa.largest_free(align=align, within=within) == want, (step, align, within)
                for n in (1, 5, 64, 300):
                    ff = model_first_fit(free, grown, n, align, within)
                    assert pa.first_fit(n, align=align, within=within) == ff, (step, n, align, within)
                    assert pa.would_fit(n, align=align, within=within) == (ff is not None)
        pa.verify()


def test_alloc_or_raise_says_why_and_changes_nothing():
    pa = PageAlloc()
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    pa.grow(base, pagealloc.PALLOC_CHUNK_BYTES)
    pa.alloc_at(base + 100 * PS, 10)
    before = pa.to_bytes()
    with pytest.raises(AllocFailure) as e:
        pa.alloc_or_raise(450)
    f = e.value
    assert isinstance(f, MemoryError)
    assert (f.npages, f.align, f.within, f.free_pages, f.largest_fit) == (450, 1, None, 502, 402)
    assert str(f) == "no room for 450 page(s): 502 page(s) are free, the largest request that fits is 402 page(s)"
    assert pa.to_bytes() == before
    with pytest.raises(AllocFailure, match=r"aligned to 256 pages: .* that fits so is 256"):
        pa.alloc_or_raise(300, align=256)
    assert pa.alloc_or_raise(256, align=256) == base + 256 * PS
    with pytest.raises(ValueError, match="align"):
        pa.largest_free(align=3)
    with pytest.raises(ValueError):
        pa.would_fit(0)


def test_range_allocator_answers_in_bytes():
    ra = pagealloc.RangeAllocator(1 << 20, page_size=4096)  # 256 pages
    a = ra.alloc(10 * 4096)
    ra.alloc_at(100 * 4096, 4096)
    assert ra.largest_free() == 155 * 4096  # [101, 256)
    assert ra.largest_free(align=64 * 4096) == 128 * 4096  # [128, 256)
    assert ra.would_fit(155 * 4096) and not ra.would_fit(155 * 4096 + 1)
    assert ra.would_fit(90 * 4096, align=4096) and not ra.would_fit(129 * 4096, align=64 * 4096)
    ra.free(a, 10 * 4096)
    assert ra.largest_free() == 155 * 4096 and ra.would_fit(100 * 4096)
    with pytest.raises(ValueError, match=r"align must be a power of two, in bytes, got 3"):
        ra.largest_free(align=3)
    with pytest.raises(ValueError):
        ra.would_fit(0)


def test_heap_answers_with_the_room_it_may_grow_into():
    heap = pagealloc.Heap(128 << 20)  # two 64 MiB arenas of room, none grown
    pages = (128 << 20) // PS
    assert heap.largest_free() == pages and heap.would_fit(pages) and not heap.would_fit(pages + 1)
    a = heap.alloc(100)
    # One arena grown, 100 pages in use at its start: the rest of it plus the room.
    assert heap.largest_free() == pages - 100
    assert heap.would_fit(pages - 100) and not heap.would_fit(pages - 99)
    b = heap.alloc(pages - 100, zero=False)  # exactly what it said: grows and fits
    assert heap.largest_free() == 0 and not heap.would_fit(1)
    with pytest.raises(MemoryError):
        heap.alloc(1)
    b.free()
    a.free()
    assert heap.largest_free() == pages
    with pytest.raises(ValueError):
        heap.would_fit(0)
    heap.verify()


def free_runs(pa: PageAlloc) -> list[tuple[int, int]]:
    """Maximal free runs (address, pages), ascending, across adjacent chunks."""
    runs: list[tuple[int, int]] = []
    for a in free_pages(pa):
        if runs and runs[-1][0] + runs[-1][1] * PS == a:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((a, 1))
    return runs


def model_extents(pa: PageAlloc, npages: int, max_extents: int):
    runs = free_runs(pa)
    fit = next((a for a, n in runs if n >= npages), None)
    if fit is not None:
        return [(fit, npages)]
    out, left = [], npages
    for a, n in sorted(runs, key=lambda r: (-r[1], r[0])):
        if left == 0 or len(out) == max_extents:
            break
        take = min(n, left)
        out.append((a, take))
        left -= take
    return out if left == 0 else None


@pytest.mark.parametrize("go", ["1.19", "1.26"])
def test_alloc_extents_matches_the_model_all_or_nothing(go):
    rng = random.Random(11)
    pa = PageAlloc(go=go)
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    pa.grow(base, 3 * pagealloc.PALLOC_CHUNK_BYTES)
    live = []
    for step in range(150):
        r = rng.random()
        if r < 0.45 or not live:
            a = pa.alloc(rng.choice([1, 3, 20, 90, 300]))
            if a:
                live.append([(a, None)])
        elif r < 0.75:
            n, k = rng.choice([50, 400, 900, 1500]), rng.choice([1, 2, 3, 8])
            want = model_extents(pa, n, k)
            before = pa.to_bytes()
            got = pa.alloc_extents(n, k)
            assert got == want, (step, n, k)
            if got is None:
                assert pa.to_bytes() == before, "a refused alloc_extents changed the allocator"
            else:
                assert sum(x for _, x in got) == n and len(got) <= k
                live.append(got)
        else:
            for a, n in live.pop(rng.randrange(len(live))):
                if n is None:
                    continue
                pa.free(a, n)
        pa.verify()
    with pytest.raises(ValueError, match="max_extents must be at least 1, got 0"):
        pa.alloc_extents(5, 0)


def test_range_allocator_extents_in_bytes():
    ra = pagealloc.RangeAllocator(64 * 4096, page_size=4096)
    for off in (10, 30, 50):
        ra.alloc_at(off * 4096, 4096)
    # Free runs: [0,10) [11,30) [31,50) [51,64): 10, 19, 19, 13 pages.
    assert ra.alloc_extents(40 * 4096, 2) is None
    got = ra.alloc_extents(40 * 4096 - 100, 3)
    assert got == [(11 * 4096, 19 * 4096), (31 * 4096, 19 * 4096), (51 * 4096, 2 * 4096)]
    assert ra.stats().in_use == (40 + 3) * 4096
    for off, n in got:
        ra.free(off, n)
    assert ra.stats().in_use == 3 * 4096


def test_heap_extents_when_no_run_holds_the_request():
    heap = pagealloc.Heap(64 << 20)  # one arena: 8192 pages, no room to grow beyond
    spans = [heap.alloc(512, zero=False) for _ in range(16)]  # the whole heap
    for s in spans[::2]:
        s.free()  # 8 free holes of 512 pages
    assert heap.largest_free() == 512
    [one] = heap.alloc_extents(300, 4)  # a run holds it: one span
    assert one.npages == 300
    one.free()
    assert heap.alloc_extents(2000, 3) is None  # needs four holes
    got = heap.alloc_extents(2000, 4)
    assert [s.npages for s in got] == [512, 512, 512, 464]
    assert [s.address for s in got] == sorted(s.address for s in got)  # equal lengths: lowest first
    for s in got:
        mv = memoryview(s)
        assert not any(mv[:: 4096])
        mv[:1] = b"x"
        mv.release()
    assert heap.stats().in_use == (8 * 512 + 2000) * PS
    heap.verify()
    for s in got + spans[1::2]:
        s.free()
    assert heap.stats().in_use == 0
    heap.verify()
    with pytest.raises(ValueError, match="max_extents must be at least 1, got 0"):
        heap.alloc_extents(5, 0)
