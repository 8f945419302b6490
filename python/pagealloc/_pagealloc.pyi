"""Type stubs for the Rust extension module ``pagealloc._pagealloc``.

The package (``pagealloc``) subclasses ``PageAlloc`` and ``TraceReplay`` to
add what is written in Python (``stats()``, ``render_map()``); see
``__init__.py``.
"""

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Optional, TypeVar

_PA = TypeVar("_PA", bound="PageAlloc")

ArchName = Literal["amd64", "arm64", "386"]
GoName = Literal["1.19", "1.26"]

__version__: str
"""The version of pagealloc (the crate's, one source for Python and the CLI)."""
PAGE_SIZE: int
"""The runtime page size, 8192 bytes (Go's pageSize)."""
PALLOC_CHUNK_PAGES: int
"""Pages per bitmap chunk, 512 (Go's pallocChunkPages)."""
PALLOC_CHUNK_BYTES: int
"""Bytes per chunk, 4 MiB (Go's pallocChunkBytes)."""
BASE_CHUNK_IDX: int
"""Go's test BaseChunkIdx on amd64: chunk_index(0xc000 * 4 MiB) == 0x200c000."""
ARCHES: tuple[str, ...]
"""The layout presets: ("amd64", "arm64", "386")."""
HEAP_ARENA_BYTES: int
"""A Heap grows by this much: 64 MiB (Go's heapArenaBytes on 64-bit Linux)."""

class CorruptionError(RuntimeError):
    """Summaries disagree with bitmaps (verify(), or Go's "bad summary data")."""

class Layout:
    """The constants of one layout: a preset's (Go's per-GOARCH constants) or a custom geometry's."""

    @staticmethod
    def custom(page_size: int, address_bits: int, arena_base_offset: int = 0) -> Layout:
        """Your own geometry: page_size a power of two from 4 KiB to 1 GiB, address_bits 32..57;
        chunks of 512 pages, 5 summary levels (4 at 32 bits), the root takes the rest (>= 1 bit)."""
    @property
    def is_custom(self) -> bool:
        """Whether the layout is a custom geometry (Layout.custom) rather than a preset."""
    @property
    def page_size(self) -> int:
        """Bytes per page: 8192 for the presets."""
    @property
    def address_bits(self) -> int:
        """Bits of address the layout covers (48 on amd64 and arm64, 32 on 386)."""
    @property
    def arch(self) -> str:
        """The layout's name: "amd64", "arm64", "386" or "custom"."""
    @property
    def heap_addr_bits(self) -> int:
        """Go's heapAddrBits: the bits of a linearized heap address."""
    @property
    def arena_base_offset(self) -> int:
        """Go's arenaBaseOffset, added to an address (mod 2**64) before indexing: 1 << 47 on amd64, else 0."""
    @property
    def summary_levels(self) -> int:
        """Levels of the radix tree of summaries (5, or 4 at 32 address bits)."""
    @property
    def summary_l0_bits(self) -> int:
        """Bits of address the root level indexes (14 on amd64)."""
    @property
    def level_bits(self) -> list[int]:
        """Per level, the bits of address it indexes below the level above (the root's first)."""
    @property
    def level_shift(self) -> list[int]:
        """Per level, the shift from a linearized address to its entry's index."""
    @property
    def level_log_pages(self) -> list[int]:
        """Per level, log2 of the pages one entry summarizes."""
    @property
    def log_max_packed_value(self) -> int:
        """Go's logMaxPackedValue: the bits of one field of a packed summary."""
    @property
    def max_chunks(self) -> int:
        """Chunks the address space holds: the exclusive bound of a chunk index."""
    @property
    def base_chunk_idx(self) -> int:
        """Go's test heap base as a chunk index (BaseChunkIdx), where examples and tests grow."""
    @property
    def max_search_addr(self) -> int:
        """Go's maxSearchAddr: the search address of an allocator with no free page."""
    def chunk_index(self, addr: int) -> int:
        """Go's chunkIndex: the global index of the 4 MiB chunk holding addr."""
    def chunk_base(self, ci: int) -> int:
        """Go's chunkBase: the first address of chunk ci."""
    def page_base(self, ci: int, page_idx: int) -> int:
        """Go's test PageBase: the address of page page_idx of chunk ci."""

