//! Go 1.19's (and, in `mgcscavenge126`, Go 1.26's) runtime tests of the
//! allocator's inner pieces, ported with
//! Go's test and case names so each can be held beside its Go original: one
//! module per Go test file. (The tables that drive a whole `PageAlloc`
//! through Go's `NewPageAlloc` live in the Python suite,
//! `tests/python/test_go119_tables.py`, and `tests/go119.rs`.)
// Tables keep Go's shapes: one-range lists and wide tuples are deliberate.
#![allow(clippy::single_range_in_vec_init, clippy::type_complexity)]

mod mgcscavenge;
mod mgcscavenge126;
mod mpagecache;
mod mpallocbits;
mod mranges;
#[path = "../../tests/common/splitmix.rs"]
mod splitmix;

use crate::arch::Arch;

/// Go's `BaseChunkIdx` on a preset.
fn base_chunk_idx(arch: Arch) -> u64 {
    arch.layout().base_chunk_idx()
}

/// A bitmap with the `(i, n)` runs set (runs of length 0 ignored), Go's
/// `makePallocBits`.
fn bits_of(runs: &[(u64, u64)]) -> crate::PallocBits {
    let mut b = crate::PallocBits::EMPTY;
    for &(i, n) in runs.iter().filter(|r| r.1 != 0) {
        b.alloc_range(i, n);
    }
    b
}

/// `NewPageAlloc(chunks, scav)` as Go version `go` writes it.
fn new_page_alloc_go(
    arch: Arch,
    go: crate::GoVersion,
    chunks: &[(u64, Vec<(u64, u64)>)],
    scav: &[(u64, Vec<(u64, u64)>)],
) -> crate::PageAlloc {
    crate::PageAlloc::builder(arch)
        .go(go)
        .chunks(chunks.to_vec())
        .scavenged(scav.to_vec())
        .build()
        .unwrap()
}

/// Go 1.19's `NewPageAlloc(chunks, scav)`.
fn new_page_alloc(
    arch: Arch,
    chunks: &[(u64, Vec<(u64, u64)>)],
    scav: &[(u64, Vec<(u64, u64)>)],
) -> crate::PageAlloc {
    crate::PageAlloc::builder(arch)
        .chunks(chunks.to_vec())
        .scavenged(scav.to_vec())
        .build()
        .unwrap()
}

/// Go 1.19's `checkPageAlloc`: the same bounds and, for every chunk in
/// them, the same alloc and scavenged bitmaps; plus our `verify`.
fn check_page_alloc(want: &crate::PageAlloc, got: &crate::PageAlloc, ctx: &str) {
    got.verify().unwrap();
    assert_eq!(got.bounds(), want.bounds(), "{ctx}: bounds");
    let (start, end) = got.bounds();
    for ci in start..end {
        assert_eq!(
            got.chunk_bitmap(ci).unwrap(),
            want.chunk_bitmap(ci).unwrap(),
            "{ctx}: chunk {ci:#x} bits"
        );
        assert_eq!(
            got.chunk_scavenged(ci).unwrap(),
            want.chunk_scavenged(ci).unwrap(),
            "{ctx}: chunk {ci:#x} scavenged"
        );
    }
}
