//! The 512-bit chunk bitmap (Go's `pallocBits`).
//!
//! Bit `i` (word `i / 64`, bit `i % 64`, little-endian words) is page `i` of
//! the chunk: 1 = in use, 0 = free. Everything here works a 64-bit word at a
//! time: runs of free pages are found with trailing/leading-zero counts and
//! shift-and tricks, never by walking single bits.

use crate::arch::PALLOC_CHUNK_PAGES;
use crate::error::{Error, Result};
use crate::summary::{PallocSum, SumFormat};

/// Number of 64-bit words in a chunk bitmap.
pub const WORDS: usize = (PALLOC_CHUNK_PAGES / 64) as usize;

/// A chunk's page bitmap. Its in-memory layout (eight `u64`, 64 bytes) is the
/// layout of one element of the allocator's reserved chunk array.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct PallocBits(pub [u64; WORDS]);

impl std::fmt::Debug for PallocBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PallocBits{:?}", self.runs())
    }
}

/// Mask of bits `[lo, lo+n)` of one word; `lo + n <= 64`, `n >= 1`.
#[inline]
fn mask(lo: u64, n: u64) -> u64 {
    debug_assert!(n >= 1 && lo + n <= 64);
    (u64::MAX >> (64 - n)) << lo
}

/// Marks, in `c`, each bit position p such that bits `[p, p+n)` of `c` are
/// all set and lie inside the word. `n >= 1`.
///
/// Each step keeps positions whose run is at least `k` long, and ANDs in the
/// word shifted by `s <= k`, which extends the run requirement to `k + s`.
/// The step doubles, so n = 64 takes six steps.
#[inline]
pub(crate) fn run_starts(c: u64, n: u64) -> u64 {
    let (mut z, mut k) = (c, 1);
    while k < n && z != 0 {
        let s = k.min(n - k);
        z &= z >> s;
        k += s;
    }
    z
}

/// Go's `findBitRange64`: the index of the first run of `n` consecutive set
/// bits in `c` (`n <= 64`), or a value `>= 64` if there is none. An empty
/// run (`n == 0`) is found at 0.
#[inline]
pub fn find_bit_range64(c: u64, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    run_starts(c, n).trailing_zeros() as u64
}

/// [`find_bit_range64`] for any `n`: more than 64 is an error.
pub fn try_find_bit_range64(c: u64, n: u64) -> Result<u64> {
    if n > 64 {
        return Err(Error::BadRunLength { n });
    }
    Ok(find_bit_range64(c, n))
}

/// Checks that `(i, n)` is a page range inside one chunk with `n >= 1`.
pub fn check_range(i: u64, n: u64) -> Result<()> {
    if n == 0 || i.checked_add(n).is_none_or(|e| e > PALLOC_CHUNK_PAGES) {
        return Err(Error::BadRange { i, n });
    }
    Ok(())
}

impl PallocBits {
    /// All pages free.
    pub const EMPTY: PallocBits = PallocBits([0; WORDS]);
    /// All pages in use.
    pub const FULL: PallocBits = PallocBits([u64::MAX; WORDS]);

