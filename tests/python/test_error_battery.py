"""Bad arguments to the public methods: the questions, extents,
RangeAllocator, Heap, Span, TraceReplay and the NumPy handler first, then a
table over every other public method (PageAlloc, page caches, layouts, the
chunk-level pieces, traces). Each raises, names the value as the caller
gave it (in the caller's units), and changes nothing.
tests/python/test_bad_input.py adds the integer conversions and state checks."""

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
    ("alloc align 3", lambda r: r.alloc(10, align=3), "align must be a power of two, in bytes, got 3"),
    ("free at offset 12345", lambda r: r.free(12345, 10),
     "offset 12345 (0x3039) is not a multiple of the page size (4096 bytes)"),
    ("alloc_at over an allocated page", lambda r: r.alloc_at(8192, 8192), "the page at offset 0x2000 is already allocated"),
    ("free of a free page", lambda r: r.free(1 << 19, 4096), "the page at offset 0x80000 is not allocated"),
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


def test_range_stats_compare_by_value():
    ra = pagealloc.RangeAllocator(1 << 20, page_size=4096)
    assert ra.stats() == ra.stats() and ra.stats() != 3


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


# --- every other public method: PageAlloc, its page caches, layouts, the
# chunk-level pieces, traces, Heap construction, the NumPy handler ---------

BASE = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
CI = pagealloc.BASE_CHUNK_IDX
FAR = 0x1000_0000_0000  # never grown

EVERYWHERE = [
    ("grow zero bytes", lambda p: p.grow(BASE + (1 << 33), 0), ValueError, 0),
    ("grow over a grown chunk", lambda p: p.grow(BASE, 4 << 20), ValueError, BASE),
    ("alloc 0 pages", lambda p: p.alloc(0), ValueError, 0),
    ("alloc -5 pages", lambda p: p.alloc(-5), (ValueError, OverflowError), -5),
    ("alloc 2**70 pages", lambda p: p.alloc(1 << 70), (ValueError, OverflowError), 1 << 70),
    ("alloc a str", lambda p: p.alloc("x"), TypeError, "str"),
    ("alloc align 3", lambda p: p.alloc(1, align=3), ValueError, 3),
    ("alloc within reversed", lambda p: p.alloc(1, within=(BASE + PS, BASE)), ValueError, BASE),
    ("free misaligned", lambda p: p.free(BASE + 1, 1), ValueError, BASE + 1),
    ("free not in use", lambda p: p.free(BASE + 100 * PS, 1), ValueError, BASE + 100 * PS),
    ("free 0 pages", lambda p: p.free(BASE, 0), ValueError, 0),
    ("free outside the heap", lambda p: p.free(FAR, 1), ValueError, FAR),
    ("alloc_at outside the heap", lambda p: p.alloc_at(FAR, 1), ValueError, FAR),
    ("alloc_at 0 pages", lambda p: p.alloc_at(BASE + 10 * PS, 0), ValueError, 0),
    ("scavenge -1 bytes", lambda p: p.scavenge(-1), (ValueError, OverflowError), -1),
    ("scav_chunk_data of an ungrown chunk", lambda p: p.scav_chunk_data(CI + 5), ValueError, CI + 5),
    ("summary at level 9", lambda p: p.summary(9, 0), ValueError, 9),
    ("summary past the level", lambda p: p.summary(0, 1 << 20), ValueError, 1 << 20),
    ("mark_padding outside the heap", lambda p: p.mark_padding(FAR, 1), ValueError, FAR),
    ("alloc_many of 0 pages", lambda p: p.alloc_many(0, 5), ValueError, 0),
    ("free_many of a free page", lambda p: p.free_many([BASE + 7 * PS], 1), ValueError, BASE + 7 * PS),
    ("page cache alloc 0", lambda p: pagealloc.PageAlloc.from_chunks({CI: []}).alloc_to_cache().alloc(0),
     ValueError, 0),
    ("from_bytes of 4 bytes", lambda p: pagealloc.PageAlloc.from_bytes(b"junk"), ValueError, 4),
    ("PageAlloc arch", lambda p: pagealloc.PageAlloc("sparc"), ValueError, "sparc"),
    ("PageAlloc go", lambda p: pagealloc.PageAlloc(go="1.20"), ValueError, "1.20"),
    ("from_chunks run past the chunk", lambda p: pagealloc.PageAlloc.from_chunks({CI: [(500, 20)]}), ValueError, 500),
    ("Layout.custom page_size", lambda p: pagealloc.Layout.custom(page_size=3000, address_bits=48), ValueError, 3000),
    ("Layout.custom address_bits", lambda p: pagealloc.Layout.custom(page_size=4096, address_bits=70), ValueError, 70),
    ("layout arch", lambda p: pagealloc.layout("mips"), ValueError, "mips"),
    ("chunk_base past the space", lambda p: pagealloc.chunk_base(1 << 40), ValueError, 1 << 40),
    ("PallocBits alloc_range past 512", lambda p: pagealloc.PallocBits().alloc_range(510, 5), ValueError, 510),
    ("PallocBits find 0 pages", lambda p: pagealloc.PallocBits().find(0, 0), ValueError, 0),
    ("pack_summary start 600", lambda p: pagealloc.pack_summary(600, 1, 1), ValueError, 600),
    ("TraceReplay misspelt op", lambda p: pagealloc.TraceReplay("grow 0x3000000000 0x400000\nallok 3\n"),
     ValueError, "allok"),
    ("Heap alloc 0 pages", lambda p: pagealloc.Heap(1 << 30).alloc(0), ValueError, 0),
    ("Heap(0)", lambda p: pagealloc.Heap(0), ValueError, 0),
    ("Heap memory_limit -1", lambda p: setattr(pagealloc.Heap(1 << 30), "memory_limit", -1),
     (ValueError, OverflowError), -1),
    ("Heap idle_budget -1", lambda p: setattr(pagealloc.Heap(1 << 30), "idle_budget", -1),
     (ValueError, OverflowError), -1),
    ("Heap scavenge -1", lambda p: pagealloc.Heap(1 << 30).scavenge(-1), (ValueError, OverflowError), -1),
    ("numpy_heap threshold -1", lambda p: pagealloc.numpy_heap(pagealloc.Heap(1 << 30), threshold=-1),
     (ValueError, OverflowError), -1),
    ("RangeAllocator page_size 3000", lambda p: pagealloc.RangeAllocator(1 << 20, page_size=3000), ValueError, 3000),
]


