//! The text trace format shared by the replay tools, the benchmarks and the
//! differential checks against Go (docs/formats.md; "Trace format" and "Trace
//! format v2").
//!
//! One op per line, `#` starts a comment, numbers are decimal or 0x-hex:
//!
//! ```text
//! grow BASE SIZE   make [BASE, BASE+SIZE) known (rounded out to whole chunks)
//! alloc NPAGES     first-fit allocation; result is the address or 0
//!   [align=A] [within=LO:HI]   ... at a multiple of A pages, inside [LO, HI)
//! allocat ADDR NPAGES          claim exactly these pages; result ADDR or 0
//! free K           free what the K-th allocation (0-based) obtained
//! ```
//!
//! A trace whose first op line is `version 2` replays as Go 1.19's `mheap`
//! drives its `pageAlloc` (scavenged pages, 2 MiB huge pages) and may also use
//! `scavenge NBYTES`, `cache`, `calloc C NPAGES` and `flush C`; `free K`
//! then counts `alloc` and `calloc` lines. A trace whose first op line is
//! `version 3` replays with Go 1.26's allocator ([`crate::GoVersion`]): all
//! of v2's ops with Go 1.26's meaning (`scavenge NBYTES` is forced), and
//! `scavenge NBYTES bg` (the background scavenger), `nextgen` and
//! `pad ADDR NPAGES` (`markRandomPaddingPages`). The replay refuses an
//! allocator of the other Go version. In v2 and v3, `scavenge NBYTES [bg]
//! stop=K` ends the call after K `scavengeOne` steps, as a `shouldStop`
//! that says stop then: how `pagealloc record` writes a call Go cut short,
//! or each uninterrupted run of steps of a call that other operations
//! interleaved with.
//!
//! The results file has one line per op with a result (v1: only allocs,
//! `0x…`; v2: `0xADDR SCAV`, `scavenged R`, `cache 0xBASE 0xBITS 0xSCAV`),
//! then `bounds START END`, then `chunk CI I+N …` per grown chunk with its
//! maximal in-use runs, and in v2 `scav CI I+N …` with its scavenged runs.

use std::fmt::{self, Write as _};

use crate::alloc::PageAlloc;
use crate::cache::{PageCache, PAGE_CACHE_PAGES};
use crate::error::Error;
use crate::PallocBits;

/// The huge page size v2 and v3 traces replay with: linux/amd64's 2 MiB,
/// whatever the machine running the replay uses.
pub const V2_HUGE_PAGE_SIZE: u64 = 2 << 20;

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

    fn from_name(name: &str) -> Option<OpKind> {
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

    fn add(&mut self, k: OpKind) {
        self.0[k.index()] += 1;
    }
}

/// A parsed trace: the ops with the 1-based line each came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// 1, or 2 or 3 when the first op line is `version 2` or `version 3`.
    pub version: u8,
    pub ops: Vec<Op>,
    pub lines: Vec<usize>,
    /// How many ops of each kind.
    pub counts: OpCounts,
    /// The `physpage` header: Go's `physPageSize` for the replay (v2/v3;
    /// 4096 when absent).
    pub phys_page: u64,
    /// The `hugepage` header: Go's `physHugePageSize` (0: none; 2 MiB when
    /// absent).
    pub huge_page: u64,
    /// Per op, Go's monotonic time in nanoseconds since the recording
    /// started (`t=NS` on the op's line); empty when no line carries one,
    /// else one per op (an op without `t=` takes the time before it).
    pub times: Vec<u64>,
    /// Per op, the P that ran it (`p=N`), or `u32::MAX` where unknown;
    /// empty when no line carries one.
    pub procs: Vec<u32>,
}

impl Default for Trace {
    fn default() -> Trace {
        Trace {
            version: 1,
            ops: Vec::new(),
            lines: Vec::new(),
            counts: OpCounts::default(),
            phys_page: DEFAULT_PHYS_PAGE,
            huge_page: V2_HUGE_PAGE_SIZE,
            times: Vec::new(),
            procs: Vec::new(),
        }
    }
}

/// The physical page size v2 and v3 traces replay with when they have no
/// `physpage` header: linux/amd64's 4 KiB.
pub const DEFAULT_PHYS_PAGE: u64 = 4096;

/// A trace problem, tied to its 1-based line.
#[derive(Debug)]
pub struct TraceError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for TraceError {}

/// Parses a decimal or `0x`-hex unsigned 64-bit number.
pub fn parse_num(tok: &str) -> Option<u64> {
    match tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && !hex.starts_with('+') => u64::from_str_radix(hex, 16).ok(),
        Some(_) => None,
        None if !tok.is_empty() && tok.bytes().all(|b| b.is_ascii_digit()) => tok.parse().ok(),
        None => None,
    }
}

/// What the parser remembers to check `free K`, `calloc C` and `flush C`.
#[derive(Default)]
struct Liveness {
    /// Per allocation: freed already.
    freed: Vec<bool>,
    /// Per cache: flushed already.
    flushed: Vec<bool>,
    /// Per scavenger step (`scavfind` line): 0 found, 1 taken, 2 given back.
    steps: Vec<u8>,
}

impl Trace {
    /// The Go version whose allocator replays this trace: Go 1.26 for v3,
    /// Go 1.19 for v1 and v2.
    pub fn go_version(&self) -> crate::GoVersion {
        if self.version >= 3 {
            crate::GoVersion::Go126
        } else {
            crate::GoVersion::Go119
        }
    }

