//! The Heap's steady path against the page allocator alone, one run:
//! a 1-page alloc + free on a `Heap` (real memory; zeroed and not) and on a
//! `PageAlloc` over the same amount of (address-only) heap. No system call
//! happens on the Heap's steady path: its arena is committed once, up front.
//! Then the per-thread caches: 1-page alloc + free pairs on one thread and
//! on two at once (throughput in pairs per second; two threads that never
//! wait for each other reach twice the one-thread rate).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pagealloc::{Arch, Heap, PageAlloc, PALLOC_CHUNK_BYTES};

fn one_page(c: &mut Criterion) {
    let mut g = c.benchmark_group("one_page_alloc_free");
    let heap = Heap::new(1 << 30).unwrap();
    // Grow the first arena (and take a page cache) outside the timing.
    let p = heap.alloc(1, true).unwrap();
    heap.free(p, 1).unwrap();
    g.bench_function("heap_zeroed", |b| {
        b.iter(|| {
            let p = heap.alloc(1, true).unwrap();
            heap.free(std::hint::black_box(p), 1).unwrap();
        })
    });
    g.bench_function("heap_not_zeroed", |b| {
        b.iter(|| {
            let p = heap.alloc(1, false).unwrap();
            heap.free(std::hint::black_box(p), 1).unwrap();
        })
    });
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(0x30_0000_0000, 16 * PALLOC_CHUNK_BYTES).unwrap();
    g.bench_function("pagealloc", |b| {
        b.iter(|| {
            let a = pa.alloc(1).unwrap().unwrap();
            pa.free(std::hint::black_box(a), 1).unwrap();
        })
    });
    g.finish();
}

/// `threads` threads each doing `iters` 1-page alloc + free pairs, started
/// together; the wall time of the slowest.
fn pairs_on_threads(heap: &Heap, threads: usize, iters: u64) -> Duration {
    let go = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    // Take this thread's cache outside the timing.
                    let p = heap.alloc(1, false).unwrap();
                    heap.free(p, 1).unwrap();
                    go.wait();
                    let t = Instant::now();
                    for _ in 0..iters {
                        let p = heap.alloc(1, false).unwrap();
                        heap.free(std::hint::black_box(p), 1).unwrap();
                    }
                    t.elapsed()
                })
            })
            .collect();
        go.wait();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("heap_threads_alloc_free_1");
    let heap = Heap::new(1 << 30).unwrap();
    for n in [1usize, 2] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{n}_threads"), |b| {
            b.iter_custom(|iters| pairs_on_threads(&heap, n, iters))
        });
    }
    g.finish();
}

criterion_group!(benches, one_page, threads);
criterion_main!(benches);
