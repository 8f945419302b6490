//! The scavenger's side of the allocator (Go 1.19's `mgcscavenge.go`): the
//! scavenge index and `scavenge`.
//!
//! Free pages whose memory was returned to the OS are *scavenged*: each chunk
//! carries a second bitmap of them ([`PallocData`](crate::bits::PallocData)).
//! Every free marks the chunks it touches in the scavenge index, one bit per
//! chunk, as "may hold free, unscavenged pages". `scavenge(n)` then releases
//! at least `n` bytes (when there are that many) from the highest marked
//! chunks down: in each it takes the highest run of free, unscavenged pages
//! (never splitting a free huge page), marks it in use while "the OS"
//! releases it, then frees it again as scavenged. A marked chunk with nothing
//! left to release is unmarked.
//!
//! The index's bitmap (one byte per 8 chunks) lives in address space reserved
//! up front, like the summaries, and is committed as Go 1.19's
//! `scavengeIndex.grow` commits it: one contiguous range of whole physical
//! pages from byte 0 up to the highest grown chunk's byte (on 386 it is
//! committed at once and, as Go's static array, not counted as mapped).

use crate::arch::{
    Layout, LOG_PALLOC_CHUNK_BYTES, PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES,
};
use crate::error::Result;
use crate::vm::Reservation;

/// Go 1.19's `scavengeIndex`.
pub(crate) struct ScavengeIndex {
    /// Bit `ci % 8` of byte `ci / 8`: chunk `ci` may hold free, unscavenged
    /// pages. Only the committed range `[0, max)` is ever read or written.
    chunks: IndexMem,
    /// Go's `searchAddr` (linearized): no marked chunk lies in a byte above
    /// this address's chunk's byte; 0 means "nothing marked". `marked` says
    /// a `mark` raised it since the last `find` moved it.
    search_addr: u64,
    marked: bool,
    /// Go's `minHeapIdx`: the lowest byte `find` looks at (the byte of the
    /// lowest chunk ever grown; `None` before the first growth, and always
    /// on 386, where the index is not grown and `find` looks down to 0).
    /// Go 1.19 keeps 0 for "unset", so a heap whose lowest chunk lies in
    /// byte 0 (chunks 1 to 7, possible on arm64 and 386, never in Go's own
    /// heaps) would forget it at the next growth and never scavenge it;
    /// `Option` keeps it.
    min_heap_idx: Option<u64>,
    /// Go's `min` and `max`: the committed byte range of `chunks`.
    min: usize,
    max: usize,
}

/// The memory of a scavenge index (either version's): reserved for the
/// whole address space; on 32-bit presets committed at once and, as Go's
/// static array there, not counted as mapped metadata.
pub(crate) struct IndexMem {
    mem: Reservation,
    /// Whether it counts as mapped metadata (64-bit presets).
    pub(crate) counted: bool,
}

impl IndexMem {
    pub(crate) fn new(ly: &Layout, bytes: usize) -> Result<IndexMem> {
        let mut mem = Reservation::reserve(bytes, "scavenge index")?;
        let counted = ly.arch.is_64bit();
        if !counted {
            mem.commit_all()?;
        }
        Ok(IndexMem { mem, counted })
    }

    /// Bytes committed and counted as metadata.
    pub(crate) fn mapped_bytes(&self) -> usize {
        if self.counted {
            self.mem.committed_bytes()
        } else {
            0
        }
    }
}

impl std::ops::Deref for IndexMem {
    type Target = Reservation;
    fn deref(&self) -> &Reservation {
        &self.mem
    }
}

impl std::ops::DerefMut for IndexMem {
    fn deref_mut(&mut self) -> &mut Reservation {
        &mut self.mem
    }
}

impl ScavengeIndex {
    /// Reserves the index for the whole address space of `ly`; on 32-bit
    /// presets it is committed at once.
    pub(crate) fn new(ly: &Layout) -> Result<ScavengeIndex> {
        let chunks = IndexMem::new(ly, (ly.max_chunks as usize).div_ceil(8))?;
        Ok(ScavengeIndex {
            max: if chunks.counted { 0 } else { chunks.len() },
            chunks,
            search_addr: 0,
            marked: false,
            min_heap_idx: None,
            min: 0,
        })
    }