    /// Parses trace text, checking every line: known op (v2 ops only after
    /// `version 2`), right number of operands, numbers that parse, sizes and
    /// page counts of at least 1 (at most 64 for `calloc`), `free K` naming an
    /// earlier allocation that no earlier free named, and `calloc C` /
    /// `flush C` naming an earlier cache not yet flushed.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        let mut t = Trace::default();
        let mut live = Liveness::default();
        let mut seen_version = false;
        let mut seen_header = [false; 2];
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let body = raw.split('#').next().unwrap_or("");
            let toks: Vec<&str> = body.split_whitespace().collect();
            let Some((&op, args)) = toks.split_first() else {
                continue;
            };
            let err = |msg: String| TraceError { line, msg };
            if op == "version" {
                if !t.ops.is_empty() || seen_version || seen_header != [false; 2] {
                    return Err(err(
                        "`version` must be the first op line, and only once".into()
                    ));
                }
                t.version = match args {
                    ["1"] => 1,
                    ["2"] => 2,
                    ["3"] => 3,
                    _ => {
                        return Err(err(format!(
                            "unknown trace version {args:?}; expected 1, 2 or 3"
                        )))
                    }
                };
                seen_version = true;
                continue;
            }
            if op == "physpage" || op == "hugepage" {
                t.parse_header(op, args, &mut seen_header).map_err(err)?;
                continue;
            }
            // `t=NS` and `p=N` after an op: when and where Go ran it.
            let (mut args, mut time, mut proc) = (args, None, None);
            while let Some((last, rest)) = args.split_last() {
                if let Some(v) = last.strip_prefix("t=") {
                    time = Some(parse_num(v).ok_or_else(|| err(format!("bad t={v:?}: want nanoseconds")))?);
                } else if let Some(v) = last.strip_prefix("p=") {
                    proc = Some(
                        parse_num(v)
                            .and_then(|p| u32::try_from(p).ok())
                            .filter(|&p| p != u32::MAX)
                            .ok_or_else(|| err(format!("bad p={v:?}: want a P number")))?,
                    );
                } else {
                    break;
                }
                args = rest;
            }
            let parsed = t.parse_op(op, args, &mut live).map_err(err)?;
            t.push(parsed, line);
            if let Some(ns) = time {
                if t.times.is_empty() {
                    t.times = vec![0; t.ops.len() - 1];
                }
                t.times.push(ns);
            } else if !t.times.is_empty() {
                t.times.push(*t.times.last().unwrap_or(&0));
            }
            if proc.is_some() || !t.procs.is_empty() {
                if t.procs.is_empty() {
                    t.procs = vec![u32::MAX; t.ops.len() - 1];
                }
                t.procs.push(proc.unwrap_or(u32::MAX));
            }
        }
        Ok(t)
    }

    /// `physpage BYTES` / `hugepage BYTES`: v2 and v3 only, after `version`
    /// and before any other op, each at most once.
    fn parse_header(&mut self, op: &str, args: &[&str], seen: &mut [bool; 2]) -> Result<(), String> {
        if self.version < 2 || !self.ops.is_empty() {
            return Err(format!(
                "`{op}` is a header of v2 and v3 traces: it goes after `version` and before any other op"
            ));
        }
        let [arg] = args else {
            return Err(format!("`{op}` takes 1 operand (bytes), got {}", args.len()));
        };
        let v = parse_num(arg)
            .ok_or_else(|| format!("{op} {arg:?} is not a decimal or 0x-hex number of bytes"))?;
        let which = usize::from(op == "hugepage");
        if seen[which] {
            return Err(format!("`{op}` given twice"));
        }
        seen[which] = true;
        let (phys, huge) = if which == 0 {
            (v, self.huge_page)
        } else {
            (self.phys_page, v)
        };
        self.set_machine(phys, huge)
    }

    /// Replays this v2 or v3 trace as Go on another machine: `phys` is Go's
    /// `physPageSize` (a power of two from 4096 to 65536), `huge` its
    /// `physHugePageSize` (0, or a power of two from 2 MiB to 1 GiB, at
    /// least `phys`), as the `physpage` and `hugepage` headers say.
    pub fn set_machine(&mut self, phys: u64, huge: u64) -> Result<(), String> {
        if !phys.is_power_of_two() || !(4096..=65536).contains(&phys) {
            return Err(format!("physpage {phys}: want a power of two from 4096 to 65536"));
        }
        if huge != 0 && (!huge.is_power_of_two() || !(2 << 20..=1 << 30).contains(&huge)) {
            return Err(format!(
                "hugepage {huge}: want 0 or a power of two from 2097152 (2 MiB) to 1073741824 (1 GiB)"
            ));
        }
        if huge != 0 && huge < phys {
            return Err(format!("hugepage {huge} is smaller than physpage {phys}"));
        }
        (self.phys_page, self.huge_page) = (phys, huge);
        Ok(())
    }

    fn parse_op(&self, op: &str, args: &[&str], live: &mut Liveness) -> Result<Op, String> {
        let Some(kind) = OpKind::from_name(op) else {
            return Err(format!(
                "unknown op {op:?}; expected grow, alloc, allocat or free \
                 (v2 also: scavenge, cache, calloc, flush; v3 also: nextgen, pad)"
            ));
        };
        if kind.v3_only() && self.version < 3 {
            return Err(format!(
                "`{op}` needs a v3 trace (first op line `version 3`, Go 1.26)"
            ));
        }
        if kind.v2_only() && self.version < 2 {
            return Err(format!(
                "`{op}` needs a v2 trace (first op line `version 2`), or a v3 trace (`version 3`)"
            ));
        }
        // `scavenge N [bg] [stop=K]`: `bg` is the background scavenger, Go
        // 1.26's only; `stop=K` a call its `shouldStop` ended after K runs.
        let (mut bg, mut stop, mut saw, mut cursor) = (false, None, None, None);
        let mut args = args;
        if kind == OpKind::Scavenge || kind == OpKind::ScavFind {
            while args.len() > 1 {
                let last = args[args.len() - 1];
                if last == "bg" {
                    if bg {
                        return Err("`bg` given twice".into());
                    }
                    bg = true;
                } else if let (Some(v), OpKind::ScavFind) = (last.strip_prefix("saw="), kind) {
                    let bad = || format!("bad saw={v:?}: want saw=0xCI:PAGE");
                    let (ci, page) = v.split_once(':').ok_or_else(bad)?;
                    let (ci, page) = (parse_num(ci).ok_or_else(bad)?, parse_num(page).ok_or_else(bad)?);
                    if page >= crate::PALLOC_CHUNK_PAGES || saw.replace((ci, page)).is_some() {
                        return Err(bad());
                    }
                } else if let (Some(v), OpKind::ScavFind) = (last.strip_prefix("cursor="), kind) {
                    let bad = || format!("bad cursor={v:?}: want cursor=0xADDR or cursor=0xADDR:marked");
                    let (a, m) = match v.split_once(':') {
                        Some((a, "marked")) => (a, true),
                        Some(_) => return Err(bad()),
                        None => (v, false),
                    };
                    let a = parse_num(a).ok_or_else(bad)?;
                    if cursor.replace((a, m)).is_some() {
                        return Err(bad());
                    }
                } else if let (Some(k), OpKind::Scavenge) = (last.strip_prefix("stop="), kind) {
                    if stop.is_some() {
                        return Err("`stop=K` given twice".into());
                    }
                    match parse_num(k) {
                        Some(k) if k >= 1 => stop = Some(k),
                        _ => return Err(format!("bad stop={k:?}: want a count of at least 1")),
                    }
                } else {
                    break;
                }
                args = &args[..args.len() - 1];
            }
        }
        if saw.is_some() != cursor.is_some() {
            return Err("`saw=` and `cursor=` go together (what a raced find returned and left)".into());
        }
        if bg && self.version < 3 {
            return Err(
                "`scavenge N bg` needs a v3 trace (first op line `version 3`, Go 1.26)".into(),
            );
        }
        let want = match kind {
            OpKind::Grow | OpKind::Calloc | OpKind::AllocAt | OpKind::Pad => 2,
            OpKind::Cache | OpKind::NextGen => 0,
            OpKind::ScavFind | OpKind::ScavTake | OpKind::ScavGive => 1,
            _ => 1,
        };
        // `alloc` may add `align=A` and `within=LO:HI` after its page count.
        let (args, options) = if kind == OpKind::Alloc {
            args.split_at(args.len().min(1))
        } else {
            (args, &[][..])
        };
        if args.len() != want {
            return Err(format!(
                "`{op}` takes {want} operand(s), got {}",
                args.len()
            ));
        }
        let num = |i: usize, what: &str| -> Result<u64, String> {
            parse_num(args[i]).ok_or_else(|| {
                format!(
                    "{what} {:?} is not a decimal or 0x-hex number below 2^64",
                    args[i]
                )
            })
        };
        let at_least_1 = |v: u64, what: &str| -> Result<u64, String> {
            if v == 0 {
                return Err(format!("{op} {what} must be at least 1"));
            }
            Ok(v)
        };
        // Index `k` into `seen` (allocations or caches), not named before.
        fn take(seen: &mut [bool], k: u64, what: &str, done: &str) -> Result<usize, String> {
            let i = usize::try_from(k)
                .ok()
                .filter(|&i| i < seen.len())
                .ok_or_else(|| {
                    format!(
                        "{k} names no earlier {what} (there are {} so far)",
                        seen.len()
                    )
                })?;
            if seen[i] {
                return Err(format!("{what} {k} is already {done}"));
            }
            Ok(i)
        }
        Ok(match kind {
            OpKind::Grow => {
                let base = num(0, "base")?;
                let size = at_least_1(num(1, "size")?, "size")?;
                Op::Grow { base, size }
            }
            OpKind::Alloc => {
                let npages = at_least_1(num(0, "npages")?, "npages")?;
                let (mut align, mut within) = (1, None);
                for opt in options {
                    let bad =
                        || format!("bad alloc option {opt:?}; expected align=A or within=LO:HI");
                    let (key, value) = opt.split_once('=').ok_or_else(bad)?;
                    let number = |t: &str| {
                        parse_num(t).ok_or_else(|| {
                            format!(
                                "{key} value {t:?} is not a decimal or 0x-hex number below 2^64"
                            )
                        })
                    };
                    match key {
                        "align" => {
                            align = number(value)?;
                            if !align.is_power_of_two() {
                                return Err(format!("align={align} is not a power of two"));
                            }
                        }
                        "within" => {
                            let (lo, hi) = value.split_once(':').ok_or_else(bad)?;
                            let (lo, hi) = (number(lo)?, number(hi)?);
                            if lo >= hi {
                                return Err(format!("within={lo:#x}:{hi:#x} is empty"));
                            }
                            within = Some((lo, hi));
                        }
                        _ => return Err(bad()),
                    }
                }
                live.freed.push(false);
                if align == 1 && within.is_none() {
                    Op::Alloc { npages }
                } else {
                    Op::AllocConstrained {
                        npages,
                        align,
                        within,
                    }
                }
            }
            OpKind::AllocAt => {
                let addr = num(0, "addr")?;
                let npages = at_least_1(num(1, "npages")?, "npages")?;
                if addr % crate::arch::PAGE_SIZE != 0 {
                    return Err(format!("allocat address {addr:#x} is not page-aligned"));
                }
                live.freed.push(false);
                Op::AllocAt { addr, npages }
            }
            OpKind::Free => {
                let k = take(
                    &mut live.freed,
                    num(0, "allocation index")?,
                    "allocation",
                    "freed",
                )?;
                live.freed[k] = true;
                Op::Free { k }
            }
            OpKind::Scavenge => Op::Scavenge {
                nbytes: num(0, "nbytes")?,
                bg,
                stop,
            },
            OpKind::NextGen => Op::NextGen,
            OpKind::ScavFind => {
                live.steps.push(0);
                Op::ScavFind {
                    nbytes: num(0, "nbytes")?,
                    bg,
                    saw: saw.zip(cursor).map(|((ci, page), (cursor, marked))| SawFind {
                        ci,
                        page,
                        cursor,
                        marked,
                    }),
                }
            }
            OpKind::ScavTake | OpKind::ScavGive => {
                let k = num(0, "step")?;
                let want = u8::from(kind == OpKind::ScavGive);
                let i = usize::try_from(k)
                    .ok()
                    .filter(|&i| i < live.steps.len())
                    .ok_or_else(|| {
                        format!("{k} names no earlier scavfind (there are {} so far)", live.steps.len())
                    })?;
                if live.steps[i] != want {
                    return Err(format!(
                        "step {k} is not waiting for `{op}` (each step is scavfind, scavtake, scavgive, in order)"
                    ));
                }
                live.steps[i] += 1;
                if kind == OpKind::ScavTake {
                    Op::ScavTake { s: i }
                } else {
                    Op::ScavGive { s: i }
                }
            }
            OpKind::Pad => {
                let addr = num(0, "addr")?;
                let npages = at_least_1(num(1, "npages")?, "npages")?;
                if addr % crate::arch::PAGE_SIZE != 0 {
                    return Err(format!("pad address {addr:#x} is not page-aligned"));
                }
                Op::Pad { addr, npages }
            }
            OpKind::Cache => {
                live.flushed.push(false);
                Op::Cache
            }
            OpKind::Calloc => {
                let c = num(0, "cache")?;
                let npages = num(1, "npages")?;
                if !(1..=PAGE_CACHE_PAGES).contains(&npages) {
                    return Err(format!(
                        "calloc npages {npages} is outside 1..={PAGE_CACHE_PAGES}"
                    ));
                }
                let c = take(&mut live.flushed, c, "cache", "flushed")?;
                live.freed.push(false);
                Op::Calloc { c, npages }
            }
            OpKind::Flush => {
                let c = take(&mut live.flushed, num(0, "cache")?, "cache", "flushed")?;
                live.flushed[c] = true;
                Op::Flush { c }
            }
        })
    }

    /// This trace as the other Go's allocator replays it, for a what-if:
    /// the same requests under that Go's scavenger (the radix tree and first
    /// fit are the same in both, so every allocation lands where it did,
    /// unless a scavenger held other pages meanwhile in a many-P recording).
    /// From v3 to v2: background scavenges become Go 1.19's (forced) ones,
    /// `nextgen` is dropped (Go 1.19 has no generations), heap-base padding
    /// becomes an `allocat` of the same pages (kept out of use; `free K`
    /// renumbered past it), and raced finds lose their `saw=` (the other Go
    /// computes its own). From v2 to v3 every op keeps its meaning. The
    /// same Go, or a v1 trace, is returned as it is.
    ///
    /// Returns the trace and, per op of it, the index of the op of `self`
    /// it came from.
    pub fn for_go(&self, go: crate::GoVersion) -> (Trace, Vec<usize>) {
        let identity = || (self.clone(), (0..self.ops.len()).collect());
        if self.version < 2 || self.go_version() == go {
            return identity();
        }
        let to_v2 = self.version == 3;
        let mut t = Trace {
            version: if to_v2 { 2 } else { 3 },
            phys_page: self.phys_page,
            huge_page: self.huge_page,
            ..Trace::default()
        };
        let mut source = Vec::with_capacity(self.ops.len());
        // Allocation k of self is allocation renumber[k] of the new trace.
        let mut renumber: Vec<usize> = Vec::new();
        let mut allocations = 0usize;
        for (k, &op) in self.ops.iter().enumerate() {
            let new = match op {
                Op::NextGen if to_v2 => continue,
                Op::Pad { addr, npages } if to_v2 => {
                    allocations += 1;
                    Op::AllocAt { addr, npages }
                }
                Op::Scavenge { nbytes, stop, .. } => Op::Scavenge {
                    nbytes,
                    bg: false,
                    stop,
                },
                Op::ScavFind { nbytes, .. } => Op::ScavFind {
                    nbytes,
                    bg: false,
                    saw: None,
                },
                Op::Free { k } => Op::Free {
                    k: renumber.get(k).copied().unwrap_or(k),
                },
                other => other,
            };
            if matches!(
                op,
                Op::Alloc { .. } | Op::AllocConstrained { .. } | Op::AllocAt { .. } | Op::Calloc { .. }
            ) {
                renumber.push(allocations);
                allocations += 1;
            }
            t.push(new, self.lines[k]);
            source.push(k);
            if !self.times.is_empty() {
                t.times.push(self.times[k]);
            }
            if !self.procs.is_empty() {
                t.procs.push(self.procs[k]);
            }
        }
        (t, source)
    }

    /// The trace as text that [`Trace::parse`] reads back to an equal trace
    /// (comments and line numbers aside): the version line (v2, v3), the
    /// machine headers where they are not linux/amd64's, then one line per
    /// op with its `t=` and `p=`.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.ops.len() * 16 + 64);
        if self.version >= 2 {
            let _ = writeln!(out, "version {}", self.version);
            if self.phys_page != DEFAULT_PHYS_PAGE {
                let _ = writeln!(out, "physpage {}", self.phys_page);
            }
            if self.huge_page != V2_HUGE_PAGE_SIZE {
                let _ = writeln!(out, "hugepage {}", self.huge_page);
            }
        }
        for (k, op) in self.ops.iter().enumerate() {
            let _ = write!(out, "{op}");
            if let Some(t) = self.times.get(k) {
                let _ = write!(out, " t={t}");
            }
            if let Some(&p) = self.procs.get(k).filter(|&&p| p != u32::MAX) {
                let _ = write!(out, " p={p}");
            }
            out.push('\n');
        }
        out
    }

    /// A trace of `ops` built in code (line `k + 1` is op `k`), of the given
    /// version. The ops are not checked here; replaying reports the first
    /// invalid one.
    pub fn from_ops(version: u8, ops: Vec<Op>) -> Trace {
        let mut t = Trace {
            version,
            ..Trace::default()
        };
        for (k, op) in ops.into_iter().enumerate() {
            t.push(op, k + 1);
        }
        t
    }

    fn push(&mut self, op: Op, line: usize) {
        self.counts.add(op.kind());
        self.ops.push(op);
        self.lines.push(line);
    }
}

