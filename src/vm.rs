//! Reserved address space for allocator metadata.
//!
//! The allocator's metadata (the chunk bitmaps and each summary level) is
//! sized for the whole address space, which on 64-bit presets is gigabytes.
//! Like Go's `sysReserve` / `sysMap`, we reserve that space up front with no
//! access rights and no swap reservation, then commit (make read/write) the
//! parts that the heap needs as it grows. Untouched committed pages cost no
//! physical memory either; the distinction is what the seed accounts for.
//!
//! A [`Reservation`] owns its mapping through memmap2 (`munmap` on drop) and
//! changes the protection of sub-ranges with `mprotect`. It tracks the
//! committed byte ranges, which may be many: Go 1.19's `sysGrow` maps only
//! the summaries each grown range needs (less what its neighbours mapped
//! already), so a heap with distant pieces commits little. Nothing here hands
//! out references: callers get a raw base pointer and must stay inside the
//! committed ranges.

use std::ops::Range;
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};
use rustix::mm::{madvise, mprotect, Advice, MprotectFlags};

use crate::addr_ranges::AddrRanges;
use crate::error::{Error, Result};

/// The OS page size (Go's `physPageSize`).
pub fn phys_page_size() -> usize {
    rustix::param::page_size()
}

/// The transparent huge page size as Go reads it on Linux
/// (`/sys/kernel/mm/transparent_hugepage/hpage_pmd_size`), or 0 when it is
/// unavailable or not a power of two. Read once.
pub fn thp_size() -> u64 {
    static THP: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *THP.get_or_init(|| {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|n| n.is_power_of_two())
            .unwrap_or(0)
    })
}

#[inline]
fn align_down(x: usize, a: usize) -> usize {
    x & !(a - 1)
}

#[inline]
fn align_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

/// A block of reserved address space, of which some page ranges are
/// committed.
pub struct Reservation {
    /// Owns the mapping; dropped (unmapped) with the reservation.
    map: MmapRaw,
    /// Base of the mapping; page-aligned, valid for `len` bytes of address
    /// space, of which only `committed` may be read or written.
    base: NonNull<u8>,
    /// Reserved length in bytes, a multiple of the page size.
    len: usize,
    /// Committed byte ranges (offsets). Invariant: page-aligned, inside
    /// `[0, len)`, and exactly the part of the mapping that is
    /// PROT_READ|PROT_WRITE; the rest is PROT_NONE.
    committed: AddrRanges,
    /// What the reservation holds, for error messages.
    what: &'static str,
}

// SAFETY: a Reservation is a plain owner of a private anonymous mapping; the
// raw base pointer is never shared outside the owner's borrow, so moving it
// to another thread or sharing `&Reservation` (which only reads sizes) is
// sound.
unsafe impl Send for Reservation {}
// SAFETY: see `Send`; `&Reservation` exposes no interior mutability.
unsafe impl Sync for Reservation {}

impl Reservation {
    /// Reserves `len` bytes (rounded up to whole pages) with no access and no
    /// swap reservation (`MAP_NORESERVE`).
    pub fn reserve(len: usize, what: &'static str) -> Result<Reservation> {
        let len = align_up(len.max(1), phys_page_size());
        let refuse = |source| Error::Reserve {
            bytes: len,
            what,
            source,
        };
        // memmap2 maps anonymous memory read/write; drop the rights before
        // anything can touch it, so the reservation starts fully PROT_NONE.
        let map: MmapRaw = MmapOptions::new()
            .len(len)
            .no_reserve_swap()
            .map_anon()
            .map_err(refuse)?
            .into();
        let base = NonNull::new(map.as_mut_ptr()).expect("mmap never returns null on success");
        // SAFETY: [base, base+len) is exactly the mapping we own; no Rust
        // reference into it exists yet.
        unsafe { mprotect(base.as_ptr().cast(), len, MprotectFlags::empty()) }
            .map_err(|e| refuse(e.into()))?;
        Ok(Reservation {
            map,
            base,
            len,
            committed: AddrRanges::new(),
            what,
        })
    }

    /// Base of the reservation. Only the committed range may be accessed.
    #[inline]
    pub fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Reserved bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is reserved (never true: a reservation is at least a page).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Committed bytes.
    pub fn committed_bytes(&self) -> usize {
        self.committed.total() as usize
    }

    /// The committed byte ranges, ascending.
    pub fn committed(&self) -> &[Range<u64>] {
        self.committed.ranges()
    }

    /// Whether `[off, off+n)` (`n >= 1`) lies in one committed range.
    /// O(log ranges).
    #[inline]
    pub fn is_committed(&self, off: usize, n: usize) -> bool {
        self.committed
            .covers(off as u64..(off as u64).saturating_add(n as u64))
    }