@pytest.mark.parametrize("what, call, exc, value", EVERYWHERE, ids=[c[0] for c in EVERYWHERE])
def test_every_public_method_names_the_value_given(pa, what, call, exc, value):
    """The message names the value as the caller gave it (decimal or hex
    for an integer), and the allocator is unchanged."""
    before = pa.to_bytes()
    with pytest.raises(exc) as info:
        call(pa)
    msg = str(info.value)
    if isinstance(value, int):
        forms = {str(value), hex(value)} | ({f"{value:#x}".replace("0x-", "-0x")} if value < 0 else set())
        assert any(f in msg for f in forms), f"{what}: {msg!r} does not name {value}"
    else:
        assert value in msg, f"{what}: {msg!r} does not name {value!r}"
    assert pa.to_bytes() == before


# --- rough edges a newcomer hit -----------------------------------------------


def test_npages_errors_name_the_argument():
    pa = pagealloc.PageAlloc()
    for call in (lambda: pa.alloc(-1), lambda: pa.free(0x3000000000, -2), lambda: pa.would_fit(-1)):
        with pytest.raises(ValueError, match=r"npages must be a page count in \[1, 2\*\*64\), got -\d"):
            call()
    with pytest.raises(TypeError, match="npages must be an int"):
        pa.alloc("3")


def test_trace_replay_takes_text_or_utf8_bytes_and_counts_of_ops():
    rep = pagealloc.TraceReplay(b"grow 0xc000000000 0x400000\nalloc 1\n")
    assert rep.run() == 2 and rep.addresses == [0xC000000000]
    with pytest.raises(ValueError, match="text is not UTF-8"):
        pagealloc.TraceReplay(b"alloc \xff\n")
    with pytest.raises(TypeError, match=r"text must be a trace's text \(str or UTF-8 bytes\), got int"):
        pagealloc.TraceReplay(3)
    for call in (lambda r: r.run(-1), lambda r: r.census(-5)):
        r = pagealloc.TraceReplay("grow 0xc000000000 0x400000\n")
        with pytest.raises(ValueError, match="max_ops must be a count of ops, at least 0, got -"):
            call(r)
        assert r.done == 0


def test_range_allocator_sizes_in_its_own_terms():
    with pytest.raises(ValueError, match="size 1000 bytes is not a whole number of pages of 4096 bytes"):
        pagealloc.RangeAllocator(1000, page_size=4096)
    with pytest.raises(ValueError, match=r"size 1125899906842624 bytes is more than a RangeAllocator manages "
                                         r"with this page size \(at most \d+ bytes\)"):
        pagealloc.RangeAllocator(2**50)
    ra = pagealloc.RangeAllocator(8192, page_size=4096)
    with pytest.raises(ValueError, match="new size 4096 bytes is below the current size 8192"):
        ra.grow(4096)
    with pytest.raises(ValueError, match="size 12289 bytes is not a whole number of pages"):
        ra.grow(12289)
    assert ra.stats().size == 8192


def test_version_has_one_source():
    import re
    from pathlib import Path

    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    assert pagealloc.__version__ == re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
