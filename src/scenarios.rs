//! The five benchmark scenarios of SCENARIOS.md (shared/bench), as trace ops
//! with a timed window, so that the criterion benches, the `scenarios`
//! example and Go's harness (benches/go) all run exactly the same work.
//!
//! Every scenario starts from a fresh allocator; ops before `from` are untimed
//! set-up, ops in `[from, to)` are timed as one block, ops after `to` are
//! untimed checks. `units` is the denominator of ns/op.

use std::time::Instant;

use crate::arch::{Arch, PAGE_SIZE, PALLOC_CHUNK_BYTES};
use crate::pagealloc::PageAlloc;
use crate::trace::{Op, Replay, StepError};

/// `page_base(BASE_CHUNK_IDX, 0)` on amd64.
pub const BASE: u64 = 0x30_0000_0000;

/// The scenarios' PRNG (splitmix64).
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One scenario: its ops, the timed window and the ns/op denominator.
pub struct Scenario {
    pub name: &'static str,
    pub ops: Vec<Op>,
    pub from: usize,
    pub to: usize,
    pub units: u64,
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
        ops,
        from: 1,
        to: 32769,
        units: 32768,
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
        ops,
        from: 2,
        to,
        units: 200_000,
    }
}

/// c. churn-mixed: mixed sizes around 50% occupancy of 256 chunks, generated
/// by the SCENARIOS.md algorithm (identical to traces/churn-mixed.trace).
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
        ops,
        from: 1,
        to,
        units: 200_000,
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
        ops,
        from,
        to: from + 1024,
        units: 1024,
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
        ops,
        from: 0,
        to: 4096,
        units: 4096,
    }
}

/// Builds one scenario.
pub type MakeScenario = fn() -> Scenario;

/// The five constructors with their names, in SCENARIOS.md order (building
/// churn-mixed replays it once, so build only what you run).
pub const ALL: [(&str, MakeScenario); 5] = [
    ("a_alloc1_exhaust", alloc1_exhaust),
    ("b_alloc_free_1_pair", alloc_free_1),
    ("c_churn_mixed", churn_mixed),
    ("d_sparse_find", sparse_find),
    ("e_grow", grow_4096),
];

/// All five, in SCENARIOS.md order.
pub fn all() -> Vec<Scenario> {
    ALL.iter().map(|(_, make)| make()).collect()
}

impl Scenario {
    /// Replays ops `[from, to)` on `pa` (which must have replayed `[0, from)`).
    #[inline]
    pub fn run_range(
        &self,
        pa: &mut PageAlloc,
        r: &mut Replay,
        from: usize,
        to: usize,
    ) -> std::result::Result<(), StepError> {
        for &op in &self.ops[from..to] {
            r.step(pa, op)?;
        }
        Ok(())
    }

    /// A fresh allocator with the untimed set-up ops `[0, from)` replayed.
    pub fn setup(&self) -> std::result::Result<(PageAlloc, Replay), StepError> {
        let mut pa = PageAlloc::new(Arch::Amd64)?;
        let mut r = Replay::with_capacity(self.ops.len());
        self.run_range(&mut pa, &mut r, 0, self.from)?;
        Ok((pa, r))
    }

    /// One full run on a fresh allocator: returns the timed nanoseconds and
    /// the replay (for the checks).
    pub fn run(&self) -> std::result::Result<(u128, PageAlloc, Replay), StepError> {
        let (mut pa, mut r) = self.setup()?;
        let t0 = Instant::now();
        self.run_range(&mut pa, &mut r, self.from, self.to)?;
        let ns = t0.elapsed().as_nanos();
        self.run_range(&mut pa, &mut r, self.to, self.ops.len())?;
        Ok((ns, pa, r))
    }

    /// The SCENARIOS.md result checks; `Err` names the first one that fails.
    pub fn check(&self, pa: &PageAlloc, r: &Replay) -> std::result::Result<(), String> {
        let a = &r.addrs;
        let ok = match self.name {
            "a_alloc1_exhaust" => {
                (0..32768).all(|i| a[i] == BASE + i as u64 * PAGE_SIZE) && a[32768] == 0
            }
            "b_alloc_free_1_pair" => a[0] == BASE && a[1..].iter().all(|&x| x == 0x30_0800_0000),
            "c_churn_mixed" => a.len() == 102_563 && a.iter().all(|&x| x != 0),
            "d_sparse_find" => {
                let n = a.len();
                (0..1024).all(|c| a[n - 1025 + c] == a[3 * c + 1]) && a[n - 1] == 0
            }
            "e_grow" => pa.bounds() == (0x200c000, 0x200d000) && a[0] == BASE,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{}: result check failed", self.name))
        }
    }
}
