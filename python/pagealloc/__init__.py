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

from ._pagealloc import (
    ARCHES,
    BASE_CHUNK_IDX,
    PAGE_SIZE,
    PALLOC_CHUNK_BYTES,
    PALLOC_CHUNK_PAGES,
    CorruptionError,
    Layout,
    PageAlloc,
    PallocBits,
    TraceReplay,
    chunk_base,
    chunk_index,
    find_bit_range64,
    layout,
    merge_summaries,
    pack_summary,
    page_base,
    unpack_summary,
)
from .stats import Stats

__all__ = [
    "ARCHES",
    "BASE_CHUNK_IDX",
    "PAGE_SIZE",
    "PALLOC_CHUNK_BYTES",
    "PALLOC_CHUNK_PAGES",
    "CorruptionError",
    "Layout",
    "PageAlloc",
    "PallocBits",
    "Stats",
    "TraceReplay",
    "chunk_base",
    "chunk_index",
    "find_bit_range64",
    "layout",
    "merge_summaries",
    "pack_summary",
    "page_base",
    "unpack_summary",
]
