//! Packed summaries (Go's `pallocSum`) and `merge_summaries`.
//!
//! A summary describes the free pages of a contiguous region (a chunk at the
//! leaf level, `2^level_log_pages[l]` pages above it) with three numbers:
//! `start`, the free pages at the region's low end; `max`, the longest free
//! run inside it; `end`, the free pages at its high end. A field never
//! exceeds `2^w` (`w` = `log_max_packed_value`: 21 on 64-bit presets, 18 on
//! 386, at most 21 on any layout), so each is kept in 21 bits:
//!
//! ```text
//! bit:  63    62 .. 42   41 .. 21   20 .. 0
//!       [F]   [  end  ]  [  max  ]  [ start ]
//! ```
//!
//! A field can reach `2^w` only when a whole root-level region is free, and
//! then all three do; that value is encoded as bit 63 alone (`F`). A summary
//! of zero means "no free page at all", which is also what freshly committed
//! (zeroed) metadata reads as.
//!
//! This is Go's packing on its 64-bit ports. Go packs each field in `w`
//! bits, so on a layout with `w < 21` (386) its bits differ while every field
//! is the same; [`SumFormat::go_bits`] and [`SumFormat::from_go_bits`]
//! convert. Why fixed positions: the hot paths pack and unpack summaries on
//! every operation, and shifts by constants are cheaper than by a width read
//! at run time.

use crate::error::{Error, Result};

/// A packed (start, max, end) summary: each field in 21 bits (see the
/// module docs; Go's own bits on 64-bit layouts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
#[repr(transparent)]
pub struct PallocSum(pub u64);

impl PallocSum {
    /// The all-in-use summary.
    pub const FULL: PallocSum = PallocSum(0);
    /// The special "whole root region free" encoding.
    pub const ALL_FREE_BIT: u64 = 1 << 63;
}

/// The bits of each field of a packed summary, on every layout.
pub const SUM_FIELD_BITS: u32 = 21;
const FIELD_MASK: u64 = (1 << SUM_FIELD_BITS) - 1;
const SHIFT_MAX: u32 = SUM_FIELD_BITS;
const SHIFT_END: u32 = 2 * SUM_FIELD_BITS;

/// The summaries of one layout: the largest value a field takes,
/// `2^log_max_packed_value` (a whole free root-level region).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SumFormat {
    log_max: u32,
}

impl SumFormat {
    pub const fn new(log_max_packed_value: u32) -> SumFormat {
        assert!(log_max_packed_value <= SUM_FIELD_BITS);
        SumFormat {
            log_max: log_max_packed_value,
        }
    }

    /// `maxPackedValue`: the largest value a field takes, `2^w`.
    #[inline]
    pub const fn max_packed_value(self) -> u64 {
        1 << self.log_max
    }

    /// Go's own bits for `s` on this layout (`packPallocSum` of its fields,
    /// each `w` bits wide): the same bits on 64-bit layouts.
    pub fn go_bits(self, s: PallocSum) -> u64 {
        if s.0 & PallocSum::ALL_FREE_BIT != 0 {
            return PallocSum::ALL_FREE_BIT;
        }
        let (start, max, end) = self.unpack_below_root(s);
        start | max << self.log_max | end << (2 * self.log_max)
    }

    /// The summary Go's bits `bits` stand for on this layout (Go's
    /// `unpack` of them: bits outside the fields are ignored).
    pub fn from_go_bits(self, bits: u64) -> PallocSum {
        if bits & PallocSum::ALL_FREE_BIT != 0 {
            return PallocSum(PallocSum::ALL_FREE_BIT);
        }
        let m = self.max_packed_value() - 1;
        let (start, max, end) = (
            bits & m,
            (bits >> self.log_max) & m,
            (bits >> (2 * self.log_max)) & m,
        );
        PallocSum(start | max << SHIFT_MAX | end << SHIFT_END)
    }

