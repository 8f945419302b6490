//! Coverage-guided fuzzing of the Heap with real memory: allocations of
//! assorted sizes (zeroed or not), writes of a per-span byte pattern, frees,
//! double frees, scavenges and memory limits. Every live span must still hold
//! its pattern (no two spans overlap, no free or scavenge touches a live
//! span), every zeroed span must start zero, and the heap must verify.
//!
//! Run: `cargo fuzz run heap -- -max_total_time=600` (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagealloc::{Heap, PAGE_SIZE};

#[path = "input.rs"]
mod input;
use input::Bytes;

fn span<'a>(p: std::ptr::NonNull<u8>, npages: u64) -> &'a mut [u8] {
    // SAFETY: only live spans of this heap are viewed, one at a time.
    unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), (npages * PAGE_SIZE) as usize) }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let heap = Heap::new(512 << 20).expect("reserve");
    // (pointer, pages, pattern byte)
    let mut live: Vec<(std::ptr::NonNull<u8>, u64, u8)> = Vec::new();
    let mut tag = 0u8;
    for _ in 0..128 {
        if input.0.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0..=2 => {
                let n = match input.u8() % 4 {
                    0 => 1,
                    1 => 1 + u64::from(input.u8() % 15),
                    2 => 16 + u64::from(input.u16() % 600),
                    _ => 8192 + u64::from(input.u16() % 9000),
                };
                let zero = input.u8() % 2 == 0;
                let Ok(p) = heap.alloc(n, zero) else { continue };
                let s = span(p, n);
                if zero {
                    assert!(s.iter().all(|&b| b == 0), "zeroed span not zero");
                }
                tag = tag.wrapping_add(1) | 1;
                s.fill(tag);
                live.push((p, n, tag));
            }
            3 | 4 if !live.is_empty() => {
                let (p, n, t) = live.swap_remove(usize::from(input.u16()) % live.len());
                assert!(span(p, n).iter().all(|&b| b == t), "span overwritten");
                heap.free(p, n).expect("free a live span");
                assert!(heap.free(p, n).is_err(), "double free accepted");
            }
            5 => {
                heap.scavenge(u64::from(input.u16()) * PAGE_SIZE)
                    .expect("scavenge");
            }
            6 => {
                let limit = match input.u8() % 3 {
                    0 => None,
                    _ => Some(u64::from(input.u16()) * PAGE_SIZE),
                };
                heap.set_memory_limit(limit);
            }
            _ => {
                for &(p, n, t) in &live {
                    assert!(span(p, n).iter().all(|&b| b == t), "span overwritten");
                }
            }
        }
        heap.verify().expect("heap verifies");
    }
    for (p, n, t) in live {
        assert!(span(p, n).iter().all(|&b| b == t), "span overwritten");
        heap.free(p, n).expect("free");
    }
});
