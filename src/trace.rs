//! The text trace format shared by the replay tools, the benchmarks and the
//! differential checks against Go (see DESIGN.md, "Trace format").
//!
//! One op per line, `#` starts a comment, numbers are decimal or 0x-hex:
//!
//! ```text
//! grow BASE SIZE   make [BASE, BASE+SIZE) known (rounded out to whole chunks)
//! alloc NPAGES     first-fit allocation; result is the address or 0
//! free K           free what the K-th alloc line (0-based) obtained
//! ```
//!
//! The results file has one `0x…` line per alloc (`0x0` on failure), then
//! `bounds START END`, then `chunk CI I+N …` per grown chunk with its maximal
//! in-use runs.

use std::fmt::{self, Write as _};

use crate::alloc::PageAlloc;
use crate::error::Error;

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
    /// Frees the pages of the `k`-th alloc (0-based among alloc lines).
    Free {
        k: usize,
    },
}

impl Op {
    /// The kind of the op.
    #[inline]
    pub const fn kind(&self) -> OpKind {
        match self {
            Op::Grow { .. } => OpKind::Grow,
            Op::Alloc { .. } => OpKind::Alloc,
            Op::Free { .. } => OpKind::Free,
        }
    }
}

/// The kinds of trace op, for counting and timing per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Grow,
    Alloc,
    Free,
}

impl OpKind {
    /// Every kind, in a fixed order ([`OpKind::index`] is the position here).
    pub const ALL: [OpKind; 3] = [OpKind::Grow, OpKind::Alloc, OpKind::Free];

    /// The op's name in the trace text.
    pub const fn name(self) -> &'static str {
        match self {
            OpKind::Grow => "grow",
            OpKind::Alloc => "alloc",
            OpKind::Free => "free",
        }
    }

    /// Position in [`OpKind::ALL`], for per-kind arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
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

    fn add(&mut self, k: OpKind) {
        self.0[k.index()] += 1;
    }
}

/// A parsed trace: the ops with the 1-based line each came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    pub ops: Vec<Op>,
    pub lines: Vec<usize>,
    /// How many ops of each kind.
    pub counts: OpCounts,
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

impl Trace {
    /// Parses trace text, checking every line: known op, right number of
    /// operands, numbers that parse, sizes and page counts of at least 1, and
    /// `free K` naming an earlier alloc line that no earlier free named.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        let mut t = Trace::default();
        let mut freed = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |msg: String| TraceError { line, msg };
            let body = raw.split('#').next().unwrap_or("");
            let toks: Vec<&str> = body.split_whitespace().collect();
            let Some((&op, args)) = toks.split_first() else {
                continue;
            };
            let num = |i: usize, what: &str| -> Result<u64, TraceError> {
                parse_num(args[i]).ok_or_else(|| {
                    err(format!(
                        "{what} {:?} is not a decimal or 0x-hex number below 2^64",
                        args[i]
                    ))
                })
            };
            let want = |n: usize| -> Result<(), TraceError> {
                if args.len() != n {
                    return Err(err(format!(
                        "`{op}` takes {n} operand(s), got {}",
                        args.len()
                    )));
                }
                Ok(())
            };
            let parsed = match op {
                "grow" => {
                    want(2)?;
                    let (base, size) = (num(0, "base")?, num(1, "size")?);
                    if size == 0 {
                        return Err(err("grow size must be at least 1".into()));
                    }
                    Op::Grow { base, size }
                }
                "alloc" => {
                    want(1)?;
                    let npages = num(0, "npages")?;
                    if npages == 0 {
                        return Err(err("alloc npages must be at least 1".into()));
                    }
                    freed.push(false);
                    Op::Alloc { npages }
                }
                "free" => {
                    want(1)?;
                    let k = num(0, "alloc index")?;
                    let k = usize::try_from(k)
                        .ok()
                        .filter(|&k| k < freed.len())
                        .ok_or_else(|| {
                            err(format!(
                                "free {k} names no earlier alloc line (there are {} so far)",
                                freed.len()
                            ))
                        })?;
                    if std::mem::replace(&mut freed[k], true) {
                        return Err(err(format!("alloc {k} is freed twice")));
                    }
                    Op::Free { k }
                }
                other => {
                    return Err(err(format!(
                        "unknown op {other:?}; expected grow, alloc or free"
                    )));
                }
            };
            t.push(parsed, line);
        }
        Ok(t)
    }

    /// A trace of `ops` built in code (line `k + 1` is op `k`). The ops are
    /// not checked here; replaying reports the first invalid one.
    pub fn from_ops(ops: Vec<Op>) -> Trace {
        let mut t = Trace::default();
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
    /// `free K` names an alloc that returned nothing.
    FreeOfFailedAlloc { k: usize },
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
            StepError::FreeOfFailedAlloc { k } => {
                write!(
                    f,
                    "free {k}: alloc {k} failed (returned 0x0), so there is nothing to free"
                )
            }
        }
    }
}

