//! `PageAlloc`, the allocator behind a mutex, and its `Occupancy` report.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// An allocation failure as Python receives it: (free pages, largest fit, message).
type Failure = (u64, u64, String);

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

use super::bits::PyPageCache;
use super::layout::PyLayout;
use super::{ArchArg, Bitmap, GoArg, Npages, AMD64, GO_DEFAULT, U64};
use crate::arch::{Layout, PALLOC_CHUNK_PAGES};
use crate::PageAlloc;

/// How full the heap is, read under one lock: the data behind
/// `PageAlloc.stats()`.
#[pyclass(frozen, get_all, name = "Occupancy", module = "pagealloc._pagealloc")]
pub(crate) struct PyOccupancy {
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
pub(crate) struct PyPageAlloc {
    inner: Mutex<PageAlloc>,
    ly: Layout,
}

/// An instance of `cls` (a subclass, say) with `engine` inside.
fn instance_of<'py>(cls: &Bound<'py, PyType>, engine: PageAlloc) -> PyResult<Bound<'py, PyAny>> {
    let kwargs = PyDict::new(cls.py());
    kwargs.set_item("layout", PyLayout::from(*engine.layout()))?;
    let pa = cls.call((), Some(&kwargs))?;
    *pa.cast::<PyPageAlloc>()?.get().lock() = engine;
    Ok(pa)
}

impl PyPageAlloc {
    /// A fresh allocator of `arch` following Go version `go` (for replays).
    pub(crate) fn for_go(arch: ArchArg, go: crate::GoVersion) -> PyResult<Self> {
        let ly = arch.0.layout();
        Ok(PyPageAlloc {
            inner: Mutex::new(PageAlloc::builder(ly).go(go).build()?),
            ly,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, PageAlloc> {
        // The engine reports errors instead of panicking, so a poisoned lock
        // can only follow a bug; the state it guards is still memory-safe.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl PyPageAlloc {
    /// Go's init: reserves metadata for the whole address space of arch,
    /// or of layout (a preset's or Layout.custom(...)) when given. go picks
    /// whose page allocator it follows: "1.26" (the default: Go 1.26's
    /// scavenge index and scavenger) or "1.19".
    #[new]
    #[pyo3(signature = (arch = AMD64, layout = None, go = GO_DEFAULT))]
    pub(crate) fn new(
        py: Python<'_>,
        arch: ArchArg,
        layout: Option<PyRef<'_, PyLayout>>,
        go: GoArg,
    ) -> PyResult<Self> {
        let ly = layout.map_or_else(|| arch.0.layout(), |l| l.ly());
        let engine = py.detach(|| PageAlloc::builder(ly).go(go.0).build())?;
        Ok(PyPageAlloc {
            inner: Mutex::new(engine),
            ly,
        })
    }

    /// Go's test constructor NewPageAlloc: grows each chunk index in the
    /// mapping and marks its (first page, page count) runs in use.
    /// With `scav`, Go 1.19's NewPageAlloc(chunks, scav): the listed runs of
    /// each chunk are scavenged (none when a chunk is not listed).
    #[classmethod]
    #[pyo3(signature = (chunks, arch = AMD64, scav = None, layout = None, go = GO_DEFAULT))]
    fn from_chunks<'py>(
        cls: &Bound<'py, PyType>,
        chunks: HashMap<U64, Vec<(U64, U64)>>,
        arch: ArchArg,
        scav: Option<HashMap<U64, Vec<(U64, U64)>>>,
        layout: Option<PyRef<'py, PyLayout>>,
        go: GoArg,
    ) -> PyResult<Bound<'py, PyAny>> {
        let ly = layout.map_or_else(|| arch.0.layout(), |l| l.ly());
        let runs = |m: HashMap<U64, Vec<(U64, U64)>>| -> Vec<(u64, Vec<(u64, u64)>)> {
            m.into_iter()
                .map(|(ci, runs)| (ci.0, runs.into_iter().map(|(i, n)| (i.0, n.0)).collect()))
                .collect()
        };
        let (list, scav) = (runs(chunks), runs(scav.unwrap_or_default()));
        let engine = cls.py().detach(|| {
            PageAlloc::builder(ly)
                .go(go.0)
                .chunks(list)
                .scavenged(scav)
                .build()
        })?;
        instance_of(cls, engine)
    }

    /// The allocator's exact state as bytes (bounds, bitmaps, scavenged bits,
    /// search address, scavenge index), sized by the grown heap.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let data = py.detach(|| self.lock().to_bytes());
        PyBytes::new(py, &data)
    }

    /// Rebuilds an allocator from to_bytes(); ValueError for damaged or
    /// truncated bytes.
    #[classmethod]
    fn from_bytes<'py>(cls: &Bound<'py, PyType>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let engine = cls.py().detach(|| PageAlloc::from_bytes(data))?;
        instance_of(cls, engine)
    }

