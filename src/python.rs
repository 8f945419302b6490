//! The Python binding (`pagealloc._pagealloc`): the only file that knows Python.
//!
//! It converts arguments (with errors that name the bad value), maps engine
//! errors to Python exceptions in one place ([`to_py`]), and guards the engine
//! with a mutex so that a `PageAlloc` shared between Python threads behaves
//! like Go's allocator under its heap lock.
//!
//! Locking rule: the engine mutex is never held while waiting for the GIL.
//! Short operations lock it while attached; long ones (`grow`, `verify`,
//! `from_chunks`) detach from the interpreter first and lock inside, so a
//! thread holding the GIL and waiting for the mutex can never wait on a
//! thread that is waiting for the GIL.

use std::sync::{Mutex, MutexGuard};

use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyTuple};

use crate::arch::{
    Arch, Layout as EngineLayout, PAGE_SIZE, PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES,
};
use crate::bits::{self, PallocBits as EngineBits, WORDS};
use crate::error::Error;
use crate::pagealloc::PageAlloc as Engine;
use crate::summary::{PallocSum, SumFormat};
use crate::trace::{results_file, Op, Replay, Trace, TraceError};

create_exception!(
    _pagealloc,
    CorruptionError,
    PyRuntimeError,
    "The allocator's summaries disagree with its bitmaps (raised by verify(), or where Go throws \"bad summary data\")."
);

/// Maps an engine error to its Python exception: bad arguments are
/// `ValueError`, refused memory is `MemoryError`, broken invariants are
/// `CorruptionError`.
fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Reserve { .. } | Error::Commit { .. } => PyMemoryError::new_err(msg),
        Error::Verify(_) | Error::Corrupt(_) => CorruptionError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// An unsigned 64-bit argument: `TypeError` for a non-int, `ValueError`
/// naming the value when it is negative or 2**64 or more.
fn u64_arg(ob: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    if let Ok(v) = ob.extract::<u64>() {
        return Ok(v);
    }
    if ob.is_instance_of::<PyInt>() {
        Err(PyValueError::new_err(format!(
            "{name} must be an integer in [0, 2**64), got {}",
            ob.repr()?
        )))
    } else {
        Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            ob.get_type().name()?
        )))
    }
}

fn arch_arg(arch: &str) -> PyResult<Arch> {
    arch.parse::<Arch>().map_err(to_py)
}

/// A `(i, n)` page range inside one chunk, `n >= 1`.
fn page_range(i: u64, n: u64) -> PyResult<(u64, u64)> {
    if n == 0 || i.checked_add(n).is_none_or(|e| e > PALLOC_CHUNK_PAGES) {
        return Err(to_py(Error::BadRange { i, n }));
    }
    Ok((i, n))
}