impl std::error::Error for StepError {}

/// Measures ops during a replay: [`Replay::run_to`] calls `start` before
/// and `stop` after each op. The unit type measures nothing and compiles away.
pub trait OpTimer {
    /// What `start` hands to `stop` (a timestamp, say).
    type Mark;
    fn start(&mut self, kind: OpKind) -> Self::Mark;
    fn stop(&mut self, kind: OpKind, mark: Self::Mark);
}

impl OpTimer for () {
    type Mark = ();
    #[inline(always)]
    fn start(&mut self, _: OpKind) {}
    #[inline(always)]
    fn stop(&mut self, _: OpKind, _: ()) {}
}

/// The state of a replay in progress: what each alloc returned. This is the
/// one replay loop of the project: the Python binding, the replay example,
/// the scenarios and the tests all drive traces through it.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The address of each alloc op (0 on failure), in trace order.
    pub addrs: Vec<u64>,
    /// The page count of each alloc op.
    pub npages: Vec<u64>,
    /// Ops replayed so far (the next op to run is `ops[done]`).
    pub done: usize,
}

impl Replay {
    /// An empty replay with room for the allocations of `trace`.
    pub fn new(trace: &Trace) -> Replay {
        let allocs = trace.counts.of(OpKind::Alloc);
        Replay {
            addrs: Vec::with_capacity(allocs),
            npages: Vec::with_capacity(allocs),
            done: 0,
        }
    }

    /// Applies one op. A `free` of an alloc that failed is an error.
    #[inline]
    pub fn step(&mut self, pa: &mut PageAlloc, op: Op) -> Result<(), StepError> {
        match op {
            Op::Grow { base, size } => Ok(pa.grow(base, size)?),
            Op::Alloc { npages } => {
                let a = pa.alloc(npages)?.unwrap_or(0);
                self.addrs.push(a);
                self.npages.push(npages);
                Ok(())
            }
            Op::Free { k } => {
                let a = self.addrs[k];
                if a == 0 {
                    return Err(StepError::FreeOfFailedAlloc { k });
                }
                Ok(pa.free(a, self.npages[k])?)
            }
        }
    }

    /// Replays the next ops of `trace` up to (not including) op `to`, timing
    /// each with `timer`. Stops at the first op that fails, naming its line;
    /// `done` then counts the ops that succeeded.
    #[inline]
    pub fn run_to<T: OpTimer>(
        &mut self,
        pa: &mut PageAlloc,
        trace: &Trace,
        to: usize,
        timer: &mut T,
    ) -> Result<(), TraceError> {
        let to = to.min(trace.ops.len());
        while self.done < to {
            let op = trace.ops[self.done];
            let mark = timer.start(op.kind());
            let res = self.step(pa, op);
            timer.stop(op.kind(), mark);
            res.map_err(|e| TraceError {
                line: trace.lines[self.done],
                msg: e.to_string(),
            })?;
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
}

/// The results file of a finished replay (the format Go's harness writes too).
pub fn results_file(pa: &PageAlloc, addrs: &[u64]) -> String {
    let mut out = String::with_capacity(addrs.len() * 14 + 64);
    for &a in addrs {
        let _ = writeln!(out, "{a:#x}");
    }
    let (start, end) = pa.bounds();
    let _ = writeln!(out, "bounds {start:#x} {end:#x}");
    for ci in pa.grown_chunks() {
        let _ = write!(out, "chunk {ci:#x}");
        for (i, n) in pa.chunk_bitmap(ci).map(|b| b.runs()).unwrap_or_default() {
            let _ = write!(out, " {i}+{n}");
        }
        out.push('\n');
    }
    out
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
            ("alloc 1\nfree 0\nfree 0\n", 3, "freed twice"),
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
    fn replays_and_writes_results() {
        let t = Trace::parse(
            "grow 0x3000000000 0x800000\nalloc 3\nalloc 600\nfree 0\nalloc 1\nalloc 4096\n",
        )
        .unwrap();
        let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
        let r = Replay::run(&mut pa, &t).unwrap();
        assert_eq!(
            r.addrs,
            vec![0x30_0000_0000, 0x30_0000_6000, 0x30_0000_0000, 0]
        );
        assert_eq!(
            results_file(&pa, &r.addrs),
            "0x3000000000\n0x3000006000\n0x3000000000\n0x0\nbounds 0x200c000 0x200c002\n\
             chunk 0x200c000 0+1 3+509\nchunk 0x200c001 0+91\n"
        );
        let bad = Trace::parse("grow 0x3000000000 0x400000\nalloc 1024\nfree 0\n").unwrap();
        let mut pa = PageAlloc::new(Arch::Amd64).unwrap();
        assert_eq!(Replay::run(&mut pa, &bad).unwrap_err().line, 3);
    }
}
