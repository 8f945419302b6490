//! Page caches (Go 1.19's `mpagecache.go`): `pageCache` and `allocToCache`.
//!
//! A page cache owns one 64-page-aligned block of up to 64 free pages, taken
//! from the allocator in one step ([`PageAlloc::alloc_to_cache`]). Its owner
//! (a P in Go) then allocates small runs from the block without touching the
//! allocator or its lock, and eventually gives what is left back
//! ([`PageCache::flush`]). The allocator counts cached pages as in use.

use crate::arch::PAGE_SIZE;
use crate::bits::find_bit_range64;
use crate::error::{Error, Result};
use crate::PageAlloc;

/// Go's `pageCachePages`: pages per cache, the bits of a `u64`.
pub const PAGE_CACHE_PAGES: u64 = 64;

/// Go's `pageCache`. Bit i of `cache` set: page `base + i*PAGE_SIZE` is free
/// for this cache to hand out; bit i of `scav` set: that page is scavenged.
/// Invariant: `scav` is a subset of `cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCache {
    /// First address of the block (a multiple of 64 pages); 0 when empty
    /// from the start.
    pub base: u64,
    pub cache: u64,
    pub scav: u64,
}

impl PageCache {
    /// A cache of the given bits, checked: `base` 64-page aligned and `scav`
    /// a subset of `cache`.
    pub fn new(base: u64, cache: u64, scav: u64) -> Result<PageCache> {
        if base % (PAGE_CACHE_PAGES * PAGE_SIZE) != 0 {
            return Err(Error::Misaligned {
                addr: base,
                page_size: crate::arch::PAGE_SIZE,
            });
        }
        if scav & !cache != 0 {
            return Err(Error::BadCache { base, cache, scav });
        }
        Ok(PageCache { base, cache, scav })
    }

    /// Go's `empty`: no page left.
    #[inline]
    pub fn empty(&self) -> bool {
        self.cache == 0
    }

    /// Go's `pageCache.alloc`: the lowest run of `npages` free pages of the
    /// cache (no wrap-around), now taken, and the bytes of it that were
    /// scavenged; `(None, 0)` when no run fits, as for any `npages > 64`.
    /// `npages == 0` is an error. O(1): a few word operations.
    #[inline]
    pub fn alloc(&mut self, npages: u64) -> Result<(Option<u64>, u64)> {
        if npages == 1 {
            return Ok(match self.take_one() {
                Some((bit, scav)) => (
                    Some(self.base + u64::from(bit.trailing_zeros()) * PAGE_SIZE),
                    u64::from(scav) * PAGE_SIZE,
                ),
                None => (None, 0),
            });
        }
        if npages == 0 {
            return Err(Error::BadCachePages { npages });
        }
        if npages > PAGE_CACHE_PAGES {
            return Ok((None, 0));
        }
        Ok(match self.take_run(npages) {
            Some((mask, scav)) => {
                let i = u64::from(mask.trailing_zeros());
                let scav = u64::from(scav.count_ones());
                (Some(self.base + i * PAGE_SIZE), scav * PAGE_SIZE)
            }
            None => (None, 0),
        })
    }

    /// Takes the lowest free page (the common case, in a few instructions):
    /// its bit, and whether it was scavenged.
    #[inline(always)]
    pub(crate) fn take_one(&mut self) -> Option<(u64, bool)> {
        let c = self.cache;
        if c == 0 {
            return None;
        }
        let bit = c & c.wrapping_neg();
        let scav = self.scav & bit != 0;
        self.cache = c ^ bit;
        self.scav &= !bit;
        Some((bit, scav))
    }

    /// Takes the lowest run of `npages` (1 to 64) free pages: its bits and
    /// which of them were scavenged; `None` when no run fits.
    #[inline(always)]
    pub(crate) fn take_run(&mut self, npages: u64) -> Option<(u64, u64)> {
        debug_assert!((1..=PAGE_CACHE_PAGES).contains(&npages));
        let i = find_bit_range64(self.cache, npages);
        if i >= 64 {
            return None;
        }
        let mask = (u64::MAX >> (64 - npages)) << i;
        let scav = self.scav & mask;
        self.cache &= !mask;
        self.scav &= !mask;
        Some((mask, scav))
    }