/// Why one trace op could not be applied.
#[derive(Debug)]
pub enum StepError {
    /// The engine refused the op.
    Engine(Error),
    /// `free K` names an allocation that returned nothing.
    FreeOfFailedAlloc { k: usize },
    /// `free K`, `calloc C` or `flush C` names something the replay has not
    /// seen (only possible for traces built with [`Trace::from_ops`]).
    NoSuch { what: &'static str, k: usize },
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError::Engine(e)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Engine(e) => e.fmt(f),
            StepError::FreeOfFailedAlloc { k } => write!(
                f,
                "free {k}: allocation {k} failed (returned 0x0), so there is nothing to free"
            ),
            StepError::NoSuch { what, k } => write!(f, "there is no {what} {k} yet"),
        }
    }
}

impl std::error::Error for StepError {}

/// Measures ops during a replay: [`Replay::run_to`] calls `start` before
/// and `stop` after each op. The unit type measures nothing and compiles away.
pub trait OpTimer {
    /// Whether this timer measures anything; when not, the replay loop
    /// skips it (and the op's kind) altogether.
    const ENABLED: bool = true;
    /// What `start` hands to `stop` (a timestamp, say).
    type Mark;
    fn start(&mut self, kind: OpKind) -> Self::Mark;
    fn stop(&mut self, kind: OpKind, mark: Self::Mark);
}

