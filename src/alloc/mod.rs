//! The page allocator (Go's `pageAlloc` from the seed, method for method,
//! over the linearized address space described in [`crate::arch`]), split
//! by concern as Go splits it across files:
//!
//! - this file: the allocator's fields and their invariants, construction,
//!   access to the metadata arrays, and inspection;
//! - [`grow`](self) (`grow.rs`): `grow` and `sysGrow`, committing metadata;
//! - `find.rs`: the radix walk, the search address, `findMappedAddr`;
//! - `update.rs`: bringing summaries up to date after a change (the leaf
//!   at once, the walk up deferred and batched);
//! - `leaf.rs`: the chunk-level summaries and their incremental updates;
//! - `allocfree.rs`: `alloc`, `allocRange`, `free` and their checks;
//! - `verify.rs`: `verify()`, a named check per invariant.
//!
//! How the parts meet: `alloc` reads the leaf of the search address's
//! chunk and, when the request fits there, searches that bitmap alone;
//! otherwise it asks `find` for the lowest fit. Taking or returning pages
//! writes bitmaps and hands the changed pages to `update`, which rewrites
//! the changed leaves (from the old leaf and the run around the change,
//! `leaf.rs`) and notes which parents wait for the walk up. Every reader
//! above the leaves first has that walk done.

use std::ops::Range;

use crate::addr_ranges::AddrRanges;
use crate::arch::{
    chunk_page_index, Arch, Layout, LOG_PALLOC_CHUNK_BYTES, MAX_SUMMARY_LEVELS, PAGE_SHIFT,
    PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES, SUMMARY_LEVEL_BITS,
};
use crate::bits::{PallocBits, PallocData};
use crate::error::{Error, Result};
use crate::goversion::GoVersion;
use crate::scav_index::ScavIndex;
use crate::summary::{PallocSum, SumFormat};
use crate::vm::Reservation;

mod allocfree;
mod builder;
mod cache;
mod constrained;
mod find;
mod grow;
mod leaf;
mod queries;
mod scavenge;
mod snapshot;
mod update;
mod verify;

pub use builder::Builder;
pub(crate) use queries::largest_fitting;
pub use queries::{AllocFailure, Extents};
#[cfg(test)]
pub(crate) use scavenge::min_scav_pages;
pub use scavenge::{Scavenge, MAX_PHYS_PAGE, MIN_PHYS_PAGE};
pub use snapshot::{SNAPSHOT_VERSION, SNAPSHOT_VERSION_GO126};
use update::{Stale, SumStore, STALE_CAP};

const SUM_BYTES: usize = std::mem::size_of::<PallocSum>();
const CHUNK_BYTES: usize = std::mem::size_of::<PallocData>();
/// Entries in one block below the root (`1 << SUMMARY_LEVEL_BITS`).
const BLOCK: usize = 1 << SUMMARY_LEVEL_BITS;

/// Where one summary level lives: a reservation and a byte offset in it
/// (each level has its own reservation on 64-bit presets; on 386 all levels
/// share one).
#[derive(Clone, Copy, Debug, Default)]
struct LevelLoc {
    mem: usize,
    offset: usize,
}

/// Go's `pageAlloc`.
pub struct PageAlloc {
    ly: Layout,
    sum_fmt: SumFormat,

    /// The radix tree of summaries: `summary[l]` points at an array of
    /// `ly.level_entries(l)` packed summaries (level 0 is the root, level
    /// `ly.leaf()` has one entry per chunk). Summary `i` of level `l` covers
    /// linearized addresses `[i << level_shift[l], (i+1) << level_shift[l])`.
    ///
    /// Invariant: for every level, the committed part of its array covers,
    /// page-rounded, the block-aligned entries of every grown range
    /// (everything on 386). Every grown chunk's leaf summary equals
    /// `summarize()` of its bitmap; every other committed leaf summary is 0;
    /// every parent is `merge_summaries` of its block of 8 children. Only
    /// raw-pointer reads and writes touch these arrays.
    summary: [*mut PallocSum; MAX_SUMMARY_LEVELS],
    sum_loc: [LevelLoc; MAX_SUMMARY_LEVELS],
    sum_mem: Vec<Reservation>,

    /// The chunk bitmaps, indexed by chunk index, reserved for the whole
    /// address space. Invariant: committed over the page-rounded bytes of
    /// every grown chunk; a chunk in a gap may not be committed and is never
    /// read (its leaf summary says "full", and accessors check `is_grown`).
    chunks: Reservation,

