//! What the kernel would see of a replayed heap: a census of its pages
//! after every op, for `pagealloc whatif` (the heap on other machines and
//! under the other Go's scavenger) and the timelines.
//!
//! The allocator knows runtime pages (8 KiB): in use, free, and free and
//! scavenged (released to the OS). The kernel knows physical pages of the
//! machine's size and, where transparent huge pages exist, aligned huge
//! pages. A physical page is resident when any runtime page in it is not
//! scavenged (in use, or free but not yet released; grown memory starts
//! scavenged, never touched, and Go 1.26's heap-base padding stays
//! scavenged). So, per chunk and summed over the heap:
//! - `go_resident`: runtime pages not scavenged (Go's own accounting);
//! - `rss`: resident physical pages, in bytes (runtime pages when physical
//!   pages are smaller);
//! - `trapped`: free, unreleased runtime pages whose physical page also
//!   holds an in-use page, so the scavenger can never release them (it
//!   releases whole physical pages only);
//! - `covered`: in-use pages inside aligned huge-page regions that are
//!   resident throughout (what transparent huge pages could back).
//!
//! The census is kept incrementally: after each op only the chunks the op
//! changed are counted again (a chunk is 8 words of each bitmap). Huge
//! pages larger than a chunk (512 MiB on arm64 with 64 KiB pages) are
//! covered when every chunk of the region is grown and wholly resident.

use crate::alloc::PageAlloc;
use crate::bits::{PallocBits, WORDS};
use crate::trace::{Op, Outcome, Replay, Trace, TraceError};
use crate::PALLOC_CHUNK_PAGES;
use std::collections::HashMap;

/// One chunk's counts (runtime pages, and resident physical pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ChunkCount {
    in_use: u64,
    /// Free pages that are scavenged (released, or never touched).
    free_scavenged: u64,
    go_resident: u64,
    rss_groups: u64,
    trapped: u64,
    /// In-use pages in resident huge regions inside the chunk (huge pages
    /// of at most a chunk).
    covered: u64,
    /// Every page of the chunk is resident (for huge pages above a chunk).
    all_resident: bool,
}

/// The heap's totals at one moment (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CensusPoint {
    /// Bytes of grown chunks (in use + free).
    pub grown_bytes: u64,
    pub in_use_bytes: u64,
    /// Free and scavenged: returned to the OS (or never touched).
    pub free_scavenged_bytes: u64,
    pub go_resident_bytes: u64,
    pub rss_bytes: u64,
    pub trapped_bytes: u64,
    pub covered_bytes: u64,
}

/// The census of one allocator, kept up to date chunk by chunk.
#[derive(Clone, Debug)]
pub struct Census {
    /// Runtime pages per physical page (1 when physical pages are smaller).
    group: u64,
    /// Bytes a resident group counts for.
    group_bytes: u64,
    /// Runtime pages per huge page (0: none).
    huge: u64,
    page_bytes: u64,
    chunks: HashMap<u64, ChunkCount>,
    /// Regions of huge pages above a chunk: region -> (wholly resident
    /// chunks, in-use pages).
    regions: HashMap<u64, (u64, u64)>,
    totals: ChunkCount,
    covered_big: u64,
}

impl ChunkCount {
    /// `self + new - old`, field by field (the totals after a recount).
    fn replace(&mut self, old: &ChunkCount, new: &ChunkCount) {
        self.in_use = self.in_use + new.in_use - old.in_use;
        self.free_scavenged = self.free_scavenged + new.free_scavenged - old.free_scavenged;
        self.go_resident = self.go_resident + new.go_resident - old.go_resident;
        self.rss_groups = self.rss_groups + new.rss_groups - old.rss_groups;
        self.trapped = self.trapped + new.trapped - old.trapped;
        self.covered = self.covered + new.covered - old.covered;
    }
}

/// `x` with bit `g * k` set for every `g`-bit group (k = 0, 1, ...) that
/// has any bit set; `g` a power of two up to 64.
#[inline]
fn any_in_groups(x: u64, g: u64) -> u64 {
    let mut v = x;
    let mut s = 1;
    while s < g {
        v |= v >> s;
        s <<= 1;
    }
    v & group_starts(g)
}

/// Bits 0, g, 2g, ... of a word.
#[inline]
fn group_starts(g: u64) -> u64 {
    match g {
        1 => !0,
        2 => 0x5555_5555_5555_5555,
        4 => 0x1111_1111_1111_1111,
        8 => 0x0101_0101_0101_0101,
        16 => 0x0001_0001_0001_0001,
        32 => 0x0000_0001_0000_0001,
        _ => 1,
    }
}

