//! Chunk-level (leaf) summaries, kept incrementally.
//!
//! A leaf is Go's `summarize()` of one chunk's bitmap: `(start, max, end)`.
//! Go recomputes it from all 512 bits after every change; here a change of
//! one contiguous range `[i, i+n)` derives the new leaf from the old one and
//! the free run `[a, b)` around the change, which is found from the bitmap a
//! word or two out from the range (TCMalloc's `RangeTracker` and jemalloc's
//! `hpdata` keep their longest free range the same way):
//!
//! - a **free** only merges runs: `[a, b)` is the merged run, every other
//!   run is untouched, so `max` becomes `max(old max, b - a)`, and `start`
//!   (`end`) becomes `b` (`512 - a`) when the run touches page 0 (511);
//! - an **alloc** carves `[i, i+n)` out of one run `[a, b)`, leaving
//!   `[a, i)` and `[i+n, b)`. Only when `b - a` was the `max` can `max`
//!   change, and then it is the longest of the two pieces and of every run
//!   outside `[a, b)`: those lie below `a` or at or above `b`, and are read
//!   from the bitmap only as far as they can matter.
//!
//! What the caller knows bounds the work. A first-fit allocation knows that
//! every free run below its result is shorter than the request (else it
//! would have been chosen), so the part of the chunk below `a` is read only
//! when nothing else reaches that bound; an allocation of the chunk's first
//! free page knows there is no free page below at all. Filling a chunk from
//! its bottom, the most common pattern of all, so never reads more than the
//! word that changed.
//!
//! Invariant (checked after every update in debug builds, and by
//! `verify()`): every grown chunk's leaf equals `summarize()` of its bitmap.

use super::*;
use crate::bits::run_starts;

/// `(start, max, end)` of a chunk's free pages.
pub(super) type Fields = (u64, u64, u64);

const ALL: u64 = PALLOC_CHUNK_PAGES;

/// The leaf after pages `[i, i+n)` of `bits` (already marked free) were
/// freed, from the leaf `old` before, and the merged free run `[a, b)` that
/// holds them. Exact; reads the bitmap only out from the range to the ends
/// of the merged run.
#[inline(always)]
pub(super) fn after_free(bits: &PallocBits, i: u64, n: u64, old: Fields) -> (Fields, (u64, u64)) {
    let (s, m, e) = old;
    // The merged run [a, b). When the old start (end) run reaches the
    // range, the old leaf already says where it begins (ends).
    let a = if i <= s { 0 } else { i - bits.free_below(i) };
    let b = if i + n >= ALL - e {
        ALL
    } else {
        i + n + bits.free_from(i + n)
    };
    let start = if a == 0 { b } else { s };
    let end = if b == ALL { ALL - a } else { e };
    ((start, m.max(b - a), end), (a, b))
}

/// The leaf after pages `[i, i+n)` of `bits` (already marked in use) were
/// taken, from the leaf `old` before. `below` bounds the longest free run
/// that lies wholly below the run the pages were taken from: `n - 1` for a
/// first-fit allocation, 0 when `i` was the chunk's first free page,
/// [`PALLOC_CHUNK_PAGES`] when nothing is known. Exact.
#[inline(always)]
pub(super) fn after_alloc(bits: &PallocBits, i: u64, n: u64, old: Fields, below: u64) -> Fields {
    let (s, m, e) = old;
    // The run [a, b) the pages came from, now split into [a, i), [i+n, b).
    // An alloc inside the old start or end run knows that run's bounds.
    let (a, b) = if i + n <= s {
        (0, s)
    } else if i >= ALL - e {
        (ALL - e, ALL)
    } else {
        (i - bits.free_below(i), i + n + bits.free_from(i + n))
    };
    let (left, right) = (i - a, b - (i + n));
    let start = if a == 0 { left } else { s };
    let end = if b == ALL { right } else { e };
    let max = if b - a < m {
        // The max came from another run, which is untouched.
        m
    } else if s == ALL {
        // The chunk was all free: the pieces are the only runs.
        left.max(right)
    } else if b == ALL && (a == 0 || left.max(right) >= below.min(m)) {
        // The longest run was the end run, and nothing below it can be
        // longer than its pieces: a chunk filling from the bottom.
        left.max(right)
    } else {
        split_max(bits, a, b, (left, right), m, below)
    };
    (start, max, end)
}

/// The new `max` after an alloc split the longest run `[a, b)` (of length
/// `m`) into pieces `left` and `right`: the longest of the pieces, of the
/// runs at or above `b` and of the runs below `a`, which are
/// at most `below` long.
///
/// Both pieces are shorter than `m`, so any run of `m` pages still in the
/// chunk lies outside `[a, b)` and keeps the max; fragmented chunks, whose
/// holes are all about as long, usually have one. So this is one pass over
/// the chunk that stops at the first run of `m` pages, skipping the part
/// below `a` when nothing there can beat what the rest holds.
#[cold]
#[inline(never)]
fn split_max(
    bits: &PallocBits,
    a: u64,
    b: u64,
    (left, right): (u64, u64),
    m: u64,
    below: u64,
) -> u64 {
    if m == 1 {
        // Runs of one page: the max stays 1 while any page is free.
        return u64::from(bits.0.iter().any(|&x| x != u64::MAX));
    }
    let pieces = left.max(right);
    // The free pages outside the pieces bound every run outside [a, b):
    // when they are no more than the longer piece, it is the max. (A chunk
    // whose last hole was just filled: nothing to scan.)
    let outside = PALLOC_CHUNK_PAGES - bits.pages_in_use() - left - right;
    if outside <= pieces {
        return pieces;
    }
    if a == 0 || below.min(m) <= pieces {
        // Nothing below a can be longer than the pieces. (With b at the
        // chunk's end too, `after_alloc` needed no call.)
        debug_assert!(b < ALL);
        return pieces.max(longest_run(bits, b, ALL, m));
    }
    longest_run(bits, 0, ALL, m)
}

