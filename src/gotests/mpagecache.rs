//! `mpagecache_test.go`: TestPageCacheAlloc, TestPageCacheFlush,
//! TestPageAllocAllocToCache (with the 64-bit DiscontiguousMappedSumBoundary).

use super::splitmix::SplitMix64;
use super::{base_chunk_idx, check_page_alloc, new_page_alloc};
use crate::arch::{Arch, PAGE_SIZE as PS, PALLOC_CHUNK_PAGES as P};
use crate::PageCache;

/// Go's NewPageCache, which (unlike `PageCache::new`) accepts any bits.
fn pc(base: u64, cache: u64, scav: u64) -> PageCache {
    PageCache { base, cache, scav }
}

#[test]
fn test_page_cache_alloc() {
    let base = Arch::Amd64
        .layout()
        .page_base(base_chunk_idx(Arch::Amd64), 0);
    let b = |i: u64| base + i * PS;
    let m = u64::MAX;
    // (Go's case name, cache, [(npages, want base or 0, want scav bytes)])
    let cases: [(&str, PageCache, Vec<(u64, u64, u64)>); 11] = [
        (
            "Empty",
            pc(base, 0, 0),
            [1, 2, 3, 4, 5, 11, 12, 16, 27, 32, 43, 57, 64, 121]
                .map(|n| (n, 0, 0))
                .to_vec(),
        ),
        (
            "Lo1",
            pc(base, 0x1, 0x1),
            vec![(1, base, PS), (1, 0, 0), (10, 0, 0)],
        ),
        (
            "Hi1",
            pc(base, 0x1 << 63, 0x1),
            vec![(1, b(63), 0), (1, 0, 0), (10, 0, 0)],
        ),
        (
            "Swiss1",
            pc(base, 0x20005555, 0x5505),
            vec![
                (2, 0, 0),
                (1, base, PS),
                (1, b(2), PS),
                (1, b(4), 0),
                (1, b(6), 0),
                (1, b(8), PS),
                (1, b(10), PS),
                (1, b(12), PS),
                (1, b(14), PS),
                (1, b(29), 0),
                (1, 0, 0),
                (10, 0, 0),
            ],
        ),
        (
            "Lo2",
            pc(base, 0x3, 0x2 << 62),
            vec![(2, base, 0), (2, 0, 0), (1, 0, 0)],
        ),
        (
            "Hi2",
            pc(base, 0x3 << 62, 0x3 << 62),
            vec![(2, b(62), 2 * PS), (2, 0, 0), (1, 0, 0)],
        ),
        (
            "Swiss2",
            pc(base, 0x3333 << 31, 0x3030 << 31),
            vec![
                (2, b(31), 0),
                (2, b(35), 2 * PS),
                (2, b(39), 0),
                (2, b(43), 2 * PS),
                (2, 0, 0),
            ],
        ),
        (
            "Hi53",
            pc(base, ((1 << 53) - 1) << 10, ((1 << 16) - 1) << 10),
            vec![(53, b(10), 16 * PS), (53, 0, 0), (1, 0, 0)],
        ),
        (
            "Full53",
            pc(base, m, ((1 << 16) - 1) << 10),
            vec![(53, base, 16 * PS), (53, 0, 0), (1, b(53), 0)],
        ),
        (
            "Full64",
            pc(base, m, m),
            vec![(64, base, 64 * PS), (64, 0, 0), (1, 0, 0)],
        ),
        (
            "FullMixed",
            pc(base, m, m),
            vec![
                (5, base, 5 * PS),
                (7, b(5), 7 * PS),
                (1, b(12), PS),
                (23, b(13), 23 * PS),
                (63, 0, 0),
                (3, b(36), 3 * PS),
                (3, b(39), 3 * PS),
                (3, b(42), 3 * PS),
                (12, b(45), 12 * PS),
                (11, 0, 0),
                (4, b(57), 4 * PS),
                (4, 0, 0),
                (6, 0, 0),
                (36, 0, 0),
                (2, b(61), 2 * PS),
                (3, 0, 0),
                (1, b(63), PS),
                (4, 0, 0),
                (2, 0, 0),
                (62, 0, 0),
                (1, 0, 0),
            ],
        ),
    ];
    for (name, mut c, hits) in cases {
        for (k, (npages, want, scav)) in hits.into_iter().enumerate() {
            let (got, s) = c.alloc(npages).unwrap();
            assert_eq!(
                (got.unwrap_or(0), s),
                (want, scav),
                "{name}: alloc #{k} of {npages}"
            );
        }
    }
}

