//! Go 1.19's TestPageAllocGrow (mpagealloc_test.go), case names kept, on
//! every layout preset: after growing one chunk at a time, the in-use
//! address ranges are Go's, and the committed metadata is exactly what Go
//! 1.19's sysGrow and scavengeIndex.grow map (plus the grown chunks'
//! bitmaps, page-rounded; tests/common/committed.rs).

#[path = "common/committed.rs"]
mod committed;

use pagealloc::{Arch, GoVersion, PageAlloc};

#[test]
fn test_page_alloc_grow() {
    // (Go's case name, chunk offsets from BaseChunkIdx, in-use ranges as
    // [first chunk offset, limit chunk offset))
    let many: Vec<u64> = (0..=64).step_by(2).collect();
    let many_ranges: Vec<(u64, u64)> = many.iter().map(|&c| (c, c + 1)).collect();
    type Case = (&'static str, Vec<u64>, Vec<(u64, u64)>);
    let mut cases: Vec<Case> = vec![
        ("One", vec![0], vec![(0, 1)]),
        ("Contiguous2", vec![0, 1], vec![(0, 2)]),
        ("Contiguous5", vec![0, 1, 2, 3, 4], vec![(0, 5)]),
        ("Discontiguous", vec![0, 2, 4], vec![(0, 1), (2, 3), (4, 5)]),
        ("Mixed", vec![0, 1, 2, 4], vec![(0, 3), (4, 5)]),
        (
            "WildlyDiscontiguous",
            vec![0, 1, 0x10, 0x21],
            vec![(0, 2), (0x10, 0x11), (0x21, 0x22)],
        ),
        // 33 ranges: more than Go's initial capacity of 16, twice over.
        ("ManyDiscontiguous", many, many_ranges),
    ];
    assert_eq!(cases.len(), 7);
    let extreme = (
        "ExtremelyDiscontiguous",
        vec![0, 0x10_0000],
        vec![(0, 1), (0x10_0000, 0x10_0001)],
    );
    for arch in Arch::ALL {
        let ly = arch.layout();
        let b = ly.base_chunk_idx();
        if arch.is_64bit() {
            cases.push(extreme.clone());
        }
        for (name, chunks, in_use) in &cases {
            // Go's NewPageAlloc grows the chunks in map order; grow them in
            // the order listed, which the in-use ranges do not depend on.
            let new_page_alloc = |go| {
                let pa = PageAlloc::builder(ly)
                    .go(go)
                    .chunks(chunks.iter().map(|&c| (b + c, Vec::<(u64, u64)>::new())))
                    .build()
                    .unwrap();
                pa.verify().unwrap();
                pa
            };
            let pa = new_page_alloc(GoVersion::Go119);
            let got: Vec<(u64, u64)> = pa
                .grown_ranges()
                .iter()
                .map(|r| (ly.chunk_base(r.start), ly.chunk_base(r.end)))
                .collect();
            let want: Vec<(u64, u64)> = in_use
                .iter()
                .map(|&(s, e)| (ly.page_base(b + s, 0), ly.page_base(b + e, 0)))
                .collect();
            assert_eq!(got, want, "{arch} {name}: in-use ranges");
            assert_eq!(
                pa.mapped_bytes(),
                committed::go119_committed(arch, pa.grown_ranges()),
                "{arch} {name}: committed metadata"
            );
            // Go 1.26: the same ranges; its index commits the grown hull.
            let pa126 = new_page_alloc(GoVersion::Go126);
            assert_eq!(
                pa126.grown_ranges(),
                pa.grown_ranges(),
                "{arch} {name}: Go 1.26"
            );
            assert_eq!(
                pa126.mapped_bytes(),
                committed::go126_committed(arch, pa126.grown_ranges()),
                "{arch} {name}: committed metadata, Go 1.26"
            );
            // The same, grown in the reverse order (each grow below the last).
            let mut rev = PageAlloc::builder(arch)
                .go(GoVersion::Go119)
                .build()
                .unwrap();
            for &c in chunks.iter().rev() {
                rev.grow(ly.chunk_base(b + c), pagealloc::PALLOC_CHUNK_BYTES)
                    .unwrap();
            }
            assert_eq!(
                rev.grown_ranges(),
                pa.grown_ranges(),
                "{arch} {name}: reverse order"
            );
            assert_eq!(
                rev.mapped_bytes(),
                pa.mapped_bytes(),
                "{arch} {name}: reverse order"
            );
        }
        if arch.is_64bit() {
            cases.pop();
        }
    }
}
