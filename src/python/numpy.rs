//! NumPy's data allocator served by a Heap (NEP 49): `numpy_heap(heap,
//! threshold)` and the `NumpyHeap` it returns.
//!
//! A NEP 49 handler is a `PyCapsule` named "mem_handler" holding a
//! `PyDataMem_Handler`: a name, a version (1) and four C functions
//! (malloc, calloc, realloc, free with the size) with a context pointer.
//! NumPy keeps the current one in a context variable
//! (`PyDataMem_SetHandler`) and every array keeps a reference to the
//! capsule it was allocated with, calling that capsule's functions when it
//! frees or resizes its data, on whatever thread and with or without the
//! GIL. NumPy is looked up at run time through its C-API table (the
//! `_ARRAY_API` capsule): this crate never links against it.
//!
//! The routing, which makes every free find its owner:
//! - An allocation of at least `threshold` bytes comes from the Heap
//!   (`calloc` with `zero`, which clears only pages that were written before:
//!   fresh and scavenged pages are zero already). Everything smaller, and
//!   anything the Heap refuses, goes to the handler that was current when
//!   the `NumpyHeap` was made (kept alive and called through).
//! - A pointer inside the Heap's reservation is the Heap's, anything else
//!   the previous handler's, so `free` and `realloc` route by address,
//!   without a lock and without trusting the size NumPy passes: the pages
//!   of each Heap block are kept in a table (one hash insert and remove per
//!   large array).
//! - `realloc` of a Heap block grows in place when the pages after it are
//!   free, shrinks by freeing its tail, and otherwise moves within the Heap.
//!   A block of the previous handler stays with it (its old size is not
//!   known, so it could not be copied out).
//!
//! Lifetimes: the capsule owns the handler box; the box holds the Python
//! `Heap` (so its memory stays mapped) and the previous handler's capsule;
//! every array holds the capsule. So an array can outlive the `with`
//! block, the `NumpyHeap` and the `Heap` object it came from.
//!
//! `install()` is process-wide: it points NumPy's default handler capsule
//! (the one every context without a handler of its own uses, new threads
//! included) at a handler box of its own, whose previous handler is what the
//! default capsule held (NumPy's own allocator). That box is never freed:
//! arrays made by NumPy's allocator before, and by the Heap meanwhile, all
//! hold the default capsule, so its routing must outlive them all.
//! `uninstall()` makes it send new allocations to the previous handler
//! while it still routes frees and reallocs of Heap blocks to the Heap.

