//! The one replay loop of the project: the Python binding, the replay
//! example, the scenarios, the census and the view all drive traces
//! through [`Replay`].

use std::fmt;

use super::ops::{Op, OpKind, SawFind};
use super::parse::{Trace, TraceError};
use crate::alloc::PageAlloc;
use crate::cache::PageCache;
use crate::error::Error;

/// Why one trace op could not be applied.
#[derive(Debug)]
pub enum StepError {
    /// The engine refused the op.
    Engine(Error),
    /// `free K` names an allocation that returned nothing.
    FreeOfFailedAlloc { k: usize },
    /// `free K`, `calloc C` or `flush C` names something the replay has not
    /// seen (only possible for traces built with [`Trace::from_ops`]).
    NoSuch { what: &'static str, k: usize },
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Engine(e)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Engine(e) => e.fmt(f),
            StepError::FreeOfFailedAlloc { k } => write!(
                f,
                "free {k}: allocation {k} failed (returned 0x0), so there is nothing to free"
            ),
            StepError::NoSuch { what, k } => write!(f, "there is no {what} {k} yet"),
        }
    }
}

impl std::error::Error for StepError {}

/// The error of op `i` of `trace`, named by its line (kept off the loop).
#[cold]
#[inline(never)]
fn step_failed(trace: &Trace, i: usize, e: StepError) -> TraceError {
    TraceError {
        line: trace.lines[i],
        msg: e.to_string(),
    }
}

/// Measures ops during a replay: [`Replay::run_to`] calls `start` before
/// and `stop` after each op. The unit type measures nothing and compiles away.
pub trait OpTimer {
    /// Whether this timer measures anything; when not, the replay loop
    /// skips it (and the op's kind) altogether.
    const ENABLED: bool = true;
    /// What `start` hands to `stop` (a timestamp, say).
    type Mark;
    fn start(&mut self, kind: OpKind) -> Self::Mark;
    fn stop(&mut self, kind: OpKind, mark: Self::Mark);
}

impl OpTimer for () {
    const ENABLED: bool = false;
    type Mark = ();
    #[inline(always)]
    fn start(&mut self, _: OpKind) {}
    #[inline(always)]
    fn stop(&mut self, _: OpKind, _: ()) {}
}

/// One allocation of a replay: an `alloc`, `allocat` or `calloc` op.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Its address; 0 when it failed.
    pub addr: u64,
    /// The pages it asked for.
    pub npages: u64,
    /// How many of its bytes were scavenged (a v1 results file leaves
    /// this out).
    pub scav: u64,
}

/// The result of one v2 or v3 op, other than an allocation, that has a
/// result line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `scavenge`: the bytes released.
    Scavenged(u64),
    /// `cache`: the cache as taken.
    Cache(PageCache),
    /// `scavfind`: the chunk and page the index's find returned (chunk 0:
    /// nothing left).
    Found { ci: u64, page: u64 },
    /// `scavtake`: the run taken to release (address 0: none, the chunk was
    /// marked empty).
    Taken { addr: u64, npages: u64 },
}

/// A scavenger step in progress in a replay (`scavfind` .. `scavgive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScavStep {
    /// What the call still had to release when the step began (its `max`).
    pub max: u64,
    /// What `find` returned (`None`: nothing).
    pub found: Option<(u64, u64)>,
    /// What `scavengeOne` took (`None`: nothing, or not yet).
    pub taken: Option<(u64, u64)>,
}

