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
    #[inline]
    pub(crate) fn mark(&mut self, base: u64, limit: u64) {
        let (start, end) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            (limit - PAGE_SIZE) >> LOG_PALLOC_CHUNK_BYTES,
        );
        if start == end {
            // One chunk (most frees): one bit.
            self.set_byte(start / 8, self.byte(start / 8) | 1 << (start % 8));
        } else {
            self.mark_chunks(start, end);
        }
        let new = limit - PAGE_SIZE;
        if self.search_addr < new {
            self.search_addr = new;
            self.marked = true;
        }
    }

    /// Marks chunks `[start, end]`, one byte at a time: chunks `[ci, hi]`
    /// share byte `ci / 8`.
    #[cold]
    fn mark_chunks(&mut self, start: u64, end: u64) {
        let mut ci = start;
        while ci <= end {
            let hi = end.min(ci | 7);
            let mask = (((1u16 << (hi - ci + 1)) - 1) as u8) << (ci % 8);
            self.set_byte(ci / 8, self.byte(ci / 8) | mask);
            ci = hi + 1;
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
