//! The scavenger's side of the allocator (`mgcscavenge.go`, both Go
//! versions): `scavenge` and its three parts (`find` in the scavenge index,
//! take the highest free, unscavenged run of that chunk, give it back as
//! scavenged), the machine's page sizes it works in, and what only Go
//! 1.26's index answers (`next_gen`, its per-chunk data and cursors,
//! padding pages).
//!
//! Free pages whose memory was returned to the OS are *scavenged*: each chunk
//! carries a second bitmap of them ([`PallocData`](crate::bits::PallocData)).
//! `scavenge(n)` releases at least `n` bytes (when there are that many) from
//! the chunks the index names, highest first: in each it takes the highest
//! run of free, unscavenged pages (never splitting a free huge page), marks
//! it in use while "the OS" releases it, then frees it again as scavenged.

use super::*;
use crate::scav_index::{Cursor, ScavChunkData};

/// The smallest physical page size an allocator accepts (Go's
/// `minPhysPageSize`).
pub const MIN_PHYS_PAGE: u64 = 4096;
/// The largest physical page size an allocator accepts (Go's
/// `maxPhysPageSize`, 512 KiB: 64 runtime pages, one bitmap word).
pub const MAX_PHYS_PAGE: u64 = 512 << 10;

/// The scavenger's unit in runtime pages: one physical page, or one runtime
/// page when physical pages are smaller (Go's `minPages`).
pub(crate) fn min_scav_pages(phys_page: u64, page_size: u64) -> u64 {
    (phys_page / page_size).max(1)
}

/// How a scavenge call runs: Go's `scavenge(nbytes, shouldStop, force)`
/// options. [`Scavenge::FORCED`] (the default) is `debug.FreeOSMemory`'s
/// kind and Go's test export `PageAlloc.Scavenge`; [`Scavenge::BACKGROUND`]
/// the background scavenger's (Go 1.26 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scavenge {
    /// Forced (the forced cursor, every chunk) or background (the
    /// background cursor, which skips dense chunks and sees frees only up to
    /// the last `next_gen`). Go 1.19 has only the forced kind.
    pub force: bool,
    /// Stop after this many `scavengeOne` steps, as a `shouldStop` that
    /// says stop then (`None`: never): how a recorded call cut short in the
    /// real program replays exactly. Go checks `shouldStop` only after a
    /// step, so a call always makes at least one.
    pub max_steps: Option<u64>,
}

impl Scavenge {
    /// The forced scavenger, to the end.
    pub const FORCED: Scavenge = Scavenge {
        force: true,
        max_steps: None,
    };
    /// The background scavenger, to the end.
    pub const BACKGROUND: Scavenge = Scavenge {
        force: false,
        max_steps: None,
    };

    /// The same, stopping after `steps` steps.
    pub const fn steps(self, steps: u64) -> Scavenge {
        Scavenge {
            max_steps: Some(steps),
            ..self
        }
    }
}

impl Default for Scavenge {
    fn default() -> Scavenge {
        Scavenge::FORCED
    }
}

impl PageAlloc {
    /// The forced scavenge of `nbytes` on an allocator without real memory
    /// (Go's test export `PageAlloc.Scavenge`): see
    /// [`scavenge_with`](crate::PageAlloc::scavenge_with).
    pub fn scavenge(&mut self, nbytes: u64) -> Result<u64> {
        self.scavenge_with(nbytes, Scavenge::FORCED, |_, _| {})
    }

    /// Go's `pageAlloc.scavenge(nbytes, shouldStop, force)` of the
    /// allocator's Go version, run as `how` says: marks free pages scavenged
    /// until at least `nbytes` bytes were released, the index has nothing
    /// more, or `how.max_steps` steps ran; returns the bytes released (which
    /// may exceed `nbytes` by less than a huge page). One loop for both Gos,
    /// asking the version's index for the next chunk (Go 1.19: its highest
    /// marked chunk, from the top every call; Go 1.26: from its forced or
    /// background cursor, continuing where the last call stopped) and
    /// releasing its highest run. `release(addr, bytes)` is called for each
    /// run while its pages are held in use, as Go calls `sysUnused`: a
    /// caller with real memory returns it to the OS there. The background
    /// kind is refused on Go 1.19.
    ///
    /// Cost: per run released, one index search and one scavenge-candidate
    /// scan of a chunk and two updates (take and give back); per chunk with
    /// nothing left, one scan.
    pub fn scavenge_with(
        &mut self,
        nbytes: u64,
        how: Scavenge,
        mut release: impl FnMut(u64, u64),
    ) -> Result<u64> {
        let (force, steps) = (how.force, how.max_steps);
        self.check_scavenger_kind(force)?;
        let mut released = 0;
        let mut taken = 0;
        while released < nbytes {
            let Some((ci, search_idx)) = self.scavenge_find(force)? else {
                break;
            };
            let max = nbytes - released;
            released += match self.scavenge_take(ci, search_idx, max)? {
                Some((addr, npages)) => {
                    release(addr, npages << self.ly.page_shift);
                    self.scavenge_give(addr, npages)?
                }
                None => 0,
            };
            taken += 1;
            if steps.is_some_and(|n| taken >= n) {
                break;
            }
        }
        Ok(released)
    }

