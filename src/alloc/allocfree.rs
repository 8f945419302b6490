//! Taking and returning pages: Go's `alloc`, `allocRange` and `free`, with
//! the checks that keep a bad call from changing anything.

use super::*;

impl PageAlloc {
    // ----- allocation -------------------------------------------------------

    /// Go's `allocRange`: marks `[base, base + npages*PAGE_SIZE)` (linearized)
    /// in use and unscavenged, updates the summaries, and returns how many
    /// of those pages were scavenged.
    ///
    /// Cost: one bitmap write per chunk touched, then Go's `update`.
    pub(crate) fn alloc_range(&mut self, base: u64, npages: u64) -> u64 {
        self.alloc_range_noting(base, npages, None)
    }

    /// [`PageAlloc::alloc_range`] of pages the caller knows are all free
    /// (an aligned or windowed fit, `alloc_at`): inside one chunk the leaf is
    /// derived from the old one, as a first fit's is (with nothing known of
    /// the free runs below the pages), instead of Go's `update` rescanning
    /// the chunk. Returns how many of the pages were scavenged.
    pub(super) fn take_free_range(&mut self, lin: u64, npages: u64) -> u64 {
        let (ci, j) = (lin >> LOG_PALLOC_CHUNK_BYTES, chunk_page_index(lin));
        if j + npages <= PALLOC_CHUNK_PAGES {
            let old = self.sum(self.ly.leaf(), ci);
            self.take_in_chunk(ci, j, npages, old, PALLOC_CHUNK_PAGES, None)
        } else {
            self.alloc_range(lin, npages)
        }
    }