use std::collections::HashMap;
use std::ffi::{c_char, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{null_mut, NonNull};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::thread::ThreadId;

use pyo3::exceptions::{PyImportError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::heap::PyHeap;
use super::U64;
use crate::arch::PAGE_SIZE;
use crate::heap::Heap;

const CAPSULE_NAME: &CStr = c"mem_handler";
/// The name NumPy's `get_handler_name()` reports for arrays made here.
const HANDLER_NAME: &[u8] = b"pagealloc_heap";

// Slots of NumPy's C-API table (numpy/__multiarray_api.h, stable since 1.22).
const API_FEATURE_VERSION: usize = 211;
const API_SET_HANDLER: usize = 304;
const API_GET_HANDLER: usize = 305;
const API_DEFAULT_HANDLER: usize = 306;
/// NPY_1_22_API_VERSION: the first NumPy with NEP 49 handlers.
const NEP49_FEATURE_VERSION: c_uint = 0xf;

type MallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type CallocFn = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void, *mut c_void, usize);

/// NumPy's `PyDataMemAllocator` (version 1).
#[repr(C)]
struct DataMemAllocator {
    ctx: *mut c_void,
    malloc: MallocFn,
    calloc: CallocFn,
    realloc: ReallocFn,
    free: FreeFn,
}

/// NumPy's `PyDataMem_Handler`.
#[repr(C)]
struct DataMemHandler {
    name: [c_char; 127],
    version: u8,
    allocator: DataMemAllocator,
}

/// What a handler routes with (its `ctx`).
struct Router {
    heap: Py<PyHeap>,
    threshold: u64,
    /// The handler everything else goes to. Valid while `prev_capsule`
    /// lives (or forever: NumPy's own default handler is static).
    prev: *const DataMemHandler,
    _prev_capsule: Option<Py<PyAny>>,
    /// Heap blocks handed out and not freed: address -> pages.
    spans: Mutex<HashMap<usize, u64>>,
    /// Whether new allocations may come from the Heap (`uninstall` clears
    /// it for the process-wide handler).
    allocating: AtomicBool,
    heap_allocs: AtomicU64,
    heap_frees: AtomicU64,
    fallback_allocs: AtomicU64,
    grown_in_place: AtomicU64,
    moved: AtomicU64,
    unknown_frees: AtomicU64,
}

/// The capsule's pointer: the handler first (NumPy reads it as a
/// `PyDataMem_Handler*`), its router after it.
#[repr(C)]
struct HandlerBox {
    handler: DataMemHandler,
    router: Router,
}

fn pages_for(size: usize) -> u64 {
    (size as u64).div_ceil(PAGE_SIZE).max(1)
}

impl HandlerBox {
    /// A boxed handler whose `ctx` points at its own router.
    fn new(
        heap: Py<PyHeap>,
        threshold: u64,
        prev: *const DataMemHandler,
        prev_capsule: Option<Py<PyAny>>,
    ) -> Box<HandlerBox> {
        let mut name = [0 as c_char; 127];
        for (d, &s) in name.iter_mut().zip(HANDLER_NAME) {
            *d = s as c_char;
        }
        let mut b = Box::new(HandlerBox {
            handler: DataMemHandler {
                name,
                version: 1,
                allocator: DataMemAllocator {
                    ctx: null_mut(),
                    malloc: h_malloc,
                    calloc: h_calloc,
                    realloc: h_realloc,
                    free: h_free,
                },
            },
            router: Router {
                heap,
                threshold,
                prev,
                _prev_capsule: prev_capsule,
                spans: Mutex::new(HashMap::new()),
                allocating: AtomicBool::new(true),
                heap_allocs: AtomicU64::new(0),
                heap_frees: AtomicU64::new(0),
                fallback_allocs: AtomicU64::new(0),
                grown_in_place: AtomicU64::new(0),
                moved: AtomicU64::new(0),
                unknown_frees: AtomicU64::new(0),
            },
        });
        b.handler.allocator.ctx = &b.router as *const Router as *mut c_void;
        b
    }
}

impl Router {
    fn engine(&self) -> &Heap {
        &self.heap.get().inner
    }

    fn spans(&self) -> std::sync::MutexGuard<'_, HashMap<usize, u64>> {
        // Nothing panics while the table is locked but an allocation
        // failure inside HashMap; its contents stay valid either way.
        self.spans.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prev(&self) -> &DataMemAllocator {
        // SAFETY: `prev` is valid while this router lives (see the field).
        unsafe { &(*self.prev).allocator }
    }

    /// A Heap block of `size` bytes, or None when the size is below the
    /// threshold, allocating is off, or the Heap refuses.
    fn heap_alloc(&self, size: usize, zero: bool) -> Option<*mut c_void> {
        if (size as u64) < self.threshold || !self.allocating.load(Relaxed) {
            return None;
        }
        let n = pages_for(size);
        let p = self.engine().alloc(n, zero).ok()?;
        self.spans().insert(p.as_ptr() as usize, n);
        self.heap_allocs.fetch_add(1, Relaxed);
        Some(p.as_ptr().cast())
    }

    fn malloc(&self, size: usize) -> *mut c_void {
        if let Some(p) = self.heap_alloc(size, false) {
            return p;
        }
        self.fallback_allocs.fetch_add(1, Relaxed);
        let a = self.prev();
        // SAFETY: the previous handler's own function and context.
        unsafe { (a.malloc)(a.ctx, size) }
    }

    fn calloc(&self, nelem: usize, elsize: usize) -> *mut c_void {
        let Some(size) = nelem.checked_mul(elsize) else {
            return null_mut();
        };
        if let Some(p) = self.heap_alloc(size, true) {
            return p;
        }
        self.fallback_allocs.fetch_add(1, Relaxed);
        let a = self.prev();
        // SAFETY: the previous handler's own function and context.
        unsafe { (a.calloc)(a.ctx, nelem, elsize) }
    }

    fn free(&self, ptr: *mut c_void, size: usize) {
        let Some(p) = NonNull::new(ptr.cast::<u8>()) else {
            return;
        };
        if self.engine().contains(p.as_ptr()) {
            match self.spans().remove(&(p.as_ptr() as usize)) {
                Some(n) => {
                    // Cannot fail for a block this table holds.
                    let _ = self.engine().free(p, n);
                    self.heap_frees.fetch_add(1, Relaxed);
                }
                None => {
                    self.unknown_frees.fetch_add(1, Relaxed);
                }
            }
            return;
        }
        let a = self.prev();
        // SAFETY: not the Heap's: the previous handler's block.
        unsafe { (a.free)(a.ctx, ptr, size) }
    }

    fn realloc(&self, ptr: *mut c_void, new_size: usize) -> *mut c_void {
        let Some(p) = NonNull::new(ptr.cast::<u8>()) else {
            return self.malloc(new_size);
        };
        if !self.engine().contains(p.as_ptr()) {
            let a = self.prev();
            // SAFETY: the previous handler's block, with its own realloc.
            return unsafe { (a.realloc)(a.ctx, ptr, new_size) };
        }
        let key = p.as_ptr() as usize;
        let Some(old) = self.spans().get(&key).copied() else {
            self.unknown_frees.fetch_add(1, Relaxed);
            return null_mut();
        };
        let new = pages_for(new_size);
        let engine = self.engine();
        match engine.resize_in_place(p, old, new) {
            Ok(true) => {
                self.spans().insert(key, new);
                if new > old {
                    self.grown_in_place.fetch_add(1, Relaxed);
                }
                return ptr;
            }
            // Keeping or shrinking a block of the table cannot fail.
            _ if new <= old => return ptr,
            _ => {}
        }
        let Ok(q) = engine.alloc(new, false) else {
            // The Heap has no room: the block moves to the previous handler,
            // as an allocation of this size would have gone there.
            self.fallback_allocs.fetch_add(1, Relaxed);
            let a = self.prev();
            // SAFETY: the previous handler's own function and context.
            let q = unsafe { (a.malloc)(a.ctx, new_size) };
            if q.is_null() {
                return null_mut(); // realloc's contract: the old block stays valid
            }
            // SAFETY: a Heap block of `old` pages and a new block of
            // `new_size` bytes, more than `old` pages hold (else the block
            // was kept above); distinct blocks.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    p.as_ptr(),
                    q.cast::<u8>(),
                    (old * PAGE_SIZE) as usize,
                )
            };
            self.spans().remove(&key);
            let _ = engine.free(p, old);
            self.moved.fetch_add(1, Relaxed);
            return q;
        };
        // SAFETY: two distinct Heap blocks; the old one holds `old` pages,
        // fewer than the new one.
        unsafe {
            std::ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr(), (old * PAGE_SIZE) as usize)
        };
        {
            let mut spans = self.spans();
            spans.remove(&key);
            spans.insert(q.as_ptr() as usize, new);
        }
        let _ = engine.free(p, old);
        self.moved.fetch_add(1, Relaxed);
        q.as_ptr().cast()
    }
}