fn bits_to_int<'py>(py: Python<'py>, b: &EngineBits) -> PyResult<Bound<'py, PyAny>> {
    let mut buf = [0u8; WORDS * 8];
    for (k, w) in b.0.iter().enumerate() {
        buf[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    py.get_type::<PyInt>()
        .call_method1("from_bytes", (PyBytes::new(py, &buf), "little"))
}

fn int_to_bits(ob: &Bound<'_, PyAny>) -> PyResult<EngineBits> {
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
    let mut b = EngineBits::EMPTY;
    for (k, w) in b.0.iter_mut().enumerate() {
        *w = u64::from_le_bytes(bytes[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
    }
    Ok(b)
}

/// The constants of one layout preset (Go's per-GOARCH constants).
#[pyclass(frozen, name = "Layout", module = "pagealloc._pagealloc")]
struct Layout(EngineLayout);

#[pymethods]
impl Layout {
    /// The preset name: "amd64", "arm64" or "386".
    #[getter]
    fn arch(&self) -> &'static str {
        self.0.arch.name()
    }
    /// heapAddrBits.
    #[getter]
    fn heap_addr_bits(&self) -> u32 {
        self.0.heap_addr_bits
    }
    /// arenaBaseOffset, added (mod 2**64) to linearize addresses.
    #[getter]
    fn arena_base_offset(&self) -> u64 {
        self.0.arena_base_offset
    }
    /// summaryLevels.
    #[getter]
    fn summary_levels(&self) -> usize {
        self.0.summary_levels
    }
    /// summaryL0Bits.
    #[getter]
    fn summary_l0_bits(&self) -> u32 {
        self.0.summary_l0_bits
    }
    /// levelBits, one per level.
    #[getter]
    fn level_bits(&self) -> Vec<u32> {
        self.0.level_bits[..self.0.summary_levels].to_vec()
    }
    /// levelShift, one per level.
    #[getter]
    fn level_shift(&self) -> Vec<u32> {
        self.0.level_shift[..self.0.summary_levels].to_vec()
    }
    /// levelLogPages, one per level.
    #[getter]
    fn level_log_pages(&self) -> Vec<u32> {
        self.0.level_log_pages[..self.0.summary_levels].to_vec()
    }
    /// logMaxPackedValue: the width of each packed summary field.
    #[getter]
    fn log_max_packed_value(&self) -> u32 {
        self.0.log_max_packed_value
    }
    /// Chunks in the whole address space.
    #[getter]
    fn max_chunks(&self) -> u64 {
        self.0.max_chunks
    }
    /// Go's test BaseChunkIdx for this preset.
    #[getter]
    fn base_chunk_idx(&self) -> u64 {
        self.0.base_chunk_idx()
    }
    /// The search address meaning "no free page" (the top of the space).
    #[getter]
    fn max_search_addr(&self) -> u64 {
        self.0.unlin(self.0.max_search_lin)
    }
    /// Go's chunkIndex: the chunk holding address addr.
    fn chunk_index(&self, addr: &Bound<'_, PyAny>) -> PyResult<u64> {
        let addr = u64_arg(addr, "addr")?;
        self.0.lin_checked(addr, 0).map_err(to_py)?;
        Ok(self.0.chunk_index(addr))
    }
    /// Go's chunkBase: the first address of chunk ci.
    fn chunk_base(&self, ci: &Bound<'_, PyAny>) -> PyResult<u64> {
        let ci = chunk_arg(&self.0, ci)?;
        Ok(self.0.chunk_base(ci))
    }
    /// Go's PageBase: the address of page page_idx of chunk ci.
    fn page_base(&self, ci: &Bound<'_, PyAny>, page_idx: &Bound<'_, PyAny>) -> PyResult<u64> {
        let ci = chunk_arg(&self.0, ci)?;
        let p = u64_arg(page_idx, "page_idx")?;
        // Like Go's PageBase, page_idx may run past the chunk into later ones,
        // as long as the address stays in the address space.
        let lin = p
            .checked_mul(PAGE_SIZE)
            .and_then(|off| (ci << crate::arch::LOG_PALLOC_CHUNK_BYTES).checked_add(off))
            .filter(|&l| l < self.0.space_bytes());
        match lin {
            Some(l) => Ok(self.0.unlin(l)),
            None => Err(PyValueError::new_err(format!(
                "page {p} of chunk {ci:#x} lies beyond the {} address space",
                self.0.arch
            ))),
        }
    }
    fn __repr__(&self) -> String {
        format!(
            "Layout(arch={:?}, heap_addr_bits={}, summary_levels={}, level_bits={:?}, arena_base_offset={:#x})",
            self.0.arch.name(),
            self.0.heap_addr_bits,
            self.0.summary_levels,
            self.level_bits(),
            self.0.arena_base_offset
        )
    }
}

fn chunk_arg(ly: &EngineLayout, ci: &Bound<'_, PyAny>) -> PyResult<u64> {
    let ci = u64_arg(ci, "chunk index")?;
    if ci >= ly.max_chunks {
        return Err(PyValueError::new_err(format!(
            "chunk index {ci:#x} is beyond the {} address space ({:#x} chunks)",
            ly.arch, ly.max_chunks
        )));
    }
    Ok(ci)
}

/// The layout constants of a preset ("amd64", "arm64" or "386").
#[pyfunction]
#[pyo3(signature = (arch = "amd64"))]
fn layout(arch: &str) -> PyResult<Layout> {
    Ok(Layout(arch_arg(arch)?.layout()))
}

/// Go's chunkIndex: the global index of the 4 MiB chunk holding addr.
#[pyfunction]
#[pyo3(signature = (addr, arch = "amd64"))]
fn chunk_index(addr: &Bound<'_, PyAny>, arch: &str) -> PyResult<u64> {
    layout(arch)?.chunk_index(addr)
}

/// Go's chunkBase: the first address of chunk ci.
#[pyfunction]
#[pyo3(signature = (ci, arch = "amd64"))]
fn chunk_base(ci: &Bound<'_, PyAny>, arch: &str) -> PyResult<u64> {
    layout(arch)?.chunk_base(ci)
}

/// Go's test helper PageBase: the address of page page_idx of chunk ci.
#[pyfunction]
#[pyo3(signature = (ci, page_idx, arch = "amd64"))]
fn page_base(ci: &Bound<'_, PyAny>, page_idx: &Bound<'_, PyAny>, arch: &str) -> PyResult<u64> {
    layout(arch)?.page_base(ci, page_idx)
}

fn sum_format(arch: &str) -> PyResult<SumFormat> {
    Ok(SumFormat::new(
        arch_arg(arch)?.layout().log_max_packed_value,
    ))
}

/// Go's packPallocSum: packs (start, max, end) into one int. A whole free
/// root region (max == 2**log_max_packed_value) packs to just bit 63.
#[pyfunction]
#[pyo3(signature = (start, max, end, arch = "amd64"))]
fn pack_summary(
    start: &Bound<'_, PyAny>,
    max: &Bound<'_, PyAny>,
    end: &Bound<'_, PyAny>,
    arch: &str,
) -> PyResult<u64> {
    let (s, m, e) = (
        u64_arg(start, "start")?,
        u64_arg(max, "max")?,
        u64_arg(end, "end")?,
    );
    Ok(sum_format(arch)?.try_pack(s, m, e).map_err(to_py)?.0)
}

/// Go's pallocSum.unpack: the (start, max, end) of a packed summary.
#[pyfunction]
#[pyo3(signature = (packed, arch = "amd64"))]
fn unpack_summary(packed: &Bound<'_, PyAny>, arch: &str) -> PyResult<(u64, u64, u64)> {
    Ok(sum_format(arch)?.unpack(PallocSum(u64_arg(packed, "packed")?)))
}

/// Go's mergeSummaries: merges packed summaries of consecutive regions of
/// at most 2**log_max_pages_per_sum pages each into one packed summary.
#[pyfunction]
#[pyo3(signature = (sums, log_max_pages_per_sum, arch = "amd64"))]
fn merge_summaries(
    sums: &Bound<'_, PyAny>,
    log_max_pages_per_sum: u32,
    arch: &str,
) -> PyResult<u64> {
    let fmt = sum_format(arch)?;
    let mut v = Vec::new();
    for s in sums.try_iter()? {
        v.push(PallocSum(u64_arg(&s?, "summary")?));
    }
    if v.is_empty() {
        return Err(PyValueError::new_err(
            "merge_summaries needs at least one summary",
        ));
    }
    // The merged fields must fit this preset's packing.
    let total = (v.len() as u64)
        .checked_shl(log_max_pages_per_sum)
        .unwrap_or(u64::MAX);
    if log_max_pages_per_sum > 63 || total > fmt.max_packed_value() {
        return Err(PyValueError::new_err(format!(
            "{} summaries of 2**{log_max_pages_per_sum} pages exceed this preset's summary range",
            v.len()
        )));
    }
    for &s in &v {
        let (st, mx, en) = fmt.unpack(s);
        if st.max(mx).max(en) > 1 << log_max_pages_per_sum {
            return Err(PyValueError::new_err(format!(
                "summary ({st}, {mx}, {en}) is larger than 2**{log_max_pages_per_sum} pages"
            )));
        }
    }
    Ok(fmt.merge(&v, log_max_pages_per_sum).0)
}

/// Go's findBitRange64: index of the first run of n set bits in c, or >= 64.
#[pyfunction]
fn find_bit_range64(c: &Bound<'_, PyAny>, n: &Bound<'_, PyAny>) -> PyResult<u64> {
    let c = u64_arg(c, "c")?;
    let n = u64_arg(n, "n")?;
    if n > 64 {
        return Err(PyValueError::new_err(format!(
            "n must be in [0, 64], got {n}"
        )));
    }
    Ok(bits::find_bit_range64(c, n))
}

/// One chunk's 512-page bitmap (Go's pallocBits): bit i is page i, 1 = in use.
#[pyclass(name = "PallocBits", module = "pagealloc._pagealloc", eq)]
#[derive(Clone, PartialEq)]
struct PallocBits(EngineBits);

#[pymethods]
impl PallocBits {
    #[new]
    #[pyo3(signature = (value = None))]
    fn new(value: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(PallocBits(match value {
            Some(v) => int_to_bits(v)?,
            None => EngineBits::EMPTY,
        }))
    }

    /// A bitmap with the given (first page, page count) runs in use.
    #[staticmethod]
    fn from_ranges(ranges: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut b = EngineBits::EMPTY;
        for r in ranges.try_iter()? {
            let (i, n): (Bound<'_, PyAny>, Bound<'_, PyAny>) = r?.extract()?;
            let (i, n) = (u64_arg(&i, "i")?, u64_arg(&n, "n")?);
            if n != 0 {
                let (i, n) = page_range(i, n)?;
                b.alloc_range(i, n);
            }
        }
        Ok(PallocBits(b))
    }

    /// The 512 bits as an int, bit i = page i.
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        bits_to_int(py, &self.0)
    }

    fn __int__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        bits_to_int(py, &self.0)
    }

    /// Whether page i is in use.
    fn __getitem__(&self, i: &Bound<'_, PyAny>) -> PyResult<bool> {
        let i = u64_arg(i, "page index")?;
        if i >= PALLOC_CHUNK_PAGES {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "page index {i} out of range [0, 512)"
            )));
        }
        Ok(self.0.get(i))
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
    #[pyo3(signature = (npages, search_idx = None))]
    fn find(
        &self,
        npages: &Bound<'_, PyAny>,
        search_idx: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(Option<u64>, u64)> {
        let n = u64_arg(npages, "npages")?;
        let s = search_idx.map_or(Ok(0), |s| u64_arg(s, "search_idx"))?;
        if n == 0 {
            return Err(to_py(Error::ZeroPages));
        }
        if s >= PALLOC_CHUNK_PAGES {
            return Err(PyValueError::new_err(format!(
                "search_idx must be in [0, 512), got {s}"
            )));
        }
        if s > 0 {
            if let Some(p) = self.0.first_free_in(0, s) {
                return Err(PyValueError::new_err(format!(
                    "search_idx {s} is invalid: page {p} below it is free"
                )));
            }
        }
        Ok(self.0.find(n, s))
    }

    /// Go's allocRange: marks pages [i, i+n) in use (n >= 1).
    fn alloc_range(&mut self, i: &Bound<'_, PyAny>, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let (i, n) = page_range(u64_arg(i, "i")?, u64_arg(n, "n")?)?;
        self.0.alloc_range(i, n);
        Ok(())
    }

    /// Go's free: marks pages [i, i+n) free (n >= 1).
    fn free(&mut self, i: &Bound<'_, PyAny>, n: &Bound<'_, PyAny>) -> PyResult<()> {
        let (i, n) = page_range(u64_arg(i, "i")?, u64_arg(n, "n")?)?;
        self.0.free(i, n);
        Ok(())
    }

    /// Go's free1: marks page i free.
    fn free1(&mut self, i: &Bound<'_, PyAny>) -> PyResult<()> {
        let (i, _) = page_range(u64_arg(i, "i")?, 1)?;
        self.0.free1(i);
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

/// Go's page allocator (pageAlloc): address-ordered first fit over 8 KiB
/// pages, with a radix tree of summaries over 512-page bitmap chunks.
///
/// Safe to share between threads: every operation runs under an internal
/// lock, as Go's runs under the heap lock.
#[pyclass(frozen, name = "PageAlloc", module = "pagealloc._pagealloc")]
struct PageAlloc {
    inner: Mutex<Engine>,
    arch: Arch,
}

impl PageAlloc {
    fn lock(&self) -> MutexGuard<'_, Engine> {
        // The engine reports errors instead of panicking, so a poisoned lock
        // can only follow a bug; the state it guards is still memory-safe.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wrap(engine: Engine) -> Self {
        let arch = engine.arch();
        PageAlloc {
            inner: Mutex::new(engine),
            arch,
        }
    }
}

#[pymethods]
impl PageAlloc {
    /// Go's init: reserves metadata for the whole address space of arch.
    #[new]
    #[pyo3(signature = (arch = "amd64"))]
    fn new(py: Python<'_>, arch: &str) -> PyResult<Self> {
        let arch = arch_arg(arch)?;
        let engine = py.detach(|| Engine::new(arch)).map_err(to_py)?;
        Ok(Self::wrap(engine))
    }

    /// Go's test constructor NewPageAlloc: grows each chunk index in the
    /// mapping and marks its (first page, page count) runs in use.
    #[staticmethod]
    #[pyo3(signature = (chunks, arch = "amd64"))]
    fn from_chunks(py: Python<'_>, chunks: &Bound<'_, PyAny>, arch: &str) -> PyResult<Self> {
        let arch = arch_arg(arch)?;
        let ly = arch.layout();
        let mut list = Vec::new();
        for item in chunks.call_method0("items")?.try_iter()? {
            let (ci, runs): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let ci = chunk_arg(&ly, &ci)?;
            let mut rs = Vec::new();
            for r in runs.try_iter()? {
                let (i, n): (Bound<'_, PyAny>, Bound<'_, PyAny>) = r?.extract()?;
                let (i, n) = (u64_arg(&i, "i")?, u64_arg(&n, "n")?);
                if n != 0 {
                    page_range(i, n)?;
                }
                rs.push((i, n));
            }
            list.push((ci, rs));
        }
        let engine = py
            .detach(|| Engine::from_chunks(arch, list))
            .map_err(to_py)?;
        Ok(Self::wrap(engine))
    }

    /// Go's grow: makes [base, base+size) known and free, rounded out to
    /// whole 4 MiB chunks, committing the metadata it needs.
    fn grow(
        &self,
        py: Python<'_>,
        base: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (base, size) = (u64_arg(base, "base")?, u64_arg(size, "size")?);
        py.detach(|| self.lock().grow(base, size)).map_err(to_py)
    }

    /// Go's alloc: the base address of the lowest run of npages free pages,
    /// now in use; None when nothing fits.
    fn alloc(&self, npages: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let n = u64_arg(npages, "npages")?;
        self.lock().alloc(n).map_err(to_py)
    }

    /// Go's free: returns npages pages at base to the heap. Every page must be
    /// in use; otherwise ValueError and nothing changes.
    fn free(&self, base: &Bound<'_, PyAny>, npages: &Bound<'_, PyAny>) -> PyResult<()> {
        let (base, n) = (u64_arg(base, "base")?, u64_arg(npages, "npages")?);
        self.lock().free(base, n).map_err(to_py)
    }

    /// Up to count allocations of npages each in one call (one lock, no
    /// per-call overhead); stops at the first that does not fit and returns
    /// the addresses obtained.
    fn alloc_many(
        &self,
        py: Python<'_>,
        npages: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<u64>> {
        let n = u64_arg(npages, "npages")?;
        let count = usize::try_from(u64_arg(count, "count")?).unwrap_or(usize::MAX);
        py.detach(|| self.lock().alloc_many(n, count))
            .map_err(to_py)
    }

    /// Frees npages pages at each base, all or nothing: if any free is
    /// invalid, ValueError and the allocator is unchanged.
    fn free_many(
        &self,
        py: Python<'_>,
        bases: &Bound<'_, PyAny>,
        npages: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let n = u64_arg(npages, "npages")?;
        let mut v = Vec::new();
        for b in bases.try_iter()? {
            v.push(u64_arg(&b?, "base")?);
        }
        py.detach(|| self.lock().free_many(&v, n)).map_err(to_py)
    }

    /// Go's Bounds(): the chunk indices [start, end) the allocator knows.
    #[getter]
    fn bounds(&self) -> (u64, u64) {
        self.lock().bounds()
    }

    /// The grown chunks as sorted (start, end) chunk-index ranges.
    #[getter]
    fn grown_ranges(&self) -> Vec<(u64, u64)> {
        self.lock()
            .grown_ranges()
            .iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    /// The maximal runs of in-use pages of chunk ci, ascending, as (first, count).
    fn chunk_ranges(&self, ci: &Bound<'_, PyAny>) -> PyResult<Vec<(u64, u64)>> {
        let ci = u64_arg(ci, "chunk index")?;
        Ok(self.lock().chunk_bitmap(ci).map_err(to_py)?.runs())
    }

    /// The bitmap of chunk ci as an int, bit i = page i (Go's PallocBits(i)).
    fn chunk_bitmap<'py>(
        &self,
        py: Python<'py>,
        ci: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ci = u64_arg(ci, "chunk index")?;
        let b = self.lock().chunk_bitmap(ci).map_err(to_py)?;
        bits_to_int(py, &b)
    }

    /// The summary at (level, idx) as (start, max, end); level 0 is the root.
    fn summary(
        &self,
        level: &Bound<'_, PyAny>,
        idx: &Bound<'_, PyAny>,
    ) -> PyResult<(u64, u64, u64)> {
        let level = usize::try_from(u64_arg(level, "level")?).unwrap_or(usize::MAX);
        let idx = u64_arg(idx, "idx")?;
        self.lock().summary(level, idx).map_err(to_py)
    }

    /// Go's searchAddr: every heap page below it is in use.
    #[getter]
    fn search_addr(&self) -> u64 {
        self.lock().search_addr()
    }

    /// Recomputes every summary from the bitmaps and checks the invariants;
    /// raises CorruptionError naming the first mismatch.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.lock().verify()).map_err(to_py)
    }

    /// Bytes of metadata committed (read/write) so far.
    #[getter]
    fn mapped_bytes(&self) -> usize {
        self.lock().mapped_bytes()
    }

    /// Bytes of address space reserved for metadata.
    #[getter]
    fn reserved_bytes(&self) -> usize {
        self.lock().reserved_bytes()
    }

    /// The preset name.
    #[getter]
    fn arch(&self) -> &'static str {
        self.arch.name()
    }

    /// The preset's constants.
    #[getter]
    fn layout(&self) -> Layout {
        Layout(self.arch.layout())
    }

    /// Pages in grown chunks.
    #[getter]
    fn pages_grown(&self) -> u64 {
        self.lock().pages_grown()
    }

    /// Pages in use.
    #[getter]
    fn pages_in_use(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.lock().pages_in_use())
    }

    /// The longest run of free pages, read from the root summaries.
    #[getter]
    fn largest_free_run(&self) -> u64 {
        self.lock().largest_free_run()
    }

    /// Number of maximal free runs (runs continue across adjacent chunks).
    #[getter]
    fn free_run_count(&self, py: Python<'_>) -> u64 {
        py.detach(|| self.lock().free_run_count())
    }

    /// A snapshot of how full and how fragmented the heap is, as a
    /// pagealloc.Stats (computed from the root summaries and one pass over
    /// the bitmaps, under one lock).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (grown, in_use, largest, runs, chunks, mapped, reserved) = py.detach(|| {
            let pa = self.lock();
            let grown = pa.pages_grown();
            (
                grown,
                pa.pages_in_use(),
                pa.largest_free_run(),
                pa.free_run_count(),
                grown / PALLOC_CHUNK_PAGES,
                pa.mapped_bytes(),
                pa.reserved_bytes(),
            )
        });
        let stats = py.import("pagealloc.stats")?.getattr("Stats")?;
        stats.call_method1(
            "from_counts",
            (grown, in_use, largest, runs, chunks, mapped, reserved),
        )
    }

    /// Draws the heap as a PNG (one row of 512 cells per chunk); needs the
    /// `pagealloc[viz]` extra. See pagealloc.viz.render_map for the options.
    #[pyo3(signature = (path, **kwargs))]
    fn render_map<'py>(
        slf: &Bound<'py, Self>,
        path: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, pyo3::types::PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let viz = slf.py().import("pagealloc.viz")?;
        viz.getattr("render_map")?.call((slf, path), kwargs)
    }

    fn __repr__(&self) -> String {
        let pa = self.lock();
        let (s, e) = pa.bounds();
        format!(
            "<PageAlloc arch={} bounds=({s:#x}, {e:#x}) grown={} chunks in {} range(s) in_use={} pages \
             search_addr={:#x} mapped={} B reserved={} B>",
            self.arch,
            pa.pages_grown() / PALLOC_CHUNK_PAGES,
            pa.grown_ranges().len(),
            pa.pages_in_use(),
            pa.search_addr(),
            pa.mapped_bytes(),
            pa.reserved_bytes()
        )
    }
}

