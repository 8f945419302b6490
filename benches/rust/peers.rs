//! pagealloc beside the allocators Rust users pick, over the same work,
//! interleaved in one run (`cargo bench --bench peers`):
//!
//! - speed: the churn trace (scenario c), alloc1-exhaust (a) and
//!   alloc-free-1 pairs (b), in 8 KiB pages over 256 chunks (131,072 pages);
//!   ns per op, the median and the spread (min-max) of the rounds;
//! - placement: random churn held at 50%, 90% and 97% occupancy, counting
//!   false out-of-memory failures (a request refused although the free pages
//!   held a contiguous run that fits it) and, at the end, the largest request
//!   each allocator still satisfies.
//!
//! Every allocator is driven in pages; offsets are checked against a
//! ground-truth bitmap so that no allocator can overlap a live allocation.

use std::time::Instant;

use pagealloc::trace::Op;
use pagealloc::{Arch, LocalCache, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};

#[path = "common/scenarios.rs"]
mod scenarios;
#[path = "../../tests/common/splitmix.rs"]
mod splitmix;

use splitmix::SplitMix64;

const PAGES: u64 = 256 * 512;

/// One allocator under test, in pages.
trait Peer {
    type Handle;
    const NAME: &'static str;
    fn new(pages: u64) -> Self;
    fn alloc(&mut self, n: u64) -> Option<(u64, Self::Handle)>;
    fn free(&mut self, h: Self::Handle, offset: u64, n: u64);
    /// [`churn_ops`] on this allocator (`churn_loop!()` in each impl).
    fn churn_loop(&mut self, ops: &[Op], live: &mut Vec<Option<(u64, u64, Self::Handle)>>);
}

/// Each allocator's [`Peer::churn_loop`], never inlined: its symbol,
/// `<peers::NAME as peers::Peer>::churn_loop`, is what callgrind counts.
macro_rules! churn_loop {
    () => {
        #[inline(never)]
        fn churn_loop(&mut self, ops: &[Op], live: &mut Vec<Option<(u64, u64, Self::Handle)>>) {
            churn_ops(self, ops, live)
        }
    };
}

struct Pa(PageAlloc);
impl Peer for Pa {
    churn_loop!();
    type Handle = ();
    const NAME: &'static str = "pagealloc (exact first fit)";
    fn new(pages: u64) -> Self {
        let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
        pa.grow(scenarios::BASE, pages / 512 * PALLOC_CHUNK_BYTES)
            .unwrap();
        Pa(pa)
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, ())> {
        self.0
            .alloc(n)
            .unwrap()
            .map(|a| ((a - scenarios::BASE) / PAGE_SIZE, ()))
    }
    #[inline]
    fn free(&mut self, _: (), offset: u64, n: u64) {
        self.0
            .free(scenarios::BASE + offset * PAGE_SIZE, n)
            .unwrap();
    }
}

/// pagealloc with a [`LocalCache`] in front: spans of 1-15 pages from a
/// 64-page cache block, freed back into it (Go's page cache plus frees).
struct PaCached(PageAlloc, LocalCache);
impl Peer for PaCached {
    churn_loop!();
    type Handle = ();
    const NAME: &'static str = "pagealloc + LocalCache (1-15 pages cached)";
    fn new(pages: u64) -> Self {
        PaCached(Pa::new(pages).0, LocalCache::new())
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, ())> {
        self.1
            .alloc(&mut self.0, n)
            .unwrap()
            .map(|a| ((a - scenarios::BASE) / PAGE_SIZE, ()))
    }
    #[inline]
    fn free(&mut self, _: (), offset: u64, n: u64) {
        self.1
            .free(&mut self.0, scenarios::BASE + offset * PAGE_SIZE, n)
            .unwrap();
    }
}

