//! Constrained allocation: first fit at an alignment, inside a window, and
//! at a fixed address, all exact (never over-allocating and trimming, as Go
//! does when it needs physical-page alignment).
//!
//! The search walks the radix tree once, in address order, visiting the
//! maximal runs of free pages at or after a bound (the window's start, or the
//! search address when that is higher: no page below it is free). For each
//! run it tries the lowest address in it that is aligned; the first run
//! where that fits is the answer, and no later position of a failed run can
//! fit (it would have even less room). Summaries prune the walk as they prune
//! Go's `find`: a run that continues from the entries before one and through
//! its `start` is judged without entering it; an entry whose `max` is below
//! `n` is passed over, carrying only its free `end` to the next; only an entry
//! whose `max` fits (or the one holding the bound) is entered. So the walk
//! enters every entry that could hold a fit of `n` pages, aligned or not,
//! before the answer: cheap when alignment is rarely what stops a fit, slower
//! on a heap whose holes fit `n` pages but seldom at the alignment (see the
//! README's numbers).

use super::PageAlloc;
use super::HINT_LOG_ALIGN;
use crate::arch::{LOG_PALLOC_CHUNK_PAGES, PAGE_SHIFT, PALLOC_CHUNK_PAGES};
use crate::bits::WORDS;
use crate::error::{Error, Result};

/// What scanning one summary entry found.
enum Scan {
    /// The lowest page at or after the bound where the run of `n` begins.
    Found(u64),
    /// No run of `n` begins here; the free pages at the entry's end
    /// (`len` of them, from `start`), which the next entry may extend.
    Carry { start: u64, len: u64 },
}

const NO_CARRY: Scan = Scan::Carry { start: 0, len: 0 };

/// A constrained request's own checks: at least one page, and a power-of-two
/// alignment.
pub(super) fn check_request(npages: u64, align: u64) -> Result<()> {
    if npages == 0 {
        return Err(Error::ZeroPages);
    }
    if align == 0 || !align.is_power_of_two() {
        return Err(Error::BadAlign { align });
    }
    Ok(())
}

impl PageAlloc {
    /// First fit of `npages` pages at an address that is a multiple of
    /// `align` pages (a power of two), inside `within = (lo, hi)` when given
    /// (`lo <= address` and `address + npages * PAGE_SIZE <= hi`; any byte
    /// addresses). Returns the address (`None` when nothing fits) and the
    /// scavenged bytes taken, like [`PageAlloc::alloc_scav`]. With
    /// `align == 1` and no window it is `alloc_scav` (the walk below would
    /// give the same answer at about 1.7x the cost).
    ///
    /// Cost: one walk of the tree in address order from the best known lower
    /// bound, entering each entry that may hold `npages` free pages and
    /// checking each such chunk a word at a time (see the module docs).
    pub fn alloc_constrained(
        &mut self,
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    ) -> Result<(Option<u64>, u64)> {
        check_request(npages, align)?;
        if align == 1 && within.is_none() {
            return self.alloc_scav(npages);
        }
        let k = align.trailing_zeros();
        let Some(p) = self.find_constrained(npages, align, within)? else {
            return Ok((None, 0));
        };
        if npages == 1 && within.is_none() {
            // No free page below p lies at this alignment, nor at any
            // coarser class's, and p is now taken.
            for (c, &ck) in HINT_LOG_ALIGN.iter().enumerate() {
                if ck >= k {
                    self.aligned_hint[c] = self.aligned_hint[c].max(p + 1);
                }
            }
        }
        let lin = p << PAGE_SHIFT;
        let scav = self.take_free_range(lin, npages);
        Ok((Some(self.ly.unlin(lin)), scav << self.ly.page_shift))
    }