/// Spreads each set group-start bit over its whole `g`-bit group.
#[inline]
fn spread(starts: u64, g: u64) -> u64 {
    let mut v = starts;
    let mut s = 1;
    while s < g {
        v |= v << s;
        s <<= 1;
    }
    v
}

impl Census {
    /// A census for `pa`'s machine (its physical and huge page sizes),
    /// counting every grown chunk now.
    pub fn new(pa: &PageAlloc) -> Census {
        let page_bytes = pa.layout().page_size();
        let group = (pa.phys_page_size() / page_bytes).max(1);
        let huge = pa.phys_huge_page_size() / page_bytes;
        let mut c = Census {
            group,
            group_bytes: group * page_bytes,
            huge: if huge > 1 { huge } else { 0 },
            page_bytes,
            chunks: HashMap::new(),
            regions: HashMap::new(),
            totals: ChunkCount::default(),
            covered_big: 0,
        };
        let grown: Vec<u64> = pa.grown_chunks().collect();
        for ci in grown {
            c.recount(pa, ci);
        }
        c
    }

    /// Counts chunk `ci` again (after an op changed it).
    pub fn recount(&mut self, pa: &PageAlloc, ci: u64) {
        if !pa.is_grown(ci) {
            return;
        }
        let d = pa.data(ci);
        let new = self.count(&d.bits, &d.scavenged);
        let old = self.chunks.insert(ci, new).unwrap_or_default();
        self.totals.replace(&old, &new);
        if self.huge > PALLOC_CHUNK_PAGES {
            let per = self.huge / PALLOC_CHUNK_PAGES;
            let region = ci / per;
            let e = self.regions.entry(region).or_default();
            let was = if e.0 == per { e.1 } else { 0 };
            e.0 = e.0 + u64::from(new.all_resident) - u64::from(old.all_resident);
            e.1 = e.1 + new.in_use - old.in_use;
            let now = if e.0 == per { e.1 } else { 0 };
            self.covered_big = self.covered_big + now - was;
        }
    }

    fn count(&self, bits: &PallocBits, scav: &PallocBits) -> ChunkCount {
        let g = self.group;
        let mut c = ChunkCount {
            all_resident: true,
            ..ChunkCount::default()
        };
        for w in 0..WORDS {
            let (used, sc) = (bits.0[w], scav.0[w]);
            let resident = !sc;
            c.in_use += u64::from(used.count_ones());
            c.free_scavenged += u64::from((!used & sc).count_ones());
            c.go_resident += u64::from(resident.count_ones());
            if g <= 64 {
                c.rss_groups += u64::from(any_in_groups(resident, g).count_ones());
                let used_groups = spread(any_in_groups(used, g), g);
                c.trapped += u64::from((!used & resident & used_groups).count_ones());
            }
            c.all_resident &= sc == 0;
        }
        if self.huge > 1 && self.huge <= PALLOC_CHUNK_PAGES {
            let h = self.huge;
            let mut i = 0;
            while i < PALLOC_CHUNK_PAGES {
                if scav.popcnt_range(i, h) == 0 {
                    c.covered += bits.popcnt_range(i, h);
                }
                i += h;
            }
        }
        c
    }

    /// The totals now.
    pub fn point(&self) -> CensusPoint {
        let t = &self.totals;
        CensusPoint {
            grown_bytes: self.chunks.len() as u64 * PALLOC_CHUNK_PAGES * self.page_bytes,
            in_use_bytes: t.in_use * self.page_bytes,
            free_scavenged_bytes: t.free_scavenged * self.page_bytes,
            go_resident_bytes: t.go_resident * self.page_bytes,
            rss_bytes: t.rss_groups * self.group_bytes,
            trapped_bytes: t.trapped * self.page_bytes,
            covered_bytes: (t.covered + self.covered_big) * self.page_bytes,
        }
    }
}

/// The census after every op of a replay, and what the scavenger released.
#[derive(Clone, Debug, Default)]
pub struct CensusRun {
    /// `points[i]`: the heap after op `i` (of those replayed by this run).
    pub points: Vec<CensusPoint>,
    /// The bytes of each release, in order: one per run the scavenger
    /// returned to the OS (one `madvise` each).
    pub releases: Vec<u64>,
}