/// The state of a replay in progress. This is the one replay loop of the
/// project: the Python binding, the replay example, the scenarios and the
/// tests all drive traces through it.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Every allocation so far (`alloc`, `allocat` and `calloc` ops), in
    /// trace order: allocation `k` is what `free K` frees.
    pub allocs: Vec<Allocation>,
    /// The caches taken so far (v2), by `cache` line; flushed ones are empty.
    pub caches: Vec<PageCache>,
    /// The results of a v2 or v3 replay's other ops (scavenges, caches,
    /// scavenger steps) in trace order, each with the number of allocations
    /// made before it: the results file puts it after those allocations'
    /// lines. (Allocations are kept apart, in `allocs`, so that replaying
    /// one writes one record.)
    pub outcomes: Vec<(usize, Outcome)>,
    /// The scavenger steps so far, by `scavfind` line.
    pub steps: Vec<ScavStep>,
    /// `scavfind` ops whose `find` raced with another P in the recorded
    /// run: the replay followed what Go saw (`saw=`, `cursor=`).
    pub followed: usize,
    /// Of those, how many the replay's own `find` would have answered
    /// otherwise.
    pub followed_differed: usize,
    /// Ops replayed so far (the next op to run is `ops[done]`).
    pub done: usize,
    /// A what-if replay: the trace was recorded on another machine or Go, so
    /// where this replay's scavenger held other pages, an allocation may
    /// have failed that succeeded there (its `free K` is then skipped) and a
    /// step's take or give back may have nothing to do (skipped too).
    /// `false` (the default): each of those is an error.
    pub lenient: bool,
    /// Ops a lenient replay skipped.
    pub skipped: usize,
    /// Whether a raced find's `saw=` is followed (the default); a what-if on
    /// another machine computes its own.
    pub follow_races: bool,
    /// A v2 or v3 trace: the results file has scavenged bytes with each
    /// allocation, the other ops' results and `scav` lines.
    pub(super) scav_results: bool,
}

impl Replay {
    /// An empty replay with room for the allocations of `trace`.
    pub fn new(trace: &Trace) -> Replay {
        let allocs = trace.counts.allocations();
        let scav_results = trace.version >= 2;
        Replay {
            allocs: Vec::with_capacity(allocs),
            caches: Vec::with_capacity(trace.counts.of(OpKind::Cache)),
            outcomes: Vec::new(),
            steps: Vec::new(),
            followed: 0,
            followed_differed: 0,
            done: 0,
            lenient: false,
            skipped: 0,
            follow_races: true,
            scav_results,
        }
    }

    #[inline(always)]
    fn allocated(&mut self, addr: Option<u64>, npages: u64, scav: u64) {
        self.allocs.push(Allocation {
            addr: addr.unwrap_or(0),
            npages,
            scav,
        });
    }

    #[inline]
    fn outcome(&mut self, o: Outcome) {
        self.outcomes.push((self.allocs.len(), o));
    }

    /// Applies one op. A `free` of an allocation that failed is an error.
    #[inline]
    pub fn step(&mut self, pa: &mut PageAlloc, op: &Op) -> Result<(), StepError> {
        self.step_observed(pa, op, &mut |_, _| {})
    }

