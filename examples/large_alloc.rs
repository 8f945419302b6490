//! `LargeAlloc` as the global allocator: allocations of 256 KiB or more
//! come from a Heap, the rest from the system allocator (run: cargo run
//! --release --example large_alloc).

use pagealloc::LargeAlloc;
use std::alloc::System;

#[global_allocator]
static GLOBAL: LargeAlloc<System> = LargeAlloc::new(System, 256 << 10, 16 << 30);

fn main() {
    let mut total = 0u64;
    for round in 0..20u8 {
        // 64 MiB, from the heap: after the first round, pages it already has.
        let big = vec![round; 64 << 20];
        // Small strings: the system allocator.
        let small: Vec<String> = (0..1000).map(|i| format!("{round}-{i}")).collect();
        total += u64::from(big[big.len() - 1]) + small.len() as u64;
    }
    let heap = GLOBAL.heap().expect("a large allocation created the heap");
    let st = heap.stats();
    println!(
        "checksum {total}; heap: in use {} B, retained {} MiB, {} arena(s)",
        st.in_use,
        st.retained >> 20,
        st.arenas
    );
}