/// Go's bits64ToBitRanges: the runs of set bits of `bits`, offset by `base`.
fn runs64(bits: u64, base: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < 64 {
        if bits >> i & 1 == 0 {
            i += 1;
            continue;
        }
        let n = (bits >> i).trailing_ones() as u64;
        out.push((base + i, n));
        i += n;
    }
    out
}

#[test]
fn test_page_cache_flush() {
    for arch in Arch::ALL {
        let bci = base_chunk_idx(arch);
        let run = |base: u64, cache: u64, scav: u64| {
            let mut b = new_page_alloc(arch, &[(bci, vec![(base, 64)])], &[(bci, vec![])]);
            let mut c = pc(arch.layout().page_base(bci, base), cache, scav);
            c.flush(&mut b).unwrap();
            assert!(c.empty(), "flush did not clear the cache");
            let want = new_page_alloc(
                arch,
                &[(bci, runs64(!cache, base))],
                &[(bci, runs64(scav, base))],
            );
            check_page_alloc(
                &want,
                &b,
                &format!("{arch} flush base {base} cache {cache:#x} scav {scav:#x}"),
            );
        };
        // Empty, full, then random.
        run(0, 0, 0);
        run(0, u64::MAX, u64::MAX);
        let mut rng = SplitMix64(0x1234_5678);
        let mut next = || rng.next();
        for _ in 0..100 {
            let base = next() % (P / 64) * 64;
            let cache = next();
            let scav = next() & cache;
            run(base, cache, scav);
        }
    }
}

#[test]
fn test_page_alloc_alloc_to_cache() {
    type Map = Vec<(u64, Vec<(u64, u64)>)>;
    let m = u64::MAX;
    for arch in Arch::ALL {
        let ly = arch.layout();
        let bci = base_chunk_idx(arch);
        let pb = |ci: u64, i: u64| ly.page_base(ci, i);
        let at = |v: &[(u64, &[(u64, u64)])]| -> Map {
            v.iter().map(|(c, r)| (bci + c, r.to_vec())).collect()
        };
        // (Go's case name, beforeAlloc, beforeScav, hits, afterAlloc, afterScav)
        let mut cases: Vec<(&str, Map, Map, Vec<PageCache>, Map, Map)> = vec![
            (
                "AllFree",
                at(&[(0, &[])]),
                at(&[(0, &[(1, 1), (64, 64)])]),
                vec![
                    pc(pb(bci, 0), m, 0x2),
                    pc(pb(bci, 64), m, m),
                    pc(pb(bci, 128), m, 0),
                    pc(pb(bci, 192), m, 0),
                ],
                at(&[(0, &[(0, 256)])]),
                vec![],
            ),
            (
                "ManyArena",
                at(&[(0, &[(0, P)]), (1, &[(0, P)]), (2, &[(0, P - 64)])]),
                at(&[(0, &[(0, P)]), (1, &[(0, P)]), (2, &[])]),
                vec![pc(pb(bci + 2, P - 64), m, 0)],
                at(&[(0, &[(0, P)]), (1, &[(0, P)]), (2, &[(0, P)])]),
                vec![],
            ),
            (
                "NotContiguous",
                at(&[(0, &[(0, P)]), (0xff, &[(0, 0)])]),
                at(&[(0, &[(0, P)]), (0xff, &[(31, 67)])]),
                vec![pc(pb(bci + 0xff, 0), m, ((1u64 << 33) - 1) << 31)],
                at(&[(0, &[(0, P)]), (0xff, &[(0, 64)])]),
                at(&[(0, &[(0, P)]), (0xff, &[(64, 34)])]),
            ),
            (
                "First",
                at(&[(0, &[(0, 32), (33, 31), (96, 32)])]),
                at(&[(0, &[(1, 4), (31, 5), (66, 2)])]),
                vec![
                    pc(pb(bci, 0), 1 << 32, 1 << 32),
                    pc(pb(bci, 64), (1u64 << 32) - 1, 0x3 << 2),
                ],
                at(&[(0, &[(0, 128)])]),
                vec![],
            ),
            (
                "Fail",
                at(&[(0, &[(0, P)])]),
                vec![],
                vec![pc(0, 0, 0); 3],
                at(&[(0, &[(0, P)])]),
                vec![],
            ),
            (
                "RetainScavBits",
                at(&[(0, &[(0, 1), (10, 2)])]),
                at(&[(0, &[(0, 4), (11, 1)])]),
                vec![pc(pb(bci, 0), !(0x1 | (0x3 << 10)), 0x7 << 1)],
                at(&[(0, &[(0, 64)])]),
                at(&[(0, &[(0, 1), (11, 1)])]),
            ),
        ];
        if arch.is_64bit() {
            // Two chunks far apart, the first ending where one page of leaf
            // summaries ends: the search must not wander into unmapped
            // summaries between them.
            const BIG_JUMP: u64 = 0x10_0000;
            let sums_per_page = 4096 / 8;
            let b = bci & !(sums_per_page - 1);
            let lo = b + sums_per_page - 1;
            let hi = b + BIG_JUMP;
            cases.push((
                "DiscontiguousMappedSumBoundary",
                vec![(lo, vec![(0, P - 1)]), (hi, vec![(1, P - 1)])],
                vec![(lo, vec![]), (hi, vec![])],
                vec![
                    pc(pb(lo, P - 64), 1 << 63, 0),
                    pc(pb(hi, 0), 1, 0),
                    pc(0, 0, 0),
                ],
                vec![(lo, vec![(0, P)]), (hi, vec![(0, P)])],
                vec![],
            ));
        }
        for (name, before, before_scav, hits, after, after_scav) in cases {
            let mut b = new_page_alloc(arch, &before, &before_scav);
            for (k, want) in hits.into_iter().enumerate() {
                let got = b.alloc_to_cache().unwrap();
                assert_eq!(got, want, "{arch} {name}: cache #{k}");
                b.verify().unwrap();
            }
            let want = new_page_alloc(arch, &after, &after_scav);
            check_page_alloc(&want, &b, &format!("{arch} {name}"));
        }
    }
}

