//! `mgcscavenge_test.go`: TestFillAligned, TestPallocDataFindScavengeCandidate
//! (every generated case, and the huge-page cases for each branch Go's test
//! can take), TestPageAllocScavenge, TestScavengeIndex.

use std::collections::BTreeMap;

use super::splitmix::SplitMix64;
use super::{base_chunk_idx, bits_of, check_page_alloc, new_page_alloc_go};
use crate::alloc::min_scav_pages;
use crate::arch::{Arch, LOG_PALLOC_CHUNK_BYTES, PAGE_SIZE, PALLOC_CHUNK_PAGES as P};
use crate::bits::{fill_aligned, PallocData};
use crate::scav_index::ScavengeIndex;
use crate::GoVersion;

#[test]
fn test_fill_aligned() {
    // Go's fillAlignedSlow: each m-bit group with any bit set becomes all ones.
    let slow = |x: u64, m: u64| -> u64 {
        if m == 1 {
            return x;
        }
        let group = u64::MAX >> (64 - m);
        (0..64)
            .step_by(m as usize)
            .filter(|&i| (x >> i) & group != 0)
            .fold(0, |out, i| out | group << i)
    };
    let mut rng = SplitMix64(0x243f_6a88_85a3_08d3); // for the random cases
    let mut next = || rng.next();
    let mut m = 1;
    while m <= 64 {
        let mut tests = vec![
            0x0000000000000000,
            0x00000000ffffffff,
            0xffffffff00000000,
            0x8000000000000001,
            0xf00000000000000f,
            0xf00000010050000f,
            0xffffffffffffffff,
            0x0000000000000001,
            0x0000000000000002,
            0x0000000000000008,
            1u64 << (m - 1),
            1u64.checked_shl(m as u32).unwrap_or(0),
            0xb02b9effcf137016,
            0x3975a076a9fbff18,
            0x0f8c88ec3b81506e,
            0x60f14d80ef2fa0e6,
        ];
        for _ in 0..1000 {
            tests.push(next());
            if m > 1 {
                // Each m-bit group either zero or random bits.
                let mut val = 0;
                for n in (0..64).step_by(m as usize) {
                    if next() % 2 == 0 {
                        val |= (next() & (u64::MAX >> (64 - m))) << n;
                    }
                }
                tests.push(val);
            }
        }
        for x in tests {
            assert_eq!(
                fill_aligned(x, m),
                Some(slow(x, m)),
                "fillAligned({x:#018x}, {m})"
            );
        }
        m *= 2;
    }
    assert_eq!(
        fill_aligned(1, 3),
        None,
        "m must be a power of two up to 64"
    );
}

/// One TestPallocDataFindScavengeCandidate case.
struct Candidate {
    alloc: Vec<(u64, u64)>,
    scavenged: Vec<(u64, u64)>,
    min: u64,
    max: u64,
    want: (u64, u64),
}

fn cand(
    alloc: &[(u64, u64)],
    scavenged: &[(u64, u64)],
    min: u64,
    max: u64,
    want: (u64, u64),
) -> Candidate {
    Candidate {
        alloc: alloc.to_vec(),
        scavenged: scavenged.to_vec(),
        min,
        max,
        want,
    }
}

