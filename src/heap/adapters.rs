//! The Heap under Rust code that allocates through the standard traits:
//! `allocator_api2::alloc::Allocator for &Heap` (feature `allocator-api2`)
//! and [`LargeAlloc`], a [`GlobalAlloc`] that sends large allocations to a
//! heap and everything else to another allocator.
//!
//! Sizes: a heap hands out whole 8 KiB pages, so a layout of `size` bytes
//! takes `ceil(size / 8192)` pages (a page-multiple layout exactly that
//! many), and the pages are 8 KiB-aligned: alignments up to 8 KiB are
//! served, larger ones refused (`Allocator`) or sent to the other
//! allocator (`LargeAlloc`). Freeing is by the same layout, as both traits
//! require, so no size is stored anywhere.
//!
//! What the heap adds under these traits: freed pages are reused without
//! page faults, zeroed allocations clear only pages that were written
//! before (fresh and scavenged pages are zero already, Go's `needzero`), a
//! growing allocation extends in place when the pages after it are free,
//! and a memory limit returns free pages to the OS.

use std::alloc::{GlobalAlloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use super::Heap;
use crate::arch::PAGE_SIZE;

/// The pages a layout of `size` bytes takes (at least one).
#[inline]
fn pages_for(size: usize) -> u64 {
    (size as u64).div_ceil(PAGE_SIZE).max(1)
}

#[cfg(feature = "allocator-api2")]
mod api2 {
    use super::*;
    use allocator_api2::alloc::{AllocError, Allocator};

    /// A dangling, aligned pointer: what a zero-sized allocation returns.
    fn dangling(layout: Layout) -> NonNull<[u8]> {
        // SAFETY: an alignment is never zero, so the address is non-null.
        let p = unsafe { NonNull::new_unchecked(layout.align() as *mut u8) };
        NonNull::slice_from_raw_parts(p, 0)
    }

    /// Page-granular allocation from a heap: see the module docs for sizes
    /// and alignment. Zero-sized layouts get a dangling pointer and touch
    /// no page.
    ///
    /// Cost: `allocate` is [`Heap::alloc`], `deallocate` [`Heap::free`];
    /// `grow` first tries [`Heap::grow_in_place`] (no copy), else
    /// allocates, copies and frees; `shrink` frees the tail pages in place.
    // SAFETY: blocks are pages the heap owns until `deallocate`; they stay
    // valid while the heap lives (the `&Heap` borrows it) and moving the
    // reference does not move the memory; cloning the reference shares
    // the same heap, so any copy can free what another allocated.
    unsafe impl Allocator for &Heap {
        fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            self.alloc_layout(layout, false)
        }

        fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
            self.alloc_layout(layout, true)
        }

        unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
            if layout.size() != 0 {
                // A failure means the caller broke the contract (a block
                // this heap did not hand out); nothing changes then.
                let _ = self.free(ptr, pages_for(layout.size()));
            }
        }

        unsafe fn grow(
            &self,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            debug_assert!(new.size() >= old.size());
            if old.size() != 0 && new.align() <= PAGE_SIZE as usize {
                let (o, n) = (pages_for(old.size()), pages_for(new.size()));
                if self.resize_in_place(ptr, o, n).unwrap_or(false) {
                    return Ok(NonNull::slice_from_raw_parts(ptr, (n * PAGE_SIZE) as usize));
                }
            }
            let fresh = self.allocate(new)?;
            // SAFETY: the caller guarantees `ptr` holds `old.size()`
            // readable bytes; the new block is at least that large and a
            // different allocation, so the ranges do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr().cast(), old.size());
                self.deallocate(ptr, old);
            }
            Ok(fresh)
        }

        unsafe fn shrink(
            &self,
            ptr: NonNull<u8>,
            old: Layout,
            new: Layout,
        ) -> Result<NonNull<[u8]>, AllocError> {
            debug_assert!(new.size() <= old.size());
            if new.align() > PAGE_SIZE as usize {
                return Err(AllocError);
            }
            if new.size() == 0 {
                // SAFETY: the caller's block, by its layout.
                unsafe { self.deallocate(ptr, old) };
                return Ok(dangling(new));
            }
            let (o, n) = (pages_for(old.size()), pages_for(new.size()));
            self.resize_in_place(ptr, o, n).map_err(|_| AllocError)?;
            Ok(NonNull::slice_from_raw_parts(ptr, (n * PAGE_SIZE) as usize))
        }
    }

    impl Heap {
        fn alloc_layout(&self, layout: Layout, zero: bool) -> Result<NonNull<[u8]>, AllocError> {
            if layout.size() == 0 {
                return Ok(dangling(layout));
            }
            if layout.align() > PAGE_SIZE as usize {
                return Err(AllocError);
            }
            let n = pages_for(layout.size());
            let p = self.alloc(n, zero).map_err(|_| AllocError)?;
            Ok(NonNull::slice_from_raw_parts(p, (n * PAGE_SIZE) as usize))
        }
    }
}

