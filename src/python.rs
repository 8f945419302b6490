//! The Python binding (`pagealloc._pagealloc`): the only file that knows Python.
//!
//! It is thin on purpose. Arguments arrive as typed parameters ([`U64`],
//! [`ArchArg`], [`Bitmap`]) whose extraction raises `TypeError` for the wrong
//! type and `ValueError` naming the value when it is out of range (PyO3 adds
//! the parameter's name as a note). Everything about the allocator itself is
//! checked by the engine, and every engine error reaches Python through one
//! mapping (`impl From<Error> for PyErr`). The extension never imports the
//! Python package: `stats()` and `render_map()` are Python code on top of the
//! typed [`Occupancy`] this module returns.
//!
//! Locking rule: `PageAlloc` guards its engine with a mutex, like Go's
//! allocator under the heap lock, and the mutex is never held while waiting
//! for the GIL. Short operations lock while attached; long ones (`grow`,
//! `verify`, `from_chunks`, the bulk calls, `TraceReplay.run`) detach from
//! the interpreter first and lock inside, so a thread holding the GIL and
//! waiting for the mutex never waits on a thread that waits for the GIL.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyType};

use crate::arch::{Arch, Layout as EngineLayout, PALLOC_CHUNK_PAGES};
use crate::bits::{self, PallocBits as EngineBits, WORDS};
use crate::error::Error;
use crate::summary::{PallocSum, SumFormat};
use crate::trace::{results_file, OpKind, Replay, Trace, TraceError};
use crate::{PageAlloc as Engine, PageCache as EngineCache};

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
            Error::Reserve { .. } | Error::Commit { .. } => PyMemoryError::new_err(msg),
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

/// An integer argument in `[0, 2**64)`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct U64(u64);

impl<'a, 'py> FromPyObject<'a, 'py> for U64 {
    type Error = PyErr;

    #[inline]
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<U64> {
        if let Ok(v) = ob.extract::<u64>() {
            return Ok(U64(v));
        }
        if ob.is_instance_of::<PyInt>() {
            Err(PyValueError::new_err(format!(
                "expected an integer in [0, 2**64), got {}",
                ob.repr()?
            )))
        } else {
            Err(PyTypeError::new_err(format!(
                "expected an int, got {}",
                ob.get_type().name()?
            )))
        }
    }
}