    /// Pickling (and copy.copy / copy.deepcopy) goes through to_bytes.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let from_bytes = slf.get_type().getattr("from_bytes")?;
        Ok((from_bytes, (slf.get().to_bytes(slf.py()),)))
    }

    /// Go's grow: makes [base, base+size) known and free, rounded out to
    /// whole 4 MiB chunks, committing the metadata it needs.
    fn grow(&self, py: Python<'_>, base: U64, size: U64) -> PyResult<()> {
        Ok(py.detach(|| self.lock().grow(base.0, size.0))?)
    }

    /// Go's alloc: the base address of the lowest run of npages free pages,
    /// now in use; None when nothing fits. With align (pages, a power of two)
    /// the lowest such address that is a multiple of align pages; with
    /// within=(lo, hi) the lowest inside lo <= addr, addr + size <= hi.
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn alloc(
        &self,
        npages: Npages,
        align: U64,
        within: Option<(U64, U64)>,
    ) -> PyResult<Option<u64>> {
        Ok(self.alloc_scav(npages, align, within)?.0)
    }

    /// Go 1.19's alloc: (base address of the lowest fit or None, bytes of it
    /// that were scavenged); align and within as for alloc.
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn alloc_scav(
        &self,
        npages: Npages,
        align: U64,
        within: Option<(U64, U64)>,
    ) -> PyResult<(Option<u64>, u64)> {
        let within = within.map(|(lo, hi)| (lo.0, hi.0));
        Ok(self.lock().alloc_constrained(npages.0, align.0, within)?)
    }

    /// Where alloc(npages, align, within) would put the pages (None: nothing
    /// fits), taking nothing.
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn first_fit(
        &self,
        npages: Npages,
        align: U64,
        within: Option<(U64, U64)>,
    ) -> PyResult<Option<u64>> {
        let within = within.map(|(lo, hi)| (lo.0, hi.0));
        Ok(self.lock().first_fit(npages.0, align.0, within)?)
    }

    /// Whether alloc(npages, align, within) would succeed, taking nothing.
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn would_fit(&self, npages: Npages, align: U64, within: Option<(U64, U64)>) -> PyResult<bool> {
        let within = within.map(|(lo, hi)| (lo.0, hi.0));
        Ok(self.lock().would_fit(npages.0, align.0, within)?)
    }

    /// The largest npages that alloc(npages, align, within) would serve now.
    #[pyo3(signature = (align = U64(1), within = None))]
    fn largest_free(&self, align: U64, within: Option<(U64, U64)>) -> PyResult<u64> {
        let within = within.map(|(lo, hi)| (lo.0, hi.0));
        Ok(self.lock().largest_free(align.0, within)?)
    }

    /// alloc that says why it failed: (address, None), or (None, (free
    /// pages, largest fit, message)) with nothing changed. (alloc_or_raise
    /// raises AllocFailure from it.)
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn _alloc_or_failure(
        &self,
        npages: Npages,
        align: U64,
        within: Option<(U64, U64)>,
    ) -> PyResult<(Option<u64>, Option<Failure>)> {
        let within = within.map(|(lo, hi)| (lo.0, hi.0));
        Ok(
            match self.lock().alloc_or_failure(npages.0, align.0, within)? {
                Ok(a) => (Some(a), None),
                Err(f) => (None, Some((f.free_pages, f.largest_fit, f.to_string()))),
            },
        )
    }

    /// npages pages in at most max_extents runs, all or nothing: one run by
    /// first fit when one holds them, else the longest free runs first
    /// (lowest address among equals), the last cut from its start; a list
    /// of (address, npages), or None (nothing changed). Free each extent.
    fn alloc_extents(
        &self,
        py: Python<'_>,
        npages: Npages,
        max_extents: U64,
    ) -> PyResult<Option<Vec<(u64, u64)>>> {
        let max = usize::try_from(max_extents.0).unwrap_or(usize::MAX);
        Ok(py.detach(|| self.lock().alloc_extents(npages.0, max))?)
    }

    /// Claims exactly the npages pages at addr; ValueError (and no change)
    /// unless they are all grown and free. Returns the scavenged bytes.
    fn alloc_at(&self, addr: U64, npages: Npages) -> PyResult<u64> {
        Ok(self.lock().alloc_at(addr.0, npages.0)?)
    }

    /// Go's scavenge: marks free pages scavenged until at least nbytes are
    /// released or nothing is left; returns the bytes released. Go 1.19:
    /// highest marked chunks first. Go 1.26: down from the forced cursor
    /// (force=True, Go's PageAlloc.Scavenge) or the background one
    /// (force=False), continuing where the last call stopped.
    #[pyo3(signature = (nbytes, force = true))]
    fn scavenge(&self, py: Python<'_>, nbytes: U64, force: bool) -> PyResult<u64> {
        Ok(py.detach(|| {
            self.lock().scavenge_with(
                nbytes.0,
                crate::Scavenge {
                    force,
                    max_steps: None,
                },
                |_, _| {},
            )
        })?)
    }

    /// The Go version whose page allocator this one follows: "1.19" or "1.26".
    #[getter]
    fn go(&self) -> &'static str {
        self.lock().go_version().name()
    }

    /// Go 1.26's scavengeIndex.nextGen (once per GC cycle in Go): the
    /// background scavenger now sees the last cycle's frees.
    fn next_gen(&self) -> PyResult<()> {
        Ok(self.lock().next_gen()?)
    }

    /// Go 1.26's scavenge index data of grown chunk ci:
    /// (in_use, last_in_use, gen, has_free).
    fn scav_chunk_data(&self, ci: U64) -> PyResult<(u16, u16, u32, bool)> {
        let d = self.lock().scav_chunk_data(ci.0)?;
        Ok((d.in_use, d.last_in_use, d.gen, d.has_free()))
    }

    /// Go 1.26's markRandomPaddingPages: npages pages at addr, all grown
    /// and free, become in use and scavenged (never free them).
    fn mark_padding(&self, py: Python<'_>, addr: U64, npages: Npages) -> PyResult<()> {
        Ok(py.detach(|| self.lock().mark_padding(addr.0, npages.0))?)
    }

    /// Go 1.19's allocToCache: the 64-page block holding the lowest free page,
    /// its free pages now owned by the returned PageCache.
    fn alloc_to_cache(&self) -> PyResult<PyPageCache> {
        Ok(PyPageCache(self.lock().alloc_to_cache()?))
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
    fn set_phys_huge_page_size(&self, bytes: U64) -> PyResult<()> {
        Ok(self.lock().set_phys_huge_page_size(bytes.0)?)
    }

    /// Go's physPageSize for this allocator, in bytes: the scavenger releases
    /// only whole, aligned physical pages (by default the host's). Settable
    /// before the first grow: a power of two from 4096 to 524288.
    #[getter]
    fn get_phys_page_size(&self) -> u64 {
        self.lock().phys_page_size()
    }
    #[setter]
    fn set_phys_page_size(&self, bytes: U64) -> PyResult<()> {
        Ok(self.lock().set_phys_page_size(bytes.0)?)
    }

    /// Go's free: returns npages pages at base to the heap. Every page must be
    /// in use; otherwise ValueError and nothing changes.
    fn free(&self, base: U64, npages: Npages) -> PyResult<()> {
        Ok(self.lock().free(base.0, npages.0)?)
    }

    /// For measuring the binding itself (benches/python/percall.py): takes alloc's
    /// arguments, converted the same way, and the same lock, and returns an
    /// address (the search address) without allocating anything.
    #[pyo3(signature = (npages, align = U64(1), within = None))]
    fn _probe_alloc(
        &self,
        npages: Npages,
        align: U64,
        within: Option<(U64, U64)>,
    ) -> PyResult<Option<u64>> {
        let pa = self.lock();
        std::hint::black_box((npages.0, align.0, within.map(|(lo, hi)| (lo.0, hi.0))));
        Ok(Some(pa.search_addr()))
    }

    /// For measuring the binding itself: free's arguments and lock, no work.
    fn _probe_free(&self, base: U64, npages: Npages) -> PyResult<()> {
        let _pa = self.lock();
        std::hint::black_box((base.0, npages.0));
        Ok(())
    }

    /// Up to count allocations of npages each in one call (one lock, no
    /// per-call overhead); stops at the first that does not fit and returns
    /// the addresses obtained.
    fn alloc_many(&self, py: Python<'_>, npages: Npages, count: U64) -> PyResult<Vec<u64>> {
        Ok(py.detach(|| self.lock().alloc_many(npages.0, count.usize()))?)
    }

    /// Frees npages pages at each base, all or nothing: if any free is
    /// invalid, ValueError and the allocator is unchanged.
    fn free_many(&self, py: Python<'_>, bases: Vec<U64>, npages: Npages) -> PyResult<()> {
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
    /// The preset name, or "custom".
    #[getter]
    fn arch(&self) -> &'static str {
        self.ly.name()
    }
    /// The layout's constants.
    #[getter]
    fn layout(&self) -> PyLayout {
        self.ly.into()
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
    fn occupancy(&self, py: Python<'_>) -> PyOccupancy {
        py.detach(|| {
            let pa = self.lock();
            let grown = pa.pages_grown();
            PyOccupancy {
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
            "<PageAlloc arch={} go={} bounds=({s:#x}, {e:#x}) grown={} chunks in {} range(s) in_use={} pages \
             search_addr={:#x} mapped={} B reserved={} B>",
            self.ly.name(),
            pa.go_version().name(),
            pa.pages_grown() / PALLOC_CHUNK_PAGES,
            pa.grown_ranges().len(),
            pa.pages_in_use(),
            pa.search_addr(),
            pa.mapped_bytes(),
            pa.reserved_bytes()
        )
    }
}