    /// The first of a scavenger step's three parts, as Go runs it with more
    /// than one P: the scavenge index's lock-free `find` (forced or
    /// background cursor; Go 1.19 has only the forced one), moving its
    /// cursor. Returns the chunk and the page to search down from, or `None`
    /// when nothing is left. [`scavenge_with`](Self::scavenge_with)
    /// is the three parts run back to back; a recorded trace runs them one
    /// by one where other Ps' operations came between them.
    pub fn scavenge_find(&mut self, force: bool) -> Result<Option<(u64, u64)>> {
        self.check_scavenger_kind(force)?;
        // Go 1.19's find also names a page (its cursor's, in the cursor's
        // own chunk), which its scavengeOne then ignores.
        Ok(self.scav.find(force))
    }

    /// Sets a scavenge index cursor to what a recorded run's `find` left
    /// there (`addr` a heap address, or Go's `minOffAddr` for cleared: 0, or
    /// `0xffff800000000000` on amd64; Go 1.19 has one
    /// cursor, used for both kinds): how a replay follows a `find` that
    /// raced with another P.
    pub fn set_scavenge_cursor(&mut self, force: bool, addr: u64, marked: bool) -> Result<()> {
        // Go's cleared cursor is `minOffAddr`, address 0 once linearized.
        let lin = self.ly.lin(addr);
        if lin != 0 && (lin % PAGE_SIZE != 0 || !self.is_grown(lin >> LOG_PALLOC_CHUNK_BYTES)) {
            return Err(crate::Error::BadScavengeStep(format!(
                "cursor {addr:#x} is not a page of the heap"
            )));
        }
        self.scav.set_cursor(force, lin, marked);
        Ok(())
    }

    /// The second part of a scavenger step, Go's `scavengeOne` up to its
    /// `unlock` before `sysUnused`: in chunk `ci`, the highest run of free,
    /// unscavenged pages at or below the word of page `search_idx` (at most
    /// `max` bytes, rounded up to pages, unless a huge page must be taken
    /// whole; Go 1.19 searches from the chunk's last page), taken in use so
    /// that nothing allocates it while it is released. Returns its address
    /// and pages; `None` when the chunk has none (Go 1.19 unmarks it, Go 1.26
    /// sets it empty). The pages are taken at chunk level, as Go does, so
    /// neither index hears of it.
    pub fn scavenge_take(
        &mut self,
        ci: u64,
        search_idx: u64,
        max: u64,
    ) -> Result<Option<(u64, u64)>> {
        if !self.is_grown(ci) || search_idx >= PALLOC_CHUNK_PAGES {
            return Err(crate::Error::BadScavengeStep(format!(
                "chunk {ci:#x} page {search_idx} is not on the heap"
            )));
        }
        let search_idx = if self.go_version() == crate::GoVersion::Go126 {
            search_idx
        } else {
            PALLOC_CHUNK_PAGES - 1
        };
        let max_pages = max.div_ceil(self.ly.page_size());
        let min_pages = self.min_scav_pages();
        let leaf = self.ly.leaf();
        if self.sum_fmt.unpack_below_root(self.sum(leaf, ci)).1 >= min_pages {
            let (base, npages) = self.data(ci).find_scavenge_candidate(
                search_idx,
                min_pages,
                max_pages,
                self.huge_pages,
            );
            if npages != 0 {
                let lin = (ci << LOG_PALLOC_CHUNK_BYTES) + base * PAGE_SIZE;
                if self.data(ci).scavenged.popcnt_range(base, npages) != 0 {
                    return Err(crate::Error::Corrupt(format!(
                        "double scavenge of pages [{:#x}, +{npages})",
                        self.ly.unlin(lin)
                    )));
                }
                // Hold the pages in use while they are released, so nothing
                // allocates them meanwhile.
                self.data_mut(ci).alloc_range(base, npages);
                self.update(lin, npages, true, true);
                return Ok(Some((self.ly.unlin(lin), npages)));
            }
        }
        self.scav.chunk_empty(ci);
        Ok(None)
    }

