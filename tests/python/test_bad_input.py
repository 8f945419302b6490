"""Every bad call the Python API documents raises the documented exception, names the bad
value, and leaves the allocator exactly as it was."""

import os
import subprocess
import sys
import textwrap

import pytest

import pagealloc
from pagealloc import PAGE_SIZE, PALLOC_CHUNK_BYTES

CHUNK = PALLOC_CHUNK_BYTES


def snapshot(pa):
    start, end = pa.bounds
    return (
        pa.bounds,
        pa.search_addr,
        pa.grown_ranges,
        [pa.chunk_bitmap(ci) for ci in range(start, end)],
        pa.mapped_bytes,
    )


@pytest.fixture
def heap(arch):
    ly = pagealloc.layout(arch)
    b = ly.base_chunk_idx
    pa = pagealloc.PageAlloc.from_chunks({b: [(0, 10)], b + 2: [(5, 3)]}, arch=arch)
    return pa, ly, b


def bad_calls(ly, b):
    """(description, callable, exception, fragment of the message)."""
    pb = ly.page_base
    top = 1 << ly.heap_addr_bits
    calls = [
        ("alloc 0 pages", lambda pa: pa.alloc(0), ValueError, "got 0"),
        ("alloc negative", lambda pa: pa.alloc(-3), ValueError, "-3"),
        ("alloc 2**64", lambda pa: pa.alloc(2**64), ValueError, str(2**64)),
        ("alloc a str", lambda pa: pa.alloc("1"), TypeError, "str"),
        ("alloc a float", lambda pa: pa.alloc(1.0), TypeError, "float"),
        ("free 0 pages", lambda pa: pa.free(pb(b, 0), 0), ValueError, "got 0"),
        ("free misaligned", lambda pa: pa.free(pb(b, 0) + 8, 1), ValueError, hex(pb(b, 0) + 8)),
        ("free a free page", lambda pa: pa.free(pb(b, 10), 1), ValueError, hex(pb(b, 10))),
        ("free partly free", lambda pa: pa.free(pb(b, 8), 3), ValueError, hex(pb(b, 10))),
        ("free in a gap", lambda pa: pa.free(pb(b + 1, 0), 1), ValueError, hex(pb(b + 1, 0))),
        ("free past the heap", lambda pa: pa.free(pb(b + 2, 5), 1000), ValueError, hex(pb(b + 2, 5))),
        ("free below the heap", lambda pa: pa.free(pb(b - 1, 0), 1), ValueError, hex(pb(b - 1, 0))),
        ("free negative base", lambda pa: pa.free(-PAGE_SIZE, 1), ValueError, str(-PAGE_SIZE)),
        ("free huge npages", lambda pa: pa.free(pb(b, 0), 2**63), ValueError, hex(pb(b, 0))),
        ("grow over grown", lambda pa: pa.grow(ly.chunk_base(b + 1), 2 * CHUNK), ValueError, hex(b + 2)),
        ("grow zero bytes", lambda pa: pa.grow(ly.chunk_base(b + 5), 0), ValueError, "got 0"),
        ("grow address 0", lambda pa: pa.grow(0, CHUNK), ValueError, "address 0"),
        ("grow negative size", lambda pa: pa.grow(ly.chunk_base(b + 5), -1), ValueError, "-1"),
        ("grow beyond the space", lambda pa: pa.grow(ly.chunk_base(ly.max_chunks - 1), 2 * CHUNK), ValueError, "address space"),
        ("grow 2**64", lambda pa: pa.grow(2**64, CHUNK), ValueError, str(2**64)),
        ("chunk_bitmap outside", lambda pa: pa.chunk_bitmap(b + 3), ValueError, hex(b + 3)),
        ("chunk_ranges outside", lambda pa: pa.chunk_ranges(0), ValueError, "0x0"),
        ("summary bad level", lambda pa: pa.summary(ly.summary_levels, 0), ValueError, str(ly.summary_levels)),
        ("summary bad idx", lambda pa: pa.summary(0, 1 << 40), ValueError, hex(1 << 40)),
        ("from_chunks bad range", lambda pa: pagealloc.PageAlloc.from_chunks({b: [(500, 20)]}, arch=ly.arch), ValueError, "(500, 20)"),
        ("unknown arch", lambda pa: pagealloc.PageAlloc(arch="sparc"), ValueError, "sparc"),
    ]
    if ly.arena_base_offset:
        # amd64: the linearized chunk 0 is the bottom of the kernel half, and
        # addresses between the halves are not addresses at all.
        calls += [
            ("grow linearized chunk 0", lambda pa: pa.grow(0xFFFF800000000000, CHUNK), ValueError, "chunk 0"),
            ("grow non-canonical", lambda pa: pa.grow(0x0000800000000000, CHUNK), ValueError, "0x800000000000"),
            ("grow straddling address 0", lambda pa: pa.grow((1 << 64) - CHUNK, 2 * CHUNK), ValueError, "address 0"),
        ]
    else:
        calls += [("grow past the top", lambda pa: pa.grow(top, CHUNK), ValueError, hex(top))]
    return calls