def layout(arch: ArchName = "amd64") -> Layout:
    """The layout constants of a preset."""

def pack_summary(start: int, max: int, end: int, arch: ArchName = "amd64") -> int:
    """Go's packPallocSum."""

def unpack_summary(packed: int, arch: ArchName = "amd64") -> tuple[int, int, int]:
    """Go's pallocSum.unpack."""

def merge_summaries(sums: Iterable[int], log_max_pages_per_sum: int, arch: ArchName = "amd64") -> int:
    """Go's mergeSummaries over packed summaries."""

def find_bit_range64(c: int, n: int) -> int:
    """Go's findBitRange64: first run of n set bits in c, or >= 64 if none."""

class PallocBits:
    """One chunk's 512-page bitmap (Go's pallocBits): bit i = page i, 1 = in use."""

    def __init__(self, value: Optional[int] = None) -> None:
        """A bitmap from a 512-bit int (bit i = page i in use), or all free."""
    @staticmethod
    def from_ranges(ranges: Iterable[tuple[int, int]]) -> PallocBits:
        """A bitmap with each (start, n) run in use."""
    @property
    def value(self) -> int:
        """The 512 bits as an int, bit i = page i."""
    @property
    def pages_in_use(self) -> int:
        """Pages in use."""
    def __int__(self) -> int: ...
    def __getitem__(self, i: int) -> bool: ...
    def __len__(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def find(self, npages: int, search_idx: int = 0) -> tuple[Optional[int], int]:
        """Go's find: (lowest run start or None, first free page met in the scan)."""
    def alloc_range(self, i: int, n: int) -> None:
        """Marks pages [i, i+n) in use (Go's allocRange)."""
    def free(self, i: int, n: int) -> None:
        """Marks pages [i, i+n) free (Go's free)."""
    def free1(self, i: int) -> None:
        """Marks page i free (Go's free1)."""
    def alloc_all(self) -> None:
        """Marks every page in use (Go's allocAll)."""
    def free_all(self) -> None:
        """Marks every page free (Go's freeAll)."""
    def summarize(self) -> tuple[int, int, int]:
        """Go's summarize: (start, max, end) of the free pages."""
    def runs(self) -> list[tuple[int, int]]:
        """The in-use runs (start, n), in page order."""
    def copy(self) -> PallocBits:
        """An independent copy."""

class PageCache:
    """Go 1.19's pageCache: up to 64 free pages of one 64-page-aligned block."""

    def __init__(self, base: int = 0, cache: int = 0, scav: int = 0) -> None:
        """A cache of the block at base (64-page aligned) holding the pages of the cache bits,
        scav those of them that are scavenged (Go's pageCache literal; alloc_to_cache() makes one)."""
    @property
    def base(self) -> int:
        """The block's first address (64-page aligned; 0 for an empty cache)."""
    @property
    def cache(self) -> int:
        """Bit i set: page base + i*8192 is free in the cache."""
    @property
    def scav(self) -> int:
        """Bit i set: that page is scavenged (returned to the OS)."""
    @property
    def empty(self) -> bool:
        """Whether the cache holds no page."""
    def alloc(self, npages: int) -> tuple[Optional[int], int]:
        """The lowest run of npages (>= 1) cached pages and its scavenged bytes; (None, 0) when none fits."""
    def flush(self, pa: PageAlloc) -> None:
        """Give the remaining pages back to pa; the cache becomes empty."""

class Occupancy:
    """How full the heap is, read under one lock (the data behind stats())."""

    @property
    def pages_grown(self) -> int:
        """Pages in grown chunks (in use and free)."""
    @property
    def pages_in_use(self) -> int:
        """Pages in use."""
    @property
    def largest_free_run(self) -> int:
        """The longest run of free pages, from the root summaries."""
    @property
    def free_runs(self) -> int:
        """Maximal runs of free pages (runs continue across adjacent chunks)."""
    @property
    def chunks_grown(self) -> int:
        """Chunks grown (4 MiB each)."""
    @property
    def mapped_bytes(self) -> int:
        """Metadata bytes committed so far."""
    @property
    def reserved_bytes(self) -> int:
        """Metadata address space reserved at creation (never touched until committed)."""

class PageAlloc:
    """Go's pageAlloc: address-ordered first fit over 8 KiB pages. Thread-safe."""

    def __init__(self, arch: ArchName = "amd64", layout: Optional[Layout] = None, go: GoName = "1.26") -> None:
        """Reserves metadata for arch's address space, or layout's (a preset's or Layout.custom(...));
        go: whose page allocator it follows, "1.19" or "1.26"."""
    @classmethod
    def from_chunks(
        cls: type[_PA],
        chunks: Mapping[int, Iterable[tuple[int, int]]],
        arch: ArchName = "amd64",
        scav: Optional[Mapping[int, Iterable[tuple[int, int]]]] = None,
        layout: Optional[Layout] = None,
        go: GoName = "1.26",
    ) -> _PA:
        """Go's NewPageAlloc: grow each chunk and mark its (i, n) runs in use."""
    def grow(self, base: int, size: int) -> None:
        """Make [base, base+size), rounded out to whole chunks, known and free."""
    def alloc(self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None) -> Optional[int]:
        """The base address of the lowest fit, now in use; None if nothing fits.
        align: pages, a power of two; within: (lo, hi) byte addresses."""
    def alloc_scav(
        self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None
    ) -> tuple[Optional[int], int]:
        """Go 1.19's alloc: (address or None, bytes of it that were scavenged)."""
    def first_fit(self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None) -> Optional[int]:
        """Where alloc(npages, align, within) would put the pages, taking nothing."""
    def would_fit(self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None) -> bool:
        """Whether alloc(npages, align, within) would succeed, taking nothing."""
    def largest_free(self, align: int = 1, within: Optional[tuple[int, int]] = None) -> int:
        """The largest npages alloc(npages, align, within) would serve now."""
    def alloc_extents(self, npages: int, max_extents: int) -> Optional[list[tuple[int, int]]]:
        """npages in at most max_extents runs, all or nothing: [(address, npages)] or None."""
    def _alloc_or_failure(
        self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None
    ) -> tuple[Optional[int], Optional[tuple[int, int, str]]]: ...
    def alloc_at(self, addr: int, npages: int) -> int:
        """Claims exactly these pages (ValueError unless all grown and free); scavenged bytes."""
    def to_bytes(self) -> bytes:
        """An exact snapshot, sized by the grown heap."""
    @classmethod
    def from_bytes(cls: type[_PA], data: bytes) -> _PA:
        """Rebuilds an allocator from to_bytes(); ValueError for damaged bytes."""
    def __reduce__(self) -> tuple[object, tuple[bytes]]: ...
    def scavenge(self, nbytes: int, force: bool = True) -> int:
        """Go's scavenge: bytes released. Go 1.19: highest marked chunks first; Go 1.26: from
        the forced (force=True) or background cursor, continuing (force=False needs Go 1.26)."""
    @property
    def go(self) -> GoName:
        """Whose page allocator this one follows: "1.19" or "1.26"."""
    def next_gen(self) -> None:
        """Go 1.26's scavengeIndex.nextGen (once per GC cycle)."""
    def scav_chunk_data(self, ci: int) -> tuple[int, int, int, bool]:
        """Go 1.26's index data of chunk ci: (in_use, last_in_use, gen, has_free)."""
    def mark_padding(self, addr: int, npages: int) -> None:
        """Go 1.26's markRandomPaddingPages: grown, free pages become in use and scavenged."""
    def alloc_to_cache(self) -> PageCache:
        """Go 1.19's allocToCache."""
    def chunk_scavenged(self, ci: int) -> int:
        """The scavenged bitmap of chunk ci, bit i = page i."""
    phys_huge_page_size: int
    """Go's physHugePageSize: free, aligned huge pages of this many bytes are never
    split by the scavenger. 0 (none) or a power of two from phys_page_size to 1 GiB;
    anything else raises ValueError."""
    phys_page_size: int
    """Go's physPageSize: the scavenger releases only whole, aligned physical pages of
    this many bytes (by default the host's). A power of two from 4096 to 524288, set
    before the first grow; otherwise ValueError."""
    def free(self, base: int, npages: int) -> None:
        """Return npages in-use pages at base to the heap."""
    def _probe_alloc(self, npages: int, align: int = 1, within: Optional[tuple[int, int]] = None) -> Optional[int]:
        """alloc's arguments, conversion and lock, no work (benches/python/percall.py)."""
    def _probe_free(self, base: int, npages: int) -> None:
        """free's arguments, conversion and lock, no work (benches/python/percall.py)."""
    def alloc_many(self, npages: int, count: int) -> list[int]:
        """Up to count allocs of npages in one call; stops at the first failure."""
    def free_many(self, bases: Iterable[int], npages: int) -> None:
        """Free npages at each base, all or nothing."""
    @property
    def bounds(self) -> tuple[int, int]:
        """Go's Bounds(): chunk indices [start, end)."""
    @property
    def grown_ranges(self) -> list[tuple[int, int]]:
        """The grown address ranges [lo, hi), in address order (Go's inUse)."""
    def chunk_ranges(self, ci: int) -> list[tuple[int, int]]:
        """The in-use runs (start page, npages) of chunk ci."""
    def chunk_bitmap(self, ci: int) -> int:
        """The in-use bitmap of chunk ci as an int, bit i = page i."""
    def summary(self, level: int, idx: int) -> tuple[int, int, int]:
        """(start, max, end) of summary idx at level (0 = root); exact even while a walk up is pending."""
    @property
    def search_addr(self) -> int:
        """The search address: every page below it is in use."""
    def verify(self) -> None:
        """Recompute every summary from the bitmaps; raise CorruptionError on mismatch."""
    @property
    def mapped_bytes(self) -> int:
        """Metadata bytes committed so far."""
    @property
    def reserved_bytes(self) -> int:
        """Metadata address space reserved at creation (never touched until committed)."""
    @property
    def arch(self) -> str:
        """The layout's name: "amd64", "arm64", "386" or "custom"."""
    @property
    def layout(self) -> Layout:
        """The layout constants this allocator was made with."""
    @property
    def pages_in_use(self) -> int:
        """Pages in use."""
    @property
    def largest_free_run(self) -> int:
        """The longest run of free pages, from the root summaries."""
    def occupancy(self) -> Occupancy:
        """Pages grown and in use, free runs, metadata bytes, under one lock."""

class HeapCounters:
    """A heap's counters (bytes, except arenas), read under one lock."""

    @property
    def in_use(self) -> int: ...
    @property
    def free(self) -> int: ...
    @property
    def released(self) -> int: ...
    @property
    def retained(self) -> int: ...
    @property
    def arenas(self) -> int: ...
    @property
    def metadata_committed(self) -> int: ...

class Heap:
    """Go's mheap in miniature: spans of real pages over a reservation of its own."""

    def __init__(self, max_bytes: int = 64 << 30) -> None:
        """Reserves max_bytes of address space (rounded up to 4 MiB); commits nothing."""
    def alloc(self, npages: int, zero: bool = True) -> Span:
        """npages contiguous 8 KiB pages, growing by 64 MiB arenas; MemoryError past max_bytes."""
    def scavenge(self, nbytes: int) -> int:
        """Returns at least nbytes of free memory to the OS now; the bytes released."""
    def alloc_extents(self, npages: int, max_extents: int, zero: bool = True) -> Optional[list[Span]]:
        """npages in at most max_extents Spans, all or nothing (None: nothing changed)."""
    def largest_free(self) -> int:
        """The most pages one alloc would serve now (growing if it must)."""
    def would_fit(self, npages: int) -> bool:
        """Whether alloc(npages) would succeed now (growing if it must)."""
    @property
    def memory_limit(self) -> Optional[int]:
        """None, or the retained bytes a background scavenger keeps the heap at or under."""
    @memory_limit.setter
    def memory_limit(self, limit: Optional[int]) -> None: ...
    @property
    def idle_budget(self) -> Optional[int]:
        """None, or the most free bytes the heap keeps resident (default 256 MiB); a free past it releases the excess."""
    @idle_budget.setter
    def idle_budget(self, budget: Optional[int]) -> None: ...
    @property
    def max_bytes(self) -> int:
        """The size of the heap's reservation in bytes."""
    @property
    def base(self) -> int:
        """The first address of the heap's reservation."""
    def counters(self) -> HeapCounters:
        """The heap's counters, read under one lock."""
    def verify(self) -> None:
        """Checks the page allocator, the thread caches and the counters against each other; CorruptionError on a mismatch."""

class Span:
    """npages pages of a Heap: a writable buffer (memoryview(span), numpy.frombuffer)."""

    @property
    def address(self) -> int:
        """The span's first address."""
    @property
    def npages(self) -> int:
        """Its length in 8 KiB pages."""
    @property
    def nbytes(self) -> int:
        """Its length in bytes."""
    @property
    def heap(self) -> Heap:
        """The Heap the span's pages belong to (a span keeps it alive)."""
    @property
    def alive(self) -> bool:
        """False once freed."""
    def free(self) -> None:
        """Pages back to the heap; BufferError while a buffer is exported, ValueError if freed."""
    def __enter__(self) -> Span: ...
    def __exit__(self, *exc: object) -> bool: ...
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int) -> memoryview: ...
    def __release_buffer__(self, view: memoryview) -> None: ...

