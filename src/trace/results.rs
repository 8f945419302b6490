//! The results file: what a replay returned and the state it left, in the
//! format Go's harness writes too, so two runs compare as text.

use std::fmt::Write as _;

use super::replay::{Allocation, Outcome, Replay};
use crate::alloc::PageAlloc;
use crate::PallocBits;

impl Replay {
    /// The results file of the replay so far (the format Go's harness
    /// writes too): the result lines, the bounds, every grown chunk's in-use
    /// runs and, for v2, its scavenged runs.
    pub fn results_file(&self, pa: &PageAlloc) -> String {
        let mut out = String::with_capacity(self.allocs.len() * 16 + 64);
        if self.scav_results {
            let alloc_line = |out: &mut String, a: &Allocation| {
                let _ = writeln!(out, "{:#x} {}", a.addr, a.scav);
            };
            // Each outcome after the allocations made before it.
            let mut k = 0;
            for (before, o) in &self.outcomes {
                for a in &self.allocs[k..*before] {
                    alloc_line(&mut out, a);
                }
                k = *before;
                let _ = match o {
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
            for a in &self.allocs[k..] {
                alloc_line(&mut out, a);
            }
        } else {
            for a in &self.allocs {
                let _ = writeln!(out, "{:#x}", a.addr);
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