    /// The third part of a scavenger step, `scavengeOne` after `sysUnused`:
    /// the `npages` pages at `addr` that [`scavenge_take`](Self::scavenge_take)
    /// took become free again, now scavenged. Returns the bytes released.
    pub fn scavenge_give(&mut self, addr: u64, npages: u64) -> Result<u64> {
        let lin = self.ly.lin(addr);
        let (ci, base) = (
            lin >> LOG_PALLOC_CHUNK_BYTES,
            (lin % PALLOC_CHUNK_BYTES) / PAGE_SIZE,
        );
        let whole = addr % self.ly.page_size() == 0
            && npages >= 1
            && base + npages <= PALLOC_CHUNK_PAGES
            && self.is_grown(ci)
            && self.data(ci).bits.popcnt_range(base, npages) == npages
            && self.data(ci).scavenged.popcnt_range(base, npages) == 0;
        if !whole {
            return Err(crate::Error::BadScavengeStep(format!(
                "{npages} pages at {addr:#x} are not a run the scavenger holds"
            )));
        }
        self.free_pages(lin, npages, true);
        self.data_mut(ci).scavenged.alloc_range(base, npages);
        Ok(npages << self.ly.page_shift)
    }

    /// The background scavenger (`force` false) is Go 1.26's only.
    fn check_scavenger_kind(&self, force: bool) -> Result<()> {
        if !force && self.go_version() == crate::GoVersion::Go119 {
            return Err(needs_126(
                "the background scavenger (scavenge with force=False)",
            ));
        }
        Ok(())
    }

    /// The scavenger's unit in runtime pages (Go's `minPages`).
    pub(crate) fn min_scav_pages(&self) -> u64 {
        min_scav_pages(self.phys_page, self.ly.page_size())
    }

    /// Go's `physPageSize` for this allocator, in bytes: the scavenger
    /// releases only whole, aligned physical pages. By default the host's.
    pub fn phys_page_size(&self) -> u64 {
        self.phys_page
    }

    /// Sets the physical page size (a power of two from 4 KiB to 512 KiB),
    /// as if Go ran on a machine with such pages (linux/arm64 with 16 or
    /// 64 KiB pages, say). Only before the first grow: the scavenge index
    /// is mapped in physical pages. A huge page size below the new physical
    /// page size becomes 0 (none).
    pub fn set_phys_page_size(&mut self, bytes: u64) -> Result<()> {
        if !bytes.is_power_of_two() || !(MIN_PHYS_PAGE..=MAX_PHYS_PAGE).contains(&bytes) {
            return Err(crate::Error::BadPhysPageSize { bytes });
        }
        if self.end != 0 {
            return Err(crate::Error::PhysPageAfterGrow);
        }
        self.phys_page = bytes;
        if self.phys_huge_page_size() < bytes {
            self.huge_pages = 0;
        }
        Ok(())
    }

    /// Huge pages of this many bytes are never split by the scavenger (Go's
    /// `physHugePageSize`; by default the OS's transparent huge page size).
    pub fn phys_huge_page_size(&self) -> u64 {
        self.huge_pages << self.ly.page_shift
    }

    /// Sets the huge page size the scavenger respects (Go's
    /// `physHugePageSize`): 0 for none, else a power of two from the
    /// physical page size to 1 GiB. Go's scavenger never splits a free,
    /// aligned huge page; with 0 it releases runs of any length.
    pub fn set_phys_huge_page_size(&mut self, bytes: u64) -> Result<()> {
        if bytes != 0 && (!bytes.is_power_of_two() || bytes < self.phys_page || bytes > 1 << 30) {
            return Err(crate::Error::BadHugePageSize {
                bytes,
                phys_page: self.phys_page,
            });
        }
        // Go's scavenger heeds huge pages only when they are larger than
        // both a runtime page and a physical page.
        self.huge_pages = if bytes > self.phys_page {
            bytes >> self.ly.page_shift
        } else {
            0
        };
        Ok(())
    }

    /// The scavenged bitmap of chunk `ci` (Go's `PallocData(i).Scavenged()`).
    pub fn chunk_scavenged(&self, ci: u64) -> Result<crate::PallocBits> {
        Ok(self
            .known_chunk(ci)?
            .map_or(crate::PallocBits::EMPTY, |d| d.scavenged))
    }

