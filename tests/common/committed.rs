//! What Go 1.19 commits for a heap's metadata, computed independently of the
//! engine: the expected `mapped_bytes` of a `PageAlloc` whose grown chunk
//! ranges are `grown`.
#![allow(dead_code)]

use std::ops::Range;

use pagealloc::{Arch, LOG_PALLOC_CHUNK_BYTES};

/// Bytes of the union of `ranges` after rounding each out to `page`.
fn pages_of(ranges: impl Iterator<Item = (u64, u64)>, page: u64) -> usize {
    let mut v: Vec<(u64, u64)> = ranges
        .map(|(lo, hi)| (lo / page * page, hi.next_multiple_of(page)))
        .collect();
    v.sort();
    let (mut total, mut end) = (0u64, 0u64);
    for (lo, hi) in v {
        let lo = lo.max(end);
        if hi > lo {
            total += hi - lo;
            end = hi;
        }
    }
    total as usize
}

/// Go 1.19's committed metadata for grown chunk-index ranges: at every
/// summary level, the pages holding the block-aligned entries each range
/// needs (sysGrow maps them range by range, pruning what neighbours mapped,
/// so the total is the size of their union); the chunk bitmaps (128 bytes
/// per chunk, pallocData) of the grown chunks, page-rounded; and the
/// scavenge index, one byte per 8 chunks, from byte 0 (Go 1.19's first
/// growth starts its range there) to the byte of the highest grown chunk,
/// page-rounded. 386 commits every summary at init and keeps its index in a
/// static array.
pub fn go119_committed(arch: Arch, grown: &[Range<u64>]) -> usize {
    let ly = arch.layout();
    let page = rustix::param::page_size() as u64;
    let mut total = pages_of(grown.iter().map(|r| (r.start * 128, r.end * 128)), page);
    if arch.is_64bit() {
        if let Some(last) = grown.last() {
            total += pages_of([(0, last.end.div_ceil(8))].into_iter(), page);
        }
        for l in 0..ly.summary_levels {
            total += pages_of(
                grown.iter().map(|r| {
                    let (lo, hi) = ly.addrs_to_summary_range(
                        l,
                        r.start << LOG_PALLOC_CHUNK_BYTES,
                        r.end << LOG_PALLOC_CHUNK_BYTES,
                    );
                    let (lo, hi) = ly.block_align_summary_range(l, lo, hi);
                    (lo * 8, hi * 8)
                }),
                page,
            );
        }
    } else {
        let entries: u64 = (0..ly.summary_levels).map(|l| ly.level_entries(l)).sum();
        total += (entries * 8).next_multiple_of(page) as usize;
    }
    total
}

/// What Go 1.26's `sysGrow` calls commit for a heap grown over `grown`: the
/// same chunk bitmaps and summary blocks as Go 1.19, and a scavenge index of
/// 8 bytes per chunk over the grown hull in whole pages (Go 1.23+'s
/// `scavengeIndex.sysGrow`; on 386 a static array, not counted).
#[allow(dead_code)]
pub fn go126_committed(arch: Arch, grown: &[Range<u64>]) -> usize {
    let page = rustix::param::page_size() as u64;
    let mut total = go119_committed(arch, grown);
    if arch.is_64bit() {
        if let (Some(first), Some(last)) = (grown.first(), grown.last()) {
            total -= pages_of([(0, last.end.div_ceil(8))].into_iter(), page);
            let per = page / 8;
            let (lo, hi) = (first.start / per * per, last.end.next_multiple_of(per));
            total += ((hi - lo) * 8) as usize;
        }
    }
    total
}