    /// [`step`](Self::step), calling `release(addr, bytes)` for each run the
    /// scavenger releases (where Go calls `sysUnused`: once per
    /// `madvise`). With a closure that does nothing it is `step`.
    #[inline]
    pub fn step_observed(
        &mut self,
        pa: &mut PageAlloc,
        op: &Op,
        release: &mut impl FnMut(u64, u64),
    ) -> Result<(), StepError> {
        match *op {
            Op::Grow { base, size } => pa.grow(base, size)?,
            Op::Alloc { npages } => {
                let (a, scav) = pa.alloc_scav(npages)?;
                self.allocated(a, npages, scav);
            }
            Op::AllocConstrained {
                npages,
                align,
                within,
            } => {
                let (a, scav) = pa.alloc_constrained(npages, align, within)?;
                self.allocated(a, npages, scav);
            }
            Op::AllocAt { addr, npages } => match pa.alloc_at(addr, npages) {
                Ok(scav) => self.allocated(Some(addr), npages, scav),
                // Not all grown and free: the allocation fails, as in the
                // trace format.
                Err(Error::NotFree { .. }) | Err(Error::BeyondAddressSpace { .. }) => {
                    self.allocated(None, npages, 0)
                }
                Err(e) => return Err(e.into()),
            },
            Op::Free { k } => {
                let Some(&Allocation {
                    addr: a, npages: n, ..
                }) = self.allocs.get(k)
                else {
                    return Err(StepError::NoSuch {
                        what: "allocation",
                        k,
                    });
                };
                if a == 0 {
                    if self.lenient {
                        self.skipped += 1;
                        return Ok(());
                    }
                    return Err(StepError::FreeOfFailedAlloc { k });
                }
                pa.free(a, n)?
            }
            Op::Scavenge { nbytes, bg, stop } => self.scavenge(pa, nbytes, bg, stop, release)?,
            Op::NextGen => pa.next_gen()?,
            Op::Pad { addr, npages } => pa.mark_padding(addr, npages)?,
            Op::Cache => {
                let c = pa.alloc_to_cache()?;
                self.caches.push(c);
                self.outcome(Outcome::Cache(c));
            }
            Op::Calloc { c, npages } => {
                let cache = self.cache(c)?;
                let (a, scav) = cache.alloc(npages)?;
                self.allocated(a, npages, scav);
            }
            Op::Flush { c } => {
                let mut cache = *self.cache(c)?;
                cache.flush(pa)?;
                self.caches[c] = cache;
            }
            Op::ScavFind { nbytes, bg, saw } => self.scav_find(pa, nbytes, bg, saw)?,
            Op::ScavTake { s } => self.scav_take(pa, s)?,
            Op::ScavGive { s } => self.scav_give(pa, s, release)?,
        }
        Ok(())
    }

    /// `scavenge NBYTES [bg] [stop=K]`: a whole scavenge call (kept out of
    /// `step`'s hot path: the scavenger's loop inlined there costs the
    /// allocation ops registers).
    #[cold]
    #[inline(never)]
    fn scavenge(
        &mut self,
        pa: &mut PageAlloc,
        nbytes: u64,
        bg: bool,
        stop: Option<u64>,
        release: &mut impl FnMut(u64, u64),
    ) -> Result<(), StepError> {
        let how = crate::Scavenge {
            force: !bg,
            max_steps: stop,
        };
        let r = pa.scavenge_with(nbytes, how, &mut *release)?;
        self.outcome(Outcome::Scavenged(r));
        Ok(())
    }

    /// `scavtake S`: the second part of a step (kept out of `step`'s hot
    /// path, like the rest of the step parts).
    #[cold]
    #[inline(never)]
    fn scav_take(&mut self, pa: &mut PageAlloc, s: usize) -> Result<(), StepError> {
        let step = self.step_at(s)?;
        let Some((ci, page)) = step.found else {
            if self.lenient {
                self.skipped += 1;
                self.outcome(Outcome::Taken { addr: 0, npages: 0 });
                return Ok(());
            }
            return Err(StepError::Engine(Error::BadScavengeStep(format!(
                "scavtake {s}: its find found nothing"
            ))));
        };
        let taken = pa.scavenge_take(ci, page, step.max)?;
        self.steps[s].taken = taken;
        let (addr, npages) = taken.unwrap_or((0, 0));
        self.outcome(Outcome::Taken { addr, npages });
        Ok(())
    }

