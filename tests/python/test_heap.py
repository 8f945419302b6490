"""Heap: real pages as zero-copy buffers, returned to the OS when free.

Resident memory is read from /proc/self/statm (pagealloc.heap.rss_bytes)."""

import gc
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pagealloc
from pagealloc import HEAP_ARENA_BYTES, PAGE_SIZE
from pagealloc.heap import rss_bytes

MIB = 1 << 20


def pages(nbytes):
    return nbytes // PAGE_SIZE


def test_span_is_a_writable_zero_copy_buffer():
    heap = pagealloc.Heap(max_bytes=1 << 30)
    span = heap.alloc(3)
    assert span.npages == 3 and span.nbytes == 3 * PAGE_SIZE and len(span) == span.nbytes
    assert span.address % PAGE_SIZE == 0
    assert heap.base <= span.address < heap.base + heap.max_bytes
    view = memoryview(span)
    assert (view.format, view.itemsize, view.nbytes, view.readonly) == ("B", 1, 3 * PAGE_SIZE, False)
    view[0:5] = b"hello"
    # Zero-copy: a second view sees the first one's write.
    other = memoryview(span)
    assert bytes(other[0:5]) == b"hello"
    view.release()
    other.release()
    span.free()
    assert not span.alive


def test_numpy_frombuffer_is_zero_copy():
    np = pytest.importorskip("numpy", reason="numpy is in the test extra (pip install 'pagealloc[test]')")
    heap = pagealloc.Heap(max_bytes=1 << 30)
    span = heap.alloc(4)
    a = np.frombuffer(span, dtype=np.uint64)
    assert a.size == 4 * PAGE_SIZE // 8 and a.flags.writeable
    a[:] = np.arange(a.size, dtype=np.uint64)
    assert memoryview(span).cast("Q")[1000] == 1000
    assert a.__array_interface__["data"][0] == span.address
    with pytest.raises(BufferError):
        span.free()
    del a
    span.free()


def test_zeroing_fresh_reused_and_scavenged_pages():
    # Spans of 16 pages or more come from the page allocator itself (first
    # fit), so a freed span's pages are the next one's.
    heap = pagealloc.Heap(max_bytes=1 << 30)
    s = heap.alloc(16)
    assert memoryview(s).tobytes() == bytes(16 * PAGE_SIZE)  # fresh
    with memoryview(s) as v:
        v[:] = b"\xab" * len(v)
    s.free()
    dirty = heap.alloc(16, zero=False)  # reused, old contents allowed (and here kept)
    assert dirty.address == s.address
    assert memoryview(dirty).tobytes() == b"\xab" * (16 * PAGE_SIZE)
    dirty.free()
    clean = heap.alloc(24)  # reused pages plus fresh ones: all zero
    assert clean.address == s.address
    assert memoryview(clean).tobytes() == bytes(24 * PAGE_SIZE)
    with memoryview(clean) as v:
        v[:] = b"\xcd" * len(v)
    clean.free()
    assert heap.scavenge(1 << 40) >= 24 * PAGE_SIZE
    scavenged = heap.alloc(24, zero=False)  # released pages read as zero
    assert memoryview(scavenged).tobytes() == bytes(24 * PAGE_SIZE)
    # Small spans (from the page cache) over dirty pages are zeroed too.
    small = [heap.alloc(1 + i % 3, zero=False) for i in range(30)]
    for sp in small:
        with memoryview(sp) as v:
            v[:] = b"\xee" * len(v)
        sp.free()
    for n in (1, 2, 5, 15, 3):
        assert memoryview(heap.alloc(n)).tobytes() == bytes(n * PAGE_SIZE)
    heap.verify()


def test_stats_account_for_every_byte():
    heap = pagealloc.Heap(max_bytes=1 << 30)
    st = heap.stats()
    assert (st.in_use, st.free, st.released, st.retained, st.arenas) == (0, 0, 0, 0, 0)
    span = heap.alloc(10)
    st = heap.stats()
    assert st.arenas == 1 and st.grown == HEAP_ARENA_BYTES
    assert st.in_use == 10 * PAGE_SIZE and st.free == HEAP_ARENA_BYTES - 10 * PAGE_SIZE
    assert st.released == st.free and st.retained == st.in_use
    assert st.metadata_committed > 0
    span.free()
    st = heap.stats()
    assert st.retained == 10 * PAGE_SIZE and st.in_use == 0  # freed, not yet released
    with pytest.raises(Exception):
        st.in_use = 1  # frozen