struct Offset(offset_allocator::Allocator);
impl Peer for Offset {
    churn_loop!();
    type Handle = offset_allocator::Allocation;
    const NAME: &'static str = "offset-allocator (O(1), TLSF-like bins)";
    fn new(pages: u64) -> Self {
        Offset(offset_allocator::Allocator::with_max_allocs(
            pages as u32,
            256 * 1024,
        ))
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, Self::Handle)> {
        self.0.allocate(n as u32).map(|a| (u64::from(a.offset), a))
    }
    #[inline]
    fn free(&mut self, h: Self::Handle, _: u64, _: u64) {
        self.0.free(h);
    }
}

struct Tlsf(xalloc::SysTlsf<u32>);
impl Peer for Tlsf {
    churn_loop!();
    type Handle = xalloc::SysTlsfRegion;
    const NAME: &'static str = "xalloc TLSF (O(1), good fit)";
    fn new(pages: u64) -> Self {
        Tlsf(xalloc::SysTlsf::with_capacity(pages as u32, 256 * 1024))
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, Self::Handle)> {
        self.0.alloc(n as u32).map(|(r, o)| (u64::from(o), r))
    }
    #[inline]
    fn free(&mut self, h: Self::Handle, _: u64, _: u64) {
        self.0.dealloc(h).unwrap();
    }
}

struct XBitmap(xalloc::BitmapAlloc);
impl Peer for XBitmap {
    churn_loop!();
    type Handle = xalloc::bitmap::BitmapAllocRegion;
    const NAME: &'static str = "xalloc bitmap (first fit, linear scan)";
    fn new(pages: u64) -> Self {
        XBitmap(xalloc::BitmapAlloc::new(pages as usize))
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, Self::Handle)> {
        self.0.alloc_first(n as usize).map(|(r, o)| (o as u64, r))
    }
    #[inline]
    fn free(&mut self, h: Self::Handle, _: u64, _: u64) {
        self.0.dealloc_relaxed(h);
    }
}

struct Buddy(buddy_system_allocator::FrameAllocator<33>);
impl Peer for Buddy {
    churn_loop!();
    type Handle = ();
    const NAME: &'static str = "buddy_system_allocator (power-of-two blocks)";
    fn new(pages: u64) -> Self {
        let mut b = buddy_system_allocator::FrameAllocator::new();
        b.add_frame(0, pages as usize);
        Buddy(b)
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, ())> {
        self.0.alloc(n as usize).map(|o| (o as u64, ()))
    }
    #[inline]
    fn free(&mut self, _: (), offset: u64, n: u64) {
        self.0.dealloc(offset as usize, n as usize);
    }
}

struct Range(range_alloc::RangeAllocator<u64>);
impl Peer for Range {
    churn_loop!();
    type Handle = ();
    const NAME: &'static str = "range-alloc (best fit, free list)";
    fn new(pages: u64) -> Self {
        Range(range_alloc::RangeAllocator::new(0..pages))
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, ())> {
        self.0.allocate_range(n).ok().map(|r| (r.start, ()))
    }
    #[inline]
    fn free(&mut self, _: (), offset: u64, n: u64) {
        self.0.free_range(offset..offset + n);
    }
}

struct BitAlloc(Box<bitmap_allocator::BitAlloc256M>);
impl Peer for BitAlloc {
    churn_loop!();
    type Handle = ();
    const NAME: &'static str = "bitmap-allocator (cascaded bitmaps)";
    fn new(pages: u64) -> Self {
        use bitmap_allocator::BitAlloc as _;
        let mut b = Box::<bitmap_allocator::BitAlloc256M>::default();
        b.insert(0..pages as usize);
        BitAlloc(b)
    }
    #[inline]
    fn alloc(&mut self, n: u64) -> Option<(u64, ())> {
        use bitmap_allocator::BitAlloc as _;
        self.0
            .alloc_contiguous(None, n as usize, 0)
            .map(|o| (o as u64, ()))
    }
    #[inline]
    fn free(&mut self, _: (), offset: u64, n: u64) {
        use bitmap_allocator::BitAlloc as _;
        assert!(self.0.dealloc_contiguous(offset as usize, n as usize));
    }
}

