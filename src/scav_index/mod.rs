//! The scavenge index of the Go version an allocator follows: one field,
//! one type, one dispatch per operation. Go 1.19's (`go119.rs`) marks
//! chunks that may hold free, unscavenged pages; Go 1.26's
//! (`go126.rs`) counts pages in use per chunk and keeps two cursors
//! and generations. The allocator tells its index about every alloc and
//! free through the methods here; the scavenger asks it where to look.

mod go119;
mod go126;

pub(crate) use go119::{IndexMem, ScavengeIndex};
pub(crate) use go126::ScavIndex126;
pub use go126::{Cursor, ScavChunkData, SCAV_CHUNK_HI_OCC_PAGES};

use crate::arch::{Layout, PAGE_SIZE};
use crate::error::Result;
use crate::goversion::GoVersion;

/// A scavenge index of either Go version. Invariant: its version is the
/// allocator's [`GoVersion`] and never changes.
pub(crate) enum ScavIndex {
    Go119(ScavengeIndex),
    /// Boxed: it is large, and a Go 1.19 allocator need not carry it.
    Go126(Box<ScavIndex126>),
}

impl ScavIndex {
    /// A new, empty index of Go version `go` for layout `ly`.
    pub(crate) fn new(ly: &Layout, go: GoVersion) -> Result<ScavIndex> {
        Ok(match go {
            GoVersion::Go119 => ScavIndex::Go119(ScavengeIndex::new(ly)?),
            GoVersion::Go126 => ScavIndex::Go126(Box::new(ScavIndex126::new(ly)?)),
        })
    }

    #[inline]
    pub(crate) fn go(&self) -> GoVersion {
        match self {
            ScavIndex::Go119(_) => GoVersion::Go119,
            ScavIndex::Go126(_) => GoVersion::Go126,
        }
    }

    /// Go 1.19's index, if that is this one.
    #[inline]
    pub(crate) fn v119(&self) -> Option<&ScavengeIndex> {
        match self {
            ScavIndex::Go119(ix) => Some(ix),
            ScavIndex::Go126(_) => None,
        }
    }

    #[inline]
    pub(crate) fn v119_mut(&mut self) -> Option<&mut ScavengeIndex> {
        match self {
            ScavIndex::Go119(ix) => Some(ix),
            ScavIndex::Go126(_) => None,
        }
    }

    /// Go 1.26's index, if that is this one.
    #[inline]
    pub(crate) fn v126(&self) -> Option<&ScavIndex126> {
        match self {
            ScavIndex::Go119(_) => None,
            ScavIndex::Go126(ix) => Some(ix),
        }
    }

    #[inline]
    pub(crate) fn v126_mut(&mut self) -> Option<&mut ScavIndex126> {
        match self {
            ScavIndex::Go119(_) => None,
            ScavIndex::Go126(ix) => Some(ix),
        }
    }

    /// `n` pages of chunk `ci` were allocated: Go 1.26 counts them (`index.alloc`);
    /// Go 1.19's index does not hear of allocations.
    #[inline(always)]
    pub(crate) fn on_alloc(&mut self, ci: u64, n: u64) {
        if let ScavIndex::Go126(ix) = self {
            ix.alloc(ci, n);
        }
    }

    /// Pages `[i, i + n)` of chunk `ci` (at linearized `lin`) were freed:
    /// Go 1.19 marks the chunk, Go 1.26 counts them (`index.free`).
    #[inline(always)]
    pub(crate) fn on_free_in_chunk(&mut self, lin: u64, ci: u64, i: u64, n: u64) {
        match self {
            ScavIndex::Go119(ix) => ix.mark(lin, lin + n * PAGE_SIZE),
            ScavIndex::Go126(ix) => ix.free(ci, i + n - 1, n),
        }
    }

    /// `npages` pages at linearized `lin` (possibly across chunks) were freed.
    #[inline]
    pub(crate) fn on_free(&mut self, lin: u64, npages: u64) {
        match self {
            ScavIndex::Go119(ix) => ix.mark(lin, lin + npages * PAGE_SIZE),
            ScavIndex::Go126(ix) => ix.free_range(lin, npages),
        }
    }

    /// Go's `sysGrow` of the index for linearized `[base, limit)`. On a
    /// layout whose metadata is static (386) Go 1.19's index is committed
    /// already; Go 1.26's still learns its lowest chunk.
    pub(crate) fn grow(
        &mut self,
        ly: &Layout,
        base: u64,
        limit: u64,
        phys_page: u64,
    ) -> Result<()> {
        match self {
            ScavIndex::Go119(_) if !ly.commits_on_grow() => {}
            ScavIndex::Go119(ix) => {
                ix.grow(base, limit, phys_page)?;
            }
            ScavIndex::Go126(ix) => {
                ix.grow(base, limit, phys_page)?;
            }
        }
        Ok(())
    }

    /// The scavenger's `find` (Go 1.19 has one, forced, cursor).
    pub(crate) fn find(&mut self, force: bool) -> Option<(u64, u64)> {
        match self {
            ScavIndex::Go119(ix) => ix.find(),
            ScavIndex::Go126(ix) => ix.find(force),
        }
    }

    /// Sets the `force` (or background) cursor, as a recorded `find` left it.
    pub(crate) fn set_cursor(&mut self, force: bool, lin: u64, marked: bool) {
        match self {
            ScavIndex::Go119(ix) => ix.set_search_state(lin, marked),
            ScavIndex::Go126(ix) => {
                let slot = if force { &mut ix.force } else { &mut ix.bg };
                *slot = Cursor { lin, marked };
            }
        }
    }

    /// The scavenger found nothing to release in chunk `ci`: Go 1.19
    /// unmarks it, Go 1.26 sets it empty.
    pub(crate) fn chunk_empty(&mut self, ci: u64) {
        match self {
            ScavIndex::Go119(ix) => ix.clear(ci),
            ScavIndex::Go126(ix) => ix.set_empty(ci),
        }
    }

    /// Bytes committed and counted as metadata.
    pub(crate) fn mapped_bytes(&self) -> usize {
        match self {
            ScavIndex::Go119(ix) => ix.mapped_bytes(),
            ScavIndex::Go126(ix) => ix.mapped_bytes(),
        }
    }

    /// Bytes of address space reserved.
    pub(crate) fn reserved_bytes(&self) -> usize {
        match self {
            ScavIndex::Go119(ix) => ix.reserved_bytes(),
            ScavIndex::Go126(ix) => ix.reserved_bytes(),
        }
    }
}
