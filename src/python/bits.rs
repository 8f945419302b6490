//! `PallocBits` (one chunk's bitmap) and `PageCache` (Go 1.19's page cache).

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;

use super::alloc::PyPageAlloc;
use super::{Bitmap, Npages, U64};
use crate::arch::PALLOC_CHUNK_PAGES;
use crate::bits::{self, PallocBits};
use crate::PageCache;

/// One chunk's 512-page bitmap (Go's pallocBits): bit i is page i, 1 = in use.
#[pyclass(name = "PallocBits", module = "pagealloc._pagealloc", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyPallocBits(PallocBits);

#[pymethods]
impl PyPallocBits {
    #[new]
    #[pyo3(signature = (value = None))]
    fn new(value: Option<Bitmap>) -> Self {
        PyPallocBits(value.map_or(PallocBits::EMPTY, |b| b.0))
    }

    /// A bitmap with the given (first page, page count) runs in use; runs
    /// of length zero are ignored.
    #[staticmethod]
    fn from_ranges(ranges: Vec<(U64, U64)>) -> PyResult<Self> {
        let mut b = PallocBits::EMPTY;
        for (i, n) in ranges.into_iter().filter(|r| r.1 .0 != 0) {
            bits::check_range(i.0, n.0)?;
            b.alloc_range(i.0, n.0);
        }
        Ok(PyPallocBits(b))
    }
    /// The 512 bits as an int, bit i = page i.
    #[getter]
    fn value(&self) -> Bitmap {
        Bitmap(self.0)
    }

    fn __int__(&self) -> Bitmap {
        Bitmap(self.0)
    }

    /// Whether page i is in use.
    fn __getitem__(&self, i: U64) -> PyResult<bool> {
        if i.0 >= PALLOC_CHUNK_PAGES {
            return Err(PyIndexError::new_err(format!(
                "page index {} out of range [0, 512)",
                i.0
            )));
        }
        Ok(self.0.get(i.0))
    }

    fn __len__(&self) -> usize {
        PALLOC_CHUNK_PAGES as usize
    }
    /// Pages in use.
    #[getter]
    fn pages_in_use(&self) -> u64 {
        self.0.pages_in_use()
    }

    /// Go's find: (index of the lowest run of npages free pages or None, the
    /// first free page met in the scan). The scan starts at the 64-page word
    /// holding search_idx; every page below search_idx must be in use.
    #[pyo3(signature = (npages, search_idx = U64(0)))]
    fn find(&self, npages: Npages, search_idx: U64) -> PyResult<(Option<u64>, u64)> {
        Ok(self.0.try_find(npages.0, search_idx.0)?)
    }

    /// Go's allocRange: marks pages [i, i+n) in use (n >= 1).
    fn alloc_range(&mut self, i: U64, n: U64) -> PyResult<()> {
        bits::check_range(i.0, n.0)?;
        self.0.alloc_range(i.0, n.0);
        Ok(())
    }

    /// Go's free: marks pages [i, i+n) free (n >= 1).
    fn free(&mut self, i: U64, n: U64) -> PyResult<()> {
        bits::check_range(i.0, n.0)?;
        self.0.free(i.0, n.0);
        Ok(())
    }

    /// Go's free1: marks page i free.
    fn free1(&mut self, i: U64) -> PyResult<()> {
        bits::check_range(i.0, 1)?;
        self.0.free1(i.0);
        Ok(())
    }

    /// Go's allocAll: marks every page in use.
    fn alloc_all(&mut self) {
        self.0.alloc_all();
    }

    /// Go's freeAll: marks every page free.
    fn free_all(&mut self) {
        self.0.free_all();
    }

    /// Go's summarize: (start, max, end) of the free pages.
    fn summarize(&self) -> (u64, u64, u64) {
        self.0.summarize_fields()
    }

    /// The maximal runs of in-use pages, ascending, as (first, count).
    fn runs(&self) -> Vec<(u64, u64)> {
        self.0.runs()
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    fn __repr__(&self) -> String {
        format!("PallocBits.from_ranges({:?})", self.0.runs())
    }
}

/// Go 1.19's pageCache: up to 64 free pages of one 64-page-aligned block,
/// owned by one user. Bit i of `cache`: page base + i*8192 is free for this
/// cache; bit i of `scav`: that page is scavenged.
#[pyclass(name = "PageCache", module = "pagealloc._pagealloc", eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyPageCache(pub(crate) PageCache);

#[pymethods]
impl PyPageCache {
    #[new]
    #[pyo3(signature = (base = U64(0), cache = U64(0), scav = U64(0)))]
    fn new(base: U64, cache: U64, scav: U64) -> PyResult<Self> {
        Ok(PyPageCache(PageCache::new(base.0, cache.0, scav.0)?))
    }
    #[getter]
    fn base(&self) -> u64 {
        self.0.base
    }
    #[getter]
    fn cache(&self) -> u64 {
        self.0.cache
    }
    #[getter]
    fn scav(&self) -> u64 {
        self.0.scav
    }
    /// Whether no page is left.
    #[getter]
    fn empty(&self) -> bool {
        self.0.empty()
    }

    /// Go's pageCache.alloc: (address of the lowest run of npages cached
    /// pages or None, bytes of it that were scavenged); npages >= 1.
    fn alloc(&mut self, npages: Npages) -> PyResult<(Option<u64>, u64)> {
        Ok(self.0.alloc(npages.0)?)
    }

    /// Go's pageCache.flush: gives the remaining pages back to pa and empties
    /// the cache. ValueError (nothing changes) unless they are in use in pa.
    fn flush(&mut self, pa: &Bound<'_, PyPageAlloc>) -> PyResult<()> {
        Ok(self.0.flush(&mut pa.get().lock())?)
    }

    fn __repr__(&self) -> String {
        format!(
            "PageCache(base={:#x}, cache={:#x}, scav={:#x})",
            self.0.base, self.0.cache, self.0.scav
        )
    }
}