    /// The linearized first page `alloc_constrained` would take, changing
    /// nothing but bringing deferred summaries up to date. Arguments checked
    /// by the caller.
    pub(super) fn find_constrained(
        &mut self,
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    ) -> Result<Option<u64>> {
        // The hint class for this alignment: the largest not above it.
        let class = HINT_LOG_ALIGN
            .iter()
            .rposition(|&c| c <= align.trailing_zeros());
        // Any fit lies in a free run of npages or more, and no run that long
        // starts below the fit hint of npages's size class.
        let fit_from = self.fit_hint[super::allocfree::fit_class(npages)] << LOG_PALLOC_CHUNK_PAGES;
        for (from, to) in self.window_pages(within)?.into_iter().flatten() {
            let from = class.map_or(from, |c| from.max(self.aligned_hint[c]));
            let from = from.max(fit_from);
            if let Some(p) = self.first_fit_constrained(npages, align, from, to) {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    /// Claims exactly the `npages` pages at `addr` (page-aligned), which must
    /// all be grown and free; returns the scavenged bytes among them. An
    /// error changes nothing.
    ///
    /// Cost: a bitmap check of the pages, then one `update`: only the
    /// summaries on the path to those pages are read and written.
    pub fn alloc_at(&mut self, addr: u64, npages: u64) -> Result<u64> {
        let lin = self.check_pages(addr, npages)?;
        let p = lin >> PAGE_SHIFT;
        if let Some(u) = self.first_used_in(p, npages) {
            return Err(Error::NotFree {
                addr,
                npages,
                page: self.ly.unlin(u << PAGE_SHIFT),
            });
        }
        Ok(self.take_free_range(lin, npages) << self.ly.page_shift)
    }

    /// The window as linearized page intervals `[from, to)`, in search
    /// order: one, or two when the real window wraps past the top of the
    /// linearized space (amd64's kernel half).
    fn window_pages(&self, within: Option<(u64, u64)>) -> Result<[Option<(u64, u64)>; 2]> {
        let ly = &self.ly;
        let space_pages = 1u64 << (ly.address_bits - ly.page_shift);
        let Some((lo, hi)) = within else {
            return Ok([Some((0, space_pages)), None]);
        };
        if lo >= hi {
            return Err(Error::BadWindow { lo, hi });
        }
        // Real [lo, hi) in the layout's linearized bytes, clipped to the
        // space: pages whose first byte is at or after lo and whose last is
        // below hi.
        let space = 1u64 << ly.address_bits;
        let (u0, u1) = (
            lo.wrapping_add(ly.arena_base_offset),
            (hi - 1).wrapping_add(ly.arena_base_offset),
        );
        let ps = ly.page_size();
        let piece = |a: u64, b_incl: u64| -> Option<(u64, u64)> {
            let a = a.min(space);
            let b = b_incl.min(space - 1) + 1;
            let (from, to) = (a.div_ceil(ps), b / ps);
            (from < to).then_some((from, to))
        };
        Ok(if u0 <= u1 {
            [piece(u0, u1), None]
        } else {
            // Wraps: the low linearized piece comes first in search order.
            [piece(0, u1), piece(u0, u64::MAX)]
        })
    }

    /// The lowest page `a` in `[from, to - npages]` with `a` congruent to the
    /// real page 0 modulo `align` and pages `[a, a + npages)` free.
    fn first_fit_constrained(
        &mut self,
        npages: u64,
        align: u64,
        from: u64,
        to: u64,
    ) -> Option<u64> {
        if self.start == 0 {
            return None;
        }
        // Aligned means aligned as a real address; the linearizing offset is
        // a multiple of the page size, so work in linearized pages.
        let want = Want::new(
            npages,
            align,
            (self.ly.arena_base_offset >> self.ly.page_shift) & (align - 1),
        );
        let end = (self.end << LOG_PALLOC_CHUNK_PAGES).min(to);
        let mut from = from
            .max(self.start << LOG_PALLOC_CHUNK_PAGES)
            .max(self.search_addr >> PAGE_SHIFT);
        if from >= end {
            return None;
        }
        if npages == 1 {
            // One page: near the bound, the chunks' bitmaps answer faster
            // than the walk. (For more pages the walk's pruning by `max`
            // wins: a linear scan of the leaves measured 7% slower.)
            match self.first_aligned_free_page(&want, from, end) {
                Ok(p) => return p.filter(|&a| a < to),
                Err(next) => from = next,
            }
        }
        // The walk reads summaries above the leaves (the one-page search
        // above reads only leaves, which are always exact).
        self.refresh_summaries();
        let log0 = self.ly.level_log_pages[0];
        let mut carry = NO_CARRY;
        for i in (from >> log0)..=((end - 1) >> log0) {
            carry = self.scan(0, i, &want, from, carry);
            if let Scan::Found(a) = carry {
                return (a.checked_add(npages)? <= to).then_some(a);
            }
        }
        None
    }

    /// The first free page at or after `from` and below `end` at the
    /// alignment of `want` (`want.n == 1`), read from the chunk bitmaps a
    /// word at a time, skipping chunks whose leaf summary says full.
    ///
    /// Why not the walk: for one page nearly every chunk's summary fits, so
    /// the walk would enter each chunk anyway, paying its descent on top.
    /// The summaries still win over long stretches of full or ungrown
    /// chunks, so after `SCAN_CHUNKS` chunks without a hit this gives up:
    /// `Err(page)` says no aligned free page lies below `page`, where the
    /// walk takes over.
    fn first_aligned_free_page(
        &self,
        want: &Want,
        from: u64,
        end: u64,
    ) -> std::result::Result<Option<u64>, u64> {
        debug_assert_eq!(want.n, 1);
        let leaf = self.ly.leaf();
        let first = from >> LOG_PALLOC_CHUNK_PAGES;
        let last = (first + SCAN_CHUNKS).min(end.div_ceil(PALLOC_CHUNK_PAGES));
        // The grown ranges from the one holding (or following) `first`: the
        // gaps between them are skipped whole.
        let ranges = self.grown_ranges();
        let from_range = ranges.partition_point(|r| r.end <= first);
        for r in &ranges[from_range..] {
            for ci in r.start.max(first)..r.end.min(last) {
                if self.sum(leaf, ci) == crate::PallocSum::FULL {
                    continue;
                }
                let base = ci << LOG_PALLOC_CHUNK_PAGES;
                let bits = &self.data(ci).bits;
                let mask = AlignedMask::new(base, want);
                let lo = from.saturating_sub(base);
                let w0 = (lo / 64) as usize;
                // The first word from `from` on, then whole words.
                let mut hit = !bits.0[w0] & mask.word(w0) & (u64::MAX << (lo % 64));
                let mut w = w0;
                while hit == 0 && w + 1 < WORDS {
                    w += 1;
                    hit = !bits.0[w] & mask.word(w);
                }
                if hit != 0 {
                    let p = base + w as u64 * 64 + u64::from(hit.trailing_zeros());
                    return Ok((p < end).then_some(p));
                }
            }
            if r.end >= last {
                break;
            }
        }
        if last << LOG_PALLOC_CHUNK_PAGES >= end {
            return Ok(None);
        }
        Err(last << LOG_PALLOC_CHUNK_PAGES)
    }

    /// The first page in `[p, p + n)` (linearized) that is in use or not
    /// grown, if any.
    pub(super) fn first_used_in(&self, p: u64, n: u64) -> Option<u64> {
        let mut p = p;
        let end = p + n;
        while p < end {
            let ci = p >> LOG_PALLOC_CHUNK_PAGES;
            if !self.is_grown(ci) {
                return Some(p);
            }
            let i = p % PALLOC_CHUNK_PAGES;
            let k = (PALLOC_CHUNK_PAGES - i).min(end - p);
            if let Some((j, _)) = self.data(ci).bits.next_run(i, true) {
                if j < i + k {
                    return Some((ci << LOG_PALLOC_CHUNK_PAGES) + j);
                }
            }
            p += k;
        }
        None
    }

    /// Scans summary `i` of level `l` for the first run of free pages at or
    /// after page `from` that holds an aligned fit, continuing the run
    /// `carry` that ends where this entry begins.
    fn scan(&self, l: usize, i: u64, want: &Want, from: u64, carry: Scan) -> Scan {
        let leaf = self.ly.leaf();
        self.scan_entry(l, i, want, from, carry, |cstart, clen| {
            let bits = self.ly.level_bits[l + 1];
            let mut c = Scan::Carry {
                start: cstart,
                len: clen,
            };
            for child in (i << bits)..((i + 1) << bits) {
                c = if l + 1 == leaf {
                    // The leaves of a block in one loop, not one call each.
                    self.scan_entry(leaf, child, want, from, c, |_, _| unreachable!())
                } else {
                    self.scan(l + 1, child, want, from, c)
                };
                if let Scan::Found(_) = c {
                    break;
                }
            }
            c
        })
    }

    /// One entry of [`PageAlloc::scan`]: its summary decides, or at a leaf
    /// its bitmap, or `descend(carried start, carried length)` scans its
    /// children (never called at the leaf level).
    #[inline(always)]
    fn scan_entry(
        &self,
        l: usize,
        i: u64,
        want: &Want,
        from: u64,
        carry: Scan,
        descend: impl FnOnce(u64, u64) -> Scan,
    ) -> Scan {
        let Scan::Carry {
            start: cstart,
            len: clen,
        } = carry
        else {
            return carry;
        };
        let log = self.ly.level_log_pages[l];
        let (base, size) = (i << log, 1u64 << log);
        if base + size <= from {
            return NO_CARRY;
        }
        let (s, m, e) = self.sum_fmt.unpack(self.sum(l, i));
        if base >= from {
            // The carried run, continued through this entry's start.
            let rs = if clen > 0 { cstart } else { base };
            if let Some(a) = want.fit(rs, rs + clen + s) {
                return Scan::Found(a);
            }
            if s == size {
                return Scan::Carry {
                    start: rs,
                    len: clen + size,
                };
            }
            if m < want.n {
                return Scan::Carry {
                    start: base + size - e,
                    len: e,
                };
            }
        } else if m < want.n {
            // Holds the bound but no run of n: only its free end (the part
            // at or after the bound) may start one.
            let start = (base + size - e).max(from);
            return Scan::Carry {
                start,
                len: base + size - start,
            };
        }
        // A fit may lie inside: descend.
        if l == self.ly.leaf() {
            return self.scan_chunk(i, want, from.saturating_sub(base), (cstart, clen), e);
        }
        descend(cstart, clen)
    }

    /// The leaf case of [`PageAlloc::scan`]: the first aligned fit in chunk
    /// `ci` from page `fp` on, the first run continuing the carried one when
    /// it starts at page 0; else the free run at the chunk's end, to carry.
    ///
    /// A word at a time rather than a run at a time: the pages where `n`
    /// free pages begin are the free bitmap ANDed with itself shifted by 1,
    /// 2, 4, ... pages (about log2 n rounds of 8 words), then masked with
    /// the aligned positions; the lowest set bit is the answer. A fit that
    /// runs into the next chunk can only start in the chunk's last free run,
    /// after every fit inside the chunk, so carrying that run loses nothing.
    fn scan_chunk(&self, ci: u64, want: &Want, fp: u64, carry: (u64, u64), e: u64) -> Scan {
        let (cstart, clen) = carry;
        let base = ci << LOG_PALLOC_CHUNK_PAGES;
        let bits = &self.data(ci).bits;
        let mut floor = fp;
        if clen > 0 && fp == 0 {
            if let Some((0, len)) = bits.next_run(0, false) {
                // The carried run goes on through this chunk's first pages.
                let run = clen + len;
                if let Some(a) = want.fit(cstart, cstart + run) {
                    return Scan::Found(a);
                }
                if len == PALLOC_CHUNK_PAGES {
                    return Scan::Carry {
                        start: cstart,
                        len: run,
                    };
                }
                // No later page of that run can start a fit either.
                floor = len;
            }
        }
        if want.n <= PALLOC_CHUNK_PAGES {
            // Free pages at or after `floor`, then zeros (read by the
            // shifts past the chunk's end).
            let mut starts = [0u64; 2 * WORDS];
            for (w, x) in starts.iter_mut().take(WORDS).enumerate() {
                *x = !bits.0[w];
            }
            let fw = (floor / 64) as usize;
            for x in starts.iter_mut().take(fw) {
                *x = 0;
            }
            if fw < WORDS {
                starts[fw] &= u64::MAX << (floor % 64);
            }
            let mask = AlignedMask::new(base, want);
            let aligned = |s: &[u64; 2 * WORDS]| {
                (0..WORDS).fold(0, |acc, w| acc | (s[w] & mask.word(w))) != 0
            };
            // starts[p] = pages [p, p + k) are all free, for k growing to n;
            // stop as soon as no aligned page still starts such a run.
            let mut k = 1;
            while k < want.n && aligned(&starts) {
                let sh = k.min(want.n - k);
                and_shifted(&mut starts, sh);
                k += sh;
            }
            for (w, &x) in starts.iter().take(WORDS).enumerate() {
                let hit = x & mask.word(w);
                if hit != 0 {
                    return Scan::Found(base + w as u64 * 64 + hit.trailing_zeros() as u64);
                }
            }
        }
        // No fit inside: carry the free run that reaches the chunk's end
        // (its leaf summary's `end`), from `floor` on.
        let start = (PALLOC_CHUNK_PAGES - e).max(floor);
        Scan::Carry {
            start: base + start,
            len: PALLOC_CHUNK_PAGES - start,
        }
    }
}

/// `x &= x >> sh` over a chunk's 512 bits, in place (bit p of the shift is
/// bit `p + sh` of `x`; past the chunk's end, zeros). `sh < 512`. `x` holds
/// the chunk's words and then as many zeros, which the shift reads past
/// the end.
///
/// Branch-free and without bounds checks; in place because word `w` only
/// reads words at or above `w`, which ascending order has not yet written.
/// The high word's part is shifted in two steps so that a whole-word shift
/// (`sh % 64 == 0`) needs no special case.
#[inline]
fn and_shifted(x: &mut [u64; 2 * WORDS], sh: u64) {
    debug_assert!(sh < PALLOC_CHUNK_PAGES);
    debug_assert!(x[WORDS..].iter().all(|&z| z == 0));
    let (ws, bs) = ((sh / 64) as usize % WORDS, (sh % 64) as u32);
    for w in 0..WORDS {
        let (lo, hi) = (x[w + ws], x[(w + ws + 1) % (2 * WORDS)]);
        x[w] &= (lo >> bs) | ((hi << 1) << (63 - bs));
    }
}

/// The pages of the chunk starting at engine page `base` whose index is
/// congruent to `want.phase` modulo `want.align`, a word at a time.
struct AlignedMask {
    /// The first such page in the chunk (it may lie past the chunk's end).
    first: u64,
    align: u64,
    /// For alignments up to 64 pages: the pattern every word repeats.
    pattern: u64,
}

impl AlignedMask {
    #[inline]
    fn new(base: u64, want: &Want) -> AlignedMask {
        AlignedMask {
            first: want.phase.wrapping_sub(base) & (want.align - 1),
            align: want.align,
            pattern: want.pattern,
        }
    }

    #[inline(always)]
    fn word(&self, w: usize) -> u64 {
        if self.align <= 64 {
            return self.pattern;
        }
        // One page every `align` (a multiple of 64): this word holds one iff
        // its first page is `first`'s word start plus a multiple of align.
        let lo = w as u64 * 64;
        let first_word = self.first & !63;
        if lo >= first_word && (lo - first_word) % self.align == 0 {
            1 << (self.first % 64)
        } else {
            0
        }
    }
}

/// How many chunks the searches near the bound read before the walk takes
/// over (see `first_aligned_free_page`).
const SCAN_CHUNKS: u64 = 64;

/// A constrained request: `n` pages at a page congruent to `phase` modulo
/// `align`.
struct Want {
    n: u64,
    align: u64,
    phase: u64,
    /// For alignments up to 64 pages, the aligned pages of any 64-page word
    /// of a chunk (chunks start at multiples of 512 pages, so every word
    /// has the same ones).
    pattern: u64,
}

impl Want {
    fn new(n: u64, align: u64, phase: u64) -> Want {
        let pattern = match align {
            64 => 1 << phase,
            // One bit every `align` bits: all ones divided by `align` ones
            // repeats `0...01` with that period.
            a if a < 64 => (u64::MAX / ((1 << a) - 1)) << phase,
            _ => 0,
        };
        Want {
            n,
            align,
            phase,
            pattern,
        }
    }

    /// The lowest aligned start of `n` pages inside the free run
    /// `[start, end)`, if there is one.
    #[inline]
    fn fit(&self, start: u64, end: u64) -> Option<u64> {
        let a = start.checked_add(self.phase.wrapping_sub(start) & (self.align - 1))?;
        (a.checked_add(self.n)? <= end).then_some(a)
    }
}
