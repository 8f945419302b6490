//! The Heap's steady path against the page allocator alone, one run:
//! a 1-page alloc + free on a `Heap` (real memory; zeroed and not) and on a
//! `PageAlloc` over the same amount of (address-only) heap. No system call
//! happens on the Heap's steady path: its arena is committed once, up front.

use criterion::{criterion_group, criterion_main, Criterion};
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

criterion_group!(benches, one_page);
criterion_main!(benches);