    /// `packPallocSum`, with the fields at this crate's positions (Go's on
    /// 64-bit layouts; see [`SumFormat::go_bits`]). Fields must satisfy
    /// `start, end <= max <= 2^w` (the checked form is
    /// [`SumFormat::try_pack`]).
    #[inline(always)]
    pub fn pack(self, start: u64, max: u64, end: u64) -> PallocSum {
        debug_assert!(start <= max && end <= max && max <= self.max_packed_value());
        if max == self.max_packed_value() {
            return PallocSum(PallocSum::ALL_FREE_BIT);
        }
        let m = FIELD_MASK;
        PallocSum((start & m) | (max & m) << SHIFT_MAX | (end & m) << SHIFT_END)
    }

    /// [`SumFormat::pack`] for a leaf (a chunk's summary): its fields never
    /// reach `2^w` (a chunk has 512 pages, and `w` is at least the root's
    /// page count's log), so neither the special value nor masking applies.
    #[inline(always)]
    pub fn pack_leaf(self, start: u64, max: u64, end: u64) -> PallocSum {
        debug_assert!(start <= max && end <= max && max < self.max_packed_value());
        PallocSum(start | max << SHIFT_MAX | end << SHIFT_END)
    }

    /// [`SumFormat::pack`] that rejects impossible fields instead of
    /// assuming them away.
    pub fn try_pack(self, start: u64, max: u64, end: u64) -> Result<PallocSum> {
        let cap = self.max_packed_value();
        let whole = max == cap && (start != cap || end != cap);
        if start > max || end > max || max > cap || whole {
            return Err(Error::BadSummary { start, max, end });
        }
        Ok(self.pack(start, max, end))
    }

    /// `start()`: free pages at the region's low end.
    #[inline]
    pub fn start(self, s: PallocSum) -> u64 {
        self.unpack(s).0
    }

    /// `max()`: the longest free run in the region.
    #[inline]
    pub fn max(self, s: PallocSum) -> u64 {
        self.unpack(s).1
    }

    /// `end()`: free pages at the region's high end.
    #[inline]
    pub fn end(self, s: PallocSum) -> u64 {
        self.unpack(s).2
    }

    /// `unpack()`: (start, max, end), with the special all-free value read
    /// as `2^w` in every field.
    #[inline(always)]
    pub fn unpack(self, s: PallocSum) -> (u64, u64, u64) {
        if s.0 & PallocSum::ALL_FREE_BIT != 0 {
            let v = self.max_packed_value();
            return (v, v, v);
        }
        self.unpack_below_root(s)
    }

    /// [`SumFormat::unpack`] for a summary known not to be the special
    /// all-free value: any summary below the root level. This is the one
    /// place that extracts the packed fields.
    #[inline(always)]
    pub fn unpack_below_root(self, s: PallocSum) -> (u64, u64, u64) {
        debug_assert!(
            s.0 & PallocSum::ALL_FREE_BIT == 0,
            "special summary below the root"
        );
        let m = FIELD_MASK;
        (s.0 & m, (s.0 >> SHIFT_MAX) & m, (s.0 >> SHIFT_END) & m)
    }

    /// Whether two summaries below the root level have the same `start` and
    /// `end` (compared packed, without unpacking).
    #[inline(always)]
    pub fn same_ends(self, a: PallocSum, b: PallocSum) -> bool {
        let m = FIELD_MASK;
        (a.0 ^ b.0) & (m | m << SHIFT_END) == 0
    }

    /// `freeChunkSum`: the summary of an entirely free chunk.
    #[inline]
    pub fn free_chunk_sum(self) -> PallocSum {
        let n = crate::arch::PALLOC_CHUNK_PAGES;
        self.pack(n, n, n)
    }

    /// Go's `mergeSummaries`: combines the summaries of consecutive regions,
    /// each of at most `2^log_max_pages_per_sum` pages, into the summary of
    /// the whole, folding them in one by one (see `join` below).
    pub fn merge(self, sums: &[PallocSum], log_max_pages_per_sum: u32) -> PallocSum {
        let (first, rest) = sums.split_first().expect("merge_summaries of no summaries");
        let whole = 1u64 << log_max_pages_per_sum;
        // The running summary covers `covered` pages.
        let (mut acc, mut covered) = (self.unpack(*first), whole);
        for &s in rest {
            acc = join(acc, covered, self.unpack(s), whole);
            covered += whole;
        }
        self.pack(acc.0, acc.1, acc.2)
    }