    /// Go's `sysUnused` on Linux: gives the physical pages behind
    /// `[off, off+n)` (committed, page-aligned) back to the OS with
    /// `MADV_DONTNEED`. The range stays committed: the next touch maps fresh
    /// zero pages. The caller must hold no reference into the range.
    pub fn release(&mut self, off: usize, n: usize) -> Result<()> {
        let page = phys_page_size();
        debug_assert!(off % page == 0 && n % page == 0 && self.is_committed(off, n));
        // SAFETY: [off, off+n) lies inside our committed read/write mapping
        // (checked above in debug builds, guaranteed by the caller); no Rust
        // reference into it exists (`&mut self`, and the caller's contract),
        // so its contents may change to zeros underneath nobody.
        unsafe { madvise(self.base.as_ptr().add(off).cast(), n, Advice::LinuxDontNeed) }.map_err(
            |e| Error::Commit {
                bytes: n,
                what: "release (madvise) of",
                source: e.into(),
            },
        )
    }

    /// Asks for transparent huge pages behind `[off, off+n)` (committed,
    /// page-aligned): `MADV_HUGEPAGE`, so that a first touch maps 2 MiB at
    /// once where the kernel can, as NumPy's own allocator asks for its
    /// large arrays. Best effort: a kernel without THP says no, and nothing
    /// depends on it.
    pub fn advise_huge(&self, off: usize, n: usize) {
        debug_assert!(self.is_committed(off, n));
        // SAFETY: [off, off+n) lies inside our committed mapping; the advice
        // changes how pages are backed, never their contents.
        let _ = unsafe { madvise(self.base.as_ptr().add(off).cast(), n, Advice::LinuxHugepage) };
    }

    /// Commits the whole reservation (the 32-bit summary block).
    pub fn commit_all(&mut self) -> Result<usize> {
        self.commit(0, self.len)
    }

    /// Makes `[nbase, nlimit)`, rounded out to pages, read/write, committing
    /// only the pages not committed yet; returns how many bytes that was
    /// (Go 1.19's `sysGrow` after pruning what the neighbours mapped). On a
    /// refusal the pages committed before it stay committed and counted.
    /// O(ranges) for the bookkeeping plus one `mprotect` per gap.
    pub fn commit(&mut self, nbase: usize, nlimit: usize) -> Result<usize> {
        let page = phys_page_size();
        let nbase = align_down(nbase, page);
        let nlimit = align_up(nlimit, page);
        debug_assert!(
            nbase < nlimit && nlimit <= self.len,
            "[{nbase:#x}, {nlimit:#x})"
        );
        // The gaps of [nbase, nlimit) between the ranges committed already.
        let (nbase, nlimit) = (nbase as u64, nlimit as u64);
        let mut gaps = Vec::new();
        let mut at = nbase;
        for r in self.committed.ranges() {
            if r.end <= at {
                continue;
            }
            if r.start >= nlimit {
                break;
            }
            if r.start > at {
                gaps.push(at..r.start);
            }
            at = r.end;
        }
        if at < nlimit {
            gaps.push(at..nlimit);
        }
        let mut newly = 0;
        for g in gaps {
            let (off, n) = (g.start as usize, (g.end - g.start) as usize);
            // SAFETY: `[off, off+n)` lies inside [0, len) of our own mapping
            // and is page-aligned; it was PROT_NONE, so no Rust reference
            // spans it while its protection changes.
            unsafe {
                mprotect(
                    self.base.as_ptr().add(off).cast(),
                    n,
                    MprotectFlags::READ | MprotectFlags::WRITE,
                )
            }
            .map_err(|e| Error::Commit {
                bytes: n,
                what: self.what,
                source: e.into(),
            })?;
            newly += n;
            self.committed.add(g);
        }
        Ok(newly)
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("what", &self.what)
            .field("len", &self.len)
            .field("committed", &self.committed)
            .field("map_len", &self.map.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_only_what_is_new() {
        let page = phys_page_size();
        let pg = page as u64;
        let mut r = Reservation::reserve(64 * page, "test").unwrap();
        assert_eq!(r.committed_bytes(), 0);
        assert_eq!(r.commit(10 * page + 1, 10 * page + 2).unwrap(), page);
        assert_eq!(r.committed(), std::slice::from_ref(&(10 * pg..11 * pg)));
        // Far above: the gap stays reserved.
        assert_eq!(r.commit(20 * page, 21 * page).unwrap(), page);
        assert_eq!(r.committed(), &[10 * pg..11 * pg, 20 * pg..21 * pg]);
        assert!(!r.is_committed(11 * page, 1));
        assert!(r.is_committed(20 * page, page));
        assert!(!r.is_committed(20 * page, page + 1));
        // Touching below merges.
        assert_eq!(r.commit(9 * page, 10 * page).unwrap(), page);
        assert_eq!(r.committed(), &[9 * pg..11 * pg, 20 * pg..21 * pg]);
        // Across both: only the gap is new, and everything merges.
        assert_eq!(r.commit(2 * page, 30 * page).unwrap(), 25 * page);
        assert_eq!(r.committed(), std::slice::from_ref(&(2 * pg..30 * pg)));
        assert_eq!(r.committed_bytes(), 28 * page);
        // Inside: nothing.
        assert_eq!(r.commit(5 * page, 6 * page).unwrap(), 0);
        // The committed memory is usable and zeroed.
        // SAFETY: offset 2*page..30*page is committed read/write.
        unsafe {
            let p = r.base().add(2 * page);
            assert_eq!(p.read(), 0);
            p.write(7);
            assert_eq!(p.read(), 7);
        }
    }
}
