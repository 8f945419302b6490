//! Runs the six benchmark scenarios (docs/benchmarks.md) on the engine, the way Go's harness
//! (tests/goharness) runs them on Go's allocator, and prints one line each:
//! `rust_ns_per_op NAME N` (median over repetitions).
//!
//! ```text
//! cargo run --release --example scenarios -- [REPS [NAME-FILTER]]
//! ```

#[path = "../benches/rust/common/scenarios.rs"]
mod scenarios;
#[path = "../tests/common/splitmix.rs"]
mod splitmix;

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(7);
    let filter = std::env::args().nth(2).unwrap_or_default();
    for (_, make) in scenarios::ALL
        .iter()
        .filter(|(name, _)| name.contains(&filter))
    {
        let s = make();
        let mut per = Vec::with_capacity(reps);
        for _ in 0..reps {
            match s.run() {
                Ok(ns) => per.push(ns as f64 / s.units as f64),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        per.sort_by(f64::total_cmp);
        println!("rust_ns_per_op {} {:.1}", s.name, per[reps / 2]);
    }
}
