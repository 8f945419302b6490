//! Growing the heap: Go's `grow` and `sysGrow`.

use super::*;

impl PageAlloc {
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
    /// committed already and the index is static (Go 1.26's still learns
    /// its lowest chunk).
    pub(super) fn sys_grow(&mut self, base: u64, limit: u64) -> Result<()> {
        debug_assert!(base % PALLOC_CHUNK_BYTES == 0 && limit % PALLOC_CHUNK_BYTES == 0);
        if !self.ly.commits_on_grow() {
            return self.scav.grow(&self.ly, base, limit, self.phys_page);
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
        self.scav.grow(&self.ly, base, limit, self.phys_page)
    }
}