    /// Bytes of the index committed and counted as metadata.
    pub(crate) fn mapped_bytes(&self) -> usize {
        self.chunks.mapped_bytes()
    }

    /// Bytes of address space reserved for the index.
    pub(crate) fn reserved_bytes(&self) -> usize {
        self.chunks.len()
    }

    #[inline]
    fn byte(&self, i: u64) -> u8 {
        debug_assert!(self.chunks.is_committed(i as usize, 1), "index byte {i:#x}");
        // SAFETY: byte i lies in the committed range (every chunk the heap
        // has grown has its byte committed, see `grow`), and no reference to
        // the reservation's memory exists.
        unsafe { self.chunks.base().add(i as usize).read() }
    }

    #[inline]
    fn set_byte(&mut self, i: u64, v: u8) {
        debug_assert!(self.chunks.is_committed(i as usize, 1), "index byte {i:#x}");
        // SAFETY: as in `byte`; `&mut self` makes this the only access.
        unsafe { self.chunks.base().add(i as usize).write(v) }
    }

    /// Go 1.19's `scavengeIndex.grow` for the chunk-aligned linearized range
    /// `[base, limit)`: commits the index bytes the new chunks need, keeping
    /// the committed range one contiguous run that starts at byte 0 (Go
    /// extends `[min, max)` toward the new chunks and starts it at 0 on the
    /// first growth). Returns the bytes newly committed.
    /// `phys_page` is the allocator's physical page size in bytes: Go maps
    /// the index in whole physical pages.
    pub(crate) fn grow(&mut self, base: u64, limit: u64, phys_page: u64) -> Result<usize> {
        debug_assert!(base % PALLOC_CHUNK_BYTES == 0 && limit % PALLOC_CHUNK_BYTES == 0);
        let page = phys_page as usize;
        let (bci, lci) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            limit >> LOG_PALLOC_CHUNK_BYTES,
        );
        let (have_min, have_max) = (self.min, self.max);
        let mut need_min = (bci as usize / 8) / page * page;
        let mut need_max = (lci as usize).div_ceil(8).next_multiple_of(page);
        // Keep the committed bytes contiguous with what is there.
        need_max = need_max.max(have_min);
        if need_min > have_max {
            need_min = have_max;
        }
        // What is needed and not yet committed (Go's addrRange.subtract).
        let (mut lo, mut hi) = (need_min, need_max);
        if have_min <= lo && hi <= have_max {
            hi = lo;
        } else if have_max < hi && lo < have_max && have_min <= lo {
            lo = have_max;
        } else if lo < have_min && have_min < hi {
            hi = have_min;
        }
        let mut newly = 0;
        if hi > lo {
            // After the first growth Go records `min` as the lowest byte a
            // growth asked for, though everything from byte 0 is mapped; a
            // later growth below that `min` asks Go to map bytes that are
            // mapped already, and Go 1.19 maps them again, zeroing their
            // marks (golang/go#63385). Committing only what is new is the
            // fixed behaviour, so `newly` may be less than `hi - lo` here.
            newly = self.chunks.commit(lo, hi)?;
            debug_assert!(newly <= hi - lo);
            if have_min == 0 || need_min < have_min {
                self.min = need_min;
            }
            if have_max == 0 || need_max > have_max {
                self.max = need_max;
            }
        }
        let base_idx = bci / 8;
        if self.min_heap_idx.is_none_or(|m| base_idx < m) {
            self.min_heap_idx = Some(base_idx);
        }
        Ok(newly)
    }

    /// Go 1.19's `scavengeIndex.find`: the highest marked chunk (looking down
    /// from the search address's byte to `min_heap_idx`) and the page index
    /// to search from, or `None` when no chunk is marked. Moves the search
    /// address down to the chunk found.
    pub(crate) fn find(&mut self) -> Option<(u64, u64)> {
        if self.search_addr == 0 {
            return None;
        }
        let search_chunk = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
        for i in (self.min_heap_idx.unwrap_or(0)..=search_chunk / 8).rev() {
            let bits = self.byte(i);
            if bits == 0 {
                continue;
            }
            let ci = i * 8 + 7 - bits.leading_zeros() as u64;
            if ci == search_chunk {
                let pi = (self.search_addr % PALLOC_CHUNK_BYTES) / PAGE_SIZE;
                return Some((ci, pi));
            }
            // The last page of the chunk found. A marked address moves there
            // and is unmarked; an unmarked one only ever moves down.
            let new = ((ci + 1) << LOG_PALLOC_CHUNK_BYTES) - PAGE_SIZE;
            if self.marked || new < self.search_addr {
                self.search_addr = new;
                self.marked = false;
            }
            return Some((ci, PALLOC_CHUNK_PAGES - 1));
        }
        // Nothing marked. Go's Clear leaves a marked address alone (a
        // concurrent mark may have just set it).
        if !self.marked {
            self.search_addr = 0;
        }
        None
    }

    /// Go 1.19's `scavengeIndex.mark`: marks every chunk that the linearized
    /// range `[base, limit)` touches, and raises the search address to the
    /// range's last page.
    pub(crate) fn mark(&mut self, base: u64, limit: u64) {
        let (start, end) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            (limit - PAGE_SIZE) >> LOG_PALLOC_CHUNK_BYTES,
        );
        // One byte at a time: chunks [ci, hi] share byte ci / 8.
        let mut ci = start;
        while ci <= end {
            let hi = end.min(ci | 7);
            let mask = (((1u16 << (hi - ci + 1)) - 1) as u8) << (ci % 8);
            self.set_byte(ci / 8, self.byte(ci / 8) | mask);
            ci = hi + 1;
        }
        let new = limit - PAGE_SIZE;
        if self.search_addr < new {
            self.search_addr = new;
            self.marked = true;
        }
    }

    /// Go 1.19's `scavengeIndex.clear`: unmarks chunk `ci`.
    pub(crate) fn clear(&mut self, ci: u64) {
        let b = self.byte(ci / 8) & !(1 << (ci % 8));
        self.set_byte(ci / 8, b);
    }

    /// The search address and whether a mark raised it (for snapshots).
    pub(crate) fn search_state(&self) -> (u64, bool) {
        (self.search_addr, self.marked)
    }

    /// Restores what [`ScavengeIndex::search_state`] read, and chunk marks
    /// (for snapshots; the chunks' bytes must be committed).
    pub(crate) fn set_search_state(&mut self, search_addr: u64, marked: bool) {
        self.search_addr = search_addr;
        self.marked = marked;
    }

    /// Restores what [`ScavengeIndex::search_state`] read, and chunk marks
    /// (for snapshots; the chunks' bytes must be committed).
    pub(crate) fn restore(&mut self, search_addr: u64, marked: bool, chunks: &[u64]) {
        self.search_addr = search_addr;
        self.marked = marked;
        for &ci in chunks {
            self.set_byte(ci / 8, self.byte(ci / 8) | 1 << (ci % 8));
        }
    }

    /// Whether chunk `ci` is marked.
    pub(crate) fn is_marked(&self, ci: u64) -> bool {
        self.chunks.is_committed(ci as usize / 8, 1) && self.byte(ci / 8) >> (ci % 8) & 1 == 1
    }
}

