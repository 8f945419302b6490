//! Go 1.26.8's `mgcscavenge_test.go` tests of the scavenge index that
//! changed after Go 1.19 (Go 1.21's `scavChunkData` index), ported with
//! Go's test and case names. `TestPageAllocScavenge` and
//! `TestPallocDataFindScavengeCandidate`, whose tables Go 1.26 keeps, run on
//! both versions in `mgcscavenge.rs`.

use super::base_chunk_idx;
use crate::arch::{Arch, LOG_PALLOC_CHUNK_BYTES, PAGE_SIZE, PALLOC_CHUNK_PAGES};
use crate::scav_index::{ScavChunkData, ScavIndex126};

const P: u64 = PALLOC_CHUNK_PAGES;

/// Go's test export `ScavengeIndex`: the index itself.
type Index = ScavIndex126;

/// Go's `AllocRange(base, limit)` (linearized byte addresses).
fn alloc_range(ix: &mut Index, base: u64, limit: u64) {
    ix.alloc_range(base, (limit - base) / PAGE_SIZE);
}

/// Go's `FreeRange(base, limit)` (linearized byte addresses).
fn free_range(ix: &mut Index, base: u64, limit: u64) {
    ix.free_range(base, (limit - base) / PAGE_SIZE);
}

/// Go's `PageBase(ci, i)`, linearized.
fn page(ci: u64, i: u64) -> u64 {
    (ci << LOG_PALLOC_CHUNK_BYTES) + i * PAGE_SIZE
}

/// Go's `setup`: an index over `[b, b+64)`, every chunk dense in the last
/// generation and empty to the scavenger, cursors reset.
fn setup(arch: Arch, b: u64) -> Index {
    let ly = arch.layout();
    let mut ix = ScavIndex126::for_test(&ly, b, b + 64).unwrap();
    alloc_range(&mut ix, page(b, 0), page(b + 64, 0));
    ix.next_gen();
    free_range(&mut ix, page(b, 0), page(b + 64, 0));
    for ci in b..b + 64 {
        ix.set_empty(ci);
    }
    ix.reset_search_addrs();
    ix
}

/// Go's `find`: the index finds `want` (chunk, page offset), or nothing
/// when `want` is `(0, 0)`; the chunk found is then set empty.
fn find(ix: &mut Index, force: bool, want: (u64, u64), ctx: &str) {
    let got = ix.find(force).unwrap_or((0, 0));
    assert_eq!(got, want, "{ctx}: find");
    if got.0 != 0 {
        ix.set_empty(got.0);
    }
}

type Mark = Box<dyn Fn(&mut Index, u64)>;

/// Go's `mark`: makes `[base, limit)` available for scavenging.
fn mark(ix: &mut Index, base: u64, limit: u64) {
    alloc_range(ix, base, limit);
    free_range(ix, base, limit);
}

/// Finds of whole chunks from `hi` down to `lo`, each at its last page.
fn down(hi: u64, lo: u64) -> Vec<(u64, u64)> {
    (lo..=hi).rev().map(|c| (c, P - 1)).collect()
}
type Find = Box<dyn Fn(u64) -> Vec<(u64, u64)>>;

