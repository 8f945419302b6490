//! [`RangeAllocator`]: exact first fit over the offsets `[0, size)` of any
//! address space (a file, a GPU buffer, a device's memory), in bytes.
//!
//! It is a [`PageAlloc`] in which one of the engine's pages stands for one
//! of the caller's pages (`page_size` bytes, any power of two): offset `o`
//! is engine page `o / page_size`, counted from an engine address that is
//! aligned to 2^46 bytes, so an alignment of up to 2^33 pages means the same
//! in both. The engine grows in chunks of 512 pages; pages of the last chunk
//! past `size` are held in use so that nothing is ever placed there, and
//! `grow` releases them as the space grows.

use crate::arch::{Arch, PAGE_SHIFT, PALLOC_CHUNK_PAGES};
use crate::error::{Error, Result};
use crate::PageAlloc;

/// Engine address of offset 0 (arm64 preset: linear = real).
const BASE: u64 = 1 << 46;
/// The most pages a RangeAllocator can address: up to the top of the
/// engine's 48-bit space.
const MAX_PAGES: u64 = ((1 << 48) - BASE) >> PAGE_SHIFT;
/// The largest alignment, in pages, that `BASE` honours.
const MAX_ALIGN_PAGES: u64 = BASE >> PAGE_SHIFT;

/// Counters of a [`RangeAllocator`], in bytes except `free_runs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeStats {
    pub size: u64,
    pub page_size: u64,
    pub in_use: u64,
    pub free: u64,
    /// The largest request that would succeed now.
    pub largest_free: u64,
    pub free_runs: u64,
}

/// First fit over byte offsets; see the module docs.
///
/// Cost: as [`PageAlloc`]'s operations on `nbytes / page_size` pages.
#[derive(Debug)]
pub struct RangeAllocator {
    pa: PageAlloc,
    page_size: u64,
    page_shift: u32,
    /// Usable pages: `size / page_size`.
    pages: u64,
    /// Pages grown in the engine (a multiple of 512); those in
    /// `[pages, grown)` are held in use.
    grown: u64,
    in_use: u64,
}

impl RangeAllocator {
    /// Offsets `[0, size)` in pages of `page_size` bytes (a power of two);
    /// `size` is a whole number of pages (else `RangeNotWholePages`).
    pub fn new(size: u64, page_size: u64) -> Result<RangeAllocator> {
        if !page_size.is_power_of_two() {
            return Err(Error::BadPageSize { page_size });
        }
        let mut ra = RangeAllocator {
            // Go 1.19's: no scavenger works on a range allocator, so
            // Go 1.26's per-chunk index would be kept for nothing.
            pa: PageAlloc::builder(Arch::Arm64)
                .go(crate::GoVersion::Go119)
                .build()?,
            page_size,
            page_shift: page_size.trailing_zeros(),
            pages: 0,
            grown: 0,
            in_use: 0,
        };
        ra.grow(size)?;
        Ok(ra)
    }

    /// Grows the space to `new_size` bytes in all (never shrinks), a whole
    /// number of pages.
    pub fn grow(&mut self, new_size: u64) -> Result<()> {
        let pages = new_size >> self.page_shift;
        if pages < self.pages || pages > MAX_PAGES {
            return Err(Error::BadRangeSize {
                size: new_size,
                current: self.pages << self.page_shift,
                max: MAX_PAGES << self.page_shift,
            });
        }
        if new_size & (self.page_size - 1) != 0 {
            return Err(Error::RangeNotWholePages {
                size: new_size,
                page_size: self.page_size,
            });
        }
        if pages == self.pages {
            return Ok(());
        }
        let grown = pages.next_multiple_of(PALLOC_CHUNK_PAGES);
        if grown > self.grown {
            self.pa
                .grow(self.engine(self.grown), (grown - self.grown) << PAGE_SHIFT)?;
        }
        // The old tail is usable now; hold the new one.
        if self.grown > self.pages {
            self.pa
                .free(self.engine(self.pages), self.grown - self.pages)?;
        }
        self.grown = grown.max(self.grown);
        if self.grown > pages {
            self.pa.alloc_at(self.engine(pages), self.grown - pages)?;
        }
        self.pages = pages;
        Ok(())
    }

    /// The lowest offset of `ceil(nbytes / page_size)` free pages that is a
    /// multiple of `align` bytes (a power of two; any alignment up to the
    /// page size is met by every offset), or `None` when nothing fits.
    pub fn alloc(&mut self, nbytes: u64, align: u64) -> Result<Option<u64>> {
        let n = self.pages_of(nbytes)?;
        let align_pages = self.align_pages(align)?;
        let (a, _) = self.pa.alloc_constrained(n, align_pages, None)?;
        Ok(a.map(|a| {
            self.in_use += n;
            self.offset(a)
        }))
    }

