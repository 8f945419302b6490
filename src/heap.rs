//! A heap of real memory (Go's `mheap` in miniature): a [`PageAlloc`] over
//! address space that the heap reserves itself, so every address it hands out
//! is memory a program can write to.
//!
//! The heap reserves `max_bytes` of address space up front, 4 MiB-aligned,
//! with no access rights and no swap reservation (Go's `sysReserve`). When an
//! allocation does not fit, it grows by whole 64 MiB arenas (Go's
//! `heapArenaBytes`; the last growth may be smaller, to stop at `max_bytes`),
//! committing them read/write (`sysMap`) and growing the page allocator over
//! them. Pages fresh from the OS are zero and marked scavenged, so an
//! allocation that asks for zeroed memory only clears the pages that were
//! used before (Go's `needzero`, from `alloc`'s scavenged count; here exact,
//! per page run). Freed pages stay with the heap until the scavenger returns
//! them to the OS (`MADV_DONTNEED`, Go's `sysUnused`), highest addresses
//! first, on [`Heap::scavenge`] or, under a memory limit, from a background
//! thread that keeps the retained memory at or below the limit (Go's
//! `GOMEMLIMIT` scavenger).
//!
//! Accounting, in bytes: `grown = in_use + free`; `released` is the part of
//! `free` that is scavenged (returned, or never touched); `retained = grown -
//! released` is what the heap may hold in RAM.
//!
//! Small spans (fewer than 16 pages) come from a page cache of up to 64
//! pages, as Go's `mheap.allocSpan` takes them from the P's `pageCache`: a
//! few word operations instead of a walk of the radix tree. Cached pages are
//! free in the heap's counters but not available to the scavenger, which
//! flushes the cache back to the page allocator before it releases memory.
//!
//! Locking: one mutex guards the allocator and the counters, as Go's heap
//! lock does; zeroing a large span happens after it is released, and the
//! background scavenger releases memory in steps, letting allocations in
//! between.

use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::arch::{Arch, PAGE_SIZE, PALLOC_CHUNK_BYTES};
use crate::cache::{PageCache, PAGE_CACHE_PAGES};
use crate::error::{Error, Result};
use crate::vm::Reservation;
use crate::PageAlloc;

/// Go's `heapArenaBytes` on 64-bit Linux: the heap grows by this much.
pub const HEAP_ARENA_BYTES: u64 = 64 << 20;

/// Zeroing up to this many bytes happens under the heap lock; more is
/// cleared after it is released.
const ZERO_UNDER_LOCK: u64 = 256 << 10;

/// Spans of fewer pages come from (and go back to) the page cache: Go's
/// `pageCachePages / 4`.
const SMALL_SPAN_PAGES: u64 = PAGE_CACHE_PAGES / 4;

/// What the background scavenger releases per lock hold.
const SCAVENGE_STEP: u64 = 4 << 20;

/// The layout preset for this machine's address space.
fn host_arch() -> Arch {
    if cfg!(target_arch = "aarch64") {
        Arch::Arm64
    } else if cfg!(target_pointer_width = "32") {
        Arch::I386
    } else {
        Arch::Amd64
    }
}

/// A heap's counters, read under one lock (bytes, except `arenas`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in spans handed out and not freed.
    pub in_use: u64,
    /// Grown bytes not in use (including `released`).
    pub free: u64,
    /// Free bytes whose memory is returned to the OS (or never touched).
    pub released: u64,
    /// `in_use + free - released`: what the heap may hold in RAM.
    pub retained: u64,
    /// Arenas grown (the last may be partial when `max_bytes` cuts it).
    pub arenas: u64,
    /// Metadata committed by the page allocator.
    pub metadata_committed: u64,
}

