//! Chunk-level microbenchmarks in the spirit of Go's
//! BenchmarkPallocBitsSummarize and BenchmarkFindBitRange64.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pagealloc::{find_bit_range64, PallocBits, SumFormat};

/// Go's BenchmarkPallocBitsSummarize patterns, each repeated over all 8 words.
const PATTERNS: [u64; 14] = [
    0,
    !0,
    0xaa,
    0xaaaa_aaaa_aaaa_aaaa,
    0x8000_0000_aaaa_aaaa,
    0xaaaa_aaaa_0000_0001,
    0xbbbb_bbbb_bbbb_bbbb,
    0x8000_0000_bbbb_bbbb,
    0xbbbb_bbbb_0000_0001,
    0xcccc_cccc_cccc_cccc,
    0x4444_4444_4444_4444,
    0x4040_4040_4040_4040,
    0x4000_4000_4000_4000,
    0x1000_4040_44cc_aaff,
];

fn summarize(c: &mut Criterion) {
    let fmt = SumFormat::new(21);
    let mut g = c.benchmark_group("pallocbits_summarize");
    for p in PATTERNS {
        let b = PallocBits([p; 8]);
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("Unpacked{p:02X}")),
            &b,
            |bench, b| bench.iter(|| std::hint::black_box(b).summarize(fmt)),
        );
    }
    g.finish();
}

fn find(c: &mut Criterion) {
    let mut g = c.benchmark_group("pallocbits_find");
    // A chunk free at the end only, a sparse one, and Go's patterns.
    let mut tail = PallocBits::FULL;
    tail.free(448, 64);
    let mut pats: Vec<(String, PallocBits)> =
        vec![("Tail64".into(), tail), ("Empty".into(), PallocBits::EMPTY)];
    for p in [0xaa, 0x8000_0000_aaaa_aaaa, 0x4000_4000_4000_4000u64] {
        pats.push((format!("Pattern{p:02X}"), PallocBits([p; 8])));
    }
    for npages in [1u64, 2, 8, 32, 64, 65, 512] {
        for (name, b) in &pats {
            g.bench_with_input(
                BenchmarkId::new(format!("npages{npages}"), name),
                b,
                |bench, b| {
                    bench.iter(|| std::hint::black_box(b).find(std::hint::black_box(npages), 0))
                },
            );
        }
    }
    g.finish();
}

fn bit_range64(c: &mut Criterion) {
    let mut g = c.benchmark_group("find_bit_range64");
    // Go's BenchmarkFindBitRange64 uses the same patterns.
    for p in PATTERNS {
        for n in [1u64, 8, 32, 64] {
            g.bench_with_input(
                BenchmarkId::new(format!("Pattern{p:02X}"), format!("Size{n}")),
                &(p, n),
                |bench, &(p, n)| {
                    bench
                        .iter(|| find_bit_range64(std::hint::black_box(p), std::hint::black_box(n)))
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, summarize, find, bit_range64);
criterion_main!(benches);