    /// Linearized address where allocation searches begin. Invariant: every
    /// grown page below it is in use; it lies in a grown chunk, or it is
    /// `ly.max_search_lin` (no free page anywhere).
    search_addr: u64,

    /// The chunk indices the allocator knows: `[start, end)` is the hull of
    /// every grown chunk. `start == 0` means nothing was grown yet; chunk 0 is
    /// never grown.
    start: u64,
    end: u64,

    /// The grown chunks, as sorted, disjoint, non-adjacent ranges of chunk
    /// indices (Go's `inUse`, which holds the same ranges in bytes). The
    /// hull is `[start, end)`.
    grown: AddrRanges,

    /// The scavenge index of the Go version this allocator follows (see
    /// `scav_index`): every alloc and free tells it about the chunks it
    /// touches; its metadata is committed in `sys_grow`.
    scav: ScavIndex,

    /// Huge pages of this many runtime pages are never split by the
    /// scavenger (Go's `physHugePageSize / pageSize`; 0 or 1 for none).
    huge_pages: u64,
    /// Go's `physPageSize` in bytes, the scavenger's unit: it releases only
    /// whole, aligned physical pages (`max(1, phys_page / page_size)`
    /// runtime pages at a time) and maps its index in them. By default the
    /// host's; a replay sets the trace's (`physpage`, 4 KiB by default).
    /// Invariant: a power of two in `MIN_PHYS_PAGE..=MAX_PHYS_PAGE`.
    phys_page: u64,
    /// Lower bounds for aligned searches: `aligned_hint[c]` is a
    /// (linearized) page below which no page at a position aligned to
    /// `2^HINT_LOG_ALIGN[c]` pages is free (nor, so, at any coarser
    /// alignment). Frees lower them; a 1-page aligned allocation raises them
    /// past what it took. See `constrained`.
    aligned_hint: [u64; HINT_LOG_ALIGN.len()],
    /// Lower bounds for first-fit searches of two pages or more:
    /// `fit_hint[k]` (`k` in `1..FIT_CLASSES`) is a chunk below which no
    /// run of `2^k` free pages starts, counting runs that cross chunks, so a
    /// request of `n >= 2^k` pages need not look below it (`fit_hint[0]`,
    /// one page, stays 0: the search address does that job). Invariant:
    /// that, and `fit_hint[k] <= fit_hint[k + 1]`. `update` lowers them for
    /// every change that frees pages (a free, a grow, a flush: to the run it
    /// made when one chunk says how long that is, else all of them); the
    /// leaves a search reads raise them (`find_near`). Checked by
    /// `verify()`.
    fit_hint: [u64; FIT_CLASSES],

    /// Entries of level `leaf - 1` whose block of leaves changed since the
    /// levels above the leaves were last brought up to date (at most
    /// `STALE_CAP`, no repeats). Invariant: every summary above the leaves
    /// equals the merge of its children, except on the paths from these
    /// entries to the root; `refresh_summaries` repairs those. Leaves are
    /// always exact, so the fast path of `alloc` (which reads only a leaf)
    /// needs no repair; everything that reads higher up does.
    stale: Vec<Stale>,
    /// Scratch for `refresh_summaries` (kept to spare an allocation).
    stale_next: Vec<Stale>,
}

// SAFETY: the raw pointers point into reservations owned by this value and are
// only dereferenced through `&self` / `&mut self`, so the usual borrow rules
// serialize every access; nothing is tied to the creating thread.
unsafe impl Send for PageAlloc {}
// SAFETY: `&PageAlloc` only reads metadata; all writes need `&mut PageAlloc`.
unsafe impl Sync for PageAlloc {}

impl PageAlloc {
    /// Go's `init`: reserves the metadata for the whole address space of
    /// `arch` (committing all summaries at once on 386). Nothing is grown.
    /// It follows the page allocator of the default Go version
    /// ([`GoVersion::default`], Go 1.26). For another Go version, layout,
    /// page size or a heap grown already, see [`PageAlloc::builder`].
    ///
    /// Cost: a handful of `mmap` reservations (8.6 GiB of address space on
    /// amd64, none of it touched); O(1).
    pub fn new(arch: Arch) -> Result<PageAlloc> {
        PageAlloc::reserve(arch.layout(), GoVersion::default())
    }

    /// Go's `init` for layout `ly` following Go version `go`.
    pub(crate) fn reserve(ly: Layout, go: GoVersion) -> Result<PageAlloc> {
        PageAlloc::with_layout_base(ly, go)
    }

    /// The Go version whose page allocator this one follows.
    #[inline]
    pub fn go_version(&self) -> GoVersion {
        self.scav.go()
    }

