//! `RangeAllocator`: first fit over the byte offsets of any address space.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;

use super::U64;
use crate::range_allocator::RangeAllocator;

/// A RangeAllocator's counters (bytes, except free_runs).
#[pyclass(
    frozen,
    eq,
    get_all,
    name = "RangeStats",
    module = "pagealloc._pagealloc"
)]
#[derive(PartialEq)]
pub(crate) struct PyRangeStats {
    size: u64,
    page_size: u64,
    in_use: u64,
    free: u64,
    largest_free: u64,
    free_runs: u64,
}

#[pymethods]
impl PyRangeStats {
    fn __repr__(&self) -> String {
        format!(
            "RangeStats(size={}, page_size={}, in_use={}, free={}, largest_free={}, free_runs={})",
            self.size, self.page_size, self.in_use, self.free, self.largest_free, self.free_runs
        )
    }
}

/// Exact first fit over offsets [0, size) of any space (a file, a GPU
/// buffer, a device's memory), in pages of page_size bytes.
#[pyclass(frozen, name = "RangeAllocator", module = "pagealloc._pagealloc")]
pub(crate) struct PyRangeAllocator {
    inner: Mutex<RangeAllocator>,
}

impl PyRangeAllocator {
    fn lock(&self) -> MutexGuard<'_, RangeAllocator> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyRangeAllocator {
    #[new]
    #[pyo3(signature = (size, page_size = U64(4096)))]
    fn new(py: Python<'_>, size: U64, page_size: U64) -> PyResult<Self> {
        let inner = py.detach(|| RangeAllocator::new(size.0, page_size.0))?;
        Ok(PyRangeAllocator {
            inner: Mutex::new(inner),
        })
    }

    /// The lowest offset of nbytes (rounded up to pages) that is a multiple
    /// of align bytes (default: the page size); None when nothing fits.
    #[pyo3(signature = (nbytes, align = None))]
    fn alloc(&self, nbytes: U64, align: Option<U64>) -> PyResult<Option<u64>> {
        let mut ra = self.lock();
        let align = align.map_or(ra.page_size(), |a| a.0);
        Ok(ra.alloc(nbytes.0, align)?)
    }

    /// nbytes (rounded up to pages) in at most max_extents runs, all or
    /// nothing: a list of (offset, nbytes), or None (nothing changed).
    fn alloc_extents(&self, nbytes: U64, max_extents: U64) -> PyResult<Option<Vec<(u64, u64)>>> {
        let max = usize::try_from(max_extents.0).unwrap_or(usize::MAX);
        Ok(self.lock().alloc_extents(nbytes.0, max)?)
    }

    /// Whether alloc(nbytes, align) would succeed, taking nothing.
    #[pyo3(signature = (nbytes, align = None))]
    fn would_fit(&self, nbytes: U64, align: Option<U64>) -> PyResult<bool> {
        let mut ra = self.lock();
        let align = align.map_or(ra.page_size(), |a| a.0);
        Ok(ra.would_fit(nbytes.0, align)?)
    }

    /// The most bytes alloc(nbytes, align) would serve now (whole pages).
    #[pyo3(signature = (align = None))]
    fn largest_free(&self, align: Option<U64>) -> PyResult<u64> {
        let mut ra = self.lock();
        let align = align.map_or(ra.page_size(), |a| a.0);
        Ok(ra.largest_free(align)?)
    }

    /// Frees nbytes (rounded up to pages) at offset.
    fn free(&self, offset: U64, nbytes: U64) -> PyResult<()> {
        Ok(self.lock().free(offset.0, nbytes.0)?)
    }

    /// Claims exactly nbytes (rounded up to pages) at offset; ValueError
    /// unless they are all free.
    fn alloc_at(&self, offset: U64, nbytes: U64) -> PyResult<()> {
        Ok(self.lock().alloc_at(offset.0, nbytes.0)?)
    }

    /// Grows the space to new_size bytes in all.
    fn grow(&self, py: Python<'_>, new_size: U64) -> PyResult<()> {
        Ok(py.detach(|| self.lock().grow(new_size.0))?)
    }

    fn stats(&self) -> PyRangeStats {
        let s = self.lock().stats();
        PyRangeStats {
            size: s.size,
            page_size: s.page_size,
            in_use: s.in_use,
            free: s.free,
            largest_free: s.largest_free,
            free_runs: s.free_runs,
        }
    }

    #[getter]
    fn size(&self) -> u64 {
        self.lock().size()
    }

    #[getter]
    fn page_size(&self) -> u64 {
        self.lock().page_size()
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.lock().verify())?)
    }

    fn __repr__(&self) -> String {
        let s = self.lock().stats();
        format!(
            "<RangeAllocator size={} page_size={} in_use={} largest_free={}>",
            s.size, s.page_size, s.in_use, s.largest_free
        )
    }
}