    /// Go's `pageCache.flush`: gives the cache's free pages back to `pa`
    /// (scavenged ones as scavenged) and empties the cache. Like Go 1.19 it
    /// marks nothing in a Go 1.19 scavenge index; Go 1.26 frees page by page
    /// through `index.free`, so the pages it returns are visible to the
    /// scavenger. Refused, changing nothing, when the cached pages are not
    /// all in use in `pa` (a cache of another allocator, say).
    ///
    /// Cost: one bitmap word, then Go's `update` of one chunk.
    pub fn flush(&mut self, pa: &mut PageAlloc) -> Result<()> {
        if self.empty() {
            *self = PageCache::default();
            return Ok(());
        }
        pa.flush_cache(self)?;
        *self = PageCache::default();
        Ok(())
    }
}

/// An owner's page cache that also takes back what it handed out: Go's
/// `pageCache` plus `handed`, the pages of its block it handed out and has
/// not had back. Small allocations (1 to 15 pages) come from the cache, a
/// new block taken when it is empty; a free of pages it handed out goes back
/// into the cache; everything else goes to the page allocator. This is the
/// small-span fast path of [`crate::Heap`] (one per thread), usable on its
/// own by a single owner of a [`PageAlloc`].
///
/// Invariant: `handed & cache.cache == 0`: a page of the block is free in
/// the cache, handed out, or neither (another span's, the allocator's).
///
/// Cost: [`LocalCache::alloc`] and [`LocalCache::free`] of a small span are
/// a few word operations; a refill is Go's `allocToCache`; other requests
/// are the page allocator's `alloc` and `free`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalCache {
    pub cache: PageCache,
    pub handed: u64,
}

impl From<PageCache> for LocalCache {
    fn from(cache: PageCache) -> LocalCache {
        LocalCache { cache, handed: 0 }
    }
}

/// Requests of fewer pages are served from a [`LocalCache`]: Go's
/// `pageCachePages / 4`.
pub const SMALL_SPAN_PAGES: u64 = PAGE_CACHE_PAGES / 4;

impl LocalCache {
    /// A cache with no block yet.
    pub fn new() -> LocalCache {
        LocalCache::default()
    }

    /// `npages` pages at the lowest address the cache has a run for, else
    /// from `pa` (first fit); `None` when nothing fits. A small request
    /// finding the cache empty takes a new block first (the old block's
    /// handed-out pages become ordinary in-use pages of `pa`). On a layout
    /// with a custom page size (no page caches) every request is `pa`'s.
    #[inline]
    pub fn alloc(&mut self, pa: &mut PageAlloc, npages: u64) -> Result<Option<u64>> {
        if (1..SMALL_SPAN_PAGES).contains(&npages) {
            if let Some((addr, _)) = self.take(npages) {
                return Ok(Some(addr));
            }
        }
        self.alloc_slow(pa, npages)
    }

    /// [`LocalCache::alloc`] when the cache cannot serve the request: a
    /// refill for a small one that found it empty, else the allocator.
    #[inline(never)]
    fn alloc_slow(&mut self, pa: &mut PageAlloc, npages: u64) -> Result<Option<u64>> {
        if (1..SMALL_SPAN_PAGES).contains(&npages) && self.cache.empty() {
            match pa.alloc_to_cache() {
                Ok(c) => *self = LocalCache::from(c),
                // Custom page sizes have no page caches: first fit.
                Err(Error::BadLayout(_)) => return pa.alloc(npages),
                Err(e) => return Err(e),
            }
            if let Some((addr, _)) = self.take(npages) {
                return Ok(Some(addr));
            }
        }
        pa.alloc(npages)
    }

    /// Frees `npages` pages at `addr`: back into the cache when it handed
    /// them out, else to `pa`. Errors, changing nothing, when a page is free
    /// (in the cache or in `pa`).
    #[inline]
    pub fn free(&mut self, pa: &mut PageAlloc, addr: u64, npages: u64) -> Result<()> {
        if let Some(mask) = self.run_mask(addr, npages) {
            if self.give_back(mask) {
                return Ok(());
            }
        }
        self.free_slow(pa, addr, npages)
    }