    /// [`PageAlloc::alloc_range`], also appending to `dirty` (when given) the
    /// runs of pages that were not scavenged, as linearized `(base, npages)`
    /// pairs, ascending and merged across chunks.
    pub(super) fn alloc_range_noting(
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
                note_dirty(d, ci, &data.scavenged, i, n);
            }
            if n == PALLOC_CHUNK_PAGES {
                data.alloc_all();
            } else {
                data.alloc_range(i, n);
            }
            self.scav.on_alloc(ci, n);
        }
        self.update(base, npages, true, true);
        scav
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

    #[inline(always)]
    pub(super) fn alloc_noting(
        &mut self,
        npages: u64,
        dirty: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<(Option<u64>, u64)> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        let sa = self.search_addr;
        let ci = sa >> LOG_PALLOC_CHUNK_BYTES;
        // A search address above every known chunk means no free memory.
        if ci >= self.end {
            return Ok((None, 0));
        }
        let pi = chunk_page_index(sa);
        let old = self.sum(self.ly.leaf(), ci);
        if npages == 1 && dirty.is_none() {
            // One page: the chunk's first free page at or above the search
            // address, if it has one, is the heap's lowest free page.
            if old != PallocSum::FULL {
                let (lin, scav) = self.take_first_free(ci, pi, old)?;
                return Ok((Some(self.ly.unlin(lin)), scav << self.ly.page_shift));
            }
        } else if npages <= PALLOC_CHUNK_PAGES - pi
            && self.sum_fmt.unpack_below_root(old).1 >= npages
        {
            // Fast path: npages fits in the rest of the search address's
            // chunk and the chunk's max says it does: search that bitmap alone.
            let (j, first) = self.chunk(ci).find(npages, pi);
            let Some(j) = j else {
                return Err(self.broken_promise(ci, npages, pi));
            };
            // First fit from pi (every page below it is in use): the free
            // runs below j are shorter than npages, and there are none when
            // j is the first free page met.
            let below = if j == first { 0 } else { npages - 1 };
            let scav = self.take_in_chunk(ci, j, npages, old, below, dirty);
            let cb = ci << LOG_PALLOC_CHUNK_BYTES;
            // Everything below the first free page met is in use.
            self.search_addr = cb + first * PAGE_SIZE;
            debug_assert!(self.search_addr >= sa);
            return Ok((
                Some(self.ly.unlin(cb + j * PAGE_SIZE)),
                scav << self.ly.page_shift,
            ));
        }
        self.alloc_slow(npages, dirty)
    }

    /// `alloc(1)` in the search address's chunk `ci` (leaf `old`, not full;
    /// search address at page `pi`): takes its first free page at or above
    /// the search address, which becomes the new search address. Returns
    /// its linearized address and how many pages were scavenged (1 or 0).
    ///
    /// Why the first free page: every page below the search address is in
    /// use, so it is the lowest free page of the heap, and every page below
    /// it is now in use (`below` 0 for the leaf).
    #[inline(always)]
    fn take_first_free(&mut self, ci: u64, pi: u64, old: PallocSum) -> Result<(u64, u64)> {
        let Some(j) = self.chunk(ci).find(1, pi).0 else {
            return Err(self.broken_promise(ci, 1, pi));
        };
        let scav = self.take_in_chunk(ci, j, 1, old, 0, None);
        let lin = (ci << LOG_PALLOC_CHUNK_BYTES) + j * PAGE_SIZE;
        self.search_addr = lin;
        Ok((lin, scav))
    }

    /// Takes pages `[j, j+n)` of chunk `ci`, all free, in one first-fit
    /// allocation (`below` as in [`leaf::after_alloc`]), given the chunk's
    /// leaf `old`; returns how many of them were scavenged.
    /// With `dirty`, also appends the pages that were not scavenged (see
    /// [`PageAlloc::alloc_range_noting`]).
    #[inline(always)]
    fn take_in_chunk(
        &mut self,
        ci: u64,
        j: u64,
        n: u64,
        old: PallocSum,
        below: u64,
        dirty: Option<&mut Vec<(u64, u64)>>,
    ) -> u64 {
        if let Some(d) = dirty {
            note_dirty(d, ci, &self.data(ci).scavenged, j, n);
        }
        let scav = self.data_mut(ci).take(j, n);
        self.scav.on_alloc(ci, n);
        self.update_chunk_alloc(ci, j, n, old, below);
        scav
    }

    #[cold]
    fn broken_promise(&self, ci: u64, npages: u64, pi: u64) -> Error {
        Error::Corrupt(format!(
            "chunk {ci:#x} max promised {npages} pages from page {pi}"
        ))
    }

    /// `alloc` when the search address's chunk does not hold the request:
    /// the leaves just above it first (they are always exact, so this needs
    /// no walk up), then Go's radix walk.
    #[inline(never)]
    fn alloc_slow(
        &mut self,
        npages: u64,
        dirty: Option<&mut Vec<(u64, u64)>>,
    ) -> Result<(Option<u64>, u64)> {
        let k = fit_class(npages);
        let near = if k >= MIN_HINTED_CLASS {
            let (near, raise) = self.find_near::<true>(npages, k);
            self.raise_fit_hints(k, raise);
            near
        } else {
            self.find_near::<false>(npages, 0).0
        };
        let found = match near {
            Some(hit) => Some(hit),
            None => {
                // The walk reads summaries above the leaves.
                self.refresh_summaries();
                self.find(npages)?
            }
        };
        let Some((addr, candidate)) = found else {
            // Not even one page: the heap is exhausted. (A larger request
            // may fail only for want of contiguity.)
            if npages == 1 {
                self.search_addr = self.ly.max_search_lin;
            }
            return Ok((None, 0));
        };
        let (ci, j) = (addr >> LOG_PALLOC_CHUNK_BYTES, chunk_page_index(addr));
        let scav = if j + npages <= PALLOC_CHUNK_PAGES {
            // One chunk, first fit: the free runs below j are shorter.
            let old = self.sum(self.ly.leaf(), ci);
            self.take_in_chunk(ci, j, npages, old, npages - 1, dirty)
        } else {
            self.alloc_range_noting(addr, npages, dirty)
        };
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
    /// Cost: inside one chunk (the common case), one pass over the bitmap
    /// words of the range that checks and clears them, and the leaf derived
    /// from the old one and the free run around the range (a word or two
    /// read); the walk up is deferred. Across chunks: one bitmap range per
    /// chunk, then Go's `update` (O(npages / 512) bitmaps plus O(levels)
    /// merges).
    pub fn free(&mut self, base: u64, npages: u64) -> Result<()> {
        let lin = self.check_pages(base, npages)?;
        let (ci, i) = (lin >> LOG_PALLOC_CHUNK_BYTES, chunk_page_index(lin));
        if i + npages <= PALLOC_CHUNK_PAGES && self.grown.end_of(ci).is_some() {
            if let Err(p) = self.chunk_mut(ci).free_checked(i, npages) {
                return Err(self.not_in_use(base, npages, ci, p));
            }
            self.note_freed_in_chunk(lin, ci, i, npages);
            self.update_chunk_free(ci, i, npages);
            return Ok(());
        }
        let lin = self.check_in_use(base, npages)?;
        self.free_pages(lin, npages, false);
        Ok(())
    }

    /// The error of a free whose page `p` of chunk `ci` is free.
    #[cold]
    #[inline(never)]
    fn not_in_use(&self, base: u64, npages: u64, ci: u64, p: u64) -> Error {
        Error::NotInUse {
            addr: base,
            npages,
            page: self.ly.page_base(ci, p),
        }
    }

    /// What every free does besides clearing bits: the search address and
    /// the aligned hints come down to the freed pages.
    #[inline(always)]
    fn lower_bounds(&mut self, lin: u64, npages: u64) {
        if lin < self.search_addr {
            self.search_addr = lin;
        }
        self.lower_aligned_hints(lin >> PAGE_SHIFT, npages);
    }

    /// No run of `2^k` free pages (nor, so, of more) starts below chunk
    /// `at`: the hints of class `k` and above rise to it, if lower. (The
    /// hints grow with the class: the first one at or above `at` ends it.)
    #[inline]
    fn raise_fit_hints(&mut self, k: usize, at: u64) {
        for h in &mut self.fit_hint[k..] {
            if *h >= at {
                break;
            }
            *h = at;
        }
    }

    /// A change made a run of at most `len` free pages (`u64::MAX`: of any
    /// length) that starts in chunk `from` or above: the hints of the
    /// classes it may serve come down to `from`. Usually one comparison:
    /// the hints grow with the class, so when the highest is at or below
    /// `from`, all are.
    #[inline(always)]
    pub(super) fn lower_fit_hints(&mut self, from: u64, len: u64) {
        if from < self.fit_hint[FIT_CLASSES - 1] {
            self.lower_some_fit_hints(from, fit_class(len));
        }
    }

    /// Lowers the hints of classes `1..=k` to `from`, if higher: from class
    /// `k` down, until one is at or below it.
    #[inline]
    pub(super) fn lower_some_fit_hints(&mut self, from: u64, k: usize) {
        for h in self.fit_hint[1..=k].iter_mut().rev() {
            if *h <= from {
                break;
            }
            *h = from;
        }
    }

    /// What every free but the scavenger's own tells the scavenge index:
    /// Go 1.19's marks the chunks, Go 1.26's counts the pages free per
    /// chunk (`index.free`).
    #[inline]
    fn index_freed(&mut self, lin: u64, npages: u64) {
        self.scav.on_free(lin, npages);
    }

    /// [`PageAlloc::lower_bounds`] and [`PageAlloc::index_freed`] for pages
    /// `[i, i + npages)` of one chunk `ci` (at linearized `lin`): the Go
    /// 1.26 index is told without splitting the range into chunks.
    #[inline(always)]
    fn note_freed_in_chunk(&mut self, lin: u64, ci: u64, i: u64, npages: u64) {
        self.lower_bounds(lin, npages);
        self.scav.on_free_in_chunk(lin, ci, i, npages);
    }

    /// Go's `free` on checked, linearized pages. Pages freed as not
    /// `scavenged` (every free but the scavenger's own) are told to the
    /// scavenge index; the scavenged bits are left as they are.
    pub(super) fn free_pages(&mut self, lin: u64, npages: u64, scavenged: bool) {
        self.lower_bounds(lin, npages);
        if !scavenged {
            self.index_freed(lin, npages);
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
    #[inline(always)]
    pub(super) fn lower_aligned_hints(&mut self, p: u64, n: u64) {
        // Every hint is at most the last: nothing to lower from p on (the
        // common case, and always so until an aligned allocation raises one).
        if p < self.aligned_hint[HINT_LOG_ALIGN.len() - 1] {
            self.lower_some_aligned_hints(p, n);
        }
    }

    #[cold]
    #[inline(never)]
    fn lower_some_aligned_hints(&mut self, p: u64, n: u64) {
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
    ///
    /// Cost: a few comparisons; the error, when there is one, is built off
    /// the path.
    #[inline(always)]
    pub(crate) fn check_pages(&self, base: u64, npages: u64) -> Result<u64> {
        let ly = &self.ly;
        let page = ly.page_size();
        match npages.checked_mul(page) {
            Some(len) if npages != 0 && base & (page - 1) == 0 && ly.in_space(base, len) => {
                Ok(ly.lin(base))
            }
            _ => Err(self.bad_pages(base, npages)),
        }
    }

    /// Why [`PageAlloc::check_pages`] refused `base`, `npages`.
    #[cold]
    #[inline(never)]
    fn bad_pages(&self, base: u64, npages: u64) -> Error {
        let page = self.ly.page_size();
        if npages == 0 {
            return Error::ZeroPages;
        }
        if base & (page - 1) != 0 {
            return Error::Misaligned {
                addr: base,
                page_size: page,
            };
        }
        // Past the address space (`lin_checked`'s refusal), or too long to
        // count in bytes.
        Error::BeyondAddressSpace {
            addr: base,
            len: self.ly.pages_bytes(npages),
            bits: self.ly.address_bits,
        }
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

    pub(super) fn search_addr_on_heap(&self) -> bool {
        self.search_addr == self.ly.max_search_lin
            || self.grown.covers({
                let c = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
                c..c + 1
            })
    }
}

/// The smallest size class whose searches start at its fit hint (and keep
/// it up): smaller requests are usually met near the search address, where
/// tracking the class would cost more than it saves.
const MIN_HINTED_CLASS: usize = 2;

/// The size class of a request (or a run) of `n` pages for the fit hints:
/// `k` with `2^k <= n`, at most [`FIT_CLASSES`] - 1; 0 for one page (no
/// hint).
#[inline(always)]
pub(super) fn fit_class(n: u64) -> usize {
    if n < 2 {
        0
    } else {
        (63 - n.leading_zeros() as usize).min(FIT_CLASSES - 1)
    }
}

/// Appends to `dirty` the runs of pages `[i, i+n)` of chunk `ci` that are
/// not scavenged (`scavenged` is the chunk's bitmap), as linearized
/// `(base, npages)` pairs, merging a run with the last one when they touch.
fn note_dirty(dirty: &mut Vec<(u64, u64)>, ci: u64, scavenged: &PallocBits, i: u64, n: u64) {
    let cb = ci << LOG_PALLOC_CHUNK_BYTES;
    scavenged.for_each_run(i, n, false, |j, m| {
        let lin = cb + j * PAGE_SIZE;
        match dirty.last_mut() {
            Some((s, len)) if *s + *len * PAGE_SIZE == lin => *len += m,
            _ => dirty.push((lin, m)),
        }
    });
}
