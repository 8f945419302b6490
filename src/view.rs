//! The data of `pagealloc view`'s page: a replay recorded op by op so a
//! browser can show the heap at any op of a trace of millions.
//!
//! The page needs, per op, the timeline's figures (the census: in use, free
//! and resident, released), and the heap map at any op. The map is kept as
//! keyframes (every page's state at every `keyframe_every`-th op) and, in
//! between, each op's changes as runs of pages that took one new state, so
//! the page rebuilds op K from the keyframe at or below it. Plus every
//! allocation's pages and the ops that made and freed it, for "what span is
//! this page in". Everything is flat arrays of fixed-width numbers, for
//! typed arrays in the page.
//!
//! A page's state is 2 bits: 0 free, 1 in use, 2 free and scavenged
//! (released or never touched), 3 in use and scavenged (Go 1.26's heap-base
//! padding). Chunks are numbered by slot in the order they were grown.

use std::collections::HashMap;

use crate::alloc::PageAlloc;
use crate::bits::{PallocBits, WORDS};
use crate::census::{step_touching, Census, CensusPoint};
use crate::trace::{Op, Replay, Trace, TraceError};
use crate::PALLOC_CHUNK_PAGES;

/// Everything the page shows, op by op.
#[derive(Clone, Debug, Default)]
pub struct ViewData {
    /// The census after each op.
    pub points: Vec<CensusPoint>,
    /// Per slot, the chunk's index (Go's chunkIdx), its first address and
    /// how many ops had run when it was grown (it is in the map from the
    /// state after that many ops on; 0 for a chunk grown before the trace).
    pub slot_chunk: Vec<u64>,
    pub slot_base: Vec<u64>,
    pub slot_op: Vec<u32>,
    /// Op `i`'s changes are runs `op_runs[i]..op_runs[i + 1]`.
    pub op_runs: Vec<u32>,
    pub run_slot: Vec<u32>,
    pub run_page: Vec<u16>,
    pub run_len: Vec<u16>,
    pub run_state: Vec<u8>,
    /// Keyframe `k` is the state after `k * keyframe_every` ops: per slot
    /// grown by then, 128 bytes (4 pages a byte, page `4b + j` in bits
    /// `2j..2j+2` of byte `b`).
    pub keyframe_every: u32,
    pub keyframe_slots: Vec<u32>,
    pub keyframes: Vec<u8>,
    /// Per allocation (alloc, allocat, calloc; failed ones included, with
    /// no pages): its slot and first page, pages, and the op that made it
    /// and the one that freed it (`u32::MAX`: never freed).
    pub alloc_slot: Vec<u32>,
    pub alloc_page: Vec<u16>,
    pub alloc_pages: Vec<u32>,
    pub alloc_op: Vec<u32>,
    pub free_op: Vec<u32>,
}

/// One page's state from its chunk's bitmaps.
#[inline]
fn state(bits: &PallocBits, scav: &PallocBits, i: usize) -> u8 {
    let (w, b) = (i / 64, i % 64);
    ((bits.0[w] >> b) & 1) as u8 | (((scav.0[w] >> b) & 1) as u8) << 1
}

struct Builder {
    data: ViewData,
    /// Ops done once the op being recorded ends (for new slots).
    op: u32,
    slots: HashMap<u64, (u32, PallocBits, PallocBits)>,
}

impl Builder {
    fn slot(&mut self, pa: &PageAlloc, ci: u64) -> u32 {
        if let Some(s) = self.slots.get(&ci) {
            return s.0;
        }
        let s = self.data.slot_chunk.len() as u32;
        self.data.slot_chunk.push(ci);
        self.data.slot_base.push(pa.layout().chunk_base(ci));
        self.data.slot_op.push(self.op);
        // A new chunk starts free and scavenged (never touched).
        self.slots
            .insert(ci, (s, PallocBits::EMPTY, PallocBits::FULL));
        s
    }

