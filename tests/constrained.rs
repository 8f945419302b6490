//! Aligned, windowed and fixed-address allocation against a model that scans
//! every candidate address, on every preset, with gaps between grown
//! regions; plus table cases at chunk, level and root boundaries and at the
//! top of the address space.

mod common;

use common::{Model, Rng, P};
use pagealloc::{Arch, Error, PageAlloc, PAGE_SHIFT, PAGE_SIZE, PALLOC_CHUNK_BYTES};

fn random_run(arch: Arch, seed: u64) {
    let ly = arch.layout();
    let b = ly.base_chunk_idx();
    let mut rng = Rng::new(seed);
    let mut pa = PageAlloc::new(arch).unwrap();
    let mut model = Model::default();
    // Grown regions with gaps (one crossing a level-1 boundary on 64-bit).
    for (c, n) in [(0, 3), (5, 2), (8, 9), (0x1ff, 3)] {
        let c = b + c;
        if c + n > ly.max_chunks {
            continue;
        }
        pa.grow(ly.chunk_base(c), n * PALLOC_CHUNK_BYTES).unwrap();
        model.grow(c, c + n);
    }
    let phase_pages = ly.arena_base_offset >> PAGE_SHIFT;
    let mut live: Vec<(u64, u64)> = Vec::new();
    let lin_page = |addr: u64| ly.lin(addr) >> PAGE_SHIFT;
    for step in 0..400 {
        let r = rng.below(100);
        if r < 35 || live.is_empty() {
            let n = [1, 1, 2, 3, 7, 64, 100, 511, 513, 1500][rng.below(10) as usize];
            let align = 1u64 << rng.below(10);
            let within = match rng.below(3) {
                0 => None,
                _ => {
                    let lo = ly.chunk_base(b + rng.below(12))
                        + rng.below(P) * PAGE_SIZE
                        + rng.below(3) * 100;
                    let hi = lo + 1 + rng.below(6 * PALLOC_CHUNK_BYTES);
                    Some((lo, hi))
                }
            };
            let (from, to) = match within {
                None => (0, u64::MAX),
                Some((lo, hi)) => (ly.lin(lo).div_ceil(PAGE_SIZE), ly.lin(hi) >> PAGE_SHIFT),
            };
            let want = model.first_fit_constrained(n, align, phase_pages, from, to);
            // The questions first: they answer what the call will do.
            let q =
                format!("{arch} seed {seed} step {step}: ({n}, align={align}, within={within:x?})");
            assert_eq!(
                pa.first_fit(n, align, within).unwrap().map(lin_page),
                want,
                "first_fit{q}"
            );
            assert_eq!(
                pa.would_fit(n, align, within).unwrap(),
                want.is_some(),
                "would_fit{q}"
            );
            if step % 4 == 0 {
                let largest = pa.largest_free(align, within).unwrap();
                let fits = |k: u64| {
                    k == 0
                        || model
                            .first_fit_constrained(k, align, phase_pages, from, to)
                            .is_some()
                };
                assert!(
                    fits(largest) && !fits(largest + 1),
                    "largest_free{q}: {largest}"
                );
            }
            let (got, _) = pa.alloc_constrained(n, align, within).unwrap();
            assert_eq!(
                got.map(lin_page),
                want,
                "{arch} seed {seed} step {step}: alloc({n}, align={align}, within={within:x?})"
            );
            if let Some(a) = got {
                let lp = lin_page(a);
                model.set(lp / P, lp % P, n, true);
                live.push((a, n));
            }
        } else if r < 45 {
            // alloc_at: a random place, often in use or ungrown.
            let n = 1 + rng.below(40);
            let lp = (b + rng.below(12)) * P + rng.below(P);
            let addr = ly.unlin(lp << PAGE_SHIFT);
            let ok = model.free_at(lp, n);
            match pa.alloc_at(addr, n) {
                Ok(_) => {
                    assert!(ok, "{arch} step {step}: alloc_at({addr:#x}, {n}) accepted");
                    model.set(lp / P, lp % P, n, true);
                    live.push((addr, n));
                }
                Err(Error::NotFree { .. }) => assert!(!ok, "{arch} step {step}: alloc_at refused"),
                Err(e) => panic!("{e}"),
            }
        } else if r < 85 {
            let (a, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
            pa.free(a, n).unwrap();
            let lp = lin_page(a);
            model.set(lp / P, lp % P, n, false);
        } else {
            // Plain alloc still agrees (the constrained walk and the search
            // address's fast path coexist).
            let n = 1 + rng.below(20);
            let got = pa.alloc(n).unwrap();
            let want = model.first_fit_constrained(n, 1, 0, 0, u64::MAX);
            assert_eq!(got.map(lin_page), want, "{arch} step {step}: alloc({n})");
            if let Some(a) = got {
                let lp = lin_page(a);
                model.set(lp / P, lp % P, n, true);
                live.push((a, n));
            }
        }
        pa.verify().unwrap();
    }
}

#[test]
fn alloc_or_failure_says_why() {
    let ly = Arch::Amd64.layout();
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    let base = ly.chunk_base(ly.base_chunk_idx());
    let page = |i: u64| base + i * PAGE_SIZE;
    pa.grow(base, 2 * PALLOC_CHUNK_BYTES).unwrap();
    // 1024 pages; in use [0, 10) and [600, 610): free runs of 590 and 414.
    pa.alloc_at(page(0), 10).unwrap();
    pa.alloc_at(page(600), 10).unwrap();
    assert_eq!(pa.largest_free(1, None).unwrap(), 590);
    assert_eq!(
        pa.largest_free(512, None).unwrap(),
        88,
        "[512, 600) is the only 512-aligned room"
    );
    assert_eq!(
        pa.largest_free(1, Some((page(610), page(1024)))).unwrap(),
        414
    );
    assert_eq!(
        pa.largest_free(1, Some((page(700), page(701) - 1)))
            .unwrap(),
        0
    );
    let f = pa.alloc_or_failure(600, 1, None).unwrap().unwrap_err();
    assert_eq!((f.npages, f.free_pages, f.largest_fit), (600, 1004, 590));
    assert_eq!(
        f.to_string(),
        "no room for 600 page(s): 1004 page(s) are free, the largest request that fits is 590 page(s)"
    );
    let f = pa.alloc_or_failure(100, 512, None).unwrap().unwrap_err();
    assert_eq!(f.largest_fit, 88);
    assert!(
        f.to_string().contains("aligned to 512 pages")
            && f.to_string().contains("that fits so is 88")
    );
    assert_eq!(pa.first_fit(88, 512, None).unwrap(), Some(page(512)));
    assert_eq!(pa.alloc_or_failure(88, 512, None).unwrap(), Ok(page(512)));
    assert_eq!(pa.largest_free(512, None).unwrap(), 0);
    assert!(matches!(
        pa.largest_free(3, None),
        Err(Error::BadAlign { align: 3 })
    ));
    assert!(matches!(pa.first_fit(0, 1, None), Err(Error::ZeroPages)));
    pa.verify().unwrap();
}

#[test]
fn random_constrained_runs_match_the_scanning_model() {
    for arch in Arch::ALL {
        for seed in 1..=6 {
            random_run(arch, seed);
        }
    }
}

#[test]
fn boundary_cases() {
    let arch = Arch::Amd64;
    let ly = arch.layout();
    let b = ly.base_chunk_idx();
    let mut pa = PageAlloc::new(arch).unwrap();
    // Chunks b..b+16 and a region across a level-2 boundary (64 chunks).
    pa.grow(ly.chunk_base(b), 16 * PALLOC_CHUNK_BYTES).unwrap();
    pa.grow(ly.chunk_base(b + 62), 4 * PALLOC_CHUNK_BYTES)
        .unwrap();
    let pb = |c: u64, i: u64| ly.page_base(c, i);
    // Page 1 in use: an aligned 2-page request skips to page 2.
    assert_eq!(pa.alloc_at(pb(b, 1), 1).unwrap(), PAGE_SIZE);
    assert_eq!(pa.alloc_constrained(2, 2, None).unwrap().0, Some(pb(b, 2)));
    // A chunk-aligned request skips the partly used first chunk.
    assert_eq!(
        pa.alloc_constrained(3, P, None).unwrap().0,
        Some(pb(b + 1, 0))
    );
    // Straddling a chunk boundary with an alignment of 256 pages.
    assert_eq!(
        pa.alloc_constrained(300, 256, None).unwrap().0,
        Some(pb(b + 1, 256))
    );
    // 8-chunk alignment (a level-3 entry): the first such free run.
    assert_eq!(
        pa.alloc_constrained(P, 8 * P, None).unwrap().0,
        Some(pb(b + 8, 0))
    );
    // A window in the second region, across the level-2 boundary at b + 64
    // (b is a multiple of 64 chunks).
    assert_eq!(b % 64, 0);
    let lo = pb(b + 63, 500);
    let got = pa
        .alloc_constrained(20, 1, Some((lo, pb(b + 64, 100))))
        .unwrap()
        .0;
    assert_eq!(got, Some(pb(b + 63, 500)));
    // A window that cannot hold the request: nothing, nothing changes.
    let before = pa.chunk_bitmap(b + 64).unwrap();
    assert_eq!(
        pa.alloc_constrained(200, 1, Some((pb(b + 64, 0), pb(b + 64, 199))))
            .unwrap()
            .0,
        None
    );
    assert_eq!(pa.chunk_bitmap(b + 64).unwrap(), before);
    // The gap between the regions holds nothing.
    assert_eq!(
        pa.alloc_constrained(1, 1, Some((pb(b + 20, 0), pb(b + 60, 0))))
            .unwrap()
            .0,
        None
    );
    // Byte windows: lo rounds up to a page; a page must end by hi.
    let got = pa
        .alloc_constrained(1, 1, Some((pb(b + 3, 7) + 1, pb(b + 3, 9) - 1)))
        .unwrap()
        .0;
    assert_eq!(got, None);
    let got = pa
        .alloc_constrained(1, 1, Some((pb(b + 3, 7) + 1, pb(b + 3, 9))))
        .unwrap()
        .0;
    assert_eq!(got, Some(pb(b + 3, 8)));
    // Absurd sizes and alignments are simply no fit.
    for (n, al) in [
        (u64::MAX, 1),
        (u64::MAX, 1 << 63),
        (1 << 40, 2),
        (1, 1 << 63),
    ] {
        assert_eq!(
            pa.alloc_constrained(n, al, None).unwrap().0,
            None,
            "{n} {al}"
        );
        assert_eq!(
            pa.alloc_constrained(n, al, Some((0, u64::MAX))).unwrap().0,
            None
        );
    }
    // Bad arguments change nothing.
    assert!(matches!(
        pa.alloc_constrained(1, 3, None),
        Err(Error::BadAlign { align: 3 })
    ));
    assert!(matches!(
        pa.alloc_constrained(1, 0, None),
        Err(Error::BadAlign { .. })
    ));
    assert!(matches!(
        pa.alloc_constrained(1, 1, Some((5, 5))),
        Err(Error::BadWindow { .. })
    ));
    assert!(matches!(
        pa.alloc_at(pb(b, 1), 1),
        Err(Error::NotFree { .. })
    ));
    assert!(matches!(
        pa.alloc_at(pb(b + 30, 0), 1),
        Err(Error::NotFree { .. })
    ));
    assert!(matches!(
        pa.alloc_at(pb(b, 0) + 1, 1),
        Err(Error::Misaligned { .. })
    ));
    pa.verify().unwrap();
}

#[test]
fn top_of_the_address_space() {
    for arch in Arch::ALL {
        let ly = arch.layout();
        let last = ly.max_chunks - 1;
        let mut pa = PageAlloc::new(arch).unwrap();
        pa.grow(ly.chunk_base(last - 1), 2 * PALLOC_CHUNK_BYTES)
            .unwrap();
        // The last chunk-aligned run, and the very last page.
        assert_eq!(
            pa.alloc_constrained(P, P, Some((ly.chunk_base(last), u64::MAX)))
                .unwrap()
                .0,
            Some(ly.chunk_base(last))
        );
        pa.free(ly.chunk_base(last), P).unwrap();
        let top = ly.page_base(last, P - 1);
        // Freed pages are not scavenged: alloc_at reports 0 scavenged bytes.
        assert_eq!(pa.alloc_at(top, 1).unwrap(), 0);
        assert!(pa.alloc_at(top, 2).is_err());
        // Aligned to a whole chunk from the last page on: none.
        assert_eq!(
            pa.alloc_constrained(1, P, Some((ly.chunk_base(last) + PAGE_SIZE, u64::MAX)))
                .unwrap()
                .0,
            None
        );
        pa.verify().unwrap();
    }
}