/// Replays a trace (DESIGN.md format) on a fresh PageAlloc, in steps, so a
/// caller can show progress. Parsing checks every line first: a bad line
/// raises ValueError("line N: ...") before any op runs.
#[pyclass(name = "TraceReplay", module = "pagealloc._pagealloc")]
struct TraceReplay {
    trace: Trace,
    replay: Replay,
    pa: Py<PageAlloc>,
    done: usize,
    elapsed_ns: u128,
}

#[pymethods]
impl TraceReplay {
    #[new]
    #[pyo3(signature = (text, arch = "amd64"))]
    fn new(py: Python<'_>, text: &str, arch: &str) -> PyResult<Self> {
        let arch = arch_arg(arch)?;
        let trace = py
            .detach(|| Trace::parse(text))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let engine = py.detach(|| Engine::new(arch)).map_err(to_py)?;
        let replay = Replay::with_capacity(trace.allocs);
        Ok(TraceReplay {
            trace,
            replay,
            pa: Py::new(py, PageAlloc::wrap(engine))?,
            done: 0,
            elapsed_ns: 0,
        })
    }

    /// Ops in the trace.
    #[getter]
    fn ops(&self) -> usize {
        self.trace.ops.len()
    }

    /// Ops replayed so far.
    #[getter]
    fn done(&self) -> usize {
        self.done
    }