/// The heap's state, under its lock.
struct State {
    pa: PageAlloc,
    /// The reservation; the heap is `[off, off + max_bytes)` within it.
    mem: Reservation,
    off: u64,
    /// First address of the heap (4 MiB-aligned).
    base: u64,
    /// Reserved heap bytes, a multiple of the chunk size.
    max_bytes: u64,
    /// Bytes grown so far: `[base, base + grown)` is committed and known to
    /// the allocator. Invariant: `grown == in_use + free` (see `stats`).
    grown: u64,
    in_use: u64,
    /// Free and scavenged bytes. Invariant: equals the scavenged pages of
    /// the allocator and of the cache times `PAGE_SIZE`, and every such page
    /// reads as zero.
    released: u64,
    /// Go's per-P `pageCache` (one, under the heap lock): small spans come
    /// from here. Its pages are in use in `pa` and free in the counters.
    cache: PageCache,
    limit: Option<u64>,
    stop: bool,
    /// Reused buffer for the dirty runs of an allocation.
    dirty: Vec<(u64, u64)>,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the background scavenger.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The heap reports errors instead of panicking; a poisoned lock can
        // only follow a bug, and the state it guards stays memory-safe.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A heap of real pages; see the module docs. `Send + Sync`: share it by
/// reference or in an `Arc`.
///
/// Cost of the operations: `alloc` is the page allocator's `alloc` plus, when
/// the heap must grow, one `mprotect` and a `grow`; zeroing touches only the
/// pages that were used before. `free` is the allocator's `free`.
/// `scavenge(n)` is the allocator's `scavenge` plus one `madvise` per run.
pub struct Heap {
    shared: Arc<Shared>,
    /// The background scavenger, started by the first memory limit.
    scavenger: Mutex<Option<JoinHandle<()>>>,
}

impl Heap {
    /// Reserves `max_bytes` (rounded up to 4 MiB) of address space for a
    /// heap; commits nothing yet. Errors: `ZeroSize`, or `Reserve` when the
    /// OS refuses.
    pub fn new(max_bytes: u64) -> Result<Heap> {
        if max_bytes == 0 {
            return Err(Error::ZeroSize);
        }
        let max = max_bytes
            .checked_next_multiple_of(PALLOC_CHUNK_BYTES)
            .filter(|&m| m <= isize::MAX as u64 / 2)
            .ok_or(Error::Reserve {
                bytes: usize::MAX,
                what: "heap",
                source: std::io::Error::from(std::io::ErrorKind::OutOfMemory),
            })?;
        // Room to align the heap's base to a chunk.
        let mem = Reservation::reserve((max + PALLOC_CHUNK_BYTES) as usize, "heap")?;
        let start = mem.base() as u64;
        let base = start.next_multiple_of(PALLOC_CHUNK_BYTES);
        let pa = PageAlloc::new(host_arch())?;
        let state = State {
            pa,
            mem,
            off: base - start,
            base,
            max_bytes: max,
            grown: 0,
            in_use: 0,
            released: 0,
            cache: PageCache::default(),
            limit: None,
            stop: false,
            dirty: Vec::new(),
        };
        Ok(Heap {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                wake: Condvar::new(),
            }),
            scavenger: Mutex::new(None),
        })
    }

    /// `npages` contiguous pages (8 KiB each), growing the heap when nothing
    /// fits. With `zero`, every byte reads as zero; without, pages freed
    /// earlier keep their old contents. Errors: `ZeroPages`; `HeapFull`
    /// when the pages do not fit in `max_bytes`; `Commit` when the OS
    /// refuses memory. On error the heap keeps working.
    ///
    /// The pages `[p, p + npages * PAGE_SIZE)` are valid for reads and
    /// writes, 8 KiB-aligned, until they are freed or the heap is dropped.
    pub fn alloc(&self, npages: u64, zero: bool) -> Result<NonNull<u8>> {
        let mut st = self.shared.lock();
        let addr = st.alloc(npages)?;
        if zero && !st.dirty.is_empty() {
            let dirty_bytes: u64 = st.dirty.iter().map(|&(_, n)| n * PAGE_SIZE).sum();
            if dirty_bytes <= ZERO_UNDER_LOCK {
                zero_runs(&st.dirty);
            } else {
                // Clear large spans without holding up other threads: the
                // pages are this caller's now, and the scavenger only
                // touches free pages.
                let runs = std::mem::take(&mut st.dirty);
                drop(st);
                zero_runs(&runs);
            }
        }
        Ok(NonNull::new(addr as *mut u8).expect("heap addresses are never 0"))
    }

    /// Returns `npages` pages at `p` (a span from `alloc`, or part of one)
    /// to the heap, not to the OS. Errors (and nothing changes) unless they
    /// are all in use. The caller must not touch them afterwards: they may be
    /// handed out again, or released.
    pub fn free(&self, p: NonNull<u8>, npages: u64) -> Result<()> {
        let mut st = self.shared.lock();
        st.free(p.as_ptr() as u64, npages)?;
        if st.over_limit().is_some() {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Returns at least `nbytes` of free memory to the OS now (all there is
    /// when there is less), highest addresses first, never splitting a free
    /// huge page; returns the bytes released.
    pub fn scavenge(&self, nbytes: u64) -> Result<u64> {
        self.shared.lock().scavenge(nbytes)
    }

    /// The memory limit (bytes of `retained`), if any.
    pub fn memory_limit(&self) -> Option<u64> {
        self.shared.lock().limit
    }

    /// Sets or clears the memory limit. Under a limit a background thread
    /// scavenges until `retained <= limit`, within about a second of the
    /// change or of a free that leaves the heap over it (as far as free
    /// memory allows: in-use memory is never taken).
    pub fn set_memory_limit(&self, limit: Option<u64>) {
        if limit.is_some() {
            self.start_scavenger();
        }
        self.shared.lock().limit = limit;
        self.shared.wake.notify_one();
    }

    /// The counters, read under one lock.
    pub fn stats(&self) -> HeapStats {
        self.shared.lock().stats()
    }

    /// Reserved heap bytes (`max_bytes` rounded up to 4 MiB).
    pub fn max_bytes(&self) -> u64 {
        self.shared.lock().max_bytes
    }

    /// The heap's first address; every span lies in `[base, base + max_bytes)`.
    pub fn base(&self) -> u64 {
        self.shared.lock().base
    }

    /// Checks the page allocator's invariants and the heap's counters
    /// against it (for tests).
    pub fn verify(&self) -> Result<()> {
        self.shared.lock().verify()
    }

    fn start_scavenger(&self) {
        let mut t = self.scavenger.lock().unwrap_or_else(|e| e.into_inner());
        if t.is_none() {
            let shared = Arc::clone(&self.shared);
            *t = Some(
                std::thread::Builder::new()
                    .name("pagealloc-scavenger".into())
                    .spawn(move || background_scavenger(&shared))
                    .expect("spawn the scavenger thread"),
            );
        }
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        let t = self.scavenger.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = t.take() {
            // The thread only scavenges; if it panicked there is nothing
            // left to clean up.
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Heap")
            .field("base", &format_args!("{:#x}", st.base))
            .field("max_bytes", &st.max_bytes)
            .field("stats", &st.stats())
            .field("limit", &st.limit)
            .finish()
    }
}

/// Clears each `(address, npages)` run.
fn zero_runs(runs: &[(u64, u64)]) {
    for &(addr, n) in runs {
        // SAFETY: each run lies in pages the calling allocation now owns,
        // inside the heap's committed read/write arenas; nothing else
        // references them.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, (n * PAGE_SIZE) as usize) };
    }
}

/// The background scavenger: sleeps until the heap is over its limit, then
/// releases memory a step at a time until it is not, or until nothing free
/// is left to release (then it sleeps until the next wake: it never spins).
fn background_scavenger(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return;
        }
        let released = match st.over_limit() {
            Some(excess) => st.scavenge(excess.min(SCAVENGE_STEP)).unwrap_or(0),
            None => 0,
        };
        if released == 0 {
            st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
        } else {
            // Let allocations in between steps.
            drop(st);
            std::thread::yield_now();
            st = shared.lock();
        }
    }
}

impl State {
    fn alloc(&mut self, npages: u64) -> Result<u64> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        let full = Error::HeapFull {
            npages,
            max_bytes: self.max_bytes,
        };
        let bytes = npages
            .checked_mul(PAGE_SIZE)
            .filter(|&b| b <= self.max_bytes)
            .ok_or(full)?;
        if npages < SMALL_SPAN_PAGES {
            if let Some(addr) = self.alloc_cached(npages)? {
                self.in_use += bytes;
                return Ok(addr);
            }
        }
        loop {
            let (addr, scav) = self.pa.alloc_dirty(npages, &mut self.dirty)?;
            if let Some(addr) = addr {
                self.in_use += bytes;
                self.released -= scav;
                return Ok(addr);
            }
            self.grow(bytes)?;
        }
    }

    /// Go's `mheap.allocSpan` for small spans: from the page cache, refilled
    /// from the page allocator when empty; `None` when the cache has no run
    /// of `npages` (the caller then asks the page allocator). Fills `dirty`.
    fn alloc_cached(&mut self, npages: u64) -> Result<Option<u64>> {
        self.dirty.clear();
        if self.cache.empty() {
            self.cache = self.pa.alloc_to_cache()?;
        }
        let scav_before = self.cache.scav;
        let (Some(addr), scav) = self.cache.alloc(npages)? else {
            return Ok(None);
        };
        self.released -= scav;
        // The run's pages that were not scavenged may hold old contents.
        let i = (addr - self.cache.base) / PAGE_SIZE;
        let run = (u64::MAX >> (64 - npages)) << i;
        let mut dirty = run & !scav_before;
        while dirty != 0 {
            let j = dirty.trailing_zeros() as u64;
            let n = (dirty >> j).trailing_ones() as u64;
            self.dirty.push((self.cache.base + j * PAGE_SIZE, n));
            dirty &= !((u64::MAX >> (64 - n)) << j);
        }
        Ok(Some(addr))
    }

    /// Frees a span. A small span inside the cache's block goes back to the
    /// cache, so the next small allocation reuses its pages while they are
    /// still in the CPU's caches (Go frees every span to the page allocator;
    /// the pages end up in the same place either way, and the scavenger
    /// flushes the cache before it looks for free memory).
    fn free(&mut self, addr: u64, npages: u64) -> Result<()> {
        let c = &self.cache;
        let block = PAGE_CACHE_PAGES * PAGE_SIZE;
        let in_block = npages < SMALL_SPAN_PAGES
            && c.base != 0
            && addr >= c.base
            && addr.saturating_add(npages * PAGE_SIZE) <= c.base + block;
        if in_block {
            // The pages must be in use and not already cached (free).
            self.pa.check_in_use(addr, npages)?;
            let run = (u64::MAX >> (64 - npages)) << ((addr - c.base) / PAGE_SIZE);
            if c.cache & run != 0 {
                let i = (c.cache & run).trailing_zeros() as u64;
                return Err(Error::NotInUse {
                    addr,
                    npages,
                    page: c.base + i * PAGE_SIZE,
                });
            }
            self.cache.cache |= run;
        } else {
            self.pa.free(addr, npages)?;
        }
        self.in_use -= npages * PAGE_SIZE;
        Ok(())
    }

    /// Go's `mheap.grow`: commits whole arenas covering `need` bytes (fewer
    /// when `max_bytes` is near) at the end of the heap and grows the
    /// allocator over them; the heap's last free pages join the new ones.
    fn grow(&mut self, need: u64) -> Result<()> {
        let room = self.max_bytes - self.grown;
        let ask = need.next_multiple_of(HEAP_ARENA_BYTES).min(room);
        if ask == 0 {
            return Err(Error::HeapFull {
                npages: need / PAGE_SIZE,
                max_bytes: self.max_bytes,
            });
        }
        let off = (self.off + self.grown) as usize;
        self.mem.commit(off, off + ask as usize)?;
        self.pa.grow(self.base + self.grown, ask)?;
        self.grown += ask;
        // New pages come from the OS zeroed and count as released.
        self.released += ask;
        Ok(())
    }

    fn scavenge(&mut self, nbytes: u64) -> Result<u64> {
        // Cached pages are in use to the page allocator: give them back so
        // that all free memory can be released.
        let mut cache = std::mem::take(&mut self.cache);
        cache.flush(&mut self.pa)?;
        let State {
            pa, mem, off, base, ..
        } = self;
        let r = pa.scavenge_with(nbytes, |addr, len| {
            let at = (*off + addr - *base) as usize;
            if mem.release(at, len as usize).is_err() {
                // Scavenged pages must read as zero; if the OS would not
                // take them back, clear them here.
                zero_runs(&[(addr, len / PAGE_SIZE)]);
            }
        })?;
        self.released += r;
        Ok(r)
    }

    /// How far `retained` exceeds the limit, when it does.
    fn over_limit(&self) -> Option<u64> {
        let retained = self.grown - self.released;
        self.limit.filter(|&l| retained > l).map(|l| retained - l)
    }

    fn stats(&self) -> HeapStats {
        HeapStats {
            in_use: self.in_use,
            free: self.grown - self.in_use,
            released: self.released,
            retained: self.grown - self.released,
            arenas: self.grown.div_ceil(HEAP_ARENA_BYTES),
            metadata_committed: self.pa.mapped_bytes() as u64,
        }
    }

    fn verify(&self) -> Result<()> {
        self.pa.verify()?;
        let pages = |f: &dyn Fn(u64) -> u64| -> u64 { self.pa.grown_chunks().map(f).sum() };
        let cached = self.cache.cache.count_ones() as u64;
        let in_use = pages(&|ci| self.pa.chunk_bitmap(ci).map_or(0, |b| b.pages_in_use())) - cached;
        let scav = pages(&|ci| self.pa.chunk_scavenged(ci).map_or(0, |b| b.pages_in_use()))
            + self.cache.scav.count_ones() as u64;
        if in_use * PAGE_SIZE != self.in_use || scav * PAGE_SIZE != self.released {
            return Err(Error::Verify(format!(
                "heap counters in_use={} released={} but the bitmaps say {} and {}",
                self.in_use,
                self.released,
                in_use * PAGE_SIZE,
                scav * PAGE_SIZE
            )));
        }
        Ok(())
    }
}