impl U64 {
    /// As a count or index: values past `usize` saturate (they are out of
    /// range for whatever they index, and the engine says so).
    fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A layout preset name: "amd64", "arm64" or "386".
#[derive(Clone, Copy)]
struct ArchArg(Arch);

impl<'a, 'py> FromPyObject<'a, 'py> for ArchArg {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<ArchArg> {
        Ok(ArchArg(ob.extract::<String>()?.parse::<Arch>()?))
    }
}

const AMD64: ArchArg = ArchArg(Arch::Amd64);

/// A 512-bit chunk bitmap as a Python int, bit i = page i.
struct Bitmap(EngineBits);

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
        let mut b = EngineBits::EMPTY;
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

/// The constants of one layout preset (Go's per-GOARCH constants; see the
/// stubs for each field).
#[pyclass(frozen, get_all, name = "Layout", module = "pagealloc._pagealloc")]
struct Layout {
    arch: &'static str,
    heap_addr_bits: u32,
    arena_base_offset: u64,
    summary_levels: usize,
    summary_l0_bits: u32,
    level_bits: Vec<u32>,
    level_shift: Vec<u32>,
    level_log_pages: Vec<u32>,
    log_max_packed_value: u32,
    max_chunks: u64,
    base_chunk_idx: u64,
    max_search_addr: u64,
}

impl From<EngineLayout> for Layout {
    fn from(ly: EngineLayout) -> Layout {
        let levels = ly.summary_levels;
        Layout {
            arch: ly.arch.name(),
            heap_addr_bits: ly.heap_addr_bits,
            arena_base_offset: ly.arena_base_offset,
            summary_levels: levels,
            summary_l0_bits: ly.summary_l0_bits,
            level_bits: ly.level_bits[..levels].to_vec(),
            level_shift: ly.level_shift[..levels].to_vec(),
            level_log_pages: ly.level_log_pages[..levels].to_vec(),
            log_max_packed_value: ly.log_max_packed_value,
            max_chunks: ly.max_chunks,
            base_chunk_idx: ly.base_chunk_idx(),
            max_search_addr: ly.unlin(ly.max_search_lin),
        }
    }
}

impl Layout {
    /// The engine's layout these fields were read from.
    fn ly(&self) -> EngineLayout {
        let arch: Arch = self.arch.parse().expect("a preset's own name parses");
        arch.layout()
    }
}

#[pymethods]
impl Layout {
    /// Go's chunkIndex: the chunk holding address addr.
    fn chunk_index(&self, addr: U64) -> PyResult<u64> {
        Ok(self.ly().try_chunk_index(addr.0)?)
    }
    /// Go's chunkBase: the first address of chunk ci.
    fn chunk_base(&self, ci: U64) -> PyResult<u64> {
        let ly = self.ly();
        Ok(ly.chunk_base(ly.check_chunk(ci.0)?))
    }
    /// Go's PageBase: the address of page page_idx of chunk ci (the page
    /// may run past the chunk, as in Go).
    fn page_base(&self, ci: U64, page_idx: U64) -> PyResult<u64> {
        Ok(self.ly().try_page_base(ci.0, page_idx.0)?)
    }
    fn __repr__(&self) -> String {
        format!(
            "Layout(arch={:?}, heap_addr_bits={}, summary_levels={}, level_bits={:?}, arena_base_offset={:#x})",
            self.arch, self.heap_addr_bits, self.summary_levels, self.level_bits, self.arena_base_offset
        )
    }
}

/// The layout constants of a preset ("amd64", "arm64" or "386").
#[pyfunction]
#[pyo3(signature = (arch = AMD64))]
fn layout(arch: ArchArg) -> Layout {
    arch.0.layout().into()
}

fn sum_format(arch: ArchArg) -> SumFormat {
    SumFormat::new(arch.0.layout().log_max_packed_value)
}

/// Go's packPallocSum: packs (start, max, end) into one int. A whole free
/// root region (max == 2**log_max_packed_value) packs to just bit 63.
#[pyfunction]
#[pyo3(signature = (start, max, end, arch = AMD64))]
fn pack_summary(start: U64, max: U64, end: U64, arch: ArchArg) -> PyResult<u64> {
    Ok(sum_format(arch).try_pack(start.0, max.0, end.0)?.0)
}

/// Go's pallocSum.unpack: the (start, max, end) of a packed summary.
#[pyfunction]
#[pyo3(signature = (packed, arch = AMD64))]
fn unpack_summary(packed: U64, arch: ArchArg) -> (u64, u64, u64) {
    sum_format(arch).unpack(PallocSum(packed.0))
}

/// Go's mergeSummaries: merges packed summaries of consecutive regions of
/// at most 2**log_max_pages_per_sum pages each into one packed summary.
#[pyfunction]
#[pyo3(signature = (sums, log_max_pages_per_sum, arch = AMD64))]
fn merge_summaries(sums: Vec<U64>, log_max_pages_per_sum: u32, arch: ArchArg) -> PyResult<u64> {
    let sums: Vec<PallocSum> = sums.into_iter().map(|s| PallocSum(s.0)).collect();
    Ok(sum_format(arch).try_merge(&sums, log_max_pages_per_sum)?.0)
}

/// Go's findBitRange64: index of the first run of n set bits in c, or >= 64.
#[pyfunction]
fn find_bit_range64(c: U64, n: U64) -> PyResult<u64> {
    Ok(bits::try_find_bit_range64(c.0, n.0)?)
}

/// One chunk's 512-page bitmap (Go's pallocBits): bit i is page i, 1 = in use.
#[pyclass(name = "PallocBits", module = "pagealloc._pagealloc", eq)]
#[derive(Clone, PartialEq)]
struct PallocBits(EngineBits);

#[pymethods]
impl PallocBits {
    #[new]
    #[pyo3(signature = (value = None))]
    fn new(value: Option<Bitmap>) -> Self {
        PallocBits(value.map_or(EngineBits::EMPTY, |b| b.0))
    }