    /// Alloc ops in the trace.
    #[getter]
    fn allocs(&self) -> usize {
        self.trace.allocs
    }

    /// Grow ops in the trace.
    #[getter]
    fn grows(&self) -> usize {
        self.trace
            .ops
            .iter()
            .filter(|op| matches!(op, Op::Grow { .. }))
            .count()
    }

    /// Free ops in the trace.
    #[getter]
    fn frees(&self) -> usize {
        self.trace.ops.len() - self.trace.allocs - self.grows()
    }

    /// Nanoseconds spent inside the allocator so far (excluding Python).
    #[getter]
    fn elapsed_ns(&self) -> u128 {
        self.elapsed_ns
    }

    /// The allocator being replayed into.
    #[getter]
    fn allocator(&self, py: Python<'_>) -> Py<PageAlloc> {
        self.pa.clone_ref(py)
    }

    /// The address each alloc so far returned (0 on failure).
    #[getter]
    fn addresses(&self) -> Vec<u64> {
        self.replay.addrs.clone()
    }

    /// Replays up to max_ops more ops (all if None); returns how many ran.
    /// A failing op raises ValueError("line N: ...") and stops the replay there.
    #[pyo3(signature = (max_ops = None))]
    fn run(&mut self, py: Python<'_>, max_ops: Option<usize>) -> PyResult<usize> {
        let end = max_ops.map_or(self.trace.ops.len(), |n| {
            self.done.saturating_add(n).min(self.trace.ops.len())
        });
        let pa = self.pa.get();
        let (trace, replay, start) = (&self.trace, &mut self.replay, self.done);
        let (ran, elapsed, err) = py.detach(|| {
            let mut engine = pa.lock();
            let t0 = std::time::Instant::now();
            let mut k = start;
            let mut err = None;
            while k < end {
                if let Err(e) = replay.step(&mut engine, trace.ops[k]) {
                    err = Some(TraceError {
                        line: trace.lines[k],
                        msg: e.to_string(),
                    });
                    break;
                }
                k += 1;
            }
            (k - start, t0.elapsed().as_nanos(), err)
        });
        self.done += ran;
        self.elapsed_ns += elapsed;
        match err {
            Some(e) => Err(PyValueError::new_err(e.to_string())),
            None => Ok(ran),
        }
    }

