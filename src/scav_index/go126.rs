//! Go 1.26's scavenge index (`mgcscavenge.go` as of Go 1.21, CL 436395):
//! per-chunk `scavChunkData`, two search cursors and generations. The
//! scavenger loop that asks it, `scavenge(nbytes, force)`, is the
//! allocator's (`alloc/scavenge.rs`).
//!
//! Per grown chunk the index keeps how many of its pages are in use
//! (`inUse`, told by every alloc and free), how many were in use at the
//! start of the chunk's current generation (`lastInUse`), that generation,
//! and whether the chunk may hold free, unscavenged pages (`hasFree`).
//! A generation is a GC cycle: `next_gen` starts the next one.
//!
//! Two cursors say where `find` starts walking down: the *forced* one
//! (`searchAddrForce`, the eager scavenger's and `debug.FreeOSMemory`'s)
//! follows every free at once; the *background* one (`searchAddrBg`) only
//! learns at `next_gen` how high the last cycle freed (`freeHWM`). The
//! background scavenger also skips dense chunks: 496 pages or more in use
//! (`scavChunkHiOccPages`), now or, within the chunk's current generation,
//! at its start. A cursor "marked" by a raise is, unlike an unmarked one,
//! moved down by `find` only with a compare-and-swap and never cleared: Go's
//! lock-free protocol, kept because its results are what Go returns.
//!
//! The index lives in reserved address space, 8 bytes per chunk, committed
//! as Go 1.23+'s `scavengeIndex.sysGrow` commits it: one run of whole
//! physical pages covering the hull of the grown chunks (golang/go#63385's
//! fix: the minimum is kept right, nothing is re-mapped).

use super::IndexMem;
use crate::arch::{
    Layout, LOG_PALLOC_CHUNK_BYTES, PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES,
};
use crate::error::Result;

/// Go's `scavChunkHiOccPages`: 496 of 512 pages (`0.96875 * 512`).
pub const SCAV_CHUNK_HI_OCC_PAGES: u16 = 496;

/// Go's `scavChunkData`, unpacked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScavChunkData {
    /// Pages of the chunk in use.
    pub in_use: u16,
    /// Pages in use at the start of the chunk's generation `gen`.
    pub last_in_use: u16,
    /// The generation the chunk was last changed in.
    pub gen: u32,
    /// Go's `scavChunkFlags` (6 bits); bit 0 is `scavChunkHasFree`: the
    /// chunk may hold free, unscavenged pages.
    pub flags: u8,
}

/// Go's `scavChunkHasFree`.
const HAS_FREE: u8 = 1;
/// Go's `scavChunkFlagsMask` (`scavChunkMaxFlags` = 6 bits).
const FLAGS_MASK: u64 = (1 << 6) - 1;

/// Bits of `inUse` and `lastInUse` (`logPallocChunkPages + 1`).
const LOG_IN_USE_MAX: u32 = 10;
const IN_USE_MASK: u64 = (1 << LOG_IN_USE_MAX) - 1;
/// Where the flags sit in a packed entry: above `lastInUse`.
const FLAGS_SHIFT: u32 = 16 + LOG_IN_USE_MAX;

impl ScavChunkData {
    /// Go's `pack`: inUse | lastInUse << 16 | flags << 26 | gen << 32.
    pub const fn pack(self) -> u64 {
        self.in_use as u64
            | (self.last_in_use as u64) << 16
            | (self.flags as u64) << FLAGS_SHIFT
            | (self.gen as u64) << 32
    }

    /// Go's `unpackScavChunkData`.
    pub const fn unpack(v: u64) -> ScavChunkData {
        ScavChunkData {
            in_use: v as u16,
            last_in_use: ((v >> 16) & IN_USE_MASK) as u16,
            gen: (v >> 32) as u32,
            flags: ((v >> FLAGS_SHIFT) & FLAGS_MASK) as u8,
        }
    }

