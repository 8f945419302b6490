//! Custom geometry: `Layout::custom(page_size, address_bits, offset)` at
//! page sizes 4 KiB, 64 KiB, 2 MiB and 1 GiB and at 32, 39, 48 and 57 address
//! bits. The allocator over a custom layout is the same radix tree in the
//! layout's own pages, so every operation must give the preset's answer,
//! scaled: page p of chunk c in one is page p of chunk c in the other.

mod common;

use common::{Rng, P};
use pagealloc::{Arch, Error, Layout, PageAlloc, PAGE_SIZE};

const PAGE_SIZES: [u64; 4] = [4 << 10, 64 << 10, 2 << 20, 1 << 30];
const BITS: [u32; 4] = [32, 39, 48, 57];

#[test]
fn derivation_follows_the_rule() {
    for ps in PAGE_SIZES {
        for bits in BITS {
            let shift = ps.trailing_zeros();
            let levels = if bits == 32 { 4 } else { 5 };
            let root = bits as i64 - shift as i64 - 9 - 3 * (levels as i64 - 1);
            match Layout::custom(ps, bits, 0) {
                Ok(ly) => {
                    assert!(root >= 1, "{ps} {bits}");
                    assert_eq!(ly.summary_levels, levels);
                    assert_eq!(ly.summary_l0_bits as i64, root);
                    assert_eq!(ly.max_chunks, 1 << (bits - shift - 9));
                    assert_eq!(ly.page_size(), ps);
                    assert_eq!(ly.name(), "custom");
                }
                Err(Error::BadLayout(msg)) => {
                    assert!(root < 1, "{ps} {bits}: {msg}");
                    assert!(msg.contains("root"), "{msg}");
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(Layout::custom(3000, 48, 0).is_err());
    assert!(Layout::custom(2048, 48, 0).is_err());
    assert!(Layout::custom(4096, 58, 0).is_err());
    assert!(Layout::custom(4096, 31, 0).is_err());
    assert!(Layout::custom(4096, 48, 100).is_err());
}

/// Random grows, allocs (plain, aligned, windowed, fixed), frees and
/// scavenges on a custom layout and on the arm64 preset side by side, in
/// chunk and page coordinates.
fn side_by_side(ly: Layout, seed: u64) {
    let pre = Arch::Arm64.layout();
    let mut a = PageAlloc::builder(ly).build().unwrap();
    let mut b = PageAlloc::new(Arch::Arm64).unwrap();
    a.set_phys_huge_page_size(0).unwrap();
    b.set_phys_huge_page_size(0).unwrap();
    let ps = ly.page_size();
    // Chunk indices both layouts have.
    let base = ly.base_chunk_idx().min(pre.base_chunk_idx()).max(2);
    let room = (ly.max_chunks - base).min(64);
    let to_pre = |addr: u64| {
        let lin = ly.lin(addr);
        pre.unlin(lin)
    };
    let mut rng = Rng::new(seed);
    let mut live: Vec<(u64, u64, u64)> = Vec::new();
    for step in 0..250 {
        let ctx = format!("page {ps} bits {} seed {seed} step {step}", ly.address_bits);
        match rng.below(10) {
            0 => {
                let c = base + rng.below(room);
                let n = 1 + rng.below(3).min(ly.max_chunks - c - 1);
                let ra = a.grow(ly.chunk_base(c), n * P * ps).is_ok();
                let rb = b.grow(pre.chunk_base(c), n * P * PAGE_SIZE).is_ok();
                assert_eq!(ra, rb, "{ctx}: grow");
            }
            1..=5 => {
                let n = [1, 2, 7, 100, 600][rng.below(5) as usize];
                let (ra, rb) = match rng.below(3) {
                    0 => (a.alloc_scav(n).unwrap(), b.alloc_scav(n).unwrap()),
                    1 => {
                        let al = 1 << rng.below(7);
                        (
                            a.alloc_constrained(n, al, None).unwrap(),
                            b.alloc_constrained(n, al, None).unwrap(),
                        )
                    }
                    _ => {
                        let (c, p, len) =
                            (base + rng.below(room), rng.below(P), 1 + rng.below(2000));
                        let wa = (ly.page_base(c, p), ly.page_base(c, p) + len * ps);
                        let wb = (pre.page_base(c, p), pre.page_base(c, p) + len * PAGE_SIZE);
                        (
                            a.alloc_constrained(n, 1, Some(wa)).unwrap(),
                            b.alloc_constrained(n, 1, Some(wb)).unwrap(),
                        )
                    }
                };
                assert_eq!(ra.0.map(to_pre), rb.0, "{ctx}: alloc {n}");
                assert_eq!(ra.1 / ps, rb.1 / PAGE_SIZE, "{ctx}: scavenged pages");
                if let (Some(x), Some(y)) = (ra.0, rb.0) {
                    live.push((x, y, n));
                }
            }
            6 => {
                let (c, p, n) = (base + rng.below(room), rng.below(P), 1 + rng.below(30));
                let ra = a.alloc_at(ly.page_base(c, p), n);
                let rb = b.alloc_at(pre.page_base(c, p), n);
                assert_eq!(ra.is_ok(), rb.is_ok(), "{ctx}: alloc_at");
                if ra.is_ok() {
                    live.push((ly.page_base(c, p), pre.page_base(c, p), n));
                }
            }
            7 | 8 if !live.is_empty() => {
                let (x, y, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
                a.free(x, n).unwrap();
                b.free(y, n).unwrap();
            }
            _ => {
                let pages = rng.below(3000);
                let ra = a.scavenge(pages * ps).unwrap();
                let rb = b.scavenge(pages * PAGE_SIZE).unwrap();
                assert_eq!(ra / ps, rb / PAGE_SIZE, "{ctx}: scavenge");
            }
        }
        a.verify().unwrap();
        assert_eq!(a.bounds(), b.bounds(), "{ctx}: bounds");
        assert_eq!(
            a.search_addr() == ly.unlin(ly.max_search_lin),
            b.search_addr() == pre.unlin(pre.max_search_lin)
        );
    }
    for ci in a.grown_chunks().collect::<Vec<_>>() {
        assert_eq!(a.chunk_bitmap(ci).unwrap(), b.chunk_bitmap(ci).unwrap());
        assert_eq!(
            a.chunk_scavenged(ci).unwrap(),
            b.chunk_scavenged(ci).unwrap()
        );
    }
    // Snapshots keep the layout.
    let copy = PageAlloc::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(*copy.layout(), ly);
    assert_eq!(copy.to_bytes(), a.to_bytes());
}

#[test]
fn custom_layouts_behave_like_the_preset_scaled() {
    let mut ran = 0;
    for ps in PAGE_SIZES {
        for bits in BITS {
            let Ok(ly) = Layout::custom(ps, bits, 0) else {
                continue;
            };
            ran += 1;
            side_by_side(ly, u64::from(bits) * 31 + ps.trailing_zeros() as u64);
            // With an offset that moves the heap: same answers.
            let off = ps * P * 3;
            side_by_side(Layout::custom(ps, bits, off).unwrap(), 7);
        }
    }
    // 32 bits: 4 KiB; 39: 4 and 64 KiB; 48: up to 2 MiB; 57: all four.
    assert_eq!(ran, 1 + 2 + 3 + 4);
}

#[test]
fn custom_layout_refuses_page_caches_and_misaligned_pages() {
    let ly = Layout::custom(4096, 39, 0).unwrap();
    let mut pa = PageAlloc::builder(ly).build().unwrap();
    let b = ly.base_chunk_idx();
    pa.grow(ly.chunk_base(b), 512 * 4096).unwrap();
    assert!(matches!(pa.alloc_to_cache(), Err(Error::BadLayout(_))));
    let a = pa.alloc(3).unwrap().unwrap();
    assert_eq!(a, ly.chunk_base(b));
    assert_eq!(pa.alloc(1).unwrap(), Some(a + 3 * 4096));
    assert!(matches!(
        pa.free(a + 4096 / 2, 1),
        Err(Error::Misaligned { .. })
    ));
    pa.free(a + 4096, 2).unwrap();
    pa.verify().unwrap();
}
