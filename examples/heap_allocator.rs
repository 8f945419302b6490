//! A `Vec` whose buffer lives in a `Heap`, through allocator-api2's
//! `Allocator` (run: cargo run --release --example heap_allocator
//! --features allocator-api2). Growing the vector extends its pages in
//! place when the pages after them are free: no copy.

use allocator_api2::vec::Vec;
use pagealloc::Heap;

fn main() {
    let heap = Heap::new(1 << 30).expect("reserve the heap");
    let mut v: Vec<u64, &Heap> = Vec::new_in(&heap);
    let mut moves = 0;
    let mut last = v.as_ptr();
    for i in 0..(8 << 20) as u64 {
        v.push(i);
        if v.as_ptr() != last {
            moves += 1;
            last = v.as_ptr();
        }
    }
    let st = heap.stats();
    println!(
        "{} elements ({} MiB), buffer moved {moves} times, heap in use {} MiB",
        v.len(),
        (v.len() * 8) >> 20,
        st.in_use >> 20
    );
    drop(v);
    println!(
        "after drop: in use {} B, retained {} MiB",
        heap.stats().in_use,
        heap.stats().retained >> 20
    );
}