    /// Whether chunk `ci` is marked in Go 1.19's scavenge index (always
    /// false under Go 1.26, whose index counts pages instead).
    pub fn scav_marked(&self, ci: u64) -> bool {
        self.scav.v119().is_some_and(|ix| ix.is_marked(ci))
    }
}

// ----- what only Go 1.26's index answers --------------------------------

impl PageAlloc {
    /// Go 1.26's `scavengeIndex.nextGen` (Go calls it once per GC cycle):
    /// the background scavenger now sees the frees of the cycle that ended.
    pub fn next_gen(&mut self) -> Result<()> {
        let Some(ix) = self.scav.v126_mut() else {
            return Err(needs_126("next_gen"));
        };
        ix.next_gen();
        Ok(())
    }

    /// Go 1.26's index data of grown chunk `ci`.
    pub fn scav_chunk_data(&self, ci: u64) -> Result<ScavChunkData> {
        let Some(ix) = self.scav.v126() else {
            return Err(needs_126("scav_chunk_data"));
        };
        if !self.is_grown(ci) {
            return Err(crate::Error::NoSuchChunk { chunk: ci });
        }
        Ok(ix.get(ci))
    }

    /// Go 1.26's index generation, freed-pages high-water mark and cursors
    /// (linearized addresses; 0 is none): `(gen, free_hwm, bg, force)`.
    pub fn scav_index_state(&self) -> Result<(u32, u64, Cursor, Cursor)> {
        let Some(ix) = self.scav.v126() else {
            return Err(needs_126("scav_index_state"));
        };
        Ok((ix.gen, ix.free_hwm, ix.bg, ix.force))
    }

    /// Go 1.26's `markRandomPaddingPages(addr, npages)` (heap-base
    /// randomization): the pages become in use *and* scavenged, and the
    /// index counts them in use. They must all be grown and free; never
    /// free them. Refused (nothing changed) otherwise, or on Go 1.19.
    ///
    /// Cost: as `alloc_at` of the same pages.
    pub fn mark_padding(&mut self, addr: u64, npages: u64) -> Result<()> {
        if self.go_version() != crate::GoVersion::Go126 {
            return Err(needs_126("mark_padding"));
        }
        let lin = self.check_pages(addr, npages)?;
        if let Some(u) = self.first_used_in(lin >> crate::arch::PAGE_SHIFT, npages) {
            let page = self.ly.unlin(u << crate::arch::PAGE_SHIFT);
            return Err(crate::Error::PaddingNotFree { addr, npages, page });
        }
        for (ci, i, n) in crate::alloc::chunk_pieces(lin, npages) {
            let data = self.data_mut(ci);
            data.alloc_range(i, n);
            data.scavenged.alloc_range(i, n);
        }
        if let Some(ix) = self.scav.v126_mut() {
            ix.alloc_range(lin, npages);
        }
        self.update(lin, npages, true, true);
        Ok(())
    }
}

/// The error for an operation only Go 1.26's allocator has, asked of a
/// Go 1.19 one.
fn needs_126(what: &'static str) -> crate::Error {
    crate::Error::WrongGoVersion {
        what,
        need: crate::GoVersion::Go126,
        have: crate::GoVersion::Go119,
    }
}

#[cfg(test)]
mod tests {
    use crate::{Arch, PageAlloc, PALLOC_CHUNK_BYTES};

    /// A heap whose lowest chunk lies in index byte 0 (chunk 1 on arm64)
    /// keeps it scavengeable after a later growth above (Go 1.19 would reset
    /// its `minHeapIdx` past it).
    #[test]
    fn lowest_chunk_in_byte_zero_stays_scavengeable() {
        let ly = Arch::Arm64.layout();
        let mut pa = PageAlloc::builder(Arch::Arm64)
            .go(crate::GoVersion::Go119)
            .build()
            .unwrap();
        pa.set_phys_huge_page_size(0).unwrap();
        pa.grow(ly.chunk_base(1), PALLOC_CHUNK_BYTES).unwrap();
        let a = pa.alloc(1).unwrap().unwrap();
        pa.free(a, 1).unwrap();
        pa.grow(ly.chunk_base(ly.base_chunk_idx()), PALLOC_CHUNK_BYTES)
            .unwrap();
        assert_eq!(pa.scavenge(u64::MAX).unwrap(), crate::PAGE_SIZE);
        assert_eq!(pa.chunk_scavenged(1).unwrap(), crate::PallocBits::FULL);
    }
}