/// The smallest physical page size an allocator accepts (Go's
/// `minPhysPageSize`).
pub const MIN_PHYS_PAGE: u64 = 4096;
/// The largest physical page size an allocator accepts (Go's
/// `maxPhysPageSize`, 512 KiB: 64 runtime pages, one bitmap word).
pub const MAX_PHYS_PAGE: u64 = 512 << 10;

/// The scavenger's unit in runtime pages: one physical page, or one runtime
/// page when physical pages are smaller (Go's `minPages`).
pub(crate) fn min_scav_pages(phys_page: u64, page_size: u64) -> u64 {
    (phys_page / page_size).max(1)
}

/// How a scavenge call runs: Go's `scavenge(nbytes, shouldStop, force)`
/// options. [`Scavenge::FORCED`] (the default) is `debug.FreeOSMemory`'s
/// kind and Go's test export `PageAlloc.Scavenge`; [`Scavenge::BACKGROUND`]
/// the background scavenger's (Go 1.26 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scavenge {
    /// Forced (the forced cursor, every chunk) or background (the
    /// background cursor, which skips dense chunks and sees frees only up to
    /// the last `next_gen`). Go 1.19 has only the forced kind.
    pub force: bool,
    /// Stop after this many `scavengeOne` steps, as a `shouldStop` that
    /// says stop then (`None`: never): how a recorded call cut short in the
    /// real program replays exactly. Go checks `shouldStop` only after a
    /// step, so a call always makes at least one.
    pub max_steps: Option<u64>,
}

