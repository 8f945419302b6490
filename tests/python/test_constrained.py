"""Aligned, bounded and fixed-address allocation, snapshots and the
RangeAllocator, from Python (exactness against the scanning model is in the
state machine and tests/constrained.rs)."""

import copy
import pickle
import random

import pytest

import pagealloc
from pagealloc import PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES as P
from pagealloc.model import Model

B = pagealloc.BASE_CHUNK_IDX
BASE = pagealloc.chunk_base(B)


def fresh(chunks=8):
    pa = pagealloc.PageAlloc()
    pa.grow(BASE, chunks * PALLOC_CHUNK_BYTES)
    return pa


def test_align_within_and_alloc_at():
    pa = fresh()
    pa.alloc_at(BASE + PAGE_SIZE, 1)  # page 1 in use
    assert pa.alloc(2, align=2) == BASE + 2 * PAGE_SIZE
    assert pa.alloc(1, align=P) == BASE  # page 0 is free and chunk-aligned
    assert pa.alloc(1, align=P) == pagealloc.chunk_base(B + 1)
    lo, hi = pagealloc.page_base(B + 3, 10), pagealloc.page_base(B + 3, 20)
    assert pa.alloc(10, within=(lo, hi)) == lo
    assert pa.alloc(1, within=(lo, hi)) is None
    assert pa.alloc_scav(4, align=4, within=(BASE, BASE + 64 * PAGE_SIZE)) == (BASE + 4 * PAGE_SIZE, 4 * PAGE_SIZE)
    assert pa.alloc_at(BASE + 8 * PAGE_SIZE, 2) == 2 * PAGE_SIZE
    pa.verify()


@pytest.mark.parametrize(
    "call",
    [
        lambda pa: pa.alloc(1, align=3),
        lambda pa: pa.alloc(1, align=0),
        lambda pa: pa.alloc(1, within=(10, 10)),
        lambda pa: pa.alloc(1, within=(20, 10)),
        lambda pa: pa.alloc_at(BASE + 1, 1),
        lambda pa: pa.alloc_at(BASE, 0),
        lambda pa: pa.alloc_at(pagealloc.chunk_base(B + 100), 1),  # not grown
        lambda pa: pa.alloc_at(BASE + (P - 1) * PAGE_SIZE, 2),  # page P is in use below
    ],
)
def test_bad_constraints_raise_value_error_and_change_nothing(call):
    pa = fresh(1)
    pa.alloc_at(BASE, 1)
    before = pa.to_bytes()
    with pytest.raises(ValueError):
        call(pa)
    assert pa.to_bytes() == before


def random_workload(pa, model, rng, steps, live):
    out = []
    for _ in range(steps):
        r = rng.random()
        if r < 0.5 or not live:
            n, align = rng.choice([1, 2, 7, 100, 600]), 1 << rng.randrange(7)
            got = pa.alloc_scav(n, align=align)
            assert got == model.alloc_constrained(n, align)
            out.append(got)
            if got[0] is not None:
                live.append((got[0], n))
        elif r < 0.9:
            a, n = live.pop(rng.randrange(len(live)))
            pa.free(a, n)
            model.free(a, n)
        else:
            nbytes = rng.choice([PAGE_SIZE, 1 << 20, 1 << 30])
            got = pa.scavenge(nbytes)
            assert got == model.scavenge(nbytes)
            out.append(got)
    return out


def test_snapshots_round_trip_exactly():
    rng = random.Random(12)
    for trial in range(5):
        pa = fresh(4)
        pa.phys_huge_page_size = 2 << 20
        model = Model("amd64", huge_pages=256)
        model.grow(BASE, 4 * PALLOC_CHUNK_BYTES)
        live = []
        random_workload(pa, model, rng, 150, live)
        data = pa.to_bytes()
        assert len(data) < 4 * 128 + 200  # sized by the grown heap
        for copy_ in (pagealloc.PageAlloc.from_bytes(data), pickle.loads(pickle.dumps(pa)), copy.deepcopy(pa), copy.copy(pa)):
            assert type(copy_) is pagealloc.PageAlloc
            assert copy_.to_bytes() == data
            assert copy_.search_addr == pa.search_addr and copy_.bounds == pa.bounds
        # The same future on the original and a copy.
        twin = pagealloc.PageAlloc.from_bytes(data)
        seed = rng.random()
        m1, m2 = copy.deepcopy(model), copy.deepcopy(model)
        a = random_workload(pa, m1, random.Random(seed), 150, list(live))
        b = random_workload(twin, m2, random.Random(seed), 150, list(live))
        assert a == b
        assert pa.to_bytes() == twin.to_bytes()


