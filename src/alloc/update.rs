//! Bringing summaries up to date after a change: Go's `update`, with the
//! walk up deferred and batched (`stale`, `refresh_summaries`), and the
//! `&self` view of the summaries as they will be.

use super::*;

/// How many leaf blocks may wait for the walk up before it is done.
pub(crate) const STALE_CAP: usize = 32;

/// A change spanning fewer chunks than this defers its walk up as a
/// one-chunk change does; a longer one (a grow-sized free, say) walks up at
/// once, its blocks merged level by level.
const DEFER_CHUNKS: u64 = 16;

/// An entry whose children changed: `idx` at its level; when only one child
/// changed (`single`), which one and its summary before the first change,
/// so that the parent can often be told without a merge (`max_only_parent`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stale {
    idx: u64,
    child: u64,
    was: PallocSum,
    single: bool,
}

/// Records in `list` that child `child` of entry `child >> 3` changed from
/// `was`.
#[inline(always)]
pub(super) fn note_change(list: &mut Vec<Stale>, child: u64, was: PallocSum) {
    let idx = child >> SUMMARY_LEVEL_BITS;
    // The same block again is the common case (a chunk filling up, a page
    // allocated and freed): look at the last entry first.
    let hit = match list.last_mut() {
        Some(e) if e.idx == idx => Some(e),
        _ => list.iter_mut().find(|e| e.idx == idx),
    };
    match hit {
        Some(e) => e.single &= e.child == child,
        None => list.push(Stale {
            idx,
            child,
            was,
            single: true,
        }),
    }
}

impl PageAlloc {
    // ----- summaries --------------------------------------------------------

