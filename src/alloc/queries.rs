//! The questions an allocator is asked, answered exactly and from the
//! summaries: would a request fit, where would it go, what is the largest
//! request that fits, and why did one fail.
//!
//! Every answer is what the allocating call would do: `would_fit(n, a, w)`
//! is true exactly when `alloc_constrained(n, a, w)` would return an
//! address, `first_fit` is that address, and `largest_free(a, w)` is the
//! largest `n` that would fit. None of them changes the allocator (they
//! bring deferred summary updates up to date, which no answer depends on).

use std::fmt;

use super::PageAlloc;
use crate::arch::PAGE_SHIFT;
use crate::error::{Error, Result};

/// Extents as `(address, npages)`, in the order they were taken.
pub type Extents = Vec<(u64, u64)>;

/// Why an allocation found no room: the request, what was free and the
/// largest request of the same alignment and window that would have fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    pub npages: u64,
    pub align: u64,
    pub within: Option<(u64, u64)>,
    /// Free pages in the whole allocator (grown and not in use).
    pub free_pages: u64,
    /// The largest `npages` that fits at `align` inside `within` now.
    pub largest_fit: u64,
}

impl fmt::Display for AllocFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no room for {} page(s)", self.npages)?;
        if self.align > 1 {
            write!(f, " aligned to {} pages", self.align)?;
        }
        if let Some((lo, hi)) = self.within {
            write!(f, " inside [{lo:#x}, {hi:#x})")?;
        }
        write!(
            f,
            ": {} page(s) are free, the largest request that fits{} is {} page(s)",
            self.free_pages,
            if self.align > 1 || self.within.is_some() {
                " so"
            } else {
                ""
            },
            self.largest_fit
        )
    }
}

impl std::error::Error for AllocFailure {}

/// The largest `n` in `[0, hi]` for which `fits(n)` holds, given that
/// `fits` holds for every number below one it holds for (0 always fits).
/// O(log hi) calls.
pub(crate) fn largest_fitting(hi: u64, mut fits: impl FnMut(u64) -> Result<bool>) -> Result<u64> {
    // Invariant: `lo` fits, `hi + 1` does not.
    let (mut lo, mut hi) = (0, hi);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

impl PageAlloc {
    /// Where `alloc_constrained(npages, align, within)` would put `npages`
    /// pages (`None`: nothing fits), without taking them. Errors as that
    /// call's.
    ///
    /// Cost: one search, the allocating call's without the update: for
    /// `align == 1` and no window Go's `find` (a walk of the radix tree),
    /// else the constrained walk.
    pub fn first_fit(
        &mut self,
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    ) -> Result<Option<u64>> {
        super::constrained::check_request(npages, align)?;
        self.refresh_summaries();
        if align == 1 && within.is_none() {
            return Ok(self.find(npages)?.map(|(lin, _)| self.ly.unlin(lin)));
        }
        let p = self.find_constrained(npages, align, within)?;
        Ok(p.map(|p| self.ly.unlin(p << PAGE_SHIFT)))
    }

    /// Whether `npages` pages would fit at `align` inside `within`: exactly
    /// when `alloc_constrained` would succeed. Cost: [`PageAlloc::first_fit`].
    pub fn would_fit(
        &mut self,
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    ) -> Result<bool> {
        Ok(self.first_fit(npages, align, within)?.is_some())
    }

    /// The largest `npages` that would fit at `align` inside `within` (0
    /// when not even one page does). Without constraints it is the longest
    /// free run, read from the root summaries; with them, a binary search
    /// below that bound, each step one [`PageAlloc::first_fit`] (a fit of
    /// `n` pages means one of `n - 1` at the same address: the answer is
    /// where fitting stops).
    ///
    /// Cost: O(root entries) unconstrained; else O(log(longest run))
    /// searches.
    pub fn largest_free(&mut self, align: u64, within: Option<(u64, u64)>) -> Result<u64> {
        if align == 0 || !align.is_power_of_two() {
            return Err(Error::BadAlign { align });
        }
        self.refresh_summaries();
        let longest = self.largest_free_run();
        if align == 1 && within.is_none() {
            return Ok(longest);
        }
        largest_fitting(longest, |n| self.would_fit(n, align, within))
    }

    /// `alloc_constrained` that says why when nothing fits: the address, or
    /// an [`AllocFailure`] with the free pages and the largest fit (then
    /// nothing changed). Cost: the allocation; on failure also
    /// [`PageAlloc::largest_free`] and a count of the free pages
    /// (O(grown chunks)).
    pub fn alloc_or_failure(
        &mut self,
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    ) -> Result<std::result::Result<u64, AllocFailure>> {
        if let (Some(addr), _) = self.alloc_constrained(npages, align, within)? {
            return Ok(Ok(addr));
        }
        Ok(Err(AllocFailure {
            npages,
            align,
            within,
            free_pages: self.pages_grown() - self.pages_in_use(),
            largest_fit: self.largest_free(align, within)?,
        }))
    }

    /// `npages` pages in at most `max_extents` runs, all or nothing: one
    /// extent by first fit when a free run holds them all (the same address
    /// as `alloc`); else the fewest extents, taking the longest free runs
    /// first (the lowest address among equally long ones), the last cut
    /// from its start. `None`, and nothing changed, when even that needs
    /// more than `max_extents`. Free each extent with `free(addr, n)`.
    ///
    /// Cost: one `alloc` when a run holds them; else per extent one read
    /// of the root summaries, one search and one `alloc_at`, plus a
    /// snapshot of the allocator (O(grown chunks)), restored when the
    /// extents run out (that is how nothing changes).
    pub fn alloc_extents(
        &mut self,
        npages: u64,
        max_extents: usize,
    ) -> Result<Option<Vec<(u64, u64)>>> {
        Ok(self
            .alloc_extents_scav(npages, max_extents)?
            .map(|(ext, _)| ext))
    }

    /// [`PageAlloc::alloc_extents`] with the scavenged bytes among the
    /// pages taken (the Heap's accounting needs them).
    pub(crate) fn alloc_extents_scav(
        &mut self,
        npages: u64,
        max_extents: usize,
    ) -> Result<Option<(Extents, u64)>> {
        if npages == 0 {
            return Err(Error::ZeroPages);
        }
        if max_extents == 0 {
            return Err(Error::ZeroExtents);
        }
        if let (Some(a), scav) = self.alloc_scav(npages)? {
            return Ok(Some((vec![(a, npages)], scav)));
        }
        self.refresh_summaries();
        let longest = self.largest_free_run();
        if longest == 0 || longest.saturating_mul(max_extents as u64) < npages {
            // Even max_extents runs as long as the longest fall short.
            return Ok(None);
        }
        let before = self.to_bytes();
        let mut out = Vec::new();
        let (mut left, mut scav) = (npages, 0);
        while left > 0 && out.len() < max_extents {
            self.refresh_summaries();
            let l = self.largest_free_run();
            if l == 0 {
                break;
            }
            let n = l.min(left);
            let Some(addr) = self.first_fit(l, 1, None)? else {
                return Err(Error::Corrupt(format!(
                    "the root summaries promise a free run of {l} pages that find does not see"
                )));
            };
            scav += self.alloc_at(addr, n)?;
            out.push((addr, n));
            left -= n;
        }
        if left > 0 {
            *self = PageAlloc::from_bytes(&before)?;
            return Ok(None);
        }
        Ok(Some((out, scav)))
    }
}