    /// [`SumFormat::merge`] with its preconditions checked: at least one
    /// summary, each no larger than its region, and the merged region
    /// within the packed fields' range.
    pub fn try_merge(self, sums: &[PallocSum], log_max_pages_per_sum: u32) -> Result<PallocSum> {
        if sums.is_empty() {
            return Err(Error::NoSummaries);
        }
        let total = (sums.len() as u64)
            .checked_shl(log_max_pages_per_sum)
            .filter(|_| log_max_pages_per_sum <= 63);
        if total.is_none_or(|t| t > self.max_packed_value()) {
            return Err(Error::MergeTooLarge {
                count: sums.len(),
                log_pages: log_max_pages_per_sum,
            });
        }
        for &s in sums {
            let fields = self.unpack(s);
            if fields.0.max(fields.1).max(fields.2) > 1 << log_max_pages_per_sum {
                return Err(Error::SummaryTooLarge {
                    fields,
                    log_pages: log_max_pages_per_sum,
                });
            }
        }
        Ok(self.merge(sums, log_max_pages_per_sum))
    }

    /// [`SumFormat::merge`] for one block of 8 summaries below the root level
    /// (the hot path of every `update`), as a balanced tree of pairwise joins.
    ///
    /// `join` is associative, so the tree gives exactly the sequential
    /// result while its three rounds of independent joins keep the CPU busy
    /// instead of waiting on one chain of eight. Children below the root are
    /// never the special all-free value, so they unpack plainly.
    #[inline(always)]
    pub fn merge_block(self, sums: &[PallocSum; 8], log_max_pages_per_sum: u32) -> PallocSum {
        let l = 1u64 << log_max_pages_per_sum;
        // Whole pairs of full or of free children are common (the heap fills
        // from the bottom), and their join is known without unpacking.
        let free = self.pack(l, l, l);
        let pair = |x: PallocSum, y: PallocSum| -> Fields {
            if x.0 | y.0 == 0 {
                (0, 0, 0)
            } else if x == free && y == free {
                (2 * l, 2 * l, 2 * l)
            } else {
                join(self.unpack_below_root(x), l, self.unpack_below_root(y), l)
            }
        };
        let a0 = pair(sums[0], sums[1]);
        let a1 = pair(sums[2], sums[3]);
        let a2 = pair(sums[4], sums[5]);
        let a3 = pair(sums[6], sums[7]);
        let (start, max, end) = join(
            join(a0, 2 * l, a1, 2 * l),
            4 * l,
            join(a2, 2 * l, a3, 2 * l),
            4 * l,
        );
        self.pack(start, max, end)
    }
}

/// Unpacked (start, max, end).
type Fields = (u64, u64, u64);