impl OpTimer for () {
    const ENABLED: bool = false;
    type Mark = ();
    #[inline(always)]
    fn start(&mut self, _: OpKind) {}
    #[inline(always)]
    fn stop(&mut self, _: OpKind, _: ()) {}
}

/// The result of one v2 op that has a result line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `alloc` or `calloc`: the address (0 on failure) and the scavenged bytes.
    Alloc { addr: u64, scav: u64 },
    /// `scavenge`: the bytes released.
    Scavenged(u64),
    /// `cache`: the cache as taken.
    Cache(PageCache),
    /// `scavfind`: the chunk and page the index's find returned (chunk 0:
    /// nothing left).
    Found { ci: u64, page: u64 },
    /// `scavtake`: the run taken to release (address 0: none, the chunk was
    /// marked empty).
    Taken { addr: u64, npages: u64 },
}

/// A scavenger step in progress in a replay (`scavfind` .. `scavgive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScavStep {
    /// What the call still had to release when the step began (its `max`).
    pub max: u64,
    /// What `find` returned (`None`: nothing).
    pub found: Option<(u64, u64)>,
    /// What `scavengeOne` took (`None`: nothing, or not yet).
    pub taken: Option<(u64, u64)>,
}

/// The state of a replay in progress. This is the one replay loop of the
/// project: the Python binding, the replay example, the scenarios and the
/// tests all drive traces through it.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The address of each allocation (`alloc` and `calloc` ops; 0 on
    /// failure), in trace order.
    pub addrs: Vec<u64>,
    /// The page count of each allocation.
    pub npages: Vec<u64>,
    /// The caches taken so far (v2), by `cache` line; flushed ones are empty.
    pub caches: Vec<PageCache>,
    /// Every result of a v2 replay in trace order (empty for v1, whose only
    /// results are `addrs`).
    pub outcomes: Vec<Outcome>,
    /// The scavenger steps so far, by `scavfind` line.
    pub steps: Vec<ScavStep>,
    /// `scavfind` ops whose `find` raced with another P in the recorded
    /// run: the replay followed what Go saw (`saw=`, `cursor=`).
    pub followed: usize,
    /// Of those, how many the replay's own `find` would have answered
    /// otherwise.
    pub followed_differed: usize,
    /// Ops replayed so far (the next op to run is `ops[done]`).
    pub done: usize,
    /// A what-if replay: the trace was recorded on another machine or Go, so
    /// where this replay's scavenger held other pages, an allocation may
    /// have failed that succeeded there (its `free K` is then skipped) and a
    /// step's take or give back may have nothing to do (skipped too).
    /// `false` (the default): each of those is an error.
    pub lenient: bool,
    /// Ops a lenient replay skipped.
    pub skipped: usize,
    /// Whether a raced find's `saw=` is followed (the default); a what-if on
    /// another machine computes its own.
    pub follow_races: bool,
    /// A v2 or v3 trace: scavenged bytes with each allocation, every result
    /// kept in `outcomes`, and the `scav` lines of the results file.
    scav_results: bool,
}

