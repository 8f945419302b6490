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
//! changes the protection of sub-ranges with `mprotect`. It tracks the one
//! committed byte range `[lo, hi)`: the seed only ever extends a mapped
//! region at one of its ends (`extendMappedRegion`), so the committed part
//! is always contiguous. Nothing here hands out references: callers get a
//! raw base pointer and must stay inside the committed range.

use std::ops::Range;
use std::ptr::NonNull;

use memmap2::{MmapOptions, MmapRaw};
use rustix::mm::{mprotect, MprotectFlags};

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

/// A block of reserved address space, of which one contiguous byte range
/// is committed.
pub struct Reservation {
    /// Owns the mapping; dropped (unmapped) with the reservation.
    map: MmapRaw,
    /// Base of the mapping; page-aligned, valid for `len` bytes of address
    /// space, of which only `committed` may be read or written.
    base: NonNull<u8>,
    /// Reserved length in bytes, a multiple of the page size.
    len: usize,
    /// Committed byte range. Invariant: page-aligned, inside `[0, len)`, and
    /// exactly the part of the mapping that is PROT_READ|PROT_WRITE; the rest
    /// is PROT_NONE. Empty (`0..0`) when nothing is committed.
    committed: Range<usize>,
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
            committed: 0..0,
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
        self.committed.len()
    }

    /// The committed byte range.
    pub fn committed(&self) -> Range<usize> {
        self.committed.clone()
    }

    /// Whether `[off, off+n)` lies in the committed range.
    #[inline]
    pub fn is_committed(&self, off: usize, n: usize) -> bool {
        self.committed.start <= off && off + n <= self.committed.end
    }

    /// Commits the whole reservation (the 32-bit summary block).
    pub fn commit_all(&mut self) -> Result<usize> {
        self.extend_committed(0, self.len)
    }

    /// Go's `extendMappedRegion`: makes sure `[nbase, nlimit)` (rounded out to
    /// pages) is committed, given that the committed range may only grow at
    /// one end. A range below the committed one commits everything from its
    /// base up to the committed range; a range above it commits everything
    /// from the committed range up to its limit. Returns the bytes newly
    /// committed.
    pub fn extend_committed(&mut self, nbase: usize, nlimit: usize) -> Result<usize> {
        let page = phys_page_size();
        let nbase = align_down(nbase, page);
        let nlimit = align_up(nlimit, page);
        debug_assert!(
            nbase < nlimit && nlimit <= self.len,
            "[{nbase:#x}, {nlimit:#x})"
        );
        let Range {
            start: mbase,
            end: mlimit,
        } = self.committed;
        let new = if mbase == mlimit {
            nbase..nlimit
        } else if nbase < mbase && nlimit > mlimit {
            // The seed throws "mapped region extended in two directions". A
            // grow never covers the whole known heap (that would overlap grown
            // chunks), so this cannot happen; refuse rather than guess.
            return Err(Error::Corrupt(format!(
                "{} mapping extended in two directions: [{mbase:#x}, {mlimit:#x}) to \
                 [{nbase:#x}, {nlimit:#x})",
                self.what
            )));
        } else if nbase < mbase {
            nbase..mbase
        } else if nlimit > mlimit {
            mlimit..nlimit
        } else {
            return Ok(0);
        };
        let n = new.len();
        // SAFETY: `new` lies inside [0, len) of our own mapping and is
        // page-aligned; no Rust reference spans it while it changes protection
        // (it was PROT_NONE, so none could exist).
        unsafe {
            mprotect(
                self.base.as_ptr().add(new.start).cast(),
                n,
                MprotectFlags::READ | MprotectFlags::WRITE,
            )
        }
        .map_err(|e| Error::Commit {
            bytes: n,
            what: self.what,
            source: e.into(),
        })?;
        self.committed = if mbase == mlimit {
            new
        } else {
            mbase.min(new.start)..mlimit.max(new.end)
        };
        Ok(n)
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
    fn extends_in_one_direction_at_a_time() {
        let page = phys_page_size();
        let mut r = Reservation::reserve(64 * page, "test").unwrap();
        assert_eq!(r.committed_bytes(), 0);
        assert_eq!(
            r.extend_committed(10 * page + 1, 10 * page + 2).unwrap(),
            page
        );
        assert_eq!(r.committed(), 10 * page..11 * page);
        // Upward: fills the gap too.
        assert_eq!(r.extend_committed(20 * page, 21 * page).unwrap(), 10 * page);
        assert_eq!(r.committed(), 10 * page..21 * page);
        // Downward.
        assert_eq!(r.extend_committed(2 * page, 3 * page).unwrap(), 8 * page);
        assert_eq!(r.committed(), 2 * page..21 * page);
        // Inside: nothing.
        assert_eq!(r.extend_committed(5 * page, 6 * page).unwrap(), 0);
        // Both ways at once is refused and changes nothing.
        assert!(r.extend_committed(0, 30 * page).is_err());
        assert_eq!(r.committed(), 2 * page..21 * page);
        // The committed memory is usable and zeroed.
        // SAFETY: offset 2*page..21*page is committed read/write.
        unsafe {
            let p = r.base().add(2 * page);
            assert_eq!(p.read(), 0);
            p.write(7);
            assert_eq!(p.read(), 7);
        }
    }
}