def test_rss_follows_writes_frees_and_scavenging():
    heap = pagealloc.Heap(max_bytes=2 << 30)
    gc.collect()
    base = rss_bytes()
    spans = [heap.alloc(pages(32 * MIB)) for _ in range(8)]  # 256 MiB
    for s in spans:
        with memoryview(s) as v:
            v[:] = b"\x01" * len(v)
    written = rss_bytes()
    assert written - base > 240 * MIB, (base, written)
    for s in spans:
        s.free()
    freed = rss_bytes()
    assert freed - base > 240 * MIB, "free keeps the memory"
    released = heap.scavenge(1 << 40)
    assert released >= 256 * MIB
    after = rss_bytes()
    assert after - base < 32 * MIB, (base, after)
    assert heap.stats().retained == 0


def test_memory_limit_brings_retained_and_rss_under_it():
    heap = pagealloc.Heap(max_bytes=2 << 30)
    base = rss_bytes()
    spans = [heap.alloc(pages(32 * MIB)) for _ in range(6)]  # 192 MiB
    for s in spans:
        with memoryview(s) as v:
            v[:] = b"\x02" * len(v)
    for s in spans[2:]:
        s.free()
    heap.memory_limit = 80 * MIB
    assert heap.memory_limit == 80 * MIB
    deadline = time.monotonic() + 5
    while heap.stats().retained > 80 * MIB:
        assert time.monotonic() < deadline, heap.stats()
        time.sleep(0.01)
    assert rss_bytes() - base < 100 * MIB
    # In-use memory is never taken: a limit below in_use leaves the spans.
    heap.memory_limit = 1
    time.sleep(0.2)
    assert heap.stats().in_use == 64 * MIB
    assert all(memoryview(s)[12345] == 2 for s in spans[:2])
    heap.memory_limit = None
    assert heap.memory_limit is None


def test_idle_budget_releases_what_frees_leave_beyond_it():
    heap = pagealloc.Heap(max_bytes=2 << 30)
    assert heap.idle_budget == 256 * MIB  # the default
    spans = [heap.alloc(pages(32 * MIB)) for _ in range(4)]
    for s in spans:
        with memoryview(s) as v:
            v[::4096] = b"\x03" * len(v[::4096])
    base = rss_bytes()
    spans.pop().free()
    st = heap.stats()
    assert st.free - st.released == 32 * MIB
    heap.idle_budget = 8 * MIB
    assert heap.idle_budget == 8 * MIB
    st = heap.stats()
    assert 0 < st.free - st.released <= 8 * MIB
    spans.pop().free()
    st = heap.stats()
    assert st.free - st.released <= 8 * MIB
    assert rss_bytes() < base, "the released pages left RSS"
    heap.idle_budget = None
    spans.pop().free()
    assert heap.stats().free - heap.stats().released > 32 * MIB
    heap.verify()


def test_max_bytes_gives_memory_error_and_the_heap_keeps_working():
    heap = pagealloc.Heap(max_bytes=3 * HEAP_ARENA_BYTES)
    big = heap.alloc(pages(HEAP_ARENA_BYTES) + 1)  # larger than an arena: two arenas
    assert heap.stats().arenas == 2
    with memoryview(big) as v:
        v[-1] = 9
    with pytest.raises(MemoryError, match="max_bytes"):
        heap.alloc(pages(2 * HEAP_ARENA_BYTES))
    with pytest.raises(MemoryError):
        heap.alloc(2**50)
    small = heap.alloc(1)
    small.free()
    big.free()
    heap.verify()


@pytest.mark.parametrize(
    "call,exc",
    [
        (lambda h: h.alloc(0), ValueError),
        (lambda h: h.alloc(-1), ValueError),
        (lambda h: h.alloc("1"), TypeError),
        (lambda h: h.scavenge(-5), ValueError),
        (lambda h: setattr(h, "memory_limit", -1), ValueError),
        (lambda h: setattr(h, "idle_budget", -1), ValueError),
        (lambda h: setattr(h, "idle_budget", "1"), TypeError),
    ],
)
def test_bad_input_changes_nothing(call, exc):
    heap = pagealloc.Heap(max_bytes=1 << 30)
    before = heap.stats()
    with pytest.raises(exc):
        call(heap)
    assert heap.stats() == before