impl Replay {
    /// An empty replay with room for the allocations of `trace`.
    pub fn new(trace: &Trace) -> Replay {
        let allocs = trace.counts.allocations();
        let scav_results = trace.version >= 2;
        Replay {
            addrs: Vec::with_capacity(allocs),
            npages: Vec::with_capacity(allocs),
            caches: Vec::with_capacity(trace.counts.of(OpKind::Cache)),
            outcomes: Vec::with_capacity(if scav_results { trace.ops.len() } else { 0 }),
            steps: Vec::new(),
            followed: 0,
            followed_differed: 0,
            done: 0,
            lenient: false,
            skipped: 0,
            follow_races: true,
            scav_results,
        }
    }

    #[inline(always)]
    fn allocated(&mut self, addr: Option<u64>, npages: u64, scav: u64) {
        let addr = addr.unwrap_or(0);
        self.addrs.push(addr);
        self.npages.push(npages);
        if self.scav_results {
            self.outcomes.push(Outcome::Alloc { addr, scav });
        }
    }

    /// Applies one op. A `free` of an allocation that failed is an error.
    #[inline]
    pub fn step(&mut self, pa: &mut PageAlloc, op: Op) -> Result<(), StepError> {
        self.step_observed(pa, op, &mut |_, _| {})
    }

