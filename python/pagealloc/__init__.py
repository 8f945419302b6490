"""Go's runtime page allocator, rebuilt in Rust.

``pagealloc`` is the page allocator core that Go's runtime uses for its heap
(``runtime/mpagealloc.go``): address-ordered first fit over 8 KiB pages, with
a radix tree of packed (start, max, end) summaries above 512-page bitmap
chunks. For any sequence of operations it returns the addresses Go's
allocator returns. The metadata lives in reserved virtual memory that is
committed as the heap grows, as in Go.

>>> import pagealloc
>>> pa = pagealloc.PageAlloc()                      # the amd64 layout
>>> base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
>>> pa.grow(base, 2 * pagealloc.PALLOC_CHUNK_BYTES)
>>> pa.alloc(3) == base
True
>>> pa.free(base, 3)
>>> pa.verify()
"""

from __future__ import annotations

import os
from typing import Any

from . import _pagealloc
from ._pagealloc import (
    ARCHES,
    BASE_CHUNK_IDX,
    HEAP_ARENA_BYTES,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PALLOC_CHUNK_PAGES,
    CorruptionError,
    Layout,
    NumpyHeap,
    Occupancy,
    PageCache,
    PallocBits,
    RangeAllocator,
    RangeStats,
    Span,
    find_bit_range64,
    layout,
    merge_summaries,
    numpy_heap,
    pack_summary,
    unpack_summary,
)
from ._pagealloc import __version__  # the crate's version (Cargo.toml), the one source
from .heap import Heap, HeapStats
from .stats import Stats


class AllocFailure(MemoryError):
    """An allocation found no room: the request (``npages``, ``align``,
    ``within``), the allocator's free pages and the largest request of that
    alignment and window that fits now (``largest_fit``). Raised by
    ``PageAlloc.alloc_or_raise``; the allocator is unchanged."""

    def __init__(self, message: str, npages: int, align: int, within: tuple[int, int] | None,
                 free_pages: int, largest_fit: int) -> None:
        """The message, and the request and the allocator's room as attributes."""
        super().__init__(message)
        self.npages, self.align, self.within = npages, align, within
        self.free_pages, self.largest_fit = free_pages, largest_fit


class PageAlloc(_pagealloc.PageAlloc):
    """Go's page allocator (pageAlloc): address-ordered first fit over 8 KiB
    pages, with a radix tree of summaries over 512-page bitmap chunks.

    The engine and every allocator operation are in the Rust base class; this
    class adds the views written in Python: ``stats()`` and ``render_map()``.
    Safe to share between threads: every operation runs under an internal
    lock, as Go's runs under the heap lock.
    """

    __slots__ = ()

    def alloc_or_raise(self, npages: int, align: int = 1, within: tuple[int, int] | None = None) -> int:
        """``alloc`` that raises ``AllocFailure`` (saying why) instead of
        returning None."""
        addr, failure = self._alloc_or_failure(npages, align, within)
        if failure is not None:
            free, largest, message = failure
            raise AllocFailure(message, npages, align, within, free, largest)
        return addr

    def stats(self) -> Stats:
        """How full and how fragmented the heap is (one lock, one pass)."""
        return Stats.of(self.occupancy())

    def render_map(self, path: str | os.PathLike[str], **kwargs: Any) -> dict:
        """Draws the heap as a PNG, one row of 512 cells per chunk; needs the
        ``pagealloc[viz]`` extra. See `pagealloc.viz.render_map`."""
        from .viz import render_map

        return render_map(self, path, **kwargs)

    @property
    def pages_grown(self) -> int:
        """Pages in grown chunks."""
        return self.occupancy().pages_grown

    @property
    def free_run_count(self) -> int:
        """Maximal runs of free pages (runs continue across adjacent chunks)."""
        return self.occupancy().free_runs


class TraceReplay(_pagealloc.TraceReplay):
    """Replays a trace (v1, v2 or v3: docs/formats.md) on an allocator, in steps, so a
    caller can show progress. Parsing checks every line first: a bad line
    raises ValueError("line N: ...") before any op runs. By default the
    allocator is a fresh `PageAlloc` of ``arch`` following the
    trace's Go version (Go 1.26 for a v3 trace, Go 1.19 for v1 and v2)."""

    def __new__(cls, text: str | bytes, arch: str = "amd64", allocator: PageAlloc | None = None,
                phys_page_size: int | None = None, huge_page_size: int | None = None,
                lenient: bool = False, go: str | None = None, follow_races: bool = True) -> TraceReplay:
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"text is not UTF-8 (byte {e.start}): a trace is text") from None
        elif not isinstance(text, str):
            raise TypeError(f"text must be a trace's text (str or UTF-8 bytes), got {type(text).__name__}")
        return super().__new__(cls, text, arch, allocator, phys_page_size, huge_page_size, lenient, go,
                               follow_races, PageAlloc)


def chunk_index(addr: int, arch: str = "amd64") -> int:
    """Go's chunkIndex: the global index of the 4 MiB chunk holding addr."""
    return layout(arch).chunk_index(addr)


def chunk_base(ci: int, arch: str = "amd64") -> int:
    """Go's chunkBase: the first address of chunk ci."""
    return layout(arch).chunk_base(ci)


def page_base(ci: int, page_idx: int, arch: str = "amd64") -> int:
    """Go's test helper PageBase: the address of page page_idx of chunk ci."""
    return layout(arch).page_base(ci, page_idx)


__all__ = [
    "__version__",
    "ARCHES",
    "AllocFailure",
    "BASE_CHUNK_IDX",
    "HEAP_ARENA_BYTES",
    "PAGE_SIZE",
    "PALLOC_CHUNK_BYTES",
    "PALLOC_CHUNK_PAGES",
    "CorruptionError",
    "Heap",
    "HeapStats",
    "Layout",
    "NumpyHeap",
    "Occupancy",
    "PageAlloc",
    "PageCache",
    "PallocBits",
    "RangeAllocator",
    "RangeStats",
    "Span",
    "Stats",
    "TraceReplay",
    "chunk_base",
    "chunk_index",
    "find_bit_range64",
    "layout",
    "merge_summaries",
    "numpy_heap",
    "pack_summary",
    "page_base",
    "unpack_summary",
]
