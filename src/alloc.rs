//! The page allocator: grow, update, find, alloc, free, verify.
//!
//! This is Go's `pageAlloc` from the seed, method for method, over the
//! linearized address space described in [`crate::arch`]. See the crate docs
//! for the design; the comments here explain each step where it happens.

use std::ops::Range;

use crate::arch::{
    chunk_page_index, Arch, Layout, LOG_PALLOC_CHUNK_BYTES, MAX_SUMMARY_LEVELS, PAGE_SHIFT,
    PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES, SUMMARY_LEVEL_BITS,
};
use crate::bits::{PallocBits, PallocData};
use crate::error::{Error, Result};
use crate::ranges::AddrRanges;
use crate::scavenge::ScavengeIndex;
use crate::summary::{PallocSum, SumFormat};
use crate::vm::Reservation;

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
    pub(crate) ly: Layout,
    pub(crate) sum_fmt: SumFormat,

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
    pub(crate) search_addr: u64,

    /// The chunk indices the allocator knows: `[start, end)` is the hull of
    /// every grown chunk. `start == 0` means nothing was grown yet; chunk 0 is
    /// never grown.
    pub(crate) start: u64,
    pub(crate) end: u64,

    /// The grown chunks, as sorted, disjoint, non-adjacent ranges of chunk
    /// indices (Go's `inUse`, which holds the same ranges in bytes). The
    /// hull is `[start, end)`.
    grown: AddrRanges,

    /// Go 1.19's scavenge index: which chunks may hold free, unscavenged
    /// pages, for the scavenger. Its metadata is committed in `sys_grow`.
    pub(crate) scav_index: ScavengeIndex,

    /// Huge pages of this many runtime pages are never split by the
    /// scavenger (Go's `physHugePageSize / pageSize`; 0 or 1 for none).
    pub(crate) huge_pages: u64,
    /// Lower bounds for aligned searches: `aligned_hint[c]` is a
    /// (linearized) page below which no page at a position aligned to
    /// `2^HINT_LOG_ALIGN[c]` pages is free (nor, so, at any coarser
    /// alignment). Frees lower them; a 1-page aligned allocation raises them
    /// past what it took. See `constrained`.
    pub(crate) aligned_hint: [u64; HINT_LOG_ALIGN.len()],

    /// Entries of level `leaf - 1` whose block of leaves changed since the
    /// levels above the leaves were last brought up to date (at most
    /// `STALE_CAP`, no repeats). Invariant: every summary above the leaves
    /// equals the merge of its children, except on the paths from these
    /// entries to the root; `refresh_summaries` repairs those. Leaves are
    /// always exact, so the fast path of `alloc` (which reads only a leaf)
    /// needs no repair; everything that reads higher up does.
    pub(crate) stale: Vec<Stale>,
    /// Scratch for `refresh_summaries` (kept to spare an allocation).
    stale_next: Vec<Stale>,
}

/// How many leaf blocks may wait for the walk up before it is done.
const STALE_CAP: usize = 32;

/// An entry whose children changed: `idx` at its level; when only one child
/// changed (`single`), which one and its summary before the first change,
/// so that the parent can often be told without a merge (`max_only_parent`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stale {
    idx: u64,
    child: u64,
    was: PallocSum,
    single: bool,
}