impl Scavenge {
    /// The forced scavenger, to the end.
    pub const FORCED: Scavenge = Scavenge {
        force: true,
        max_steps: None,
    };
    /// The background scavenger, to the end.
    pub const BACKGROUND: Scavenge = Scavenge {
        force: false,
        max_steps: None,
    };

    /// The same, stopping after `steps` steps.
    pub const fn steps(self, steps: u64) -> Scavenge {
        Scavenge {
            max_steps: Some(steps),
            ..self
        }
    }
}

impl Default for Scavenge {
    fn default() -> Scavenge {
        Scavenge::FORCED
    }
}

impl crate::PageAlloc {
    /// The forced scavenge of `nbytes` on an allocator without real memory
    /// (Go's test export `PageAlloc.Scavenge`): see
    /// [`scavenge_with`](crate::PageAlloc::scavenge_with).
    pub fn scavenge(&mut self, nbytes: u64) -> Result<u64> {
        self.scavenge_with(nbytes, Scavenge::FORCED, |_, _| {})
    }

    /// Go's `pageAlloc.scavenge(nbytes, shouldStop, force)` of the
    /// allocator's Go version, run as `how` says: marks free pages scavenged
    /// until at least `nbytes` bytes were released, the index has nothing
    /// more, or `how.max_steps` steps ran; returns the bytes released (which
    /// may exceed `nbytes` by less than a huge page). One loop for both Gos,
    /// asking the version's index for the next chunk (Go 1.19: its highest
    /// marked chunk, from the top every call; Go 1.26: from its forced or
    /// background cursor, continuing where the last call stopped) and
    /// releasing its highest run. `release(addr, bytes)` is called for each
    /// run while its pages are held in use, as Go calls `sysUnused`: a
    /// caller with real memory returns it to the OS there. The background
    /// kind is refused on Go 1.19.
    ///
    /// Cost: per run released, one index search and one scavenge-candidate
    /// scan of a chunk and two updates (take and give back); per chunk with
    /// nothing left, one scan.
    pub fn scavenge_with(
        &mut self,
        nbytes: u64,
        how: Scavenge,
        mut release: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let (force, steps) = (how.force, how.max_steps);
        if !force && self.go_version() == crate::GoVersion::Go119 {
            return Err(crate::Error::WrongGoVersion {
                what: "the background scavenger (scavenge with force=False)",
                need: crate::GoVersion::Go126,
                have: crate::GoVersion::Go119,
            });
        }
        let mut released = 0;
        let mut taken = 0;
        while released < nbytes {
            let Some((ci, search_idx)) = self.scavenge_find(force)? else {
                break;
            };
            let max = nbytes - released;
            released += match self.scavenge_take(ci, search_idx, max)? {
                Some((addr, npages)) => {
                    release(addr, npages << self.ly.page_shift);
                    self.scavenge_give(addr, npages)?
                }
                None => 0,
            };
            taken += 1;
            if steps.is_some_and(|n| taken >= n) {
                break;
            }
        }
        Ok(released)
    }

    /// The first of a scavenger step's three parts, as Go runs it with more
    /// than one P: the scavenge index's lock-free `find` (forced or
    /// background cursor; Go 1.19 has only the forced one), moving its
    /// cursor. Returns the chunk and the page to search down from, or `None`
    /// when nothing is left. [`scavenge_with`](Self::scavenge_with)
    /// is the three parts run back to back; a recorded trace runs them one
    /// by one where other Ps' operations came between them.
    pub fn scavenge_find(&mut self, force: bool) -> Result<Option<(u64, u64)>> {
        if !force && self.go_version() == crate::GoVersion::Go119 {
            return Err(crate::Error::WrongGoVersion {
                what: "the background scavenger (scavenge with force=False)",
                need: crate::GoVersion::Go126,
                have: crate::GoVersion::Go119,
            });
        }
        // Go 1.19's find also names a page (its cursor's, in the cursor's
        // own chunk), which its scavengeOne then ignores.
        Ok(self.scav.find(force))
    }

