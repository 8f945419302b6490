//! `TraceReplay`: the engine's one replay loop, driven from Python in steps.

use std::time::Instant;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::alloc::PyPageAlloc;
use super::{ArchArg, GoArg, AMD64, U64};
use crate::trace::{OpKind, Replay, Trace};
use pyo3::exceptions::PyValueError;
use pyo3::types::IntoPyDict;

/// Replays a trace (v1, v2 or v3) on an allocator, in steps,
/// so a caller can show progress. Parsing checks every line first: a bad line
/// raises ValueError("line N: ...") before any op runs.
#[pyclass(subclass, name = "TraceReplay", module = "pagealloc._pagealloc")]
pub(crate) struct PyTraceReplay {
    trace: Trace,
    /// Ops of the trace as given (before a conversion for `go`).
    source_len: usize,
    /// Per op of `trace`, the op of the trace as given it came from.
    source: Vec<usize>,
    source_allocations: Vec<i64>,
    recorded_go: crate::GoVersion,
    replay: Replay,
    pa: Py<PyPageAlloc>,
    elapsed_ns: u128,
}

#[pymethods]
impl PyTraceReplay {
    /// Replays into `allocator` (by default a fresh PageAlloc of `arch`
    /// following the trace's Go, made by `allocator_class(arch, go=...)`
    /// when given); `go` replays a v2 or v3 trace under the other Go's
    /// allocator (a what-if: see `Trace::for_go`); `phys_page_size` and
    /// `huge_page_size` on another machine, in place of its headers;
    /// `lenient` and `follow_races` for what-ifs of many-P recordings.
    #[new]
    #[pyo3(signature = (text, arch = AMD64, allocator = None, phys_page_size = None, huge_page_size = None,
                        lenient = false, go = None, follow_races = true, allocator_class = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        text: &str,
        arch: ArchArg,
        allocator: Option<Py<PyPageAlloc>>,
        phys_page_size: Option<U64>,
        huge_page_size: Option<U64>,
        lenient: bool,
        go: Option<GoArg>,
        follow_races: bool,
        allocator_class: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let parsed = py.detach(|| Trace::parse(text))?;
        let recorded_go = parsed.go_version();
        // Per allocation of the source trace, its number (for a converted
        // trace's added padding allocations, none).
        let (mut trace, source) = match go {
            Some(g) => parsed.for_go(g.0),
            None => {
                let n = parsed.ops.len();
                (parsed.clone(), (0..n).collect())
            }
        };
        let source_allocations = source_allocations(&parsed, &trace, &source);
        if phys_page_size.is_some() || huge_page_size.is_some() {
            if trace.version < 2 {
                return Err(PyValueError::new_err(
                    "phys_page_size and huge_page_size need a v2 or v3 trace (a v1 trace never scavenges)",
                ));
            }
            let phys = phys_page_size.map_or(trace.phys_page, |v| v.0);
            let huge = huge_page_size.map_or(trace.huge_page, |v| v.0);
            trace.set_machine(phys, huge).map_err(|e| {
                PyValueError::new_err(format!("phys_page_size={phys}, huge_page_size={huge}: {e}"))
            })?;
        }
        let pa = match (allocator, allocator_class) {
            (Some(pa), _) => pa,
            (None, Some(class)) => class
                .call(
                    (arch.0.name(),),
                    Some(&[("go", trace.go_version().name())].into_py_dict(py)?),
                )?
                .extract::<Py<PyPageAlloc>>()?,
            (None, None) => Py::new(py, PyPageAlloc::for_go(arch, trace.go_version())?)?,
        };
        let mut replay = Replay::new(&trace);
        replay.lenient = lenient;
        replay.follow_races = follow_races;
        Ok(PyTraceReplay {
            replay,
            source_len: parsed.ops.len(),
            source,
            source_allocations,
            recorded_go,
            trace,
            pa,
            elapsed_ns: 0,
        })
    }
    /// The trace as this replay runs it, as text (after a conversion for
    /// `go`, and with the machine given): the version, machine headers and
    /// one line per op, as the parser reads them.
    fn trace_text(&self) -> String {
        self.trace.to_text()
    }
    /// The Go whose allocator replays the trace: "1.19" or "1.26".
    #[getter]
    fn go(&self) -> &'static str {
        self.trace.go_version().name()
    }
    /// The Go the trace itself is for ("1.26" for v3, else "1.19"), whatever
    /// `go` it replays under.
    #[getter]
    fn recorded_go(&self) -> &'static str {
        self.recorded_go.name()
    }
    /// For n = 0..=ops: how many ops of the trace as given are covered once
    /// n ops of this replay ran (they differ where `go` dropped ops).
    #[getter]
    fn op_index(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.source.clone();
        out.push(self.source_len);
        out
    }
    /// Per allocation of this replay, the number of the same allocation in
    /// the trace as given, or -1 for one the conversion added (Go 1.26's
    /// padding, kept out of use under Go 1.19).
    #[getter]
    fn source_allocations(&self) -> Vec<i64> {
        self.source_allocations.clone()
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
    /// The trace format version: 1, 2 (Go 1.19: scavenged pages and caches) or 3 (Go 1.26).
    #[getter]
    fn version(&self) -> u8 {
        self.trace.version
    }
    /// Ops of each kind in the trace, by op name, in a fixed order (grow,
    /// alloc, free, then the v2 kinds).
    #[getter]
    fn counts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for k in OpKind::ALL {
            d.set_item(k.name(), self.trace.counts.of(k))?;
        }
        Ok(d)
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
    /// `scavfind` ops so far whose find raced with another P in the
    /// recorded run, so the replay followed what Go saw (`saw=`).
    #[getter]
    fn followed(&self) -> usize {
        self.replay.followed
    }
    /// Of `followed`, how many the replay's own find would have answered
    /// otherwise.
    #[getter]
    fn followed_differed(&self) -> usize {
        self.replay.followed_differed
    }
    /// Ops a lenient (what-if) replay skipped: frees of allocations that
    /// failed here, scavenger steps with nothing to take or give back.
    #[getter]
    fn skipped(&self) -> usize {
        self.replay.skipped
    }
    /// The trace's machine: its `physpage` header (4096 when absent).
    #[getter]
    fn phys_page_size(&self) -> u64 {
        self.trace.phys_page
    }
    /// Its `hugepage` header (2097152 when absent; 0: none).
    #[getter]
    fn huge_page_size(&self) -> u64 {
        self.trace.huge_page
    }
    /// Per op, Go's monotonic time in nanoseconds since the recording began
    /// (`t=`), or None when the trace has no times.
    #[getter]
    fn times(&self) -> Option<Vec<u64>> {
        (!self.trace.times.is_empty()).then(|| self.trace.times.clone())
    }
    /// The allocator being replayed into.
    #[getter]
    fn allocator(&self, py: Python<'_>) -> Py<PyPageAlloc> {
        self.pa.clone_ref(py)
    }
    /// The address each allocation (alloc, and calloc in v2) so far
    /// returned, 0 on failure.
    #[getter]
    fn addresses(&self) -> Vec<u64> {
        self.replay.allocs.iter().map(|a| a.addr).collect()
    }

    /// Replays up to max_ops more ops (all if None); returns how many ran.
    /// A failing op raises ValueError("line N: ...") and stops the replay there.
    #[pyo3(signature = (max_ops = None))]
    fn run(&mut self, py: Python<'_>, max_ops: Option<MaxOps>) -> PyResult<usize> {
        let max_ops = max_ops.map(|m| m.0);
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

    /// Replays the rest of the trace (at most max_ops ops) taking a census of
    /// the heap after every op (bytes): a dict of lists, one entry per op replayed, `in_use`,
    /// `go_resident` (pages not scavenged), `rss` (resident physical pages),
    /// `trapped` (free pages whose physical page holds an in-use page),
    /// `covered` (in-use bytes in wholly resident huge pages); `releases`,
    /// the bytes of each run the scavenger released (one madvise each), and
    /// `first_op`, the index of the first op counted.
    #[pyo3(signature = (max_ops = None))]
    fn census<'py>(
        &mut self,
        py: Python<'py>,
        max_ops: Option<MaxOps>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let max_ops = max_ops.map(|m| m.0);
        let first = self.replay.done;
        let to = max_ops.map_or(usize::MAX, |n| first.saturating_add(n));
        let pa = self.pa.get();
        let (trace, replay) = (&self.trace, &mut self.replay);
        let mut run = crate::census::CensusRun::default();
        let (res, elapsed) = py.detach(|| {
            let mut engine = pa.lock();
            let t0 = Instant::now();
            let res = crate::census::run_census(replay, &mut engine, trace, to, &mut run);
            (res, t0.elapsed().as_nanos())
        });
        self.elapsed_ns += elapsed;
        res?;
        let d = PyDict::new(py);
        let col = |f: fn(&crate::census::CensusPoint) -> u64| {
            run.points.iter().map(f).collect::<Vec<u64>>()
        };
        d.set_item("first_op", first)?;
        d.set_item("grown", col(|p| p.grown_bytes))?;
        d.set_item("in_use", col(|p| p.in_use_bytes))?;
        d.set_item("free_scavenged", col(|p| p.free_scavenged_bytes))?;
        d.set_item("go_resident", col(|p| p.go_resident_bytes))?;
        d.set_item("rss", col(|p| p.rss_bytes))?;
        d.set_item("trapped", col(|p| p.trapped_bytes))?;
        d.set_item("covered", col(|p| p.covered_bytes))?;
        d.set_item("releases", run.releases)?;
        Ok(d)
    }

    /// The data of `pagealloc view`'s page (see `pagealloc::view`), from a
    /// replay of the whole trace (this one must not have run yet): a dict of
    /// little-endian arrays as bytes, and `keyframe_every`.
    #[pyo3(signature = (keyframe_every = 0))]
    fn view_data<'py>(
        &mut self,
        py: Python<'py>,
        keyframe_every: u32,
    ) -> PyResult<Bound<'py, PyDict>> {
        if self.replay.done != 0 {
            return Err(PyValueError::new_err(
                "view_data replays the whole trace: make a new TraceReplay for it",
            ));
        }
        let pa = self.pa.get();
        let trace = &self.trace;
        let data = py.detach(|| crate::view::build(&mut pa.lock(), trace, keyframe_every))?;
        self.replay.done = self.trace.ops.len();
        let d = PyDict::new(py);
        fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            let mut out = Vec::with_capacity(v.len() * N);
            for &x in v {
                out.extend_from_slice(&f(x));
            }
            out
        }
        let pts = &data.points;
        let page = 8192u64;
        let col = |f: fn(&crate::census::CensusPoint) -> u64| {
            le(
                &pts.iter()
                    .map(|p| (f(p) / page) as u32)
                    .collect::<Vec<u32>>(),
                u32::to_le_bytes,
            )
        };
        let bytes = |py: Python<'py>, v: Vec<u8>| pyo3::types::PyBytes::new(py, &v);
        d.set_item("in_use", bytes(py, col(|p| p.in_use_bytes)))?;
        d.set_item("released", bytes(py, col(|p| p.free_scavenged_bytes)))?;
        d.set_item(
            "free_resident",
            bytes(
                py,
                col(|p| p.grown_bytes - p.in_use_bytes - p.free_scavenged_bytes),
            ),
        )?;
        d.set_item(
            "rss_kib",
            bytes(
                py,
                le(
                    &pts.iter()
                        .map(|p| (p.rss_bytes / 1024) as u32)
                        .collect::<Vec<u32>>(),
                    u32::to_le_bytes,
                ),
            ),
        )?;
        d.set_item(
            "slot_chunk",
            bytes(py, le(&data.slot_chunk, u64::to_le_bytes)),
        )?;
        d.set_item(
            "slot_base",
            bytes(py, le(&data.slot_base, u64::to_le_bytes)),
        )?;
        d.set_item("slot_op", bytes(py, le(&data.slot_op, u32::to_le_bytes)))?;
        d.set_item("op_runs", bytes(py, le(&data.op_runs, u32::to_le_bytes)))?;
        d.set_item("run_slot", bytes(py, le(&data.run_slot, u32::to_le_bytes)))?;
        d.set_item("run_page", bytes(py, le(&data.run_page, u16::to_le_bytes)))?;
        d.set_item("run_len", bytes(py, le(&data.run_len, u16::to_le_bytes)))?;
        d.set_item("run_state", bytes(py, data.run_state))?;
        d.set_item(
            "keyframe_slots",
            bytes(py, le(&data.keyframe_slots, u32::to_le_bytes)),
        )?;
        d.set_item("keyframes", bytes(py, data.keyframes))?;
        d.set_item(
            "alloc_slot",
            bytes(py, le(&data.alloc_slot, u32::to_le_bytes)),
        )?;
        d.set_item(
            "alloc_page",
            bytes(py, le(&data.alloc_page, u16::to_le_bytes)),
        )?;
        d.set_item(
            "alloc_pages",
            bytes(py, le(&data.alloc_pages, u32::to_le_bytes)),
        )?;
        d.set_item("alloc_op", bytes(py, le(&data.alloc_op, u32::to_le_bytes)))?;
        d.set_item("free_op", bytes(py, le(&data.free_op, u32::to_le_bytes)))?;
        d.set_item("keyframe_every", data.keyframe_every)?;
        Ok(d)
    }

    /// The results file (docs/formats.md): one line per result so far, the bounds,
    /// the in-use runs of every grown chunk and, for v2, its scavenged runs.
    fn results_file(&self) -> String {
        self.replay.results_file(&self.pa.get().lock())
    }

    fn __repr__(&self) -> String {
        format!(
            "<TraceReplay v{} ops={} done={} allocs={} go={}>",
            self.trace.version,
            self.trace.ops.len(),
            self.replay.done,
            self.trace.counts.allocations(),
            self.pa.get().lock().go_version().name()
        )
    }
}

