//! The allocator's side of page caches (Go 1.19's `mpagecache.go`):
//! `allocToCache`, and taking a cache's pages back on a flush.

use super::*;
use crate::cache::{PageCache, PAGE_CACHE_PAGES};

impl PageAlloc {
    /// The allocator's half of [`PageCache::flush`]: checks that the cache's
    /// pages are in use here, then frees them (scavenged ones as scavenged).
    pub(crate) fn flush_cache(&mut self, c: &PageCache) -> Result<()> {
        let (lin, pi) = self.check_cache_block(c)?;
        let ci = lin >> LOG_PALLOC_CHUNK_BYTES;
        let data = self.data_mut(ci);
        data.bits.clear_block64(pi, c.cache);
        data.scavenged.set_block64(pi, c.scav);
        if let Some(ix) = self.scav.v126_mut() {
            // Go frees the cached pages one by one, ascending: together,
            // one free of them all whose highest page is the last.
            let last = pi + 63 - u64::from(c.cache.leading_zeros());
            ix.free(ci, last, u64::from(c.cache.count_ones()));
        }
        if lin < self.search_addr {
            self.search_addr = lin;
        }
        self.lower_aligned_hints(lin >> crate::arch::PAGE_SHIFT, PAGE_CACHE_PAGES);
        self.update(lin, PAGE_CACHE_PAGES, false, false);
        Ok(())
    }

    /// Marks the chunk of a cache block in the scavenge index, as a free
    /// does, for [`LocalCache::flush`](crate::LocalCache::flush): Go's `flush` leaves the index alone
    /// (its caches are short-lived and the chunk is marked by the next free
    /// there), but a cache flushed in order to scavenge must not hide its
    /// pages from the scavenger. `base` is a real address in a grown chunk.
    pub(crate) fn mark_for_scavenger(&mut self, base: u64) {
        let lin = self.ly.lin(base);
        // Go 1.26's flush told its index already.
        if let Some(ix) = self.scav.v119_mut() {
            ix.mark(lin, lin + PAGE_CACHE_PAGES * PAGE_SIZE);
        }
    }

    /// Go 1.19's `allocToCache`: takes the 64-page-aligned block holding the
    /// lowest free page, marks its free pages in use and unscavenged, and
    /// returns them as a [`PageCache`] (empty when nothing is free). The
    /// search address moves to the block's last page, which lies in grown
    /// memory (golang/go#38605).
    ///
    /// Cost: a leaf read and a bitmap search when the search address's chunk
    /// has a free page, else one radix walk; then one chunk `update`.
    pub fn alloc_to_cache(&mut self) -> Result<PageCache> {
        self.check_cache_layout()?;
        if self.search_addr >> LOG_PALLOC_CHUNK_BYTES >= self.end {
            return Ok(PageCache::default());
        }
        let ci = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
        let leaf = self.ly.leaf();
        // The first free page: in the search address's chunk if its summary
        // says it has one, else wherever the radix walk finds it.
        let (ci, j) = if self.sum(leaf, ci).0 != 0 {
            let (j, _) = self
                .data(ci)
                .bits
                .find(1, chunk_page_index(self.search_addr));
            let Some(j) = j else {
                return Err(Error::Corrupt(format!(
                    "chunk {ci:#x} summary promised a free page"
                )));
            };
            (ci, j)
        } else {
            self.refresh_summaries();
            let Some((lin, _)) = self.find(1)? else {
                self.search_addr = self.ly.max_search_lin;
                return Ok(PageCache::default());
            };
            (lin >> LOG_PALLOC_CHUNK_BYTES, chunk_page_index(lin))
        };
        let pi = j / PAGE_CACHE_PAGES * PAGE_CACHE_PAGES;
        let lin = (ci << LOG_PALLOC_CHUNK_BYTES) + pi * PAGE_SIZE;
        let data = self.data_mut(ci);
        let cache = !data.bits.block64(pi);
        // Go's `scavenged.block64`: the whole block's scavenged bits. Only
        // Go 1.26's padding pages are in use and scavenged, so under Go 1.19
        // this equals the scavenged free pages.
        let scav = data.scavenged.block64(pi);
        data.bits.set_block64(pi, cache);
        data.scavenged.clear_block64(pi, scav & cache);
        self.update(lin, PAGE_CACHE_PAGES, false, true);
        self.scav.on_alloc(ci, u64::from(cache.count_ones()));
        self.search_addr = lin + (PAGE_CACHE_PAGES - 1) * PAGE_SIZE;
        Ok(PageCache {
            base: self.ly.unlin(lin),
            cache,
            scav,
        })
    }

    /// Page caches are Go's, for its 8 KiB pages: a custom page size has none.
    fn check_cache_layout(&self) -> Result<()> {
        if self.ly.page_shift != crate::arch::PAGE_SHIFT {
            return Err(Error::BadLayout(format!(
                "page caches work on 8 KiB pages, not this layout's {}",
                self.ly.page_size()
            )));
        }
        Ok(())
    }

    /// Checks that a cache's block lies in a grown chunk and that its cached
    /// pages are in use and unscavenged here; returns the block's linearized
    /// base and first page index.
    fn check_cache_block(&self, c: &PageCache) -> Result<(u64, u64)> {
        self.check_cache_layout()?;
        let lin = self.ly.lin_checked(c.base, PAGE_CACHE_PAGES * PAGE_SIZE)?;
        let ci = lin >> LOG_PALLOC_CHUNK_BYTES;
        if !self.is_grown(ci) {
            return Err(Error::OutOfHeap {
                addr: c.base,
                npages: PAGE_CACHE_PAGES,
            });
        }
        let pi = chunk_page_index(lin);
        let data = self.data(ci);
        // Cached pages must be in use and unscavenged here.
        let bad = c.cache & (!data.bits.block64(pi) | data.scavenged.block64(pi));
        if bad != 0 {
            let i = bad.trailing_zeros() as u64;
            return Err(Error::NotInUse {
                addr: c.base,
                npages: PAGE_CACHE_PAGES,
                page: c.base + i * PAGE_SIZE,
            });
        }
        Ok((lin, pi))
    }
}
