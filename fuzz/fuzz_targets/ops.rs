//! Coverage-guided fuzzing of the allocator against the naive model.
//!
//! The input bytes are read as an arch and a sequence of operations (grows at
//! varying offsets, below and above the heap and overlapping it; allocs of
//! every size class; frees of live allocations, plus double frees). After
//! every operation the engine must agree with the model and pass verify().
//!
//! Run: `cargo fuzz run ops -- -max_total_time=600` (see the README).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pagealloc::{Arch, PageAlloc, PALLOC_CHUNK_BYTES};

#[path = "../../tests/common/mod.rs"]
mod common;
use common::{Model, P};

#[path = "input.rs"]
mod input;
use input::Bytes;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let arch = Arch::ALL[usize::from(input.u8()) % 3];
    let ly = arch.layout();
    let mut pa = PageAlloc::new(arch).expect("reserve metadata");
    let mut model = Model::default();
    let mut live: Vec<(u64, u64)> = Vec::new();
    let base = ly.base_chunk_idx();
    for _ in 0..256 {
        if input.0.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0 => {
                // Grow 1-4 chunks within ±64 chunks of the base.
                let n = 1 + u64::from(input.u8() % 4);
                let sc = (base + u64::from(input.u8() % 128))
                    .saturating_sub(64)
                    .clamp(1, ly.max_chunks - n);
                let overlaps = model.chunks.range(sc..sc + n).next().is_some();
                if model.chunks.len() as u64 + n > 24 && !overlaps {
                    continue; // keep the naive model quick
                }
                let res = pa.grow(ly.chunk_base(sc), n * PALLOC_CHUNK_BYTES);
                assert_eq!(res.is_ok(), !overlaps, "grow {sc:#x}+{n}: {res:?}");
                if !overlaps {
                    model.grow(sc, sc + n);
                }
            }
            k @ 1..=4 => {
                let n = match k {
                    1 => 1 + u64::from(input.u8() % 4),
                    2 => 1 + u64::from(input.u8() % 64),
                    3 => 1 + u64::from(input.u16()) % P,
                    _ => 1 + u64::from(input.u16()) % (6 * P),
                };
                let got = pa.alloc(n).expect("valid alloc");
                let want = model.alloc(n).map(|(c, i)| ly.page_base(c, i));
                assert_eq!(got, want, "alloc {n}");
                if let Some(a) = got {
                    live.push((a, n));
                }
            }
            7 if !live.is_empty() => {
                // A double free must be refused and change nothing.
                let (a, n) = live[usize::from(input.u8()) % live.len()];
                let lin = ly.lin(a);
                pa.free(a, n).expect("free live");
                model.set(lin >> 22, (lin >> 13) & 511, n, false);
                assert!(pa.free(a, n).is_err(), "double free accepted");
                live.retain(|&x| x != (a, n));
            }
            _ if !live.is_empty() => {
                let (a, n) = live.swap_remove(usize::from(input.u8()) % live.len());
                pa.free(a, n).expect("free live");
                let lin = ly.lin(a);
                model.set(lin >> 22, (lin >> 13) & 511, n, false);
            }
            _ => {}
        }
        if let Err(e) = pa.verify() {
            panic!("verify: {e}");
        }
    }
    for (&c, pages) in &model.chunks {
        let bits = pa.chunk_bitmap(c).unwrap();
        for (i, &used) in pages.iter().enumerate() {
            assert_eq!(bits.get(i as u64), used, "chunk {c:#x} page {i}");
        }
    }
});
