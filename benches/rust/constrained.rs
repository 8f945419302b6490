//! Constrained allocation, one run: the churn trace (scenario c) with every
//! alloc at a random alignment of 1 to 64 pages, against the same trace
//! unaligned; the same aligned work on `RangeAllocator` and on range-alloc's
//! `allocate_range_aligned` (best fit over a free list); and `to_bytes` of
//! a 4096-chunk heap.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pagealloc::trace::Op;
use pagealloc::{Arch, PageAlloc, RangeAllocator, PALLOC_CHUNK_BYTES};

#[path = "common/scenarios.rs"]
mod scenarios;
#[path = "../../tests/common/splitmix.rs"]
mod splitmix;

/// The churn trace's ops with an alignment (pages) for each alloc.
fn workload() -> (Vec<Op>, Vec<u64>) {
    let s = scenarios::churn_mixed();
    let mut rng = splitmix::SplitMix64(64);
    let aligns = s.trace.ops.iter().map(|_| 1 << (rng.next() % 7)).collect();
    (s.trace.ops, aligns)
}

/// Replays the churn ops on `alloc(npages, align) -> Option<u64>` and
/// `free(addr, npages)`; frees of failed allocs are skipped.
fn replay<S>(
    s: &mut S,
    ops: &[Op],
    aligns: &[u64],
    alloc: fn(&mut S, u64, u64) -> Option<u64>,
    free: fn(&mut S, u64, u64),
) -> usize {
    let mut addrs: Vec<(u64, u64)> = Vec::with_capacity(ops.len());
    let mut failed = 0;
    for (op, &align) in ops.iter().zip(aligns) {
        match *op {
            Op::Alloc { npages } => {
                let a = alloc(s, npages, align);
                failed += a.is_none() as usize;
                addrs.push((a.unwrap_or(0), npages));
            }
            Op::Free { k } => {
                let (a, n) = addrs[k];
                if a != 0 {
                    free(s, a, n);
                }
            }
            _ => {}
        }
    }
    failed
}

fn churn_heap() -> PageAlloc {
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(scenarios::BASE, 256 * PALLOC_CHUNK_BYTES).unwrap();
    pa
}

fn aligned_churn(c: &mut Criterion) {
    let (ops, aligns) = workload();
    let ones = vec![1; aligns.len()];
    let nops = ops.len() as u64 - 1;
    let mut g = c.benchmark_group("aligned_churn");
    g.sample_size(10);
    g.throughput(Throughput::Elements(nops));
    type AllocFn = fn(&mut PageAlloc, u64, u64) -> Option<u64>;
    let variants: [(&str, &[u64], AllocFn); 2] = [
        ("pagealloc_plain", &ones, |pa, n, _| pa.alloc(n).unwrap()),
        ("pagealloc_aligned", &aligns, |pa, n, al| {
            pa.alloc_constrained(n, al, None).unwrap().0
        }),
    ];
    for (name, al, alloc) in variants {
        g.bench_function(name, |b| {
            b.iter_batched(
                churn_heap,
                |mut pa| {
                    replay(&mut pa, &ops[1..], &al[1..], alloc, |pa, a, n| {
                        pa.free(a, n).unwrap()
                    });
                    pa
                },
                BatchSize::PerIteration,
            )
        });
    }
    let pages = 256 * 512u64;
    g.bench_function("range_allocator_aligned", |b| {
        b.iter_batched(
            || RangeAllocator::new(pages * 8192, 8192).unwrap(),
            |mut ra| {
                // Offsets are shifted by one page so that 0 means "failed".
                replay(
                    &mut ra,
                    &ops[1..],
                    &aligns[1..],
                    |ra, n, al| ra.alloc(n * 8192, al * 8192).unwrap().map(|o| o + 8192),
                    |ra, a, n| ra.free(a - 8192, n * 8192).unwrap(),
                );
                ra
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("range_alloc_crate_aligned", |b| {
        b.iter_batched(
            || range_alloc::RangeAllocator::new(0..pages),
            |mut ra| {
                replay(
                    &mut ra,
                    &ops[1..],
                    &aligns[1..],
                    |ra, n, al| ra.allocate_range_aligned(n, al).ok().map(|r| r.start + 1),
                    |ra, a, n| ra.free_range(a - 1..a - 1 + n),
                );
                ra
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(scenarios::BASE, 4096 * PALLOC_CHUNK_BYTES).unwrap();
    for n in 1..2000 {
        pa.alloc(n % 37 + 1).unwrap();
    }
    let mut g = c.benchmark_group("snapshot_4096_chunks");
    g.sample_size(10);
    g.bench_function("to_bytes", |b| b.iter(|| pa.to_bytes()));
    let bytes = pa.to_bytes();
    g.bench_function("from_bytes", |b| {
        b.iter(|| PageAlloc::from_bytes(&bytes).unwrap())
    });
    g.finish();
}

criterion_group!(benches, aligned_churn, snapshot);
criterion_main!(benches);