    /// A bitmap with the given (first page, page count) runs in use; runs
    /// of length zero are ignored.
    #[staticmethod]
    fn from_ranges(ranges: Vec<(U64, U64)>) -> PyResult<Self> {
        let mut b = EngineBits::EMPTY;
        for (i, n) in ranges.into_iter().filter(|r| r.1 .0 != 0) {
            bits::check_range(i.0, n.0)?;
            b.alloc_range(i.0, n.0);
        }
        Ok(PallocBits(b))
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
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
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
    fn find(&self, npages: U64, search_idx: U64) -> PyResult<(Option<u64>, u64)> {
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
struct PageCache(EngineCache);

#[pymethods]
impl PageCache {
    #[new]
    #[pyo3(signature = (base = U64(0), cache = U64(0), scav = U64(0)))]
    fn new(base: U64, cache: U64, scav: U64) -> PyResult<Self> {
        Ok(PageCache(EngineCache::new(base.0, cache.0, scav.0)?))
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
    /// pages or None, bytes of it that were scavenged); 1 <= npages <= 64.
    fn alloc(&mut self, npages: U64) -> PyResult<(Option<u64>, u64)> {
        Ok(self.0.alloc(npages.0)?)
    }

    /// Go's pageCache.flush: gives the remaining pages back to pa and empties
    /// the cache. ValueError (nothing changes) unless they are in use in pa.
    fn flush(&mut self, pa: &Bound<'_, PageAlloc>) -> PyResult<()> {
        Ok(self.0.flush(&mut pa.get().lock())?)
    }

    fn __repr__(&self) -> String {
        format!(
            "PageCache(base={:#x}, cache={:#x}, scav={:#x})",
            self.0.base, self.0.cache, self.0.scav
        )
    }
}

/// How full the heap is, read under one lock: the data behind
/// `PageAlloc.stats()`.
#[pyclass(frozen, get_all, name = "Occupancy", module = "pagealloc._pagealloc")]
struct Occupancy {
    pages_grown: u64,
    pages_in_use: u64,
    largest_free_run: u64,
    free_runs: u64,
    chunks_grown: u64,
    mapped_bytes: usize,
    reserved_bytes: usize,
}

/// Go's page allocator (pageAlloc): address-ordered first fit over 8 KiB
/// pages, with a radix tree of summaries over 512-page bitmap chunks.
///
/// Safe to share between threads: every operation runs under an internal
/// lock, as Go's runs under the heap lock.
#[pyclass(frozen, subclass, name = "PageAlloc", module = "pagealloc._pagealloc")]
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
}

#[pymethods]
impl PageAlloc {
    /// Go's init: reserves metadata for the whole address space of arch.
    #[new]
    #[pyo3(signature = (arch = AMD64))]
    fn new(py: Python<'_>, arch: ArchArg) -> PyResult<Self> {
        let engine = py.detach(|| Engine::new(arch.0))?;
        Ok(PageAlloc {
            inner: Mutex::new(engine),
            arch: arch.0,
        })
    }

    /// Go's test constructor NewPageAlloc: grows each chunk index in the
    /// mapping and marks its (first page, page count) runs in use.
    /// With `scav`, Go 1.19's NewPageAlloc(chunks, scav): the listed runs of
    /// each chunk are scavenged (none when a chunk is not listed).
    #[classmethod]
    #[pyo3(signature = (chunks, arch = AMD64, scav = None))]
    fn from_chunks<'py>(
        cls: &Bound<'py, PyType>,
        chunks: HashMap<U64, Vec<(U64, U64)>>,
        arch: ArchArg,
        scav: Option<HashMap<U64, Vec<(U64, U64)>>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let runs = |m: HashMap<U64, Vec<(U64, U64)>>| -> Vec<(u64, Vec<(u64, u64)>)> {
            m.into_iter()
                .map(|(ci, runs)| (ci.0, runs.into_iter().map(|(i, n)| (i.0, n.0)).collect()))
                .collect()
        };
        let (list, scav) = (runs(chunks), runs(scav.unwrap_or_default()));
        let engine = cls
            .py()
            .detach(|| Engine::from_chunks_scav(arch.0, list, scav))?;
        // An instance of `cls` (a subclass, say), holding the filled engine.
        let pa = cls.call1((arch.0.name(),))?;
        *pa.cast::<PageAlloc>()?.get().lock() = engine;
        Ok(pa)
    }

    /// Go's grow: makes [base, base+size) known and free, rounded out to
    /// whole 4 MiB chunks, committing the metadata it needs.
    fn grow(&self, py: Python<'_>, base: U64, size: U64) -> PyResult<()> {
        Ok(py.detach(|| self.lock().grow(base.0, size.0))?)
    }

    /// Go's alloc: the base address of the lowest run of npages free pages,
    /// now in use; None when nothing fits.
    fn alloc(&self, npages: U64) -> PyResult<Option<u64>> {
        Ok(self.lock().alloc(npages.0)?)
    }

    /// Go 1.19's alloc: (base address of the lowest fit or None, bytes of it
    /// that were scavenged).
    fn alloc_scav(&self, npages: U64) -> PyResult<(Option<u64>, u64)> {
        Ok(self.lock().alloc_scav(npages.0)?)
    }

    /// Go 1.19's scavenge: marks free pages scavenged, highest marked chunks
    /// first, until at least nbytes are released or nothing is left; returns
    /// the bytes released.
    fn scavenge(&self, py: Python<'_>, nbytes: U64) -> PyResult<u64> {
        Ok(py.detach(|| self.lock().scavenge(nbytes.0))?)
    }

    /// Go 1.19's allocToCache: the 64-page block holding the lowest free page,
    /// its free pages now owned by the returned PageCache.
    fn alloc_to_cache(&self) -> PyResult<PageCache> {
        Ok(PageCache(self.lock().alloc_to_cache()?))
    }

    /// The scavenged bitmap of chunk ci as an int, bit i = page i.
    fn chunk_scavenged(&self, ci: U64) -> PyResult<Bitmap> {
        Ok(Bitmap(self.lock().chunk_scavenged(ci.0)?))
    }

    /// Huge pages of this many bytes are never split by the scavenger (Go's
    /// physHugePageSize; by default the OS's transparent huge page size).
    #[getter]
    fn get_phys_huge_page_size(&self) -> u64 {
        self.lock().phys_huge_page_size()
    }
    #[setter]
    fn set_phys_huge_page_size(&self, bytes: U64) {
        self.lock().set_phys_huge_page_size(bytes.0);
    }

    /// Go's free: returns npages pages at base to the heap. Every page must be
    /// in use; otherwise ValueError and nothing changes.
    fn free(&self, base: U64, npages: U64) -> PyResult<()> {
        Ok(self.lock().free(base.0, npages.0)?)
    }

    /// Up to count allocations of npages each in one call (one lock, no
    /// per-call overhead); stops at the first that does not fit and returns
    /// the addresses obtained.
    fn alloc_many(&self, py: Python<'_>, npages: U64, count: U64) -> PyResult<Vec<u64>> {
        Ok(py.detach(|| self.lock().alloc_many(npages.0, count.usize()))?)
    }

    /// Frees npages pages at each base, all or nothing: if any free is
    /// invalid, ValueError and the allocator is unchanged.
    fn free_many(&self, py: Python<'_>, bases: Vec<U64>, npages: U64) -> PyResult<()> {
        let bases: Vec<u64> = bases.into_iter().map(|b| b.0).collect();
        Ok(py.detach(|| self.lock().free_many(&bases, npages.0))?)
    }
    /// Go's Bounds(): the chunk indices [start, end) the allocator knows.
    #[getter]
    fn bounds(&self) -> (u64, u64) {
        self.lock().bounds()
    }
    /// The grown chunks as sorted (start, end) chunk-index ranges.
    #[getter]
    fn grown_ranges(&self) -> Vec<(u64, u64)> {
        let pa = self.lock();
        pa.grown_ranges().iter().map(|r| (r.start, r.end)).collect()
    }

    /// The maximal runs of in-use pages of chunk ci, ascending, as (first, count).
    fn chunk_ranges(&self, ci: U64) -> PyResult<Vec<(u64, u64)>> {
        Ok(self.lock().chunk_bitmap(ci.0)?.runs())
    }

    /// The bitmap of chunk ci as an int, bit i = page i (Go's PallocBits(i)).
    fn chunk_bitmap(&self, ci: U64) -> PyResult<Bitmap> {
        Ok(Bitmap(self.lock().chunk_bitmap(ci.0)?))
    }

    /// The summary at (level, idx) as (start, max, end); level 0 is the root.
    fn summary(&self, level: U64, idx: U64) -> PyResult<(u64, u64, u64)> {
        Ok(self.lock().summary(level.usize(), idx.0)?)
    }
    /// Go's searchAddr: every heap page below it is in use.
    #[getter]
    fn search_addr(&self) -> u64 {
        self.lock().search_addr()
    }

    /// Recomputes every summary from the bitmaps and checks the invariants;
    /// raises CorruptionError naming the first mismatch.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        Ok(py.detach(|| self.lock().verify())?)
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
        self.arch.layout().into()
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

    /// How full and how fragmented the heap is, read under one lock (from
    /// the root summaries and one pass over the bitmaps).
    fn occupancy(&self, py: Python<'_>) -> Occupancy {
        py.detach(|| {
            let pa = self.lock();
            let grown = pa.pages_grown();
            Occupancy {
                pages_grown: grown,
                pages_in_use: pa.pages_in_use(),
                largest_free_run: pa.largest_free_run(),
                free_runs: pa.free_run_count(),
                chunks_grown: grown / PALLOC_CHUNK_PAGES,
                mapped_bytes: pa.mapped_bytes(),
                reserved_bytes: pa.reserved_bytes(),
            }
        })
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

/// Replays a trace (DESIGN.md format) on an allocator, in steps, so a
/// caller can show progress. Parsing checks every line first: a bad line
/// raises ValueError("line N: ...") before any op runs.
#[pyclass(subclass, name = "TraceReplay", module = "pagealloc._pagealloc")]
struct TraceReplay {
    trace: Trace,
    replay: Replay,
    pa: Py<PageAlloc>,
    elapsed_ns: u128,
}

#[pymethods]
impl TraceReplay {
    /// Replays into `allocator` (by default a fresh PageAlloc of `arch`).
    #[new]
    #[pyo3(signature = (text, arch = AMD64, allocator = None))]
    fn new(
        py: Python<'_>,
        text: &str,
        arch: ArchArg,
        allocator: Option<Py<PageAlloc>>,
    ) -> PyResult<Self> {
        let trace = py.detach(|| Trace::parse(text))?;
        let pa = match allocator {
            Some(pa) => pa,
            None => Py::new(py, PageAlloc::new(py, arch)?)?,
        };
        Ok(TraceReplay {
            replay: Replay::new(&trace),
            trace,
            pa,
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
        self.replay.done
    }
    /// Alloc ops in the trace.
    #[getter]
    fn allocs(&self) -> usize {
        self.trace.counts.of(OpKind::Alloc)
    }
    /// Grow ops in the trace.
    #[getter]
    fn grows(&self) -> usize {
        self.trace.counts.of(OpKind::Grow)
    }
    /// Free ops in the trace.
    #[getter]
    fn frees(&self) -> usize {
        self.trace.counts.of(OpKind::Free)
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
        let start = self.replay.done;
        let to = max_ops.map_or(usize::MAX, |n| start.saturating_add(n));
        let pa = self.pa.get();
        let (trace, replay) = (&self.trace, &mut self.replay);
        let (res, elapsed) = py.detach(|| {
            let mut engine = pa.lock();
            let t0 = Instant::now();
            let res = replay.run_to(&mut engine, trace, to, &mut ());
            (res, t0.elapsed().as_nanos())
        });
        self.elapsed_ns += elapsed;
        res?;
        Ok(self.replay.done - start)
    }

    /// The results file: one 0x-hex address per alloc, the bounds, and the
    /// in-use runs of every grown chunk.
    fn results_file(&self) -> String {
        results_file(&self.pa.get().lock(), &self.replay.addrs)
    }
}

/// Go's runtime page allocator core, in Rust.
#[pymodule]
mod _pagealloc {
    #[pymodule_export]
    use super::{
        find_bit_range64, layout, merge_summaries, pack_summary, unpack_summary, Layout, Occupancy,
        PageAlloc, PageCache, PallocBits, TraceReplay,
    };

    use super::*;
    use crate::arch::{PAGE_SIZE, PALLOC_CHUNK_BYTES};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        m.add("PAGE_SIZE", PAGE_SIZE)?;
        m.add("PALLOC_CHUNK_PAGES", PALLOC_CHUNK_PAGES)?;
        m.add("PALLOC_CHUNK_BYTES", PALLOC_CHUNK_BYTES)?;
        m.add("BASE_CHUNK_IDX", Arch::Amd64.layout().base_chunk_idx())?;
        m.add("ARCHES", Arch::ALL.map(|a| a.name()))?;
        m.add("CorruptionError", py.get_type::<CorruptionError>())?;
        Ok(())
    }
}