/// Runs a handler function, turning a panic (a bug) into a failed
/// allocation instead of unwinding into NumPy's C code.
fn no_unwind<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// # Safety
///
/// `ctx` is the `ctx` of a handler this module made (a live `Router`).
unsafe extern "C" fn h_malloc(ctx: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: the caller's contract.
    let r = unsafe { &*(ctx as *const Router) };
    no_unwind(null_mut(), || r.malloc(size))
}

/// # Safety
///
/// As [`h_malloc`].
unsafe extern "C" fn h_calloc(ctx: *mut c_void, nelem: usize, elsize: usize) -> *mut c_void {
    // SAFETY: the caller's contract.
    let r = unsafe { &*(ctx as *const Router) };
    no_unwind(null_mut(), || r.calloc(nelem, elsize))
}

/// # Safety
///
/// As [`h_malloc`]; `ptr` is null or a block this handler (or the one it
/// falls back to) allocated.
unsafe extern "C" fn h_realloc(ctx: *mut c_void, ptr: *mut c_void, new_size: usize) -> *mut c_void {
    // SAFETY: the caller's contract.
    let r = unsafe { &*(ctx as *const Router) };
    no_unwind(null_mut(), || r.realloc(ptr, new_size))
}

/// # Safety
///
/// As [`h_realloc`].
unsafe extern "C" fn h_free(ctx: *mut c_void, ptr: *mut c_void, size: usize) {
    // SAFETY: the caller's contract.
    let r = unsafe { &*(ctx as *const Router) };
    no_unwind((), || r.free(ptr, size))
}

