//! The allocator against a few of the seed's table cases and against a naive
//! model of address-ordered first fit, with `verify()` after every operation.
//! (The full port of Go's tables lives in the Python suite.)

use pagealloc::{Arch, Error, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};

mod common;

use common::{Model, Rng, P};

fn new(arch: Arch, chunks: &[(u64, &[(u64, u64)])]) -> PageAlloc {
    let pa = PageAlloc::builder(arch)
        .chunks(chunks.iter().map(|&(c, r)| (c, r.iter().copied())))
        .build()
        .unwrap();
    pa.verify().unwrap();
    pa
}

/// The seed's checkPageAlloc: same bounds, same bitmap in every chunk of
/// [start, end); plus our summary check.
fn check(got: &PageAlloc, want: &PageAlloc) {
    assert_eq!(got.bounds(), want.bounds());
    let (s, e) = got.bounds();
    for ci in s..e {
        assert_eq!(
            got.chunk_bitmap(ci).unwrap(),
            want.chunk_bitmap(ci).unwrap(),
            "chunk {ci:#x}"
        );
    }
    got.verify().unwrap();
}

#[test]
fn go_alloc_cases() {
    for arch in Arch::ALL {
        let b = arch.layout().base_chunk_idx();
        let pb = |c: u64, i: u64| arch.layout().page_base(c, i);
        type Case<'a> = (
            &'a str,
            Vec<(u64, &'a [(u64, u64)])>,
            Vec<(u64, u64)>,
            Vec<(u64, &'a [(u64, u64)])>,
        );
        let cases: Vec<Case> = vec![
            (
                "AllFree1",
                vec![(b, &[])],
                (0..5).map(|i| (1, pb(b, i))).collect(),
                vec![(b, &[(0, 5)])],
            ),
            (
                "ManyArena1",
                vec![(b, &[(0, P)]), (b + 1, &[(0, P)]), (b + 2, &[(0, P - 1)])],
                vec![(1, pb(b + 2, P - 1))],
                vec![(b, &[(0, P)]), (b + 1, &[(0, P)]), (b + 2, &[(0, P)])],
            ),
            (
                "NotContiguous1",
                vec![(b, &[(0, P)]), (b + 0xff, &[(0, 0)])],
                vec![(1, pb(b + 0xff, 0))],
                vec![(b, &[(0, P)]), (b + 0xff, &[(0, 1)])],
            ),
            (
                "StraddlePallocChunkPages+1",
                vec![(b, &[(0, P / 2)]), (b + 1, &[])],
                vec![(P + 1, pb(b, P / 2)), (P, 0), (1, pb(b + 1, P / 2 + 1))],
                vec![(b, &[(0, P)]), (b + 1, &[(0, P / 2 + 2)])],
            ),
            (
                "NotContiguousPallocChunkPages*2",
                vec![(b, &[]), (b + 0x100, &[]), (b + 0x101, &[])],
                vec![(P * 2, pb(b + 0x100, 0)), (21, pb(b, 0)), (1, pb(b, 21))],
                vec![
                    (b, &[(0, 22)]),
                    (b + 0x100, &[(0, P)]),
                    (b + 0x101, &[(0, P)]),
                ],
            ),
            (
                "StraddlePallocChunkPages*5/4",
                vec![
                    (b, &[(0, P)]),
                    (b + 1, &[(0, P * 3 / 4)]),
                    (b + 2, &[(0, P * 3 / 4)]),
                    (b + 3, &[(0, 0)]),
                ],
                vec![
                    (P * 5 / 4, pb(b + 2, P * 3 / 4)),
                    (P * 5 / 4, 0),
                    (1, pb(b + 1, P * 3 / 4)),
                ],
                vec![
                    (b, &[(0, P)]),
                    (b + 1, &[(0, P * 3 / 4 + 1)]),
                    (b + 2, &[(0, P)]),
                    (b + 3, &[(0, P)]),
                ],
            ),
        ];
        for (name, before, hits, after) in cases {
            let mut pa = new(arch, &before);
            for (k, (npages, want)) in hits.into_iter().enumerate() {
                let got = pa.alloc(npages).unwrap().unwrap_or(0);
                assert_eq!(got, want, "{arch} {name}: alloc #{}", k + 1);
                pa.verify().unwrap();
            }
            check(&pa, &new(arch, &after));
        }
    }
}

#[test]
fn go_free_and_exhaust_cases() {
    for arch in Arch::ALL {
        let b = arch.layout().base_chunk_idx();
        let pb = |c: u64, i: u64| arch.layout().page_base(c, i);
        // TestPageAllocFree "StraddlePallocChunkPages*2".
        let mut pa = new(
            arch,
            &[(b, &[(0, P)]), (b + 1, &[(0, P)]), (b + 2, &[(0, P)])],
        );
        pa.free(pb(b, P / 2), P * 2).unwrap();
        check(
            &pa,
            &new(
                arch,
                &[(b, &[(0, P / 2)]), (b + 1, &[]), (b + 2, &[(P / 2, P / 2)])],
            ),
        );
        // TestPageAllocExhaust for a few sizes.
        for npages in [1, 3, 64, 1025, 2049] {
            let mut pa = new(arch, &[(b, &[]), (b + 1, &[]), (b + 2, &[]), (b + 3, &[])]);
            let n_alloc = P * 4 / npages;
            for i in 0..n_alloc {
                assert_eq!(
                    pa.alloc(npages).unwrap(),
                    Some(pb(b, i * npages)),
                    "{arch} {npages} #{i}"
                );
            }
            assert_eq!(pa.alloc(npages).unwrap(), None);
            pa.verify().unwrap();
            let used = n_alloc * npages;
            let want: Vec<(u64, Vec<(u64, u64)>)> = (0..4)
                .map(|i| {
                    let here = used.saturating_sub(i * P).min(P);
                    (b + i, if here > 0 { vec![(0, here)] } else { vec![] })
                })
                .collect();
            let want = PageAlloc::builder(arch).chunks(want).build().unwrap();
            check(&pa, &want);
        }
    }
}

#[test]
fn bad_calls_change_nothing() {
    let arch = Arch::Amd64;
    let ly = arch.layout();
    let b = ly.base_chunk_idx();
    let mut pa = new(arch, &[(b, &[(0, 10)]), (b + 2, &[])]);
    let before = (
        pa.bounds(),
        pa.search_addr(),
        pa.chunk_bitmap(b).unwrap(),
        pa.mapped_bytes(),
    );
    let base = ly.page_base(b, 0);
    let bad: Vec<(&str, Result<(), Error>)> = vec![
        ("alloc 0", pa.alloc(0).map(|_| ())),
        ("free 0 pages", pa.free(base, 0)),
        ("free misaligned", pa.free(base + 1, 1)),
        ("free free page", pa.free(ly.page_base(b, 10), 1)),
        ("free partly free", pa.free(ly.page_base(b, 5), 6)),
        ("free in gap", pa.free(ly.page_base(b + 1, 0), 1)),
        ("free beyond heap", pa.free(ly.page_base(b + 2, 511), 2)),
        ("free huge", pa.free(base, u64::MAX)),
        (
            "grow over grown",
            pa.grow(ly.chunk_base(b + 1), 2 * PALLOC_CHUNK_BYTES),
        ),
        ("grow zero", pa.grow(ly.chunk_base(b + 5), 0)),
        ("grow address 0", pa.grow(0, 1)),
        ("grow lin chunk 0", pa.grow(0xffff_8000_0000_0000, 1)),
        ("grow beyond space", pa.grow(0x0000_8000_0000_0000, 1)),
        ("grow wraps", pa.grow(u64::MAX - 5, 100)),
    ];
    for (what, r) in bad {
        let e = r.expect_err(what);
        assert!(!e.to_string().is_empty());
    }
    let after = (
        pa.bounds(),
        pa.search_addr(),
        pa.chunk_bitmap(b).unwrap(),
        pa.mapped_bytes(),
    );
    assert_eq!(before, after);
    pa.verify().unwrap();
    assert_eq!(pa.alloc(1).unwrap(), Some(ly.page_base(b, 10)));
}

fn random_sequence(arch: Arch, seed: u64, ops: usize) {
    let ly = arch.layout();
    let mut rng = Rng::new(seed);
    let mut pa = PageAlloc::new(arch).unwrap();
    let mut model = Model::default();
    let mut live: Vec<(u64, u64)> = Vec::new();
    let base = ly.base_chunk_idx();
    for step in 0..ops {
        let r = rng.below(100);
        if r < 6 || model.chunks.is_empty() {
            // Grow 1-4 chunks somewhere near the base, maybe with a gap,
            // below or above what exists.
            let n = 1 + rng.below(4);
            let sc = match rng.below(4) {
                0 => base + rng.below(64),
                1 => model.chunks.keys().next_back().map_or(base, |&c| c + 1),
                2 => model
                    .chunks
                    .keys()
                    .next()
                    .map_or(base, |&c| c.saturating_sub(n)),
                _ => base + rng.below(0x400),
            };
            let sc = sc.clamp(1, ly.max_chunks - n);
            let ec = sc + n;
            let overlaps = model.chunks.range(sc..ec).next().is_some();
            let res = pa.grow(ly.chunk_base(sc), n * PALLOC_CHUNK_BYTES);
            assert_eq!(
                res.is_ok(),
                !overlaps,
                "{arch} seed {seed} step {step}: grow {sc:#x}+{n}"
            );
            if !overlaps {
                model.grow(sc, ec);
            }
        } else if r < 60 || live.is_empty() {
            let n = match rng.below(10) {
                0..=4 => 1,
                5..=6 => 2 + rng.below(63),
                7 => 65 + rng.below(448),
                8 => P * (1 + rng.below(3)),
                _ => 1 + rng.below(P * 8),
            };
            let got = pa.alloc(n).unwrap();
            let want = model.alloc(n).map(|(c, i)| ly.page_base(c, i));
            assert_eq!(got, want, "{arch} seed {seed} step {step}: alloc {n}");
            if let Some(a) = got {
                live.push((a, n));
            }
        } else {
            let (a, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
            pa.free(a, n).unwrap();
            let lin = ly.lin(a);
            model.set(lin >> 22, (lin >> 13) & 511, n, false);
        }
        pa.verify()
            .unwrap_or_else(|e| panic!("{arch} seed {seed} step {step}: {e}"));
    }
    // Bitmaps agree with the model.
    for (&c, pages) in &model.chunks {
        let bits = pa.chunk_bitmap(c).unwrap();
        for (i, &used) in pages.iter().enumerate() {
            assert_eq!(bits.get(i as u64), used, "chunk {c:#x} page {i}");
        }
    }
}

#[test]
fn random_sequences_match_model() {
    for seed in 0..12 {
        for arch in Arch::ALL {
            random_sequence(arch, seed, 600);
        }
    }
}

/// Churn held near a target occupancy on two grown ranges with a gap, in
/// the size mix of the churn scenario plus multi-chunk requests: every
/// allocation equals the model's first fit and `verify()` (which checks the
/// fit hints: no run of 2^k free pages below class k's) holds after every
/// op. Searches of four pages or more start at their class's hint, which
/// frees lower and searches raise, so this is where a hint left too high
/// would show, as an address above the model's.
#[test]
fn churn_with_fit_hints_matches_model() {
    let arch = Arch::Amd64;
    let ly = arch.layout();
    let base = ly.base_chunk_idx();
    for (seed, target) in [(1u64, 50u64), (2, 80), (3, 95), (4, 70)] {
        let mut rng = Rng::new(seed);
        let mut pa = PageAlloc::new(arch).unwrap();
        let mut model = Model::default();
        for (sc, n) in [(base, 12), (base + 14, 6)] {
            pa.grow(ly.chunk_base(sc), n * PALLOC_CHUNK_BYTES).unwrap();
            model.grow(sc, sc + n);
        }
        let total = 18 * P;
        let (mut live, mut used) = (Vec::<(u64, u64)>::new(), 0u64);
        for step in 0..4000 {
            if used * 100 > total * target && !live.is_empty() {
                let (a, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
                pa.free(a, n).unwrap();
                let lin = ly.lin(a);
                model.set(lin >> 22, (lin >> 13) & 511, n, false);
                used -= n;
            } else {
                let n = match rng.below(100) {
                    0..=59 => 1,
                    60..=84 => 2 + rng.below(15),
                    85..=96 => 17 + rng.below(112),
                    _ => 129 + rng.below(1100),
                };
                let got = pa.alloc(n).unwrap();
                let want = model.alloc(n).map(|(c, i)| ly.page_base(c, i));
                assert_eq!(got, want, "seed {seed} step {step}: alloc {n}");
                if let Some(a) = got {
                    live.push((a, n));
                    used += n;
                }
            }
            pa.verify()
                .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
        }
    }
}

#[test]
fn exhaust_then_refill_moves_search_addr_down() {
    let arch = Arch::Amd64;
    let ly = arch.layout();
    let b = ly.base_chunk_idx();
    let mut pa = PageAlloc::new(arch).unwrap();
    pa.grow(ly.chunk_base(b), 2 * PALLOC_CHUNK_BYTES).unwrap();
    for i in 0..2 * P {
        assert_eq!(pa.alloc(1).unwrap(), Some(ly.page_base(b, i)));
    }
    assert_eq!(pa.alloc(1).unwrap(), None);
    // Exhausted: the search address sits at the top of the address space.
    assert_eq!(ly.lin(pa.search_addr()), ly.max_search_lin);
    pa.free(ly.page_base(b + 1, 7), 1).unwrap();
    assert_eq!(pa.search_addr(), ly.page_base(b + 1, 7));
    assert_eq!(pa.alloc(1).unwrap(), Some(ly.page_base(b + 1, 7)));
    pa.verify().unwrap();
    assert_eq!(pa.alloc(PAGE_SIZE).unwrap(), None);
}

/// `LocalCache` over random small and large requests and frees (own spans,
/// partial frees of spans, bad frees): every span is disjoint from every
/// other live one, bad frees change nothing, and once everything is freed
/// and the cache flushed the allocator holds no page.
#[test]
fn local_cache_random_ops_keep_spans_disjoint() {
    use pagealloc::LocalCache;
    use std::collections::BTreeMap;
    let base = 0x30_0000_0000u64;
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(base, 8 * PALLOC_CHUNK_BYTES).unwrap();
    let mut lc = LocalCache::new();
    let mut rng = Rng::new(11);
    // Live spans: first page -> page count.
    let mut live: BTreeMap<u64, u64> = BTreeMap::new();
    for step in 0..20_000 {
        if rng.below(100) < 55 || live.is_empty() {
            let n = match rng.below(10) {
                0..=6 => 1 + rng.below(15),
                _ => 16 + rng.below(200),
            };
            let Some(a) = lc.alloc(&mut pa, n).unwrap() else {
                continue;
            };
            let end = a + n * PAGE_SIZE;
            let below = live.range(..end).next_back();
            assert!(
                below.is_none_or(|(&s, &m)| s + m * PAGE_SIZE <= a),
                "step {step}: span {a:#x}+{n} overlaps a live one"
            );
            live.insert(a, n);
        } else {
            let k = rng.below(live.len() as u64) as usize;
            let (&a, &n) = live.iter().nth(k).unwrap();
            if rng.below(10) == 0 {
                // A free reaching one page past the span: refused unless
                // the next span starts right there, and then it is undone.
                let before = pa.pages_in_use();
                if lc.free(&mut pa, a, n + 1).is_ok() {
                    let next = a + n * PAGE_SIZE;
                    let m = live.remove(&next).expect("a page past the span was in use");
                    if m > 1 {
                        live.insert(next + PAGE_SIZE, m - 1);
                    }
                    live.remove(&a);
                    continue;
                }
                assert_eq!(
                    pa.pages_in_use(),
                    before,
                    "a refused free changed the allocator"
                );
            }
            // Free the span's tail or all of it.
            let keep = if n > 1 && rng.below(4) == 0 {
                rng.below(n)
            } else {
                0
            };
            lc.free(&mut pa, a + keep * PAGE_SIZE, n - keep).unwrap();
            live.remove(&a);
            if keep > 0 {
                live.insert(a, keep);
            }
        }
        if step % 1000 == 0 {
            pa.verify().unwrap();
        }
    }
    for (a, n) in std::mem::take(&mut live) {
        lc.free(&mut pa, a, n).unwrap();
    }
    lc.flush(&mut pa).unwrap();
    assert_eq!(pa.pages_in_use(), 0);
    pa.verify().unwrap();
    // Pages given back by the flush are found by the scavenger: all of it
    // ends up scavenged.
    pa.scavenge(u64::MAX).unwrap();
    for ci in pa.grown_chunks().collect::<Vec<_>>() {
        assert_eq!(
            pa.chunk_scavenged(ci).unwrap().pages_in_use(),
            512,
            "chunk {ci:#x}"
        );
    }
}

/// `PageAlloc::builder`: every option applied before the heap is grown (a
/// physical page size with chunks given, which no setter could do after),
/// and a bad option refused by name.
#[test]
fn the_builder_applies_its_options_and_refuses_bad_ones() {
    use pagealloc::GoVersion;
    let ly = Arch::Amd64.layout();
    let b = ly.base_chunk_idx();
    let pa = PageAlloc::builder(Arch::Amd64)
        .go(GoVersion::Go119)
        .phys_page_size(64 << 10)
        .huge_page_size(0)
        .chunks([(b, vec![(0, 10)]), (b + 1, vec![])])
        .chunks([(b + 3, vec![(5, 0)])])
        .scavenged([(b, vec![(100, 8)])])
        .build()
        .unwrap();
    pa.verify().unwrap();
    assert_eq!(pa.go_version(), GoVersion::Go119);
    assert_eq!(pa.phys_page_size(), 64 << 10);
    assert_eq!(pa.phys_huge_page_size(), 0);
    assert_eq!(pa.grown_ranges(), [b..b + 2, b + 3..b + 4]);
    assert_eq!(pa.pages_in_use(), 10);
    assert_eq!(pa.chunk_scavenged(b).unwrap().pages_in_use(), 8);
    // The same through a Layout, and the default Go version.
    let plain = PageAlloc::builder(ly).build().unwrap();
    assert_eq!(plain.go_version(), GoVersion::default());
    assert_eq!(plain.bounds(), (0, 0));

    let bad = |r: pagealloc::Result<PageAlloc>| r.unwrap_err();
    assert!(matches!(
        bad(PageAlloc::builder(Arch::Amd64)
            .chunks([(ly.max_chunks, vec![])])
            .build()),
        Error::ChunkBeyondSpace { .. }
    ));
    assert!(matches!(
        bad(PageAlloc::builder(Arch::Amd64)
            .chunks([(b, vec![(500, 20)])])
            .build()),
        Error::BadRange { .. }
    ));
    assert!(matches!(
        bad(PageAlloc::builder(Arch::Amd64).phys_page_size(3000).build()),
        Error::BadPhysPageSize { bytes: 3000 }
    ));
    assert!(matches!(
        bad(PageAlloc::builder(Arch::Amd64)
            .huge_page_size(12345)
            .build()),
        Error::BadHugePageSize { bytes: 12345, .. }
    ));
}