    /// Go's `!isEmpty()`: the chunk may hold free, unscavenged pages.
    pub const fn has_free(self) -> bool {
        self.flags & HAS_FREE != 0
    }

    /// Go's `shouldScavenge`.
    pub const fn should_scavenge(self, gen: u32, force: bool) -> bool {
        if !self.has_free() {
            return false;
        }
        if force {
            return true;
        }
        if self.gen == gen {
            return self.in_use < SCAV_CHUNK_HI_OCC_PAGES
                && self.last_in_use < SCAV_CHUNK_HI_OCC_PAGES;
        }
        self.in_use < SCAV_CHUNK_HI_OCC_PAGES
    }

    /// A change in generation `gen` first carries the count over.
    #[inline]
    fn enter_gen(&mut self, gen: u32) {
        if self.gen != gen {
            self.last_in_use = self.in_use;
            self.gen = gen;
        }
    }
}

/// One of the index's cursors (Go's `atomicOffAddr`): a linearized address
/// (0 is "cleared", Go's `minOffAddr`) and whether a raise marked it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub lin: u64,
    pub marked: bool,
}

impl Cursor {
    /// `Clear`: back to 0, unless marked (a raise since the last move).
    fn clear(&mut self) {
        if !self.marked {
            self.lin = 0;
        }
    }
}

/// Go 1.26's `scavengeIndex`.
pub(crate) struct ScavIndex126 {
    /// `scavChunkData.pack()` of every chunk, 8 bytes each; only the
    /// committed entries `[min, max)` are read or written.
    chunks: IndexMem,
    /// Go's `min` and `max`: the committed entry range (`max == 0`: none).
    min: u64,
    max: u64,
    /// Go's `minHeapIdx`: the lowest chunk `find` looks at (0: unset).
    min_heap_idx: u64,
    pub(crate) bg: Cursor,
    pub(crate) force: Cursor,
    /// Go's `freeHWM`: the highest page freed in this generation (0: none).
    pub(crate) free_hwm: u64,
    pub(crate) gen: u32,
}

const ENTRY: usize = 8;

impl ScavIndex126 {
    pub(crate) fn new(ly: &Layout) -> Result<ScavIndex126> {
        let chunks = IndexMem::new(ly, ly.max_chunks as usize * ENTRY)?;
        Ok(ScavIndex126 {
            min: 0,
            max: if chunks.counted { 0 } else { ly.max_chunks },
            chunks,
            min_heap_idx: 0,
            bg: Cursor::default(),
            force: Cursor::default(),
            free_hwm: 0,
            gen: 0,
        })
    }

    /// Go's test constructor `NewScavengeIndex(min, max)`: entries
    /// `[0, max)` usable, `find` looking down to `min`.
    #[cfg(test)]
    pub(crate) fn for_test(ly: &Layout, min: u64, max: u64) -> Result<ScavIndex126> {
        let mut ix = ScavIndex126::new(ly)?;
        if ix.chunks.counted {
            ix.chunks.commit(0, max as usize * ENTRY)?;
        }
        ix.min = min;
        ix.max = max;
        ix.min_heap_idx = min;
        Ok(ix)
    }

    /// Go's test export `ResetSearchAddrs`: both cursors unmarked and
    /// cleared, no high-water mark.
    #[cfg(test)]
    pub(crate) fn reset_search_addrs(&mut self) {
        self.bg = Cursor::default();
        self.force = Cursor::default();
        self.free_hwm = 0;
    }

    pub(crate) fn mapped_bytes(&self) -> usize {
        self.chunks.mapped_bytes()
    }

    pub(crate) fn reserved_bytes(&self) -> usize {
        self.chunks.len()
    }

