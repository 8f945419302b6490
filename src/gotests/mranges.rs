//! `mranges_test.go`: TestAddrRangesAdd, TestAddrRangesFindSucc.

use std::ops::Range;

use crate::AddrRanges;

/// Go's `validateAddrRanges`: the ranges are exactly `want`, sorted, non-empty,
/// coalesced, disjoint, and the running total agrees.
fn validate(a: &AddrRanges, want: &[Range<u64>]) {
    let got = a.ranges();
    assert_eq!(got, want);
    for w in got.windows(2) {
        assert!(w[0].start < w[1].start, "out of order: {got:?}");
        assert!(
            w[0].end < w[1].start,
            "overlap or failed to coalesce: {got:?}"
        );
    }
    assert!(
        got.iter().all(|r| r.start < r.end),
        "empty range in {got:?}"
    );
    let total: u64 = want.iter().map(|r| r.end - r.start).sum();
    assert_eq!(a.total(), total);
}

#[test]
fn test_addr_ranges_add() {
    let mut a = AddrRanges::new();
    // First range.
    a.add(512..1024);
    validate(&a, &[512..1024]);
    // Coalesce up.
    a.add(1024..2048);
    validate(&a, &[512..2048]);
    // A new independent range.
    a.add(4096..8192);
    validate(&a, &[512..2048, 4096..8192]);
    // Coalesce down.
    a.add(3776..4096);
    validate(&a, &[512..2048, 3776..8192]);
    // Coalesce up and down.
    a.add(2048..3776);
    validate(&a, &[512..8192]);
    // Many independent ranges at the end, then at the beginning.
    let mut want = vec![512..8192];
    for i in 0..64u64 {
        let r = 8192 + (i + 1) * 2048..8192 + (i + 1) * 2048 + 10;
        a.add(r.clone());
        want.push(r);
        validate(&a, &want);
    }
    let mut bottom = Vec::new();
    for i in 0..63u64 {
        let r = 8 + i * 8..8 + i * 8 + 4;
        a.add(r.clone());
        bottom.push(r);
        let all: Vec<_> = bottom.iter().chain(want.iter()).cloned().collect();
        validate(&a, &all);
    }
}

#[test]
fn test_addr_ranges_find_succ() {
    let large: Vec<Range<u64>> = (0..100).map(|i| 5 + i * 5..5 + i * 5 + 3).collect();
    let three = [6..10, 12..16, 19..22];
    let m = u64::MAX;
    // (Go's case name, base, expected index, ranges)
    let cases: [(&str, u64, usize, &[Range<u64>]); 18] = [
        ("Empty", 12, 0, &[]),
        ("OneBefore", 12, 0, &[14..16]),
        ("OneWithin", 14, 1, &[14..16]),
        ("OneAfterLimit", 16, 1, &[14..16]),
        ("OneAfter", 17, 1, &[14..16]),
        ("ThreeBefore", 3, 0, &three),
        ("ThreeAfter", 24, 3, &three),
        ("ThreeBetween", 11, 1, &three),
        ("ThreeWithin", 9, 1, &three),
        ("Zero", 0, 1, &[0..10]),
        ("Max", m, 1, &[m - 5..m]),
        ("LargeBefore", 2, 0, &large),
        ("LargeAfter", 5 + 100 * 5 + 30, 100, &large),
        ("LargeBetweenLow", 14, 2, &large),
        ("LargeBetweenHigh", 249, 49, &large),
        ("LargeWithinLow", 25, 5, &large),
        ("LargeWithinHigh", 396, 79, &large),
        ("LargeWithinMiddle", 250, 50, &large),
    ];
    for (name, base, expect, ranges) in cases {
        let mut a = AddrRanges::new();
        for r in ranges {
            a.add(r.clone());
        }
        assert_eq!(a.find_succ(base), expect, "{name}");
    }
}