/// Ground truth: which pages are in use, to catch overlaps and to decide
/// whether a refused request would have fit somewhere.
struct Truth(Vec<u64>);
impl Truth {
    fn new() -> Truth {
        Truth(vec![0; (PAGES / 64) as usize])
    }
    fn set(&mut self, o: u64, n: u64, used: bool) {
        for p in o..o + n {
            let (w, b) = ((p / 64) as usize, p % 64);
            assert_eq!(
                self.0[w] >> b & 1 == 1,
                !used,
                "page {p} taken twice or freed twice"
            );
            self.0[w] ^= 1 << b;
        }
    }
    fn largest_free_run(&self) -> u64 {
        let (mut best, mut cur) = (0, 0);
        for p in 0..PAGES {
            if self.0[(p / 64) as usize] >> (p % 64) & 1 == 0 {
                cur += 1;
                best = best.max(cur);
            } else {
                cur = 0;
            }
        }
        best
    }
}

/// The churn trace, timed; ns per op.
fn churn<P: Peer>(ops: &[Op]) -> f64 {
    let mut a = P::new(PAGES);
    let mut live: Vec<Option<(u64, u64, P::Handle)>> = Vec::with_capacity(ops.len());
    let t = Instant::now();
    a.churn_loop(ops, &mut live);
    t.elapsed().as_nanos() as f64 / ops.len() as f64
}

/// The churn trace's ops on `a`, nothing else: the loop the benchmark times
/// and whose instructions `benches/rust/peers_instructions.sh` counts, in
/// each allocator's `Peer::churn_loop` (one symbol per allocator).
#[inline(always)]
fn churn_ops<P: Peer>(a: &mut P, ops: &[Op], live: &mut Vec<Option<(u64, u64, P::Handle)>>) {
    for op in ops {
        match *op {
            Op::Alloc { npages } => live.push(a.alloc(npages).map(|(o, h)| (o, npages, h))),
            Op::Free { k } => {
                if let Some((o, n, h)) = live[k].take() {
                    a.free(h, o, n);
                }
            }
            _ => {}
        }
    }
}

/// `--count`: each allocator's churn once, untimed, for counting its
/// instructions under callgrind (`benches/rust/peers_instructions.sh`).
fn count_only(ops: &[Op]) {
    churn::<Pa>(ops);
    churn::<PaCached>(ops);
    churn::<Offset>(ops);
    churn::<Tlsf>(ops);
    churn::<Buddy>(ops);
    churn::<Range>(ops);
    churn::<XBitmap>(ops);
    churn::<BitAlloc>(ops);
    println!("churn ops\t{}", ops.len());
}

/// Scenario a: 1-page allocs until full; ns per alloc.
fn exhaust<P: Peer>() -> f64 {
    let mut a = P::new(PAGES);
    let mut hs = Vec::with_capacity(PAGES as usize);
    let t = Instant::now();
    while let Some(h) = a.alloc(1) {
        hs.push(h);
    }
    let ns = t.elapsed().as_nanos() as f64 / hs.len().max(1) as f64;
    assert_eq!(hs.len() as u64, PAGES, "{} did not fill the space", P::NAME);
    ns
}