    /// The results file: one 0x-hex address per alloc, the bounds, and the
    /// in-use runs of every grown chunk.
    fn results_file(&self) -> String {
        results_file(&self.pa.get().lock(), &self.replay.addrs)
    }
}

/// Go's runtime page allocator core, in Rust.
#[pymodule]
fn _pagealloc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let amd64 = Arch::Amd64.layout();
    m.add("PAGE_SIZE", PAGE_SIZE)?;
    m.add("PALLOC_CHUNK_PAGES", PALLOC_CHUNK_PAGES)?;
    m.add("PALLOC_CHUNK_BYTES", PALLOC_CHUNK_BYTES)?;
    m.add("BASE_CHUNK_IDX", amd64.base_chunk_idx())?;
    m.add(
        "ARCHES",
        PyTuple::new(py, Arch::ALL.iter().map(|a| a.name()))?,
    )?;
    m.add("CorruptionError", py.get_type::<CorruptionError>())?;
    m.add_class::<PageAlloc>()?;
    m.add_class::<PallocBits>()?;
    m.add_class::<Layout>()?;
    m.add_class::<TraceReplay>()?;
    m.add_function(wrap_pyfunction!(layout, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_index, m)?)?;
    m.add_function(wrap_pyfunction!(chunk_base, m)?)?;
    m.add_function(wrap_pyfunction!(page_base, m)?)?;
    m.add_function(wrap_pyfunction!(pack_summary, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_summary, m)?)?;
    m.add_function(wrap_pyfunction!(merge_summaries, m)?)?;
    m.add_function(wrap_pyfunction!(find_bit_range64, m)?)?;
    Ok(())
}