/// A global allocator that serves allocations of at least `threshold`
/// bytes (and at most 8 KiB alignment) from a [`Heap`] it creates on first
/// use, and everything else from `A`.
///
/// ```no_run
/// use pagealloc::LargeAlloc;
/// use std::alloc::System;
///
/// #[global_allocator]
/// static GLOBAL: LargeAlloc<System> = LargeAlloc::new(System, 256 << 10, 64 << 30);
/// ```
///
/// A deallocation goes to the heap exactly when its pointer lies in the
/// heap's reservation (one subtraction and compare, no lock), so memory
/// allocated by `A` is always returned to `A`. The heap's own bookkeeping
/// allocates only small blocks, which `A` serves: `threshold` must be
/// larger than any of them, and [`LargeAlloc::new`] refuses less than one
/// page. When the heap cannot serve a request (it is full, or its
/// reservation failed), `A` serves it.
///
/// Cost: per large allocation, [`Heap::alloc`]; per large free,
/// [`Heap::free`]; `realloc` of a large block grows in place when it can.
pub struct LargeAlloc<A> {
    inner: A,
    threshold: usize,
    max_bytes: u64,
    heap: OnceLock<Option<Heap>>,
    /// Set while the heap is being created: allocations made meanwhile
    /// (the creation's own, on any thread) go to `inner` instead of
    /// waiting for it, so creating the heap can never wait for itself.
    creating: AtomicBool,
}

impl<A: GlobalAlloc> LargeAlloc<A> {
    /// Sends allocations of `threshold` bytes or more to a heap of up to
    /// `max_bytes` (reserved on the first such allocation), the rest to
    /// `inner`.
    ///
    /// # Panics
    ///
    /// When `threshold` is less than one page (8 KiB), at compile time in a
    /// `static`.
    pub const fn new(inner: A, threshold: usize, max_bytes: u64) -> LargeAlloc<A> {
        assert!(
            threshold >= PAGE_SIZE as usize,
            "LargeAlloc: threshold below one page"
        );
        LargeAlloc {
            inner,
            threshold,
            max_bytes,
            heap: OnceLock::new(),
            creating: AtomicBool::new(false),
        }
    }

    /// The heap, once a large allocation has created it.
    pub fn heap(&self) -> Option<&Heap> {
        self.heap.get().and_then(Option::as_ref)
    }

    fn heap_for(&self, layout: Layout) -> Option<&Heap> {
        if layout.size() < self.threshold || layout.align() > PAGE_SIZE as usize {
            return None;
        }
        if let Some(h) = self.heap.get() {
            return h.as_ref();
        }
        if self.creating.swap(true, Ordering::Acquire) {
            return None;
        }
        let h = self.heap.get_or_init(|| Heap::new(self.max_bytes).ok());
        h.as_ref()
    }

    fn owner(&self, ptr: *mut u8) -> Option<&Heap> {
        self.heap().filter(|h| h.contains(ptr))
    }
}

// SAFETY: every block comes either from the heap (whole pages, 8 KiB-
// aligned, at least `layout.size()` bytes, valid until freed) or from
// `inner` under its own contract; `owner` sends each free and realloc to
// the allocator whose reservation holds the pointer, which is the one that
// allocated it because the heap's addresses are never `inner`'s.
unsafe impl<A: GlobalAlloc> GlobalAlloc for LargeAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(h) = self.heap_for(layout) {
            if let Ok(p) = h.alloc(pages_for(layout.size()), false) {
                return p.as_ptr();
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if let Some(h) = self.heap_for(layout) {
            if let Ok(p) = h.alloc(pages_for(layout.size()), true) {
                return p.as_ptr();
            }
        }
        // SAFETY: the caller's layout, passed on.
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match (self.owner(ptr), NonNull::new(ptr)) {
            (Some(h), Some(p)) => {
                let _ = h.free(p, pages_for(layout.size()));
            }
            // SAFETY: not the heap's, so `inner` allocated it with `layout`.
            _ => unsafe { self.inner.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(h) = self.owner(ptr) else {
            if new_size >= self.threshold && layout.align() <= PAGE_SIZE as usize {
                // Moving up into the heap: a fresh heap block and a copy.
                // SAFETY: the caller's layout with the new size is valid
                // (GlobalAlloc::realloc's contract).
                let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                if let Some(heap) = self.heap_for(new) {
                    if let Ok(p) = heap.alloc(pages_for(new_size), false) {
                        // SAFETY: `ptr` holds layout.size() bytes, fewer
                        // than the new block's; they are distinct blocks.
                        unsafe {
                            std::ptr::copy_nonoverlapping(ptr, p.as_ptr(), layout.size());
                            self.inner.dealloc(ptr, layout);
                        }
                        return p.as_ptr();
                    }
                }
            }
            // SAFETY: `inner`'s block, passed on with the caller's arguments.
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        };
        // SAFETY: the heap's block; `ptr` is non-null because it lies in
        // the heap's reservation.
        let p = unsafe { NonNull::new_unchecked(ptr) };
        let (o, n) = (pages_for(layout.size()), pages_for(new_size));
        // The block stays where it is unless it grows over taken pages
        // (keeping or shrinking it cannot fail for a block of the heap).
        if h.resize_in_place(p, o, n).unwrap_or(n <= o) {
            return ptr;
        }
        // SAFETY: a valid layout (the caller's alignment, the new size).
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of at least new_size bytes.
        let fresh = unsafe { self.alloc(new) };
        if !fresh.is_null() {
            // SAFETY: distinct blocks; the old one holds layout.size() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, fresh, layout.size());
            }
            let _ = h.free(p, o);
        }
        fresh
    }
}
