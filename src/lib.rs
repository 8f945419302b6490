//! # pagealloc: Go's runtime page allocator, in Rust
//!
//! This crate rebuilds the page allocator core that Go added in 2019
//! ("runtime: add new page allocator core", CL 190622) and still uses: an
//! address-ordered first-fit allocator of 8 KiB pages whose answers are
//! exactly the addresses Go's allocator gives for the same operations.
//!
//! ## The design, briefly
//!
//! The heap is divided into *chunks* of 512 pages (4 MiB). Each chunk has a
//! 512-bit bitmap ([`PallocBits`]): 1 = page in use. The bitmaps of the whole
//! address space form one array indexed by chunk index, so the bitmap of an
//! address is found by a shift, with no lookup structure.
//!
//! Scanning bitmaps to find free pages would be slow, so above them sits a
//! radix tree of *summaries*. A summary ([`PallocSum`]) packs three numbers
//! about a region: free pages at its start, the longest free run in it, and
//! free pages at its end. The leaf level has one summary per chunk; each level
//! above has one summary per block of 8 (`2^3`) below it, and the root level
//! (`2^14` entries on 64-bit presets) covers the address space in 16 GiB
//! pieces. Five levels cover 48 bits of address:
//!
//! ```text
//! summary_l0_bits + (summary_levels-1)*summary_level_bits + log2(chunk bytes) = heap_addr_bits
//!       14        +          4       *        3          +        22          =      48
//! ```
//!
//! `start` and `end` compose: the merge of neighbouring summaries
//! ([`SumFormat::merge`]) knows the runs that cross their boundary. So a search
//! for `n` free pages walks down from the root, at each level scanning at
//! most one block of 8 summaries (the whole root level at the top), and either
//! finds a run that straddles entries or descends into the first entry whose
//! `max` is large enough, ending in one bitmap search. The answer is always the
//! lowest address with `n` free pages.
//!
//! A *search address* records a point below which every page is in use, so
//! most small allocations skip the tree walk entirely: they search the bitmap
//! of the chunk the search address points into. Freeing below it moves it
//! down; the walk proposes a new one as it goes.
//!
//! Unlike Go, a change inside one chunk does not merge its way up the tree
//! at once: it rewrites the chunk's leaf and notes the block of leaves it
//! belongs to, and the merges run once, for every change since, just before
//! something reads above the leaves (a search, a change across chunks). The
//! summaries every search reads are Go's, bit for bit; only the time they
//! are computed moves.
//!
//! ## Memory
//!
//! Metadata for the whole address space is reserved at start-up without
//! access rights ([`vm::Reservation`]): on amd64 8 GiB of address space for
//! the chunks' alloc and scavenged bitmaps, 8 MiB for the scavenge index and
//! 585 MiB for summaries. Growing the heap commits just the page-rounded
//! pieces of each array that the new chunks need, range by range, as Go
//! 1.19's `sysGrow` does (a chunk far from the rest commits a few pages, not
//! the gap). No Rust reference is ever formed over memory that may still be
//! inaccessible.
//!
//! ## Map of the crate
//!
//! One concern per module; Go's file names in parentheses.
//!
//! - [`arch`]: layouts (the amd64, arm64 and 386 presets, and
//!   [`Layout::custom`] geometries) and address arithmetic (`mpagealloc.go`'s
//!   constants, `chunkIndex`, `addrsToSummaryRange`, ...).
//! - [`bits`]: the chunk bitmap (`mpallocbits.go`): find, summarize, ranges;
//!   Go 1.19's `pallocData` (the scavenged bits beside it), `fillAligned`,
//!   `findScavengeCandidate`.
//! - [`summary`]: packed summaries (`pallocSum`) and `mergeSummaries`.
//! - [`vm`]: reserved address space, committing it, committed-byte accounting.
//! - [`alloc`]: the allocator (`mpagealloc.go`, `mpagealloc_64bit.go`), and
//!   every method of [`PageAlloc`], one file per concern: `builder`, `grow`,
//!   `find` (the radix walk and the leaves near the search address),
//!   `update` (the deferred walk up), `leaf` (leaves kept incrementally),
//!   `allocfree` (alloc with Go 1.19's scavenged count, free), `cache`
//!   (`allocToCache`, a cache's flush), `scavenge` (the scavenger's three
//!   parts, both Gos, `mgcscavenge.go`), `constrained` (exact first fit at
//!   an alignment, inside a window, at a fixed address; not in Go),
//!   `queries` (`first_fit`, `would_fit`, `largest_free`,
//!   `alloc_or_failure`, `alloc_extents`), `snapshot` (`to_bytes` /
//!   `from_bytes`), `verify`.
//! - `scav_index`: the scavenge index of either Go, one type
//!   (Go 1.19's marks per chunk; Go 1.26's `scavChunkData`, cursors and
//!   generations); [`goversion`]: what differs between the two Gos.
//! - [`addr_ranges`]: Go's `addrRanges` (`mranges.go`), the grown chunks.
//! - [`cache`]: page caches (`pageCache`, `mpagecache.go`), and
//!   [`LocalCache`], one that also takes back what it handed out.
//! - [`heap`]: [`Heap`], real pages over a reservation of its own (`mheap`
//!   in miniature): arenas, exact zeroing, `madvise`, a memory limit, and a
//!   page cache per thread (`heap/tcache.rs`).
//! - [`trace`]: the text trace formats (v1, v2, v3) and the one replay loop,
//!   shared by the Python binding, the replay example, the benchmarks and
//!   Go's harness.
//! - [`error`]: the one error type; every error leaves the allocator unchanged.
//! - `python` (feature `python`): the only module that knows Python, one
//!   file per concern below it.
//! - [`range_allocator`]: [`RangeAllocator`], first fit over the byte offsets of any
//!   address space, on top of the allocator.
//!
//! Benchmark scaffolding (the benchmark scenarios of docs/benchmarks.md and their PRNG) lives
//! in `benches/rust/common/` and `tests/common/`, outside the public API; Go's
//! own tests of the inner pieces are ported in `gotests` (test builds only).
//!
//! ## Cost of the public operations
//!
//! With `L` summary levels (5 on 64-bit presets) and blocks of 8 below the
//! root: `alloc` of pages that fit in the search address's chunk reads one
//! leaf and one bitmap; otherwise it reads the leaves of the next chunks
//! (at most 32, never a stale parent), and only when none of them fits
//! merges the blocks changed since the last search (one block per changed
//! block of leaves, and up the tree only where something changed), then
//! walks the tree from the deepest summary on the search address's path
//! that fits (from the root level at worst), one block of 8 per level, then
//! one bitmap.
//! Taking or returning pages inside one chunk writes its bitmap words once
//! (a free checks and clears in the same pass), derives its leaf from the
//! old one and the free run around the change (a word or two read; an
//! allocation that split the chunk's longest run reads more, only as far as
//! first fit leaves unknown) and notes its block.
//! `grow` is O(chunks grown). `verify` is O(heap).

