"""NumPy's array data from a Heap (NEP 49 handler): routing by size and by
address, lifetimes past the `with` block and the Heap object, threads,
realloc across the threshold, zeroed memory, process-wide install, misuse."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import pagealloc

np = pytest.importorskip("numpy", reason="the NumPy handler tests need numpy (the test extra installs it)")
multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
MIB = 1 << 20


def in_heap(heap, arr) -> bool:
    return heap.base <= arr.ctypes.data < heap.base + heap.max_bytes


@pytest.fixture
def heap():
    return pagealloc.Heap(8 << 30)


def test_large_arrays_come_from_the_heap_small_ones_from_numpy(heap):
    h = pagealloc.numpy_heap(heap, threshold=64 << 10)
    before = multiarray.get_handler_name()
    with h:
        assert multiarray.get_handler_name() == "pagealloc_heap"
        big = np.ones(MIB)  # 8 MiB
        small = np.ones(100)
        at_threshold = np.empty(64 << 10, dtype=np.uint8)
        below = np.empty((64 << 10) - 1, dtype=np.uint8)
    assert multiarray.get_handler_name() == before  # the with block put it back
    assert in_heap(heap, big) and in_heap(heap, at_threshold)
    assert not in_heap(heap, small) and not in_heap(heap, below)
    assert multiarray.get_handler_name(big) == "pagealloc_heap"
    assert big.sum() == MIB
    st = h.stats()
    assert st["heap_allocs"] == 2 and st["live_blocks"] == 2 and st["fallback_allocs"] >= 2
    assert heap.stats().in_use == 8 * MIB + 64 * 1024
    del big, at_threshold
    assert h.stats()["live_blocks"] == 0 and heap.stats().in_use == 0
    heap.verify()


def test_temporaries_reuse_the_same_pages(heap):
    a = np.ones(8 * MIB // 8)
    b = np.ones(8 * MIB // 8)
    with pagealloc.numpy_heap(heap):
        addrs = set()
        for _ in range(20):
            c = a + b
            addrs.add(c.ctypes.data)
            del c
    assert len(addrs) == 1, "first fit hands the same pages out each time"
    assert heap.stats().arenas == 1


def test_arrays_outlive_the_with_block_the_handler_and_the_heap():
    heap = pagealloc.Heap(1 << 30)
    base, size = heap.base, heap.max_bytes
    h = pagealloc.numpy_heap(heap)
    with h:
        arrs = [np.full(100_000, i, dtype=np.int64) for i in range(10)]
    del h, heap  # the arrays keep the handler, the handler keeps the heap
    import gc

    gc.collect()
    for i, a in enumerate(arrs):
        assert base <= a.ctypes.data < base + size
        assert (a == i).all()
        a += 1
    assert all((a == i + 1).all() for i, a in enumerate(arrs))
    del arrs  # freed into a heap no Python name refers to any more
    gc.collect()


def test_zeros_are_zero_after_reuse_and_after_scavenging(heap):
    with pagealloc.numpy_heap(heap):
        dirty = np.full(4 * MIB, 0xAB, dtype=np.uint8)
        addr = dirty.ctypes.data
        del dirty
        z = np.zeros(4 * MIB, dtype=np.uint8)
        assert z.ctypes.data == addr and not z.any()
        z[:] = 7
        del z
        assert heap.scavenge(1 << 40) > 0
        z = np.zeros(4 * MIB, dtype=np.uint8)
        assert z.ctypes.data == addr and not z.any()


def test_resize_grows_and_shrinks_across_the_threshold(heap):
    h = pagealloc.numpy_heap(heap, threshold=64 << 10)
    with h:
        a = np.arange(1000, dtype=np.int64)  # 8000 B: NumPy's allocator
        a.resize(100_000, refcheck=False)  # realloc stays with NumPy's allocator
        assert not in_heap(heap, a) and (a[:1000] == np.arange(1000)).all() and not a[1000:].any()
        b = np.arange(100_000, dtype=np.int64)  # 800 KB: the heap
        assert in_heap(heap, b)
        addr = b.ctypes.data
        b.resize(200_000, refcheck=False)  # nothing after it: grows in place
        assert b.ctypes.data == addr and (b[:100_000] == np.arange(100_000)).all()
        assert h.stats()["grown_in_place"] == 1
        blocker = np.empty(100_000)
        b.resize(400_000, refcheck=False)  # blocked: moves, keeping the data
        assert b.ctypes.data != addr and in_heap(heap, b)
        assert (b[:100_000] == np.arange(100_000)).all() and h.stats()["moved"] == 1
        b.resize(10, refcheck=False)  # below the threshold: shrinks in place, one page
        assert in_heap(heap, b) and (b == np.arange(10)).all()
        c = np.resize(b, 300_000)  # a new array from the heap
        assert in_heap(heap, c) and (c[:20] == np.tile(np.arange(10), 2)).all()
        del a, b, c, blocker
    assert h.stats()["live_blocks"] == 0 and heap.stats().in_use == 0
    heap.verify()


def test_a_resize_past_the_heap_falls_back_as_an_allocation_does():
    small = pagealloc.Heap(16 << 20)
    h = pagealloc.numpy_heap(small, threshold=64 << 10)
    with h:
        a = np.arange(1 << 20, dtype=np.int64)  # 8 MiB: the heap
        assert in_heap(small, a)
        too_big = np.empty(4 << 20, dtype=np.int64)  # 32 MiB: more than the heap, NumPy's
        assert not in_heap(small, too_big)
        fallbacks = h.stats()["fallback_allocs"]
        a.resize(4 << 20, refcheck=False)  # 32 MiB: moves to NumPy's allocator, data kept
        assert h.stats()["fallback_allocs"] == fallbacks + 1
        assert small.stats().in_use == 0  # the Heap block was freed
        assert not in_heap(small, a) and (a[: 1 << 20] == np.arange(1 << 20)).all()
        a[-1] = 7  # the new block is whole and writable
        del a, too_big
    assert h.stats()["live_blocks"] == 0
    small.verify()


def test_four_threads_allocate_and_free_arrays(heap):
    h = pagealloc.numpy_heap(heap, threshold=16 << 10)
    errors = []
    handoff = []

    def work(t: int) -> None:
        try:
            with h:  # each thread's own context
                keep = []
                for i in range(300):
                    a = np.full(((i * 37 + t) % 64 + 3) * 1024, t, dtype=np.int32)
                    assert (a == t).all()
                    if i % 3 == 0:
                        keep.append(a)
                    if len(keep) > 8:
                        handoff.append(keep.pop(0))  # freed by another thread
                    if t == 0 and handoff:
                        handoff.clear()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    handoff.clear()
    assert not errors, errors
    assert h.stats()["live_blocks"] == 0 and h.stats()["unknown_frees"] == 0
    assert heap.stats().in_use == 0
    heap.verify()


def test_install_serves_the_whole_process_and_old_arrays_free_after_it(heap):
    h = pagealloc.numpy_heap(heap)
    before = np.ones(MIB)  # NumPy's allocator, before install
    h.install()
    try:
        assert h.installed and multiarray.get_handler_name() == "pagealloc_heap"
        box = []
        th = threading.Thread(target=lambda: box.append(np.ones(MIB)))  # a new thread: empty context
        th.start()
        th.join()
        assert in_heap(heap, box[0])
        during = np.ones(MIB)
        assert in_heap(heap, during)
        del before  # made by NumPy's allocator, freed through the installed handler
        other = pagealloc.numpy_heap(pagealloc.Heap(1 << 30))
        with pytest.raises(RuntimeError, match="another Heap is installed"):
            other.install()
    finally:
        h.uninstall()
    assert not h.installed
    after = np.ones(MIB)
    assert not in_heap(heap, after)
    assert in_heap(heap, during) and during.sum() == MIB
    del during, box  # Heap arrays freed into the Heap after uninstall
    assert heap.stats().in_use == 0
    with pytest.raises(RuntimeError, match="not installed"):
        h.uninstall()
    h.install()  # again: the same process-wide handler, allocating again
    again = np.ones(MIB)
    assert in_heap(heap, again)
    h.uninstall()
    del again
    assert heap.stats().in_use == 0


def test_bad_arguments_and_misuse_are_refused():
    heap = pagealloc.Heap(1 << 30)
    with pytest.raises(ValueError, match="threshold must be at least 1 byte, got 0"):
        pagealloc.numpy_heap(heap, threshold=0)
    with pytest.raises(TypeError):
        pagealloc.numpy_heap("heap")
    with pytest.raises(ValueError, match=r"got -1"):
        pagealloc.numpy_heap(heap, threshold=-1)
    h = pagealloc.numpy_heap(heap)
    with pytest.raises(RuntimeError, match="__exit__ without __enter__"):
        h.__exit__(None, None, None)
    assert repr(h).startswith("NumpyHeap(threshold=65536, heap_base=0x") and repr(h).endswith("installed=False)")
    assert h.name == "pagealloc_heap" and h.threshold == 65536 and h.heap is heap


MISUSE = r"""
import numpy as np, pagealloc, gc
heap = pagealloc.Heap(1 << 30)
h = pagealloc.numpy_heap(heap)
h.install()
kept = [np.ones(1 << 18) for _ in range(8)]
with h:
    kept += [np.ones(1 << 18) for _ in range(8)]
try:
    pagealloc.numpy_heap(pagealloc.Heap(1 << 30)).uninstall()  # another heap: not installed
except RuntimeError:
    pass
h.uninstall()
try:
    h.uninstall()
except RuntimeError:
    pass
del h, heap
gc.collect()
kept[3][:] = 2
print("ok", int(sum(a.sum() for a in kept)))
# exit with Heap arrays alive and the process-wide handler still in place
"""


def test_a_child_process_that_misuses_it_exits_cleanly():
    p = subprocess.run([sys.executable, "-c", MISUSE], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ok", str(16 * (1 << 18) + (1 << 18))]


def test_memory_limit_governs_array_memory(heap):
    heap.memory_limit = 256 * MIB
    with pagealloc.numpy_heap(heap):
        for i in range(30):
            a = np.ones(64 * MIB // 8)  # touched: 64 MiB resident while it lives
            del a
            b = np.ones(16 * MIB // 8) if i % 2 else np.ones(48 * MIB // 8)
            live = b.nbytes
            del b
            assert heap.stats().retained <= 256 * MIB + live
    assert heap.stats().retained <= 256 * MIB