    /// `scavgive S`: the third part of a step.
    #[cold]
    #[inline(never)]
    fn scav_give(
        &mut self,
        pa: &mut PageAlloc,
        s: usize,
        release: &mut impl FnMut(u64, u64),
    ) -> Result<(), StepError> {
        let Some((addr, npages)) = self.step_at(s)?.taken else {
            if self.lenient {
                self.skipped += 1;
                return Ok(());
            }
            return Err(StepError::Engine(Error::BadScavengeStep(format!(
                "scavgive {s}: its scavtake took nothing"
            ))));
        };
        release(addr, npages << pa.layout().page_shift);
        pa.scavenge_give(addr, npages)?;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn scav_find(
        &mut self,
        pa: &mut PageAlloc,
        max: u64,
        bg: bool,
        saw: Option<SawFind>,
    ) -> Result<(), StepError> {
        let mut found = pa.scavenge_find(!bg)?;
        if let Some(saw) = saw.filter(|_| self.follow_races) {
            // Go's lock-free find raced with another P: follow what it saw.
            let seen = (saw.ci != 0).then_some((saw.ci, saw.page));
            self.followed += 1;
            self.followed_differed += usize::from(seen != found);
            pa.set_scavenge_cursor(!bg, saw.cursor, saw.marked)?;
            found = seen;
        }
        self.steps.push(ScavStep {
            max,
            found,
            taken: None,
        });
        let (ci, page) = found.unwrap_or((0, 0));
        self.outcome(Outcome::Found { ci, page });
        Ok(())
    }

    fn step_at(&self, s: usize) -> Result<ScavStep, StepError> {
        self.steps.get(s).copied().ok_or(StepError::NoSuch {
            what: "scavenger step",
            k: s,
        })
    }

    fn cache(&mut self, c: usize) -> Result<&mut PageCache, StepError> {
        self.caches.get_mut(c).ok_or(StepError::NoSuch {
            what: "cache",
            k: c,
        })
    }

    /// Before the first op: checks that `pa` follows the trace's Go and
    /// gives it the trace's machine (v2, v3: its physical and huge page
    /// sizes, from the headers or linux/amd64's).
    pub fn prepare(&mut self, pa: &mut PageAlloc, trace: &Trace) -> Result<(), TraceError> {
        // v1 (grow, alloc, free) means the same in every Go; v2 is Go
        // 1.19's, v3 Go 1.26's.
        let want = trace.go_version();
        if trace.version >= 2 && pa.go_version() != want {
            return Err(TraceError {
                line: trace.lines.first().copied().unwrap_or(1),
                msg: format!(
                    "a v{} trace replays with {want}'s page allocator, not {}'s",
                    trace.version,
                    pa.go_version()
                ),
            });
        }
        if self.scav_results {
            // The machine of the trace (its headers, else linux/amd64).
            let line = trace.lines.first().copied().unwrap_or(1);
            let machine = |e: Error| TraceError {
                line,
                msg: e.to_string(),
            };
            if pa.phys_page_size() != trace.phys_page {
                pa.set_phys_page_size(trace.phys_page).map_err(machine)?;
            }
            pa.set_phys_huge_page_size(trace.huge_page)
                .map_err(machine)?;
        }
        Ok(())
    }

    /// Replays the next ops of `trace` up to (not including) op `to`, timing
    /// each with `timer`. Stops at the first op that fails, naming its line;
    /// `done` then counts the ops that succeeded. A v2 or v3 replay first
    /// gives `pa` the trace's machine ([`Replay::prepare`]);
    /// `pa` must follow a v2 or v3 trace's Go version ([`Trace::go_version`];
    /// v1 replays on either).
    #[inline]
    pub fn run_to<T: OpTimer>(
        &mut self,
        pa: &mut PageAlloc,
        trace: &Trace,
        to: usize,
        timer: &mut T,
    ) -> Result<(), TraceError> {
        if self.done == 0 {
            self.prepare(pa, trace)?;
        }
        let ops = &trace.ops[..to.min(trace.ops.len())];
        // The op index lives in a register for the loop (`step` writes
        // through `self`, so `self.done` would be reloaded every op).
        let mut i = self.done;
        let res = loop {
            let Some(op) = ops.get(i) else {
                break Ok(());
            };
            let res = if T::ENABLED {
                let mark = timer.start(op.kind());
                let res = self.step(pa, op);
                timer.stop(op.kind(), mark);
                res
            } else {
                self.step(pa, op)
            };
            if let Err(e) = res {
                break Err(e);
            }
            i += 1;
        };
        self.done = i;
        res.map_err(|e| step_failed(trace, i, e))
    }

    /// Replays a whole trace on `pa`, naming the line of the first op that fails.
    pub fn run(pa: &mut PageAlloc, trace: &Trace) -> Result<Replay, TraceError> {
        let mut r = Replay::new(trace);
        r.run_to(pa, trace, trace.ops.len(), &mut ())?;
        Ok(r)
    }
}