class RangeStats:
    """A RangeAllocator's counters (bytes, except free_runs); compares equal by value."""

    def __eq__(self, other: object) -> bool: ...

    @property
    def size(self) -> int:
        """The space's size in bytes."""
    @property
    def page_size(self) -> int:
        """Bytes per page."""
    @property
    def in_use(self) -> int:
        """Bytes allocated."""
    @property
    def free(self) -> int:
        """Bytes free."""
    @property
    def largest_free(self) -> int:
        """The largest allocation that fits now, in bytes."""
    @property
    def free_runs(self) -> int:
        """Maximal runs of free pages."""

class RangeAllocator:
    """Exact first fit over offsets [0, size) of any space, in pages of page_size bytes."""

    def __init__(self, size: int, page_size: int = 4096) -> None:
        """A space of size bytes (a multiple of page_size) in pages of page_size bytes, a power of two from 4 KiB."""
    def alloc(self, nbytes: int, align: Optional[int] = None) -> Optional[int]:
        """The lowest offset of nbytes (rounded up to pages) that is a multiple of align bytes."""
    def alloc_extents(self, nbytes: int, max_extents: int) -> Optional[list[tuple[int, int]]]:
        """nbytes in at most max_extents runs, all or nothing: [(offset, nbytes)] or None."""
    def would_fit(self, nbytes: int, align: Optional[int] = None) -> bool:
        """Whether alloc(nbytes, align) would succeed, taking nothing."""
    def largest_free(self, align: Optional[int] = None) -> int:
        """The most bytes alloc(nbytes, align) would serve now (whole pages)."""
    def free(self, offset: int, nbytes: int) -> None:
        """Frees nbytes (rounded up to pages) at offset; ValueError naming the first page not in use."""
    def alloc_at(self, offset: int, nbytes: int) -> None:
        """Claims exactly these bytes (rounded out to pages); ValueError naming the first page taken."""
    def grow(self, new_size: int) -> None:
        """Extends the space to new_size bytes; the new bytes are free."""
    def stats(self) -> RangeStats:
        """Sizes in bytes, read under one lock."""
    @property
    def size(self) -> int:
        """The space's size in bytes (whole pages)."""
    @property
    def page_size(self) -> int:
        """Bytes per page (a power of two)."""
    def verify(self) -> None:
        """Recomputes every summary from the bitmaps; CorruptionError on a mismatch."""

