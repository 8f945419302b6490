//! Finding the lowest fit: Go's `find` (the radix walk), where it can be
//! joined below the root, and `findMappedAddr`.

use super::*;

impl PageAlloc {
    /// Go's later `findMappedAddr`: the lowest grown linearized address at or
    /// above `lin`, or `max_search_lin` if there is none. A candidate search
    /// address from the radix walk may lie below or between grown regions
    /// (the base of a large summary region), where no metadata need be
    /// committed (golang/go#40191); this moves it onto the heap.
    pub(super) fn find_mapped_addr(&self, lin: u64) -> u64 {
        let ci = lin >> LOG_PALLOC_CHUNK_BYTES;
        match self.grown.find_addr_greater_equal(ci) {
            Some(c) if c == ci => lin,
            Some(c) => c << LOG_PALLOC_CHUNK_BYTES,
            None => self.ly.max_search_lin,
        }
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
    pub(super) fn walk_start(&self, npages: u64) -> Option<(usize, u64)> {
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
    pub(super) fn walk(
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

    /// The lowest fit for `npages`, looked for in the leaves of at most
    /// [`NEAR_CHUNKS`] chunks, inside the search address's grown range, from
    /// the search address's chunk up or, when it lies higher, from the fit
    /// hint of `npages`'s size class `k` (see `fit_hint`; `k` is 0 for one
    /// page, which has no hint). Returns the linearized address and the
    /// first free page at or above the search address as the new search
    /// address, or `None` when none of these leaves holds it (the caller
    /// then walks the tree); and, for the class, the chunk its hint may be
    /// raised to: the first chunk read where a run of `2^k` pages starts, or,
    /// when there is none, the end of what was read.
    ///
    /// Why this gives Go's address: every page below the search address is
    /// in use, and no run of `2^k` free pages (so none of `npages`) starts
    /// below the class's hint, so the lowest fit lies at or above both; these
    /// leaves are read in address order with the runs that cross between
    /// neighbours (a leaf's `end` joined to the next one's `start`), exactly
    /// the runs Go's walk sees at the leaf level. Leaves are always exact, so
    /// unlike the walk this needs no stale parent brought up to date.
    ///
    /// Cost: one leaf read per chunk passed over, then one bitmap search.
    pub(super) fn find_near<const HINTED: bool>(
        &self,
        npages: u64,
        k: usize,
    ) -> (Option<(u64, u64)>, u64) {
        let (leaf, sf) = (self.ly.leaf(), self.sum_fmt);
        let sa = self.search_addr;
        let ci = sa >> LOG_PALLOC_CHUNK_BYTES;
        let Some(range_end) = self.grown.end_of(ci) else {
            return (None, 0);
        };
        // The first chunk with a free page (the new search address's): the
        // full chunks before it are passed over one comparison each.
        let mut c = ci;
        let mut limit = range_end.min(ci + NEAR_CHUNKS);
        let mut sum = self.sum(leaf, c);
        while sum == PallocSum::FULL {
            c += 1;
            if c == limit {
                return (None, limit);
            }
            sum = self.sum(leaf, c);
        }
        let first_free = c;
        // Nothing of this class starts below its hint: start there.
        let hint = self.fit_hint[k];
        if HINTED && hint > c {
            if hint >= range_end {
                return (None, hint);
            }
            c = hint;
            limit = range_end.min(c + NEAR_CHUNKS);
            sum = self.sum(leaf, c);
        }
        let class = 1u64 << k;
        // Where the first run of `class` pages starts (NONE: not met yet).
        const NONE: u64 = u64::MAX;
        let mut class_at = NONE;
        // The free run reaching the top of the previous chunk, and the
        // chunk it starts in.
        let (mut run, mut run_from) = (0u64, c);
        loop {
            if sum == PallocSum::FULL {
                run = 0;
            } else {
                let (s, m, e) = sf.unpack_below_root(sum);
                if HINTED && class_at == NONE {
                    if run + s >= class {
                        class_at = if run > 0 { run_from } else { c };
                    } else if m >= class {
                        class_at = c;
                    }
                }
                let cb = c << LOG_PALLOC_CHUNK_BYTES;
                if run + s >= npages {
                    // A run from below this chunk (or its own start) suffices.
                    let addr = cb - run * PAGE_SIZE;
                    return (Some((addr, self.first_free_page(first_free))), class_at);
                }
                if m >= npages {
                    // In the search address's own chunk the request may be too
                    // long for the pages above the search address (those below
                    // are in use); then only a run into the next chunk can fit.
                    if let (Some(j), met) = self.chunk(c).find(npages, self.search_from(c)) {
                        let cand = if c == first_free {
                            cb + met * PAGE_SIZE
                        } else {
                            self.first_free_page(first_free)
                        };
                        return (Some((cb + j * PAGE_SIZE, cand)), class_at);
                    }
                    debug_assert!(c == ci, "chunk {c:#x}'s max promised {npages} pages");
                }
                if s != PALLOC_CHUNK_PAGES {
                    (run, run_from) = (e, c);
                } else if run == 0 {
                    (run, run_from) = (s, c);
                } else {
                    run += s;
                }
            }
            c += 1;
            if c == limit {
                // No run of `class` pages starts below the one still open.
                // (Unhinted, nobody asks: `run_from` is then never read.)
                let next = if !HINTED {
                    0
                } else if class_at != NONE {
                    class_at
                } else if run > 0 {
                    run_from
                } else {
                    limit
                };
                return (None, next);
            }
            sum = self.sum(leaf, c);
        }
    }

    /// The page of chunk `c` a search starts at: the search address's own
    /// page in its chunk (every page below it is in use), else page 0.
    fn search_from(&self, c: u64) -> u64 {
        if c == self.search_addr >> LOG_PALLOC_CHUNK_BYTES {
            chunk_page_index(self.search_addr)
        } else {
            0
        }
    }

    /// The first free page of chunk `c`, which is not full (linearized).
    fn first_free_page(&self, c: u64) -> u64 {
        let (p, _) = self.chunk(c).find(1, self.search_from(c));
        (c << LOG_PALLOC_CHUNK_BYTES) + p.unwrap_or(0) * PAGE_SIZE
    }
}

/// How many chunks' leaves `find_near` reads before leaving the search to
/// the radix walk.
const NEAR_CHUNKS: u64 = 32;
