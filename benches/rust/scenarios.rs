//! The six benchmark scenarios (docs/benchmarks.md), exactly as
//! defined there (see `common/scenarios.rs`): a fresh allocator per
//! iteration, set-up untimed (`iter_batched`), only the core loop timed.
//! Throughput is in the scenario's units (allocs, pairs, ops or grows), so
//! 1e9 / (elem/s) is its ns/op.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

#[path = "common/scenarios.rs"]
mod scenarios;
#[path = "../../tests/common/splitmix.rs"]
mod splitmix;

fn bench_scenarios(c: &mut Criterion) {
    let mut g = c.benchmark_group("scenarios");
    g.sample_size(10);
    for s in scenarios::all() {
        // The result checks, once, outside timing.
        s.run().unwrap();
        g.throughput(Throughput::Elements(s.units));
        g.bench_function(s.name, |b| {
            b.iter_batched(
                || s.setup().unwrap(),
                |(mut pa, mut r)| {
                    s.run_timed(&mut pa, &mut r).unwrap();
                    (pa, r)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_scenarios);
criterion_main!(benches);
