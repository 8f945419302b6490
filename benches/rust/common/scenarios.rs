//! The six benchmark scenarios (docs/benchmarks.md), as trace ops
//! with a timed window, so that the criterion benches, the `scenarios`
//! example and Go's harness (tests/goharness) all run exactly the same work.
//!
//! Every scenario starts from a fresh allocator; ops before `from` are untimed
//! set-up, ops in `[from, to)` are timed as one block, ops after `to` are
//! untimed checks. `units` is the denominator of ns/op.
//!
//! Included (with `#[path]`) by the criterion bench and the `scenarios`
//! example, next to `tests/common/splitmix.rs`: benchmark scaffolding stays
//! out of the library's public API.
#![allow(dead_code)]

use std::time::Instant;

use pagealloc::trace::{Op, Outcome, Replay, Trace, TraceError};
use pagealloc::{Arch, GoVersion, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};

/// Whose Go's allocator the scenarios run on: `PAGEALLOC_GO` (`1.19` or
/// `1.26`), else the library's default (Go 1.26). Scenarios a-e are v1
/// traces, the same in both; f's page caches are v2 under Go 1.19 and v3
/// under Go 1.26.
pub fn scenario_go() -> GoVersion {
    std::env::var("PAGEALLOC_GO")
        .ok()
        .and_then(|v| GoVersion::parse(&v).ok())
        .unwrap_or_default()
}

use crate::splitmix::SplitMix64;

/// `page_base(BASE_CHUNK_IDX, 0)` on amd64.
pub const BASE: u64 = 0x30_0000_0000;

/// The scenario's check of a finished run: whether the allocator and the
/// replay's results are as the scenario requires.
pub type Check = fn(&PageAlloc, &Replay) -> bool;

/// One scenario: its ops, the timed window, the ns/op denominator and the
/// result check.
pub struct Scenario {
    pub name: &'static str,
    pub trace: Trace,
    pub from: usize,
    pub to: usize,
    pub units: u64,
    pub check: Check,
}

fn grow(chunks: u64) -> Op {
    Op::Grow {
        base: BASE,
        size: chunks * PALLOC_CHUNK_BYTES,
    }
}

fn alloc(npages: u64) -> Op {
    Op::Alloc { npages }
}

/// a. alloc1-exhaust: 32768 x alloc(1) on 64 chunks, then one failing alloc(1).
pub fn alloc1_exhaust() -> Scenario {
    let mut ops = vec![grow(64)];
    ops.extend((0..=32768).map(|_| alloc(1)));
    Scenario {
        name: "a_alloc1_exhaust",
        trace: Trace::from_ops(1, ops),
        from: 1,
        to: 32769,
        units: 32768,
        check: |_, r| {
            (0..32768).all(|i| r.allocs[i].addr == BASE + i as u64 * PAGE_SIZE)
                && r.allocs[32768].addr == 0
        },
    }
}

/// b. alloc-free-1: first half full, then 200000 x {alloc(1), free it}.
pub fn alloc_free_1() -> Scenario {
    let mut ops = vec![grow(64), alloc(16384)];
    for k in 1..=200_000 {
        ops.extend([alloc(1), Op::Free { k }]);
    }
    let to = ops.len();
    Scenario {
        name: "b_alloc_free_1_pair",
        trace: Trace::from_ops(1, ops),
        from: 2,
        to,
        units: 200_000,
        check: |_, r| {
            let a: Vec<u64> = r.allocs.iter().map(|a| a.addr).collect();
            a[0] == BASE && a[1..].iter().all(|&x| x == BASE + 16384 * PAGE_SIZE)
        },
    }
}

/// c. churn-mixed: mixed sizes around 50% occupancy of 256 chunks, generated
/// by the churn algorithm of docs/benchmarks.md (identical to traces/churn-mixed.trace).
pub fn churn_mixed() -> Scenario {
    let mut rng = SplitMix64(1);
    let mut pa = PageAlloc::new(Arch::Amd64).expect("reserve metadata");
    pa.grow(BASE, 256 * PALLOC_CHUNK_BYTES).expect("grow");
    let mut ops = vec![grow(256)];
    let (mut live, mut addrs, mut sizes) = (Vec::new(), Vec::new(), Vec::new());
    let mut used = 0u64;
    for _ in 0..200_000 {
        if used > 65536 {
            let j = (rng.next() % live.len() as u64) as usize;
            let k: usize = live.swap_remove(j);
            pa.free(addrs[k], sizes[k]).expect("free a live allocation");
            used -= sizes[k];
            ops.push(Op::Free { k });
        } else {
            let r = rng.next() % 100;
            let n = match r {
                0..=69 => 1,
                70..=89 => 2 + rng.next() % 15,
                90..=98 => 17 + rng.next() % 112,
                _ => 129 + rng.next() % 896,
            };
            let a = pa.alloc(n).expect("valid alloc").unwrap_or(0);
            ops.push(alloc(n));
            if a != 0 {
                live.push(addrs.len());
                used += n;
            }
            addrs.push(a);
            sizes.push(n);
        }
    }
    let to = ops.len();
    Scenario {
        name: "c_churn_mixed",
        trace: Trace::from_ops(1, ops),
        from: 1,
        to,
        units: 200_000,
        check: |_, r| r.allocs.len() == 102_563 && r.allocs.iter().all(|a| a.addr != 0),
    }
}

