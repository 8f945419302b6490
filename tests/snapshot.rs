//! Snapshots: exact round trips on random workloads (the next operations
//! give identical results), sizes proportional to the grown heap, and a
//! loader that refuses damaged input without panicking.

mod common;

use common::Rng;
use pagealloc::{Arch, Error, GoVersion, PageAlloc, PAGE_SIZE, PALLOC_CHUNK_BYTES};

/// Random grows, allocs (plain, aligned), frees and scavenges (on a Go 1.26
/// allocator also background scavenges, generations and padding); returns
/// a digest of every result.
fn drive(pa: &mut PageAlloc, rng: &mut Rng, live: &mut Vec<(u64, u64)>, steps: usize) -> Vec<u64> {
    let ly = *pa.layout();
    let b = ly.base_chunk_idx();
    let mut out = Vec::new();
    for _ in 0..steps {
        match rng.below(10) {
            0 => {
                let c = b + rng.below(40);
                if pa
                    .grow(ly.chunk_base(c), (1 + rng.below(3)) * PALLOC_CHUNK_BYTES)
                    .is_ok()
                {
                    out.push(c);
                }
            }
            1..=4 => {
                let n = [1, 2, 5, 64, 300, 700][rng.below(6) as usize];
                let (a, s) = if rng.below(3) == 0 {
                    pa.alloc_constrained(n, 1 << rng.below(6), None).unwrap()
                } else {
                    pa.alloc_scav(n).unwrap()
                };
                out.extend([a.unwrap_or(0), s]);
                if let Some(a) = a {
                    live.push((a, n));
                }
            }
            5..=7 if !live.is_empty() => {
                let (a, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
                pa.free(a, n).unwrap();
            }
            8 if pa.go_version() == GoVersion::Go126 && rng.below(2) == 0 => {
                pa.next_gen().unwrap();
                let at = ly.chunk_base(b) + rng.below(4 * 512) * PAGE_SIZE;
                out.push(u64::from(pa.mark_padding(at, 1 + rng.below(4)).is_ok()));
            }
            _ if pa.go_version() == GoVersion::Go126 && rng.below(2) == 0 => out.push(
                pa.scavenge_with(
                    rng.below(1 << 22),
                    pagealloc::Scavenge::BACKGROUND,
                    |_, _| {},
                )
                .unwrap(),
            ),
            _ => out.push(pa.scavenge(rng.below(1 << 22)).unwrap()),
        }
    }
    out
}

#[test]
fn round_trips_are_exact() {
    for (arch, go) in Arch::ALL
        .into_iter()
        .flat_map(|a| GoVersion::ALL.map(|g| (a, g)))
    {
        for seed in 1..=5 {
            let mut pa = PageAlloc::builder(arch).go(go).build().unwrap();
            pa.set_phys_huge_page_size(2 << 20).unwrap();
            let ly = arch.layout();
            pa.grow(ly.chunk_base(ly.base_chunk_idx()), 4 * PALLOC_CHUNK_BYTES)
                .unwrap();
            let mut rng = Rng::new(seed);
            let mut live = Vec::new();
            drive(&mut pa, &mut rng, &mut live, 300);
            let bytes = pa.to_bytes();
            let mut copy = PageAlloc::from_bytes(&bytes).unwrap();
            assert_eq!(copy.go_version(), go);
            assert_eq!(
                copy.to_bytes(),
                bytes,
                "{arch} {go} seed {seed}: re-snapshot differs"
            );
            assert_eq!(copy.mapped_bytes(), pa.mapped_bytes());
            // The same future on both.
            let (mut r1, mut r2) = (Rng::new(seed + 100), Rng::new(seed + 100));
            let (mut l1, mut l2) = (live.clone(), live);
            let a = drive(&mut pa, &mut r1, &mut l1, 300);
            let b = drive(&mut copy, &mut r2, &mut l2, 300);
            assert_eq!(a, b, "{arch} {go} seed {seed}: futures differ");
            assert_eq!(pa.to_bytes(), copy.to_bytes());
        }
    }
}

#[test]
fn size_follows_the_grown_heap() {
    let ly = Arch::Amd64.layout();
    let b = ly.base_chunk_idx();
    let mut pa = PageAlloc::builder(Arch::Amd64)
        .go(GoVersion::Go119)
        .build()
        .unwrap();
    pa.grow(ly.chunk_base(b), 4096 * PALLOC_CHUNK_BYTES)
        .unwrap();
    let t = std::time::Instant::now();
    let bytes = pa.to_bytes();
    let took = t.elapsed();
    // Header + one range + 128 bytes and one mark bit per chunk + checksum.
    assert_eq!(bytes.len(), 64 + 16 + 4096 * 128 + 512 + 8);
    // Go 1.26: also its index state and 8 bytes per chunk.
    let mut pa126 = PageAlloc::builder(Arch::Amd64)
        .go(GoVersion::Go126)
        .build()
        .unwrap();
    pa126
        .grow(ly.chunk_base(b), 4096 * PALLOC_CHUNK_BYTES)
        .unwrap();
    assert_eq!(pa126.to_bytes().len(), bytes.len() + 48 + 4096 * 8);
    println!("to_bytes of 4096 chunks: {} bytes in {took:?}", bytes.len());
    let small = PageAlloc::from_bytes(&bytes).unwrap();
    assert_eq!(small.bounds(), (b, b + 4096));
}

#[test]
fn damaged_snapshots_are_refused() {
    let ly = Arch::Amd64.layout();
    let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
    pa.grow(ly.chunk_base(ly.base_chunk_idx()), 2 * PALLOC_CHUNK_BYTES)
        .unwrap();
    pa.alloc(100).unwrap();
    let good = pa.to_bytes();
    let refused = |b: &[u8]| matches!(PageAlloc::from_bytes(b), Err(Error::BadSnapshot(_)));
    assert!(refused(&[]));
    assert!(refused(&good[..good.len() - 1]));
    let mut longer = good.clone();
    longer.push(0);
    assert!(refused(&longer));
    let mut rng = Rng::new(7);
    for _ in 0..2000 {
        let mut b = good.clone();
        let i = rng.below(b.len() as u64) as usize;
        b[i] ^= 1 << rng.below(8);
        assert!(refused(&b), "a flipped bit at byte {i} was accepted");
    }
    // Content damage behind a valid checksum: refused or a sound allocator,
    // never a panic.
    let fix = |mut b: Vec<u8>| {
        let n = b.len() - 8;
        let sum = b[..n].iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        b[n..].copy_from_slice(&sum.to_le_bytes());
        b
    };
    for _ in 0..2000 {
        let mut b = good.clone();
        let i = rng.below((b.len() - 8) as u64) as usize;
        b[i] = rng.below(256) as u8;
        if let Ok(mut p) = PageAlloc::from_bytes(&fix(b)) {
            p.verify().unwrap();
            let _ = p.alloc(3).unwrap();
            p.verify().unwrap();
        }
    }
}