/// `max_ops`: how many ops to replay at most, an int of at least 0.
pub(crate) struct MaxOps(usize);

impl<'a, 'py> FromPyObject<'a, 'py> for MaxOps {
    type Error = PyErr;

    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<MaxOps> {
        let v = super::int_arg(
            ob,
            "max_ops must be a count of ops, at least 0",
            "max_ops must be an int or None",
        )?;
        Ok(MaxOps(usize::try_from(v).unwrap_or(usize::MAX)))
    }
}

/// Per allocation of `trace` (converted from `source` by `Trace::for_go`,
/// op `k` from op `from[k]`), the number of the same allocation in `source`,
/// or -1 for an allocation the conversion added.
fn source_allocations(source: &Trace, trace: &Trace, from: &[usize]) -> Vec<i64> {
    use crate::trace::Op;
    let is_alloc = |op: &Op| {
        matches!(
            op,
            Op::Alloc { .. } | Op::AllocConstrained { .. } | Op::AllocAt { .. } | Op::Calloc { .. }
        )
    };
    // Allocation number of each source op that is one.
    let mut number = Vec::with_capacity(source.ops.len());
    let mut n = 0i64;
    for op in &source.ops {
        number.push(if is_alloc(op) {
            n += 1;
            n - 1
        } else {
            -1
        });
    }
    trace
        .ops
        .iter()
        .zip(from)
        .filter(|(op, _)| is_alloc(op))
        .map(|(_, &k)| number[k])
        .collect()
}