    /// Go's `init`: the metadata reservations, nothing grown.
    fn with_layout_base(ly: Layout, go: GoVersion) -> Result<PageAlloc> {
        // Go throws if the root's page count does not fit a packed field.
        debug_assert!(ly.level_log_pages[0] <= ly.log_max_packed_value);
        let sum_fmt = SumFormat::new(ly.log_max_packed_value);

        // sysInit: the summary levels.
        let mut sum_mem = Vec::new();
        let mut sum_loc = [LevelLoc::default(); MAX_SUMMARY_LEVELS];
        if ly.commits_on_grow() {
            for (l, loc) in sum_loc.iter_mut().enumerate().take(ly.summary_levels) {
                let bytes = ly.level_entries(l) as usize * SUM_BYTES;
                sum_mem.push(Reservation::reserve(bytes, LEVEL_NAMES[l])?);
                *loc = LevelLoc { mem: l, offset: 0 };
            }
        } else {
            // One block for every level, committed straight away.
            let mut total = 0;
            for (l, loc) in sum_loc.iter_mut().enumerate().take(ly.summary_levels) {
                *loc = LevelLoc {
                    mem: 0,
                    offset: total,
                };
                total += ly.level_entries(l) as usize * SUM_BYTES;
            }
            let mut r = Reservation::reserve(total, "page summaries (all levels)")?;
            r.commit_all()?;
            sum_mem.push(r);
        }
        let mut summary = [std::ptr::null_mut(); MAX_SUMMARY_LEVELS];
        for l in 0..ly.summary_levels {
            let loc = sum_loc[l];
            // SAFETY: `offset` plus the level's size lies inside its reservation
            // (that is how the reservation was sized), so the pointer stays in
            // bounds of one allocation.
            summary[l] = unsafe { sum_mem[loc.mem].base().add(loc.offset) }.cast();
        }

        // The chunk bitmaps.
        let chunks = Reservation::reserve(ly.max_chunks as usize * CHUNK_BYTES, "chunk bitmaps")?;

        Ok(PageAlloc {
            ly,
            sum_fmt,
            summary,
            sum_loc,
            sum_mem,
            chunks,
            search_addr: ly.max_search_lin,
            start: 0,
            end: 0,
            grown: AddrRanges::new(),
            scav: ScavIndex::new(&ly, go)?,
            huge_pages: crate::vm::thp_size() / ly.page_size(),
            phys_page: (crate::vm::phys_page_size() as u64).clamp(MIN_PHYS_PAGE, MAX_PHYS_PAGE),
            aligned_hint: [0; HINT_LOG_ALIGN.len()],
            fit_hint: [0; FIT_CLASSES],
            stale: Vec::with_capacity(STALE_CAP),
            stale_next: Vec::with_capacity(STALE_CAP),
        })
    }

    // ----- metadata access -------------------------------------------------

    /// Whether summaries `[i, i+n)` of level `l` are committed.
    fn sum_committed(&self, l: usize, i: u64, n: u64) -> bool {
        let loc = self.sum_loc[l];
        i + n <= self.ly.level_entries(l)
            && self.sum_mem[loc.mem]
                .is_committed(loc.offset + i as usize * SUM_BYTES, n as usize * SUM_BYTES)
    }

    #[inline(always)]
    pub(crate) fn sum(&self, l: usize, i: u64) -> PallocSum {
        debug_assert!(
            self.sum_committed(l, i, 1),
            "summary[{l}][{i:#x}] not committed"
        );
        // SAFETY: summary[l][i] lies in committed memory (the callers only
        // reach entries covering grown chunks; see the invariant on
        // `summary`), and no reference to it exists.
        unsafe { self.summary[l].add(i as usize).read() }
    }

    #[inline(always)]
    fn set_sum(&mut self, l: usize, i: u64, v: PallocSum) {
        debug_assert!(
            self.sum_committed(l, i, 1),
            "summary[{l}][{i:#x}] not committed"
        );
        // SAFETY: as in `sum`; `&mut self` makes this the only access.
        unsafe { self.summary[l].add(i as usize).write(v) }
    }

    /// The 8 children of summary `i` at level `l` (`l + 1` must exist).
    #[inline]
    fn children(&self, l: usize, i: u64) -> [PallocSum; BLOCK] {
        let first = i << SUMMARY_LEVEL_BITS;
        debug_assert!(self.sum_committed(l + 1, first, BLOCK as u64));
        // SAFETY: the whole block is committed (blocks are committed whole,
        // see `sys_grow`); reading it by value forms no reference.
        unsafe {
            self.summary[l + 1]
                .add(first as usize)
                .cast::<[PallocSum; BLOCK]>()
                .read()
        }
    }