class NumpyHeap:
    """NumPy's array data from a Heap (NEP 49); made by ``numpy_heap()``.
    ``with h:`` makes it NumPy's allocator in the current context;
    ``install()`` for the whole process."""

    def __enter__(self) -> NumpyHeap: ...
    def __exit__(self, *_exc: object) -> bool: ...
    def install(self) -> None:
        """Serve every context of the process from the Heap until uninstall()."""
    def uninstall(self) -> None:
        """New arrays go to NumPy's allocator again; Heap arrays stay valid."""
    @property
    def installed(self) -> bool:
        """Whether install() made this the process-wide handler (until uninstall())."""
    @property
    def capsule(self) -> object:
        """The "mem_handler" capsule NumPy calls."""
    @property
    def heap(self) -> Heap:
        """The Heap arrays come from."""
    @property
    def threshold(self) -> int:
        """Arrays of at least this many bytes come from the heap; smaller ones from NumPy's own allocator."""
    @property
    def name(self) -> str:
        """The handler's name, as numpy.core.multiarray.get_handler_name() reports it."""
    def stats(self) -> dict[str, int]:
        """heap_allocs, heap_frees, fallback_allocs, grown_in_place, moved,
        unknown_frees, live_blocks, live_bytes."""

def numpy_heap(heap: Heap, threshold: int = 65536) -> NumpyHeap:
    """A NumPy data-memory handler backed by heap: arrays of at least
    threshold bytes come from the heap, the rest from the current handler."""