    /// Whether page `i` is in use.
    #[inline]
    pub fn get(&self, i: u64) -> bool {
        self.0[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    /// Number of pages in use.
    pub fn pages_in_use(&self) -> u64 {
        self.0.iter().map(|w| w.count_ones() as u64).sum()
    }

    /// Go's `summarize`: (start, max, end) of the free pages, packed.
    ///
    /// `start` counts free pages up from page 0, `end` counts free pages down
    /// from page 511, `max` is the longest free run anywhere.
    pub fn summarize(&self, fmt: SumFormat) -> PallocSum {
        let (start, max, end) = self.summarize_fields();
        fmt.pack(start, max, end)
    }

    /// [`PallocBits::summarize`] before packing.
    pub fn summarize_fields(&self) -> (u64, u64, u64) {
        // First pass: runs that touch word boundaries. `cur` is the free run
        // ending at the current word boundary.
        let mut start = None;
        let (mut max, mut cur, mut free) = (0u64, 0u64, 0u64);
        for &x in &self.0 {
            if x == 0 {
                cur += 64;
                continue;
            }
            free += x.count_zeros() as u64;
            cur += x.trailing_zeros() as u64;
            if start.is_none() {
                start = Some(cur);
            }
            max = max.max(cur);
            cur = x.leading_zeros() as u64;
        }
        let Some(start) = start else {
            return (PALLOC_CHUNK_PAGES, PALLOC_CHUNK_PAGES, PALLOC_CHUNK_PAGES);
        };
        max = max.max(cur);
        // Second pass: runs strictly inside a word, between its lowest and
        // highest set bits. Such a run is at most 62 long; only look for ones
        // longer than the max so far, and only if there are more free pages
        // than that at all (a filling chunk usually has not).
        if max < 62 && free > max {
            for &x in &self.0 {
                // A zero word would have made max >= 64 above.
                debug_assert!(x != 0);
                let lo = x.trailing_zeros() as u64;
                let hi = 63 - x.leading_zeros() as u64;
                if hi <= lo + 1 {
                    continue;
                }
                // Free pages strictly between the lowest and highest in-use
                // page; bit 63 is never among them.
                let mut y = !x & mask(lo, hi - lo + 1);
                if (y.count_ones() as u64) <= max {
                    continue;
                }
                // After k rounds of `y &= y >> 1`, y keeps the pages that
                // start a free run longer than k; the rounds it takes to
                // empty y are the word's longest inner run. Only a run
                // longer than `max` matters, so the first `max` rounds are
                // taken in doubling steps (log2 of max shifts), then one at
                // a time for what is left (usually nothing).
                let mut len = 0u64;
                while len < max && y != 0 {
                    let step = (len + 1).min(max - len);
                    y &= y >> step;
                    len += step;
                }
                while y != 0 {
                    y &= y >> 1;
                    len += 1;
                }
                max = max.max(len);
            }
        }
        (start, max, cur)
    }

    /// Go's `find`: the first page of the lowest run of `npages` free pages,
    /// and the first free page met in the scan, as `(index, new_search_idx)`.
    ///
    /// The scan starts at the word holding `search_idx`; every page below
    /// `search_idx` must be in use. When no run fits the index is `None` and
    /// the second value means nothing. For `npages == 1` both values agree.
    #[inline(always)]
    pub fn find(&self, npages: u64, search_idx: u64) -> (Option<u64>, u64) {
        debug_assert!(npages >= 1);
        debug_assert!(search_idx < PALLOC_CHUNK_PAGES);
        if npages == 1 {
            let i = self.find1(search_idx);
            (i, i.unwrap_or(PALLOC_CHUNK_PAGES))
        } else if npages <= 64 {
            self.find_small_n(npages, search_idx)
        } else {
            self.find_large_n(npages, search_idx)
        }
    }

    /// [`PallocBits::find`] with its preconditions checked: `npages >= 1`,
    /// `search_idx < 512` and every page below `search_idx` in use.
    pub fn try_find(&self, npages: u64, search_idx: u64) -> Result<(Option<u64>, u64)> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        if search_idx >= PALLOC_CHUNK_PAGES {
            return Err(Error::BadSearchIdx {
                idx: search_idx,
                free_below: None,
            });
        }
        if search_idx > 0 {
            if let Some(p) = self.first_free_in(0, search_idx) {
                return Err(Error::BadSearchIdx {
                    idx: search_idx,
                    free_below: Some(p),
                });
            }
        }
        Ok(self.find(npages, search_idx))
    }

    /// `find` for one page: the first word that is not full has it.
    #[inline(always)]
    fn find1(&self, search_idx: u64) -> Option<u64> {
        let w0 = (search_idx / 64) as usize;
        for (i, &x) in self.0.iter().enumerate().skip(w0) {
            if x != u64::MAX {
                return Some(i as u64 * 64 + x.trailing_ones() as u64);
            }
        }
        None
    }

    /// `find` for 2..=64 pages: such a run lies inside one word or crosses
    /// exactly one word boundary.
    fn find_small_n(&self, npages: u64, search_idx: u64) -> (Option<u64>, u64) {
        let w0 = (search_idx / 64) as usize;
        // `tail` is the free run that ends at the top of the previous word.
        let mut tail = 0u64;
        let mut new_search = None;
        for (i, &x) in self.0.iter().enumerate().skip(w0) {
            let base = i as u64 * 64;
            if x == u64::MAX {
                tail = 0;
                continue;
            }
            let first_free = *new_search.get_or_insert(base + x.trailing_ones() as u64);
            // A run across the boundary: the previous tail plus this word's
            // low free pages.
            if tail + x.trailing_zeros() as u64 >= npages {
                return (Some(base - tail), first_free);
            }
            // A run inside this word.
            let j = find_bit_range64(!x, npages);
            if j < 64 {
                return (Some(base + j), first_free);
            }
            tail = x.leading_zeros() as u64;
        }
        (None, new_search.unwrap_or(PALLOC_CHUNK_PAGES))
    }

    /// `find` for more than 64 pages: such a run covers at least one word
    /// boundary, so it can only begin at the free top of some word.
    fn find_large_n(&self, npages: u64, search_idx: u64) -> (Option<u64>, u64) {
        let w0 = (search_idx / 64) as usize;
        let (mut start, mut size) = (0u64, 0u64);
        let mut new_search = None;
        for (i, &x) in self.0.iter().enumerate().skip(w0) {
            let base = i as u64 * 64;
            if x == u64::MAX {
                size = 0;
                continue;
            }
            let first_free = *new_search.get_or_insert(base + x.trailing_ones() as u64);
            if size > 0 {
                let low = x.trailing_zeros() as u64;
                if size + low >= npages {
                    return (Some(start), first_free);
                }
                if low == 64 {
                    size += 64;
                    continue;
                }
            }
            // Begin a new run at this word's free top.
            size = x.leading_zeros() as u64;
            start = base + 64 - size;
        }
        let found = (size >= npages).then_some(start);
        (found, new_search.unwrap_or(PALLOC_CHUNK_PAGES))
    }

    /// Marks pages `[i, i+n)` in use. `n >= 1`, `i + n <= 512`.
    #[inline]
    pub fn alloc_range(&mut self, i: u64, n: u64) {
        self.apply_range(i, n, |w, m| *w |= m);
    }

    /// Marks pages `[i, i+n)` free. `n >= 1`, `i + n <= 512`.
    #[inline]
    pub fn free(&mut self, i: u64, n: u64) {
        self.apply_range(i, n, |w, m| *w &= !m);
    }

    /// Marks page `i` free.
    #[inline]
    pub fn free1(&mut self, i: u64) {
        self.0[(i / 64) as usize] &= !(1 << (i % 64));
    }

    /// Marks every page in use.
    #[inline]
    pub fn alloc_all(&mut self) {
        *self = Self::FULL;
    }

    /// Marks every page free.
    #[inline]
    pub fn free_all(&mut self) {
        *self = Self::EMPTY;
    }

    /// Number of free pages immediately below page `i` (`i <= 512`).
    #[inline(always)]
    pub fn free_below(&self, i: u64) -> u64 {
        let (mut w, low) = ((i / 64) as usize, i % 64);
        let mut count = 0;
        if low > 0 {
            // The pages below i in its word, moved to the top.
            let x = self.0[w] << (64 - low);
            if x != 0 {
                return x.leading_zeros() as u64;
            }
            count = low;
        }
        while w > 0 {
            w -= 1;
            let x = self.0[w];
            if x != 0 {
                return count + x.leading_zeros() as u64;
            }
            count += 64;
        }
        count
    }

    /// Number of free pages from page `j` upward (`j <= 512`).
    #[inline(always)]
    pub fn free_from(&self, j: u64) -> u64 {
        if j >= PALLOC_CHUNK_PAGES {
            return 0;
        }
        let (mut w, low) = ((j / 64) as usize, j % 64);
        let x = self.0[w] >> low;
        if x != 0 {
            return x.trailing_zeros() as u64;
        }
        let mut count = 64 - low;
        w += 1;
        while w < WORDS {
            let x = self.0[w];
            if x != 0 {
                return count + x.trailing_zeros() as u64;
            }
            count += 64;
            w += 1;
        }
        count
    }

    /// Whether pages `[i, i+n)` are all in use; if not, the first free one.
    pub fn first_free_in(&self, i: u64, n: u64) -> Option<u64> {
        let mut found = None;
        self.for_each_word(i, n, |w, x, m| {
            if found.is_none() && x & m != m {
                found = Some(w as u64 * 64 + (!x & m).trailing_zeros() as u64);
            }
        });
        found
    }

    /// The maximal runs of in-use pages, ascending, as `(first, length)`.
    pub fn runs(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        self.for_each_run(0, PALLOC_CHUNK_PAGES, true, |i, n| out.push((i, n)));
        out
    }

    /// The first run of bits equal to `set` at or after bit `i` (`i <= 512`),
    /// as `(first, count)`, cut at the chunk's end; `None` if there is none.
    /// A word at a time.
    pub fn next_run(&self, i: u64, set: bool) -> Option<(u64, u64)> {
        let word = |w: usize| if set { self.0[w] } else { !self.0[w] };
        let mut i = i;
        // The first matching bit.
        loop {
            if i >= PALLOC_CHUNK_PAGES {
                return None;
            }
            let (w, b) = ((i / 64) as usize, i % 64);
            let x = word(w) >> b;
            if x != 0 {
                i += x.trailing_zeros() as u64;
                break;
            }
            i += 64 - b;
        }
        // How far it runs.
        let first = i;
        loop {
            let (w, b) = ((i / 64) as usize, i % 64);
            let ones = ((word(w) >> b).trailing_ones() as u64).min(64 - b);
            i += ones;
            if ones < 64 - b || i >= PALLOC_CHUNK_PAGES {
                return Some((first, i.min(PALLOC_CHUNK_PAGES) - first));
            }
        }
    }

    /// Calls `f(first, count)` for each maximal run of bits equal to `set`
    /// within `[i, i+n)`, ascending (runs are cut at the range's ends).
    /// A word at a time: O(words + runs).
    pub fn for_each_run(&self, i: u64, n: u64, set: bool, mut f: impl FnMut(u64, u64)) {
        debug_assert!(i + n <= PALLOC_CHUNK_PAGES);
        let end = i + n;
        let mut i = i;
        let mut pending: Option<(u64, u64)> = None;
        while i < end {
            let (w, b) = ((i / 64) as usize, i % 64);
            let word = if set { self.0[w] } else { !self.0[w] };
            let x = word >> b;
            if x & 1 == 0 {
                // Skip to the next matching bit, or to the next word.
                i += (x.trailing_zeros() as u64).min(64 - b);
                if let Some((s, len)) = pending.take() {
                    f(s, len);
                }
                continue;
            }
            let run = (x.trailing_ones() as u64).min(64 - b).min(end - i);
            pending = match pending {
                Some((s, len)) if s + len == i => Some((s, len + run)),
                Some((s, len)) => {
                    f(s, len);
                    Some((i, run))
                }
                None => Some((i, run)),
            };
            i += run;
        }
        if let Some((s, len)) = pending {
            f(s, len);
        }
    }

    /// Calls `f(word, bits, mask)` for each word that `[i, i+n)` touches.
    #[inline]
    fn for_each_word(&self, i: u64, n: u64, mut f: impl FnMut(usize, u64, u64)) {
        debug_assert!(n >= 1 && i + n <= PALLOC_CHUNK_PAGES);
        let (mut i, end) = (i, i + n);
        while i < end {
            let w = (i / 64) as usize;
            let lo = i % 64;
            let len = (64 - lo).min(end - i);
            f(w, self.0[w], mask(lo, len));
            i += len;
        }
    }

    #[inline]
    fn apply_range(&mut self, i: u64, n: u64, op: impl Fn(&mut u64, u64)) {
        debug_assert!(n >= 1 && i + n <= PALLOC_CHUNK_PAGES, "range ({i}, {n})");
        let j = i + n - 1;
        let (wi, wj) = ((i / 64) as usize, (j / 64) as usize);
        if wi == wj {
            op(&mut self.0[wi], mask(i % 64, n));
            return;
        }
        op(&mut self.0[wi], u64::MAX << (i % 64));
        for w in &mut self.0[wi + 1..wj] {
            op(w, u64::MAX);
        }
        op(&mut self.0[wj], u64::MAX >> (63 - j % 64));
    }

    /// Frees pages `[i, i+n)` if every one of them is in use; otherwise
    /// changes nothing and returns the first free one. The check and the
    /// clear are one pass when the range lies in one word (the common
    /// case); a longer range is checked whole before anything is cleared.
    #[inline(always)]
    pub fn free_checked(&mut self, i: u64, n: u64) -> std::result::Result<(), u64> {
        debug_assert!(n >= 1 && i + n <= PALLOC_CHUNK_PAGES, "range ({i}, {n})");
        let (w, lo) = ((i / 64) as usize, i % 64);
        if n == 1 {
            // One page (most frees): one bit.
            let bit = 1u64 << lo;
            if self.0[w] & bit == 0 {
                return Err(i);
            }
            self.0[w] &= !bit;
            return Ok(());
        }
        if lo + n <= 64 {
            let (x, m) = (self.0[w], mask(lo, n));
            if x & m != m {
                return Err(w as u64 * 64 + (!x & m).trailing_zeros() as u64);
            }
            self.0[w] = x & !m;
            return Ok(());
        }
        if let Some(p) = self.first_free_in(i, n) {
            return Err(p);
        }
        self.free(i, n);
        Ok(())
    }

    /// Go's `pageBits.popcntRange`: how many of bits `[i, i+n)` are set.
    /// `n >= 1`, `i + n <= 512`.
    #[inline]
    pub fn popcnt_range(&self, i: u64, n: u64) -> u64 {
        let mut count = 0;
        self.for_each_word(i, n, |_, x, m| count += (x & m).count_ones() as u64);
        count
    }

    /// Go's `block64`: the 64-bit word holding bit `i`.
    #[inline]
    pub fn block64(&self, i: u64) -> u64 {
        self.0[(i / 64) as usize]
    }

    /// Go's `setBlock64`: sets the bits of `v` in the word holding bit `i`.
    #[inline]
    pub fn set_block64(&mut self, i: u64, v: u64) {
        self.0[(i / 64) as usize] |= v;
    }

    /// Go's `clearBlock64`: clears the bits of `v` in the word holding bit `i`.
    #[inline]
    pub fn clear_block64(&mut self, i: u64, v: u64) {
        self.0[(i / 64) as usize] &= !v;
    }
}

/// Go 1.19's `fillAligned`: treats `x` as 64/m groups of `m` bits (`m` a
/// power of two, at most 64) and sets every bit of each group that has any
/// bit set. `None` for any other `m` (Go throws "bad m value").
///
/// Scavenging works in physical pages of `m` runtime pages: a group is
/// scavengeable only if all its pages are free and unscavenged, so one set
/// bit spoils the group.
pub fn fill_aligned(x: u64, m: u64) -> Option<u64> {
    // For each group, a mask with every bit but the group's top one. Adding
    // it to the group's low bits carries into the top bit when any low bit
    // is set; OR-ing in x and the mask then sets the top bit whenever any bit
    // of the group was set. The complement leaves exactly the all-zero groups
    // with their top bit set.
    let low = match m {
        1 => return Some(x),
        2 => 0x5555_5555_5555_5555,
        4 => 0x7777_7777_7777_7777,
        8 => 0x7f7f_7f7f_7f7f_7f7f,
        16 => 0x7fff_7fff_7fff_7fff,
        32 => 0x7fff_ffff_7fff_ffff,
        64 => 0x7fff_ffff_ffff_ffff,
        _ => return None,
    };
    let zero_tops = !((((x & low).wrapping_add(low)) | x) | low);
    // Smear each all-zero group's top bit down over its group, then
    // complement: the all-zero groups become zero, every other group ones.
    Some(!((zero_tops - (zero_tops >> (m - 1))) | zero_tops))
}

/// Go 1.19's `pallocData`: a chunk's page bitmap and, beside it, its
/// scavenged bitmap (bit i set = page i's memory was returned to the OS).
/// Invariant: no page is both in use and scavenged.
///
/// Its layout (the 64-byte alloc bitmap, then the 64-byte scavenged one) is
/// one element of the allocator's reserved chunk array.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
#[repr(C)]
pub struct PallocData {
    pub bits: PallocBits,
    pub scavenged: PallocBits,
}

impl PallocData {
    /// Go's `pallocData.allocRange`: pages `[i, i+n)` in use, unscavenged.
    #[inline]
    pub fn alloc_range(&mut self, i: u64, n: u64) {
        self.bits.alloc_range(i, n);
        self.scavenged.free(i, n);
    }