def test_bad_calls_change_nothing(heap):
    pa, ly, b = heap
    before = snapshot(pa)
    for what, call, exc, fragment in bad_calls(ly, b):
        with pytest.raises(exc) as info:
            call(pa)
        assert fragment in str(info.value), f"{what}: {info.value}"
        assert snapshot(pa) == before, what
        pa.verify()
    # And it still works.
    assert pa.alloc(1) == ly.page_base(b, 10)


def test_go_version_calls_change_nothing(arch):
    """Go 1.26's operations on a Go 1.19 allocator, unknown versions and bad
    padding: a clear error naming what was asked, and nothing changed."""
    ly = pagealloc.layout(arch)
    b = ly.base_chunk_idx
    pb = ly.page_base
    old = pagealloc.PageAlloc.from_chunks({b: [(0, 10)]}, arch=arch, go="1.19")
    new = pagealloc.PageAlloc.from_chunks({b: [(0, 10)], b + 1: []}, arch=arch, go="1.26")
    assert (old.go, new.go) == ("1.19", "1.26")
    calls = [
        (old, lambda pa: pa.next_gen(), ValueError, "next_gen is Go 1.26's"),
        (old, lambda pa: pa.scav_chunk_data(b), ValueError, "scav_chunk_data is Go 1.26's"),
        (old, lambda pa: pa.mark_padding(pb(b, 20), 1), ValueError, "mark_padding is Go 1.26's"),
        (old, lambda pa: pa.scavenge(1 << 20, force=False), ValueError, "force=False"),
        (new, lambda pa: pa.mark_padding(pb(b, 5), 10), ValueError, hex(pb(b, 5))),
        (new, lambda pa: pa.mark_padding(pb(b + 2, 0), 1), ValueError, hex(pb(b + 2, 0))),
        (new, lambda pa: pa.mark_padding(pb(b, 20) + 8, 1), ValueError, hex(pb(b, 20) + 8)),
        (new, lambda pa: pa.mark_padding(pb(b, 20), 0), ValueError, "got 0"),
        (new, lambda pa: pa.scav_chunk_data(b + 7), ValueError, hex(b + 7)),
        (new, lambda pa: pagealloc.PageAlloc(arch=arch, go="1.20"), ValueError, '"1.20"'),
        (new, lambda pa: pagealloc.PageAlloc(arch=arch, go=1.26), TypeError, "float"),
    ]
    for pa, call, exc, fragment in calls:
        before = (snapshot(pa), pa.to_bytes())
        with pytest.raises(exc) as info:
            call(pa)
        assert fragment in str(info.value), str(info.value)
        assert (snapshot(pa), pa.to_bytes()) == before, str(info.value)
        pa.verify()
    # Go 1.26's index counts the runs NewPageAlloc put in use.
    assert new.scav_chunk_data(b) == (10, 0, 0, True)


def test_refused_reservation_is_memory_error():
    """With RLIMIT_AS too low for the amd64 reservations, PageAlloc() raises
    MemoryError naming the size and the purpose; nothing stays mapped and the
    process goes on (a small 386 allocator still works)."""
    code = textwrap.dedent(
        """
        import resource, pagealloc
        def maps():
            return sum(1 for _ in open('/proc/self/maps'))
        pagealloc.PageAlloc('386')  # warm up imports and allocator code paths
        before = maps()
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        try:
            pagealloc.PageAlloc('amd64')
        except MemoryError as e:
            print('MemoryError:', e)
        else:
            raise SystemExit('no MemoryError')
        assert maps() == before, (maps(), before)
        pa = pagealloc.PageAlloc('386')
        pa.grow(pagealloc.chunk_base(0x200, arch='386'), 4 << 20)
        assert pa.alloc(1) == 0x200 << 22
        pa.verify()
        print('ok')
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert "MemoryError: failed to reserve 8589934592 bytes (8.0 GiB)" in out.stdout
    assert "chunk bitmaps" in out.stdout
    assert out.stdout.strip().endswith("ok")


def test_bulk_entry_points(arch):
    ly = pagealloc.layout(arch)
    b = ly.base_chunk_idx
    pa = pagealloc.PageAlloc.from_chunks({b: [], b + 1: []}, arch=arch)
    one = pagealloc.PageAlloc.from_chunks({b: [], b + 1: []}, arch=arch)
    got = pa.alloc_many(3, 400)
    # Same answers as one call at a time, stopping at the first failure.
    want = []
    for _ in range(400):
        a = one.alloc(3)
        if a is None:
            break
        want.append(a)
    assert got == want and len(got) == 1024 // 3
    before = snapshot(pa)
    # All or nothing: a duplicate, a free page or a misaligned base in the
    # list leaves everything as it was.
    for bad in ([got[0], got[1], got[0]], [got[5], ly.page_base(b + 1, 511)], [got[2], got[3] + 8]):
        with pytest.raises(ValueError):
            pa.free_many(bad, 3)
        assert snapshot(pa) == before
        pa.verify()
    pa.free_many(got[::2], 3)
    for a in got[::2]:
        one.free(a, 3)
    assert snapshot(pa) == snapshot(one)
    pa.verify()
    with pytest.raises(ValueError):
        pa.alloc_many(0, 5)
    assert pa.alloc_many(5000, 3) == []