    /// Records the pages of chunk `ci` that changed since it was last seen.
    fn diff(&mut self, pa: &PageAlloc, ci: u64) {
        if !pa.is_grown(ci) {
            return;
        }
        let slot = self.slot(pa, ci);
        let d = pa.data(ci);
        let (bits, scav) = (d.bits, d.scavenged);
        let entry = self.slots.get_mut(&ci).expect("slot just made");
        let (old_bits, old_scav) = (entry.1, entry.2);
        if old_bits == bits && old_scav == scav {
            return;
        }
        (entry.1, entry.2) = (bits, scav);
        let mut run: Option<(u16, u16, u8)> = None;
        let flush = |run: Option<(u16, u16, u8)>, data: &mut ViewData| {
            if let Some((p, n, st)) = run {
                data.run_slot.push(slot);
                data.run_page.push(p);
                data.run_len.push(n);
                data.run_state.push(st);
            }
        };
        for w in 0..WORDS {
            let changed = (old_bits.0[w] ^ bits.0[w]) | (old_scav.0[w] ^ scav.0[w]);
            if changed == 0 {
                flush(run.take(), &mut self.data);
                continue;
            }
            for b in 0..64 {
                let i = w * 64 + b;
                if changed >> b & 1 == 0 {
                    flush(run.take(), &mut self.data);
                    continue;
                }
                let st = state(&bits, &scav, i);
                match &mut run {
                    Some((p, n, s)) if *s == st && usize::from(*p) + usize::from(*n) == i => {
                        *n += 1
                    }
                    _ => {
                        flush(run.take(), &mut self.data);
                        run = Some((i as u16, 1, st));
                    }
                }
            }
        }
        flush(run, &mut self.data);
    }

    fn keyframe(&mut self) {
        let n = self.data.slot_chunk.len();
        self.data.keyframe_slots.push(n as u32);
        let mut by_slot: Vec<(u32, PallocBits, PallocBits)> =
            self.slots.values().copied().collect();
        by_slot.sort_by_key(|s| s.0);
        for (_, bits, scav) in by_slot {
            for b in 0..(PALLOC_CHUNK_PAGES as usize / 4) {
                let mut byte = 0u8;
                for j in 0..4 {
                    byte |= state(&bits, &scav, 4 * b + j) << (2 * j);
                }
                self.data.keyframes.push(byte);
            }
        }
    }
}

/// Replays `trace` on `pa` (fresh) and records what the page needs.
/// `keyframe_every` 0 picks one keyframe per 1/256 of the ops, at least
/// every 4,096.
pub fn build(
    pa: &mut PageAlloc,
    trace: &Trace,
    keyframe_every: u32,
) -> Result<ViewData, TraceError> {
    let mut replay = Replay::new(trace);
    replay.prepare(pa, trace)?;
    let n = trace.ops.len();
    let every = if keyframe_every == 0 {
        ((n / 256) as u32).max(4096)
    } else {
        keyframe_every
    };
    let mut b = Builder {
        data: ViewData {
            keyframe_every: every,
            ..ViewData::default()
        },
        slots: HashMap::new(),
        op: 0,
    };
    b.data.points.reserve(n);
    b.data.op_runs.reserve(n + 1);
    let mut census = Census::new(pa);
    let (mut touched, mut releases) = (Vec::new(), Vec::new());
    // An allocator given with chunks already grown: they are there from
    // the start, as they are.
    let grown: Vec<u64> = pa.grown_chunks().collect();
    for ci in grown {
        let s = b.slot(pa, ci);
        let d = pa.data(ci);
        b.slots.insert(ci, (s, d.bits, d.scavenged));
    }
    b.data.op_runs.push(0);
    b.keyframe();
    for i in 0..n {
        b.op = i as u32 + 1;
        let op = step_touching(&mut replay, pa, trace, &mut touched, &mut releases)?;
        if let Op::Free { k } = op {
            if let Some(f) = b.data.free_op.get_mut(k) {
                *f = i as u32;
            }
        }
        for &ci in &touched {
            census.recount(pa, ci);
            b.diff(pa, ci);
        }
        // The allocation this op made, if any.
        if matches!(
            op,
            Op::Alloc { .. } | Op::AllocConstrained { .. } | Op::AllocAt { .. } | Op::Calloc { .. }
        ) {
            let last = replay.allocs.last().copied().unwrap_or_default();
            let (a, np) = (last.addr, last.npages);
            let (slot, pg) = if a == 0 {
                (u32::MAX, 0)
            } else {
                let lin = pa.layout().lin(a);
                let ci = lin >> crate::arch::LOG_PALLOC_CHUNK_BYTES;
                (
                    b.slot(pa, ci),
                    ((lin % crate::PALLOC_CHUNK_BYTES) / crate::PAGE_SIZE) as u16,
                )
            };
            b.data.alloc_slot.push(slot);
            b.data.alloc_page.push(pg);
            b.data.alloc_pages.push(if a == 0 { 0 } else { np as u32 });
            b.data.alloc_op.push(i as u32);
            b.data.free_op.push(u32::MAX);
        }
        b.data.points.push(census.point());
        b.data.op_runs.push(b.data.run_slot.len() as u32);
        if (i + 1) % every as usize == 0 {
            b.keyframe();
        }
    }
    Ok(b.data)
}