    /// `nbytes` (rounded up to pages) in at most `max_extents` runs of
    /// offsets, all or nothing: [`PageAlloc::alloc_extents`] in bytes,
    /// `(offset, nbytes)` per extent; `None` and nothing changed when it
    /// needs more. Free each extent with `free(offset, nbytes)`.
    pub fn alloc_extents(
        &mut self,
        nbytes: u64,
        max_extents: usize,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        let n = self.pages_of(nbytes)?;
        let Some(ext) = self.pa.alloc_extents(n, max_extents)? else {
            return Ok(None);
        };
        self.in_use += n;
        Ok(Some(
            ext.into_iter()
                .map(|(a, k)| (self.offset(a), k << self.page_shift))
                .collect(),
        ))
    }

    /// Whether `alloc(nbytes, align)` would succeed, taking nothing.
    /// Cost: one search ([`PageAlloc::first_fit`]).
    pub fn would_fit(&mut self, nbytes: u64, align: u64) -> Result<bool> {
        let n = self.pages_of(nbytes)?;
        let a = self.align_pages(align)?;
        self.pa.would_fit(n, a, None)
    }

    /// The most bytes `alloc(nbytes, align)` would serve now (a multiple of
    /// the page size; 0 when the space is full). Cost:
    /// [`PageAlloc::largest_free`].
    pub fn largest_free(&mut self, align: u64) -> Result<u64> {
        let a = self.align_pages(align)?;
        Ok(self.pa.largest_free(a, None)? << self.page_shift)
    }

    /// `align` (bytes, a power of two, at most MAX_ALIGN_PAGES pages) in
    /// pages, at least 1.
    fn align_pages(&self, align: u64) -> Result<u64> {
        let bad_align = Error::RangeBadAlign {
            align,
            page_size: self.page_size,
        };
        if !align.is_power_of_two() {
            return Err(bad_align);
        }
        let align_pages = (align >> self.page_shift).max(1);
        if align_pages > MAX_ALIGN_PAGES {
            return Err(bad_align);
        }
        Ok(align_pages)
    }

    /// Frees `nbytes` (rounded up to pages) at `offset`; they must all be
    /// in use. An error changes nothing.
    pub fn free(&mut self, offset: u64, nbytes: u64) -> Result<()> {
        let (p, n) = self.span(offset, nbytes)?;
        // The engine's error speaks its own addresses: say it in offsets.
        self.pa.free(self.engine(p), n).map_err(|e| match e {
            Error::NotInUse { page, .. } => Error::RangeNotInUse {
                offset,
                nbytes,
                first: self.offset(page),
            },
            e => e,
        })?;
        self.in_use -= n;
        Ok(())
    }

    /// Claims exactly `nbytes` (rounded up to pages) at `offset`; they must
    /// all be free. An error changes nothing.
    pub fn alloc_at(&mut self, offset: u64, nbytes: u64) -> Result<()> {
        let (p, n) = self.span(offset, nbytes)?;
        self.pa.alloc_at(self.engine(p), n).map_err(|e| match e {
            Error::NotFree { page, .. } => Error::RangeNotFree {
                offset,
                nbytes,
                first: self.offset(page),
            },
            e => e,
        })?;
        self.in_use += n;
        Ok(())
    }

    /// The counters. O(pages / 64) for the free runs.
    pub fn stats(&self) -> RangeStats {
        let shift = self.page_shift;
        // The held tail is in use in the engine, so runs stop at `pages`.
        let largest = self.pa.largest_free_run();
        RangeStats {
            size: self.pages << shift,
            page_size: self.page_size,
            in_use: self.in_use << shift,
            free: (self.pages - self.in_use) << shift,
            largest_free: largest << shift,
            free_runs: self.pa.free_run_count(),
        }
    }

    /// Checks the engine's invariants and the counters.
    pub fn verify(&self) -> Result<()> {
        self.pa.verify()?;
        if self.pa.pages_in_use() != self.in_use + (self.grown - self.pages) {
            return Err(Error::Verify(format!(
                "range allocator: {} pages in use, engine says {}",
                self.in_use,
                self.pa.pages_in_use() - (self.grown - self.pages)
            )));
        }
        Ok(())
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Usable bytes: `size` rounded down to pages.
    pub fn size(&self) -> u64 {
        self.pages << self.page_shift
    }

    fn engine(&self, page: u64) -> u64 {
        BASE + (page << PAGE_SHIFT)
    }

    fn offset(&self, engine: u64) -> u64 {
        ((engine - BASE) >> PAGE_SHIFT) << self.page_shift
    }

    fn pages_of(&self, nbytes: u64) -> Result<u64> {
        if nbytes == 0 {
            return Err(Error::RangeZeroBytes);
        }
        Ok(nbytes.div_ceil(self.page_size))
    }

    /// Checks `[offset, offset + nbytes)` against the space and returns it
    /// in pages.
    fn span(&self, offset: u64, nbytes: u64) -> Result<(u64, u64)> {
        let n = self.pages_of(nbytes)?;
        if offset % self.page_size != 0 {
            return Err(Error::RangeMisaligned {
                offset,
                page_size: self.page_size,
            });
        }
        let p = offset >> self.page_shift;
        if p.checked_add(n).is_none_or(|end| end > self.pages) {
            return Err(Error::OutOfRange {
                offset,
                nbytes,
                size: self.size(),
            });
        }
        Ok((p, n))
    }
}
