//! The results file: what a replay returned and the state it left, in the
//! format Go's harness writes too, so two runs compare as text.

use std::fmt::Write as _;

use super::replay::{Outcome, Replay};
use crate::alloc::PageAlloc;
use crate::PallocBits;

impl Replay {
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
                        let (ci, page) = (
                            lin >> crate::arch::LOG_PALLOC_CHUNK_BYTES,
                            (lin % crate::PALLOC_CHUNK_BYTES) / crate::PAGE_SIZE,
                        );
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
