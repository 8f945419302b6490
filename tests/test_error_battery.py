"""Bad arguments to the public methods that tests/test_bad_input.py does not
walk (the questions, extents, RangeAllocator, Heap, Span, TraceReplay, the
NumPy handler): each raises, names the value as the caller gave it (in the
caller's units), and changes nothing."""

from __future__ import annotations

import pytest

import pagealloc

PS = pagealloc.PAGE_SIZE


@pytest.fixture
def pa():
    p = pagealloc.PageAlloc()
    p.grow(pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX), pagealloc.PALLOC_CHUNK_BYTES)
    p.alloc(3)
    return p


PAGEALLOC_CALLS = [
    ("largest_free align 6", lambda p: p.largest_free(align=6), ValueError, "got 6"),
    ("largest_free align -1", lambda p: p.largest_free(align=-1), ValueError, "got -1"),
    ("first_fit 0 pages", lambda p: p.first_fit(0), ValueError, "npages must be at least 1, got 0"),
    ("would_fit align 0", lambda p: p.would_fit(5, align=0), ValueError, "got 0"),
    ("would_fit empty window", lambda p: p.would_fit(1, within=(10, 5)), ValueError, "[0xa, 0x5)"),
    ("alloc_or_raise align 3", lambda p: p.alloc_or_raise(1, align=3), ValueError, "got 3"),
    ("alloc_extents 0 pages", lambda p: p.alloc_extents(0, 2), ValueError, "npages must be at least 1, got 0"),
    ("alloc_extents 0 extents", lambda p: p.alloc_extents(3, 0), ValueError, "max_extents must be at least 1, got 0"),
    ("alloc_extents a str", lambda p: p.alloc_extents("3", 1), TypeError, "str"),
]


@pytest.mark.parametrize("what,call,exc,fragment", PAGEALLOC_CALLS, ids=[c[0] for c in PAGEALLOC_CALLS])
def test_pagealloc_questions(pa, what, call, exc, fragment):
    before = pa.to_bytes()
    with pytest.raises(exc) as info:
        call(pa)
    assert fragment in str(info.value), f"{what}: {info.value}"
    assert pa.to_bytes() == before


RANGE_CALLS = [
    ("alloc 0 bytes", lambda r: r.alloc(0), "nbytes must be at least 1 byte, got 0"),
    ("would_fit 0 bytes", lambda r: r.would_fit(0), "nbytes must be at least 1 byte, got 0"),
    ("would_fit align 3", lambda r: r.would_fit(10, align=3), "align must be a power of two, in bytes, got 3"),
    ("largest_free align 12288", lambda r: r.largest_free(align=12288), "got 12288"),
    ("alloc_extents 0 bytes", lambda r: r.alloc_extents(0, 1), "nbytes must be at least 1 byte, got 0"),
    ("alloc_extents 0 extents", lambda r: r.alloc_extents(4096, 0), "max_extents must be at least 1, got 0"),
    ("free past the end", lambda r: r.free(1 << 21, 4096), "0x200000"),
    ("free misaligned", lambda r: r.free(4095, 1), "offset 4095 (0xfff) is not a multiple of the page size (4096 bytes)"),
    ("alloc_at misaligned", lambda r: r.alloc_at(100, 10), "offset 100 (0x64)"),
    ("grow smaller", lambda r: r.grow(10), "size 10"),
]


@pytest.mark.parametrize("what,call,fragment", RANGE_CALLS, ids=[c[0] for c in RANGE_CALLS])
def test_range_allocator(what, call, fragment):
    ra = pagealloc.RangeAllocator(1 << 20, page_size=4096)
    ra.alloc(3 * 4096)
    before = ra.stats()
    with pytest.raises(ValueError) as info:
        call(ra)
    assert fragment in str(info.value), f"{what}: {info.value}"
    assert ra.stats() == before


def test_heap_and_spans():
    heap = pagealloc.Heap(1 << 30)
    cases = [
        (lambda: heap.alloc(0), ValueError, "npages must be at least 1, got 0"),
        (lambda: heap.alloc(1 << 20), MemoryError, "1048576 page(s) do not fit in max_bytes=1073741824"),
        (lambda: heap.would_fit(0), ValueError, "got 0"),
        (lambda: heap.scavenge(-1), ValueError, "got -1"),
        (lambda: pagealloc.Heap(0), ValueError, "max_bytes must be at least 1 byte, got 0"),
        (lambda: pagealloc.Heap(-5), ValueError, "got -5"),
    ]
    for call, exc, fragment in cases:
        with pytest.raises(exc) as info:
            call()
        assert fragment in str(info.value), str(info.value)
    s = heap.alloc(2)
    addr = s.address
    s.free()
    with pytest.raises(ValueError, match=rf"span at {addr:#x} \(2 pages\) already freed"):
        s.free()
    with pytest.raises(ValueError, match=rf"span at {addr:#x} \(2 pages\) already freed: no buffer of it"):
        memoryview(s)
    assert heap.stats().in_use == 0


def test_trace_replay_and_numpy_handler():
    with pytest.raises(ValueError, match=r"line 2: 3 names no earlier allocation"):
        pagealloc.TraceReplay("grow 0xc000000000 0x400000\nfree 3\n")
    with pytest.raises(ValueError, match=r"line 2: bad stop=\"0\""):
        pagealloc.TraceReplay("version 3\nscavenge 1 stop=0\n")
    pytest.importorskip("numpy", reason="the NumPy handler needs numpy (the test extra installs it)")
    heap = pagealloc.Heap(1 << 30)
    with pytest.raises(ValueError, match="threshold must be at least 1 byte, got 0"):
        pagealloc.numpy_heap(heap, threshold=0)
    with pytest.raises(TypeError, match="Heap"):
        pagealloc.numpy_heap(object())