    /// Sets a scavenge index cursor to what a recorded run's `find` left
    /// there (`addr` a heap address, or Go's `minOffAddr` for cleared: 0, or
    /// `0xffff800000000000` on amd64; Go 1.19 has one
    /// cursor, used for both kinds): how a replay follows a `find` that
    /// raced with another P.
    pub fn set_scavenge_cursor(&mut self, force: bool, addr: u64, marked: bool) -> Result<()> {
        // Go's cleared cursor is `minOffAddr`, address 0 once linearized.
        let lin = self.ly.lin(addr);
        if lin != 0 && (lin % PAGE_SIZE != 0 || !self.is_grown(lin >> LOG_PALLOC_CHUNK_BYTES)) {
            return Err(crate::Error::BadScavengeStep(format!(
                "cursor {addr:#x} is not a page of the heap"
            )));
        }
        self.scav.set_cursor(force, lin, marked);
        Ok(())
    }

    /// The second part of a scavenger step, Go's `scavengeOne` up to its
    /// `unlock` before `sysUnused`: in chunk `ci`, the highest run of free,
    /// unscavenged pages at or below the word of page `search_idx` (at most
    /// `max` bytes, rounded up to pages, unless a huge page must be taken
    /// whole; Go 1.19 searches from the chunk's last page), taken in use so
    /// that nothing allocates it while it is released. Returns its address
    /// and pages; `None` when the chunk has none (Go 1.19 unmarks it, Go 1.26
    /// sets it empty). The pages are taken at chunk level, as Go does, so
    /// neither index hears of it.
    pub fn scavenge_take(
        &mut self,
        ci: u64,
        search_idx: u64,
        max: u64,
    ) -> Result<Option<(u64, u64)>> {
        if !self.is_grown(ci) || search_idx >= PALLOC_CHUNK_PAGES {
            return Err(crate::Error::BadScavengeStep(format!(
                "chunk {ci:#x} page {search_idx} is not on the heap"
            )));
        }
        let search_idx = if self.go_version() == crate::GoVersion::Go126 {
            search_idx
        } else {
            PALLOC_CHUNK_PAGES - 1
        };
        let max_pages = max.div_ceil(self.ly.page_size());
        let min_pages = self.min_scav_pages();
        let leaf = self.ly.leaf();
        if self.sum_fmt.unpack_below_root(self.sum(leaf, ci)).1 >= min_pages {
            let (base, npages) = self.data(ci).find_scavenge_candidate(
                search_idx,
                min_pages,
                max_pages,
                self.huge_pages,
            );
            if npages != 0 {
                let lin = (ci << LOG_PALLOC_CHUNK_BYTES) + base * PAGE_SIZE;
                if self.data(ci).scavenged.popcnt_range(base, npages) != 0 {
                    return Err(crate::Error::Corrupt(format!(
                        "double scavenge of pages [{:#x}, +{npages})",
                        self.ly.unlin(lin)
                    )));
                }
                // Hold the pages in use while they are released, so nothing
                // allocates them meanwhile.
                self.data_mut(ci).alloc_range(base, npages);
                self.update(lin, npages, true, true);
                return Ok(Some((self.ly.unlin(lin), npages)));
            }
        }
        self.scav.chunk_empty(ci);
        Ok(None)
    }

    /// The third part of a scavenger step, `scavengeOne` after `sysUnused`:
    /// the `npages` pages at `addr` that [`scavenge_take`](Self::scavenge_take)
    /// took become free again, now scavenged. Returns the bytes released.
    pub fn scavenge_give(&mut self, addr: u64, npages: u64) -> Result<u64> {
        let lin = self.ly.lin(addr);
        let (ci, base) = (
            lin >> LOG_PALLOC_CHUNK_BYTES,
            (lin % PALLOC_CHUNK_BYTES) / PAGE_SIZE,
        );
        let whole = addr % self.ly.page_size() == 0
            && npages >= 1
            && base + npages <= PALLOC_CHUNK_PAGES
            && self.is_grown(ci)
            && self.data(ci).bits.popcnt_range(base, npages) == npages
            && self.data(ci).scavenged.popcnt_range(base, npages) == 0;
        if !whole {
            return Err(crate::Error::BadScavengeStep(format!(
                "{npages} pages at {addr:#x} are not a run the scavenger holds"
            )));
        }
        self.free_pages(lin, npages, true);
        self.data_mut(ci).scavenged.alloc_range(base, npages);
        Ok(npages << self.ly.page_shift)
    }

