//! The trace ops, their kinds and counts, and their text (`Display`).

use std::fmt;

/// One trace operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Grow {
        base: u64,
        size: u64,
    },
    Alloc {
        npages: u64,
    },
    /// `alloc NPAGES align=A within=LO:HI` (either option alone).
    AllocConstrained {
        npages: u64,
        align: u64,
        within: Option<(u64, u64)>,
    },
    /// `allocat ADDR NPAGES`: exactly these pages, or 0 when they are not
    /// all grown and free.
    AllocAt {
        addr: u64,
        npages: u64,
    },
    /// Frees the pages of the `k`-th allocation (0-based among `alloc`,
    /// `allocat` and `calloc` lines).
    Free {
        k: usize,
    },
    /// v2: Go 1.19's `pageAlloc.scavenge(nbytes, nil)`; v3: Go 1.26's
    /// `scavenge(nbytes, nil, force)`, forced unless `bg` (`scavenge N bg`,
    /// the background scavenger's).
    Scavenge {
        nbytes: u64,
        bg: bool,
        /// `stop=K`: the call's `shouldStop` said stop after K scavenged
        /// runs (a recorded call cut short, or one step of a call other ops
        /// interleaved with).
        stop: Option<u64>,
    },
    /// v2: Go's `allocToCache`; caches are numbered by `cache` line.
    Cache,
    /// v2: `pageCache.alloc(npages)` on cache `c`.
    Calloc {
        c: usize,
        npages: u64,
    },
    /// v2: `pageCache.flush` of cache `c`.
    Flush {
        c: usize,
    },
    /// v3: Go 1.26's `scavengeIndex.nextGen()`.
    NextGen,
    /// v3: Go 1.26's `markRandomPaddingPages(addr, npages)`.
    Pad {
        addr: u64,
        npages: u64,
    },
    /// v2/v3: the first part of a scavenger step that other Ps' operations
    /// interleaved with, the index's `find` (steps are numbered by
    /// `scavfind` line). `nbytes` is what the call still had to release
    /// (the step's `max`); `saw`, when Go's lock-free `find` raced with
    /// another P, is what it returned and left in its cursor.
    ScavFind {
        nbytes: u64,
        bg: bool,
        saw: Option<SawFind>,
    },
    /// v2/v3: the second part of step `s`: `scavengeOne` under the heap
    /// lock, taking the run to release (or marking the chunk empty).
    ScavTake {
        s: usize,
    },
    /// v2/v3: the third part of step `s`: the run it took back, scavenged.
    ScavGive {
        s: usize,
    },
}

impl fmt::Display for Op {
    /// The op's line in the trace text (without `t=`/`p=`), as `Trace::parse`
    /// reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Grow { base, size } => write!(f, "grow {base:#x} {size:#x}"),
            Op::Alloc { npages } => write!(f, "alloc {npages}"),
            Op::AllocConstrained {
                npages,
                align,
                within,
            } => {
                write!(f, "alloc {npages}")?;
                if align != 1 {
                    write!(f, " align={align}")?;
                }
                if let Some((lo, hi)) = within {
                    write!(f, " within={lo:#x}:{hi:#x}")?;
                }
                Ok(())
            }
            Op::AllocAt { addr, npages } => write!(f, "allocat {addr:#x} {npages}"),
            Op::Free { k } => write!(f, "free {k}"),
            Op::Scavenge { nbytes, bg, stop } => {
                write!(f, "scavenge {nbytes}")?;
                if bg {
                    f.write_str(" bg")?;
                }
                if let Some(k) = stop {
                    write!(f, " stop={k}")?;
                }
                Ok(())
            }
            Op::Cache => f.write_str("cache"),
            Op::Calloc { c, npages } => write!(f, "calloc {c} {npages}"),
            Op::Flush { c } => write!(f, "flush {c}"),
            Op::NextGen => f.write_str("nextgen"),
            Op::Pad { addr, npages } => write!(f, "pad {addr:#x} {npages}"),
            Op::ScavFind { nbytes, bg, saw } => {
                write!(f, "scavfind {nbytes}")?;
                if bg {
                    f.write_str(" bg")?;
                }
                if let Some(w) = saw {
                    write!(f, " saw={:#x}:{} cursor={:#x}", w.ci, w.page, w.cursor)?;
                    if w.marked {
                        f.write_str(":marked")?;
                    }
                }
                Ok(())
            }
            Op::ScavTake { s } => write!(f, "scavtake {s}"),
            Op::ScavGive { s } => write!(f, "scavgive {s}"),
        }
    }
}

