//! The Python binding (`pagealloc._pagealloc`): the only code that knows Python.
//!
//! This file holds what every class shares (the typed arguments, the error
//! mapping) and the module; one file per concern below it: `layout`
//! (Layout and the summary functions), `bits` (PallocBits, PageCache),
//! `alloc` (PageAlloc, Occupancy), `heap` (Heap, Span: real pages as
//! buffers), `range_allocator` (RangeAllocator), `trace` (TraceReplay), `numpy`
//! (NumPy's allocator served by a Heap, NEP 49).
//!
//! It is thin on purpose. Arguments arrive as typed parameters ([`U64`],
//! [`ArchArg`], [`Bitmap`]) whose extraction raises `TypeError` for the wrong
//! type and `ValueError` naming the value when it is out of range (PyO3 adds
//! the parameter's name as a note). Everything about the allocator itself is
//! checked by the engine, and every engine error reaches Python through one
//! mapping (`impl From<Error> for PyErr`). The extension never imports the
//! Python package: `stats()` and `render_map()` are Python code on top of the
//! typed `Occupancy` this module returns.
//!
//! Locking rule: `PageAlloc` guards its engine with a mutex, like Go's
//! allocator under the heap lock, and the mutex is never held while waiting
//! for the GIL. Short operations lock while attached; long ones (`grow`,
//! `verify`, `from_chunks`, the bulk calls, `TraceReplay.run`) detach from
//! the interpreter first and lock inside, so a thread holding the GIL and
//! waiting for the mutex never waits on a thread that waits for the GIL.

use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

use crate::arch::Arch;
use crate::bits::{PallocBits, WORDS};
use crate::error::Error;
use crate::trace::TraceError;

mod alloc;
mod bits;
mod heap;
mod layout;
mod numpy;
mod range_allocator;
mod trace;

create_exception!(
    _pagealloc,
    CorruptionError,
    PyRuntimeError,
    "The allocator's summaries disagree with its bitmaps (raised by verify(), or where Go throws \"bad summary data\")."
);

/// The one mapping of engine errors to Python exceptions: refused memory is
/// `MemoryError`, broken invariants are `CorruptionError`, everything else is
/// a bad argument, `ValueError`.
impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Reserve { .. }
            | Error::Commit { .. }
            | Error::HeapFull { .. }
            | Error::HeapTooLarge { .. } => PyMemoryError::new_err(msg),
            Error::Verify(_) | Error::Corrupt(_) => CorruptionError::new_err(msg),
            _ => PyValueError::new_err(msg),
        }
    }
}

impl From<TraceError> for PyErr {
    fn from(e: TraceError) -> PyErr {
        PyValueError::new_err(e.to_string())
    }
}

/// An int argument in `[0, 2**64)`; otherwise ValueError "{bad_value}, got
/// REPR" for an int out of range and TypeError "{bad_type}, got TYPE" for
/// anything else, so each argument type words its errors in the caller's
/// terms and this stays the one place that reads the int.
#[inline]
pub(crate) fn int_arg(
    ob: Borrowed<'_, '_, PyAny>,
    bad_value: &str,
    bad_type: &str,
) -> PyResult<u64> {
    if let Ok(v) = ob.extract::<u64>() {
        return Ok(v);
    }
    if ob.is_instance_of::<PyInt>() {
        Err(PyValueError::new_err(format!(
            "{bad_value}, got {}",
            ob.repr()?
        )))
    } else {
        Err(PyTypeError::new_err(format!(
            "{bad_type}, got {}",
            ob.get_type().name()?
        )))
    }
}

/// An integer argument in `[0, 2**64)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct U64(pub(crate) u64);

impl<'a, 'py> FromPyObject<'a, 'py> for U64 {
    type Error = PyErr;

    #[inline]
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<U64> {
        int_arg(ob, "expected an integer in [0, 2**64)", "expected an int").map(U64)
    }
}

/// A page count argument (`npages`): an integer in `[0, 2**64)`; a bad
/// value's error names the argument, as an error in the caller's terms.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Npages(pub(crate) u64);

impl<'a, 'py> FromPyObject<'a, 'py> for Npages {
    type Error = PyErr;

