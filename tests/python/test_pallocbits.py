"""Chunk-level and summary-level tables, in the spirit of Go's
mpallocbits_test.go (case names kept where Go has them)."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pagealloc
from pagealloc import PallocBits

P = pagealloc.PALLOC_CHUNK_PAGES
ALL = (1 << 64) - 1


def words(b: PallocBits) -> list[int]:
    v = b.value
    return [(v >> (64 * k)) & ALL for k in range(8)]


def from_words(ws: dict[int, int]) -> PallocBits:
    return PallocBits(sum(w << (64 * k) for k, w in ws.items()))


def inverted(b: PallocBits) -> PallocBits:
    return PallocBits(b.value ^ ((1 << P) - 1))


# -- TestPallocBitsAllocRange ---------------------------------------------------

ALLOC_RANGE = {
    "OneLow": (0, 1, {0: 0x1}),
    "OneHigh": (P - 1, 1, {7: 1 << 63}),
    "Inner": (129, 5, {2: 0x3E}),
    "Aligned": (128, 128, {2: ALL, 3: ALL}),
    "Begin": (0, 321, {0: ALL, 1: ALL, 2: ALL, 3: ALL, 4: ALL, 5: 0x1}),
    "End": (P - (64 * 3 + 1), 64 * 3 + 1, {7: ALL, 6: ALL, 5: ALL, 4: 1 << 63}),
    "All": (0, P, {k: ALL for k in range(8)}),
}


@pytest.mark.parametrize("name", ALLOC_RANGE)
def test_palloc_bits_alloc_range(name):
    i, n, want = ALLOC_RANGE[name]
    b = PallocBits()
    b.alloc_range(i, n)
    assert b == from_words(want)
    assert PallocBits.from_ranges([(i, n)]) == b


# -- TestPallocBitsSummarize ----------------------------------------------------

SUMMARIZE = {
    # free ranges -> (start, max, end)
    "NoneFree": ([], (0, 0, 0)),
    "OnlyStart": ([(0, 10)], (10, 10, 0)),
    "OnlyEnd": ([(P - 40, 40)], (0, 40, 40)),
    "StartAndEnd": ([(0, 11), (P - 23, 23)], (11, 23, 23)),
    "StartMaxEnd": ([(0, 4), (50, 100), (P - 4, 4)], (4, 100, 4)),
    "OnlyMax": ([(1, 20), (35, 241), (P - 50, 30)], (0, 241, 0)),
    "MultiMax": ([(35, 2), (40, 5), (100, 5)], (0, 5, 0)),
    "One": ([(2, 1)], (0, 1, 0)),
    "AllFree": ([(0, P)], (P, P, P)),
}


@pytest.mark.parametrize("name", SUMMARIZE)
def test_palloc_bits_summarize(name):
    free, want = SUMMARIZE[name]
    # The table lists free ranges; in a real bitmap 1 means in use.
    b = inverted(PallocBits.from_ranges(free))
    assert b.summarize() == want


def summarize_slow(b: PallocBits) -> tuple[int, int, int]:
    free = [not b[i] for i in range(P)]
    start = next((i for i, f in enumerate(free) if not f), P)
    end = next((i for i, f in enumerate(reversed(free)) if not f), P)
    best = cur = 0
    for f in free:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return start, best, end


def test_palloc_bits_summarize_random():
    rng = random.Random(1)
    for _ in range(1000):
        b = PallocBits(rng.getrandbits(P))
        assert b.summarize() == summarize_slow(b)


# -- TestPallocBitsAlloc ---------------------------------------------------------

NONE = None
ALLOC = {
    "AllFree1": ([], 1, [0, 1, 2, 3, 4, 5], [(0, 6)]),
    "AllFree2": ([], 2, [0, 2, 4, 6, 8, 10], [(0, 12)]),
    "AllFree5": ([], 5, [0, 5, 10, 15, 20], [(0, 25)]),
    "AllFree64": ([], 64, [0, 64, 128], [(0, 192)]),
    "AllFree65": ([], 65, [0, 65, 130], [(0, 195)]),
    "SomeFree64": (
        [(0, 32), (64, 32), (100, P - 100)],
        64,
        [NONE],
        [(0, 32), (64, 32), (100, P - 100)],
    ),
    "NoneFree1": ([(0, P)], 1, [NONE, NONE], [(0, P)]),
    "NoneFree2": ([(0, P)], 2, [NONE, NONE], [(0, P)]),
    "NoneFree5": ([(0, P)], 5, [NONE, NONE], [(0, P)]),
    "NoneFree65": ([(0, P)], 65, [NONE, NONE], [(0, P)]),
    "ExactFit1": ([(0, P // 2 - 3), (P // 2 - 2, P // 2 + 2)], 1, [P // 2 - 3, NONE], [(0, P)]),
    "ExactFit2": ([(0, P // 2 - 3), (P // 2 - 1, P // 2 + 1)], 2, [P // 2 - 3, NONE], [(0, P)]),
    "ExactFit5": ([(0, P // 2 - 3), (P // 2 + 2, P // 2 - 2)], 5, [P // 2 - 3, NONE], [(0, P)]),
    "ExactFit65": (
        [(0, P // 2 - 31), (P // 2 + 34, P // 2 - 34)],
        65,
        [P // 2 - 31, NONE],
        [(0, P)],
    ),
    "SomeFree161": ([(0, 185), (331, 1)], 161, [332], [(0, 185), (331, 162)]),
}


@pytest.mark.parametrize("name", ALLOC)
def test_palloc_bits_alloc(name):
    before, npages, hits, after = ALLOC[name]
    b = PallocBits.from_ranges(before)
    for k, want in enumerate(hits, 1):
        got, _ = b.find(npages, 0)
        assert got == want, f"find #{k} picked wrong index"
        if got is not None:
            b.alloc_range(got, npages)
    assert b == PallocBits.from_ranges(after)


# -- TestPallocBitsFree ----------------------------------------------------------

FREE = {
    "SomeFree": (1, [(0, 32), (64, 32), (100, 1)], [32], [(0, 33), (64, 32), (100, 1)]),
    "NoneFree1": (1, [], [0, 1, 2, 3, 4, 5], [(0, 6)]),
    "NoneFree2": (2, [], [0, 2, 4, 6, 8, 10], [(0, 12)]),
    "NoneFree5": (5, [], [0, 5, 10, 15, 20], [(0, 25)]),
    "NoneFree64": (64, [], [0, 64, 128], [(0, 192)]),
    "NoneFree65": (65, [], [0, 65, 130], [(0, 195)]),
}


@pytest.mark.parametrize("name", FREE)
def test_palloc_bits_free(name):
    npages, before_inv, frees, after_inv = FREE[name]
    b = inverted(PallocBits.from_ranges(before_inv))
    for i in frees:
        if npages == 1:
            c = b.copy()
            c.free1(i)
            b.free(i, 1)
            assert c == b
        else:
            b.free(i, npages)
    assert b == inverted(PallocBits.from_ranges(after_inv))


# -- TestFindBitRange64 ----------------------------------------------------------

FAIL = None
FIND_BIT_RANGE64 = [
    (0x8000000000000000, 1, 63),
    (0xC000010001010000, 2, 62),
    (0xC000010001030000, 2, 16),
    (0xE000030001030000, 3, 61),
    (0xE000030001070000, 3, 16),
    (0xFFFF03FF01070000, 16, 48),
    (0xFFFF03FF0107FFFF, 16, 0),
    (0x0FFF03FF01079FFF, 16, FAIL),
]


def test_find_bit_range64():
    def check(x, n, result):
        i = pagealloc.find_bit_range64(x, n)
        if result is FAIL:
            assert i >= 64, f"case ({x:016x}, {n}): got {i}, want failure"
        else:
            assert i == result, f"case ({x:016x}, {n})"

    for n in range(65):
        check(ALL, n, 0)
    check(0, 0, 0)
    for n in range(1, 65):
        check(0, n, FAIL)
    for case in FIND_BIT_RANGE64:
        check(*case)


# -- find's second result and precondition ---------------------------------------


@given(st.integers(0, (1 << P) - 1), st.integers(1, P))
def test_find_matches_slow_scan(value, npages):
    b = PallocBits(value)
    first_free = next((i for i in range(P) if not b[i]), None)
    got, new_search = b.find(npages, 0)
    run, want = 0, None
    for i in range(P):
        run = 0 if b[i] else run + 1
        if run == npages:
            want = i + 1 - npages
            break
    assert got == want
    if got is not None:
        assert new_search == first_free
    # Starting from the first free page's word gives the same answer.
    if first_free is not None and first_free > 0:
        assert b.find(npages, first_free)[0] == got


def test_find_rejects_bad_search_idx():
    b = PallocBits.from_ranges([(0, 10)])
    with pytest.raises(ValueError, match="page 10 below it is free"):
        b.find(1, 100)
    with pytest.raises(ValueError, match="512"):
        b.find(1, 512)
    with pytest.raises(ValueError, match="at least 1"):
        b.find(0)
    assert b.find(3, 10) == (10, 10)


def test_bad_ranges():
    b = PallocBits()
    for i, n in [(0, 0), (500, 13), (512, 1), (-1, 2)]:
        with pytest.raises(ValueError):
            b.alloc_range(i, n)
        with pytest.raises(ValueError):
            b.free(i, n)
    with pytest.raises(ValueError):
        PallocBits(1 << 512)
    with pytest.raises(ValueError):
        PallocBits(-1)
    with pytest.raises(TypeError):
        PallocBits("x")
    with pytest.raises(IndexError):
        b[512]
    assert b == PallocBits()
    assert len(b) == 512 and int(b) == 0


# -- packed summaries --------------------------------------------------------------


@pytest.mark.parametrize("arch", ["amd64", "386"])
def test_pack_unpack_round_trip(arch):
    w = pagealloc.layout(arch).log_max_packed_value
    cap = 1 << w
    for s, m, e in [(0, 0, 0), (1, 1, 1), (0, 5, 3), (P, P, P), (cap - 1, cap - 1, 0)]:
        packed = pagealloc.pack_summary(s, m, e, arch=arch)
        assert packed == s | m << w | e << (2 * w)
        assert pagealloc.unpack_summary(packed, arch=arch) == (s, m, e)
    # The whole-root-free special case is bit 63 alone.
    assert pagealloc.pack_summary(cap, cap, cap, arch=arch) == 1 << 63
    assert pagealloc.unpack_summary(1 << 63, arch=arch) == (cap, cap, cap)
    for bad in [(3, 2, 0), (0, cap + 1, 0), (0, cap, cap)]:
        with pytest.raises(ValueError, match="out of range"):
            pagealloc.pack_summary(*bad, arch=arch)


def naive_merge(sums, log_pages):
    """Expand each summary to a concrete page vector, concatenate, summarize."""
    n = 1 << log_pages
    pages = []
    for s, m, e in sums:
        if s == n:
            pages += [True] * n
            continue
        v = [False] * n
        v[:s] = [True] * s
        v[n - e :] = [True] * e
        v[s + 1 : s + 1 + m] = [True] * m
        pages += v
    start = next((i for i, f in enumerate(pages) if not f), len(pages))
    end = next((i for i, f in enumerate(reversed(pages)) if not f), len(pages))
    best = cur = 0
    for f in pages:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return start, best, end


@st.composite
def summaries(draw, log_pages=5):
    n = 1 << log_pages
    kind = draw(st.sampled_from(["full", "free", "mixed"]))
    if kind == "full":
        return (0, 0, 0)
    if kind == "free":
        return (n, n, n)
    s = draw(st.integers(0, n - 2))
    e = draw(st.integers(0, n - 2 - s))
    m = draw(st.integers(max(s, e), max(s, e, n - 2 - s - e)))
    if s + e + m + 2 > n:
        m = max(s, e)
        if s + e + m + 2 > n:
            return (0, 0, 0)
    return (s, m, e)


@given(st.lists(summaries(), min_size=1, max_size=8))
def test_merge_summaries_matches_naive(sums):
    packed = [pagealloc.pack_summary(*s) for s in sums]
    got = pagealloc.unpack_summary(pagealloc.merge_summaries(packed, 5))
    assert got == naive_merge(sums, 5)