/// d. sparse-find: a 3-page hole per chunk of 1024, then 1024 x alloc(3)
/// (each must move on to the next chunk), then a failing alloc(1).
pub fn sparse_find() -> Scenario {
    let mut ops = vec![grow(1024)];
    let mut rng = SplitMix64(42);
    let mut holes = Vec::new();
    for c in 0..1024 {
        let off = 1 + rng.next() % 508;
        ops.extend([alloc(off), alloc(3), alloc(509 - off)]);
        holes.push(3 * c + 1);
    }
    ops.extend(holes.into_iter().map(|k| Op::Free { k }));
    let from = ops.len();
    ops.extend((0..1024).map(|_| alloc(3)));
    ops.push(alloc(1));
    Scenario {
        name: "d_sparse_find",
        trace: Trace::from_ops(1, ops),
        from,
        to: from + 1024,
        units: 1024,
        check: |_, r| {
            let a: Vec<u64> = r.allocs.iter().map(|a| a.addr).collect();
            // The c-th timed alloc(3) refills the c-th hole; then alloc(1) fails.
            let n = a.len();
            (0..1024).all(|c| a[n - 1025 + c] == a[3 * c + 1]) && a[n - 1] == 0
        },
    }
}

/// e. grow: 4096 one-chunk grows (16 GiB, one root summary), then alloc(2^21).
pub fn grow_4096() -> Scenario {
    let mut ops: Vec<Op> = (0..4096)
        .map(|i| Op::Grow {
            base: BASE + i * PALLOC_CHUNK_BYTES,
            size: PALLOC_CHUNK_BYTES,
        })
        .collect();
    ops.push(alloc(1 << 21));
    Scenario {
        name: "e_grow",
        trace: Trace::from_ops(1, ops),
        from: 0,
        to: 4096,
        units: 4096,
        check: |pa, r| pa.bounds() == (0x200c000, 0x200d000) && r.allocs[0].addr == BASE,
    }
}

/// f. cache-alloc1 (Go 1.19's page cache, a v2 trace): 512 x { allocToCache,
/// 64 x calloc(1) } on 64 chunks, then one more allocToCache, which is empty.
pub fn cache_alloc1() -> Scenario {
    let mut ops = vec![grow(64)];
    for c in 0..512 {
        ops.push(Op::Cache);
        ops.extend((0..64).map(|_| Op::Calloc { c, npages: 1 }));
    }
    let to = ops.len();
    ops.push(Op::Cache);
    Scenario {
        name: "f_cache_alloc1",
        trace: Trace::from_ops(
            if scenario_go() == GoVersion::Go126 {
                3
            } else {
                2
            },
            ops,
        ),
        from: 1,
        to,
        units: 512 * 64,
        check: |_, r| {
            let block = 64 * PAGE_SIZE;
            // The k-th cache: block k, every page free and scavenged (fresh
            // memory); its pages come out in ascending order; the last is empty.
            let caches = r.outcomes.iter().filter_map(|(_, o)| match o {
                Outcome::Cache(c) => Some(*c),
                _ => None,
            });
            let caches_ok = caches.enumerate().all(|(k, c)| match k {
                512 => c.empty(),
                _ => c.base == BASE + k as u64 * block && c.cache == u64::MAX && c.scav == u64::MAX,
            });
            caches_ok
                && r.allocs.len() == 32768
                && (0..32768).all(|i| r.allocs[i].addr == BASE + i as u64 * PAGE_SIZE)
        },
    }
}

/// Builds one scenario.
pub type MakeScenario = fn() -> Scenario;

/// The six constructors with their names, in the order of docs/benchmarks.md (building
/// churn-mixed replays it once, so build only what you run).
pub const ALL: [(&str, MakeScenario); 6] = [
    ("a_alloc1_exhaust", alloc1_exhaust),
    ("b_alloc_free_1_pair", alloc_free_1),
    ("c_churn_mixed", churn_mixed),
    ("d_sparse_find", sparse_find),
    ("e_grow", grow_4096),
    ("f_cache_alloc1", cache_alloc1),
];

/// All six, in the order of docs/benchmarks.md.
pub fn all() -> Vec<Scenario> {
    ALL.iter().map(|(_, make)| make()).collect()
}

impl Scenario {
    /// A fresh allocator with the untimed set-up ops `[0, from)` replayed.
    pub fn setup(&self) -> Result<(PageAlloc, Replay), TraceError> {
        let mut pa = PageAlloc::builder(Arch::Amd64)
            .go(scenario_go())
            .build()
            .map_err(|e| TraceError {
                line: 0,
                msg: e.to_string(),
            })?;
        let mut r = Replay::new(&self.trace);
        r.run_to(&mut pa, &self.trace, self.from, &mut ())?;
        Ok((pa, r))
    }

    /// The timed ops `[from, to)`, on an allocator fresh from [`Scenario::setup`].
    /// (Never inlined: `benches/rust/instructions.sh` counts the
    /// instructions inside it apart, by its symbol.)
    #[inline(never)]
    pub fn run_timed(&self, pa: &mut PageAlloc, r: &mut Replay) -> Result<(), TraceError> {
        r.run_to(pa, &self.trace, self.to, &mut ())
    }

    /// One full run on a fresh allocator, checked: the timed nanoseconds.
    pub fn run(&self) -> Result<u128, String> {
        let (mut pa, mut r) = self.setup().map_err(|e| format!("{}: {e}", self.name))?;
        let t0 = Instant::now();
        self.run_timed(&mut pa, &mut r)
            .map_err(|e| format!("{}: {e}", self.name))?;
        let ns = t0.elapsed().as_nanos();
        r.run_to(&mut pa, &self.trace, self.trace.ops.len(), &mut ())
            .map_err(|e| format!("{}: {e}", self.name))?;
        if !(self.check)(&pa, &r) {
            return Err(format!("{}: the scenario's result check failed", self.name));
        }
        Ok(ns)
    }
}