    /// Go's `update`: brings the summaries up to date after the bitmaps of
    /// pages `[base, base + npages*PAGE_SIZE)` (linearized) changed.
    ///
    /// Cost: re-summarizes each changed chunk (the two end chunks of a
    /// contiguous change; interior ones are known full or free), then at each
    /// level above merges the blocks of 8 covering the range, stopping at the
    /// first level where no parent changed. For a change inside one chunk:
    /// one leaf, and the walk up is deferred (`mark_stale`): one list entry,
    /// its merges done later by `refresh_summaries`, once for all the changes
    /// in that block of leaves since.
    ///
    /// `contig` says the change was one contiguous alloc (`alloc`) or free,
    /// so chunks strictly inside the range are entirely in use or free and
    /// need no summarizing. A change that freed pages (a free, a grow, a
    /// flush) also lowers the fit hints for the runs it may have made.
    pub(super) fn update(&mut self, base: u64, npages: u64, contig: bool, alloc: bool) {
        let leaf = self.ly.leaf();
        let sf = self.sum_fmt;
        // Inclusive last byte.
        let limit = base + npages * PAGE_SIZE - 1;
        let (sc, ec) = (
            base >> LOG_PALLOC_CHUNK_BYTES,
            limit >> LOG_PALLOC_CHUNK_BYTES,
        );

        if sc == ec {
            let i = chunk_page_index(base);
            if !contig {
                // Not one contiguous change (a cache flush, say): rescan.
                let y = self.chunk(sc).summarize(sf);
                self.set_leaf(sc, self.sum(leaf, sc), y);
                if !alloc {
                    self.lower_fit_hints(sc.saturating_sub(1), u64::MAX);
                }
            } else if alloc {
                self.update_chunk_alloc(sc, i, npages, self.sum(leaf, sc), PALLOC_CHUNK_PAGES);
            } else {
                self.update_chunk_free(sc, i, npages);
            }
            return;
        }
        if !alloc {
            // Free runs of any length, the first of which may begin in the
            // chunk below.
            self.lower_fit_hints(sc.saturating_sub(1), u64::MAX);
        }
        // A few chunks (a large span) defer the walk up as a one-chunk
        // change does: each leaf changed is marked stale, and the merges are
        // shared with the changes around it. More (a grow-sized free, say)
        // walk up at once, from summaries brought up to date first.
        let defer = ec - sc < DEFER_CHUNKS;
        if !defer {
            self.refresh_summaries();
        }
        if contig {
            // Chunks strictly inside are all in use or all free.
            let whole = if alloc {
                PallocSum::FULL
            } else {
                sf.free_chunk_sum()
            };
            self.put_leaf(sc, self.chunk(sc).summarize(sf), defer);
            for c in sc + 1..ec {
                self.put_leaf(c, whole, defer);
            }
            self.put_leaf(ec, self.chunk(ec).summarize(sf), defer);
        } else {
            for c in sc..=ec {
                self.put_leaf(c, self.chunk(c).summarize(sf), defer);
            }
        }
        if defer {
            return;
        }

        // Walk up the tree, recomputing each parent from its block of
        // children, and stop at the first level where nothing changed.
        for l in (0..leaf).rev() {
            let log_max_pages = self.ly.level_log_pages[l + 1];
            let (lo, hi) = self.ly.addrs_to_summary_range(l, base, limit + 1);
            let mut changed = false;
            for i in lo..hi {
                let sum = sf.merge_block(&self.children(l, i), log_max_pages);
                if self.sum(l, i) != sum {
                    changed = true;
                    self.set_sum(l, i, sum);
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Writes chunk `c`'s new leaf `y` in a change across chunks: marked
    /// stale when the walk up is deferred (`defer`), else for the walk that
    /// follows to read.
    #[inline(always)]
    fn put_leaf(&mut self, c: u64, y: PallocSum, defer: bool) {
        let leaf = self.ly.leaf();
        if !defer {
            self.set_sum(leaf, c, y);
            return;
        }
        let old = self.sum(leaf, c);
        if old != y {
            self.set_sum(leaf, c, y);
            self.mark_stale(c, old);
        }
    }

    /// `update` after pages `[i, i+n)` of chunk `ci` were taken in one
    /// contiguous alloc, from its leaf `old` before; `below` bounds the
    /// free runs below the run they came from (see [`leaf::after_alloc`]).
    #[inline(always)]
    pub(super) fn update_chunk_alloc(
        &mut self,
        ci: u64,
        i: u64,
        n: u64,
        old: PallocSum,
        below: u64,
    ) {
        let sf = self.sum_fmt;
        let (s, m, e) = leaf::after_alloc(self.chunk(ci), i, n, sf.unpack_below_root(old), below);
        self.set_leaf(ci, old, sf.pack_leaf(s, m, e));
    }

    /// `update` after pages `[i, i+n)` of chunk `ci` were freed; the fit
    /// hints come down for the merged free run around them.
    #[inline(always)]
    pub(super) fn update_chunk_free(&mut self, ci: u64, i: u64, n: u64) {
        let sf = self.sum_fmt;
        let old = self.sum(self.ly.leaf(), ci);
        let ((s, m, e), (a, b)) = leaf::after_free(self.chunk(ci), i, n, sf.unpack_below_root(old));
        self.set_leaf(ci, old, sf.pack_leaf(s, m, e));
        // The highest hint below the run's chunk leaves every hint there:
        // the common case, one comparison. (At the chunk itself, the run may
        // begin in the one below: see `lower_fit_hints_freed`.)
        if ci <= self.fit_hint[FIT_CLASSES - 1] {
            self.lower_fit_hints_freed(ci, a, b);
        }
    }

    /// The fit hints after a free in chunk `ci` made the free run `[a, b)`
    /// of its pages. A run that reaches the chunk's bottom may have begun in
    /// the chunk below, one that reaches its top may go on into the next:
    /// how long either is, only the neighbours know. (Were the chunk below
    /// all free, a run of 512 pages or more began lower still, and every
    /// hint is at or below its start already.)
    #[inline(never)]
    fn lower_fit_hints_freed(&mut self, ci: u64, a: u64, b: u64) {
        let from = if a == 0 { ci.saturating_sub(1) } else { ci };
        let len = if a == 0 || b == PALLOC_CHUNK_PAGES {
            u64::MAX
        } else {
            b - a
        };
        self.lower_fit_hints(from, len);
    }

    /// Writes chunk `ci`'s new leaf `y` (it was `old`); when it changed,
    /// the walk up waits: the next reader above the leaves does it, once
    /// for all the changes since (see `stale`).
    #[inline(always)]
    fn set_leaf(&mut self, ci: u64, old: PallocSum, y: PallocSum) {
        debug_assert_eq!(
            self.sum_fmt.unpack(y),
            self.sum_fmt.unpack(self.chunk(ci).summarize(self.sum_fmt)),
            "leaf of chunk {ci:#x} disagrees with a rescan"
        );
        if old != y {
            self.set_sum(self.ly.leaf(), ci, y);
            self.mark_stale(ci, old);
        }
    }

    /// Notes that leaf `ci` changed from `was`: its parent joins `stale`
    /// (when that overfills the list, the walk up is done at once).
    #[inline(always)]
    pub(super) fn mark_stale(&mut self, ci: u64, was: PallocSum) {
        if self.ly.leaf() == 0 {
            return;
        }
        note_change(&mut self.stale, ci, was);
        if self.stale.len() > STALE_CAP {
            self.refresh_summaries();
        }
    }

    /// Go's walk up in `update`, for every change since the last one: each
    /// stale entry is merged from its children, and each parent whose child
    /// changed is merged in turn, level by level; a parent none of whose
    /// children changed is left alone. Afterwards every summary is exact.
    ///
    /// Cost: one block merge per stale entry, plus one per changed parent
    /// (at most one per level per stale entry; fewer where the changes
    /// share ancestors or cancel out).
    pub(super) fn refresh_summaries(&mut self) {
        if self.stale.is_empty() {
            return;
        }
        let mut level = std::mem::take(&mut self.stale);
        let mut next = std::mem::take(&mut self.stale_next);
        propagate(self, &mut level, &mut next);
        // Keep the lists' allocations.
        level.clear();
        (self.stale, self.stale_next) = (level, next);
    }

    /// The summary at level `l`, index `i` as it will be once brought up to
    /// date, without writing: for readers that only have `&self`.
    pub(super) fn exact_sum(&self, l: usize, i: u64) -> PallocSum {
        if self.stale.is_empty() || l == self.ly.leaf() {
            return self.sum(l, i);
        }
        self.exact_view().get(l, i)
    }

    /// Every summary as it will be once brought up to date (the walk up
    /// done in a side list; O(stale entries) merges), for `&self` readers.
    pub(super) fn exact_view(&self) -> Overlay<'_> {
        let mut overlay = Overlay {
            pa: self,
            sums: Vec::new(),
        };
        if !self.stale.is_empty() {
            propagate(&mut overlay, &mut self.stale.clone(), &mut Vec::new());
        }
        overlay
    }
}

/// Where `propagate` reads and writes summaries: the allocator's own, or
/// an overlay over them.
pub(super) trait SumStore {
    fn pa(&self) -> &PageAlloc;
    fn get(&self, l: usize, i: u64) -> PallocSum;
    fn set(&mut self, l: usize, i: u64, v: PallocSum);

    /// The 8 children of entry `i` at level `l` (`l + 1` must exist).
    fn children(&self, l: usize, i: u64) -> [PallocSum; BLOCK] {
        let first = i << SUMMARY_LEVEL_BITS;
        std::array::from_fn(|k| self.get(l + 1, first + k as u64))
    }
}

impl SumStore for PageAlloc {
    fn pa(&self) -> &PageAlloc {
        self
    }
    #[inline]
    fn get(&self, l: usize, i: u64) -> PallocSum {
        self.sum(l, i)
    }
    #[inline]
    fn children(&self, l: usize, i: u64) -> [PallocSum; BLOCK] {
        PageAlloc::children(self, l, i)
    }
    #[inline]
    fn set(&mut self, l: usize, i: u64, v: PallocSum) {
        self.set_sum(l, i, v)
    }
}

/// Summaries brought up to date in a side list, over an allocator that is
/// not written (see `PageAlloc::exact_sum`).
pub(super) struct Overlay<'a> {
    pa: &'a PageAlloc,
    sums: Vec<((usize, u64), PallocSum)>,
}

impl SumStore for Overlay<'_> {
    fn pa(&self) -> &PageAlloc {
        self.pa
    }
    fn get(&self, l: usize, i: u64) -> PallocSum {
        match self.sums.iter().find(|(k, _)| *k == (l, i)) {
            Some(&(_, v)) => v,
            None => self.pa.sum(l, i),
        }
    }
    fn set(&mut self, l: usize, i: u64, v: PallocSum) {
        match self.sums.iter_mut().find(|(k, _)| *k == (l, i)) {
            Some((_, old)) => *old = v,
            None => self.sums.push(((l, i), v)),
        }
    }
}

/// The walk up of `refresh_summaries` over `store`, from the entries of
/// level `leaf - 1` in `level` (which it uses as scratch, with `next`).
pub(super) fn propagate<S: SumStore>(store: &mut S, level: &mut Vec<Stale>, next: &mut Vec<Stale>) {
    let (ly, sf) = (store.pa().ly, store.pa().sum_fmt);
    next.clear();
    for l in (0..ly.leaf()).rev() {
        let log_child = ly.level_log_pages[l + 1];
        for e in level.iter() {
            let i = e.idx;
            let parent = store.get(l, i);
            let merge = |store: &S| sf.merge_block(&store.children(l, i), log_child);
            let sum = if e.single {
                // One child changed: often the parent can be told from it.
                let now = store.get(l + 1, e.child);
                if now == e.was {
                    // Changed and changed back (a page allocated and freed).
                    continue;
                }
                match sf
                    .same_ends(e.was, now)
                    .then(|| max_only_parent(sf, parent, e.was, now))
                {
                    Some(MaxOnly::Unchanged) => parent,
                    Some(MaxOnly::Becomes(v)) => v,
                    _ => merge(store),
                }
            } else {
                merge(store)
            };
            debug_assert_eq!(sum, merge(store), "summary[{l}][{i:#x}] shortcut");
            if parent != sum {
                store.set(l, i, sum);
                if l > 0 {
                    note_change(next, i, parent);
                }
            }
        }
        std::mem::swap(level, next);
        next.clear();
        if level.is_empty() {
            break;
        }
    }
}

/// What a parent summary becomes when one child changed from `was` to `now`,
/// if that can be told without reading the other children.
pub(super) enum MaxOnly {
    /// The parent stays as it is.
    Unchanged,
    /// The parent becomes this.
    Becomes(PallocSum),
    /// Nothing can be told: merge the block.
    Merge,
}

/// The one-child shortcut of `propagate`: when a block's only changed
/// child kept its `start` and `end`, so did every run that crosses into it
/// and the parent's `start` and `end` (they read only children's ends and
/// whether a child is wholly free, and a child with an unchanged
/// `start < len` was and stays partly used; with `start == len` nothing
/// changed at all). Only the child's `max` moved, and the parent's `max` is
/// the largest of that and of candidates that did not move:
///
/// - `max` grew: the parent's becomes `max(parent.max, now.max)`;
/// - `max` shrank but was below the parent's: another candidate holds the
///   parent's `max`, which stays;
/// - `max` shrank from the parent's own value: the block must be merged to
///   find the runner-up.
///
/// Most frees and allocations inside a chunk move only its `max` (or
/// nothing), so most of these parents cost one summary read instead of a
/// merge of 8.
#[inline(always)]
pub(super) fn max_only_parent(
    sf: SumFormat,
    parent: PallocSum,
    was: PallocSum,
    now: PallocSum,
) -> MaxOnly {
    debug_assert!(sf.same_ends(was, now));
    let (wm, nm) = (sf.unpack_below_root(was).1, sf.unpack_below_root(now).1);
    let (ps, pm, pe) = sf.unpack(parent);
    debug_assert!(wm <= pm, "child max {wm} above its parent's {pm}");
    if nm >= wm {
        if nm <= pm {
            MaxOnly::Unchanged
        } else {
            MaxOnly::Becomes(sf.pack(ps, nm, pe))
        }
    } else if wm < pm {
        MaxOnly::Unchanged
    } else {
        MaxOnly::Merge
    }
}