/// `LocalCache` (not Go's: a page cache that takes back what it handed
/// out), against the page allocator's own bitmaps.
#[test]
fn local_cache_takes_back_what_it_handed_out() {
    use crate::cache::LocalCache;
    use crate::{Arch, Error, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};
    let base = 0x30_0000_0000u64;
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(base, 2 * PALLOC_CHUNK_BYTES).unwrap();
    let big = pa.alloc(3).unwrap().unwrap(); // pages 0-2: not the cache's
    let mut lc = LocalCache::new();
    let a = lc.alloc(&mut pa, 1).unwrap().unwrap();
    assert_eq!(a, base + 3 * PAGE_SIZE);
    assert_eq!(lc.cache.base, base);
    let b = lc.alloc(&mut pa, 4).unwrap().unwrap();
    assert_eq!(b, a + PAGE_SIZE);
    // Large requests go to the allocator, first fit after the block.
    let l = lc.alloc(&mut pa, 16).unwrap().unwrap();
    assert_eq!(l, base + 64 * PAGE_SIZE);
    lc.free(&mut pa, a, 1).unwrap();
    assert!(matches!(
        lc.free(&mut pa, a, 1),
        Err(Error::NotInUse { .. })
    ));
    // A range mixing the allocator's pages and the cache's: refused.
    assert!(matches!(
        lc.free(&mut pa, big, 5),
        Err(Error::NotInUse { .. })
    ));
    assert_eq!(lc.alloc(&mut pa, 1).unwrap(), Some(a));
    lc.free(&mut pa, big, 3).unwrap();
    lc.free(&mut pa, l, 16).unwrap();
    lc.free(&mut pa, b, 4).unwrap();
    lc.free(&mut pa, a, 1).unwrap();
    lc.flush(&mut pa).unwrap();
    assert_eq!(pa.pages_in_use(), 0);
    pa.verify().unwrap();
}
