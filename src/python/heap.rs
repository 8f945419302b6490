//! `Heap` and `Span`: real pages as zero-copy, writable buffers.
//!
//! Lifetimes, which make every reachable address valid: a buffer exported
//! by a `Span` holds a reference to the span, a span holds one to its heap,
//! and the heap unmaps its memory only when it is dropped. A span's pages go
//! back to the heap on `free()` (refused while a buffer is exported) or when
//! the span itself is collected.

use std::ffi::c_int;
use std::ptr::NonNull;
use std::sync::Mutex;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use super::Npages;
use super::U64;
use crate::arch::PAGE_SIZE;
use crate::heap::Heap;

/// Allocations above this many pages release the GIL while they run.
const DETACH_ABOVE_PAGES: u64 = 32;

/// A heap's counters, read under one lock: the data behind `Heap.stats()`.
#[pyclass(
    frozen,
    get_all,
    name = "HeapCounters",
    module = "pagealloc._pagealloc"
)]
pub(crate) struct PyHeapCounters {
    in_use: u64,
    free: u64,
    released: u64,
    retained: u64,
    arenas: u64,
    metadata_committed: u64,
}

/// Go's mheap in miniature: page spans of real memory over an address range
/// the heap reserves itself (see the Heap guide, docs/guides/heap.md).
#[pyclass(frozen, subclass, name = "Heap", module = "pagealloc._pagealloc")]
pub(crate) struct PyHeap {
    pub(crate) inner: Heap,
}

#[pymethods]
impl PyHeap {
    /// Reserves max_bytes of address space (no memory yet).
    #[new]
    #[pyo3(signature = (max_bytes = U64(64 << 30)))]
    fn new(py: Python<'_>, max_bytes: U64) -> PyResult<Self> {
        Ok(PyHeap {
            inner: py.detach(|| Heap::new(max_bytes.0))?,
        })
    }

    /// A Span of npages pages (8 KiB each), zeroed unless zero=False.
    #[pyo3(signature = (npages, zero = true))]
    fn alloc(slf: &Bound<'_, Self>, npages: Npages, zero: bool) -> PyResult<PySpan> {
        let py = slf.py();
        let heap = slf.get();
        let alloc = || heap.inner.alloc(npages.0, zero).map(|p| p.as_ptr() as u64);
        // Small spans are quicker to allocate (and clear) than a round trip
        // of the GIL; larger ones may clear or grow a lot, so they let other
        // threads run meanwhile. (The heap lock is never held while waiting
        // for the GIL, so either way no thread can deadlock.)
        let addr = if npages.0 <= DETACH_ABOVE_PAGES {
            alloc()?
        } else {
            py.detach(alloc)?
        };
        Ok(PySpan {
            heap: slf.clone().unbind(),
            addr,
            npages: npages.0,
            state: Mutex::new(SpanState {
                alive: true,
                exports: 0,
            }),
        })
    }

    /// npages pages in at most max_extents Spans, all or nothing: one Span
    /// when they fit (growing if needed), else the longest free runs first
    /// of the full heap; None when even that needs more.
    #[pyo3(signature = (npages, max_extents, zero = true))]
    fn alloc_extents(
        slf: &Bound<'_, Self>,
        npages: Npages,
        max_extents: U64,
        zero: bool,
    ) -> PyResult<Option<Vec<PySpan>>> {
        let heap = slf.get();
        let max = usize::try_from(max_extents.0).unwrap_or(usize::MAX);
        let got = slf.py().detach(|| {
            heap.inner.alloc_extents(npages.0, max, zero).map(|e| {
                e.map(|v| {
                    v.into_iter()
                        .map(|(p, n)| (p.as_ptr() as u64, n))
                        .collect::<Vec<_>>()
                })
            })
        })?;
        Ok(got.map(|v| {
            v.into_iter()
                .map(|(addr, n)| PySpan {
                    heap: slf.clone().unbind(),
                    addr,
                    npages: n,
                    state: Mutex::new(SpanState {
                        alive: true,
                        exports: 0,
                    }),
                })
                .collect()
        }))
    }

    /// Returns at least nbytes of free memory to the OS now (madvise), highest
    /// addresses first; returns the bytes released.
    fn scavenge(&self, py: Python<'_>, nbytes: U64) -> PyResult<u64> {
        Ok(py.detach(|| self.inner.scavenge(nbytes.0))?)
    }

    /// None, or the bytes of retained memory a background scavenger keeps
    /// the heap at or under.
    #[getter]
    fn get_memory_limit(&self) -> Option<u64> {
        self.inner.memory_limit()
    }
    #[setter]
    fn set_memory_limit(&self, limit: Option<U64>) {
        self.inner.set_memory_limit(limit.map(|l| l.0));
    }

    /// None, or the most bytes of free memory the heap keeps resident for
    /// allocations to come (stats()["free"] - stats()["released"]): a free
    /// that leaves more releases the excess at once, highest addresses
    /// first, and so does setting it. A budget of 0 returns every freed page
    /// at once; None keeps every freed page. Default: 256 MiB.
    #[getter]
    fn get_idle_budget(&self) -> Option<u64> {
        self.inner.idle_budget()
    }
    #[setter]
    fn set_idle_budget(&self, budget: Option<U64>) {
        self.inner.set_idle_budget(budget.map(|b| b.0));
    }

    /// The most pages one alloc would serve now (growing if it must).
    fn largest_free(&self) -> PyResult<u64> {
        Ok(self.inner.largest_free()?)
    }