/// Go's cases: what to mark and what `find` then returns, in order
/// (chunk indices relative to `BaseChunkIdx`, passed as `b`).
fn cases() -> Vec<(&'static str, Mark, Find)> {
    let m = |f: fn(&mut Index, u64)| -> Mark { Box::new(f) };
    vec![
        ("Uninitialized", m(|_, _| {}), Box::new(|_| vec![])),
        (
            "OnePage",
            m(|ix, b| mark(ix, page(b, 3), page(b, 4))),
            Box::new(|b| vec![(b, 3)]),
        ),
        (
            "FirstPage",
            m(|ix, b| mark(ix, page(b, 0), page(b, 1))),
            Box::new(|b| vec![(b, 0)]),
        ),
        (
            "SeveralPages",
            m(|ix, b| mark(ix, page(b, 9), page(b, 14))),
            Box::new(|b| vec![(b, 13)]),
        ),
        (
            "WholeChunk",
            m(|ix, b| mark(ix, page(b, 0), page(b + 1, 0))),
            Box::new(|b| vec![(b, P - 1)]),
        ),
        (
            "LastPage",
            m(|ix, b| mark(ix, page(b, P - 1), page(b + 1, 0))),
            Box::new(|b| vec![(b, P - 1)]),
        ),
        (
            "SevenChunksOffset",
            m(|ix, b| mark(ix, page(b + 6, 11), page(b + 13, 15))),
            Box::new(|b| [vec![(b + 13, 14)], down(b + 12, b + 6)].concat()),
        ),
        (
            "ThirtyTwoChunks",
            m(|ix, b| mark(ix, page(b, 0), page(b + 32, 0))),
            Box::new(|b| down(b + 31, b)),
        ),
        (
            "ThirtyTwoChunksOffset",
            m(|ix, b| mark(ix, page(b + 3, 0), page(b + 35, 0))),
            Box::new(|b| down(b + 34, b + 3)),
        ),
        (
            "Mark",
            m(|ix, b| {
                for i in b..b + 32 {
                    mark(ix, page(i, 0), page(i + 1, 0));
                }
            }),
            Box::new(|b| down(b + 31, b)),
        ),
        (
            "MarkIdempotentOneChunk",
            m(|ix, b| {
                mark(ix, page(b, 0), page(b + 1, 0));
                mark(ix, page(b, 0), page(b + 1, 0));
            }),
            Box::new(|b| vec![(b, P - 1)]),
        ),
        (
            "MarkIdempotentThirtyTwoChunks",
            m(|ix, b| {
                mark(ix, page(b, 0), page(b + 32, 0));
                mark(ix, page(b, 0), page(b + 32, 0));
            }),
            Box::new(|b| down(b + 31, b)),
        ),
        (
            "MarkIdempotentThirtyTwoChunksOffset",
            m(|ix, b| {
                mark(ix, page(b + 4, 0), page(b + 31, 0));
                mark(ix, page(b + 5, 0), page(b + 36, 0));
            }),
            Box::new(|b| down(b + 35, b + 4)),
        ),
        (
            "TwoChunks",
            m(|ix, b| mark(ix, page(b, 128), page(b + 1, 128))),
            Box::new(|b| vec![(b + 1, 127), (b, P - 1)]),
        ),
        (
            "TwoChunksOffset",
            m(|ix, b| mark(ix, page(b + 7, 128), page(b + 8, 129))),
            Box::new(|b| vec![(b + 8, 128), (b + 7, P - 1)]),
        ),
    ]
}

#[test]
fn test_scavenge_index() {
    for arch in Arch::ALL {
        let b = base_chunk_idx(arch);
        for (name, mark, finds) in cases() {
            // Bg/: nothing before the next generation, then everything.
            let ctx = format!("{arch} Bg/{name}");
            let mut ix = setup(arch, b);
            mark(&mut ix, b);
            find(&mut ix, false, (0, 0), &ctx);
            ix.next_gen();
            for want in finds(b) {
                find(&mut ix, false, want, &ctx);
            }
            find(&mut ix, false, (0, 0), &ctx);
            // Force/: finding always works.
            let ctx = format!("{arch} Force/{name}");
            let mut ix = setup(arch, b);
            mark(&mut ix, b);
            for want in finds(b) {
                find(&mut ix, true, want, &ctx);
            }
            find(&mut ix, true, (0, 0), &ctx);
        }
        for force in [false, true] {
            let ctx = format!(
                "{arch} {}/MarkInterleaved",
                if force { "Force" } else { "Bg" }
            );
            let mut ix = setup(arch, b);
            for i in b..b + 32 {
                mark(&mut ix, page(i, 0), page(i + 1, 0));
                if !force {
                    ix.next_gen();
                }
                find(&mut ix, force, (i, P - 1), &ctx);
            }
            find(&mut ix, force, (0, 0), &ctx);
        }
    }
}

/// Go's `CheckPackScavChunkData`: unpacking a packed value gives it back.
fn check_pack(gen: u32, in_use: u16, last_in_use: u16, flags: u8) -> bool {
    let sc = ScavChunkData {
        in_use,
        last_in_use,
        gen,
        flags,
    };
    ScavChunkData::unpack(sc.pack()) == sc
}

#[test]
fn test_scav_chunk_data_pack() {
    assert!(
        check_pack(1918237402, 512, 512, 0b11),
        "failed pack/unpack check for scavChunkData 1"
    );
    assert!(
        check_pack(u32::MAX, 12, 0, 0b00),
        "failed pack/unpack check for scavChunkData 2"
    );
}