/// Frees the handler box when the capsule's last reference goes (the
/// `NumpyHeap` and every array made with it are gone).
///
/// # Safety
///
/// Called by Python with the GIL held, on a capsule this module made.
unsafe extern "C" fn destroy_capsule(cap: *mut ffi::PyObject) {
    // SAFETY: a capsule of ours, named CAPSULE_NAME, holding a leaked Box.
    unsafe {
        let p = ffi::PyCapsule_GetPointer(cap, CAPSULE_NAME.as_ptr());
        if !p.is_null() {
            drop(Box::from_raw(p.cast::<HandlerBox>()));
        }
    }
}

/// NumPy's C-API table, looked up at run time.
#[derive(Clone, Copy)]
struct NumpyApi(*const *const c_void);

// SAFETY: the table is immutable, static data of NumPy's extension module.
unsafe impl Send for NumpyApi {}
// SAFETY: as above.
unsafe impl Sync for NumpyApi {}

impl NumpyApi {
    fn load(py: Python<'_>) -> PyResult<NumpyApi> {
        let module = py
            .import("numpy._core._multiarray_umath")
            .or_else(|_| py.import("numpy.core._multiarray_umath"))
            .map_err(|_| {
                PyImportError::new_err("numpy_heap needs NumPy (1.22 or later): pip install numpy")
            })?;
        let cap = module.getattr("_ARRAY_API")?;
        // SAFETY: NumPy's `_ARRAY_API` is a capsule (checked) whose pointer
        // is its C-API table of function and data pointers.
        let table = unsafe {
            if ffi::PyCapsule_CheckExact(cap.as_ptr()) == 0 {
                return Err(PyRuntimeError::new_err(
                    "numpy's _ARRAY_API is not a capsule",
                ));
            }
            ffi::PyCapsule_GetPointer(cap.as_ptr(), std::ptr::null()) as *const *const c_void
        };
        if table.is_null() {
            return Err(PyErr::fetch(py));
        }
        let api = NumpyApi(table);
        // SAFETY: slot 211 is PyArray_GetNDArrayCFeatureVersion in every
        // NumPy with this table.
        let version = unsafe {
            let f: unsafe extern "C" fn() -> c_uint =
                std::mem::transmute(api.slot(API_FEATURE_VERSION));
            f()
        };
        if version < NEP49_FEATURE_VERSION {
            return Err(PyImportError::new_err(format!(
                "numpy_heap needs NumPy 1.22 or later (C-API feature version {NEP49_FEATURE_VERSION:#x}), this one has {version:#x}"
            )));
        }
        Ok(api)
    }

    fn slot(&self, i: usize) -> *const c_void {
        // SAFETY: `i` is one of the slots named above, all inside the table.
        unsafe { *self.0.add(i) }
    }

    /// `PyDataMem_SetHandler(handler)`: the previous handler (new reference).
    fn set_handler<'py>(
        &self,
        py: Python<'py>,
        handler: *mut ffi::PyObject,
    ) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: slot 304 is PyDataMem_SetHandler(PyObject*) -> PyObject*
        // (a new reference, or NULL with an exception set).
        unsafe {
            let f: unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject =
                std::mem::transmute(self.slot(API_SET_HANDLER));
            Bound::from_owned_ptr_or_err(py, f(handler))
        }
    }

    /// `PyDataMem_GetHandler()`: the current handler (new reference).
    fn get_handler<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: slot 305 is PyDataMem_GetHandler(void) -> PyObject* (new
        // reference, or NULL with an exception set).
        unsafe {
            let f: unsafe extern "C" fn() -> *mut ffi::PyObject =
                std::mem::transmute(self.slot(API_GET_HANDLER));
            Bound::from_owned_ptr_or_err(py, f())
        }
    }

    /// `PyDataMem_DefaultHandler`: NumPy's default handler capsule.
    fn default_handler(&self) -> *mut ffi::PyObject {
        // SAFETY: slot 306 is the address of the PyObject* variable holding
        // NumPy's default handler capsule (alive for the process).
        unsafe { *(self.slot(API_DEFAULT_HANDLER) as *const *mut ffi::PyObject) }
    }
}

/// The handler pointer of a "mem_handler" capsule.
fn handler_of(cap: *mut ffi::PyObject) -> PyResult<*const DataMemHandler> {
    // SAFETY: PyCapsule_GetPointer checks the type and the name; it sets an
    // exception and returns NULL otherwise.
    let p = unsafe { ffi::PyCapsule_GetPointer(cap, CAPSULE_NAME.as_ptr()) };
    if p.is_null() {
        return Err(PyTypeError::new_err("not a NumPy memory handler capsule"));
    }
    Ok(p as *const DataMemHandler)
}