    /// Whether alloc(npages) would succeed now (growing if it must).
    fn would_fit(&self, npages: Npages) -> PyResult<bool> {
        Ok(self.inner.would_fit(npages.0)?)
    }

    /// Reserved bytes (max_bytes rounded up to 4 MiB).
    #[getter]
    fn max_bytes(&self) -> u64 {
        self.inner.max_bytes()
    }

    /// The heap's first address.
    #[getter]
    fn base(&self) -> u64 {
        self.inner.base()
    }

    /// The counters behind stats(), read under one lock.
    fn counters(&self) -> PyHeapCounters {
        let s = self.inner.stats();
        PyHeapCounters {
            in_use: s.in_use,
            free: s.free,
            released: s.released,
            retained: s.retained,
            arenas: s.arenas,
            metadata_committed: s.metadata_committed,
        }
    }

    /// Checks the allocator and the heap's counters; raises CorruptionError.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.inner.verify())?)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "<Heap base={:#x} max_bytes={} in_use={} retained={} released={} arenas={}>",
            self.inner.base(),
            self.inner.max_bytes(),
            s.in_use,
            s.retained,
            s.released,
            s.arenas
        )
    }
}

struct SpanState {
    /// Until `free()` (or collection) gives the pages back.
    alive: bool,
    /// Buffers exported and not yet released.
    exports: usize,
}

/// npages contiguous pages of a Heap: a writable buffer (format "B").
#[pyclass(frozen, name = "Span", module = "pagealloc._pagealloc")]
pub(crate) struct PySpan {
    heap: Py<PyHeap>,
    addr: u64,
    npages: u64,
    /// Invariant: while `alive`, the pages `[addr, addr + npages * 8 KiB)`
    /// are in use in `heap` and belong to this span alone.
    state: Mutex<SpanState>,
}

impl PySpan {
    fn state(&self) -> std::sync::MutexGuard<'_, SpanState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len_bytes(&self) -> u64 {
        self.npages * PAGE_SIZE
    }

    /// The pages go back to `heap` and the span state says so.
    fn give_back(
        heap: &Py<PyHeap>,
        addr: u64,
        npages: u64,
        st: &mut SpanState,
    ) -> crate::Result<()> {
        let p = NonNull::new(addr as *mut u8).expect("spans are never at 0");
        heap.get().inner.free(p, npages)?;
        st.alive = false;
        Ok(())
    }
}

#[pymethods]
impl PySpan {
    /// The first byte's address (8 KiB-aligned).
    #[getter]
    fn address(&self) -> u64 {
        self.addr
    }
    #[getter]
    fn npages(&self) -> u64 {
        self.npages
    }
    #[getter]
    fn nbytes(&self) -> u64 {
        self.len_bytes()
    }
    /// The heap the span came from.
    #[getter]
    fn heap(&self, py: Python<'_>) -> Py<PyHeap> {
        self.heap.clone_ref(py)
    }
    /// False once freed.
    #[getter]
    fn alive(&self) -> bool {
        self.state().alive
    }

    /// Gives the pages back to the heap (not to the OS). BufferError while a
    /// buffer of the span is exported; ValueError when already freed.
    fn free(&self) -> PyResult<()> {
        let mut st = self.state();
        if !st.alive {
            return Err(PyValueError::new_err(format!(
                "span at {:#x} ({} pages) already freed",
                self.addr, self.npages
            )));
        }
        if st.exports > 0 {
            return Err(PyBufferError::new_err(format!(
                "cannot free a span with {} exported buffer(s); release them first",
                st.exports
            )));
        }
        Ok(PySpan::give_back(
            &self.heap,
            self.addr,
            self.npages,
            &mut st,
        )?)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Frees the span (if still alive) on leaving a `with` block.
    fn __exit__(
        &self,
        _ty: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if self.state().alive {
            self.free()?;
        }
        Ok(false)
    }

    fn __len__(&self) -> usize {
        self.len_bytes() as usize
    }

    /// # Safety
    /// Called by Python with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let span = slf.get();
        let mut st = span.state();
        if !st.alive {
            return Err(PyValueError::new_err(format!(
                "span at {:#x} ({} pages) already freed: no buffer of it",
                span.addr, span.npages
            )));
        }
        let len = ffi::Py_ssize_t::try_from(span.len_bytes())
            .map_err(|_| PyBufferError::new_err("span too large for a buffer"))?;
        // SAFETY: `view` is Python's to fill; the memory is the span's live
        // pages (alive, checked under the state lock), which stay valid
        // while the buffer holds its reference to the span (FillInfo takes
        // one): free() refuses while `exports > 0` and the heap outlives
        // the span.
        let rc = unsafe {
            ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                span.addr as *mut std::ffi::c_void,
                len,
                0,
                flags,
            )
        };
        if rc != 0 {
            return Err(PyErr::fetch(slf.py()));
        }
        st.exports += 1;
        Ok(())
    }

    /// # Safety
    /// Called by Python for a view that `__getbuffer__` filled.
    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {
        let mut st = self.state();
        st.exports = st.exports.saturating_sub(1);
    }

    fn __repr__(&self) -> String {
        let st = self.state();
        format!(
            "<Span address={:#x} npages={} {}>",
            self.addr,
            self.npages,
            if st.alive { "alive" } else { "freed" }
        )
    }
}

impl Drop for PySpan {
    fn drop(&mut self) {
        // A span collected while alive gives its pages back: no buffer can
        // exist (each holds a reference to the span).
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.alive {
            // The pages are this span's: the heap accepts them.
            let _ = PySpan::give_back(&self.heap, self.addr, self.npages, st);
        }
    }
}
