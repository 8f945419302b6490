//! Reserved and committed metadata: the committed bytes after growing equal
//! what the seed's sysGrow/extendMappedRegion rounding gives for the bitmaps
//! and summaries plus what Go 1.19's scavengeIndex.grow commits for the
//! scavenge index, and every reservation is released on drop.
//!
//! One test function, so that no other test in this binary maps or unmaps
//! memory while the mappings are counted.

use pagealloc::{Arch, PageAlloc, LOG_PALLOC_CHUNK_BYTES, PALLOC_CHUNK_BYTES};

/// The seed's commitment for a heap whose chunks span the hull [start, end):
/// per summary level the block-aligned entry range, page-rounded; the chunk
/// bitmaps (Go 1.19's pallocData, 128 bytes each) exactly [start, end),
/// page-rounded; and Go 1.19's scavenge index, one byte per 8 chunks, from
/// byte 0 to the byte of the last chunk, page-rounded (its first growth
/// starts the committed range at 0 and later ones extend it). (386 commits
/// all summaries at init and counts no index: Go keeps it in a static array.)
fn seed_committed(arch: Arch, start: u64, end: u64) -> usize {
    let ly = arch.layout();
    let page = rustix::param::page_size() as u64;
    let round = |lo: u64, hi: u64| (hi.next_multiple_of(page) - lo / page * page) as usize;
    let mut total = round(start * 128, end * 128);
    if arch.is_64bit() {
        total += round(0, end.div_ceil(8));
        let (base, limit) = (
            start << LOG_PALLOC_CHUNK_BYTES,
            end << LOG_PALLOC_CHUNK_BYTES,
        );
        for l in 0..ly.summary_levels {
            let (lo, hi) = ly.addrs_to_summary_range(l, base, limit);
            let (lo, hi) = ly.block_align_summary_range(l, lo, hi);
            total += round(lo * 8, hi * 8);
        }
    } else {
        let entries: u64 = (0..ly.summary_levels).map(|l| ly.level_entries(l)).sum();
        total += (entries * 8).next_multiple_of(page) as usize;
    }
    total
}

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
            let mut pa = PageAlloc::new(arch).unwrap();
            let reserved = pa.reserved_bytes();
            for &(c, n) in &grows {
                pa.grow(ly.chunk_base(c), n * PALLOC_CHUNK_BYTES).unwrap();
            }
            pa.verify().unwrap();
            let (start, end) = pa.bounds();
            assert_eq!(
                pa.mapped_bytes(),
                seed_committed(arch, start, end),
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
    let grown = |n: u64| {
        let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
        pa.grow(ly.chunk_base(b), n * PALLOC_CHUNK_BYTES).unwrap();
        pa.mapped_bytes()
    };
    let index = 0x402000;
    assert_eq!(grown(1), 4096 + 131072 + 4 * 4096 + index);
    assert_eq!(grown(64), 8192 + 131072 + 4 * 4096 + index);
    assert_eq!(grown(4096), 524288 + 131072 + 3 * 4096 + 32768 + index);
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    assert_eq!(
        pa.reserved_bytes(),
        (8 << 30) + (8 << 20) + (128 << 10) + (1 << 20) + (8 << 20) + (64 << 20) + (512 << 20)
    );
    assert_eq!(pa.mapped_bytes(), 0);
    pa.grow(ly.chunk_base(b), PALLOC_CHUNK_BYTES).unwrap();
    pa.grow(ly.chunk_base(b + 0x100), PALLOC_CHUNK_BYTES)
        .unwrap();
    // Bitmaps span the hull (0x101 chunks: 9 pages), the index as before.
    assert_eq!(pa.mapped_bytes(), 9 * 4096 + 131072 + 4 * 4096 + index);
    let pa386 = PageAlloc::new(Arch::I386).unwrap();
    assert_eq!(pa386.reserved_bytes(), 131072 + 4096 + 12288);
    assert_eq!(pa386.mapped_bytes(), 12288);
    drop((pa, pa386));

    // Every reservation is gone once the allocators are dropped.
    let many: Vec<PageAlloc> = Arch::ALL
        .iter()
        .map(|&a| PageAlloc::new(a).unwrap())
        .collect();
    assert!(maps_lines() > maps_before);
    drop(many);
    assert_eq!(maps_lines(), maps_before);
}