    #[inline]
    fn chunk_committed(&self, ci: u64) -> bool {
        ci < self.ly.max_chunks
            && self
                .chunks
                .is_committed(ci as usize * CHUNK_BYTES, CHUNK_BYTES)
    }

    /// Chunk `ci`'s bitmaps (Go's `chunkOf`).
    #[inline(always)]
    pub(crate) fn data(&self, ci: u64) -> &PallocData {
        debug_assert!(self.chunk_committed(ci), "chunk {ci:#x} not committed");
        // SAFETY: chunk ci lies in [start, end), whose bitmaps are committed
        // read/write; the 128 bytes are aligned for PallocData, and the
        // reference lives no longer than `&self`, under which nothing writes.
        unsafe { &*self.chunks.base().cast::<PallocData>().add(ci as usize) }
    }

    #[inline(always)]
    pub(super) fn data_mut(&mut self, ci: u64) -> &mut PallocData {
        debug_assert!(self.chunk_committed(ci), "chunk {ci:#x} not committed");
        // SAFETY: as in `data`; `&mut self` makes this the only reference.
        unsafe { &mut *self.chunks.base().cast::<PallocData>().add(ci as usize) }
    }

    /// Chunk `ci`'s page bitmap.
    #[inline(always)]
    fn chunk(&self, ci: u64) -> &PallocBits {
        &self.data(ci).bits
    }

    #[inline(always)]
    fn chunk_mut(&mut self, ci: u64) -> &mut PallocBits {
        &mut self.data_mut(ci).bits
    }

    // ----- inspection -------------------------------------------------------

    /// The preset's constants.
    pub fn layout(&self) -> &Layout {
        &self.ly
    }

    /// The preset (for a custom layout, the preset whose way of committing
    /// metadata it follows; see [`PageAlloc::layout`]).
    pub fn arch(&self) -> Arch {
        self.ly.arch
    }

    /// The packing of this preset's summaries.
    pub fn sum_format(&self) -> SumFormat {
        self.sum_fmt
    }

    /// Go's `Bounds()`: the chunk indices `[start, end)` the allocator knows.
    pub fn bounds(&self) -> (u64, u64) {
        (self.start, self.end)
    }

    /// The grown chunks as sorted, disjoint ranges of chunk indices.
    pub fn grown_ranges(&self) -> &[Range<u64>] {
        self.grown.ranges()
    }

    /// Whether chunk `ci` has been grown.
    pub fn is_grown(&self, ci: u64) -> bool {
        self.grown.covers(ci..ci + 1)
    }

    /// The bitmap of chunk `ci`, which must lie in `[start, end)` (a chunk in
    /// a gap between grown regions has no bitmap and reads as all free, as
    /// in Go's tests).
    pub fn chunk_bitmap(&self, ci: u64) -> Result<PallocBits> {
        Ok(self.known_chunk(ci)?.map_or(PallocBits::EMPTY, |d| d.bits))
    }

    /// The bitmaps of chunk `ci`, which must lie in `[start, end)`: `None`
    /// for a chunk in a gap, whose bitmaps may not be committed.
    pub(super) fn known_chunk(&self, ci: u64) -> Result<Option<&PallocData>> {
        if self.start == 0 || ci < self.start || ci >= self.end {
            return Err(Error::NoSuchChunk { chunk: ci });
        }
        Ok(self.is_grown(ci).then(|| self.data(ci)))
    }

    /// The summary at `level`, `idx` as (start, max, end). Entries whose
    /// memory was never committed describe no heap and read as (0, 0, 0).
    pub fn summary(&self, level: usize, idx: u64) -> Result<(u64, u64, u64)> {
        if level >= self.ly.summary_levels || idx >= self.ly.level_entries(level) {
            return Err(Error::NoSuchSummary { level, idx });
        }
        if !self.sum_committed(level, idx, 1) {
            return Ok((0, 0, 0));
        }
        Ok(self.sum_fmt.unpack(self.exact_sum(level, idx)))
    }

    /// The search address (real, not linearized).
    pub fn search_addr(&self) -> u64 {
        self.ly.unlin(self.search_addr)
    }

    /// Bytes of metadata committed so far (Go's `sysStat` for the allocator).
    pub fn mapped_bytes(&self) -> usize {
        self.chunks.committed_bytes()
            + self.scav.mapped_bytes()
            + self
                .sum_mem
                .iter()
                .map(Reservation::committed_bytes)
                .sum::<usize>()
    }