    /// [`step`](Self::step), calling `release(addr, bytes)` for each run the
    /// scavenger releases (where Go calls `sysUnused`: once per
    /// `madvise`). With a closure that does nothing it is `step`.
    #[inline]
    pub fn step_observed(
        &mut self,
        pa: &mut PageAlloc,
        op: Op,
        release: &mut impl FnMut(u64, u64),
    ) -> Result<(), StepError> {
        match op {
            Op::Grow { base, size } => pa.grow(base, size)?,
            Op::Alloc { npages } if !self.scav_results => {
                let a = pa.alloc(npages)?;
                self.allocated(a, npages, 0);
            }
            Op::Alloc { npages } => {
                let (a, scav) = pa.alloc_scav(npages)?;
                self.allocated(a, npages, scav);
            }
            Op::AllocConstrained {
                npages,
                align,
                within,
            } => {
                let (a, scav) = pa.alloc_constrained(npages, align, within)?;
                self.allocated(a, npages, scav);
            }
            Op::AllocAt { addr, npages } => match pa.alloc_at(addr, npages) {
                Ok(scav) => self.allocated(Some(addr), npages, scav),
                // Not all grown and free: the allocation fails, as in the
                // trace format.
                Err(Error::NotFree { .. }) | Err(Error::BeyondAddressSpace { .. }) => {
                    self.allocated(None, npages, 0)
                }
                Err(e) => return Err(e.into()),
            },
            Op::Free { k } => {
                let (Some(&a), Some(&n)) = (self.addrs.get(k), self.npages.get(k)) else {
                    return Err(StepError::NoSuch {
                        what: "allocation",
                        k,
                    });
                };
                if a == 0 {
                    if self.lenient {
                        self.skipped += 1;
                        return Ok(());
                    }
                    return Err(StepError::FreeOfFailedAlloc { k });
                }
                pa.free(a, n)?
            }
            Op::Scavenge { nbytes, bg, stop } => {
                let r = pa.scavenge_go_steps(nbytes, !bg, stop, &mut *release)?;
                self.outcomes.push(Outcome::Scavenged(r));
            }
            Op::NextGen => pa.next_gen()?,
            Op::Pad { addr, npages } => pa.mark_padding(addr, npages)?,
            Op::Cache => {
                let c = pa.alloc_to_cache()?;
                self.caches.push(c);
                self.outcomes.push(Outcome::Cache(c));
            }
            Op::Calloc { c, npages } => {
                let cache = self.cache(c)?;
                let (a, scav) = cache.alloc(npages)?;
                self.allocated(a, npages, scav);
            }
            Op::Flush { c } => {
                let mut cache = *self.cache(c)?;
                cache.flush(pa)?;
                self.caches[c] = cache;
            }
            Op::ScavFind { nbytes, bg, saw } => self.scav_find(pa, nbytes, bg, saw)?,
            Op::ScavTake { s } => self.scav_take(pa, s)?,
            Op::ScavGive { s } => self.scav_give(pa, s, release)?,
        }
        Ok(())
    }

    /// `scavtake S`: the second part of a step (kept out of `step`'s hot
    /// path, like the rest of the step parts).
    #[cold]
    #[inline(never)]
    fn scav_take(&mut self, pa: &mut PageAlloc, s: usize) -> Result<(), StepError> {
        let step = self.step_at(s)?;
        let Some((ci, page)) = step.found else {
            if self.lenient {
                self.skipped += 1;
                self.outcomes.push(Outcome::Taken { addr: 0, npages: 0 });
                return Ok(());
            }
            return Err(StepError::Engine(Error::BadScavengeStep(format!(
                "scavtake {s}: its find found nothing"
            ))));
        };
        let taken = pa.scavenge_take(ci, page, step.max)?;
        self.steps[s].taken = taken;
        let (addr, npages) = taken.unwrap_or((0, 0));
        self.outcomes.push(Outcome::Taken { addr, npages });
        Ok(())
    }