    /// Go's `grow` then `sysGrow` for the chunk-aligned linearized range
    /// `[base, limit)`: the entries of the new chunks' whole physical pages,
    /// extended to join the committed run, less what it holds already.
    /// `phys_page` is the allocator's physical page size in bytes.
    pub(crate) fn grow(&mut self, base: u64, limit: u64, phys_page: u64) -> Result<usize> {
        let (bc, lc) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            limit >> LOG_PALLOC_CHUNK_BYTES,
        );
        if self.min_heap_idx == 0 || bc < self.min_heap_idx {
            self.min_heap_idx = bc;
        }
        if !self.chunks.counted {
            return Ok(0);
        }
        let per_page = (phys_page / ENTRY as u64).max(1);
        let (have_min, have_max) = (self.min, self.max);
        let mut need_min = bc / per_page * per_page;
        let mut need_max = lc.next_multiple_of(per_page);
        if need_max < have_min {
            need_max = have_min;
        }
        if have_max != 0 && need_min > have_max {
            need_min = have_max;
        }
        // What is committed already is either inside or next to the need.
        let (lo, hi) = if have_max == 0 {
            (need_min, need_max)
        } else if need_min >= have_min && need_max <= have_max {
            (0, 0)
        } else if need_min < have_min {
            (need_min, have_min)
        } else {
            (have_max, need_max)
        };
        if hi <= lo {
            return Ok(0);
        }
        self.chunks
            .commit(lo as usize * ENTRY, hi as usize * ENTRY)?;
        if have_max == 0 || need_min < have_min {
            self.min = need_min;
        }
        if need_max > have_max {
            self.max = need_max;
        }
        Ok((hi - lo) as usize * ENTRY)
    }

    #[inline]
    pub(crate) fn get(&self, ci: u64) -> ScavChunkData {
        ScavChunkData::unpack(self.get_packed(ci))
    }

    #[inline]
    pub(crate) fn set(&mut self, ci: u64, sc: ScavChunkData) {
        self.set_packed(ci, sc.pack());
    }

    /// Chunk `ci`'s entry as stored: [`ScavChunkData::pack`]ed.
    #[inline]
    fn get_packed(&self, ci: u64) -> u64 {
        debug_assert!(
            self.chunks.is_committed(ci as usize * ENTRY, ENTRY),
            "index entry {ci:#x}"
        );
        // SAFETY: entry ci lies in the committed run (it covers every chunk
        // between the lowest and highest grown ones, see `grow`), it is
        // aligned for u64, and no reference to the reservation exists.
        unsafe { self.chunks.base().cast::<u64>().add(ci as usize).read() }
    }

    #[inline]
    fn set_packed(&mut self, ci: u64, v: u64) {
        debug_assert!(
            self.chunks.is_committed(ci as usize * ENTRY, ENTRY),
            "index entry {ci:#x}"
        );
        // SAFETY: as in `get_packed`; `&mut self` makes this the only access.
        unsafe { self.chunks.base().cast::<u64>().add(ci as usize).write(v) }
    }

    /// Go's `alloc`: `npages` pages of chunk `ci` became in use.
    #[inline]
    pub(crate) fn alloc(&mut self, ci: u64, npages: u64) {
        // inUse is the low field of the packed entry and never exceeds 512,
        // so it changes in place, with no carry out.
        let mut v = self.entry_in_gen(ci);
        debug_assert!(
            (v & IN_USE_MASK) + npages <= PALLOC_CHUNK_PAGES,
            "too many pages allocated in chunk {ci:#x}"
        );
        v += npages;
        if v & IN_USE_MASK == PALLOC_CHUNK_PAGES {
            v &= !(u64::from(HAS_FREE) << FLAGS_SHIFT);
        }
        self.set_packed(ci, v);
    }

    /// Chunk `ci`'s packed entry, carried into the current generation
    /// (`lastInUse` takes `inUse` when it was last changed in another).
    #[inline(always)]
    fn entry_in_gen(&self, ci: u64) -> u64 {
        let v = self.get_packed(ci);
        if (v >> 32) as u32 == self.gen {
            // The common case: nothing to carry.
            return v;
        }
        let mut sc = ScavChunkData::unpack(v);
        sc.enter_gen(self.gen);
        sc.pack()
    }

    /// Go's `free`: `npages` pages of chunk `ci` became free, the highest of
    /// them at page `last`. (Go's `free(ci, page, npages)` has
    /// `last = page + npages - 1`; a cache flush frees page by page, whose
    /// sum is one call with its highest page.)
    #[inline]
    pub(crate) fn free(&mut self, ci: u64, last: u64, npages: u64) {
        // As in `alloc`: inUse and the flag, in place.
        let v = self.entry_in_gen(ci);
        debug_assert!(
            v & IN_USE_MASK >= npages,
            "allocated pages below zero in chunk {ci:#x}"
        );
        self.set_packed(ci, (v - npages) | u64::from(HAS_FREE) << FLAGS_SHIFT);
        let lin = (ci << LOG_PALLOC_CHUNK_BYTES) + last * PAGE_SIZE;
        if self.free_hwm < lin {
            self.free_hwm = lin;
        }
        if self.force.lin < lin {
            self.force = Cursor { lin, marked: true };
        }
    }

    /// Go's `alloc` for each chunk of the linearized pages
    /// `[lin, lin + npages*PAGE_SIZE)` (Go's test export `AllocRange`).
    pub(crate) fn alloc_range(&mut self, lin: u64, npages: u64) {
        for (ci, _, n) in crate::alloc::chunk_pieces(lin, npages) {
            self.alloc(ci, n);
        }
    }

    /// Go's `free` for each chunk of the linearized pages
    /// `[lin, lin + npages*PAGE_SIZE)` (Go's `pageAlloc.free`, and its test
    /// export `FreeRange`).
    pub(crate) fn free_range(&mut self, lin: u64, npages: u64) {
        for (ci, i, n) in crate::alloc::chunk_pieces(lin, npages) {
            self.free(ci, i + n - 1, n);
        }
    }

    /// Go's `nextGen`.
    pub(crate) fn next_gen(&mut self) {
        self.gen = self.gen.wrapping_add(1);
        if self.bg.lin < self.free_hwm {
            self.bg = Cursor {
                lin: self.free_hwm,
                marked: true,
            };
        }
        self.free_hwm = 0;
    }

    /// Go's `setEmpty`.
    pub(crate) fn set_empty(&mut self, ci: u64) {
        let mut sc = self.get(ci);
        sc.flags &= !HAS_FREE;
        self.set(ci, sc);
    }

    /// Go's `find(force)`: the highest chunk at or below the cursor that
    /// the scavenger should look at, and the page to search down from
    /// (the cursor's own page in its own chunk, else the chunk's last page);
    /// `None` when there is none (the cursor is then cleared, unless a raise
    /// marked it meanwhile).
    pub(crate) fn find(&mut self, force: bool) -> Option<(u64, u64)> {
        let cur = if force { self.force } else { self.bg };
        if cur.lin == 0 {
            return None;
        }
        let start = cur.lin >> LOG_PALLOC_CHUNK_BYTES;
        let mut i = start;
        loop {
            if i < self.min_heap_idx {
                break;
            }
            if self.get(i).should_scavenge(self.gen, force) {
                if i == start {
                    return Some((i, crate::arch::chunk_page_index(cur.lin)));
                }
                let new = (i << LOG_PALLOC_CHUNK_BYTES) + PALLOC_CHUNK_BYTES - PAGE_SIZE;
                let slot = if force { &mut self.force } else { &mut self.bg };
                // Marked: StoreUnmark (a compare-and-swap with the marked
                // value just read, which nothing changed since). Unmarked:
                // StoreMin.
                if cur.marked || new <= slot.lin {
                    *slot = Cursor {
                        lin: new,
                        marked: false,
                    };
                }
                return Some((i, PALLOC_CHUNK_PAGES - 1));
            }
            if i == 0 {
                break;
            }
            i -= 1;
        }
        if force {
            self.force.clear();
        } else {
            self.bg.clear();
        }
        None
    }
}
