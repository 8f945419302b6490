//! RangeAllocator against a model that scans every candidate offset.

mod common;

use common::Rng;
use pagealloc::{Error, RangeAllocator};

/// Page flags over offsets; first fit at an alignment.
struct Flat {
    used: Vec<bool>,
    page: u64,
}

impl Flat {
    fn fit(&self, n: u64, align: u64) -> Option<u64> {
        let step = (align / self.page).max(1) as usize;
        (0..self.used.len())
            .step_by(step)
            .find(|&p| {
                p + n as usize <= self.used.len() && self.used[p..p + n as usize].iter().all(|u| !u)
            })
            .map(|p| p as u64 * self.page)
    }
    fn set(&mut self, off: u64, n: u64, v: bool) {
        let p = (off / self.page) as usize;
        self.used[p..p + n as usize].fill(v);
    }
}

#[test]
fn a_size_of_part_of_a_page_is_refused() {
    assert!(matches!(
        RangeAllocator::new(10_000 * 4096 + 123, 4096),
        Err(pagealloc::Error::RangeNotWholePages {
            size: 40_960_123,
            page_size: 4096
        })
    ));
    let mut ra = RangeAllocator::new(4096, 4096).unwrap();
    assert!(ra.grow(8193).is_err());
    assert_eq!(ra.stats().size, 4096);
}

#[test]
fn matches_the_scanning_model() {
    for (page, size) in [
        (4096, 10_000 * 4096),
        (1, 3000),
        (1 << 20, 700 << 20),
        (65536, 1 << 26),
    ] {
        let mut rng = Rng::new(page);
        let mut ra = RangeAllocator::new(size, page).unwrap();
        let mut m = Flat {
            used: vec![false; (size / page) as usize],
            page,
        };
        let mut live = Vec::new();
        for step in 0..600 {
            match rng.below(10) {
                0..=4 => {
                    let n = 1 + rng.below(40);
                    let nbytes = n * page - rng.below(page.min(n * page));
                    let align = page << rng.below(6) >> rng.below(3);
                    let align = align.max(1);
                    let got = ra.alloc(nbytes, align).unwrap();
                    assert_eq!(
                        got,
                        m.fit(n, align),
                        "page {page} step {step}: alloc({nbytes}, {align})"
                    );
                    if let Some(off) = got {
                        assert_eq!(off % align.max(1), 0);
                        m.set(off, n, true);
                        live.push((off, nbytes, n));
                    }
                }
                5 => {
                    let n = 1 + rng.below(8);
                    let off = rng.below((size / page).max(1)) * page;
                    let free = (off / page + n) <= m.used.len() as u64
                        && m.used[(off / page) as usize..(off / page + n) as usize]
                            .iter()
                            .all(|u| !u);
                    match ra.alloc_at(off, n * page) {
                        Ok(()) => {
                            assert!(free, "step {step}: alloc_at({off}) accepted");
                            m.set(off, n, true);
                            live.push((off, n * page, n));
                        }
                        Err(_) => assert!(!free, "step {step}: alloc_at({off}) refused"),
                    }
                }
                6..=8 if !live.is_empty() => {
                    let (off, nbytes, n) = live.swap_remove(rng.below(live.len() as u64) as usize);
                    ra.free(off, nbytes).unwrap();
                    assert!(ra.free(off, nbytes).is_err(), "double free");
                    m.set(off, n, false);
                }
                _ => {
                    // Grow by a few pages (often within the same chunk).
                    let more = rng.below(700) * page;
                    let new = ra.size() + more;
                    ra.grow(new).unwrap();
                    m.used.resize((new / page) as usize, false);
                }
            }
            ra.verify().unwrap();
            let st = ra.stats();
            assert_eq!(
                st.in_use,
                m.used.iter().filter(|&&u| u).count() as u64 * page
            );
            assert_eq!(st.size, m.used.len() as u64 * page);
        }
    }
}

#[test]
fn offset_zero_and_bad_input() {
    let mut ra = RangeAllocator::new(1 << 20, 4096).unwrap();
    assert_eq!(ra.alloc(1, 1).unwrap(), Some(0), "offset 0 is allocatable");
    assert_eq!(ra.alloc(4096, 65536).unwrap(), Some(65536));
    assert!(matches!(ra.alloc(0, 1), Err(Error::RangeZeroBytes)));
    // Errors in the range's own terms: offsets and bytes.
    assert!(matches!(
        ra.alloc(1, 3),
        Err(Error::RangeBadAlign {
            align: 3,
            page_size: 4096
        })
    ));
    assert!(matches!(
        ra.free(1, 1),
        Err(Error::RangeMisaligned {
            offset: 1,
            page_size: 4096
        })
    ));
    assert!(matches!(ra.free(1 << 20, 1), Err(Error::OutOfRange { .. })));
    assert!(matches!(
        ra.alloc_at(0, 1),
        Err(Error::RangeNotFree {
            offset: 0,
            nbytes: 1,
            first: 0
        })
    ));
    assert!(matches!(
        ra.free(8192, 4096),
        Err(Error::RangeNotInUse {
            offset: 8192,
            nbytes: 4096,
            first: 8192
        })
    ));
    assert!(matches!(ra.grow(4096), Err(Error::BadRangeSize { .. })));
    assert!(matches!(
        RangeAllocator::new(1, 3),
        Err(Error::BadPageSize { .. })
    ));
    // Exhaust, then grow and fit again.
    while ra.alloc(4096, 1).unwrap().is_some() {}
    assert_eq!(ra.stats().free, 0);
    ra.grow(2 << 20).unwrap();
    assert_eq!(ra.alloc(1 << 20, 1).unwrap(), Some(1 << 20));
    ra.verify().unwrap();
}
