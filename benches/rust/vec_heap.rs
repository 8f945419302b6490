//! A `Vec` of 64 MiB grown from empty and dropped, in a loop: its buffer
//! from a `Heap` (allocator-api2's `Allocator for &Heap`) against `System`
//! (glibc), side by side in one run, with the minor page faults of each
//! (from /proc/self/stat). Run:
//!
//!     cargo bench --bench vec_heap --features allocator-api2
//!
//! glibc serves a block this large with a fresh mmap and unmaps it on
//! free, so every round faults its pages in again; the heap keeps the
//! pages (and grows the vector in place when the pages after it are free).

use std::time::{Duration, Instant};

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::vec::Vec;
use pagealloc::Heap;

const ELEMS: usize = (64 << 20) / 8;

fn minflt() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    after
        .split_whitespace()
        .nth(7)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

fn round<A: Allocator>(alloc: A) -> u64 {
    let mut v: Vec<u64, A> = Vec::new_in(alloc);
    for i in 0..ELEMS as u64 {
        v.push(i);
    }
    let last = v[ELEMS - 1];
    drop(v);
    last
}

fn measure(rounds: u32, f: impl Fn() -> u64) -> (Duration, u64) {
    let (f0, t0) = (minflt(), Instant::now());
    let mut sink = 0;
    for _ in 0..rounds {
        sink += f();
    }
    let (t1, f1) = (t0.elapsed(), minflt());
    assert!(sink > 0);
    (t1 / rounds, (f1 - f0) / u64::from(rounds))
}

fn main() {
    let rounds = std::env::args()
        .filter_map(|a| a.parse::<u32>().ok())
        .next()
        .unwrap_or(10);
    let heap = Heap::new(4 << 30).expect("reserve the heap");
    let mut sys = std::vec::Vec::new();
    let mut hp = std::vec::Vec::new();
    // Warm both once, then alternate.
    round(Global);
    round(&heap);
    for _ in 0..5 {
        sys.push(measure(rounds, || round(Global)));
        hp.push(measure(rounds, || round(&heap)));
    }
    let med = |v: &mut std::vec::Vec<(Duration, u64)>| {
        v.sort();
        v[v.len() / 2]
    };
    let (st, sf) = med(&mut sys);
    let (ht, hf) = med(&mut hp);
    println!("Vec<u64> of 64 MiB pushed from empty and dropped (median of 5 x {rounds} rounds):");
    println!(
        "  System (glibc)  {:>8.2} ms/round  {sf:>7} minor faults/round",
        st.as_secs_f64() * 1e3
    );
    println!(
        "  &Heap           {:>8.2} ms/round  {hf:>7} minor faults/round",
        ht.as_secs_f64() * 1e3
    );
    println!(
        "  System / Heap: {:.2}x time, {:.1}x faults",
        st.as_secs_f64() / ht.as_secs_f64(),
        sf as f64 / hf.max(1) as f64
    );
}