/// The process-wide handler installed into NumPy's default capsule (never
/// freed; see the module docs), and whose heap it serves.
struct Installed(&'static HandlerBox);
// SAFETY: the box is immutable but for atomics and its mutex-guarded table.
unsafe impl Send for Installed {}

static INSTALLED: Mutex<Vec<Installed>> = Mutex::new(Vec::new());

/// NumPy's array data from a Heap (NEP 49); made by `numpy_heap()`.
#[pyclass(frozen, name = "NumpyHeap", module = "pagealloc._pagealloc")]
pub(crate) struct PyNumpyHeap {
    capsule: Py<PyAny>,
    heap: Py<PyHeap>,
    threshold: u64,
    api: NumpyApi,
    /// Per thread, the handlers `with` replaced, to put back on exit.
    entered: Mutex<HashMap<ThreadId, Vec<Py<PyAny>>>>,
}

impl PyNumpyHeap {
    fn router(&self) -> &Router {
        // SAFETY: `capsule` is ours and alive as long as self; it points to
        // the HandlerBox it owns.
        unsafe {
            let p = ffi::PyCapsule_GetPointer(self.capsule.as_ptr(), CAPSULE_NAME.as_ptr());
            &(*(p as *const HandlerBox)).router
        }
    }

    fn same_heap(&self, r: &Router) -> bool {
        r.heap.as_ptr() == self.heap.as_ptr()
    }
}

#[pymethods]
impl PyNumpyHeap {
    /// Makes this handler current in the calling context (NumPy's
    /// `PyDataMem_SetHandler`); `__exit__` puts back the one it replaced.
    fn __enter__(slf: &Bound<'_, Self>) -> PyResult<Py<Self>> {
        let me = slf.get();
        let old = me.api.set_handler(slf.py(), me.capsule.as_ptr())?;
        let mut e = me.entered.lock().unwrap_or_else(|e| e.into_inner());
        e.entry(std::thread::current().id())
            .or_default()
            .push(old.unbind());
        Ok(slf.clone().unbind())
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let old = {
            let mut e = self.entered.lock().unwrap_or_else(|e| e.into_inner());
            e.get_mut(&std::thread::current().id()).and_then(Vec::pop)
        };
        let Some(old) = old else {
            return Err(PyRuntimeError::new_err(
                "__exit__ without __enter__ on this thread",
            ));
        };
        self.api.set_handler(py, old.as_ptr())?;
        Ok(false)
    }

    /// Serves every context of the process (new threads too) from this
    /// Heap, until `uninstall()`: NumPy's default handler is pointed at
    /// this heap's process-wide handler. Installing the same heap again
    /// does nothing; a second heap waits for the first to be uninstalled.
    fn install(&self, py: Python<'_>) -> PyResult<()> {
        let mut inst = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = inst.iter().find(|b| b.0.router.allocating.load(Relaxed)) {
            if self.same_heap(&live.0.router) {
                return Ok(());
            }
            return Err(PyRuntimeError::new_err(
                "another Heap is installed as NumPy's allocator; uninstall() it first",
            ));
        }
        if let Some(mine) = inst
            .iter()
            .find(|b| self.same_heap(&b.0.router) && b.0.router.threshold == self.threshold)
        {
            mine.0.router.allocating.store(true, Relaxed);
            return Ok(());
        }
        let default = self.api.default_handler();
        let prev = handler_of(default)?;
        let b: &'static HandlerBox = Box::leak(HandlerBox::new(
            self.heap.clone_ref(py),
            self.threshold,
            prev,
            None,
        ));
        // SAFETY: `default` is NumPy's default capsule; the new pointer is
        // a handler that never goes away, whose previous handler is the
        // one the capsule held (static in NumPy, or an earlier box).
        let rc = unsafe {
            ffi::PyCapsule_SetPointer(default, &b.handler as *const DataMemHandler as *mut c_void)
        };
        if rc != 0 {
            return Err(PyErr::fetch(py));
        }
        inst.push(Installed(b));
        Ok(())
    }

    /// Stops serving new arrays of the whole process from the Heap (they go
    /// to NumPy's allocator again); arrays already in the Heap stay there
    /// and are freed into it. Errors unless this heap is installed.
    fn uninstall(&self) -> PyResult<()> {
        let inst = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        match inst
            .iter()
            .find(|b| self.same_heap(&b.0.router) && b.0.router.allocating.load(Relaxed))
        {
            Some(b) => {
                b.0.router.allocating.store(false, Relaxed);
                Ok(())
            }
            None => Err(PyRuntimeError::new_err(
                "this numpy_heap's Heap is not installed",
            )),
        }
    }

    /// Whether this heap is installed process-wide now.
    #[getter]
    fn installed(&self) -> bool {
        let inst = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        inst.iter()
            .any(|b| self.same_heap(&b.0.router) && b.0.router.allocating.load(Relaxed))
    }

    /// The capsule NumPy calls (name "mem_handler").
    #[getter]
    fn capsule(&self, py: Python<'_>) -> Py<PyAny> {
        self.capsule.clone_ref(py)
    }

    #[getter]
    fn heap(&self, py: Python<'_>) -> Py<PyHeap> {
        self.heap.clone_ref(py)
    }

    /// Arrays of at least this many bytes come from the Heap.
    #[getter]
    fn threshold(&self) -> u64 {
        self.threshold
    }

    /// The handler's name, as NumPy's get_handler_name() reports it.
    #[getter]
    fn name(&self) -> &'static str {
        "pagealloc_heap"
    }

    /// What this handler (and, when installed, the process-wide one of
    /// the same heap) did: heap_allocs, heap_frees, fallback_allocs,
    /// grown_in_place, moved, unknown_frees, live_blocks, live_bytes.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let inst = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
        let mut routers: Vec<&Router> = vec![self.router()];
        routers.extend(
            inst.iter()
                .map(|b| &b.0.router)
                .filter(|r| self.same_heap(r)),
        );
        let sum = |f: &dyn Fn(&Router) -> u64| routers.iter().map(|r| f(r)).sum::<u64>();
        d.set_item("heap_allocs", sum(&|r| r.heap_allocs.load(Relaxed)))?;
        d.set_item("heap_frees", sum(&|r| r.heap_frees.load(Relaxed)))?;
        d.set_item("fallback_allocs", sum(&|r| r.fallback_allocs.load(Relaxed)))?;
        d.set_item("grown_in_place", sum(&|r| r.grown_in_place.load(Relaxed)))?;
        d.set_item("moved", sum(&|r| r.moved.load(Relaxed)))?;
        d.set_item("unknown_frees", sum(&|r| r.unknown_frees.load(Relaxed)))?;
        d.set_item("live_blocks", sum(&|r| r.spans().len() as u64))?;
        d.set_item(
            "live_bytes",
            sum(&|r| r.spans().values().sum::<u64>() * PAGE_SIZE),
        )?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "NumpyHeap(threshold={}, heap_base={:#x}, installed={})",
            self.threshold,
            self.heap.get().inner.base(),
            if self.installed() { "True" } else { "False" }
        )
    }
}

