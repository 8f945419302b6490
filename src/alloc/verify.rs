//! `verify()`: every invariant of the allocator checked from the bitmaps,
//! one named check each.

use super::*;

impl PageAlloc {
    /// Go's test `checkPageAlloc`'s missing half ("TODO: Verify summaries
    /// too?"): recomputes every summary covering the heap from the bitmaps and
    /// checks the other invariants, reporting the first violation.
    ///
    /// Cost: O(grown chunks) bitmap summaries plus one block merge per
    /// committed parent summary; meant for tests and debugging.
    pub fn verify(&self) -> Result<()> {
        if self.grown.ranges().is_empty() {
            return self.check_empty();
        }
        self.check_bounds()?;
        self.check_leaves()?;
        self.check_scavenged()?;
        self.check_parents()?;
        self.check_search_addr()?;
        self.check_aligned_hints()?;
        self.check_fit_hints()
    }

    /// The fit hints grow with the class, and no run of `2^k` free pages
    /// (across chunks, inside a grown range) starts in a chunk below
    /// `fit_hint[k]`.
    pub(super) fn check_fit_hints(&self) -> Result<()> {
        if self.fit_hint[0] != 0 || self.fit_hint.windows(2).any(|w| w[0] > w[1]) {
            return verify_failed(format!("fit hints out of order: {:?}", self.fit_hint));
        }
        let check = |from: u64, len: u64| -> Result<()> {
            let k = allocfree::fit_class(len);
            if k > 0 && from < self.fit_hint[k] {
                return verify_failed(format!(
                    "a run of {len} free pages starts in chunk {from:#x}, below the 2^{k}-page hint {:#x}",
                    self.fit_hint[k]
                ));
            }
            Ok(())
        };
        for r in self.grown.ranges() {
            // The free run open at the top of the previous chunk: its start
            // chunk and length.
            let (mut from, mut len) = (r.start, 0u64);
            for ci in r.clone() {
                let bits = self.chunk(ci);
                let mut p = 0;
                while let Some((i, n)) = bits.next_run(p, false) {
                    if i == 0 && len > 0 {
                        len += n;
                    } else {
                        check(from, len)?;
                        (from, len) = (ci, n);
                    }
                    p = i + n;
                }
                if bits.get(PALLOC_CHUNK_PAGES - 1) {
                    check(from, len)?;
                    len = 0;
                }
            }
            check(from, len)?;
        }
        Ok(())
    }

    /// No free page lies below an aligned hint at the hint's alignment.
    pub(super) fn check_aligned_hints(&self) -> Result<()> {
        let off = self.ly.arena_base_offset >> self.ly.page_shift;
        for ci in self.grown_chunks() {
            let base = ci * PALLOC_CHUNK_PAGES;
            let bits = self.chunk(ci);
            for (c, &k) in HINT_LOG_ALIGN.iter().enumerate() {
                let hint = self.aligned_hint[c];
                if base >= hint {
                    continue;
                }
                let step = 1u64 << k;
                let mut p = base + (off.wrapping_sub(base) & (step - 1));
                while p < (base + PALLOC_CHUNK_PAGES).min(hint) {
                    if !bits.get(p - base) {
                        return verify_failed(format!(
                            "page {:#x} is free at a 2^{k}-page alignment below that hint ({:#x})",
                            self.ly.unlin(p << PAGE_SHIFT),
                            self.ly.unlin(hint << PAGE_SHIFT)
                        ));
                    }
                    p += step;
                }
            }
        }
        Ok(())
    }

    /// Nothing grown: no bounds, and the search address says "exhausted".
    pub(super) fn check_empty(&self) -> Result<()> {
        if (self.start, self.end) != (0, 0) || self.search_addr != self.ly.max_search_lin {
            return verify_failed(format!("no chunk grown but bounds are {:?}", self.bounds()));
        }
        Ok(())
    }

    /// `[start, end)` is the hull of the grown ranges, which are sorted,
    /// disjoint and not adjacent.
    pub(super) fn check_bounds(&self) -> Result<()> {
        let g = self.grown.ranges();
        let (first, last) = (&g[0], &g[g.len() - 1]);
        if (first.start, last.end) != (self.start, self.end) {
            return verify_failed(format!(
                "bounds [{:#x}, {:#x}) disagree with grown ranges {:?}",
                self.start, self.end, g
            ));
        }
        for w in g.windows(2) {
            if w[0].end >= w[1].start {
                return verify_failed(format!("grown ranges {w:?} overlap or touch"));
            }
        }
        Ok(())
    }