    /// `scavgive S`: the third part of a step.
    #[cold]
    #[inline(never)]
    fn scav_give(
        &mut self,
        pa: &mut PageAlloc,
        s: usize,
        release: &mut impl FnMut(u64, u64),
    ) -> Result<(), StepError> {
        let Some((addr, npages)) = self.step_at(s)?.taken else {
            if self.lenient {
                self.skipped += 1;
                return Ok(());
            }
            return Err(StepError::Engine(Error::BadScavengeStep(format!(
                "scavgive {s}: its scavtake took nothing"
            ))));
        };
        release(addr, npages << pa.layout().page_shift);
        pa.scavenge_give(addr, npages)?;
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn scav_find(
        &mut self,
        pa: &mut PageAlloc,
        max: u64,
        bg: bool,
        saw: Option<SawFind>,
    ) -> Result<(), StepError> {
        let mut found = pa.scavenge_find(!bg)?;
        if let Some(saw) = saw.filter(|_| self.follow_races) {
            // Go's lock-free find raced with another P: follow what it saw.
            let seen = (saw.ci != 0).then_some((saw.ci, saw.page));
            self.followed += 1;
            self.followed_differed += usize::from(seen != found);
            pa.set_scavenge_cursor(!bg, saw.cursor, saw.marked)?;
            found = seen;
        }
        self.steps.push(ScavStep {
            max,
            found,
            taken: None,
        });
        let (ci, page) = found.unwrap_or((0, 0));
        self.outcomes.push(Outcome::Found { ci, page });
        Ok(())
    }

    fn step_at(&self, s: usize) -> Result<ScavStep, StepError> {
        self.steps.get(s).copied().ok_or(StepError::NoSuch {
            what: "scavenger step",
            k: s,
        })
    }

    fn cache(&mut self, c: usize) -> Result<&mut PageCache, StepError> {
        self.caches.get_mut(c).ok_or(StepError::NoSuch {
            what: "cache",
            k: c,
        })
    }

    /// Before the first op: checks that `pa` follows the trace's Go and
    /// gives it the trace's machine (v2, v3: its physical and huge page
    /// sizes, from the headers or linux/amd64's).
    pub fn prepare(&mut self, pa: &mut PageAlloc, trace: &Trace) -> Result<(), TraceError> {
        // v1 (grow, alloc, free) means the same in every Go; v2 is Go
        // 1.19's, v3 Go 1.26's.
        let want = trace.go_version();
        if trace.version >= 2 && pa.go_version() != want {
            return Err(TraceError {
                line: trace.lines.first().copied().unwrap_or(1),
                msg: format!(
                    "a v{} trace replays with {want}'s page allocator, not {}'s",
                    trace.version,
                    pa.go_version()
                ),
            });
        }
        if self.scav_results {
            // The machine of the trace (its headers, else linux/amd64).
            let line = trace.lines.first().copied().unwrap_or(1);
            let machine = |e: Error| TraceError {
                line,
                msg: e.to_string(),
            };
            if pa.phys_page_size() != trace.phys_page {
                pa.set_phys_page_size(trace.phys_page).map_err(machine)?;
            }
            pa.set_phys_huge_page_size(trace.huge_page).map_err(machine)?;
        }
        Ok(())
    }

    /// Replays the next ops of `trace` up to (not including) op `to`, timing
    /// each with `timer`. Stops at the first op that fails, naming its line;
    /// `done` then counts the ops that succeeded. A v2 or v3 replay sets
    /// `pa`'s huge page size to [`V2_HUGE_PAGE_SIZE`] before its first op;
    /// `pa` must follow a v2 or v3 trace's Go version ([`Trace::go_version`];
    /// v1 replays on either).
    #[inline]
    pub fn run_to<T: OpTimer>(
        &mut self,
        pa: &mut PageAlloc,
        trace: &Trace,
        to: usize,
        timer: &mut T,
    ) -> Result<(), TraceError> {
        if self.done == 0 {
            self.prepare(pa, trace)?;
        }
        let to = to.min(trace.ops.len());
        let ops = &trace.ops[..to];
        while let Some(&op) = ops.get(self.done) {
            let res = if T::ENABLED {
                let mark = timer.start(op.kind());
                let res = self.step(pa, op);
                timer.stop(op.kind(), mark);
                res
            } else {
                self.step(pa, op)
            };
            if let Err(e) = res {
                return Err(TraceError {
                    line: trace.lines[self.done],
                    msg: e.to_string(),
                });
            }
            self.done += 1;
        }
        Ok(())
    }

    /// Replays a whole trace on `pa`, naming the line of the first op that fails.
    pub fn run(pa: &mut PageAlloc, trace: &Trace) -> Result<Replay, TraceError> {
        let mut r = Replay::new(trace);
        r.run_to(pa, trace, trace.ops.len(), &mut ())?;
        Ok(r)
    }

    /// The results file of the replay so far (the format Go's harness
    /// writes too): the result lines, the bounds, every grown chunk's in-use
    /// runs and, for v2, its scavenged runs.
    pub fn results_file(&self, pa: &PageAlloc) -> String {
        let mut out = String::with_capacity(self.addrs.len() * 16 + 64);
        if self.scav_results {
            for o in &self.outcomes {
                let _ = match o {
                    Outcome::Alloc { addr, scav } => writeln!(out, "{addr:#x} {scav}"),
                    Outcome::Scavenged(r) => writeln!(out, "scavenged {r}"),
                    Outcome::Cache(c) => {
                        writeln!(out, "cache {:#x} {:#x} {:#x}", c.base, c.cache, c.scav)
                    }
                    Outcome::Found { ci, page } => writeln!(out, "found {ci:#x} {page}"),
                    Outcome::Taken { addr: 0, .. } => writeln!(out, "taken 0x0 0 0"),
                    Outcome::Taken { addr, npages } => {
                        let lin = pa.layout().lin(*addr);
                        let (ci, page) = (lin >> crate::arch::LOG_PALLOC_CHUNK_BYTES, (lin % crate::PALLOC_CHUNK_BYTES) / crate::PAGE_SIZE);
                        writeln!(out, "taken {ci:#x} {page} {npages}")
                    }
                };
            }
        } else {
            for &a in &self.addrs {
                let _ = writeln!(out, "{a:#x}");
            }
        }
        let (start, end) = pa.bounds();
        let _ = writeln!(out, "bounds {start:#x} {end:#x}");
        let runs_line = |out: &mut String, tag: &str, ci: u64, bits: PallocBits| {
            let _ = write!(out, "{tag} {ci:#x}");
            for (i, n) in bits.runs() {
                let _ = write!(out, " {i}+{n}");
            }
            out.push('\n');
        };
        for ci in pa.grown_chunks() {
            runs_line(&mut out, "chunk", ci, pa.data(ci).bits);
        }
        if self.scav_results {
            for ci in pa.grown_chunks() {
                runs_line(&mut out, "scav", ci, pa.data(ci).scavenged);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Arch;

    #[test]
    fn parses_and_reports_lines() {
        let t = Trace::parse("# hi\ngrow 0x3000000000 0x400000\nalloc 3 # c\n\nfree 0\n").unwrap();
        assert_eq!(
            t.ops,
            vec![
                Op::Grow {
                    base: 0x30_0000_0000,
                    size: 0x40_0000
                },
                Op::Alloc { npages: 3 },
                Op::Free { k: 0 }
            ]
        );
        assert_eq!(t.lines, vec![2, 3, 5]);
        for (text, line, frag) in [
            ("alloc 1\nfree 1\n", 2, "names no earlier alloc"),
            ("alloc 1\nfree 0\nfree 0\n", 3, "already freed"),
            ("grow 1\n", 1, "takes 2"),
            ("alloc x\n", 1, "not a decimal"),
            ("alloc 0\n", 1, "at least 1"),
            ("mmap 1\n", 1, "unknown op"),
            ("alloc 0x\n", 1, "not a decimal"),
            ("alloc 99999999999999999999\n", 1, "not a decimal"),
        ] {
            let e = Trace::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e.msg.contains(frag), "{text:?}: {}", e.msg);
        }
    }

    #[test]
    fn text_round_trips_through_display() {
        let text = "version 3\nphyspage 16384\nhugepage 0\ngrow 0x3000000000 0x800000 t=5 p=1\n\
                    alloc 3\nalloc 600 align=8 within=0x3000000000:0x3000800000\nallocat 0x3000400000 2\n\
                    cache\ncalloc 0 2\nfree 0\nflush 0\nscavenge 8192 bg stop=2\nnextgen\n\
                    pad 0x3000700000 5\nscavfind 65536 bg saw=0x200c001:511 cursor=0x30007fe000:marked\n\
                    scavtake 0\nscavgive 0\n";
        let t = Trace::parse(text).unwrap();
        let again = Trace::parse(&t.to_text()).unwrap();
        assert_eq!(again.ops, t.ops);
        assert_eq!((again.phys_page, again.huge_page), (16384, 0));
        assert_eq!((again.times, again.procs), (t.times.clone(), t.procs.clone()));
        assert_eq!(t.ops[1].to_string(), "alloc 3");
        // For Go 1.19: background and padding gone, frees renumbered.
        let (v2, from) = t.for_go(crate::GoVersion::Go119);
        let text2 = v2.to_text();
        assert!(text2.starts_with("version 2\nphyspage 16384\nhugepage 0\n"));
        assert!(!text2.contains(" bg") && !text2.contains("nextgen") && !text2.contains("pad "));
        assert!(text2.contains("allocat 0x3000700000 5 t=5") && text2.contains("scavfind 65536 t=5\n"));
        assert_eq!(from.len(), v2.ops.len());
        assert_eq!(v2.ops.len(), t.ops.len() - 1);
        Trace::parse(&text2).unwrap();
    }

    #[test]
    fn replays_and_writes_results() {
        let t = Trace::parse(
            "grow 0x3000000000 0x800000\nalloc 3\nalloc 600\nfree 0\nalloc 1\nalloc 4096\n",
        )
        .unwrap();
        let mut pa = PageAlloc::new_go(Arch::Amd64, crate::GoVersion::Go119).unwrap();
        let r = Replay::run(&mut pa, &t).unwrap();
        assert_eq!(
            r.addrs,
            vec![0x30_0000_0000, 0x30_0000_6000, 0x30_0000_0000, 0]
        );
        assert_eq!(
            r.results_file(&pa),
            "0x3000000000\n0x3000006000\n0x3000000000\n0x0\nbounds 0x200c000 0x200c002\n\
             chunk 0x200c000 0+1 3+509\nchunk 0x200c001 0+91\n"
        );
        let bad = Trace::parse("grow 0x3000000000 0x400000\nalloc 1024\nfree 0\n").unwrap();
        let mut pa = PageAlloc::new_go(Arch::Amd64, crate::GoVersion::Go119).unwrap();
        assert_eq!(Replay::run(&mut pa, &bad).unwrap_err().line, 3);
    }

    #[test]
    fn v2_parses_replays_and_writes_scav_runs() {
        let t = Trace::parse(
            "version 2\ngrow 0x3000000000 0x400000\nalloc 2\ncache\ncalloc 0 3\nfree 1\n\
             free 0\nscavenge 0x2000\nflush 0\n",
        )
        .unwrap();
        assert_eq!(t.version, 2);
        assert_eq!(t.counts.allocations(), 2);
        assert_eq!(t.counts.of(OpKind::Scavenge), 1);
        let mut pa = PageAlloc::new_go(Arch::Amd64, crate::GoVersion::Go119).unwrap();
        let r = Replay::run(&mut pa, &t).unwrap();
        pa.verify().unwrap();
        // alloc 2 takes scavenged pages 0-1; the cache the rest of block 0;
        // calloc 3 its pages 2-4; the frees give back 0-4 unscavenged. The
        // scavenger wants one page: the highest free unscavenged one is 4,
        // and the run [0, 5) holds no whole 2 MiB huge page, so it takes
        // page 4 alone. The flush returns 5-63 scavenged.
        assert_eq!(
            r.results_file(&pa),
            "0x3000000000 16384\ncache 0x3000000000 0xfffffffffffffffc 0xfffffffffffffffc\n\
             0x3000004000 24576\nscavenged 8192\nbounds 0x200c000 0x200c001\nchunk 0x200c000\n\
             scav 0x200c000 4+508\n"
        );
    }

    #[test]
    fn constrained_forms_parse_and_replay() {
        let t = Trace::parse(
            "grow 0x3000000000 0x800000\nalloc 1\nalloc 2 align=4\n\
             alloc 1 within=0x3000400000:0x3000800000\nalloc 3 align=2 within=0x3000002000:0x3000100000\n\
             allocat 0x3000012000 2\nallocat 0x3000000000 1\nfree 4\n",
        )
        .unwrap();
        assert_eq!(t.counts.allocations(), 6);
        let mut pa = PageAlloc::new_go(Arch::Amd64, crate::GoVersion::Go119).unwrap();
        let r = Replay::run(&mut pa, &t).unwrap();
        assert_eq!(
            r.addrs,
            vec![
                0x30_0000_0000,
                0x30_0000_8000,
                0x30_0040_0000,
                // Pages 2-4 would take page 4 (in use): the next aligned fit.
                0x30_0000_c000,
                0x30_0001_2000,
                0
            ]
        );
        pa.verify().unwrap();
        for (text, frag) in [
            ("alloc 1 align=3\n", "not a power of two"),
            ("alloc 1 within=5:5\n", "is empty"),
            ("alloc 1 size=4\n", "bad alloc option"),
            ("alloc 1 within=5\n", "bad alloc option"),
            ("allocat 0x3000000001 1\n", "not page-aligned"),
            ("allocat 0x3000000000\n", "takes 2"),
        ] {
            let e = Trace::parse(text).unwrap_err();
            assert!(e.msg.contains(frag), "{text:?}: {}", e.msg);
        }
    }
}
