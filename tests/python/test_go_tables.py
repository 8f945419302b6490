"""The seed's allocator tables (mpagealloc_test.go), case names kept.

TestPageAllocAlloc, TestPageAllocExhaust, TestPageAllocFree and
TestPageAllocAllocAndFree, run on every layout preset with that preset's
BaseChunkIdx, as Go runs the same tables on 64-bit and 32-bit ports. Each
case is checked as the seed's checkPageAlloc does (bounds and every chunk
bitmap in [start, end)) plus verify() for the summaries.
"""

import pytest

import pagealloc
from conftest import ARCHES, check_page_alloc

P = pagealloc.PALLOC_CHUNK_PAGES


def alloc_table(B, PB):
    """TestPageAllocAlloc: name -> (before, hits [(npages, want base)], after)."""
    return {
        "AllFree1": (
            {B: []},
            [(1, PB(B, 0)), (1, PB(B, 1)), (1, PB(B, 2)), (1, PB(B, 3)), (1, PB(B, 4))],
            {B: [(0, 5)]},
        ),
        "ManyArena1": (
            {B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P - 1)]},
            [(1, PB(B + 2, P - 1))],
            {B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
        ),
        "NotContiguous1": (
            {B: [(0, P)], B + 0xFF: [(0, 0)]},
            [(1, PB(B + 0xFF, 0))],
            {B: [(0, P)], B + 0xFF: [(0, 1)]},
        ),
        "AllFree2": (
            {B: []},
            [(2, PB(B, 0)), (2, PB(B, 2)), (2, PB(B, 4)), (2, PB(B, 6)), (2, PB(B, 8))],
            {B: [(0, 10)]},
        ),
        "Straddle2": (
            {B: [(0, P - 1)], B + 1: [(1, P - 1)]},
            [(2, PB(B, P - 1))],
            {B: [(0, P)], B + 1: [(0, P)]},
        ),
        "AllFree5": (
            {B: []},
            [(5, PB(B, 0)), (5, PB(B, 5)), (5, PB(B, 10)), (5, PB(B, 15)), (5, PB(B, 20))],
            {B: [(0, 25)]},
        ),
        "AllFree64": (
            {B: []},
            [(64, PB(B, 0)), (64, PB(B, 64)), (64, PB(B, 128))],
            {B: [(0, 192)]},
        ),
        "AllFree65": (
            {B: []},
            [(65, PB(B, 0)), (65, PB(B, 65)), (65, PB(B, 130))],
            {B: [(0, 195)]},
        ),
        "ExhaustPallocChunkPages-3": (
            {B: []},
            [
                (P - 3, PB(B, 0)),
                (P - 3, 0),
                (1, PB(B, P - 3)),
                (2, PB(B, P - 2)),
                (1, 0),
                (P - 3, 0),
            ],
            {B: [(0, P)]},
        ),
        "AllFreePallocChunkPages": (
            {B: []},
            [(P, PB(B, 0)), (P, 0), (1, 0)],
            {B: [(0, P)]},
        ),
        "StraddlePallocChunkPages": (
            {B: [(0, P // 2)], B + 1: [(P // 2, P // 2)]},
            [(P, PB(B, P // 2)), (P, 0), (1, 0)],
            {B: [(0, P)], B + 1: [(0, P)]},
        ),
        "StraddlePallocChunkPages+1": (
            {B: [(0, P // 2)], B + 1: []},
            [(P + 1, PB(B, P // 2)), (P, 0), (1, PB(B + 1, P // 2 + 1))],
            {B: [(0, P)], B + 1: [(0, P // 2 + 2)]},
        ),
        "AllFreePallocChunkPages*2": (
            {B: [], B + 1: []},
            [(P * 2, PB(B, 0)), (P * 2, 0), (1, 0)],
            {B: [(0, P)], B + 1: [(0, P)]},
        ),
        "NotContiguousPallocChunkPages*2": (
            {B: [], B + 0x100: [], B + 0x101: []},
            [(P * 2, PB(B + 0x100, 0)), (21, PB(B, 0)), (1, PB(B, 21))],
            {B: [(0, 22)], B + 0x100: [(0, P)], B + 0x101: [(0, P)]},
        ),
        "StraddlePallocChunkPages*2": (
            {B: [(0, P // 2)], B + 1: [], B + 2: [(P // 2, P // 2)]},
            [(P * 2, PB(B, P // 2)), (P * 2, 0), (1, 0)],
            {B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
        ),
        "StraddlePallocChunkPages*5/4": (
            {B: [(0, P)], B + 1: [(0, P * 3 // 4)], B + 2: [(0, P * 3 // 4)], B + 3: [(0, 0)]},
            [(P * 5 // 4, PB(B + 2, P * 3 // 4)), (P * 5 // 4, 0), (1, PB(B + 1, P * 3 // 4))],
            {B: [(0, P)], B + 1: [(0, P * 3 // 4 + 1)], B + 2: [(0, P)], B + 3: [(0, P)]},
        ),
        "AllFreePallocChunkPages*7+5": (
            {B + i: [] for i in range(8)},
            [(P * 7 + 5, PB(B, 0)), (P * 7 + 5, 0), (1, PB(B + 7, 5))],
            {**{B + i: [(0, P)] for i in range(7)}, B + 7: [(0, 6)]},
        ),
    }


def free_table(B, PB):
    """TestPageAllocFree: name -> (npages, before, frees, after)."""
    return {
        "Free1": (1, {B: [(0, P)]}, [PB(B, i) for i in range(5)], {B: [(5, P - 5)]}),
        "ManyArena1": (
            1,
            {B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
            [PB(B, P // 2), PB(B + 1, 0), PB(B + 2, P - 1)],
            {
                B: [(0, P // 2), (P // 2 + 1, P // 2 - 1)],
                B + 1: [(1, P - 1)],
                B + 2: [(0, P - 1)],
            },
        ),
        "Free2": (2, {B: [(0, P)]}, [PB(B, i) for i in (0, 2, 4, 6, 8)], {B: [(10, P - 10)]}),
        "Straddle2": (
            2,
            {B: [(P - 1, 1)], B + 1: [(0, 1)]},
            [PB(B, P - 1)],
            {B: [], B + 1: []},
        ),
        "Free5": (5, {B: [(0, P)]}, [PB(B, i) for i in (0, 5, 10, 15, 20)], {B: [(25, P - 25)]}),
        "Free64": (64, {B: [(0, P)]}, [PB(B, i) for i in (0, 64, 128)], {B: [(192, P - 192)]}),
        "Free65": (65, {B: [(0, P)]}, [PB(B, i) for i in (0, 65, 130)], {B: [(195, P - 195)]}),
        "FreePallocChunkPages": (P, {B: [(0, P)]}, [PB(B, 0)], {B: []}),
        "StraddlePallocChunkPages": (
            P,
            {B: [(P // 2, P // 2)], B + 1: [(0, P // 2)]},
            [PB(B, P // 2)],
            {B: [], B + 1: []},
        ),
        "StraddlePallocChunkPages+1": (
            P + 1,
            {B: [(0, P)], B + 1: [(0, P)]},
            [PB(B, P // 2)],
            {B: [(0, P // 2)], B + 1: [(P // 2 + 1, P // 2 - 1)]},
        ),
        "FreePallocChunkPages*2": (
            P * 2,
            {B: [(0, P)], B + 1: [(0, P)]},
            [PB(B, 0)],
            {B: [], B + 1: []},
        ),
        "StraddlePallocChunkPages*2": (
            P * 2,
            {B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
            [PB(B, P // 2)],
            {B: [(0, P // 2)], B + 1: [], B + 2: [(P // 2, P // 2)]},
        ),
        "AllFreePallocChunkPages*7+5": (
            P * 7 + 5,
            {B + i: [(0, P)] for i in range(8)},
            [PB(B, 0)],
            {**{B + i: [] for i in range(7)}, B + 7: [(5, P - 5)]},
        ),
    }


def alloc_and_free_table(B, PB):
    """TestPageAllocAllocAndFree: name -> (init, hits [(alloc?, npages, base)])."""
    chunks8 = {B + i: [] for i in range(8)}
    return {
        "Chunks8": (
            chunks8,
            [
                (True, P * 8, PB(B, 0)),
                (False, P * 8, PB(B, 0)),
                (True, P * 8, PB(B, 0)),
                (False, P * 8, PB(B, 0)),
                (True, P * 8, PB(B, 0)),
                (False, P * 8, PB(B, 0)),
                (True, 1, PB(B, 0)),
                (False, 1, PB(B, 0)),
                (True, P * 8, PB(B, 0)),
            ],
        ),
    }


def helpers(arch):
    ly = pagealloc.layout(arch)
    return ly.base_chunk_idx, ly.page_base


def cases(table):
    B, PB = helpers("amd64")
    return [(arch, name) for arch in ARCHES for name in table(B, PB)]


@pytest.mark.parametrize("arch,name", cases(alloc_table))
def test_page_alloc_alloc(arch, name):
    before, hits, after = alloc_table(*helpers(arch))[name]
    b = pagealloc.PageAlloc.from_chunks(before, arch=arch)
    for k, (npages, base) in enumerate(hits, 1):
        got = b.alloc(npages) or 0
        assert got == base, f"bad alloc #{k}: want {base:#x}, got {got:#x}"
        b.verify()
    check_page_alloc(pagealloc.PageAlloc.from_chunks(after, arch=arch), b)


EXHAUST_SIZES = [1, 2, 3, 4, 5, 8, 16, 64, 1024, 1025, 2048, 2049]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("npages", EXHAUST_SIZES, ids=str)
def test_page_alloc_exhaust(arch, npages):
    B, PB = helpers(arch)
    b = pagealloc.PageAlloc.from_chunks({B + i: [] for i in range(4)}, arch=arch)
    n_alloc = (P * 4) // npages
    for i in range(n_alloc):
        addr = PB(B, i * npages)
        got = b.alloc(npages)
        assert got == addr, f"bad alloc #{i + 1}: want {addr:#x}, got {got}"
    assert b.alloc(npages) is None, f"bad alloc #{n_alloc}: want failure"
    alloc_pages = n_alloc * npages
    want = {}
    for i in range(4):
        here = max(0, min(P, alloc_pages - i * P))
        want[B + i] = [(0, here)] if here else []
    check_page_alloc(pagealloc.PageAlloc.from_chunks(want, arch=arch), b)


@pytest.mark.parametrize("arch,name", cases(free_table))
def test_page_alloc_free(arch, name):
    npages, before, frees, after = free_table(*helpers(arch))[name]
    b = pagealloc.PageAlloc.from_chunks(before, arch=arch)
    for addr in frees:
        b.free(addr, npages)
        b.verify()
    check_page_alloc(pagealloc.PageAlloc.from_chunks(after, arch=arch), b)


@pytest.mark.parametrize("arch,name", cases(alloc_and_free_table))
def test_page_alloc_alloc_and_free(arch, name):
    init, hits = alloc_and_free_table(*helpers(arch))[name]
    b = pagealloc.PageAlloc.from_chunks(init, arch=arch)
    for k, (is_alloc, npages, base) in enumerate(hits, 1):
        if is_alloc:
            got = b.alloc(npages) or 0
            assert got == base, f"bad alloc #{k}: want {base:#x}, got {got:#x}"
        else:
            b.free(base, npages)
        b.verify()


def test_case_counts():
    """The port is complete: every case of the seed's four tables is here."""
    B, PB = helpers("amd64")
    assert len(alloc_table(B, PB)) == 17
    assert len(EXHAUST_SIZES) == 12
    assert len(free_table(B, PB)) == 13
    assert len(alloc_and_free_table(B, PB)) == 1
