//! Shared by the integration tests and the fuzz target: a naive model of
//! address-ordered first fit over linearized chunk indices, and a PRNG.
#![allow(dead_code)]

use std::collections::BTreeMap;

use pagealloc::PALLOC_CHUNK_PAGES;

mod splitmix;
pub use splitmix::SplitMix64;

pub const P: u64 = PALLOC_CHUNK_PAGES;

#[derive(Default)]
pub struct Model {
    pub chunks: BTreeMap<u64, Vec<bool>>, // chunk index -> in-use flags
}

impl Model {
    pub fn grow(&mut self, sc: u64, ec: u64) {
        for c in sc..ec {
            self.chunks.insert(c, vec![false; P as usize]);
        }
    }
    /// Lowest (chunk, page) with n free pages in a row, across adjacent chunks.
    pub fn alloc(&mut self, n: u64) -> Option<(u64, u64)> {
        let (mut run, mut start) = (0u64, (0, 0));
        let mut prev: Option<u64> = None;
        let mut found = None;
        'outer: for (&c, pages) in &self.chunks {
            if prev.is_some_and(|p| p + 1 != c) {
                run = 0;
            }
            prev = Some(c);
            for (i, &used) in pages.iter().enumerate() {
                if used {
                    run = 0;
                    continue;
                }
                if run == 0 {
                    start = (c, i as u64);
                }
                run += 1;
                if run == n {
                    found = Some(start);
                    break 'outer;
                }
            }
        }
        let (c, i) = found?;
        self.set(c, i, n, true);
        Some((c, i))
    }
    /// Whether the `n` pages from linearized page `lp` are all grown and free.
    pub fn free_at(&self, lp: u64, n: u64) -> bool {
        (lp..lp + n).all(|q| {
            self.chunks
                .get(&(q / P))
                .is_some_and(|pages| !pages[(q % P) as usize])
        })
    }

    /// The lowest linearized page `lp` in `[from, to - n]` with
    /// `lp % align == phase` and `n` free pages there: a scan of every
    /// candidate, in address order.
    pub fn first_fit_constrained(
        &self,
        n: u64,
        align: u64,
        phase: u64,
        from: u64,
        to: u64,
    ) -> Option<u64> {
        let lo = self.chunks.keys().next()? * P;
        let hi = (self.chunks.keys().next_back()? + 1) * P;
        (from.max(lo)..to.min(hi))
            .filter(|lp| lp % align == phase % align)
            .take_while(|lp| lp + n <= to)
            .find(|&lp| self.free_at(lp, n))
    }

    pub fn set(&mut self, c: u64, i: u64, n: u64, used: bool) {
        let (mut c, mut i) = (c, i);
        for _ in 0..n {
            self.chunks.get_mut(&c).unwrap()[i as usize] = used;
            i += 1;
            if i == P {
                i = 0;
                c += 1;
            }
        }
    }
}

/// The scenarios' splitmix64, with a range helper.
pub struct Rng(pub SplitMix64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64(seed))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next() % n
    }
}