    #[inline]
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Npages> {
        int_arg(
            ob,
            "npages must be a page count in [1, 2**64)",
            "npages must be an int (a page count)",
        )
        .map(Npages)
    }
}

impl U64 {
    /// As a count or index: values past `usize` saturate (they are out of
    /// range for whatever they index, and the engine says so).
    pub(crate) fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A layout preset name: "amd64", "arm64" or "386".
#[derive(Clone, Copy)]
pub(crate) struct ArchArg(pub(crate) Arch);

impl<'a, 'py> FromPyObject<'a, 'py> for ArchArg {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<ArchArg> {
        Ok(ArchArg(ob.extract::<String>()?.parse::<Arch>()?))
    }
}

pub(crate) const AMD64: ArchArg = ArchArg(Arch::Amd64);

/// A Go version argument: `"1.19"` or `"1.26"` (also `"go1.26"`).
#[derive(Clone, Copy)]
pub(crate) struct GoArg(pub(crate) crate::GoVersion);

impl<'a, 'py> FromPyObject<'a, 'py> for GoArg {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<GoArg> {
        let s: String = ob.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "go must be a version string such as \"1.26\", got {}",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        Ok(GoArg(crate::GoVersion::parse(&s)?))
    }
}

pub(crate) const GO_DEFAULT: GoArg = GoArg(crate::GoVersion::Go126);

/// A 512-bit chunk bitmap as a Python int, bit i = page i.
pub(crate) struct Bitmap(pub(crate) PallocBits);

impl<'a, 'py> FromPyObject<'a, 'py> for Bitmap {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Bitmap> {
        if !ob.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "bitmap must be an int, got {}",
                ob.get_type().name()?
            )));
        }
        let bytes = ob
            .call_method1("to_bytes", (WORDS * 8, "little"))
            .map_err(|_| {
                PyValueError::new_err(format!(
                    "bitmap must be an integer in [0, 2**512), got {}",
                    ob.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
        let bytes = bytes.cast::<PyBytes>()?.as_bytes();
        let mut b = PallocBits::EMPTY;
        for (w, le) in b.0.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(le.try_into().expect("chunks of 8 bytes"));
        }
        Ok(Bitmap(b))
    }
}

impl<'py> IntoPyObject<'py> for Bitmap {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut buf = [0u8; WORDS * 8];
        for (le, w) in buf.chunks_exact_mut(8).zip(self.0 .0) {
            le.copy_from_slice(&w.to_le_bytes());
        }
        py.get_type::<PyInt>()
            .call_method1("from_bytes", (PyBytes::new(py, &buf), "little"))
    }
}

/// Go's runtime page allocator core, in Rust.
#[pymodule]
mod _pagealloc {
    #[pymodule_export]
    use super::alloc::{PyOccupancy, PyPageAlloc};
    #[pymodule_export]
    use super::bits::{PyPageCache, PyPallocBits};
    #[pymodule_export]
    use super::heap::{PyHeap, PyHeapCounters, PySpan};
    #[pymodule_export]
    use super::layout::{
        find_bit_range64, layout, merge_summaries, pack_summary, unpack_summary, PyLayout,
    };
    #[pymodule_export]
    use super::numpy::{numpy_heap, PyNumpyHeap};
    #[pymodule_export]
    use super::range_allocator::{PyRangeAllocator, PyRangeStats};
    #[pymodule_export]
    use super::trace::PyTraceReplay;

    use super::*;
    use crate::arch::{PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("PAGE_SIZE", PAGE_SIZE)?;
        m.add("PALLOC_CHUNK_PAGES", PALLOC_CHUNK_PAGES)?;
        m.add("PALLOC_CHUNK_BYTES", PALLOC_CHUNK_BYTES)?;
        m.add("BASE_CHUNK_IDX", Arch::Amd64.layout().base_chunk_idx())?;
        m.add("ARCHES", Arch::ALL.map(|a| a.name()))?;
        m.add("HEAP_ARENA_BYTES", crate::heap::HEAP_ARENA_BYTES)?;
        m.add("CorruptionError", py.get_type::<CorruptionError>())?;
        Ok(())
    }
}