/// What a recorded `find` that raced with another P returned (chunk 0:
/// nothing) and where it left its cursor (`cursor` 0: cleared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SawFind {
    pub ci: u64,
    pub page: u64,
    pub cursor: u64,
    pub marked: bool,
}

impl Op {
    /// The kind of the op.
    #[inline]
    pub const fn kind(&self) -> OpKind {
        match self {
            Op::Grow { .. } => OpKind::Grow,
            Op::Alloc { .. } | Op::AllocConstrained { .. } => OpKind::Alloc,
            Op::AllocAt { .. } => OpKind::AllocAt,
            Op::Free { .. } => OpKind::Free,
            Op::Scavenge { .. } => OpKind::Scavenge,
            Op::Cache => OpKind::Cache,
            Op::Calloc { .. } => OpKind::Calloc,
            Op::Flush { .. } => OpKind::Flush,
            Op::NextGen => OpKind::NextGen,
            Op::Pad { .. } => OpKind::Pad,
            Op::ScavFind { .. } => OpKind::ScavFind,
            Op::ScavTake { .. } => OpKind::ScavTake,
            Op::ScavGive { .. } => OpKind::ScavGive,
        }
    }
}

/// The kinds of trace op, for counting and timing per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Grow,
    Alloc,
    Free,
    Scavenge,
    Cache,
    Calloc,
    Flush,
    AllocAt,
    NextGen,
    Pad,
    ScavFind,
    ScavTake,
    ScavGive,
}

impl OpKind {
    /// Every kind, in a fixed order ([`OpKind::index`] is the position here).
    pub const ALL: [OpKind; 13] = [
        OpKind::Grow,
        OpKind::Alloc,
        OpKind::Free,
        OpKind::Scavenge,
        OpKind::Cache,
        OpKind::Calloc,
        OpKind::Flush,
        OpKind::AllocAt,
        OpKind::NextGen,
        OpKind::Pad,
        OpKind::ScavFind,
        OpKind::ScavTake,
        OpKind::ScavGive,
    ];

    /// The op's name in the trace text.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Grow => "grow",
            OpKind::Alloc => "alloc",
            OpKind::Free => "free",
            OpKind::Scavenge => "scavenge",
            OpKind::Cache => "cache",
            OpKind::Calloc => "calloc",
            OpKind::Flush => "flush",
            OpKind::AllocAt => "allocat",
            OpKind::NextGen => "nextgen",
            OpKind::Pad => "pad",
            OpKind::ScavFind => "scavfind",
            OpKind::ScavTake => "scavtake",
            OpKind::ScavGive => "scavgive",
        }
    }

    /// Position in [`OpKind::ALL`], for per-kind arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Only v3 traces hold this kind.
    pub const fn v3_only(self) -> bool {
        matches!(self, OpKind::NextGen | OpKind::Pad)
    }

    /// Only v2 and v3 traces hold this kind.
    pub const fn v2_only(self) -> bool {
        matches!(
            self,
            OpKind::Scavenge
                | OpKind::Cache
                | OpKind::Calloc
                | OpKind::Flush
                | OpKind::ScavFind
                | OpKind::ScavTake
                | OpKind::ScavGive
        )
    }

    pub(super) fn from_name(name: &str) -> Option<OpKind> {
        OpKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// How many ops of each kind a trace holds, indexed by [`OpKind::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts(pub [usize; OpKind::ALL.len()]);

impl OpCounts {
    /// Ops of kind `k`.
    #[inline]
    pub fn of(&self, k: OpKind) -> usize {
        self.0[k.index()]
    }

    /// Allocations that `free K` can name: `alloc`, `allocat` and `calloc` ops.
    #[inline]
    pub fn allocations(&self) -> usize {
        self.of(OpKind::Alloc) + self.of(OpKind::AllocAt) + self.of(OpKind::Calloc)
    }

    pub(super) fn add(&mut self, k: OpKind) {
        self.0[k.index()] += 1;
    }
}