    /// [`LocalCache::free`] of pages the cache did not hand out.
    #[inline(never)]
    fn free_slow(&mut self, pa: &mut PageAlloc, addr: u64, npages: u64) -> Result<()> {
        pa.check_pages(addr, npages)?;
        let m = self.overlap_mask(addr, addr + npages * PAGE_SIZE);
        if m & (self.cache.cache | self.handed) != 0 {
            // A range mixing handed-out pages with others, or covering
            // cached (free) ones: refused as a whole.
            let i = u64::from((m & (self.cache.cache | self.handed)).trailing_zeros());
            return Err(Error::NotInUse {
                addr,
                npages,
                page: self.cache.base + i * PAGE_SIZE,
            });
        }
        pa.free(addr, npages)
    }

    /// Gives the cached pages back to `pa` (Go's `flush`) and forgets the
    /// block: its handed-out pages become ordinary in-use pages. Unlike Go's
    /// `flush`, marks the chunk in the scavenge index when any page given
    /// back is unscavenged, so that `scavenge` finds it (a cache flushed to
    /// make memory returnable must not hide it from the scavenger).
    pub fn flush(&mut self, pa: &mut PageAlloc) -> Result<()> {
        let (base, dirty) = (self.cache.base, self.cache.cache & !self.cache.scav);
        self.cache.flush(pa)?;
        if dirty != 0 {
            pa.mark_for_scavenger(base);
        }
        self.handed = 0;
        Ok(())
    }

    /// The bits of `[addr, addr + npages * PAGE_SIZE)` in the block, when
    /// the range lies wholly inside it.
    #[inline]
    pub(crate) fn run_mask(&self, addr: u64, npages: u64) -> Option<u64> {
        let base = self.cache.base;
        // Below the base, the offset wraps past the block: refused with it.
        let off = addr.wrapping_sub(base);
        let i = off / PAGE_SIZE;
        let fits = base != 0
            && off % PAGE_SIZE == 0
            && (1..=PAGE_CACHE_PAGES).contains(&npages)
            && i + npages <= PAGE_CACHE_PAGES;
        fits.then(|| (u64::MAX >> (64 - npages)) << i)
    }

    /// The bits of the part of `[addr, end)` inside the block (0 when they
    /// do not meet). Page-aligned arguments.
    pub(crate) fn overlap_mask(&self, addr: u64, end: u64) -> u64 {
        let base = self.cache.base;
        let top = base + PAGE_CACHE_PAGES * PAGE_SIZE;
        if base == 0 || end <= base || addr >= top {
            return 0;
        }
        let lo = (addr.max(base) - base) / PAGE_SIZE;
        let hi = (end.min(top) - base) / PAGE_SIZE;
        (u64::MAX >> (64 - (hi - lo))) << lo
    }

    /// Hands out the lowest run of `npages` cached pages: its address and
    /// which of its pages were not scavenged, which may hold old contents
    /// (bit `j`: the page at `addr + j * PAGE_SIZE`). O(1).
    #[inline]
    pub(crate) fn take(&mut self, npages: u64) -> Option<(u64, u64)> {
        if npages == 1 {
            let (bit, scav) = self.cache.take_one()?;
            self.handed |= bit;
            let i = u64::from(bit.trailing_zeros());
            return Some((self.cache.base + i * PAGE_SIZE, u64::from(!scav)));
        }
        let (mask, scav) = self.cache.take_run(npages)?;
        debug_assert_eq!(self.handed & mask, 0);
        self.handed |= mask;
        let i = mask.trailing_zeros();
        Some((
            self.cache.base + u64::from(i) * PAGE_SIZE,
            (mask & !scav) >> i,
        ))
    }

    /// Takes back pages the cache handed out, if every page of `mask` is
    /// handed out. O(1).
    #[inline]
    pub(crate) fn give_back(&mut self, mask: u64) -> bool {
        if self.handed & mask != mask {
            return false;
        }
        self.handed &= !mask;
        self.cache.cache |= mask;
        true
    }
}