/// Go's table, generated as Go generates it (later insertions under the same
/// name replace earlier ones, as in Go's map).
fn candidate_cases() -> BTreeMap<String, Candidate> {
    let mut t = BTreeMap::new();
    t.insert(
        "MixedMin1".into(),
        cand(
            &[(0, 40), (42, P - 42)],
            &[(0, 41), (42, P - 42)],
            1,
            P,
            (41, 1),
        ),
    );
    t.insert(
        "MultiMin1".into(),
        cand(
            &[(0, 63), (65, 20), (87, P - 87)],
            &[(86, 1)],
            1,
            P,
            (85, 1),
        ),
    );
    let mut m = 1;
    while m <= 64 {
        let sfx = format!("Min{m}");
        let mut add = |name: &str, c: Candidate| {
            t.insert(format!("{name}{sfx}"), c);
        };
        add("AllFree", cand(&[], &[], m, P, (0, P)));
        add("AllScavenged", cand(&[], &[(0, P)], m, P, (0, 0)));
        add("NoneFree", cand(&[(0, P)], &[(P / 2, P / 2)], m, P, (0, 0)));
        add("StartFree", cand(&[(m, P - m)], &[], m, P, (0, m)));
        add("EndFree", cand(&[(0, P - m)], &[], m, P, (P - m, m)));
        add(
            "Straddle64",
            cand(
                &[(0, 64 - m), (64 + m, P - (64 + m))],
                &[],
                m,
                2 * m,
                (64 - m, 2 * m),
            ),
        );
        add(
            "BottomEdge64WithFull",
            cand(
                &[(64, 64), (128 + 3 * m, P - (128 + 3 * m))],
                &[(1, 10)],
                m,
                3 * m,
                (128, 3 * m),
            ),
        );
        add(
            "BottomEdge64WithPocket",
            cand(
                &[(64, 62), (127, 1), (128 + 3 * m, P - (128 + 3 * m))],
                &[(1, 10)],
                m,
                3 * m,
                (128, 3 * m),
            ),
        );
        add("Max0", cand(&[], &[(0, P - m)], m, 0, (P - m, m)));
        if m > 1 {
            add(
                "MaxUnaligned",
                cand(&[], &[(0, P - (m * 2 - 1))], m, m - 2, (P - m, m)),
            );
            add(
                "SkipSmall",
                cand(
                    &[(0, 64 - m), (64, 5), (70, 11), (82, P - 82)],
                    &[],
                    m,
                    m,
                    (64 - m, m),
                ),
            );
            add(
                "SkipMisaligned",
                cand(
                    &[(0, 64 - m), (64, 63), (127 + m, P - (127 + m))],
                    &[],
                    m,
                    m,
                    (64 - m, m),
                ),
            );
            add("MaxLessThan", cand(&[], &[(0, P - m)], m, 1, (P - m, m)));
        }
        if m <= 8 {
            // Unsuffixed in Go: the case for the last such m (8) remains.
            t.insert(
                "OneFree".into(),
                cand(&[(0, 40), (40 + m, P - (40 + m))], &[], m, P, (40, m)),
            );
            t.insert(
                "OneScavenged".into(),
                cand(&[(0, 40), (40 + m, P - (40 + m))], &[(40, 1)], m, P, (0, 0)),
            );
        }
        m *= 2;
    }
    t
}

/// The huge-page cases for huge pages of `bits` runtime pages, as Go adds
/// them for its machine's huge page size.
fn huge_page_cases(bits: u64) -> BTreeMap<String, Candidate> {
    let mut t = BTreeMap::new();
    if bits < P {
        t.insert(
            "PreserveHugePageBottom".into(),
            cand(&[(bits + 2, P - (bits + 2))], &[], 1, 3, (0, bits + 2)),
        );
        if 3 * bits < P {
            t.insert(
                "PreserveHugePageMiddle".into(),
                cand(
                    &[(0, bits - 10), (2 * bits + 10, P - (2 * bits + 10))],
                    &[],
                    1,
                    12,
                    (bits, bits + 10),
                ),
            );
        }
        t.insert(
            "PreserveHugePageTop".into(),
            cand(&[(0, P - bits)], &[], 1, 1, (P - bits, bits)),
        );
    } else if bits == P {
        t.insert("PreserveHugePageAll".into(), cand(&[], &[], 1, 1, (0, P)));
    } else {
        t.insert(
            "PreserveHugePageNone".into(),
            cand(&[], &[], 1, 1, (P - 1, 1)),
        );
    }
    t
}

fn run_candidates(cases: &BTreeMap<String, Candidate>, huge_pages: u64) {
    for (name, c) in cases {
        // Go's makePallocData: alloc bits first, then scavenged bits.
        let d = PallocData {
            bits: bits_of(&c.alloc),
            scavenged: bits_of(&c.scavenged),
        };
        let got = d.find_scavenge_candidate(P - 1, c.min, c.max, huge_pages);
        // Go compares only the run when both are empty.
        if !(got.1 == 0 && c.want.1 == 0) {
            assert_eq!(got, c.want, "{name} (huge pages of {huge_pages} pages)");
        }
    }
}

#[test]
fn test_palloc_data_find_scavenge_candidate() {
    let cases = candidate_cases();
    // 2 + 7 sizes x 9 + 6 sizes x 4 + OneFree/OneScavenged.
    assert_eq!(cases.len(), 2 + 7 * 9 + 6 * 4 + 2);
    // Go runs the table under its machine's huge page size: none, or the
    // 2 MiB of linux/amd64 (256 pages).
    for huge in [0, 256] {
        run_candidates(&cases, huge);
    }
    // The huge-page cases, for every branch of Go's test: 1 MiB (128 pages:
    // three huge pages fit a chunk, so Middle too), 2 MiB (256 pages),
    // 4 MiB (a whole chunk) and 8 MiB (more than a chunk).
    let mut seen = 0;
    for huge in [128, 256, 512, 1024] {
        let h = huge_page_cases(huge);
        seen += h.len();
        run_candidates(&h, huge);
    }
    assert_eq!(seen, 3 + 2 + 1 + 1);
}