    /// [`PallocData::alloc_range`] that also counts the pages of the range
    /// that were scavenged (Go's `allocRange` result, in pages): one pass
    /// over the words, each read and written once.
    #[inline(always)]
    pub fn take(&mut self, i: u64, n: u64) -> u64 {
        debug_assert!(n >= 1 && i + n <= PALLOC_CHUNK_PAGES, "range ({i}, {n})");
        let j = i + n - 1;
        let (wi, wj) = ((i / 64) as usize, (j / 64) as usize);
        let mut take_word = |w: usize, m: u64| {
            let scav = self.scavenged.0[w];
            self.scavenged.0[w] = scav & !m;
            self.bits.0[w] |= m;
            (scav & m).count_ones() as u64
        };
        if wi == wj {
            return take_word(wi, mask(i % 64, n));
        }
        let mut count = take_word(wi, u64::MAX << (i % 64));
        for w in wi + 1..wj {
            count += take_word(w, u64::MAX);
        }
        count + take_word(wj, u64::MAX >> (63 - j % 64))
    }

    /// Go's `pallocData.allocAll`.
    #[inline]
    pub fn alloc_all(&mut self) {
        self.bits = PallocBits::FULL;
        self.scavenged = PallocBits::EMPTY;
    }

    /// Go 1.19's `findScavengeCandidate`: the highest run of free,
    /// unscavenged pages at or below page `search_idx`, in units of `min`
    /// pages (the physical page), returned as `(start, npages)` with at most
    /// `max` pages (rounded up to a multiple of `min`; 0 means `min`), or
    /// `(0, 0)` when there is none. With huge pages of `huge_pages` runtime
    /// pages (0 for none), a candidate that would split a free huge page is
    /// widened down to the huge page's start, so that the huge page is
    /// released whole or not touched.
    ///
    /// `min` must be a power of two from 1 to 64 (checked by the caller).
    pub fn find_scavenge_candidate(
        &self,
        search_idx: u64,
        min: u64,
        max: u64,
        huge_pages: u64,
    ) -> (u64, u64) {
        debug_assert!(min.is_power_of_two() && min <= 64 && search_idx < PALLOC_CHUNK_PAGES);
        let max = if max == 0 {
            min
        } else {
            max.next_multiple_of(min)
        };
        // A set bit: the page (or its physical page) cannot be scavenged.
        let busy = |w: usize| {
            fill_aligned(self.scavenged.0[w] | self.bits.0[w], min).expect("min checked")
        };
        // The highest word at or below search_idx's with a candidate page.
        let Some(i) = (0..=(search_idx / 64) as usize)
            .rev()
            .find(|&w| busy(w) != u64::MAX)
        else {
            return (0, 0);
        };
        // The run ends just above the highest candidate page of word i ...
        let x = busy(i);
        let z1 = (!x).leading_zeros() as u64;
        let end = i as u64 * 64 + (64 - z1);
        // ... and reaches down through the free pages below it, possibly
        // into lower words.
        let run = if x << z1 != 0 {
            (x << z1).leading_zeros() as u64
        } else {
            let mut run = 64 - z1;
            for w in (0..i).rev() {
                let x = busy(w);
                run += x.leading_zeros() as u64;
                if x != 0 {
                    break;
                }
            }
            run
        };
        let mut size = run.min(max);
        let mut start = end - size;
        // Never split a free huge page: if the candidate starts inside one
        // that the free run covers entirely from its start, take the whole
        // huge page below the candidate too.
        if huge_pages > 1 {
            let above = start.next_multiple_of(huge_pages);
            if above <= end {
                let below = start / huge_pages * huge_pages;
                if below >= end - run {
                    size += start - below;
                    start = below;
                }
            }
        }
        (start, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic xorshift so the tests need no dependency.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    fn naive_summary(b: &PallocBits) -> (u64, u64, u64) {
        let free = |i: u64| !b.get(i);
        let start = (0..512).take_while(|&i| free(i)).count() as u64;
        let end = (0..512).rev().take_while(|&i| free(i)).count() as u64;
        let (mut max, mut cur) = (0, 0);
        for i in 0..512 {
            cur = if free(i) { cur + 1 } else { 0 };
            max = max.max(cur);
        }
        (start, max, end)
    }

    /// The lowest run of n free pages at or after word search_idx/64, and
    /// the first free page at or after that word.
    fn naive_find(b: &PallocBits, n: u64, search_idx: u64) -> (Option<u64>, Option<u64>) {
        let from = search_idx / 64 * 64;
        let first_free = (from..512).find(|&i| !b.get(i));
        let mut run = 0;
        for i in from..512 {
            run = if b.get(i) { 0 } else { run + 1 };
            if run == n {
                return (Some(i + 1 - n), first_free);
            }
        }
        (None, first_free)
    }

    fn patterns() -> Vec<(String, PallocBits)> {
        let mut v = vec![
            ("empty".to_string(), PallocBits::EMPTY),
            ("full".to_string(), PallocBits::FULL),
            (
                "alternating".to_string(),
                PallocBits([0x5555_5555_5555_5555; 8]),
            ),
            (
                "alternating2".to_string(),
                PallocBits([0xaaaa_aaaa_aaaa_aaaa; 8]),
            ),
        ];
        for bit in [0u64, 1, 63, 64, 127, 128, 255, 256, 383, 447, 448, 510, 511] {
            let mut b = PallocBits::EMPTY;
            b.alloc_range(bit, 1);
            v.push((format!("single{bit}"), b));
            let mut f = PallocBits::FULL;
            f.free1(bit);
            v.push((format!("hole{bit}"), f));
        }
        // Free runs of assorted lengths straddling each word boundary, in an
        // otherwise full chunk.
        for boundary in (64..512).step_by(64) {
            for (before, after) in [
                (1, 1),
                (3, 60),
                (33, 32),
                (64, 1),
                (1, 64),
                (63, 65),
                (70, 70),
            ] {
                let lo = boundary - before.min(boundary);
                let hi = (boundary + after).min(512);
                let mut b = PallocBits::FULL;
                b.free(lo, hi - lo);
                v.push((format!("straddle{boundary}-{before}-{after}"), b));
            }
        }
        let mut next = rng(7);
        for k in 0..60 {
            let mut b = PallocBits::EMPTY;
            for w in 0..8 {
                let x = next();
                // Vary density: sparse, dense and even fills.
                b.0[w] = match k % 3 {
                    0 => x & next() & next(),
                    1 => x | next() | next(),
                    _ => x,
                };
            }
            v.push((format!("random{k}"), b));
        }
        for k in 0..20 {
            // A few long free runs in a full chunk.
            let mut b = PallocBits::FULL;
            for _ in 0..3 {
                let i = next() % 512;
                let n = 1 + next() % (512 - i);
                b.free(i, n.min(300));
            }
            v.push((format!("longruns{k}"), b));
        }
        v
    }

    #[test]
    fn summarize_matches_naive() {
        let fmt = SumFormat::new(21);
        for (name, b) in patterns() {
            assert_eq!(b.summarize_fields(), naive_summary(&b), "{name}");
            let (s, m, e) = naive_summary(&b);
            assert_eq!(b.summarize(fmt), fmt.pack(s, m, e), "{name}");
        }
    }

    #[test]
    fn find_matches_naive_for_every_size_and_search_idx() {
        for (name, b) in patterns() {
            // Every searchIdx whose precondition holds: pages below it in use.
            let first_free = (0..512).find(|&i| !b.get(i)).unwrap_or(512);
            for search_idx in (0..=first_free.min(511))
                .step_by(7)
                .chain([first_free.min(511)])
            {
                for n in 1..=512 {
                    let (got, got_search) = b.find(n, search_idx);
                    let (want, want_search) = naive_find(&b, n, search_idx);
                    assert_eq!(got, want, "{name} n={n} search_idx={search_idx}");
                    if let Some(i) = got {
                        assert_eq!(
                            Some(got_search),
                            want_search,
                            "{name} n={n} sidx={search_idx}"
                        );
                        if n == 1 {
                            assert_eq!(got_search, i);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn find_bit_range64_matches_naive() {
        let mut next = rng(3);
        let mut words = vec![
            0,
            u64::MAX,
            1,
            1 << 63,
            0xf0f0_f0f0_f0f0_f0f0,
            u64::MAX >> 1,
        ];
        words.extend((0..200).map(|_| next() | next()));
        for c in words {
            for n in 1..=64u64 {
                let want = (0..=64 - n).find(|&i| (i..i + n).all(|k| c >> k & 1 == 1));
                let got = find_bit_range64(c, n);
                match want {
                    Some(i) => assert_eq!(got, i, "{c:#x} {n}"),
                    None => assert!(got >= 64, "{c:#x} {n}"),
                }
            }
        }
    }

    #[test]
    fn next_run_matches_naive() {
        for (name, b) in patterns() {
            for i in [0, 1, 63, 64, 65, 200, 511, 512] {
                for set in [true, false] {
                    let want = (i..512)
                        .find(|&p| b.get(p) == set)
                        .map(|s| (s, (s..512).take_while(|&p| b.get(p) == set).count() as u64));
                    assert_eq!(b.next_run(i, set), want, "{name} from {i} set={set}");
                }
            }
        }
    }

    #[test]
    fn for_each_run_matches_naive() {
        for (name, b) in patterns() {
            for (i, n) in [
                (0, 512),
                (0, 1),
                (63, 2),
                (5, 300),
                (130, 382),
                (511, 1),
                (64, 64),
            ] {
                for set in [true, false] {
                    let mut got = Vec::new();
                    b.for_each_run(i, n, set, |s, len| got.push((s, len)));
                    let mut want: Vec<(u64, u64)> = Vec::new();
                    for p in (i..i + n).filter(|&p| b.get(p) == set) {
                        match want.last_mut() {
                            Some((s, len)) if *s + *len == p => *len += 1,
                            _ => want.push((p, 1)),
                        }
                    }
                    assert_eq!(got, want, "{name} [{i}, +{n}) set={set}");
                }
            }
        }
    }

    #[test]
    fn ranges_set_and_clear() {
        let mut next = rng(11);
        for _ in 0..500 {
            let i = next() % 512;
            let n = 1 + next() % (512 - i);
            let mut b = PallocBits::EMPTY;
            b.alloc_range(i, n);
            for k in 0..512 {
                assert_eq!(b.get(k), (i..i + n).contains(&k));
            }
            assert_eq!(b.runs(), vec![(i, n)]);
            assert_eq!(b.first_free_in(i, n), None);
            assert_eq!(b.pages_in_use(), n);
            let mut f = PallocBits::FULL;
            f.free(i, n);
            assert_eq!(f.pages_in_use(), 512 - n);
            assert_eq!(f.first_free_in(0, 512), Some(i));
            b.free(i, n);
            assert_eq!(b, PallocBits::EMPTY);
        }
        let mut b = PallocBits::EMPTY;
        b.alloc_all();
        assert_eq!(b.runs(), vec![(0, 512)]);
        b.free1(100);
        assert_eq!(b.runs(), vec![(0, 100), (101, 411)]);
        b.free_all();
        assert!(b.runs().is_empty());
    }
}
