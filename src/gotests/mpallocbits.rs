//! `mpallocbits_test.go` (Go 1.19 additions): TestMallocBitsPopcntRange.
//! The older pallocBits tables are in `tests/python/test_pallocbits.py`.

use super::bits_of;
use crate::arch::PALLOC_CHUNK_PAGES as P;

#[test]
fn test_malloc_bits_popcnt_range() {
    let scattered: &[(u64, u64)] = &[
        (1, 3),
        (5, 1),
        (7, 1),
        (10, 2),
        (13, 1),
        (15, 4),
        (21, 1),
        (23, 1),
        (26, 2),
        (30, 5),
        (36, 2),
        (40, 3),
        (44, 6),
        (51, 1),
        (53, 2),
        (58, 3),
        (63, 1),
        (67, 2),
        (71, 10),
        (84, 1),
        (89, 7),
        (99, 2),
        (103, 1),
        (107, 2),
        (111, 1),
        (113, 1),
        (115, 1),
        (118, 1),
        (120, 2),
        (125, 5),
    ];
    // (Go's case name, set runs, [(i, n, popcount)])
    let cases: [(&str, &[(u64, u64)], &[(u64, u64, u64)]); 5] = [
        (
            "None",
            &[],
            &[
                (0, 1, 0),
                (5, 3, 0),
                (2, 11, 0),
                (P / 4 + 1, P / 2, 0),
                (0, P, 0),
            ],
        ),
        (
            "All",
            &[(0, P)],
            &[
                (0, 1, 1),
                (5, 3, 3),
                (2, 11, 11),
                (P / 4 + 1, P / 2, P / 2),
                (0, P, P),
            ],
        ),
        (
            "Half",
            &[(P / 2, P / 2)],
            &[
                (0, 1, 0),
                (5, 3, 0),
                (2, 11, 0),
                (P / 2 - 1, 1, 0),
                (P / 2, 1, 1),
                (P / 2 + 10, 1, 1),
                (P / 2 - 1, 2, 1),
                (P / 4, P / 4, 0),
                (P / 4, P / 4 + 1, 1),
                (P / 4 + 1, P / 2, P / 4 + 1),
                (0, P, P / 2),
            ],
        ),
        (
            "OddBound",
            &[(0, 111)],
            &[
                (0, 1, 1),
                (5, 3, 3),
                (2, 11, 11),
                (110, 2, 1),
                (99, 50, 12),
                (110, 1, 1),
                (111, 1, 0),
                (99, 1, 1),
                (120, 1, 0),
                (P / 2, P / 2, 0),
                (0, P, 111),
            ],
        ),
        (
            "Scattered",
            scattered,
            &[
                (0, 11, 6),
                (0, 64, 39),
                (13, 64, 40),
                (64, 64, 34),
                (0, 128, 73),
                (1, 128, 74),
                (0, P, 75),
            ],
        ),
    ];
    for (name, init, tests) in cases {
        let b = bits_of(init);
        for &(i, n, want) in tests {
            assert_eq!(b.popcnt_range(i, n), want, "{name}: popcnt(i={i}, n={n})");
        }
    }
}
