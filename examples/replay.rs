//! Replays a trace (v1 or v2) on the engine and reports ns/op per kind of op.
//!
//! ```text
//! cargo run --release --example replay -- TRACE [--results FILE] [--reps N] [--arch A]
//! zcat real.v2.trace.gz | cargo run --release --example replay -- -
//! ```
//!
//! Each repetition replays the whole trace on a fresh allocator. The report
//! gives each kind's ns/op (from repetitions that time every op, less the
//! timer's own cost), and the last line is `ns_per_op N`: every op but the
//! grows, from repetitions that time the whole replay at
//! once; medians over repetitions. `--results` writes the results file
//! of the last repetition (docs/formats.md: the result lines, bounds, chunk runs
//! and, for v2, scavenged runs). TRACE `-` reads standard input.

use std::process::ExitCode;
use std::time::Instant;

use pagealloc::trace::{OpKind, OpTimer, Replay, Trace};

const KINDS: usize = OpKind::ALL.len();
use pagealloc::{Arch, PageAlloc};

struct Args {
    trace: String,
    results: Option<String>,
    reps: usize,
    arch: Arch,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut trace, mut results, mut reps, mut arch) = (None, None, 5, Arch::Amd64);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--results" => results = Some(it.next().ok_or("--results needs a file")?),
            "--reps" => {
                reps = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--reps needs a positive number")?
            }
            "--arch" => {
                arch = it
                    .next()
                    .ok_or("--arch needs a name")?
                    .parse()
                    .map_err(|e| format!("{e}"))?
            }
            "-h" | "--help" => return Err(String::new()),
            _ if trace.is_none() => trace = Some(a),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(Args {
        trace: trace.ok_or("missing TRACE")?,
        results,
        reps,
        arch,
    })
}

/// The cost of one `Instant::now()` + `elapsed()` pair, subtracted from
/// per-op timings.
fn timer_overhead_ns() -> f64 {
    let n = 100_000;
    let t = Instant::now();
    let mut sink = 0u128;
    for _ in 0..n {
        let t0 = Instant::now();
        sink = sink.wrapping_add(t0.elapsed().as_nanos());
    }
    std::hint::black_box(sink);
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Times ops per kind: every op when `every_op`, else only the grows (which
/// ns_per_op excludes).
struct KindTimer {
    every_op: bool,
    cost: f64,
    ns: [f64; KINDS],
}

impl OpTimer for KindTimer {
    type Mark = Option<Instant>;
    #[inline]
    fn start(&mut self, kind: OpKind) -> Option<Instant> {
        (self.every_op || kind == OpKind::Grow).then(Instant::now)
    }
    #[inline]
    fn stop(&mut self, kind: OpKind, mark: Option<Instant>) {
        if let Some(t0) = mark {
            self.ns[kind.index()] += t0.elapsed().as_nanos() as f64 - self.cost;
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("replay: {e}");
            }
            eprintln!("usage: replay TRACE [--results FILE] [--reps N] [--arch amd64|arm64|386]");
            return ExitCode::from(2);
        }
    };
    let text = if args.trace == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(&args.trace)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("replay: {}: {e}", args.trace);
            return ExitCode::from(2);
        }
    };
    let trace = match Trace::parse(&text) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("replay: {}: {e}", args.trace);
            return ExitCode::from(2);
        }
    };
    let mut per_kind: [Vec<f64>; KINDS] = Default::default();
    let mut overall = Vec::new();
    let mut last = None;
    let timer_cost = timer_overhead_ns();
    let grow = OpKind::Grow.index();
    for rep in 0..args.reps {
        // Odd repetitions time every op (for the per-kind split, less the
        // timer's own cost); even ones time the whole replay at once and
        // subtract the grows, timed one by one, for ns_per_op.
        let mut timer = KindTimer {
            every_op: rep % 2 == 1 || args.reps == 1,
            cost: timer_cost,
            ns: [0.0; KINDS],
        };
        let mut pa = PageAlloc::builder(args.arch)
            .go(trace.go_version())
            .build()
            .expect("reserve metadata");
        let mut r = Replay::new(&trace);
        let t_all = Instant::now();
        if let Err(e) = r.run_to(&mut pa, &trace, trace.ops.len(), &mut timer) {
            eprintln!("replay: {}: {e}", args.trace);
            return ExitCode::from(2);
        }
        let total = t_all.elapsed().as_nanos() as f64;
        let count = trace.counts.0;
        let n = (trace.ops.len() - count[grow]).max(1) as f64;
        if timer.every_op {
            for k in 0..KINDS {
                if count[k] > 0 {
                    per_kind[k].push(timer.ns[k] / count[k] as f64);
                }
            }
            if args.reps == 1 {
                overall.push((timer.ns.iter().sum::<f64>() - timer.ns[grow]) / n);
            }
        } else {
            overall.push((total - timer.ns[grow]) / n);
        }
        last = Some((pa, r));
    }
    let (pa, r) = last.expect("at least one repetition");
    println!(
        "trace {} (v{}, {} ops, {} reps, arch {})",
        args.trace,
        trace.version,
        trace.ops.len(),
        args.reps,
        args.arch
    );
    for (kind, v) in OpKind::ALL.iter().zip(per_kind.iter_mut()) {
        if !v.is_empty() {
            println!(
                "{:<6} {:>10.1} ns/op (per-op timer, {timer_cost:.0} ns timer cost subtracted)",
                kind.name(),
                median(v)
            );
        }
    }
    if let Some(path) = &args.results {
        if let Err(e) = std::fs::write(path, r.results_file(&pa)) {
            eprintln!("replay: {path}: {e}");
            return ExitCode::from(1);
        }
    }
    println!("ns_per_op {:.1}", median(&mut overall));
    ExitCode::SUCCESS
}