/// Records in `list` that child `child` of entry `child >> 3` changed from
/// `was`.
#[inline]
fn note_change(list: &mut Vec<Stale>, child: u64, was: PallocSum) {
    let idx = child >> SUMMARY_LEVEL_BITS;
    // The same block again is the common case (a chunk filling up, a page
    // allocated and freed): look at the last entry first.
    let hit = match list.last_mut() {
        Some(e) if e.idx == idx => Some(e),
        _ => list.iter_mut().find(|e| e.idx == idx),
    };
    match hit {
        Some(e) => e.single &= e.child == child,
        None => list.push(Stale {
            idx,
            child,
            was,
            single: true,
        }),
    }
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
    ///
    /// Cost: a handful of `mmap` reservations (8.6 GiB of address space on
    /// amd64, none of it touched); O(1).
    pub fn new(arch: Arch) -> Result<PageAlloc> {
        PageAlloc::with_layout(arch.layout())
    }

    /// Go's `init` for any layout, a preset's or a custom geometry's
    /// ([`Layout::custom`]); reservations scale with the layout's space.
    pub fn with_layout(ly: Layout) -> Result<PageAlloc> {
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
            scav_index: ScavengeIndex::new(&ly)?,
            huge_pages: crate::vm::thp_size() / ly.page_size(),
            aligned_hint: [0; HINT_LOG_ALIGN.len()],
            stale: Vec::with_capacity(STALE_CAP),
            stale_next: Vec::with_capacity(STALE_CAP),
        })
    }

    /// Go's test constructor `NewPageAlloc(chunks, nil)`: see
    /// [`PageAlloc::from_chunks_scav`].
    pub fn from_chunks<I, R>(arch: Arch, chunks: I) -> Result<PageAlloc>
    where
        I: IntoIterator<Item = (u64, R)>,
        R: IntoIterator<Item = (u64, u64)>,
    {
        Self::from_chunks_scav(arch, chunks, Vec::<(u64, Vec<(u64, u64)>)>::new())
    }

    /// Go 1.19's test constructor `NewPageAlloc(chunks, scav)`: grows each
    /// chunk of `chunks`, marks its scavenged pages as `scav` lists them
    /// (none when it does not list the chunk), then marks the given
    /// `(first page, page count)` runs in use (and so unscavenged); a chunk
    /// left with free, unscavenged pages is marked in the scavenge index.
    /// Runs of length zero are ignored; `scav` entries for chunks not in
    /// `chunks` are ignored, as in Go.
    pub fn from_chunks_scav<I, R, J, S>(arch: Arch, chunks: I, scav: J) -> Result<PageAlloc>
    where
        I: IntoIterator<Item = (u64, R)>,
        R: IntoIterator<Item = (u64, u64)>,
        J: IntoIterator<Item = (u64, S)>,
        S: IntoIterator<Item = (u64, u64)>,
    {
        PageAlloc::from_chunks_in(arch.layout(), chunks, scav)
    }

    /// [`PageAlloc::from_chunks_scav`] for any layout.
    pub fn from_chunks_in<I, R, J, S>(ly: Layout, chunks: I, scav: J) -> Result<PageAlloc>
    where
        I: IntoIterator<Item = (u64, R)>,
        R: IntoIterator<Item = (u64, u64)>,
        J: IntoIterator<Item = (u64, S)>,
        S: IntoIterator<Item = (u64, u64)>,
    {
        let collect = |ci: u64,
                       runs: &mut dyn Iterator<Item = (u64, u64)>|
         -> Result<(u64, Vec<(u64, u64)>)> {
            let runs: Vec<(u64, u64)> = runs.filter(|r| r.1 != 0).collect();
            for &(i, n) in &runs {
                crate::bits::check_range(i, n)?;
            }
            Ok((ly.check_chunk(ci)?, runs))
        };
        let mut list = chunks
            .into_iter()
            .map(|(ci, r)| collect(ci, &mut r.into_iter()))
            .collect::<Result<Vec<_>>>()?;
        let scav = scav
            .into_iter()
            .map(|(ci, r)| collect(ci, &mut r.into_iter()))
            .collect::<Result<std::collections::HashMap<_, _>>>()?;
        list.sort_by_key(|(ci, _)| *ci);
        let mut pa = PageAlloc::with_layout(ly)?;
        let (min, huge) = (
            crate::scavenge::min_scav_pages(ly.page_size()),
            pa.huge_pages,
        );
        for (ci, runs) in list {
            pa.grow(ly.chunk_base(ci), ly.pages_bytes(PALLOC_CHUNK_PAGES))?;
            let data = pa.data_mut(ci);
            data.scavenged = PallocBits::EMPTY;
            for &(i, n) in scav.get(&ci).into_iter().flatten() {
                data.scavenged.alloc_range(i, n);
            }
            for (i, n) in runs {
                data.alloc_range(i, n);
            }
            let (_, n) = data.find_scavenge_candidate(PALLOC_CHUNK_PAGES - 1, min, min, huge);
            let lin = ci << LOG_PALLOC_CHUNK_BYTES;
            if n != 0 {
                pa.scav_index.mark(lin, lin + PALLOC_CHUNK_BYTES);
            }
            pa.update(lin, PALLOC_CHUNK_PAGES, false, false);
        }
        Ok(pa)
    }

    // ----- metadata access -------------------------------------------------

    /// Whether summaries `[i, i+n)` of level `l` are committed.
    fn sum_committed(&self, l: usize, i: u64, n: u64) -> bool {
        let loc = self.sum_loc[l];
        i + n <= self.ly.level_entries(l)
            && self.sum_mem[loc.mem]
                .is_committed(loc.offset + i as usize * SUM_BYTES, n as usize * SUM_BYTES)
    }

    #[inline]
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

    #[inline]
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
    #[inline]
    pub(crate) fn data(&self, ci: u64) -> &PallocData {
        debug_assert!(self.chunk_committed(ci), "chunk {ci:#x} not committed");
        // SAFETY: chunk ci lies in [start, end), whose bitmaps are committed
        // read/write; the 128 bytes are aligned for PallocData, and the
        // reference lives no longer than `&self`, under which nothing writes.
        unsafe { &*self.chunks.base().cast::<PallocData>().add(ci as usize) }
    }

    #[inline]
    pub(crate) fn data_mut(&mut self, ci: u64) -> &mut PallocData {
        debug_assert!(self.chunk_committed(ci), "chunk {ci:#x} not committed");
        // SAFETY: as in `data`; `&mut self` makes this the only reference.
        unsafe { &mut *self.chunks.base().cast::<PallocData>().add(ci as usize) }
    }

    /// Chunk `ci`'s page bitmap.
    #[inline]
    fn chunk(&self, ci: u64) -> &PallocBits {
        &self.data(ci).bits
    }

    #[inline]
    fn chunk_mut(&mut self, ci: u64) -> &mut PallocBits {
        &mut self.data_mut(ci).bits
    }

    // ----- growth -----------------------------------------------------------

    /// Go's `grow`: makes `[base, base+size)`, rounded out to whole chunks,
    /// known to the allocator and free.
    ///
    /// Unlike the seed, the summaries of every chunk the rounding makes known
    /// are updated (the seed updates `size` pages from the rounded-down base,
    /// which can leave a chunk summarized as full over a free bitmap).
    ///
    /// Cost: commits the page-rounded metadata the new chunks need (at most
    /// one `mprotect` per summary level and one for the bitmaps), then
    /// Go's `update` over the new chunks: O(chunks grown) summaries.
    pub fn grow(&mut self, base: u64, size: u64) -> Result<()> {
        if size == 0 {
            return Err(Error::ZeroSize);
        }
        let lin = self.ly.lin_checked(base, size)?;
        // Just past the page holding the last byte; the space is a whole
        // number of chunks, so rounding up stays inside.
        let last = self.ly.lin(base.wrapping_add(size - 1)) & !(PAGE_SIZE - 1);
        let limit = (last + PAGE_SIZE).next_multiple_of(PALLOC_CHUNK_BYTES);
        let lin = lin & !(PALLOC_CHUNK_BYTES - 1);
        let (sc, ec) = (
            lin >> LOG_PALLOC_CHUNK_BYTES,
            limit >> LOG_PALLOC_CHUNK_BYTES,
        );
        let (rbase, rlimit) = (self.ly.unlin(lin), self.ly.unlin(limit));
        if sc == 0 || (sc..ec).contains(&self.ly.chunk_index(0)) {
            return Err(Error::ReservedAddress {
                base: rbase,
                limit: rlimit,
            });
        }
        if let Some(chunk) = self.grown.first_in(sc..ec) {
            return Err(Error::AlreadyGrown {
                base: rbase,
                limit: rlimit,
                chunk,
            });
        }

        // Commit metadata first, so that a refusal changes no allocator state.
        self.sys_grow(lin, limit)?;
        let (start, end) = if self.start == 0 {
            (sc, ec)
        } else {
            (self.start.min(sc), self.end.max(ec))
        };
        // The new chunks' bitmaps, page-rounded (Go 1.19 allocates them in
        // blocks of 2^13 chunks; pages are finer and cost no more).
        self.chunks
            .commit(sc as usize * CHUNK_BYTES, ec as usize * CHUNK_BYTES)?;

        self.start = start;
        self.end = end;
        self.grown.add(sc..ec);
        // New memory is free and scavenged (Go 1.19's grow): it has not been
        // touched, so it costs nothing until it is allocated.
        for c in sc..ec {
            debug_assert!(*self.data(c) == PallocData::default());
            self.data_mut(c).scavenged = PallocBits::FULL;
        }

        // Growing is like freeing: new free pages below the search address
        // pull it down.
        if lin < self.search_addr {
            self.search_addr = lin;
        }
        self.lower_aligned_hints(lin >> PAGE_SHIFT, (limit - lin) >> PAGE_SHIFT);
        self.update(lin, (limit - lin) >> PAGE_SHIFT, true, false);
        Ok(())
    }

    /// Go 1.19's `sysGrow`: commits the summary blocks that `[base, limit)`
    /// (chunk aligned, linearized) needs at every level, page-rounded, less
    /// the pages already committed (Go prunes what the neighbouring grown
    /// ranges mapped; any other committed page of the level lies beyond
    /// them), then grows the scavenge index. On 386 the summaries are
    /// committed already and the index is static.
    fn sys_grow(&mut self, base: u64, limit: u64) -> Result<()> {
        debug_assert!(base % PALLOC_CHUNK_BYTES == 0 && limit % PALLOC_CHUNK_BYTES == 0);
        if !self.ly.commits_on_grow() {
            return Ok(());
        }
        for l in (0..self.ly.summary_levels).rev() {
            // Whole blocks: a parent summarizes a full block of children.
            let (lo, hi) = self.ly.addrs_to_summary_range(l, base, limit);
            let (lo, hi) = self.ly.block_align_summary_range(l, lo, hi);
            let loc = self.sum_loc[l];
            self.sum_mem[loc.mem].commit(
                loc.offset + lo as usize * SUM_BYTES,
                loc.offset + hi as usize * SUM_BYTES,
            )?;
        }
        self.scav_index.grow(base, limit)?;
        Ok(())
    }

    /// Go's later `findMappedAddr`: the lowest grown linearized address at or
    /// above `lin`, or `max_search_lin` if there is none. A candidate search
    /// address from the radix walk may lie below or between grown regions
    /// (the base of a large summary region), where no metadata need be
    /// committed (golang/go#40191); this moves it onto the heap.
    fn find_mapped_addr(&self, lin: u64) -> u64 {
        let ci = lin >> LOG_PALLOC_CHUNK_BYTES;
        match self.grown.find_addr_greater_equal(ci) {
            Some(c) if c == ci => lin,
            Some(c) => c << LOG_PALLOC_CHUNK_BYTES,
            None => self.ly.max_search_lin,
        }
    }

    // ----- summaries --------------------------------------------------------

    /// Go's `update`: brings the summaries up to date after the bitmaps of
    /// pages `[base, base + npages*PAGE_SIZE)` (linearized) changed.
    ///
    /// Cost: re-summarizes each changed chunk (the two end chunks of a
    /// contiguous change; interior ones are known full or free), then at each
    /// level above merges the blocks of 8 covering the range, stopping at the
    /// first level where no parent changed. For a change inside one chunk:
    /// one leaf, and the walk up is deferred (`mark_stale`): one list entry,
    /// its merges done later by `refresh_summaries`, once for all the changes
    /// in that block of leaves since.
    ///
    /// `contig` says the change was one contiguous alloc (`alloc`) or free,
    /// so chunks strictly inside the range are entirely in use or free and
    /// need no summarizing.
    pub(crate) fn update(&mut self, base: u64, npages: u64, contig: bool, alloc: bool) {
        let leaf = self.ly.leaf();
        let sf = self.sum_fmt;
        // Inclusive last byte.
        let limit = base + npages * PAGE_SIZE - 1;
        let (sc, ec) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            limit >> LOG_PALLOC_CHUNK_BYTES,
        );

        if sc == ec {
            // One chunk: if its summary did not change, no parent can.
            let old = self.sum(leaf, sc);
            // A contiguous change inside one chunk can often be summarized
            // from the old summary and the run around it, without a rescan;
            // the result is the same summary either way.
            let bits = self.chunk(sc);
            let y = contig
                .then(|| {
                    let i = chunk_page_index(base);
                    bits.summary_after(i, npages, alloc, sf.unpack(old))
                })
                .flatten()
                .map_or_else(|| bits.summarize(sf), |(s, m, e)| sf.pack(s, m, e));
            debug_assert_eq!(y, self.chunk(sc).summarize(sf));
            if old == y {
                return;
            }
            self.set_sum(leaf, sc, y);
            // The walk up waits: the next reader above the leaves does it,
            // once for all the changes since (see `stale`).
            self.mark_stale(sc, old);
            return;
        }
        // Many chunks: walk up at once, from summaries brought up to date.
        self.refresh_summaries();
        if contig {
            let first = self.chunk(sc).summarize(sf);
            self.set_sum(leaf, sc, first);
            let whole = if alloc {
                PallocSum::FULL
            } else {
                sf.free_chunk_sum()
            };
            for c in sc + 1..ec {
                self.set_sum(leaf, c, whole);
            }
            let last = self.chunk(ec).summarize(sf);
            self.set_sum(leaf, ec, last);
        } else {
            for c in sc..=ec {
                let s = self.chunk(c).summarize(sf);
                self.set_sum(leaf, c, s);
            }
        }

        // Walk up the tree, recomputing each parent from its block of
        // children, and stop at the first level where nothing changed.
        for l in (0..leaf).rev() {
            let log_max_pages = self.ly.level_log_pages[l + 1];
            let (lo, hi) = self.ly.addrs_to_summary_range(l, base, limit + 1);
            let mut changed = false;
            for i in lo..hi {
                let sum = sf.merge_block(&self.children(l, i), log_max_pages);
                if self.sum(l, i) != sum {
                    changed = true;
                    self.set_sum(l, i, sum);
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Notes that leaf `ci` changed from `was`: its parent joins `stale`
    /// (when that overfills the list, the walk up is done at once).
    #[inline]
    fn mark_stale(&mut self, ci: u64, was: PallocSum) {
        if self.ly.leaf() == 0 {
            return;
        }
        note_change(&mut self.stale, ci, was);
        if self.stale.len() > STALE_CAP {
            self.refresh_summaries();
        }
    }

    /// Go's walk up in `update`, for every change since the last one: each
    /// stale entry is merged from its children, and each parent whose child
    /// changed is merged in turn, level by level; a parent none of whose
    /// children changed is left alone. Afterwards every summary is exact.
    ///
    /// Cost: one block merge per stale entry, plus one per changed parent
    /// (at most one per level per stale entry; fewer where the changes
    /// share ancestors or cancel out).
    pub(crate) fn refresh_summaries(&mut self) {
        if self.stale.is_empty() {
            return;
        }
        let mut level = std::mem::take(&mut self.stale);
        let mut next = std::mem::take(&mut self.stale_next);
        propagate(self, &mut level, &mut next);
        // Keep the lists' allocations.
        level.clear();
        (self.stale, self.stale_next) = (level, next);
    }

    /// The summary at level `l`, index `i` as it will be once brought up to
    /// date, without writing: for readers that only have `&self`.
    pub(crate) fn exact_sum(&self, l: usize, i: u64) -> PallocSum {
        if self.stale.is_empty() || l == self.ly.leaf() {
            return self.sum(l, i);
        }
        self.exact_view().get(l, i)
    }

    /// Every summary as it will be once brought up to date (the walk up
    /// done in a side list; O(stale entries) merges), for `&self` readers.
    fn exact_view(&self) -> Overlay<'_> {
        let mut overlay = Overlay {
            pa: self,
            sums: Vec::new(),
        };
        if !self.stale.is_empty() {
            propagate(&mut overlay, &mut self.stale.clone(), &mut Vec::new());
        }
        overlay
    }

    // ----- allocation -------------------------------------------------------

    /// Go's `allocRange`: marks `[base, base + npages*PAGE_SIZE)` (linearized)
    /// in use and unscavenged, updates the summaries, and returns how many
    /// of those pages were scavenged.
    ///
    /// Cost: one bitmap write per chunk touched, then Go's `update`.
    pub(crate) fn alloc_range(&mut self, base: u64, npages: u64) -> u64 {
        self.alloc_range_noting(base, npages, None)
    }

    /// [`PageAlloc::alloc_range`], also appending to `dirty` (when given) the
    /// runs of pages that were not scavenged, as linearized `(base, npages)`
    /// pairs, ascending and merged across chunks.
    fn alloc_range_noting(
        &mut self,
        base: u64,
        npages: u64,
        mut dirty: Option<&mut Vec<(u64, u64)>>,
    ) -> u64 {
        let mut scav = 0;
        for (ci, i, n) in chunk_pieces(base, npages) {
            let data = self.data_mut(ci);
            scav += data.scavenged.popcnt_range(i, n);
            if let Some(d) = dirty.as_deref_mut() {
                let cb = ci << LOG_PALLOC_CHUNK_BYTES;
                data.scavenged.for_each_run(i, n, false, |j, m| {
                    let lin = cb + j * PAGE_SIZE;
                    match d.last_mut() {
                        Some((s, len)) if *s + *len * PAGE_SIZE == lin => *len += m,
                        _ => d.push((lin, m)),
                    }
                });
            }
            if n == PALLOC_CHUNK_PAGES {
                data.alloc_all();
            } else {
                data.alloc_range(i, n);
            }
        }
        self.update(base, npages, true, true);
        scav
    }

    /// Go's `find`: the radix walk. Returns the linearized base of the lowest
    /// run of `npages` free pages and a candidate search address, or `None`.
    ///
    /// Cost: one summary per level on the search address's path, read
    /// bottom-up until one fits (see `walk_start`); from there one block of 8
    /// per level below, then one chunk bitmap. When nothing on that path
    /// fits, Go's whole walk: the root level from the search address's entry
    /// on (at most `2^summary_l0_bits` summaries), then a block of 8 per
    /// level. Writes nothing; the result is Go's, address and candidate.
    ///
    /// At each level the walk scans one block of summaries (the whole root
    /// level, then the 8 children of the entry it chose), looking either for a
    /// run that straddles entries (`end` of one, whole free entries, `start` of
    /// the next) or for an entry whose `max` fits, which it descends into.
    /// Meanwhile it narrows `first_free`, a window known to hold the first free
    /// page of the heap, whose base becomes the candidate search address.
    pub(crate) fn find(&self, npages: u64) -> Result<Option<(u64, u64)>> {
        debug_assert!(self.stale.is_empty(), "summaries not brought up to date");
        let got = match self.walk_start(npages) {
            Some((l, i)) => {
                // Go's walk would have narrowed its window to this entry.
                let base = i << self.ly.level_shift[l];
                let last = base + (PAGE_SIZE << self.ly.level_log_pages[l]) - 1;
                self.walk(npages, l + 1, i, (base, last))
            }
            None => self.walk(npages, 0, 0, (0, self.ly.space_bytes() - 1)),
        };
        debug_assert!(
            matches!((&got, self.walk(npages, 0, 0, (0, self.ly.space_bytes() - 1))),
                (Ok(a), Ok(b)) if *a == b),
            "walk from below the root disagrees with Go's walk from the root"
        );
        got
    }

    /// Where Go's walk from the root can be joined lower down, as `(level,
    /// entry)`: the deepest summary on the search address's path whose `max`
    /// fits `npages`.
    ///
    /// Why that is sound: every page below the search address is in use, so
    /// at each level Go's walk meets the search address's own entry first
    /// (it starts the block scan at it). When that entry's `max` fits, it
    /// either descends into it, or its `start` fits and the walk stops at
    /// its base, which is the search address itself; a walk joined lower
    /// down stops at that same base, with the same window base. Above the
    /// joined entry, then, Go only narrows its first-free window to each
    /// ancestor in turn, and the joined entry's range is where it ends up.
    /// Ancestors are read bottom-up, one summary per level, so a request
    /// that fits near the search address skips the root's scan and a block
    /// scan per level.
    #[inline]
    fn walk_start(&self, npages: u64) -> Option<(usize, u64)> {
        if self.search_addr == self.ly.max_search_lin {
            return None;
        }
        let sf = self.sum_fmt;
        (0..self.ly.summary_levels).rev().find_map(|l| {
            let i = self.search_addr >> self.ly.level_shift[l];
            (sf.max(self.sum(l, i)) >= npages).then_some((l, i))
        })
    }

    /// Go's walk, from `level` down, scanning at that level the block of
    /// children of entry `i` one level up (`i = 0` and the whole root level
    /// at level 0), with first-free window `first_free`.
    fn walk(
        &self,
        npages: u64,
        level: usize,
        i: u64,
        first_free: (u64, u64),
    ) -> Result<Option<(u64, u64)>> {
        let ly = &self.ly;
        let sf = self.sum_fmt;
        // Why a window: after this allocation the search address should move
        // up to the heap's first free page, but the walk only visits what it
        // needs for *this* request, which may be far above that page. What it
        // does learn on the way is where the first free page cannot be: at
        // every level it meets the non-full entries in address order (entries
        // below the search address are full and skipped), so the first
        // non-full entry it sees holds the first free page, provided it lies
        // inside the window learned one level up. `first_free` is that
        // window, inclusive [base, bound] in linearized addresses; it only
        // ever shrinks, and its base is the lowest address that may be free,
        // which makes it a sound new search address even when the walk
        // descends elsewhere and the window stops narrowing.
        let mut first_free = first_free;
        // Narrow the window to [addr, addr+size) if that lies inside it. A
        // range that only partly overlaps means the summaries are inconsistent.
        let found_free = |w: &mut (u64, u64), addr: u64, size: u64| -> Result<()> {
            let last = addr + size - 1;
            if w.0 <= addr && last <= w.1 {
                *w = (addr, last);
            } else if !(last < w.0 || addr > w.1) {
                return Err(Error::Corrupt(format!(
                    "range [{addr:#x}, {last:#x}] partially overlaps [{:#x}, {:#x}]",
                    w.0, w.1
                )));
            }
            Ok(())
        };

        // i: the entry one level up whose block of children is scanned at
        // the current level.
        let mut i = i;
        let mut last_sum = (level.saturating_sub(1), i);
        'next_level: for l in level..ly.summary_levels {
            let entries_per_block = 1u64 << ly.level_bits[l];
            let log_max_pages = ly.level_log_pages[l];
            i <<= ly.level_bits[l];

            // If the search address lies in this block, skip the entries
            // below it: they hold no free page.
            let mut j0 = 0;
            let search_idx = self.search_addr >> ly.level_shift[l];
            if search_idx & !(entries_per_block - 1) == i {
                j0 = search_idx & (entries_per_block - 1);
            }

            // [base, base+size) is the current run of free pages, in pages
            // relative to the block's first page.
            let (mut base, mut size) = (0u64, 0u64);
            for j in j0..entries_per_block {
                let sum = self.sum(l, i + j);
                if sum == PallocSum::FULL {
                    size = 0;
                    continue;
                }
                found_free(
                    &mut first_free,
                    (i + j) << ly.level_shift[l],
                    PAGE_SIZE << log_max_pages,
                )?;
                let (s, max, end) = if l == 0 {
                    sf.unpack(sum)
                } else {
                    sf.unpack_below_root(sum)
                };
                if size + s >= npages {
                    // The run so far plus this entry's start suffices.
                    if size == 0 {
                        base = j << log_max_pages;
                    }
                    size += s;
                    break;
                }
                if max >= npages {
                    // The run lies inside this entry: descend.
                    i += j;
                    last_sum = (l, i);
                    continue 'next_level;
                }
                if size == 0 || s < 1 << log_max_pages {
                    // Start a new run at this entry's free end.
                    size = end;
                    base = ((j + 1) << log_max_pages) - size;
                    continue;
                }
                // A wholly free entry extends the run.
                size += 1 << log_max_pages;
            }
            if size >= npages {
                let addr = (i << ly.level_shift[l]) + base * PAGE_SIZE;
                return Ok(Some((addr, self.find_mapped_addr(first_free.0))));
            }
            if l == 0 {
                // The whole root level has no room.
                return Ok(None);
            }
            return Err(Error::Corrupt(format!(
                "summary[{}][{:#x}] promised {npages} free pages, but level {l} has none \
                 (search_addr {:#x})",
                last_sum.0, last_sum.1, self.search_addr
            )));
        }

        // Descended to a chunk whose max fits: search its bitmap.
        let ci = i;
        let (j, search_idx) = self.chunk(ci).find(npages, 0);
        let Some(j) = j else {
            return Err(Error::Corrupt(format!(
                "chunk {ci:#x} summary {:?} promised {npages} free pages",
                sf.unpack(self.sum(ly.leaf(), ci))
            )));
        };
        let chunk_base = ci << LOG_PALLOC_CHUNK_BYTES;
        let addr = chunk_base + j * PAGE_SIZE;
        // Searching the chunk found the exact first free page in it.
        let sa = chunk_base + search_idx * PAGE_SIZE;
        found_free(&mut first_free, sa, chunk_base + PALLOC_CHUNK_BYTES - sa)?;
        Ok(Some((addr, self.find_mapped_addr(first_free.0))))
    }

    /// Go's `alloc` without its second result: allocates `npages` contiguous
    /// pages at the lowest address where they fit. `Ok(None)` when nothing
    /// fits. See [`PageAlloc::alloc_scav`] for the cost.
    #[inline]
    pub fn alloc(&mut self, npages: u64) -> Result<Option<u64>> {
        Ok(self.alloc_scav(npages)?.0)
    }

    /// Go 1.19's `alloc`: allocates `npages` contiguous pages at the lowest
    /// address where they fit and returns that address (`None` when nothing
    /// fits) and how many of the bytes handed out were scavenged (returned to
    /// the OS: a caller with real memory knows they read as zero and must be
    /// touched again; the rest may hold old contents).
    ///
    /// Cost: when the request fits in the search address's chunk (most small
    /// allocations), one leaf read and one bitmap search; otherwise one radix
    /// walk (Go's `find`: the root level, then a block of 8 per
    /// level). Then one bitmap write per chunk taken and an `update` (for a
    /// single chunk: one leaf and at most one block merge per level above).
    pub fn alloc_scav(&mut self, npages: u64) -> Result<(Option<u64>, u64)> {
        self.alloc_noting(npages, None)
    }

    /// [`PageAlloc::alloc_scav`], also filling `dirty` (cleared first) with
    /// the runs of the allocated pages that were not scavenged, as
    /// `(address, npages)` pairs, ascending: the pages that may hold old
    /// contents, which a caller with real memory zeroes when it must (the
    /// scavenged ones read as zero). Same cost, plus one pass over the
    /// scavenged bits taken.
    pub fn alloc_dirty(
        &mut self,
        npages: u64,
        dirty: &mut Vec<(u64, u64)>,
    ) -> Result<(Option<u64>, u64)> {
        dirty.clear();
        let res = self.alloc_noting(npages, Some(&mut *dirty))?;
        for (lin, _) in dirty.iter_mut() {
            *lin = self.ly.unlin(*lin);
        }
        Ok(res)
    }

    #[inline]
    fn alloc_noting(
        &mut self,
        npages: u64,
        dirty: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<(Option<u64>, u64)> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        // A search address above every known chunk means no free memory.
        if self.search_addr >> LOG_PALLOC_CHUNK_BYTES >= self.end {
            return Ok((None, 0));
        }
        // Fast path: if npages can fit in the rest of the search address's
        // chunk and the chunk's max says it does, search that bitmap alone.
        let pi = chunk_page_index(self.search_addr);
        let mut hit = None;
        if PALLOC_CHUNK_PAGES - pi >= npages {
            let ci = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
            if self
                .sum_fmt
                .unpack_below_root(self.sum(self.ly.leaf(), ci))
                .1
                >= npages
            {
                let (j, search_idx) = self.chunk(ci).find(npages, pi);
                let Some(j) = j else {
                    return Err(Error::Corrupt(format!(
                        "chunk {ci:#x} max promised {npages} pages from page {pi}"
                    )));
                };
                let cb = ci << LOG_PALLOC_CHUNK_BYTES;
                hit = Some((cb + j * PAGE_SIZE, cb + search_idx * PAGE_SIZE));
            }
        }
        let found = match hit {
            Some(h) => Some(h),
            None => {
                // The walk reads summaries above the leaves.
                self.refresh_summaries();
                self.find(npages)?
            }
        };
        let (addr, candidate) = match found {
            Some(h) => h,
            None => {
                // Not even one page: the heap is exhausted. (A larger
                // request may fail only for want of contiguity.)
                if npages == 1 {
                    self.search_addr = self.ly.max_search_lin;
                }
                return Ok((None, 0));
            }
        };
        let scav = self.alloc_range_noting(addr, npages, dirty);
        // Everything below the candidate is now in use.
        if candidate > self.search_addr {
            self.search_addr = candidate;
        }
        debug_assert!(self.search_addr_on_heap());
        Ok((Some(self.ly.unlin(addr)), scav << self.ly.page_shift))
    }

    /// Go's `free`: returns `npages` pages at `base` (a result of `alloc`, or
    /// any run of in-use pages) to the heap. Every page must be in use;
    /// otherwise an error and nothing changes.
    ///
    /// Cost: checks and clears one bitmap range per chunk touched, then an
    /// `update` (for a single chunk: one leaf and at most one block merge per
    /// level); O(npages / 512) bitmaps plus O(levels) merges.
    pub fn free(&mut self, base: u64, npages: u64) -> Result<()> {
        let lin = self.check_in_use(base, npages)?;
        self.free_pages(lin, npages, false);
        Ok(())
    }

    /// Go 1.19's `free` on checked, linearized pages. Pages freed as not
    /// `scavenged` (every free but the scavenger's own) mark their chunks in
    /// the scavenge index; the scavenged bits are left as they are.
    pub(crate) fn free_pages(&mut self, lin: u64, npages: u64, scavenged: bool) {
        if lin < self.search_addr {
            self.search_addr = lin;
        }
        self.lower_aligned_hints(lin >> PAGE_SHIFT, npages);
        if !scavenged {
            self.scav_index.mark(lin, lin + npages * PAGE_SIZE);
        }
        for (ci, i, n) in chunk_pieces(lin, npages) {
            let bits = self.chunk_mut(ci);
            if n == PALLOC_CHUNK_PAGES {
                bits.free_all();
            } else {
                bits.free(i, n);
            }
        }
        self.update(lin, npages, true, false);
    }

    /// Pages `[p, p + n)` (linearized page indices) became free: each hint
    /// drops to the first page of the run at its alignment, if lower. Until
    /// an aligned allocation raises a hint this is one comparison.
    #[inline]
    pub(crate) fn lower_aligned_hints(&mut self, p: u64, n: u64) {
        // Every hint is at most the last: nothing to lower from p on (the
        // common case, and always so until an aligned allocation raises one).
        if p >= self.aligned_hint[HINT_LOG_ALIGN.len() - 1] {
            return;
        }
        let off = self.ly.arena_base_offset >> self.ly.page_shift;
        for (c, &k) in HINT_LOG_ALIGN.iter().enumerate() {
            let a = p + ((off.wrapping_sub(p)) & ((1 << k) - 1));
            if a < p + n && a < self.aligned_hint[c] {
                self.aligned_hint[c] = a;
            }
        }
    }

    /// Frees each run of `npages` pages at `bases`, in order. All or nothing:
    /// every free is checked first, as if the earlier ones in the list had
    /// happened (so a run overlapping an earlier one is refused), and only
    /// then are they applied; on an error the allocator is unchanged.
    pub fn free_many(&mut self, bases: &[u64], npages: u64) -> Result<()> {
        // Linearized starts of the runs checked so far, to their ends.
        let mut freed = std::collections::BTreeMap::new();
        let mut lins = Vec::with_capacity(bases.len());
        for &base in bases {
            let lin = self.check_in_use(base, npages)?;
            let end = lin + npages * PAGE_SIZE;
            // The first page of this run that an earlier run already freed.
            let below = freed.range(..=lin).next_back().filter(|(_, &e)| e > lin);
            let above = freed.range(lin..end).next();
            if let Some(first) = below.map(|_| lin).or(above.map(|(&s, _)| s)) {
                return Err(Error::NotInUse {
                    addr: base,
                    npages,
                    page: self.ly.unlin(first),
                });
            }
            freed.insert(lin, end);
            lins.push(lin);
        }
        for lin in lins {
            self.free_pages(lin, npages, false);
        }
        Ok(())
    }

    /// Up to `count` allocations of `npages` each, stopping at the first that
    /// does not fit; returns the addresses obtained.
    pub fn alloc_many(&mut self, npages: u64, count: usize) -> Result<Vec<u64>> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        let mut out = Vec::with_capacity(count.min(1 << 20));
        while out.len() < count {
            match self.alloc(npages)? {
                Some(a) => out.push(a),
                None => break,
            }
        }
        Ok(out)
    }

    /// Checks a page range named by the caller: `npages >= 1`, `base` aligned
    /// to the layout's page, the whole range inside the address space.
    /// Returns the linearized base.
    pub(crate) fn check_pages(&self, base: u64, npages: u64) -> Result<u64> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        if base & (self.ly.page_size() - 1) != 0 {
            return Err(Error::Misaligned { addr: base });
        }
        let len =
            npages
                .checked_mul(self.ly.page_size())
                .ok_or_else(|| Error::BeyondAddressSpace {
                    addr: base,
                    len: self.ly.pages_bytes(npages),
                    bits: self.ly.address_bits,
                })?;
        self.ly.lin_checked(base, len)
    }

    /// Validates a free: [`PageAlloc::check_pages`], then every page in a
    /// grown chunk and in use. Returns the linearized base.
    pub(crate) fn check_in_use(&self, base: u64, npages: u64) -> Result<u64> {
        let lin = self.check_pages(base, npages)?;
        let (sc, ec) = (
            lin >> LOG_PALLOC_CHUNK_BYTES,
            (lin + npages * PAGE_SIZE - 1) >> LOG_PALLOC_CHUNK_BYTES,
        );
        if !self.grown.covers(sc..ec + 1) {
            return Err(Error::OutOfHeap { addr: base, npages });
        }
        for (ci, i, n) in chunk_pieces(lin, npages) {
            if let Some(p) = self.chunk(ci).first_free_in(i, n) {
                return Err(Error::NotInUse {
                    addr: base,
                    npages,
                    page: self.ly.page_base(ci, p),
                });
            }
        }
        Ok(lin)
    }

    fn search_addr_on_heap(&self) -> bool {
        self.search_addr == self.ly.max_search_lin
            || self.grown.covers({
                let c = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
                c..c + 1
            })
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
    pub(crate) fn known_chunk(&self, ci: u64) -> Result<Option<&PallocData>> {
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
            + self.scav_index.mapped_bytes()
            + self
                .sum_mem
                .iter()
                .map(Reservation::committed_bytes)
                .sum::<usize>()
    }

    /// Bytes of address space reserved for metadata.
    pub fn reserved_bytes(&self) -> usize {
        self.chunks.len()
            + self.scav_index.reserved_bytes()
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

    /// Go's test `checkPageAlloc`'s missing half ("TODO: Verify summaries
    /// too?"): recomputes every summary covering the heap from the bitmaps and
    /// checks the other invariants, reporting the first violation.
    ///
    /// Cost: O(grown chunks) bitmap summaries plus one block merge per
    /// committed parent summary; meant for tests and debugging.
    pub fn verify(&self) -> Result<()> {
        if self.grown.ranges().is_empty() {
            return self.check_empty();
        }
        self.check_bounds()?;
        self.check_leaves()?;
        self.check_scavenged()?;
        self.check_parents()?;
        self.check_search_addr()?;
        self.check_aligned_hints()
    }

    /// No free page lies below an aligned hint at the hint's alignment.
    fn check_aligned_hints(&self) -> Result<()> {
        let off = self.ly.arena_base_offset >> self.ly.page_shift;
        for ci in self.grown_chunks() {
            let base = ci * PALLOC_CHUNK_PAGES;
            let bits = self.chunk(ci);
            for (c, &k) in HINT_LOG_ALIGN.iter().enumerate() {
                let hint = self.aligned_hint[c];
                if base >= hint {
                    continue;
                }
                let step = 1u64 << k;
                let mut p = base + (off.wrapping_sub(base) & (step - 1));
                while p < (base + PALLOC_CHUNK_PAGES).min(hint) {
                    if !bits.get(p - base) {
                        return verify_failed(format!(
                            "page {:#x} is free at a 2^{k}-page alignment below that hint ({:#x})",
                            self.ly.unlin(p << PAGE_SHIFT),
                            self.ly.unlin(hint << PAGE_SHIFT)
                        ));
                    }
                    p += step;
                }
            }
        }
        Ok(())
    }

    /// Nothing grown: no bounds, and the search address says "exhausted".
    fn check_empty(&self) -> Result<()> {
        if (self.start, self.end) != (0, 0) || self.search_addr != self.ly.max_search_lin {
            return verify_failed(format!("no chunk grown but bounds are {:?}", self.bounds()));
        }
        Ok(())
    }

    /// `[start, end)` is the hull of the grown ranges, which are sorted,
    /// disjoint and not adjacent.
    fn check_bounds(&self) -> Result<()> {
        let g = self.grown.ranges();
        let (first, last) = (&g[0], &g[g.len() - 1]);
        if (first.start, last.end) != (self.start, self.end) {
            return verify_failed(format!(
                "bounds [{:#x}, {:#x}) disagree with grown ranges {:?}",
                self.start, self.end, g
            ));
        }
        for w in g.windows(2) {
            if w[0].end >= w[1].start {
                return verify_failed(format!("grown ranges {w:?} overlap or touch"));
            }
        }
        Ok(())
    }

    /// Every leaf in the committed blocks around each grown range: a grown
    /// chunk's leaf summarizes its bitmap; an ungrown one is "full" over an
    /// empty bitmap.
    fn check_leaves(&self) -> Result<()> {
        let (leaf, sf) = (self.ly.leaf(), self.sum_fmt);
        for r in self.grown.ranges() {
            let (lo, hi) = self.ly.block_align_summary_range(leaf, r.start, r.end);
            for c in lo..hi {
                let got = self.sum(leaf, c);
                if self.is_grown(c) {
                    let want = self.chunk(c).summarize(sf);
                    if got != want {
                        return verify_failed(format!(
                            "summary[{leaf}][{c:#x}] = {:?}, bitmap says {:?}",
                            sf.unpack(got),
                            sf.unpack(want)
                        ));
                    }
                } else if got != PallocSum::FULL {
                    return verify_failed(format!(
                        "summary[{leaf}][{c:#x}] of an ungrown chunk is {:?}, want (0, 0, 0)",
                        sf.unpack(got)
                    ));
                } else if self.chunk_committed(c) && *self.data(c) != PallocData::default() {
                    return verify_failed(format!("bitmaps of ungrown chunk {c:#x} are not empty"));
                }
            }
        }
        Ok(())
    }

    /// No page is both in use and scavenged.
    fn check_scavenged(&self) -> Result<()> {
        for c in self.grown_chunks() {
            let d = self.data(c);
            if let Some((w, (b, s))) = (d.bits.0.iter().zip(&d.scavenged.0))
                .enumerate()
                .find(|(_, (b, s))| *b & *s != 0)
            {
                let p = w as u64 * 64 + (b & s).trailing_zeros() as u64;
                return verify_failed(format!(
                    "page {:#x} is both in use and scavenged",
                    self.ly.page_base(c, p)
                ));
            }
        }
        Ok(())
    }

    /// Every parent covering a grown range is the merge of its children.
    fn check_parents(&self) -> Result<()> {
        let (ly, sf) = (&self.ly, self.sum_fmt);
        // Paths waiting for the walk up are checked as they will be.
        let exact = self.exact_view();
        for l in (0..ly.leaf()).rev() {
            for r in self.grown.ranges() {
                let (lo, hi) = ly.addrs_to_summary_range(
                    l,
                    r.start << LOG_PALLOC_CHUNK_BYTES,
                    r.end << LOG_PALLOC_CHUNK_BYTES,
                );
                for i in lo..hi {
                    let want = sf.merge_block(&exact.children(l, i), ly.level_log_pages[l + 1]);
                    let got = exact.get(l, i);
                    if got != want {
                        return verify_failed(format!(
                            "summary[{l}][{i:#x}] = {:?}, children merge to {:?}",
                            sf.unpack(got),
                            sf.unpack(want)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The search address lies on the heap and no grown page below it is free.
    fn check_search_addr(&self) -> Result<()> {
        if !self.search_addr_on_heap() {
            return verify_failed(format!(
                "search_addr {:#x} is not in a grown chunk",
                self.search_addr()
            ));
        }
        let exhausted = self.search_addr == self.ly.max_search_lin;
        let sc = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
        for c in self.grown_chunks().take_while(|&c| c <= sc) {
            let below = if c < sc || exhausted {
                PALLOC_CHUNK_PAGES
            } else {
                chunk_page_index(self.search_addr)
            };
            if let Some(p) = (below > 0)
                .then(|| self.chunk(c).first_free_in(0, below))
                .flatten()
            {
                return verify_failed(format!(
                    "page {:#x} is free but below search_addr {:#x}",
                    self.ly.page_base(c, p),
                    self.search_addr()
                ));
            }
        }
        Ok(())
    }
}

fn verify_failed(msg: String) -> Result<()> {
    Err(Error::Verify(msg))
}

/// The alignments (log2, in pages) that keep a search hint: 2 to 512
/// pages; a search at a larger alignment uses the 512-page hint.
pub(crate) const HINT_LOG_ALIGN: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Where `propagate` reads and writes summaries: the allocator's own, or
/// an overlay over them.
trait SumStore {
    fn pa(&self) -> &PageAlloc;
    fn get(&self, l: usize, i: u64) -> PallocSum;
    fn set(&mut self, l: usize, i: u64, v: PallocSum);

    /// The 8 children of entry `i` at level `l` (`l + 1` must exist).
    fn children(&self, l: usize, i: u64) -> [PallocSum; BLOCK] {
        let first = i << SUMMARY_LEVEL_BITS;
        std::array::from_fn(|k| self.get(l + 1, first + k as u64))
    }
}

impl SumStore for PageAlloc {
    fn pa(&self) -> &PageAlloc {
        self
    }
    #[inline]
    fn get(&self, l: usize, i: u64) -> PallocSum {
        self.sum(l, i)
    }
    #[inline]
    fn children(&self, l: usize, i: u64) -> [PallocSum; BLOCK] {
        PageAlloc::children(self, l, i)
    }
    #[inline]
    fn set(&mut self, l: usize, i: u64, v: PallocSum) {
        self.set_sum(l, i, v)
    }
}

/// Summaries brought up to date in a side list, over an allocator that is
/// not written (see `PageAlloc::exact_sum`).
struct Overlay<'a> {
    pa: &'a PageAlloc,
    sums: Vec<((usize, u64), PallocSum)>,
}

impl SumStore for Overlay<'_> {
    fn pa(&self) -> &PageAlloc {
        self.pa
    }
    fn get(&self, l: usize, i: u64) -> PallocSum {
        match self.sums.iter().find(|(k, _)| *k == (l, i)) {
            Some(&(_, v)) => v,
            None => self.pa.sum(l, i),
        }
    }
    fn set(&mut self, l: usize, i: u64, v: PallocSum) {
        match self.sums.iter_mut().find(|(k, _)| *k == (l, i)) {
            Some((_, old)) => *old = v,
            None => self.sums.push(((l, i), v)),
        }
    }
}

/// The walk up of `refresh_summaries` over `store`, from the entries of
/// level `leaf - 1` in `level` (which it uses as scratch, with `next`).
fn propagate<S: SumStore>(store: &mut S, level: &mut Vec<Stale>, next: &mut Vec<Stale>) {
    let (ly, sf) = (store.pa().ly, store.pa().sum_fmt);
    next.clear();
    for l in (0..ly.leaf()).rev() {
        let log_child = ly.level_log_pages[l + 1];
        for e in level.iter() {
            let i = e.idx;
            let parent = store.get(l, i);
            let merge = |store: &S| sf.merge_block(&store.children(l, i), log_child);
            let sum = if e.single {
                // One child changed: often the parent can be told from it.
                let now = store.get(l + 1, e.child);
                if now == e.was {
                    // Changed and changed back (a page allocated and freed).
                    continue;
                }
                match sf
                    .same_ends(e.was, now)
                    .then(|| max_only_parent(sf, parent, e.was, now))
                {
                    Some(MaxOnly::Unchanged) => parent,
                    Some(MaxOnly::Becomes(v)) => v,
                    _ => merge(store),
                }
            } else {
                merge(store)
            };
            debug_assert_eq!(sum, merge(store), "summary[{l}][{i:#x}] shortcut");
            if parent != sum {
                store.set(l, i, sum);
                if l > 0 {
                    note_change(next, i, parent);
                }
            }
        }
        std::mem::swap(level, next);
        next.clear();
        if level.is_empty() {
            break;
        }
    }
}

/// What a parent summary becomes when one child changed from `was` to `now`,
/// if that can be told without reading the other children.
enum MaxOnly {
    /// The parent stays as it is.
    Unchanged,
    /// The parent becomes this.
    Becomes(PallocSum),
    /// Nothing can be told: merge the block.
    Merge,
}

/// The one-child shortcut of `propagate`: when a block's only changed
/// child kept its `start` and `end`, so did every run that crosses into it
/// and the parent's `start` and `end` (they read only children's ends and
/// whether a child is wholly free, and a child with an unchanged
/// `start < len` was and stays partly used; with `start == len` nothing
/// changed at all). Only the child's `max` moved, and the parent's `max` is
/// the largest of that and of candidates that did not move:
///
/// - `max` grew: the parent's becomes `max(parent.max, now.max)`;
/// - `max` shrank but was below the parent's: another candidate holds the
///   parent's `max`, which stays;
/// - `max` shrank from the parent's own value: the block must be merged to
///   find the runner-up.
///
/// Most frees and allocations inside a chunk move only its `max` (or
/// nothing), so most of these parents cost one summary read instead of a
/// merge of 8.
#[inline(always)]
fn max_only_parent(sf: SumFormat, parent: PallocSum, was: PallocSum, now: PallocSum) -> MaxOnly {
    debug_assert!(sf.same_ends(was, now));
    let (wm, nm) = (sf.unpack_below_root(was).1, sf.unpack_below_root(now).1);
    let (ps, pm, pe) = sf.unpack(parent);
    debug_assert!(wm <= pm, "child max {wm} above its parent's {pm}");
    if nm >= wm {
        if nm <= pm {
            MaxOnly::Unchanged
        } else {
            MaxOnly::Becomes(sf.pack(ps, nm, pe))
        }
    } else if wm < pm {
        MaxOnly::Unchanged
    } else {
        MaxOnly::Merge
    }
}

/// Splits the pages `[base, base + npages*PAGE_SIZE)` (linearized, at least
/// one page) into one piece per chunk, ascending: `(chunk index, first page in
/// the chunk, page count)`. Every piece but the first starts at page 0 and
/// every piece but the last runs to page 511.
#[inline]
fn chunk_pieces(base: u64, npages: u64) -> impl Iterator<Item = (u64, u64, u64)> {
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