//! ## Example
//!
//! ```
//! use pagealloc::{Arch, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};
//!
//! let mut pa = PageAlloc::new(Arch::Amd64)?;
//! let base = 0x30_0000_0000; // BaseChunkIdx's address in Go's tests
//! pa.grow(base, 2 * PALLOC_CHUNK_BYTES)?;
//! assert_eq!(pa.alloc(3)?, Some(base));
//! assert_eq!(pa.alloc(600)?, Some(base + 3 * PAGE_SIZE)); // straddles a chunk boundary
//! pa.free(base, 3)?;
//! assert_eq!(pa.alloc(1)?, Some(base));
//! pa.verify()?;
//! # Ok::<(), pagealloc::Error>(())
//! ```

pub mod addr_ranges;
pub mod alloc;
pub mod arch;
pub mod bits;
pub mod cache;
pub mod census;
pub mod error;
pub mod goversion;
pub mod heap;
pub mod range_allocator;
mod scav_index;
pub mod summary;
pub mod trace;
pub mod view;
pub mod vm;

#[cfg(feature = "python")]
mod python;

#[cfg(test)]
mod gotests;

pub use addr_ranges::AddrRanges;
pub use alloc::{AllocFailure, Extents, SNAPSHOT_VERSION, SNAPSHOT_VERSION_GO126};
pub use alloc::{Builder, PageAlloc};
pub use alloc::{Scavenge, MAX_PHYS_PAGE, MIN_PHYS_PAGE};
pub use arch::{
    chunk_page_index, Arch, Layout, LOG_PALLOC_CHUNK_BYTES, LOG_PALLOC_CHUNK_PAGES,
    MAX_SUMMARY_LEVELS, PAGE_SHIFT, PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES,
    SUMMARY_LEVEL_BITS,
};
pub use bits::{fill_aligned, find_bit_range64, PallocBits, PallocData};
pub use cache::{LocalCache, PageCache, SMALL_SPAN_PAGES};
pub use error::{Error, Result};
pub use goversion::GoVersion;
pub use heap::{
    memory_limit_goal, Heap, HeapStats, LargeAlloc, DEFAULT_IDLE_BUDGET, HEAP_ARENA_BYTES,
};
pub use range_allocator::{RangeAllocator, RangeStats};
pub use scav_index::{Cursor as ScavCursor, ScavChunkData, SCAV_CHUNK_HI_OCC_PAGES};
pub use summary::{PallocSum, SumFormat};

// The Rust code blocks of the README and the docs, compiled and run as doc
// tests (`cargo test --doc --features allocator-api2`), so an example cannot
// rot; tests/python/test_docs.py checks that every page with a Rust block is listed.
#[cfg(doctest)]
mod doc_pages {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/getting-started.md")]
    struct GettingStarted;
    // The Rust guide's blocks use `Allocator for &Heap`, which needs the
    // feature: plain `cargo test` leaves them to the feature's run.
    #[cfg(feature = "allocator-api2")]
    #[doc = include_str!("../docs/guides/rust.md")]
    struct RustGuide;
}