/// The longest run of free pages inside `[lo, hi)` of `bits` (`lo < hi`),
/// or `cap` as soon as a run that long is met. Pages outside the window
/// count as in use.
///
/// One pass over the window's words, as Go's `summarize` does it: a word's
/// low free pages join the run coming from below, its high ones start the
/// next; runs strictly inside a word are looked for only when the word has
/// more free pages inside than the longest run so far, and then only for
/// lengths above it.
fn longest_run(bits: &PallocBits, lo: u64, hi: u64, cap: u64) -> u64 {
    debug_assert!(lo < hi && hi <= ALL);
    let (w0, w1) = ((lo / 64) as usize, ((hi - 1) / 64) as usize);
    // Pages outside [lo, hi) are forced to "in use": only the end words
    // have any.
    let (first, last) = (
        !mask_between(lo % 64, 64),
        !mask_between(0, hi - w1 as u64 * 64),
    );
    let (mut best, mut cur) = (0u64, 0u64);
    for w in w0..=w1 {
        let mut x = bits.0[w];
        if w == w0 {
            x |= first;
        }
        if w == w1 {
            x |= last;
        }
        if x == 0 {
            cur += 64;
            continue;
        }
        let tz = x.trailing_zeros();
        cur += tz as u64;
        best = best.max(cur);
        if best >= cap {
            return cap;
        }
        let lz = x.leading_zeros();
        if ((!x).count_ones() - tz - lz) as u64 > best {
            // Free pages strictly between the lowest and highest in-use
            // page: keep lengthening while a run of best + 1 exists.
            let mut y = !x & (u64::MAX << tz) & (u64::MAX >> lz);
            let mut k = best + 1;
            y = run_starts(y, k);
            while y != 0 {
                best = k;
                if best >= cap {
                    return cap;
                }
                k += 1;
                y &= y >> 1;
            }
        }
        cur = lz as u64;
    }
    best.max(cur).min(cap)
}

/// Bits `[lo, hi)` of a word (`lo <= hi <= 64`); empty when `lo == hi`.
#[inline]
fn mask_between(lo: u64, hi: u64) -> u64 {
    if lo >= hi {
        0
    } else {
        (u64::MAX >> (64 - (hi - lo))) << lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed;
        move || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    fn naive_longest(b: &PallocBits, lo: u64, hi: u64) -> u64 {
        let (mut best, mut run) = (0, 0);
        for p in lo..hi {
            run = if b.get(p) { 0 } else { run + 1 };
            best = best.max(run);
        }
        best
    }

    /// Random chunks at every density, random changes: the incremental leaf
    /// equals a full `summarize` after every alloc and free, with every
    /// `below` bound the callers pass.
    #[test]
    fn incremental_leaf_matches_rescan() {
        let mut r = rng(7);
        for round in 0..3000 {
            let mut bits = PallocBits::EMPTY;
            // Fill to a random density with runs of random lengths.
            let density = r() % 100;
            let mut p = 0;
            while p < ALL {
                let len = 1 + r() % [1, 4, 16, 100][(round % 4) as usize];
                let n = len.min(ALL - p);
                if r() % 100 < density {
                    bits.alloc_range(p, n);
                }
                p += n;
            }
            for _ in 0..20 {
                let old = bits.summarize_fields();
                if r() % 2 == 0 {
                    // Free a random in-use run piece.
                    let i = r() % ALL;
                    if !bits.get(i) {
                        continue;
                    }
                    let mut n = 1;
                    let want = 1 + r() % 70;
                    while n < want && i + n < ALL && bits.get(i + n) {
                        n += 1;
                    }
                    bits.free(i, n);
                    let (leaf, (a, b)) = after_free(&bits, i, n, old);
                    assert_eq!(leaf, bits.summarize_fields());
                    // [a, b) is the free run around the freed pages.
                    assert!(a <= i && i + n <= b && (a..b).all(|p| !bits.get(p)));
                    assert!(a == 0 || bits.get(a - 1));
                    assert!(b == ALL || bits.get(b));
                } else {
                    // First fit of a random size, or any fit with no bound.
                    let n = 1 + r() % [1, 3, 20, 300][(r() % 4) as usize];
                    let first_fit = r() % 2 == 0;
                    let i = if first_fit {
                        match bits.find(n, 0).0 {
                            Some(i) => i,
                            None => continue,
                        }
                    } else {
                        let i = r() % ALL;
                        if i + n > ALL || bits.first_free_in(i, n).is_none() {
                            continue;
                        }
                        if (i..i + n).any(|q| bits.get(q)) {
                            continue;
                        }
                        i
                    };
                    let first_free = bits.find(1, 0).0 == Some(i);
                    let below = if first_free && r() % 2 == 0 {
                        0
                    } else if first_fit {
                        n - 1
                    } else {
                        ALL
                    };
                    bits.alloc_range(i, n);
                    assert_eq!(
                        after_alloc(&bits, i, n, old, below),
                        bits.summarize_fields(),
                        "alloc {i}+{n} below {below}"
                    );
                }
            }
        }
    }

    #[test]
    fn longest_run_matches_naive() {
        let mut r = rng(3);
        for _ in 0..2000 {
            let bits = PallocBits(std::array::from_fn(|_| r() & r() | r() & r()));
            let lo = r() % ALL;
            let hi = lo + 1 + r() % (ALL - lo);
            assert_eq!(
                longest_run(&bits, lo, hi, ALL),
                naive_longest(&bits, lo, hi)
            );
        }
    }
}