#[test]
fn test_page_alloc_scavenge() {
    let min = min_scav_pages(crate::vm::phys_page_size() as u64, PAGE_SIZE);
    let ps = PAGE_SIZE;
    type Map = Vec<(u64, Vec<(u64, u64)>)>;
    // (Go's case name, beforeAlloc, beforeScav, [(request, expect)], afterScav),
    // chunk indices relative to BaseChunkIdx.
    let cases: Vec<(&str, Map, Map, Vec<(u64, u64)>, Map)> = vec![
        (
            "AllFreeUnscavExhaust",
            vec![(0, vec![]), (1, vec![]), (2, vec![])],
            vec![(0, vec![]), (1, vec![]), (2, vec![])],
            vec![(u64::MAX, 3 * P * ps)],
            vec![(0, vec![(0, P)]), (1, vec![(0, P)]), (2, vec![(0, P)])],
        ),
        (
            "NoneFreeUnscavExhaust",
            vec![(0, vec![(0, P)]), (1, vec![]), (2, vec![(0, P)])],
            vec![(0, vec![]), (1, vec![(0, P)]), (2, vec![])],
            vec![(u64::MAX, 0)],
            vec![(0, vec![]), (1, vec![(0, P)]), (2, vec![])],
        ),
        (
            "ScavHighestPageFirst",
            vec![(0, vec![])],
            vec![(0, vec![(min, P - 2 * min)])],
            vec![(1, min * ps)],
            vec![(0, vec![(min, P - min)])],
        ),
        (
            "ScavMultiple",
            vec![(0, vec![])],
            vec![(0, vec![(min, P - 2 * min)])],
            vec![(min * ps, min * ps), (min * ps, min * ps)],
            vec![(0, vec![(0, P)])],
        ),
        (
            "ScavMultiple2",
            vec![(0, vec![]), (1, vec![])],
            vec![(0, vec![(min, P - 2 * min)]), (1, vec![(0, P - 2 * min)])],
            vec![
                (2 * min * ps, 2 * min * ps),
                (min * ps, min * ps),
                (min * ps, min * ps),
            ],
            vec![(0, vec![(0, P)]), (1, vec![(0, P)])],
        ),
        (
            "ScavDiscontiguous",
            vec![(0, vec![]), (0xe, vec![])],
            vec![
                (0, vec![(min, P - 2 * min)]),
                (0xe, vec![(2 * min, P - 2 * min)]),
            ],
            vec![
                (2 * min * ps, 2 * min * ps),
                (u64::MAX, 2 * min * ps),
                (u64::MAX, 0),
            ],
            vec![(0, vec![(0, P)]), (0xe, vec![(0, P)])],
        ),
        (
            // 64-bit only in Go.
            "ScavAllVeryDiscontiguous",
            vec![(0, vec![]), (0x1000, vec![])],
            vec![(0, vec![]), (0x1000, vec![])],
            vec![(u64::MAX, 2 * P * ps), (u64::MAX, 0)],
            vec![(0, vec![(0, P)]), (0x1000, vec![(0, P)])],
        ),
    ];
    for arch in Arch::ALL {
        let b = base_chunk_idx(arch);
        let at = |m: &Map| -> Map { m.iter().map(|(c, r)| (b + c, r.clone())).collect() };
        for (name, before, before_scav, expect, after_scav) in &cases {
            if *name == "ScavAllVeryDiscontiguous" && !arch.is_64bit() {
                continue;
            }
            // Go's test machines have 2 MiB huge pages or none; the table's
            // results hold for both.
            // Go 1.26 keeps the table; its PageAlloc.Scavenge is the forced
            // scavenger, from the cursor its NewPageAlloc raised.
            for (go, huge) in GoVersion::ALL
                .into_iter()
                .flat_map(|g| [(g, 0), (g, 2 << 20)])
            {
                let mut pa = new_page_alloc_go(arch, go, &at(before), &at(before_scav));
                pa.set_phys_huge_page_size(huge).unwrap();
                for (k, &(request, want)) in expect.iter().enumerate() {
                    let got = pa.scavenge(request).unwrap();
                    assert_eq!(
                        got,
                        want,
                        "{go} {arch} {name} huge {huge}: scavenge #{}",
                        k + 1
                    );
                    pa.verify().unwrap();
                }
                let want = new_page_alloc_go(arch, go, &at(before), &at(after_scav));
                check_page_alloc(&want, &pa, &format!("{go} {arch} {name} huge {huge}"));
            }
        }
    }
}

