//! The engine's one error type.
//!
//! Every fallible operation validates its arguments before it changes
//! anything, so an `Err` always means the allocator is exactly as it was.
//! The Python binding maps each variant to an exception in one place
//! (`src/python.rs`).

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// An allocation or free of zero pages.
    ZeroPages,
    /// `alloc_extents` asked for at most 0 extents.
    ZeroExtents,
    /// A grow of zero bytes.
    ZeroSize,
    /// `Heap::new` with `max_bytes == 0`.
    ZeroHeap,
    /// A `RangeAllocator` request of 0 bytes.
    RangeZeroBytes,
    /// An address that is not a multiple of the page size (`page_size` bytes).
    Misaligned { addr: u64, page_size: u64 },
    /// `[addr, addr+len)` does not fit in the layout's `bits`-bit address space.
    BeyondAddressSpace { addr: u64, len: u64, bits: u32 },
    /// Pages `[addr, addr + npages*PAGE_SIZE)` are not all in grown chunks.
    OutOfHeap { addr: u64, npages: u64 },
    /// A free of pages that are not all in use; `page` is the first free one.
    NotInUse { addr: u64, npages: u64, page: u64 },
    /// A grow that covers chunk `chunk`, which is already part of the heap.
    AlreadyGrown { base: u64, limit: u64, chunk: u64 },
    /// A grow covering address 0 or linearized chunk index 0, which the
    /// allocator relies on never being heap (0 is alloc's failure value and
    /// `start == 0` means "never grown").
    ReservedAddress { base: u64, limit: u64 },
    /// A page range `(i, n)` that does not fit in one chunk.
    BadRange { i: u64, n: u64 },
    /// A chunk index at or beyond the layout's `max_chunks`.
    ChunkBeyondSpace { chunk: u64, max_chunks: u64 },
    /// Page `page` of chunk `chunk` lies beyond the address space.
    PageBeyondSpace { chunk: u64, page: u64 },
    /// A bitmap search index outside the chunk, or with a free page below
    /// it (`free_below`), which breaks `find`'s precondition.
    BadSearchIdx { idx: u64, free_below: Option<u64> },
    /// A run length `findBitRange64` cannot look for (more than 64).
    BadRunLength { n: u64 },
    /// `merge_summaries` of nothing.
    NoSummaries,
    /// `count` regions of `2^log_pages` pages exceed the packed fields.
    MergeTooLarge { count: usize, log_pages: u32 },
    /// A summary with a field larger than its region of `2^log_pages` pages.
    SummaryTooLarge {
        fields: (u64, u64, u64),
        log_pages: u32,
    },
    /// A page cache whose scavenged bits are not a subset of its free bits.
    BadCache { base: u64, cache: u64, scav: u64 },
    /// A page-cache allocation of zero pages.
    BadCachePages { npages: u64 },
    /// An alignment that is not a power of two (in pages).
    BadAlign { align: u64 },
    /// An allocation window `[lo, hi)` that is empty.
    BadWindow { lo: u64, hi: u64 },
    /// `alloc_at` of pages that are not all grown and free; `page` is the
    /// first that is not.
    NotFree { addr: u64, npages: u64, page: u64 },
    /// A custom layout that cannot be built; the message says why.
    BadLayout(String),
    /// A page size that is not a power of two.
    BadPageSize { page_size: u64 },
    /// A physical page size (Go's `physPageSize`) that is not a power of
    /// two from 4 KiB to 512 KiB.
    BadPhysPageSize { bytes: u64 },
    /// A huge page size (Go's `physHugePageSize`) that is neither 0 nor a
    /// power of two at least the physical page size, up to 1 GiB.
    BadHugePageSize { bytes: u64, phys_page: u64 },
    /// The physical page size changed after the allocator grew: it fixes
    /// how the scavenge index was mapped, so it is set before the first grow.
    PhysPageAfterGrow,
    /// A scavenger step (`scavenge_take`, `scavenge_give`) out of order, or
    /// of a chunk or run that is not what the step found or took.
    BadScavengeStep(String),
    /// A `RangeAllocator` size smaller than the current one, or too large
    /// (`max`: the most bytes one manages with its page size).
    BadRangeSize { size: u64, current: u64, max: u64 },
    /// A `RangeAllocator` size that is not a whole number of pages.
    RangeNotWholePages { size: u64, page_size: u64 },
    /// A `Heap` larger than a process's address space can hold.
    HeapTooLarge { max_bytes: u64, limit: u64 },
    /// `[offset, offset + nbytes)` does not lie inside a `RangeAllocator`.
    OutOfRange { offset: u64, nbytes: u64, size: u64 },
    /// Bytes that are not a snapshot `from_bytes` can restore; the message
    /// says why.
    BadSnapshot(String),
    /// A `Heap` allocation that does not fit even after growing the heap to
    /// its `max_bytes`.
    HeapFull { npages: u64, max_bytes: u64 },
    /// A chunk index whose metadata is not part of the known heap.
    NoSuchChunk { chunk: u64 },
    /// A summary level or index outside the tree (or its committed part).
    NoSuchSummary { level: usize, idx: u64 },
    /// A packed-summary field out of range.
    BadSummary { start: u64, max: u64, end: u64 },
    /// A preset name the engine does not know.
    UnknownArch(String),
    /// The OS refused to reserve address space for metadata.
    Reserve {
        bytes: usize,
        what: &'static str,
        source: io::Error,
    },
    /// The OS refused to commit (make read/write) reserved metadata.
    Commit {
        bytes: usize,
        what: &'static str,
        source: io::Error,
    },
    /// `verify()` found a summary that disagrees with the bitmaps, or another
    /// broken invariant; the message names the first one.
    Verify(String),
    /// The radix walk met summaries that contradict each other (Go throws
    /// "bad summary data" here). Only a bug can cause it.
    Corrupt(String),
    /// A `RangeAllocator` offset that is not a multiple of its page size.
    RangeMisaligned { offset: u64, page_size: u64 },
    /// A `RangeAllocator` alignment (bytes) that is not a power of two, or
    /// larger than it can honour.
    RangeBadAlign { align: u64, page_size: u64 },
    /// `RangeAllocator::alloc_at` of bytes not all free; `first` is the
    /// offset of the first page that is not.
    RangeNotFree {
        offset: u64,
        nbytes: u64,
        first: u64,
    },
    /// `RangeAllocator::free` of bytes not all allocated; `first` is the
    /// offset of the first page that is not.
    RangeNotInUse {
        offset: u64,
        nbytes: u64,
        first: u64,
    },
    /// A Go version name that is not one of [`crate::GoVersion::ALL`].
    UnknownGoVersion { given: String },
    /// An operation that only one Go version's allocator has (`what`), asked
    /// of an allocator that follows `have`.
    WrongGoVersion {
        what: &'static str,
        need: crate::GoVersion,
        have: crate::GoVersion,
    },
    /// Pages given to `markRandomPaddingPages` that are not all grown and
    /// free; `page` is the first that is not.
    PaddingNotFree { addr: u64, npages: u64, page: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ZeroPages => write!(f, "npages must be at least 1, got 0"),
            Error::ZeroExtents => write!(f, "max_extents must be at least 1, got 0"),
            Error::ZeroSize => write!(f, "grow size must be at least 1 byte, got 0"),
            Error::ZeroHeap => write!(f, "max_bytes must be at least 1 byte, got 0"),
            Error::RangeZeroBytes => write!(f, "nbytes must be at least 1 byte, got 0"),
            Error::Misaligned { addr, page_size } => {
                write!(
                    f,
                    "address {addr:#x} is not aligned to the page size ({page_size})"
                )
            }
            Error::RangeMisaligned { offset, page_size } => write!(
                f,
                "offset {offset} ({offset:#x}) is not a multiple of the page size ({page_size} bytes)"
            ),
            Error::RangeBadAlign { align, page_size } => write!(
                f,
                "align must be a power of two, in bytes, got {align} (the page size is {page_size} bytes)"
            ),
            Error::RangeNotFree {
                offset,
                nbytes,
                first,
            } => write!(
                f,
                "alloc_at(offset {offset:#x}, {nbytes} bytes): the page at offset {first:#x} is already allocated"
            ),
            Error::RangeNotInUse {
                offset,
                nbytes,
                first,
            } => write!(
                f,
                "free(offset {offset:#x}, {nbytes} bytes): the page at offset {first:#x} is not allocated"
            ),
            Error::BeyondAddressSpace { addr, len, bits } => write!(
                f,
                "range [{addr:#x}, +{len:#x}) lies beyond the {bits}-bit address space"
            ),
            Error::OutOfHeap { addr, npages } => write!(
                f,
                "pages [{addr:#x}, +{npages}) are not all inside grown chunks"
            ),
            Error::NotInUse { addr, npages, page } => write!(
                f,
                "cannot free {npages} page(s) at {addr:#x}: page {page:#x} is not in use"
            ),
            Error::AlreadyGrown { base, limit, chunk } => write!(
                f,
                "cannot grow [{base:#x}, {limit:#x}): chunk {chunk:#x} is already grown"
            ),
            Error::ReservedAddress { base, limit } => write!(
                f,
                "cannot grow [{base:#x}, {limit:#x}): it covers address 0 or linearized chunk 0, \
                 which the allocator reserves as its failure value"
            ),
            Error::BadRange { i, n } => {
                write!(f, "page range ({i}, {n}) does not fit in a 512-page chunk")
            }
            Error::ChunkBeyondSpace { chunk, max_chunks } => write!(
                f,
                "chunk index {chunk:#x} is beyond the address space ({max_chunks:#x} chunks)"
            ),
            Error::PageBeyondSpace { chunk, page } => write!(
                f,
                "page {page} of chunk {chunk:#x} lies beyond the address space"
            ),
            Error::BadSearchIdx {
                idx,
                free_below: None,
            } => write!(f, "search_idx must be in [0, 512), got {idx}"),
            Error::BadSearchIdx {
                idx,
                free_below: Some(p),
            } => write!(f, "search_idx {idx} is invalid: page {p} below it is free"),
            Error::BadRunLength { n } => write!(f, "n must be in [0, 64], got {n}"),
            Error::NoSummaries => write!(f, "merge_summaries needs at least one summary"),
            Error::MergeTooLarge { count, log_pages } => write!(
                f,
                "{count} summaries of 2**{log_pages} pages exceed this layout's summary range"
            ),
            Error::SummaryTooLarge {
                fields: (s, m, e),
                log_pages,
            } => write!(
                f,
                "summary ({s}, {m}, {e}) is larger than 2**{log_pages} pages"
            ),
            Error::BadCache { base, cache, scav } => write!(
                f,
                "page cache at {base:#x}: scav {scav:#x} has pages that cache {cache:#x} does not"
            ),
            Error::BadCachePages { npages } => {
                write!(f, "a page cache allocates at least 1 page, got {npages}")
            }
            Error::BadSnapshot(why) => write!(f, "bad snapshot: {why}"),
            Error::BadLayout(why) => write!(f, "bad layout: {why}"),
            Error::BadPageSize { page_size } => {
                write!(f, "page_size must be a power of two, got {page_size}")
            }
            Error::BadPhysPageSize { bytes } => write!(
                f,
                "phys_page_size must be a power of two from 4096 to 524288 bytes, got {bytes}"
            ),
            Error::BadHugePageSize { bytes, phys_page } => write!(
                f,
                "huge_page_size must be 0 or a power of two from the physical page size \
                 ({phys_page}) to 1073741824 bytes, got {bytes}"
            ),
            Error::PhysPageAfterGrow => write!(
                f,
                "phys_page_size can only be set before the allocator's first grow"
            ),
            Error::BadScavengeStep(why) => write!(f, "bad scavenger step: {why}"),
            Error::BadRangeSize { size, current, max } if size > max => write!(
                f,
                "size {size} bytes is more than a RangeAllocator manages with this page size \
                 (at most {max} bytes)"
            ),
            Error::BadRangeSize { size, current, .. } => write!(
                f,
                "new size {size} bytes is below the current size {current}: a range only grows"
            ),
            Error::RangeNotWholePages { size, page_size } => write!(
                f,
                "size {size} bytes is not a whole number of pages of {page_size} bytes"
            ),
            Error::HeapTooLarge { max_bytes, limit } => write!(
                f,
                "cannot reserve max_bytes={max_bytes} bytes of address space for the heap: \
                 a process has at most {limit} bytes (128 TiB)"
            ),
            Error::OutOfRange {
                offset,
                nbytes,
                size,
            } => write!(
                f,
                "[{offset:#x}, +{nbytes:#x}) is not inside the range [0, {size:#x})"
            ),
            Error::BadAlign { align } => {
                write!(f, "align must be a power of two (in pages), got {align}")
            }
            Error::BadWindow { lo, hi } => {
                write!(f, "window [{lo:#x}, {hi:#x}) is empty: need lo < hi")
            }
            Error::NotFree { addr, npages, page } => write!(
                f,
                "alloc_at({addr:#x}, {npages}): page {page:#x} is in use or not grown"
            ),
            Error::HeapFull { npages, max_bytes } => write!(
                f,
                "heap full: {npages} page(s) do not fit in max_bytes={max_bytes} ({} MiB)",
                max_bytes >> 20
            ),
            Error::NoSuchChunk { chunk } => {
                write!(f, "chunk {chunk:#x} is outside the allocator's known range")
            }
            Error::NoSuchSummary { level, idx } => {
                write!(
                    f,
                    "no summary at level {level}, index {idx:#x} in the known range"
                )
            }
            Error::BadSummary { start, max, end } => write!(
                f,
                "summary fields ({start}, {max}, {end}) out of range for this preset"
            ),
            Error::UnknownArch(name) => {
                write!(
                    f,
                    "unknown arch {name:?}; expected one of \"amd64\", \"arm64\", \"386\""
                )
            }
            Error::Reserve {
                bytes,
                what,
                source,
            } => write!(
                f,
                "failed to reserve {bytes} bytes ({}) of address space for the {what}: {source}",
                human(*bytes)
            ),
            Error::Commit {
                bytes,
                what,
                source,
            } => write!(
                f,
                "failed to commit {bytes} bytes ({}) of the {what}: {source}",
                human(*bytes)
            ),
            Error::Verify(msg) => write!(f, "verify: {msg}"),
            Error::Corrupt(msg) => write!(f, "bad summary data: {msg}"),
            Error::UnknownGoVersion { given } => write!(
                f,
                "unknown Go version {given:?}: supported are {}",
                crate::GoVersion::ALL
                    .map(|g| format!("{:?}", g.name()))
                    .join(", ")
            ),
            Error::WrongGoVersion { what, need, have } => write!(
                f,
                "{what} is {need}'s; this allocator follows {have} (choose go=\"{}\")",
                need.name()
            ),
            Error::PaddingNotFree { addr, npages, page } => write!(
                f,
                "padding of {npages} pages at {addr:#x}: page {page:#x} is not grown and free"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Reserve { source, .. } | Error::Commit { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A byte count in the largest binary unit that keeps it at least 1.
pub(crate) fn human(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
