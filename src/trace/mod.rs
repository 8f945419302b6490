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

//!
//! The module, one concern a file: [`ops`](self) (the ops and their text),
//! the parser and the [`Trace`] (`parse.rs`), the one replay loop
//! (`replay.rs`) and the results file (`results.rs`).

mod ops;
mod parse;
mod replay;
mod results;

pub use ops::{Op, OpCounts, OpKind, SawFind};
pub use parse::{parse_num, Trace, TraceError};
pub use replay::{Allocation, OpTimer, Outcome, Replay, ScavStep, StepError};

/// The huge page size v2 and v3 traces replay with: linux/amd64's 2 MiB,
/// whatever the machine running the replay uses.
pub const V2_HUGE_PAGE_SIZE: u64 = 2 << 20;

/// The physical page size v2 and v3 traces replay with when they have no
/// `physpage` header: linux/amd64's 4 KiB.
pub const DEFAULT_PHYS_PAGE: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, PageAlloc};

    /// A fresh amd64 allocator following Go 1.19 (these traces are v1/v2).
    fn go119() -> PageAlloc {
        PageAlloc::builder(Arch::Amd64)
            .go(crate::GoVersion::Go119)
            .build()
            .unwrap()
    }

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
        assert_eq!(
            (again.times, again.procs),
            (t.times.clone(), t.procs.clone())
        );
        assert_eq!(t.ops[1].to_string(), "alloc 3");
        // For Go 1.19: background and padding gone, frees renumbered.
        let (v2, from) = t.for_go(crate::GoVersion::Go119);
        let text2 = v2.to_text();
        assert!(text2.starts_with("version 2\nphyspage 16384\nhugepage 0\n"));
        assert!(!text2.contains(" bg") && !text2.contains("nextgen") && !text2.contains("pad "));
        assert!(
            text2.contains("allocat 0x3000700000 5 t=5") && text2.contains("scavfind 65536 t=5\n")
        );
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
        let mut pa = go119();
        let r = Replay::run(&mut pa, &t).unwrap();
        assert_eq!(
            r.allocs.iter().map(|a| a.addr).collect::<Vec<_>>(),
            vec![0x30_0000_0000, 0x30_0000_6000, 0x30_0000_0000, 0]
        );
        assert_eq!(
            r.results_file(&pa),
            "0x3000000000\n0x3000006000\n0x3000000000\n0x0\nbounds 0x200c000 0x200c002\n\
             chunk 0x200c000 0+1 3+509\nchunk 0x200c001 0+91\n"
        );
        let bad = Trace::parse("grow 0x3000000000 0x400000\nalloc 1024\nfree 0\n").unwrap();
        let mut pa = go119();
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
        let mut pa = go119();
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
        let mut pa = go119();
        let r = Replay::run(&mut pa, &t).unwrap();
        assert_eq!(
            r.allocs.iter().map(|a| a.addr).collect::<Vec<_>>(),
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