def test_damaged_snapshots_raise_value_error():
    pa = fresh(2)
    pa.alloc(77)
    data = pa.to_bytes()
    for bad in (b"", data[:-1], data + b"\0", b"x" * len(data)):
        with pytest.raises(ValueError, match="bad snapshot"):
            pagealloc.PageAlloc.from_bytes(bad)
    rng = random.Random(3)
    for _ in range(300):
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        with pytest.raises(ValueError):
            pagealloc.PageAlloc.from_bytes(bytes(b))
    with pytest.raises(TypeError):
        pagealloc.PageAlloc.from_bytes("not bytes")


def test_range_allocator():
    ra = pagealloc.RangeAllocator(64 << 20, page_size=4096)  # a 64 MiB GPU buffer, say
    a = ra.alloc(100)  # rounds up to a page
    assert a == 0  # offset 0 is allocatable
    b = ra.alloc(1 << 20, align=64 << 10)
    assert b == 64 << 10
    ra.alloc_at(8192, 4096)
    with pytest.raises(ValueError):
        ra.alloc_at(8192, 1)
    ra.free(a, 100)
    assert ra.alloc(4096) == 0
    st = ra.stats()
    assert (st.size, st.page_size) == (64 << 20, 4096)
    assert st.in_use == 4096 + (1 << 20) + 4096
    assert st.free == st.size - st.in_use
    assert ra.alloc(128 << 20) is None
    ra.grow(256 << 20)
    assert ra.alloc(128 << 20, align=128 << 20) == 128 << 20
    for bad in (lambda: ra.alloc(0), lambda: ra.alloc(1, align=3), lambda: ra.free(1, 1),
                lambda: ra.free(1 << 40, 1), lambda: ra.grow(1), lambda: pagealloc.RangeAllocator(1 << 20, 3000)):
        with pytest.raises(ValueError):
            bad()
    ra.verify()


@pytest.mark.parametrize("page_size,bits", [(4096, 32), (4096, 39), (65536, 48), (2 << 20, 48), (1 << 30, 57)])
def test_custom_layouts(page_size, bits):
    ly = pagealloc.Layout.custom(page_size, bits)
    assert (ly.is_custom, ly.page_size, ly.address_bits, ly.arch) == (True, page_size, bits, "custom")
    assert ly.summary_levels == (4 if bits == 32 else 5)
    pa = pagealloc.PageAlloc(layout=ly)
    assert pa.arch == "custom" and pa.layout.page_size == page_size
    b = ly.base_chunk_idx
    base = ly.chunk_base(b)
    pa.grow(base, 2 * P * page_size)
    assert pa.alloc(3) == base
    assert pa.alloc(1, align=4) == base + 4 * page_size
    assert pa.alloc(P) == base + 5 * page_size  # straddles the chunk boundary
    pa.alloc_at(base + 600 * page_size, 2)
    pa.free(base, 3)
    assert pa.alloc(2) == base
    with pytest.raises(ValueError):
        pa.free(base + page_size // 2, 1)
    with pytest.raises(ValueError):
        pa.alloc_to_cache()  # page caches are Go's, for 8 KiB pages
    pa.verify()
    copy_ = pickle.loads(pickle.dumps(pa))
    assert copy_.layout.page_size == page_size and copy_.to_bytes() == pa.to_bytes()
    fc = pagealloc.PageAlloc.from_chunks({b: [(0, 5)]}, layout=ly)
    assert fc.alloc(1) == base + 5 * page_size


@pytest.mark.parametrize("args", [(3000, 48), (4096, 31), (4096, 58), (1 << 30, 48), (65536, 32), (4096, 48, 100)])
def test_bad_custom_layouts(args):
    with pytest.raises(ValueError, match="bad layout"):
        pagealloc.Layout.custom(*args)