def test_heap_construction_errors():
    with pytest.raises(ValueError):
        pagealloc.Heap(max_bytes=0)
    with pytest.raises(MemoryError):
        pagealloc.Heap(max_bytes=1 << 62)
    # The message names the value asked for, not an overflowed one.
    with pytest.raises(MemoryError, match="max_bytes=4611686018427387904 bytes"):
        pagealloc.Heap(max_bytes=1 << 62)


def test_span_lifetimes():
    heap = pagealloc.Heap(max_bytes=1 << 30)
    span = heap.alloc(2)
    view = memoryview(span)
    del heap, span  # the view keeps the span, the span keeps the heap
    gc.collect()
    view[0] = 42
    assert view[0] == 42
    view.release()
    # A collected live span gives its pages back.
    heap = pagealloc.Heap(max_bytes=1 << 30)
    heap.alloc(5)
    gc.collect()
    assert heap.stats().in_use == 0
    # The context manager frees on exit, and a freed span refuses buffers.
    with heap.alloc(3) as span:
        assert heap.stats().in_use == 3 * PAGE_SIZE
    assert not span.alive and heap.stats().in_use == 0
    with pytest.raises(ValueError):
        memoryview(span)
    with pytest.raises(ValueError):
        span.free()


def test_threads_allocate_write_check_and_free_without_overlap():
    heap = pagealloc.Heap(max_bytes=1 << 30)
    errors = []

    def work(tag):
        try:
            live = []
            for i in range(400):
                s = heap.alloc(1 + (i * 7 + tag) % 9, zero=i % 2 == 0)
                with memoryview(s) as v:
                    v[:] = bytes([tag]) * len(v)
                live.append(s)
                if len(live) > 10:
                    old = live.pop(i % 10)
                    assert memoryview(old).tobytes() == bytes([tag]) * old.nbytes
                    old.free()
            for s in live:
                assert memoryview(s).tobytes() == bytes([tag]) * s.nbytes
                s.free()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert heap.stats().in_use == 0
    heap.verify()


def test_misuse_never_crashes_the_process():
    """Use-after-free, double free and free with a live buffer, in a child
    process: each is refused with an exception and the process exits 0."""
    code = textwrap.dedent(
        """
        import gc, pagealloc
        heap = pagealloc.Heap(max_bytes=1 << 30)
        s = heap.alloc(4)
        v = memoryview(s)
        try:
            s.free()
        except BufferError:
            print("free with a live buffer: BufferError")
        v[100] = 1
        v.release()
        s.free()
        try:
            s.free()
        except ValueError:
            print("double free: ValueError")
        try:
            memoryview(s)
        except ValueError:
            print("use after free: ValueError")
        try:
            v[0] = 1
        except ValueError:
            print("released view: ValueError")
        # Dropping the heap while a view is alive keeps the memory mapped.
        t = heap.alloc(1)
        w = memoryview(t)
        del heap, t
        gc.collect()
        w[0] = 7
        print("view outlives heap:", w[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "free with a live buffer: BufferError",
        "double free: ValueError",
        "use after free: ValueError",
        "released view: ValueError",
        "view outlives heap: 7",
    ]


def _maps():
    with open("/proc/self/maps", encoding="ascii") as f:
        return sum(1 for _ in f)


def test_ten_thousand_heaps_leak_no_mappings():
    gc.collect()
    before = _maps()
    for i in range(10_000):
        heap = pagealloc.Heap(max_bytes=64 * MIB)
        if i % 100 == 0:
            heap.alloc(1).free()
            heap.memory_limit = 0  # starts (and on drop joins) the scavenger thread
        del heap
    gc.collect()
    assert _maps() <= before + 2


def test_heap_demo_records_the_limit_at_work(tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow (pagealloc[viz]) draws the chart")
    from pagealloc.heapdemo import LIMIT, draw, record

    samples, phases = record(pause=0.05, every=0.005)
    assert len(phases) == 6 and len(samples) > 20
    assert max(s.rss for s in samples) > 200 * MIB
    assert max(s.in_use for s in samples) == 256 * MIB
    # Once everything is freed under the limit, retained settles at it.
    t_free_all, t_end = phases[4][0], phases[5][0]
    settled = [s for s in samples if t_free_all + 0.1 < s.t < t_end and s.limit == LIMIT]
    assert settled and settled[-1].retained <= LIMIT
    assert samples[-1].retained == 0
    draw(samples, phases, tmp_path / "rss.png")
    assert (tmp_path / "rss.png").stat().st_size > 1000
