//! The parser: trace text to a [`Trace`], every line checked; and back
//! (`to_text`), and a trace for the other Go (`for_go`).

use std::fmt::{self, Write as _};

use super::ops::{Op, OpCounts, OpKind, SawFind};
use super::{DEFAULT_PHYS_PAGE, V2_HUGE_PAGE_SIZE};
use crate::cache::PAGE_CACHE_PAGES;

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
                    time = Some(
                        parse_num(v)
                            .ok_or_else(|| err(format!("bad t={v:?}: want nanoseconds")))?,
                    );
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
    fn parse_header(
        &mut self,
        op: &str,
        args: &[&str],
        seen: &mut [bool; 2],
    ) -> Result<(), String> {
        if self.version < 2 || !self.ops.is_empty() {
            return Err(format!(
                "`{op}` is a header of v2 and v3 traces: it goes after `version` and before any other op"
            ));
        }
        let [arg] = args else {
            return Err(format!(
                "`{op}` takes 1 operand (bytes), got {}",
                args.len()
            ));
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
            return Err(format!(
                "physpage {phys}: want a power of two from 4096 to 65536"
            ));
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
                    let (ci, page) = (
                        parse_num(ci).ok_or_else(bad)?,
                        parse_num(page).ok_or_else(bad)?,
                    );
                    if page >= crate::PALLOC_CHUNK_PAGES || saw.replace((ci, page)).is_some() {
                        return Err(bad());
                    }
                } else if let (Some(v), OpKind::ScavFind) = (last.strip_prefix("cursor="), kind) {
                    let bad =
                        || format!("bad cursor={v:?}: want cursor=0xADDR or cursor=0xADDR:marked");
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
            return Err(
                "`saw=` and `cursor=` go together (what a raced find returned and left)".into(),
            );
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
                    saw: saw
                        .zip(cursor)
                        .map(|((ci, page), (cursor, marked))| SawFind {
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
                        format!(
                            "{k} names no earlier scavfind (there are {} so far)",
                            live.steps.len()
                        )
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
                Op::Alloc { .. }
                    | Op::AllocConstrained { .. }
                    | Op::AllocAt { .. }
                    | Op::Calloc { .. }
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
