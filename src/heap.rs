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
//! The page allocator underneath follows Go 1.26 ([`GoVersion::Go126`]), and
//! so does the scavenging around it, as Go 1.26's `mheap` and scavenger do
//! it, with one difference: this heap has no garbage collector, so nothing
//! else marks the end of a GC cycle. Its stand-in is the background
//! scavenger's round: each time it wakes to work it starts a new scavenge
//! index generation (`nextGen`), then scavenges as Go's background
//! scavenger does (not forced: chunks with 496 or more pages in use, now or
//! at the start of their generation, are left alone) toward Go 1.22+'s
//! memory-limit goal, 95% of the limit (`limit * (1 - 5/100)`). An
//! allocation whose pages, once touched, would take the heap past the limit
//! first scavenges the excess eagerly and forced, as `mheap.allocSpan`
//! does. [`Heap::scavenge`] is forced (Go's `debug.FreeOSMemory`).
//!
//! Accounting, in bytes: `grown = in_use + free`; `released` is the part of
//! `free` that is scavenged (returned, or never touched); `retained = grown -
//! released` is what the heap may hold in RAM.
//!
//! Small spans (fewer than 16 pages) come from per-thread page caches of up
//! to 64 pages each, as Go's `mheap.allocSpan` takes them from the P's
//! `pageCache`: a few word operations instead of a walk of the radix tree,
//! and no heap lock. A small span freed by the thread that allocated it
//! goes back to that thread's cache, also without the heap lock (see
//! `heap/tcache.rs` for how frees find their way). Cached pages are free in the
//! heap's counters but not available to the scavenger, which flushes every
//! cache back to the page allocator before it releases memory; a thread's
//! cache is flushed when the thread exits.
//!
//! Locking: one mutex guards the allocator and the counters, as Go's heap
//! lock does, and each thread cache has its own (see `heap/tcache.rs` for the
//! order); zeroing a large span happens after the heap lock is released,
//! and the background scavenger releases memory in steps, letting
//! allocations in between.

mod adapters;
mod tcache;

pub use adapters::LargeAlloc;

use std::ptr::NonNull;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::arch::{Arch, PAGE_SIZE, PALLOC_CHUNK_BYTES};
use crate::cache::{PAGE_CACHE_PAGES, SMALL_SPAN_PAGES};
use crate::error::{Error, Result};
use crate::vm::Reservation;
use crate::{GoVersion, PageAlloc};

use tcache::Slot;

/// A span handed out: its first page and its page count.
pub type Span = (NonNull<u8>, u64);

/// Go's `heapArenaBytes` on 64-bit Linux: the heap grows by this much.
pub const HEAP_ARENA_BYTES: u64 = 64 << 20;

/// Zeroing up to this many bytes happens under the heap lock; more is
/// cleared after it is released.
const ZERO_UNDER_LOCK: u64 = 256 << 10;

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
    /// Bytes in use outside the live thread caches (which count their
    /// handed-out pages themselves; see `stats`).
    in_use: u64,
    /// Free and scavenged bytes outside the live thread caches. Invariant:
    /// plus the live caches' scavenged pages, equals the scavenged pages of
    /// the allocator and of the caches times `PAGE_SIZE`; every such page
    /// reads as zero.
    released: u64,
    /// The live thread caches (Go's per-P `pageCache`s): small spans come
    /// from here. Their blocks' cached and handed-out pages are in use in
    /// `pa`. Invariant: exactly the slots whose `live` is set.
    slots: Vec<Arc<Slot>>,
    limit: Option<u64>,
    /// The most free, unreleased bytes (`free - released`) the heap keeps
    /// after a free or a change of the budget; `None`: no bound.
    idle_budget: Option<u64>,
    stop: bool,
    /// Reused buffer for the dirty runs of an allocation.
    dirty: Vec<(u64, u64)>,
}

pub(crate) struct Shared {
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