/// Scenario b: half full, then alloc(1) + free pairs; ns per pair.
fn alloc_free<P: Peer>() -> f64 {
    let mut a = P::new(PAGES);
    let half = a.alloc(PAGES / 2);
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        let (o, h) = a.alloc(1).unwrap();
        a.free(h, o, 1);
    }
    std::hint::black_box(half);
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Random churn held near `target` occupancy: (false out-of-memory
/// failures, all failures, the largest request satisfiable at the end).
fn placement<P: Peer>(target: f64, seed: u64) -> (u64, u64, u64) {
    let mut a = P::new(PAGES);
    let mut truth = Truth::new();
    let mut rng = SplitMix64(seed);
    let mut live: Vec<(u64, u64, P::Handle)> = Vec::new();
    let (mut used, mut false_oom, mut failed) = (0u64, 0u64, 0u64);
    let goal = (PAGES as f64 * target) as u64;
    for _ in 0..60_000 {
        if used > goal && !live.is_empty() {
            let j = (rng.next() % live.len() as u64) as usize;
            let (o, n, h) = live.swap_remove(j);
            a.free(h, o, n);
            truth.set(o, n, false);
            used -= n;
        } else {
            let r = rng.next() % 100;
            let n = match r {
                0..=59 => 1,
                60..=84 => 2 + rng.next() % 15,
                85..=97 => 17 + rng.next() % 112,
                _ => 129 + rng.next() % 896,
            };
            match a.alloc(n) {
                Some((o, h)) => {
                    truth.set(o, n, true);
                    used += n;
                    live.push((o, n, h));
                }
                None => {
                    failed += 1;
                    if truth.largest_free_run() >= n {
                        false_oom += 1;
                    }
                }
            }
        }
    }
    // The largest request that still succeeds (allocated and given back).
    let (mut lo, mut hi) = (0u64, truth.largest_free_run());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match a.alloc(mid) {
            Some((o, h)) => {
                a.free(h, o, mid);
                lo = mid;
            }
            None => hi = mid - 1,
        }
    }
    (false_oom, failed, lo)
}

fn median_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

struct Row {
    name: &'static str,
    speed: Vec<(f64, f64, f64)>,
    placement: Vec<(u64, u64, u64)>,
}

fn measure<P: Peer>(ops: &[Op], rounds: usize, rows: &mut Vec<Row>) {
    let mut cols: [Vec<f64>; 3] = Default::default();
    for _ in 0..rounds {
        cols[0].push(churn::<P>(ops));
        cols[1].push(exhaust::<P>());
        cols[2].push(alloc_free::<P>());
    }
    rows.push(Row {
        name: P::NAME,
        speed: cols.into_iter().map(median_spread).collect(),
        placement: [0.50, 0.90, 0.97]
            .iter()
            .map(|&t| placement::<P>(t, 97))
            .collect(),
    });
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let s = scenarios::churn_mixed();
    let ops = &s.trace.ops[1..];
    if std::env::args().any(|a| a == "--count") {
        count_only(ops);
        return;
    }
    let mut rows = Vec::new();
    // Interleaved: each allocator's rounds run back to back, allocators in
    // turn; the whole table comes from one run.
    measure::<Pa>(ops, rounds, &mut rows);
    measure::<PaCached>(ops, rounds, &mut rows);
    measure::<Offset>(ops, rounds, &mut rows);
    measure::<Tlsf>(ops, rounds, &mut rows);
    measure::<Buddy>(ops, rounds, &mut rows);
    measure::<Range>(ops, rounds, &mut rows);
    measure::<XBitmap>(ops, rounds, &mut rows);
    measure::<BitAlloc>(ops, rounds.min(2), &mut rows);
    println!(
        "| allocator | churn ns/op | alloc1 ns | alloc+free ns | false OOM at 50% / 90% / 97% (of failures) | largest request at 50% / 90% / 97% |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        let sp: Vec<String> = r
            .speed
            .iter()
            .map(|&(m, lo, hi)| {
                // Whole nanoseconds, but a tenth below 10 (where one is 10%+).
                let p = if hi < 10.0 { 1 } else { 0 };
                format!("{m:.p$} ({lo:.p$}-{hi:.p$})")
            })
            .collect();
        let fo: Vec<String> = r
            .placement
            .iter()
            .map(|(f, all, _)| format!("{f} ({all})"))
            .collect();
        let lr: Vec<String> = r.placement.iter().map(|(_, _, l)| l.to_string()).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            sp[0],
            sp[1],
            sp[2],
            fo.join(" / "),
            lr.join(" / ")
        );
    }
    for r in &rows {
        // Machine-readable lines for the chart.
        println!(
            "peer\t{}\t{:.1}\t{}\t{}",
            r.name, r.speed[0].0, r.placement[1].0, r.placement[2].0
        );
    }
}