    /// Every leaf in the committed blocks around each grown range: a grown
    /// chunk's leaf summarizes its bitmap; an ungrown one is "full" over an
    /// empty bitmap.
    pub(super) fn check_leaves(&self) -> Result<()> {
        let (leaf, sf) = (self.ly.leaf(), self.sum_fmt);
        for r in self.grown.ranges() {
            let (lo, hi) = self.ly.block_align_summary_range(leaf, r.start, r.end);
            for c in lo..hi {
                let got = self.sum(leaf, c);
                if self.is_grown(c) {
                    let want = self.chunk(c).summarize(sf);
                    if got != want {
                        return verify_failed(format!(
                            "summary[{leaf}][{c:#x}] = {:?}, bitmap says {:?}",
                            sf.unpack(got),
                            sf.unpack(want)
                        ));
                    }
                } else if got != PallocSum::FULL {
                    return verify_failed(format!(
                        "summary[{leaf}][{c:#x}] of an ungrown chunk is {:?}, want (0, 0, 0)",
                        sf.unpack(got)
                    ));
                } else if self.chunk_committed(c) && *self.data(c) != PallocData::default() {
                    return verify_failed(format!("bitmaps of ungrown chunk {c:#x} are not empty"));
                }
            }
        }
        Ok(())
    }

    /// Under Go 1.19 no page is both in use and scavenged (Go 1.26's
    /// padding pages are both). Go 1.26's index counts exactly the pages in
    /// use of every grown chunk, and a full chunk never says "has free".
    pub(super) fn check_scavenged(&self) -> Result<()> {
        if let Some(ix) = self.scav.v126() {
            for c in self.grown_chunks() {
                let sc = ix.get(c);
                let used = self.chunk(c).pages_in_use();
                if u64::from(sc.in_use) != used {
                    return verify_failed(format!(
                        "scavenge index: chunk {c:#x} counts {} pages in use, its bitmap {used}",
                        sc.in_use
                    ));
                }
                if used == PALLOC_CHUNK_PAGES && sc.has_free() {
                    return verify_failed(format!("scavenge index: full chunk {c:#x} has free"));
                }
            }
            return Ok(());
        }
        for c in self.grown_chunks() {
            let d = self.data(c);
            if let Some((w, (b, s))) = (d.bits.0.iter().zip(&d.scavenged.0))
                .enumerate()
                .find(|(_, (b, s))| *b & *s != 0)
            {
                let p = w as u64 * 64 + (b & s).trailing_zeros() as u64;
                return verify_failed(format!(
                    "page {:#x} is both in use and scavenged",
                    self.ly.page_base(c, p)
                ));
            }
        }
        Ok(())
    }

    /// Every parent covering a grown range is the merge of its children.
    pub(super) fn check_parents(&self) -> Result<()> {
        let (ly, sf) = (&self.ly, self.sum_fmt);
        // Paths waiting for the walk up are checked as they will be.
        let exact = self.exact_view();
        for l in (0..ly.leaf()).rev() {
            for r in self.grown.ranges() {
                let (lo, hi) = ly.addrs_to_summary_range(
                    l,
                    r.start << LOG_PALLOC_CHUNK_BYTES,
                    r.end << LOG_PALLOC_CHUNK_BYTES,
                );
                for i in lo..hi {
                    let want = sf.merge_block(&exact.children(l, i), ly.level_log_pages[l + 1]);
                    let got = exact.get(l, i);
                    if got != want {
                        return verify_failed(format!(
                            "summary[{l}][{i:#x}] = {:?}, children merge to {:?}",
                            sf.unpack(got),
                            sf.unpack(want)
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The search address lies on the heap and no grown page below it is free.
    pub(super) fn check_search_addr(&self) -> Result<()> {
        if !self.search_addr_on_heap() {
            return verify_failed(format!(
                "search_addr {:#x} is not in a grown chunk",
                self.search_addr()
            ));
        }
        let exhausted = self.search_addr == self.ly.max_search_lin;
        let sc = self.search_addr >> LOG_PALLOC_CHUNK_BYTES;
        for c in self.grown_chunks().take_while(|&c| c <= sc) {
            let below = if c < sc || exhausted {
                PALLOC_CHUNK_PAGES
            } else {
                chunk_page_index(self.search_addr)
            };
            if let Some(p) = (below > 0)
                .then(|| self.chunk(c).first_free_in(0, below))
                .flatten()
            {
                return verify_failed(format!(
                    "page {:#x} is free but below search_addr {:#x}",
                    self.ly.page_base(c, p),
                    self.search_addr()
                ));
            }
        }
        Ok(())
    }
}

pub(super) fn verify_failed(msg: String) -> Result<()> {
    Err(Error::Verify(msg))
}
