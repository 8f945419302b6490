"""Go 1.19's form of TestPageAllocAlloc (mpagealloc_test.go): every case
carries a scavenged bitmap per chunk, and every hit the bytes of it that were
scavenged (Go 1.19's second result of alloc). Case names are Go's; the two
64-bit-only cases run on amd64 and arm64, as Go runs them on 64-bit ports.
Every case runs on every layout preset with its own BaseChunkIdx.

Go 1.19's TestPageAllocFree, TestPageAllocExhaust and TestPageAllocAllocAndFree
use the same tables as the seed's (test_go_tables.py), and their 1.19 check
compares the scavenged bitmaps too: conftest.check_page_alloc does.
"""

import pytest

import pagealloc
from conftest import ARCHES, check_page_alloc

P = pagealloc.PALLOC_CHUNK_PAGES
PS = pagealloc.PAGE_SIZE
# Go's chunkIdxBigJump (O(TiB) of address space) and chunkIdxSmallOffset.
BIG = 0x100000
SMALL = 0x503


def alloc_table(B, PB):
    """name -> dict(before, scav, hits [(npages, base or 0, scav bytes)], after)."""
    return {
        "AllFree1": dict(
            before={B: []},
            scav={B: [(0, 1), (2, 2)]},
            hits=[(1, PB(B, 0), PS), (1, PB(B, 1), 0), (1, PB(B, 2), PS), (1, PB(B, 3), PS), (1, PB(B, 4), 0)],
            after={B: [(0, 5)]},
        ),
        "ManyArena1": dict(
            before={B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P - 1)]},
            scav={B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
            hits=[(1, PB(B + 2, P - 1), PS)],
            after={B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
        ),
        "NotContiguous1": dict(
            before={B: [(0, P)], B + 0xff: [(0, 0)]},
            scav={B: [(0, P)], B + 0xff: [(0, P)]},
            hits=[(1, PB(B + 0xff, 0), PS)],
            after={B: [(0, P)], B + 0xff: [(0, 1)]},
        ),
        "AllFree2": dict(
            before={B: []},
            scav={B: [(0, 3), (7, 1)]},
            hits=[
                (2, PB(B, 0), 2 * PS),
                (2, PB(B, 2), PS),
                (2, PB(B, 4), 0),
                (2, PB(B, 6), PS),
                (2, PB(B, 8), 0),
            ],
            after={B: [(0, 10)]},
        ),
        "Straddle2": dict(
            before={B: [(0, P - 1)], B + 1: [(1, P - 1)]},
            scav={B: [(P - 1, 1)], B + 1: []},
            hits=[(2, PB(B, P - 1), PS)],
            after={B: [(0, P)], B + 1: [(0, P)]},
        ),
        "AllFree5": dict(
            before={B: []},
            scav={B: [(0, 8), (9, 1), (17, 5)]},
            hits=[
                (5, PB(B, 0), 5 * PS),
                (5, PB(B, 5), 4 * PS),
                (5, PB(B, 10), 0),
                (5, PB(B, 15), 3 * PS),
                (5, PB(B, 20), 2 * PS),
            ],
            after={B: [(0, 25)]},
        ),
        "AllFree64": dict(
            before={B: []},
            scav={B: [(21, 1), (63, 65)]},
            hits=[(64, PB(B, 0), 2 * PS), (64, PB(B, 64), 64 * PS), (64, PB(B, 128), 0)],
            after={B: [(0, 192)]},
        ),
        "AllFree65": dict(
            before={B: []},
            scav={B: [(129, 1)]},
            hits=[(65, PB(B, 0), 0), (65, PB(B, 65), PS), (65, PB(B, 130), 0)],
            after={B: [(0, 195)]},
        ),
        "ExhaustPallocChunkPages-3": dict(
            before={B: []},
            scav={B: [(10, 1)]},
            hits=[
                (P - 3, PB(B, 0), PS),
                (P - 3, 0, 0),
                (1, PB(B, P - 3), 0),
                (2, PB(B, P - 2), 0),
                (1, 0, 0),
                (P - 3, 0, 0),
            ],
            after={B: [(0, P)]},
        ),
        "AllFreePallocChunkPages": dict(
            before={B: []},
            scav={B: [(0, 1), (P - 1, 1)]},
            hits=[(P, PB(B, 0), 2 * PS), (P, 0, 0), (1, 0, 0)],
            after={B: [(0, P)]},
        ),
        "StraddlePallocChunkPages": dict(
            before={B: [(0, P // 2)], B + 1: [(P // 2, P // 2)]},
            scav={B: [], B + 1: [(3, 100)]},
            hits=[(P, PB(B, P // 2), 100 * PS), (P, 0, 0), (1, 0, 0)],
            after={B: [(0, P)], B + 1: [(0, P)]},
        ),
        "StraddlePallocChunkPages+1": dict(
            before={B: [(0, P // 2)], B + 1: []},
            scav={B: [(0, P)], B + 1: [(0, P)]},
            hits=[(P + 1, PB(B, P // 2), (P + 1) * PS), (P, 0, 0), (1, PB(B + 1, P // 2 + 1), PS)],
            after={B: [(0, P)], B + 1: [(0, P // 2 + 2)]},
        ),
        "AllFreePallocChunkPages*2": dict(
            before={B: [], B + 1: []},
            scav={B: [], B + 1: []},
            hits=[(P * 2, PB(B, 0), 0), (P * 2, 0, 0), (1, 0, 0)],
            after={B: [(0, P)], B + 1: [(0, P)]},
        ),
        "NotContiguousPallocChunkPages*2": dict(
            before={B: [], B + 0x40: [], B + 0x41: []},
            scav={B: [(0, P)], B + 0x40: [], B + 0x41: []},
            hits=[(P * 2, PB(B + 0x40, 0), 0), (21, PB(B, 0), 21 * PS), (1, PB(B, 21), PS)],
            after={B: [(0, 22)], B + 0x40: [(0, P)], B + 0x41: [(0, P)]},
        ),
        "StraddlePallocChunkPages*2": dict(
            before={B: [(0, P // 2)], B + 1: [], B + 2: [(P // 2, P // 2)]},
            scav={B: [(0, 7)], B + 1: [(3, 5), (121, 10)], B + 2: [(P // 2 + 12, 2)]},
            hits=[(P * 2, PB(B, P // 2), 15 * PS), (P * 2, 0, 0), (1, 0, 0)],
            after={B: [(0, P)], B + 1: [(0, P)], B + 2: [(0, P)]},
        ),
        "StraddlePallocChunkPages*5/4": dict(
            before={B: [(0, P)], B + 1: [(0, P * 3 // 4)], B + 2: [(0, P * 3 // 4)], B + 3: [(0, 0)]},
            scav={B: [(0, P)], B + 1: [(P // 2, P // 4 + 1)], B + 2: [(P // 3, 1)], B + 3: [(P * 2 // 3, 1)]},
            hits=[(P * 5 // 4, PB(B + 2, P * 3 // 4), PS), (P * 5 // 4, 0, 0), (1, PB(B + 1, P * 3 // 4), PS)],
            after={B: [(0, P)], B + 1: [(0, P * 3 // 4 + 1)], B + 2: [(0, P)], B + 3: [(0, P)]},
        ),
        "AllFreePallocChunkPages*7+5": dict(
            before={B: [], B + 1: [], B + 2: [], B + 3: [], B + 4: [], B + 5: [], B + 6: [], B + 7: []},
            scav={
                B: [(50, 1)],
                B + 1: [(31, 1)],
                B + 2: [(7, 1)],
                B + 3: [(200, 1)],
                B + 4: [(3, 1)],
                B + 5: [(51, 1)],
                B + 6: [(20, 1)],
                B + 7: [(1, 1)],
            },
            hits=[(P * 7 + 5, PB(B, 0), 8 * PS), (P * 7 + 5, 0, 0), (1, PB(B + 7, 5), 0)],
            after={
                B: [(0, P)],
                B + 1: [(0, P)],
                B + 2: [(0, P)],
                B + 3: [(0, P)],
                B + 4: [(0, P)],
                B + 5: [(0, P)],
                B + 6: [(0, P)],
                B + 7: [(0, 6)],
            },
        ),
    }


def alloc_table_64bit(B, PB):
    """The cases Go adds on 64-bit ports: chunks far apart, placed so that a
    search could stray into summaries that were never mapped."""
    SPP = 4096 // 8  # Go's sumsPerPhysPage: 8-byte summaries per 4 KiB page
    b = B & ~(SPP - 1)
    lo, hi = b + SPP - 1, b + BIG
    mid = B + BIG + SMALL
    return {
        "DiscontiguousMappedSumBoundary": dict(
            before={lo: [], hi: []},
            scav={lo: [], hi: []},
            hits=[(P - 1, PB(lo, 0), 0), (1, PB(lo, P - 1), 0), (1, PB(hi, 0), 0), (P - 1, PB(hi, 1), 0), (1, 0, 0)],
            after={lo: [(0, P)], hi: [(0, P)]},
        ),
        "DiscontiguousBadSearchAddr": dict(
            before={B: [(0, P - 1)], mid: [(0, P - 10), (P - 1, 1)], B + 2 * BIG: []},
            scav={B: [], mid: [], B + 2 * BIG: []},
            hits=[(1, PB(B, P - 1), 0), (100, PB(b + 2 * BIG, 0), 0), (9, PB(b + BIG + SMALL, P - 10), 0)],
            after={B: [(0, P)], mid: [(0, P)], B + 2 * BIG: [(0, 100)]},
        ),
    }


def table(arch):
    ly = pagealloc.layout(arch)
    B, PB = ly.base_chunk_idx, ly.page_base
    t = alloc_table(B, PB)
    if arch != "386":
        t.update(alloc_table_64bit(B, PB))
    return t


CASES = [(arch, name) for arch in ARCHES for name in table(arch)]


@pytest.mark.parametrize("go", ["1.19", "1.26"])
@pytest.mark.parametrize("arch,name", CASES)
def test_page_alloc_alloc_go119(arch, name, go):
    """Go 1.19's TestPageAllocAlloc table, which Go 1.26 keeps case for case,
    on an allocator of each version."""
    case = table(arch)[name]
    b = pagealloc.PageAlloc.from_chunks(case["before"], arch=arch, scav=case["scav"], go=go)
    for k, (npages, base, scav) in enumerate(case["hits"], 1):
        got, got_scav = b.alloc_scav(npages)
        assert (got or 0) == base, f"bad alloc #{k}: want base {base:#x}, got {got}"
        assert got_scav == scav, f"bad alloc #{k}: want scav {scav}, got {got_scav}"
        b.verify()
    want = pagealloc.PageAlloc.from_chunks(case["after"], arch=arch, scav=case["scav"], go=go)
    check_page_alloc(want, b)


def test_case_counts():
    """The port is complete: Go 1.19's 17 cases, plus 2 on 64-bit presets."""
    assert len(table("386")) == 17
    assert len(table("amd64")) == 19