/// A NumPy data-memory handler (NEP 49) backed by `heap`: arrays of at
/// least `threshold` bytes come from the heap, the rest from the handler
/// current now. Use it as a context manager (`with numpy_heap(h): ...`,
/// the current context only) or `install()` it for the whole process.
#[pyfunction]
#[pyo3(signature = (heap, threshold = U64(64 << 10)))]
pub(crate) fn numpy_heap(
    py: Python<'_>,
    heap: Bound<'_, PyHeap>,
    threshold: U64,
) -> PyResult<PyNumpyHeap> {
    if threshold.0 == 0 {
        return Err(PyValueError::new_err(
            "threshold must be at least 1 byte, got 0",
        ));
    }
    let api = NumpyApi::load(py)?;
    let current = api.get_handler(py)?;
    let prev = handler_of(current.as_ptr())?;
    let b = HandlerBox::new(
        heap.clone().unbind(),
        threshold.0,
        prev,
        Some(current.unbind()),
    );
    let raw = Box::into_raw(b);
    // SAFETY: a fresh capsule owning the box (freed by destroy_capsule).
    let cap =
        unsafe { ffi::PyCapsule_New(raw.cast(), CAPSULE_NAME.as_ptr(), Some(destroy_capsule)) };
    // SAFETY: NULL with an exception set, else a new reference.
    let cap = match unsafe { Bound::from_owned_ptr_or_err(py, cap) } {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: the capsule was not made, so the box is still ours.
            drop(unsafe { Box::from_raw(raw) });
            return Err(e);
        }
    };
    Ok(PyNumpyHeap {
        capsule: cap.unbind(),
        heap: heap.unbind(),
        threshold: threshold.0,
        api,
        entered: Mutex::new(HashMap::new()),
    })
}