/// The summary of two neighbouring regions of `left_len` and `right_len`
/// pages: `start` spans the left one only if it is wholly free, `end` spans
/// the right one only if it is wholly free, and `max` may take the run across
/// their boundary (the left's `end` plus the right's `start`).
#[inline(always)]
fn join((s1, m1, e1): Fields, left_len: u64, (s2, m2, e2): Fields, right_len: u64) -> Fields {
    let start = if s1 == left_len { left_len + s2 } else { s1 };
    let end = if e2 == right_len { right_len + e1 } else { e2 };
    (start, m1.max(m2).max(e1 + s2), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips() {
        for w in [18, 21] {
            let f = SumFormat::new(w);
            let cap = 1u64 << w;
            for (s, m, e) in [
                (0, 0, 0),
                (1, 1, 1),
                (0, 5, 3),
                (512, 512, 512),
                (cap - 1, cap - 1, 0),
                (7, cap - 1, cap - 1),
            ] {
                let p = f.pack(s, m, e);
                assert_eq!(f.unpack(p), (s, m, e));
                assert_eq!((f.start(p), f.max(p), f.end(p)), (s, m, e));
            }
            // The whole-root-free special case.
            let p = f.pack(cap, cap, cap);
            assert_eq!(p.0, 1 << 63);
            assert_eq!(f.unpack(p), (cap, cap, cap));
            assert_eq!(f.pack(0, 0, 0), PallocSum::FULL);
            assert!(f.try_pack(3, 2, 0).is_err());
            assert!(f.try_pack(0, cap, cap).is_err());
            assert!(f.try_pack(0, cap + 1, 0).is_err());
        }
    }

    /// Expand summaries to explicit page vectors, concatenate, re-summarize.
    fn naive_merge(f: SumFormat, sums: &[PallocSum], log_pages: u32) -> (u64, u64, u64) {
        let n = 1u64 << log_pages;
        let mut pages = Vec::new();
        for &s in sums {
            let (st, mx, en) = f.unpack(s);
            // A region consistent with (st, mx, en): free start, used page,
            // free run of mx in the middle, used page, free end.
            let mut v = vec![false; n as usize];
            if st == n {
                v.iter_mut().for_each(|p| *p = true);
            } else {
                for p in v.iter_mut().take(st as usize) {
                    *p = true;
                }
                for p in v.iter_mut().rev().take(en as usize) {
                    *p = true;
                }
                let mid = st as usize + 1;
                for p in v.iter_mut().skip(mid).take(mx as usize) {
                    *p = true;
                }
            }
            pages.extend(v);
        }
        let start = pages.iter().take_while(|&&p| p).count() as u64;
        let end = pages.iter().rev().take_while(|&&p| p).count() as u64;
        let (mut max, mut cur) = (0, 0);
        for &p in &pages {
            cur = if p { cur + 1 } else { 0 };
            max = max.max(cur);
        }
        (start, max, end)
    }

    #[test]
    fn merge_matches_naive() {
        let f = SumFormat::new(21);
        let mut s = 0x1234_5678u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let log_pages = 5; // regions of 32 pages keep the naive expansion small
        let n = 1 << log_pages;
        for _ in 0..3000 {
            let sums: Vec<PallocSum> = (0..8)
                .map(|_| match next() % 4 {
                    0 => f.pack(0, 0, 0),
                    1 => f.pack(n, n, n),
                    _ => {
                        // start + 1 + max + 1 + end <= n.
                        let st = next() % (n - 2);
                        let en = next() % (n - 1 - st);
                        let mx = (next() % (n - 1 - st - en))
                            .max(st)
                            .max(en)
                            .min(n - 2 - st - en);
                        let mx = mx.max(st).max(en);
                        if st + en + mx + 2 > n {
                            f.pack(0, 0, 0)
                        } else {
                            f.pack(st, mx, en)
                        }
                    }
                })
                .collect();
            let got = f.unpack(f.merge(&sums, log_pages));
            assert_eq!(got, naive_merge(f, &sums, log_pages), "{sums:?}");
            // The tree-shaped block merge agrees with the sequential one.
            let block: [PallocSum; 8] = sums.clone().try_into().unwrap();
            assert_eq!(
                f.merge_block(&block, log_pages),
                f.merge(&sums, log_pages),
                "{sums:?}"
            );
        }
    }

    /// Go's bits on every preset's width: `packPallocSum` puts each field
    /// in `w` bits; the engine's positions are Go's at `w = 21` and convert
    /// back and forth exactly at 18 (386), the special value included.
    #[test]
    fn go_bits_are_gos_packing() {
        for w in [18u32, 21] {
            let f = SumFormat::new(w);
            let cap = 1u64 << w;
            for (st, mx, en) in [
                (0, 0, 0),
                (1, 3, 2),
                (512, 512, 512),
                (7, cap - 1, cap - 1),
                (cap, cap, cap),
            ] {
                let s = f.pack(st, mx, en);
                let go = if mx == cap {
                    1 << 63
                } else {
                    st | mx << w | en << (2 * w)
                };
                assert_eq!(f.go_bits(s), go, "w {w}: {st} {mx} {en}");
                assert_eq!(f.from_go_bits(go), s);
                assert_eq!(f.unpack(f.from_go_bits(go)), (st, mx, en));
            }
            if w == 21 {
                assert_eq!(f.go_bits(f.pack(5, 9, 4)), f.pack(5, 9, 4).0);
            }
        }
    }
}