class TraceReplay:
    """Replays a trace (v1, v2 or v3; see the trace formats) on an allocator, in steps.
    v1 and v2 follow Go 1.19, v3 Go 1.26; a v2 or v3 replay first gives the allocator the
    trace's machine (its physpage and hugepage headers, else 4 KiB and 2 MiB pages)."""

    def __init__(self, text: str, arch: ArchName = "amd64", allocator: Optional[PageAlloc] = None,
                 phys_page_size: Optional[int] = None, huge_page_size: Optional[int] = None,
                 lenient: bool = False, go: Optional[str] = None, follow_races: bool = True,
                 allocator_class: Optional[type] = None) -> None:
        """Parses text (ValueError naming the line) for a new allocator of arch, or for allocator.
        phys_page_size and huge_page_size replay a v2 or v3 trace on another machine, in place
        of its headers (the same ranges: 4096 to 65536; 0 or 2 MiB to 1 GiB, at least the
        physical page); ValueError otherwise. lenient (for what-ifs of a trace recorded with
        many Ps): a free of an allocation that failed here, and a scavenger step part with
        nothing to do, are skipped and counted (skipped) instead of raising. go replays a v2
        or v3 trace under the other Go's allocator (a what-if: v3 to v2 drops nextgen, makes
        background scavenges forced and padding an allocat; raced finds compute their own);
        follow_races=False computes every raced find instead of following saw=.
        allocator_class(arch, go=...) makes the allocator when none is given."""
    @property
    def go(self) -> str:
        """The Go whose allocator replays the trace: "1.19" or "1.26"."""
    @property
    def recorded_go(self) -> str:
        """The Go the trace itself is for ("1.26" for v3, else "1.19"), whatever go replays it."""
    @property
    def op_index(self) -> list[int]:
        """For n = 0..ops: how many ops of the trace as given are covered after n ops of this
        replay (they differ where go dropped ops)."""
    @property
    def source_allocations(self) -> list[int]:
        """Per allocation of this replay, its number in the trace as given; -1 for one the
        conversion for go added (Go 1.26's padding, kept out of use under Go 1.19)."""
    def trace_text(self) -> str:
        """The trace as this replay runs it, as text the parser reads back (after a conversion
        for go, with the machine given): version, machine headers, one line per op."""
    @property
    def version(self) -> int:
        """1, 2 or 3: the ``version N`` of the first op line (1 without one)."""
    @property
    def counts(self) -> dict[str, int]:
        """Ops of each kind (grow, alloc, free, scavenge, cache, calloc, flush, nextgen, pad)."""
    @property
    def ops(self) -> int:
        """Ops in the trace."""
    @property
    def done(self) -> int:
        """Ops replayed so far."""
    @property
    def allocs(self) -> int:
        """Alloc ops in the trace."""
    @property
    def grows(self) -> int:
        """Grow ops in the trace."""
    @property
    def frees(self) -> int:
        """Free ops in the trace."""
    @property
    def elapsed_ns(self) -> int:
        """Nanoseconds spent inside the allocator so far."""
    @property
    def allocator(self) -> PageAlloc:
        """The allocator the trace replays into."""
    @property
    def addresses(self) -> list[int]:
        """Each allocation's address so far (0 for a failed one)."""
    @property
    def followed(self) -> int:
        """scavfind ops so far whose find raced with another P in the recorded run,
        where the replay followed what Go saw (saw=)."""
    @property
    def followed_differed(self) -> int:
        """Of followed, how many the replay's own find would have answered otherwise."""
    @property
    def skipped(self) -> int:
        """Ops a lenient replay skipped (frees of allocations that failed here, scavenger
        step parts with nothing to take or give back)."""
    @property
    def phys_page_size(self) -> int:
        """The trace's physpage header (4096 when absent)."""
    @property
    def huge_page_size(self) -> int:
        """The trace's hugepage header (2097152 when absent; 0 for none)."""
    @property
    def times(self) -> Optional[list[int]]:
        """Per op, Go's monotonic time in ns since the recording began (t=), or None."""
    def run(self, max_ops: Optional[int] = None) -> int:
        """Replays up to max_ops more ops (all when None) without the GIL; the ops replayed."""
    def view_data(self, keyframe_every: int = 0) -> dict[str, Any]:
        """The data of `pagealloc view`'s page, from a replay of the whole trace (this one must
        not have run yet): little-endian arrays as bytes (the census per op in pages, the heap
        map's keyframes and per-op runs, every allocation's span) and keyframe_every (0: one
        keyframe per 1/256 of the ops, at least every 4,096)."""
    def census(self, max_ops: Optional[int] = None) -> dict[str, Any]:
        """Replays the rest of the trace (at most max_ops more ops), taking a census of the
        heap after every op. A dict:
        first_op (the index of the first op counted), then one list entry per op replayed, in
        bytes: grown (chunks grown), in_use (pages handed out), free_scavenged (free and
        released, or never touched), go_resident (pages not scavenged: Go's accounting),
        rss (resident physical pages: those holding any page not scavenged), trapped (free,
        unreleased pages whose physical page also holds an in-use page), covered (in-use bytes
        inside aligned huge pages that are resident throughout); and releases, the bytes of
        each run the scavenger released (one madvise each), in order."""
    def results_file(self) -> str:
        """The results file (docs/formats.md) of what was replayed, then the final state."""