/// A fresh index over chunks `[b, b + 64)`, as Go's NewScavengeIndex.
fn scavenge_index(b: u64) -> ScavengeIndex {
    let mut si = ScavengeIndex::new(&Arch::Amd64.layout()).unwrap();
    si.grow(
        b << LOG_PALLOC_CHUNK_BYTES,
        (b + 64) << LOG_PALLOC_CHUNK_BYTES,
        crate::vm::phys_page_size() as u64,
    )
    .unwrap();
    si
}

#[test]
fn test_scavenge_index() {
    let b = base_chunk_idx(Arch::Amd64);
    // Go's PageBase on the linearized addresses the index works in.
    let pb = |ci: u64, i: u64| (ci << LOG_PALLOC_CHUNK_BYTES) + i * PAGE_SIZE;
    let last = P - 1;
    // Each case: the marks, then the finds expected in order (each found
    // chunk is cleared, as Go's test does); (0, 0) is "nothing".
    type Case = (&'static str, Vec<(u64, u64)>, Vec<(u64, u64)>);
    let down = |hi: u64, lo: u64| (lo..=hi).rev().map(|c| (c, last)).collect::<Vec<_>>();
    let cases: Vec<Case> = vec![
        ("Uninitialized", vec![], vec![]),
        ("OnePage", vec![(pb(b, 3), pb(b, 4))], vec![(b, 3)]),
        ("FirstPage", vec![(pb(b, 0), pb(b, 1))], vec![(b, 0)]),
        ("SeveralPages", vec![(pb(b, 9), pb(b, 14))], vec![(b, 13)]),
        (
            "WholeChunk",
            vec![(pb(b, 0), pb(b + 1, 0))],
            vec![(b, last)],
        ),
        (
            "LastPage",
            vec![(pb(b, last), pb(b + 1, 0))],
            vec![(b, last)],
        ),
        (
            "TwoChunks",
            vec![(pb(b, 128), pb(b + 1, 128))],
            vec![(b + 1, 127), (b, last)],
        ),
        (
            "TwoChunksOffset",
            vec![(pb(b + 7, 128), pb(b + 8, 129))],
            vec![(b + 8, 128), (b + 7, last)],
        ),
        (
            "SevenChunksOffset",
            vec![(pb(b + 6, 11), pb(b + 13, 15))],
            [vec![(b + 13, 14)], down(b + 12, b + 6)].concat(),
        ),
        (
            "ThirtyTwoChunks",
            vec![(pb(b, 0), pb(b + 32, 0))],
            down(b + 31, b),
        ),
        (
            "ThirtyTwoChunksOffset",
            vec![(pb(b + 3, 0), pb(b + 35, 0))],
            down(b + 34, b + 3),
        ),
        (
            "Mark",
            (b..b + 32).map(|i| (pb(i, 0), pb(i + 1, 0))).collect(),
            down(b + 31, b),
        ),
        (
            "MarkIdempotentOneChunk",
            vec![(pb(b, 0), pb(b + 1, 0)); 2],
            vec![(b, last)],
        ),
        (
            "MarkIdempotentThirtyTwoChunks",
            vec![(pb(b, 0), pb(b + 32, 0)); 2],
            down(b + 31, b),
        ),
        (
            "MarkIdempotentThirtyTwoChunksOffset",
            vec![(pb(b + 4, 0), pb(b + 31, 0)), (pb(b + 5, 0), pb(b + 36, 0))],
            down(b + 35, b + 4),
        ),
    ];
    let find = |si: &mut ScavengeIndex, want: (u64, u64), name: &str| {
        let got = si.find().unwrap_or((0, 0));
        assert_eq!(got, want, "{name}: find");
        if got.1 != 0 || got.0 != 0 {
            si.clear(got.0);
        }
    };
    for (name, marks, finds) in cases {
        let mut si = scavenge_index(b);
        for (base, limit) in marks {
            si.mark(base, limit);
        }
        for want in finds {
            find(&mut si, want, name);
        }
        find(&mut si, (0, 0), name);
    }
    // MarkInterleaved: mark a chunk, find it, for 32 chunks.
    let mut si = scavenge_index(b);
    for i in b..b + 32 {
        si.mark(pb(i, 0), pb(i + 1, 0));
        find(&mut si, (i, last), "MarkInterleaved");
    }
    find(&mut si, (0, 0), "MarkInterleaved");
}