/// Replays the next op of `trace` and says what it changed: `touched`
/// (cleared first) gets the chunks whose bitmaps it may have changed, sorted
/// and without repeats (those its result or operands name, and those
/// holding the runs the scavenger released), and `releases` (cleared first)
/// each run released as `(address, bytes)`, one `madvise` each. The one
/// place that knows where each kind of op acts; the census and the view
/// both replay through it. Returns the op; a failing op is named by line.
pub fn step_touching(
    replay: &mut Replay,
    pa: &mut PageAlloc,
    trace: &Trace,
    touched: &mut Vec<u64>,
    releases: &mut Vec<(u64, u64)>,
) -> Result<Op, TraceError> {
    if replay.done == 0 {
        replay.prepare(pa, trace)?;
    }
    let i = replay.done;
    let op = trace.ops[i];
    // What the op will change, where only the state before it says.
    let before = match op {
        Op::Free { k } => replay.allocs.get(k).map(|a| (a.addr, a.npages)),
        Op::Flush { c } => replay.caches.get(c).map(|c| (c.base, 64)),
        _ => None,
    };
    releases.clear();
    replay
        .step_observed(pa, &op, &mut |addr, bytes| releases.push((addr, bytes)))
        .map_err(|e| TraceError {
            line: trace.lines[i],
            msg: e.to_string(),
        })?;
    replay.done += 1;
    touched.clear();
    let ly = *pa.layout();
    let page = ly.page_size();
    let mut range = |addr: u64, npages: u64| {
        if addr != 0 && npages != 0 {
            touched.extend(ly.chunk_index(addr)..=ly.chunk_index(addr + (npages - 1) * page));
        }
    };
    let last_alloc = || {
        let a = replay.allocs.last().copied().unwrap_or_default();
        (a.addr, a.npages)
    };
    match op {
        // Every page of [base, base + size); grow rounds out to the chunks
        // those pages are in.
        Op::Grow { base, size } => range(base - base % page, (base % page + size).div_ceil(page)),
        Op::Alloc { .. } | Op::AllocConstrained { .. } | Op::AllocAt { .. } => {
            let (a, n) = last_alloc();
            range(a, n);
        }
        Op::Pad { addr, npages } => range(addr, npages),
        Op::Free { .. } | Op::Flush { .. } => {
            if let Some((a, n)) = before {
                range(a, n);
            }
        }
        Op::Cache => {
            if let Some((_, Outcome::Cache(c))) = replay.outcomes.last() {
                range(c.base, 64);
            }
        }
        Op::ScavTake { s } => {
            if let Some((a, n)) = replay.steps.get(s).and_then(|st| st.taken) {
                range(a, n);
            }
        }
        Op::Scavenge { .. } | Op::ScavGive { .. } => {
            for &(a, bytes) in releases.iter() {
                range(a, bytes / page);
            }
        }
        Op::Calloc { .. } | Op::NextGen | Op::ScavFind { .. } => {}
    }
    touched.sort_unstable();
    touched.dedup();
    Ok(op)
}

/// Replays `trace` from `replay`'s position up to (not including) op `to`,
/// taking the census after every op: only the chunks an op changed are
/// counted again ([`step_touching`]). Stops at the first op that fails,
/// naming its line.
pub fn run_census(
    replay: &mut Replay,
    pa: &mut PageAlloc,
    trace: &Trace,
    to: usize,
    out: &mut CensusRun,
) -> Result<Census, TraceError> {
    if replay.done == 0 {
        replay.prepare(pa, trace)?;
    }
    let mut census = Census::new(pa);
    let (mut touched, mut releases) = (Vec::new(), Vec::new());
    let to = to.min(trace.ops.len());
    out.points.reserve(to.saturating_sub(replay.done));
    while replay.done < to {
        step_touching(replay, pa, trace, &mut touched, &mut releases)?;
        for &ci in &touched {
            census.recount(pa, ci);
        }
        out.releases
            .extend(releases.iter().map(|&(_, bytes)| bytes));
        out.points.push(census.point());
    }
    Ok(census)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_spreads() {
        assert_eq!(any_in_groups(0b0110_0000, 4), 0b0001_0000);
        assert_eq!(any_in_groups(0b1000_0001, 8), 0b1);
        assert_eq!(any_in_groups(1 << 63, 8), 1 << 56);
        assert_eq!(spread(1 << 8, 8), 0xff << 8);
        assert_eq!(any_in_groups(0b1010, 1), 0b1010);
        assert_eq!(spread(1 << 32, 32), 0xffff_ffff << 32);
    }
}