    /// Retires a thread's cache (its thread is exiting).
    fn retire_slot(&self, slot: &Slot) {
        // A flush only fails on a corrupt allocator, which verify reports.
        let _ = self.lock().retire(slot);
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
    /// Copies of the state's `base` and `max_bytes` (fixed at creation), so
    /// that [`Heap::contains`] needs no lock.
    base: u64,
    max_bytes: u64,
}

impl Heap {
    /// Reserves `max_bytes` (rounded up to 4 MiB) of address space for a
    /// heap; commits nothing yet. Errors: `ZeroHeap`, or `Reserve` when the
    /// OS refuses.
    pub fn new(max_bytes: u64) -> Result<Heap> {
        if max_bytes == 0 {
            return Err(Error::ZeroHeap);
        }
        // No process has more than 128 TiB of user address space (x86-64
        // and arm64 with 4-level page tables): refuse more as a bad value,
        // not as a reservation the OS turned down.
        const LIMIT: u64 = 1 << 47;
        if max_bytes > LIMIT {
            return Err(Error::HeapTooLarge {
                max_bytes,
                limit: LIMIT,
            });
        }
        let max = max_bytes.next_multiple_of(PALLOC_CHUNK_BYTES);
        // Room to align the heap's base to a chunk.
        let mem = Reservation::reserve((max + PALLOC_CHUNK_BYTES) as usize, "heap")?;
        let start = mem.base() as u64;
        let base = start.next_multiple_of(PALLOC_CHUNK_BYTES);
        let pa = PageAlloc::builder(host_arch())
            .go(GoVersion::Go126)
            .build()?;
        let state = State {
            pa,
            mem,
            off: base - start,
            base,
            max_bytes: max,
            grown: 0,
            in_use: 0,
            released: 0,
            slots: Vec::new(),
            limit: None,
            idle_budget: DEFAULT_IDLE_BUDGET,
            stop: false,
            dirty: Vec::new(),
        };
        Ok(Heap {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                wake: Condvar::new(),
            }),
            scavenger: Mutex::new(None),
            base,
            max_bytes: max,
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
        if (1..SMALL_SPAN_PAGES).contains(&npages) {
            // The fast path: this thread's cache, under its own lock.
            let got = tcache::with_current(&self.shared, |slot| slot.lock().local.take(npages));
            if let Some(Some((addr, dirty))) = got {
                if zero {
                    zero_mask(addr, dirty);
                }
                return Ok(NonNull::new(addr as *mut u8).expect("heap addresses are never 0"));
            }
        }
        let mut st = self.shared.lock();
        let addr = match st.alloc_small(&self.shared, npages)? {
            Some(addr) => addr,
            None => st.alloc(npages)?,
        };
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
        // The fast path: a span this thread's cache handed out goes back to
        // it. (It leaves `retained` as it was: no limit to check.)
        let given = tcache::with_current(&self.shared, |slot| {
            let mut s = slot.lock();
            let mask = s.local.run_mask(p.as_ptr() as u64, npages);
            mask.is_some_and(|m| s.give_back(m))
        });
        if given == Some(true) {
            return Ok(());
        }
        let mut st = self.shared.lock();
        st.free(p.as_ptr() as u64, npages)?;
        st.trim_idle();
        if st.over_goal().is_some() {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Grows the span of `old_npages` pages at `p` to `new_npages` pages
    /// where it is, when the pages after it are grown and free (Go's
    /// `allocRange` on exactly those pages); returns whether it did. The
    /// new pages keep whatever they held (a `realloc` copies nothing into
    /// them). `Ok(false)`, and nothing changes, when they are not all free
    /// or lie beyond what the heap has grown. Errors: `ZeroPages` unless
    /// `old_npages < new_npages`.
    ///
    /// Cost: one check and one `alloc_at` of the added pages under the heap
    /// lock.
    pub fn grow_in_place(&self, p: NonNull<u8>, old_npages: u64, new_npages: u64) -> Result<bool> {
        if old_npages == 0 || new_npages <= old_npages {
            return Err(Error::ZeroPages);
        }
        let extra = new_npages - old_npages;
        let Some(at) = old_npages
            .checked_mul(PAGE_SIZE)
            .and_then(|b| (p.as_ptr() as u64).checked_add(b))
        else {
            return Ok(false);
        };
        let mut st = self.shared.lock();
        let end = st.base + st.grown;
        if at < st.base || extra.checked_mul(PAGE_SIZE).is_none_or(|b| at + b > end) {
            return Ok(false);
        }
        match st.pa.alloc_at(at, extra) {
            Ok(scav) => {
                st.in_use += extra * PAGE_SIZE;
                st.released -= scav;
                st.scavenge_eagerly();
                Ok(true)
            }
            Err(Error::NotFree { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The most pages one `alloc` would serve now: the longest free run of
    /// the grown heap, or the free pages at its end plus the room it may
    /// still grow into (`max_bytes`), whichever is more. Pages in thread
    /// caches count as taken. Cost: [`PageAlloc::largest_free`] plus a
    /// binary search of the free run at the end (O(log pages) searches).
    pub fn largest_free(&self) -> Result<u64> {
        let mut st = self.shared.lock();
        let inside = st.pa.largest_free(1, None)?;
        let end = st.base + st.grown;
        // The free run the heap's last page ends: how far growth extends it.
        let tail = crate::alloc::largest_fitting(inside.min(st.grown / PAGE_SIZE), |n| {
            st.pa.would_fit(n, 1, Some((end - n * PAGE_SIZE, end)))
        })?;
        let room = (st.max_bytes - st.grown) / PAGE_SIZE;
        Ok(inside.max(tail + room))
    }

    /// Whether `alloc(npages, _)` would succeed now (growing if it must),
    /// short of the OS refusing memory. Cost: [`Heap::largest_free`].
    pub fn would_fit(&self, npages: u64) -> Result<bool> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        Ok(npages <= self.largest_free()?)
    }

    /// `npages` pages in at most `max_extents` spans, all or nothing: one
    /// span as [`Heap::alloc`] when it fits (growing if it must); else,
    /// once the heap has grown all it can, the page allocator's
    /// [`PageAlloc::alloc_extents`] over every free page (thread caches
    /// are flushed first so that their free pages count). `None`, and
    /// nothing changed but the flushed caches, when even that needs more
    /// extents. With `zero`, every page of the spans reads as zero (on the
    /// several-span path every page is cleared). Free each span with
    /// [`Heap::free`].
    ///
    /// Cost: [`Heap::alloc`]; on the several-span path also the caches'
    /// flush and [`PageAlloc::alloc_extents`].
    pub fn alloc_extents(
        &self,
        npages: u64,
        max_extents: usize,
        zero: bool,
    ) -> Result<Option<Vec<Span>>> {
        if max_extents == 0 {
            return Err(Error::ZeroExtents);
        }
        match self.alloc(npages, zero) {
            Ok(p) => return Ok(Some(vec![(p, npages)])),
            Err(Error::HeapFull { .. }) => {}
            Err(e) => return Err(e),
        }
        let mut st = self.shared.lock();
        for slot in std::mem::take(&mut st.slots) {
            st.retire(&slot)?;
        }
        let Some((ext, scav)) = st.pa.alloc_extents_scav(npages, max_extents)? else {
            return Ok(None);
        };
        st.in_use += npages * PAGE_SIZE;
        st.released -= scav;
        st.scavenge_eagerly();
        drop(st);
        let spans = ext
            .into_iter()
            .map(|(a, n)| {
                if zero {
                    zero_runs(&[(a, n)]);
                }
                (
                    NonNull::new(a as *mut u8).expect("heap addresses are never 0"),
                    n,
                )
            })
            .collect();
        Ok(Some(spans))
    }

    /// Resizes the span of `old_npages` pages at `p` to `new_npages` where
    /// it is: the same size is kept, a smaller one frees the tail pages, a
    /// larger one is [`Heap::grow_in_place`]. Returns whether the span now
    /// has `new_npages` pages at `p`; `Ok(false)` (nothing changed) only
    /// when growing finds the next pages taken. What `realloc` and
    /// `Allocator::grow`/`shrink` try before they move a block.
    pub fn resize_in_place(
        &self,
        p: NonNull<u8>,
        old_npages: u64,
        new_npages: u64,
    ) -> Result<bool> {
        if new_npages > old_npages {
            return self.grow_in_place(p, old_npages, new_npages);
        }
        if new_npages < old_npages {
            if new_npages == 0 {
                return Err(Error::ZeroPages);
            }
            // SAFETY: pages [new, old) of the caller's span, inside the
            // heap's reservation; the span keeps [0, new).
            let tail = unsafe { p.add((new_npages * PAGE_SIZE) as usize) };
            self.free(tail, old_npages - new_npages)?;
        }
        Ok(true)
    }

    /// Whether `p` lies in the heap's reservation, `[base, base +
    /// max_bytes)`: every span the heap hands out does, and nothing else
    /// does. Needs no lock.
    #[inline]
    pub fn contains(&self, p: *const u8) -> bool {
        (p as u64).wrapping_sub(self.base) < self.max_bytes
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
    /// scavenges as Go 1.26's background scavenger does until `retained`
    /// is at most Go's goal, 95% of the limit ([`memory_limit_goal`]),
    /// within about a second of the change or of a free that leaves the
    /// heap over it (as far as free memory allows: in-use memory is never
    /// taken, nor free pages of chunks with 496 or more pages in use); an
    /// allocation that would take `retained` past the limit scavenges the
    /// excess first, forced.
    pub fn set_memory_limit(&self, limit: Option<u64>) {
        if limit.is_some() {
            self.start_scavenger();
        }
        self.shared.lock().limit = limit;
        self.shared.wake.notify_one();
    }

    /// The idle budget: the most bytes of free memory the heap keeps
    /// resident (`free - released` of [`HeapStats`]) for allocations to
    /// come; `None` for no bound. By default [`DEFAULT_IDLE_BUDGET`].
    pub fn idle_budget(&self) -> Option<u64> {
        self.shared.lock().idle_budget
    }

    /// Sets or clears the idle budget. A free that leaves more free memory
    /// resident than the budget releases the excess at once, highest
    /// addresses first (forced, as [`Heap::scavenge`]: it may split a huge
    /// page), and so does this call; spans freed into a thread's page cache
    /// (under 16 pages) are counted at the next free that reaches the heap.
    /// A budget of 0 returns every freed page at once, as `munmap` would;
    /// a budget at least as large as the freed blocks keeps every reuse
    /// free of page faults.
    pub fn set_idle_budget(&self, budget: Option<u64>) {
        let mut st = self.shared.lock();
        st.idle_budget = budget;
        st.trim_idle();
    }

    /// The counters, read under one lock.
    pub fn stats(&self) -> HeapStats {
        self.shared.lock().stats()
    }

    /// Reserved heap bytes (`max_bytes` rounded up to 4 MiB).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The heap's first address; every span lies in `[base, base + max_bytes)`.
    pub fn base(&self) -> u64 {
        self.base
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

/// Calls `f(address, npages)` for each run of set bits of `mask`, bit `j`
/// standing for the page at `base + j * PAGE_SIZE`.
fn mask_runs(base: u64, mut mask: u64, mut f: impl FnMut(u64, u64)) {
    while mask != 0 {
        let j = u64::from(mask.trailing_zeros());
        let n = u64::from((mask >> j).trailing_ones());
        f(base + j * PAGE_SIZE, n);
        mask &= !((u64::MAX >> (64 - n)) << j);
    }
}

/// Clears the pages of `mask` (bit `j`: the page at `base + j * PAGE_SIZE`).
fn zero_mask(base: u64, mask: u64) {
    mask_runs(base, mask, |a, n| zero_runs(&[(a, n)]));
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

/// The idle budget of a new [`Heap`] (see [`Heap::set_idle_budget`]):
/// 256 MiB. Measured on NumPy temporaries of 16 to 256 MiB (the NumPy
/// guide's workload), it keeps every reuse free of page faults and the
/// peak RSS of glibc's allocator, while a heap that kept everything held
/// 794 MiB at the end where this holds 283 MiB; smaller budgets refault
/// larger blocks (64 MiB: 19,508 faults against 404 on 256 MiB blocks).
pub const DEFAULT_IDLE_BUDGET: Option<u64> = Some(256 << 20);

/// Go 1.22+'s `memoryLimitGoal`: `limit * (1 - reduceExtraPercent/100)`,
/// with `reduceExtraPercent = 5`, computed in floating point as Go does.
pub fn memory_limit_goal(limit: u64) -> u64 {
    (limit as f64 * (1.0 - 5.0 / 100.0)) as u64
}

/// The background scavenger: sleeps until the heap is over its goal (95% of
/// the limit), then releases memory a step at a time until it is not, or until nothing free
/// is left to release (then it sleeps until the next wake: it never spins).
fn background_scavenger(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if st.stop {
            return;
        }
        // A round of work is this heap's GC cycle: a new generation, so
        // the frees since the last round are the background scavenger's.
        let released = match st.over_goal() {
            Some(excess) => {
                st.pa.next_gen().unwrap_or(());
                st.scavenge_kind(excess.min(SCAVENGE_STEP), crate::Scavenge::BACKGROUND)
                    .unwrap_or(0)
            }
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
        loop {
            let (addr, scav) = self.pa.alloc_dirty(npages, &mut self.dirty)?;
            if let Some(addr) = addr {
                self.in_use += bytes;
                self.released -= scav;
                self.scavenge_eagerly();
                return Ok(addr);
            }
            self.grow(bytes)?;
        }
    }

    /// The slow path of a small span (Go's `mheap.allocSpan` refilling the
    /// P's `pageCache`): when this thread has no live cache with a free
    /// page, retires the old one, takes a new block and allocates from it.
    /// `None` when the span is not small, when the thread's cache still has
    /// free pages (just no run of `npages`), or when no block is left: the
    /// caller then asks the page allocator. Fills `dirty`.
    fn alloc_small(&mut self, shared: &Arc<Shared>, npages: u64) -> Result<Option<u64>> {
        self.dirty.clear();
        if !(1..SMALL_SPAN_PAGES).contains(&npages) {
            return Ok(None);
        }
        let old = tcache::current(shared);
        if let Some(slot) = &old {
            let s = slot.lock();
            if s.live && !s.local.cache.empty() {
                return Ok(None);
            }
        }
        if let Some(slot) = &old {
            self.retire(slot)?;
        }
        let Some(cache) = self.refill()? else {
            return Ok(None);
        };
        let slot = Arc::new(Slot::new(cache));
        let got = slot.lock().local.take(npages);
        self.slots.push(Arc::clone(&slot));
        if !tcache::set_current(shared, Arc::clone(&slot)) {
            // The thread is exiting: keep nothing cached for it.
            self.retire(&slot)?;
        }
        let Some((addr, dirty)) = got else {
            return Ok(None);
        };
        let runs = &mut self.dirty;
        mask_runs(addr, dirty, |a, n| runs.push((a, n)));
        Ok(Some(addr))
    }

    /// A new cache block (Go's `allocToCache`), growing the heap when no
    /// page is free; `None` when the heap is full.
    fn refill(&mut self) -> Result<Option<crate::PageCache>> {
        let mut c = self.pa.alloc_to_cache()?;
        if c.empty() {
            match self.grow(PAGE_CACHE_PAGES * PAGE_SIZE) {
                Err(Error::HeapFull { .. }) => return Ok(None),
                r => r?,
            }
            c = self.pa.alloc_to_cache()?;
            if c.empty() {
                return Ok(None);
            }
        }
        // The cache's scavenged pages are counted by the cache now.
        self.released -= u64::from(c.scav.count_ones()) * PAGE_SIZE;
        Ok(Some(c))
    }

    /// Retires a thread cache: its free pages go back to the page allocator
    /// (Go's `pageCache.flush`), its handed-out pages become ordinary in-use
    /// pages (their frees go to the page allocator from now on). Retiring a
    /// retired cache does nothing.
    fn retire(&mut self, slot: &Slot) -> Result<()> {
        let mut s = slot.lock();
        if !s.live {
            return Ok(());
        }
        s.live = false;
        self.in_use += u64::from(s.local.handed.count_ones()) * PAGE_SIZE;
        self.released += u64::from(s.local.cache.scav.count_ones()) * PAGE_SIZE;
        let mut local = std::mem::take(&mut s.local);
        drop(s);
        self.slots.retain(|x| !std::ptr::eq(Arc::as_ptr(x), slot));
        local.flush(&mut self.pa)
    }

    /// Frees a span under the heap lock: pages that a live thread cache
    /// handed out go back to that cache (whichever thread frees them), the
    /// rest to the page allocator. All or nothing: every page must be in
    /// use and none may be free in a cache; otherwise an error and no
    /// change.
    fn free(&mut self, addr: u64, npages: u64) -> Result<()> {
        self.pa.check_pages(addr, npages)?;
        let end = addr + npages * PAGE_SIZE;
        let State {
            slots, pa, in_use, ..
        } = self;
        // Hold every live cache whose block meets the range (in `slots`
        // order, under the heap lock: the order every path keeps), with the
        // range's pages that it handed out.
        let mut held = Vec::new();
        for slot in slots.iter() {
            let s = slot.lock();
            let c = &s.local;
            let m = c.overlap_mask(addr, end);
            if m & c.cache.cache != 0 {
                let i = u64::from((m & c.cache.cache).trailing_zeros());
                return Err(Error::NotInUse {
                    addr,
                    npages,
                    page: c.cache.base + i * PAGE_SIZE,
                });
            }
            let h = m & c.handed;
            if h != 0 {
                held.push((s, h));
            }
        }
        // The rest of the range is the page allocator's: the runs between
        // the handed-out pages.
        let mut owned = Vec::new();
        for (s, h) in &held {
            mask_runs(s.local.cache.base, *h, |a, n| {
                owned.push((a, a + n * PAGE_SIZE))
            });
        }
        owned.sort_unstable();
        let mut rest = Vec::new();
        let mut at = addr;
        for (a, e) in owned {
            if a > at {
                rest.push((at, (a - at) / PAGE_SIZE));
            }
            at = e;
        }
        if at < end {
            rest.push((at, (end - at) / PAGE_SIZE));
        }
        for &(a, n) in &rest {
            pa.check_in_use(a, n)?;
        }
        for (mut s, h) in held {
            let given = s.local.give_back(h);
            debug_assert!(given);
        }
        for (a, n) in rest {
            pa.free(a, n)?;
            *in_use -= n * PAGE_SIZE;
        }
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
        // Arenas are chunk-aligned, so whole 2 MiB huge pages fit them: a
        // first touch faults once per 2 MiB where the kernel allows.
        self.mem.advise_huge(off, ask as usize);
        self.pa.grow(self.base + self.grown, ask)?;
        self.grown += ask;
        // New pages come from the OS zeroed and count as released.
        self.released += ask;
        Ok(())
    }

    /// Go's `mheap.allocSpan` under a memory limit: when the pages just
    /// taken, once touched, put the retained memory over the limit, the
    /// excess is scavenged at once and forced. (The allocated pages are in
    /// use: they are never among those released.)
    fn scavenge_eagerly(&mut self) {
        if let Some(excess) = self.over_limit() {
            // Best effort, as in Go: what cannot be released stays.
            let _ = self.scavenge_kind(excess, crate::Scavenge::FORCED);
        }
    }

    fn scavenge(&mut self, nbytes: u64) -> Result<u64> {
        self.scavenge_kind(nbytes, crate::Scavenge::FORCED)
    }

    /// Releases the free memory kept beyond the idle budget, if any.
    fn trim_idle(&mut self) {
        let Some(budget) = self.idle_budget else {
            return;
        };
        // The counters outside the thread caches bound the idle bytes from
        // above (the caches only add pages in use and released ones): most
        // frees stop here, without locking every cache.
        if self.grown - self.in_use - self.released <= budget {
            return;
        }
        let st = self.stats();
        let idle = st.free - st.released;
        if idle > budget {
            // Best effort: pages the scavenger cannot take stay.
            let _ = self.scavenge(idle - budget);
        }
    }

    /// Go 1.26's `scavenge(nbytes, nil, force)` on the heap's memory, of
    /// the kind `how` says.
    fn scavenge_kind(&mut self, nbytes: u64, how: crate::Scavenge) -> Result<u64> {
        // Cached pages are in use to the page allocator: give them back so
        // that all free memory can be released.
        for slot in std::mem::take(&mut self.slots) {
            self.retire(&slot)?;
        }
        let State {
            pa, mem, off, base, ..
        } = self;
        let r = pa.scavenge_with(nbytes, how, |addr, len| {
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
        self.over(self.limit)
    }

    /// How far `retained` exceeds the background scavenger's goal under the
    /// limit, when it does: Go 1.22+'s `memoryLimitGoal`, 95% of the limit
    /// (golang/go#62449: the form of Go 1.19 to 1.21 left no room below it).
    fn over_goal(&self) -> Option<u64> {
        self.over(self.limit.map(memory_limit_goal))
    }

    /// How far `retained` exceeds `bound`, when there is one and it does.
    fn over(&self, bound: Option<u64>) -> Option<u64> {
        let retained = self.grown - self.released_total();
        bound.filter(|&b| retained > b).map(|b| retained - b)
    }

    /// Free, scavenged bytes, the live caches' included.
    fn released_total(&self) -> u64 {
        self.released
            + self
                .slots
                .iter()
                .map(|s| u64::from(s.lock().local.cache.scav.count_ones()) * PAGE_SIZE)
                .sum::<u64>()
    }

    fn stats(&self) -> HeapStats {
        let handed: u64 = self
            .slots
            .iter()
            .map(|s| u64::from(s.lock().local.handed.count_ones()) * PAGE_SIZE)
            .sum();
        let (in_use, released) = (self.in_use + handed, self.released_total());
        HeapStats {
            in_use,
            free: self.grown - in_use,
            released,
            retained: self.grown - released,
            arenas: self.grown.div_ceil(HEAP_ARENA_BYTES),
            metadata_committed: self.pa.mapped_bytes() as u64,
        }
    }

    fn verify(&self) -> Result<()> {
        self.pa.verify()?;
        let pages = |f: &dyn Fn(u64) -> u64| -> u64 { self.pa.grown_chunks().map(f).sum() };
        // Pages the live caches hold free, their scavenged part and the
        // pages they handed out, read in one pass with every slot held (in
        // `slots` order, as `free` takes them): an owner's fast path moves
        // pages between a slot's sets without the heap lock, so reading the
        // slots twice could count a page in neither or in both.
        let guards: Vec<_> = self.slots.iter().map(|s| s.lock()).collect();
        let (mut cached, mut cached_scav, mut handed) = (0, 0, 0);
        for s in &guards {
            let c = &s.local;
            if !s.live || c.handed & c.cache.cache != 0 || c.cache.scav & !c.cache.cache != 0 {
                return Err(Error::Verify(format!(
                    "thread cache at {:#x}: live={} cached={:#x} scav={:#x} handed={:#x}",
                    c.cache.base, s.live, c.cache.cache, c.cache.scav, c.handed
                )));
            }
            cached += u64::from(c.cache.cache.count_ones());
            cached_scav += u64::from(c.cache.scav.count_ones());
            handed += u64::from(c.handed.count_ones());
        }
        let in_use = pages(&|ci| self.pa.chunk_bitmap(ci).map_or(0, |b| b.pages_in_use())) - cached;
        let scav =
            pages(&|ci| self.pa.chunk_scavenged(ci).map_or(0, |b| b.pages_in_use())) + cached_scav;
        // What `stats` reports, from the same reads.
        let (st_in_use, st_released) = (
            self.in_use + handed * PAGE_SIZE,
            self.released + cached_scav * PAGE_SIZE,
        );
        if in_use * PAGE_SIZE != st_in_use || scav * PAGE_SIZE != st_released {
            return Err(Error::Verify(format!(
                "heap counters in_use={st_in_use} released={st_released} but the bitmaps say {} and {}",
                in_use * PAGE_SIZE,
                scav * PAGE_SIZE
            )));
        }
        Ok(())
    }
}