    /// The scavenger's unit in runtime pages (Go's `minPages`).
    pub(crate) fn min_scav_pages(&self) -> u64 {
        min_scav_pages(self.phys_page, self.ly.page_size())
    }

    /// Go's `physPageSize` for this allocator, in bytes: the scavenger
    /// releases only whole, aligned physical pages. By default the host's.
    pub fn phys_page_size(&self) -> u64 {
        self.phys_page
    }

    /// Sets the physical page size (a power of two from 4 KiB to 512 KiB),
    /// as if Go ran on a machine with such pages (linux/arm64 with 16 or
    /// 64 KiB pages, say). Only before the first grow: the scavenge index
    /// is mapped in physical pages. A huge page size below the new physical
    /// page size becomes 0 (none).
    pub fn set_phys_page_size(&mut self, bytes: u64) -> Result<()> {
        if !bytes.is_power_of_two() || !(MIN_PHYS_PAGE..=MAX_PHYS_PAGE).contains(&bytes) {
            return Err(crate::Error::BadPhysPageSize { bytes });
        }
        if self.end != 0 {
            return Err(crate::Error::PhysPageAfterGrow);
        }
        self.phys_page = bytes;
        if self.phys_huge_page_size() < bytes {
            self.huge_pages = 0;
        }
        Ok(())
    }

    /// Huge pages of this many bytes are never split by the scavenger (Go's
    /// `physHugePageSize`; by default the OS's transparent huge page size).
    pub fn phys_huge_page_size(&self) -> u64 {
        self.huge_pages << self.ly.page_shift
    }

    /// Sets the huge page size the scavenger respects (Go's
    /// `physHugePageSize`): 0 for none, else a power of two from the
    /// physical page size to 1 GiB. Go's scavenger never splits a free,
    /// aligned huge page; with 0 it releases runs of any length.
    pub fn set_phys_huge_page_size(&mut self, bytes: u64) -> Result<()> {
        if bytes != 0 && (!bytes.is_power_of_two() || bytes < self.phys_page || bytes > 1 << 30) {
            return Err(crate::Error::BadHugePageSize {
                bytes,
                phys_page: self.phys_page,
            });
        }
        // Go's scavenger heeds huge pages only when they are larger than
        // both a runtime page and a physical page.
        self.huge_pages = if bytes > self.phys_page {
            bytes >> self.ly.page_shift
        } else {
            0
        };
        Ok(())
    }

    /// The scavenged bitmap of chunk `ci` (Go's `PallocData(i).Scavenged()`).
    pub fn chunk_scavenged(&self, ci: u64) -> Result<crate::PallocBits> {
        Ok(self
            .known_chunk(ci)?
            .map_or(crate::PallocBits::EMPTY, |d| d.scavenged))
    }

    /// Whether chunk `ci` is marked in Go 1.19's scavenge index (always
    /// false under Go 1.26, whose index counts pages instead).
    pub fn scav_marked(&self, ci: u64) -> bool {
        self.scav.v119().is_some_and(|ix| ix.is_marked(ci))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Arch, PageAlloc, PALLOC_CHUNK_BYTES};

    /// A heap whose lowest chunk lies in index byte 0 (chunk 1 on arm64)
    /// keeps it scavengeable after a later growth above (Go 1.19 would reset
    /// its `minHeapIdx` past it).
    #[test]
    fn lowest_chunk_in_byte_zero_stays_scavengeable() {
        let ly = Arch::Arm64.layout();
        let mut pa = PageAlloc::builder(Arch::Arm64)
            .go(crate::GoVersion::Go119)
            .build()
            .unwrap();
        pa.set_phys_huge_page_size(0).unwrap();
        pa.grow(ly.chunk_base(1), PALLOC_CHUNK_BYTES).unwrap();
        let a = pa.alloc(1).unwrap().unwrap();
        pa.free(a, 1).unwrap();
        pa.grow(ly.chunk_base(ly.base_chunk_idx()), PALLOC_CHUNK_BYTES)
            .unwrap();
        assert_eq!(pa.scavenge(u64::MAX).unwrap(), crate::PAGE_SIZE);
        assert_eq!(pa.chunk_scavenged(1).unwrap(), crate::PallocBits::FULL);
    }
}
