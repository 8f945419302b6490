//! Reserved and committed metadata: the committed bytes after growing equal
//! what Go 1.19's sysGrow commits for the summaries and scavengeIndex.grow
//! for the scavenge index, plus the grown chunks' bitmaps, page-rounded
//! (tests/common/committed.rs), and every reservation is released on drop.
//!
//! One test function, so that no other test in this binary maps or unmaps
//! memory while the mappings are counted.

use pagealloc::{Arch, GoVersion, PageAlloc, PALLOC_CHUNK_BYTES};

#[path = "common/committed.rs"]
mod committed;

use committed::{go119_committed, go126_committed};

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

#[test]
fn committed_and_reserved_bytes() {
    let maps_before = maps_lines();
    println!(
        "{:<8} {:<34} {:>14} {:>12}",
        "arch", "heap", "reserved", "committed"
    );
    for arch in Arch::ALL {
        let ly = arch.layout();
        let b = ly.base_chunk_idx();
        // (description, grows as (first chunk, chunk count), expected hull)
        let cases: Vec<(&str, Vec<(u64, u64)>)> = vec![
            ("1 chunk", vec![(b, 1)]),
            ("64 chunks", vec![(b, 64)]),
            ("4096 chunks, one grow", vec![(b, 4096)]),
            (
                "4096 chunks, grown one by one",
                (0..4096).map(|i| (b + i, 1)).collect(),
            ),
            ("gap of 0x100 chunks", vec![(b, 1), (b + 0x100, 1)]),
            ("gap of 0x100000 chunks", vec![(b, 1), (b + 0x10_0000, 1)]),
            ("downward", vec![(b + 0x40, 1), (b + 0x20, 1), (b + 1, 1)]),
            (
                "upward then below then inside",
                vec![(b + 8, 2), (b + 0x300, 1), (b, 1), (b + 0x100, 3)],
            ),
        ];
        for (what, grows) in cases {
            if grows.iter().any(|&(c, n)| c + n > ly.max_chunks) {
                continue; // 386 has 1024 chunks in all
            }
            // Go 1.26's index commits its own way; the rest is the same.
            let mut pa126 = PageAlloc::builder(arch)
                .go(GoVersion::Go126)
                .build()
                .unwrap();
            for &(c, n) in &grows {
                pa126
                    .grow(ly.chunk_base(c), n * PALLOC_CHUNK_BYTES)
                    .unwrap();
            }
            pa126.verify().unwrap();
            assert_eq!(
                pa126.mapped_bytes(),
                go126_committed(arch, pa126.grown_ranges()),
                "{arch} {what} (Go 1.26)"
            );
            let mut pa = PageAlloc::builder(arch)
                .go(GoVersion::Go119)
                .build()
                .unwrap();
            let reserved = pa.reserved_bytes();
            for &(c, n) in &grows {
                pa.grow(ly.chunk_base(c), n * PALLOC_CHUNK_BYTES).unwrap();
            }
            pa.verify().unwrap();
            assert_eq!(
                pa.mapped_bytes(),
                go119_committed(arch, pa.grown_ranges()),
                "{arch} {what}"
            );
            assert_eq!(pa.reserved_bytes(), reserved);
            println!(
                "{:<8} {:<34} {:>14} {:>12}",
                arch.name(),
                what,
                reserved,
                pa.mapped_bytes()
            );
        }
    }

    // Worked by hand for amd64 at BaseChunkIdx (page 4096): chunk bitmaps
    // (128 B each), then root (always the whole 128 KiB level), then levels
    // 1..4 (one page each, unless more entries are needed), then the
    // scavenge index up to byte (0x200c001 + 7) / 8, page-rounded: 0x402000.
    let ly = Arch::Amd64.layout();
    let b = ly.base_chunk_idx();
    let grown = |go, n: u64| {
        let mut pa = PageAlloc::builder(Arch::Amd64).go(go).build().unwrap();
        pa.grow(ly.chunk_base(b), n * PALLOC_CHUNK_BYTES).unwrap();
        pa.mapped_bytes()
    };
    let index = 0x402000;
    assert_eq!(grown(GoVersion::Go119, 1), 4096 + 131072 + 4 * 4096 + index);
    assert_eq!(
        grown(GoVersion::Go119, 64),
        8192 + 131072 + 4 * 4096 + index
    );
    assert_eq!(
        grown(GoVersion::Go119, 4096),
        524288 + 131072 + 3 * 4096 + 32768 + index
    );
    // Go 1.26's index: 8 bytes per chunk over the grown hull, whole pages
    // (512 entries each; 0x200c000 is a multiple of 512).
    assert_eq!(grown(GoVersion::Go126, 1), 4096 + 131072 + 4 * 4096 + 4096);
    assert_eq!(grown(GoVersion::Go126, 64), 8192 + 131072 + 4 * 4096 + 4096);
    assert_eq!(
        grown(GoVersion::Go126, 4096),
        524288 + 131072 + 3 * 4096 + 32768 + 32768
    );
    let summaries = (128 << 10) + (1 << 20) + (8 << 20) + (64 << 20) + (512 << 20);
    assert_eq!(
        PageAlloc::builder(Arch::Amd64)
            .go(GoVersion::Go126)
            .build()
            .unwrap()
            .reserved_bytes(),
        (8 << 30) + (512 << 20) + summaries
    );
    let mut pa126 = PageAlloc::builder(Arch::Amd64)
        .go(GoVersion::Go126)
        .build()
        .unwrap();
    for c in [b, b + 0x100, b + 0x10_0000] {
        pa126.grow(ly.chunk_base(c), PALLOC_CHUNK_BYTES).unwrap();
    }
    // A chunk 4 TiB away: Go 1.26's index commits the hull between, 0x100200
    // entries of 8 bytes (Go 1.19's bitmap index commits from byte 0 instead).
    assert_eq!(
        pa126.mapped_bytes(),
        3 * 4096 + 131072 + 4 * 4096 + 4 * 4096 + 0x100200 * 8
    );
    let mut pa = PageAlloc::builder(Arch::Amd64)
        .go(GoVersion::Go119)
        .build()
        .unwrap();
    assert_eq!(
        pa.reserved_bytes(),
        (8 << 30) + (8 << 20) + (128 << 10) + (1 << 20) + (8 << 20) + (64 << 20) + (512 << 20)
    );
    assert_eq!(pa.mapped_bytes(), 0);
    pa.grow(ly.chunk_base(b), PALLOC_CHUNK_BYTES).unwrap();
    pa.grow(ly.chunk_base(b + 0x100), PALLOC_CHUNK_BYTES)
        .unwrap();
    // Bitmaps of the two chunks only (one page each, 0x100 * 128 B apart; the
    // seed committed the 9 pages of the hull), the root as before, and the
    // two chunks' entries share one page at each of levels 1..4 (0x100
    // leaf entries are 2 KiB); the index as before.
    assert_eq!(pa.mapped_bytes(), 2 * 4096 + 131072 + 4 * 4096 + index);
    pa.grow(ly.chunk_base(b + 0x10_0000), PALLOC_CHUNK_BYTES)
        .unwrap();
    // A chunk 4 TiB away: one bitmap page, a new page at each of levels
    // 1..4 (even level 1's entries are 0x100000 >> 9 = 0x800 entries, 16 KiB,
    // apart), and index bytes up to (0x210c000 + 8) / 8, page-rounded:
    // 0x422000. The seed's hull commitment would have added 128 MiB of
    // bitmaps and 8 MiB of leaf summaries.
    assert_eq!(
        pa.mapped_bytes(),
        3 * 4096 + 131072 + 4 * 4096 + 4 * 4096 + 0x422000
    );
    let pa386 = PageAlloc::builder(Arch::I386)
        .go(GoVersion::Go119)
        .build()
        .unwrap();
    assert_eq!(pa386.reserved_bytes(), 131072 + 4096 + 12288);
    assert_eq!(pa386.mapped_bytes(), 12288);
    // Go 1.26 on 386: its static index is 1024 entries of 8 bytes, not
    // counted as mapped (as Go 1.19's static bitmap).
    let go126 = PageAlloc::builder(Arch::I386)
        .go(GoVersion::Go126)
        .build()
        .unwrap();
    assert_eq!(go126.reserved_bytes(), 131072 + 8192 + 12288);
    assert_eq!(go126.mapped_bytes(), 12288);
    drop((pa, pa386, pa126, go126));

    // Every reservation is gone once the allocators are dropped.
    let many: Vec<PageAlloc> = Arch::ALL
        .iter()
        .map(|&a| PageAlloc::new(a).unwrap())
        .collect();
    assert!(maps_lines() > maps_before);
    drop(many);
    if std::env::var_os("PAGEALLOC_ASAN").is_some() {
        // AddressSanitizer maps and unmaps memory of its own meanwhile.
        eprintln!("not counting /proc/self/maps lines: under AddressSanitizer (scripts/asan.sh)");
    } else {
        assert_eq!(maps_lines(), maps_before);
    }
}
