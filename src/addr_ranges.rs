//! Address ranges (Go's `addrRanges`, `mranges.go`).
//!
//! A sorted set of disjoint half-open ranges `[base, limit)` that merges
//! ranges which touch. The allocator keeps its grown chunks in one (in units
//! of chunk indices); the unit is the caller's, the ordering is plain `u64`
//! order, so callers pass linearized addresses or indices.

use std::ops::Range;

/// Go's `addrRanges`. Invariant: `ranges` is sorted, every range is
/// non-empty, and no two ranges overlap or touch (touching ones are merged).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrRanges {
    ranges: Vec<Range<u64>>,
    /// Go's `totalBytes`: the sum of the ranges' lengths.
    total: u64,
}

impl AddrRanges {
    pub const fn new() -> AddrRanges {
        AddrRanges {
            ranges: Vec::new(),
            total: 0,
        }
    }

    /// The ranges, ascending.
    #[inline]
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// Go's `totalBytes`: the total length of all ranges.
    #[inline]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Go's `findSucc`: the index of the first range whose base lies above
    /// `addr` (so `addr` is in range `i - 1`, if anywhere). A binary search:
    /// O(log ranges).
    #[inline]
    pub fn find_succ(&self, addr: u64) -> usize {
        self.ranges.partition_point(|r| r.start <= addr)
    }

    /// Go's `findAddrGreaterEqual`: the lowest address at or above `addr`
    /// inside some range, if there is one.
    #[inline]
    pub fn find_addr_greater_equal(&self, addr: u64) -> Option<u64> {
        let i = self.find_succ(addr);
        if i > 0 && self.ranges[i - 1].contains(&addr) {
            return Some(addr);
        }
        self.ranges.get(i).map(|r| r.start)
    }

    /// Go's `contains`: whether `addr` lies in some range.
    #[inline]
    pub fn contains(&self, addr: u64) -> bool {
        let i = self.find_succ(addr);
        i > 0 && self.ranges[i - 1].contains(&addr)
    }

    /// The end of the range holding `addr`, or `None` when no range holds
    /// it. O(1) for one range (the common case), else a binary search.
    #[inline]
    pub fn end_of(&self, addr: u64) -> Option<u64> {
        if let [r] = self.ranges.as_slice() {
            return r.contains(&addr).then_some(r.end);
        }
        let i = self.find_succ(addr);
        (i > 0 && self.ranges[i - 1].contains(&addr)).then(|| self.ranges[i - 1].end)
    }

    /// Whether all of `r` (non-empty) lies inside one range: the range
    /// starting at or below `r.start` reaches `r.end`.
    #[inline]
    pub fn covers(&self, r: Range<u64>) -> bool {
        debug_assert!(r.start < r.end);
        let i = self.find_succ(r.start);
        i > 0 && r.end <= self.ranges[i - 1].end
    }

    /// The first address of `r` that lies in some range, if any.
    pub fn first_in(&self, r: Range<u64>) -> Option<u64> {
        self.find_addr_greater_equal(r.start).filter(|&a| a < r.end)
    }

    /// Go's `add`: inserts `r`, merging it with the ranges it touches. `r`
    /// must be non-empty and overlap no range already present (Go throws on
    /// an empty one; the allocator refuses overlapping grows before this).
    pub fn add(&mut self, r: Range<u64>) {
        debug_assert!(r.start < r.end, "empty range {r:?}");
        debug_assert!(self.first_in(r.clone()).is_none(), "{r:?} overlaps");
        let i = self.find_succ(r.start);
        let down = i > 0 && self.ranges[i - 1].end == r.start;
        let up = i < self.ranges.len() && r.end == self.ranges[i].start;
        self.total += r.end - r.start;
        match (down, up) {
            (true, true) => {
                self.ranges[i - 1].end = self.ranges[i].end;
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i - 1].end = r.end,
            (false, true) => self.ranges[i].start = r.start,
            (false, false) => self.ranges.insert(i, r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_and_find_succ_bisects() {
        let mut a = AddrRanges::new();
        a.add(10..20);
        a.add(30..40);
        a.add(20..30);
        assert_eq!(a.ranges().to_vec(), vec![10..40]);
        a.add(50..60);
        a.add(45..50);
        assert_eq!(a.ranges(), &[10..40, 45..60]);
        assert_eq!(a.total(), 45);
        assert_eq!(
            [0, 10, 39, 40, 45, 60].map(|x| a.find_succ(x)),
            [0, 1, 1, 1, 2, 2]
        );
        assert_eq!(a.find_addr_greater_equal(40), Some(45));
        assert_eq!(a.find_addr_greater_equal(60), None);
        assert!(a.covers(45..60) && !a.covers(39..46));
        assert_eq!(a.first_in(0..11), Some(10));
    }
}