    /// Bytes of address space reserved for metadata.
    pub fn reserved_bytes(&self) -> usize {
        self.chunks.len()
            + self.scav.reserved_bytes()
            + self.sum_mem.iter().map(Reservation::len).sum::<usize>()
    }

    /// Pages in all grown chunks.
    pub fn pages_grown(&self) -> u64 {
        self.grown.total() * PALLOC_CHUNK_PAGES
    }

    /// Pages in use, counted from the bitmaps of grown chunks: O(grown chunks).
    pub fn pages_in_use(&self) -> u64 {
        self.grown_chunks()
            .map(|c| self.chunk(c).pages_in_use())
            .sum()
    }

    /// The largest run of free pages anywhere, read from the root summaries:
    /// O(root entries), independent of the heap's size.
    pub fn largest_free_run(&self) -> u64 {
        if self.start == 0 {
            return 0;
        }
        let sf = self.sum_fmt;
        let log_pages = self.ly.level_log_pages[0];
        let whole = 1u64 << log_pages;
        let (mut best, mut run) = (0u64, 0u64);
        let exact = self.exact_view();
        for i in 0..self.ly.level_entries(0) {
            let (s, m, e) = sf.unpack(exact.get(0, i));
            best = best.max(m).max(run + s);
            run = if s == whole { run + whole } else { e };
        }
        best.max(run)
    }

    /// Number of maximal runs of free pages; runs continue across adjacent
    /// grown chunks. Counted a word at a time from the bitmaps.
    pub fn free_run_count(&self) -> u64 {
        let mut count = 0u64;
        for r in self.grown.ranges() {
            // Whether the page just below the current word is free; the page
            // below a grown range is not heap, so it counts as "not free".
            let mut prev_free = false;
            for c in r.clone() {
                for &x in &self.chunk(c).0 {
                    let free = !x;
                    // A run starts at a free page whose lower neighbour is not free.
                    let below = (free << 1) | prev_free as u64;
                    count += (free & !below).count_ones() as u64;
                    prev_free = free >> 63 == 1;
                }
            }
        }
        count
    }

    /// Every grown chunk index, ascending.
    pub fn grown_chunks(&self) -> impl Iterator<Item = u64> + '_ {
        self.grown.ranges().iter().flat_map(|r| r.clone())
    }
}

/// Size classes of the fit hints: `2^k` pages for `k` in `1..FIT_CLASSES`
/// (2 to 512 pages; a larger request uses the 512-page hint).
pub(crate) const FIT_CLASSES: usize = 10;

/// The alignments (log2, in pages) that keep a search hint: 2 to 512
/// pages; a search at a larger alignment uses the 512-page hint.
pub(crate) const HINT_LOG_ALIGN: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Splits the pages `[base, base + npages*PAGE_SIZE)` (linearized, at least
/// one page) into one piece per chunk, ascending: `(chunk index, first page in
/// the chunk, page count)`. Every piece but the first starts at page 0 and
/// every piece but the last runs to page 511.
#[inline]
pub(crate) fn chunk_pieces(base: u64, npages: u64) -> impl Iterator<Item = (u64, u64, u64)> {
    debug_assert!(npages >= 1);
    let limit = base + npages * PAGE_SIZE - 1;
    let (sc, ec) = (
        base >> LOG_PALLOC_CHUNK_BYTES,
        limit >> LOG_PALLOC_CHUNK_BYTES,
    );
    let (si, ei) = (chunk_page_index(base), chunk_page_index(limit));
    (sc..=ec).map(move |c| {
        let i = if c == sc { si } else { 0 };
        let e = if c == ec { ei } else { PALLOC_CHUNK_PAGES - 1 };
        (c, i, e + 1 - i)
    })
}

impl std::fmt::Debug for PageAlloc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageAlloc")
            .field("arch", &self.ly.arch)
            .field("start", &format_args!("{:#x}", self.start))
            .field("end", &format_args!("{:#x}", self.end))
            .field("search_addr", &format_args!("{:#x}", self.search_addr()))
            .field("grown", &self.grown.ranges())
            .finish()
    }
}

/// What each 64-bit summary level's reservation holds, for error messages.
const LEVEL_NAMES: [&str; MAX_SUMMARY_LEVELS] = [
    "page summaries, level 0 (root)",
    "page summaries, level 1",
    "page summaries, level 2",
    "page summaries, level 3",
    "page summaries, level 4 (leaf)",
];
