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
