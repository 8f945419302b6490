//! Exact snapshots of a `PageAlloc`: [`PageAlloc::to_bytes`] and
//! [`PageAlloc::from_bytes`].
//!
//! A snapshot holds what the allocator's future depends on: the preset, the
//! grown chunk ranges, every grown chunk's alloc and scavenged bitmaps, the
//! search address, the scavenge index's marks and search state, and the huge
//! page size. Summaries are not stored: they follow from the bitmaps and are
//! recomputed, then checked with `verify`. The size is proportional to the
//! grown heap (128 bytes per chunk plus a small header), not to the address
//! space.
//!
//! Format (little-endian): the magic `PAGEALC\0`, a format version (u32),
//! the layout: a preset code (u8: 0 amd64, 1 arm64, 2 386, 3 custom), the
//! page shift and address bits (u8 each, zero for presets), a zero byte and
//! the arena base offset (u64); the huge page size in pages (u64), the
//! search address (u64, linearized), the scavenge index's search address
//! (u64) and marked flag (u8), the log2 of the physical page size (u8; 0 in
//! snapshots from before it was a setting: the host's) and 6 zero bytes,
//! the number of grown ranges
//! (u64) and each range's first and limit chunk (u64, u64); then for every
//! grown chunk in order its alloc bitmap and its scavenged bitmap (8 words
//! each); then one bit per grown chunk, in order, set when the chunk is
//! marked in the scavenge index; then an FNV-1a 64 checksum of all that.
//!
//! Format version 2 is the same for an allocator that follows Go 1.26
//! (version 1 is Go 1.19's), with the Go 1.19 index fields zero and, before
//! the checksum, Go 1.26's index: its generation (u32) and 4 zero bytes,
//! `freeHWM` (u64), the background and the forced cursor (u64 each, then a
//! marked flag u8 and 7 zero bytes), and every grown chunk's packed
//! `scavChunkData` (u64), in order.
//! `from_bytes` checks the exact length, the checksum and every invariant,
//! and refuses anything else with [`Error::BadSnapshot`], changing nothing.

use super::PageAlloc;
use crate::arch::{Arch, Layout, LOG_PALLOC_CHUNK_BYTES, PALLOC_CHUNK_PAGES};
use crate::bits::{PallocBits, PallocData, WORDS};
use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"PAGEALC\0";
/// The format version `to_bytes` writes for a Go 1.19 allocator.
pub const SNAPSHOT_VERSION: u32 = 1;
/// The format version `to_bytes` writes for a Go 1.26 allocator.
pub const SNAPSHOT_VERSION_GO126: u32 = 2;
/// Bytes of the Go 1.26 index's state before its per-chunk entries.
const GO126_STATE: usize = 8 + 8 + 16 + 16;
const HEADER: usize = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 8;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The layout's 4 code bytes: preset, page shift, address bits, 0.
fn layout_code(ly: &Layout) -> [u8; 4] {
    if ly.custom {
        return [3, ly.page_shift as u8, ly.address_bits as u8, 0];
    }
    let code = match ly.arch {
        Arch::Amd64 => 0,
        Arch::Arm64 => 1,
        Arch::I386 => 2,
    };
    [code, 0, 0, 0]
}

/// Reads a snapshot front to back, refusing short input.
struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

fn bad(why: impl Into<String>) -> Error {
    Error::BadSnapshot(why.into())
}

impl PageAlloc {
    /// The allocator's exact state as bytes (see the module docs): an
    /// allocator rebuilt by [`PageAlloc::from_bytes`] returns the same
    /// results for every later operation. O(grown chunks).
    pub fn to_bytes(&self) -> Vec<u8> {
        let ranges = self.grown_ranges();
        let chunks: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        let mut out = Vec::with_capacity(
            HEADER + ranges.len() * 16 + chunks as usize * 128 + chunks.div_ceil(8) as usize + 8,
        );
        out.extend_from_slice(MAGIC);
        let version = match self.go_version() {
            crate::GoVersion::Go126 => SNAPSHOT_VERSION_GO126,
            crate::GoVersion::Go119 => SNAPSHOT_VERSION,
        };
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&layout_code(&self.ly));
        out.extend_from_slice(&self.ly.arena_base_offset.to_le_bytes());
        out.extend_from_slice(&self.huge_pages.to_le_bytes());
        out.extend_from_slice(&self.search_addr.to_le_bytes());
        // A Go 1.26 allocator has no Go 1.19 index: its fields are empty.
        let (sa, marked) = self.scav.v119().map_or((0, false), |ix| ix.search_state());
        out.extend_from_slice(&sa.to_le_bytes());
        let phys_log = self.phys_page.trailing_zeros() as u8;
        out.extend_from_slice(&[u8::from(marked), phys_log, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&(ranges.len() as u64).to_le_bytes());
        for r in ranges {
            out.extend_from_slice(&r.start.to_le_bytes());
            out.extend_from_slice(&r.end.to_le_bytes());
        }
        for ci in self.grown_chunks() {
            let d = self.data(ci);
            for w in d.bits.0.iter().chain(d.scavenged.0.iter()) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        let mut marks = vec![0u8; chunks.div_ceil(8) as usize];
        for (k, ci) in self.grown_chunks().enumerate() {
            if self.scav_marked(ci) {
                marks[k / 8] |= 1 << (k % 8);
            }
        }
        out.extend_from_slice(&marks);
        if let Some(ix) = self.scav.v126() {
            out.extend_from_slice(&u64::from(ix.gen).to_le_bytes());
            out.extend_from_slice(&ix.free_hwm.to_le_bytes());
            for c in [ix.bg, ix.force] {
                out.extend_from_slice(&c.lin.to_le_bytes());
                out.extend_from_slice(&[u8::from(c.marked), 0, 0, 0, 0, 0, 0, 0]);
            }
            for ci in self.grown_chunks() {
                out.extend_from_slice(&ix.get(ci).pack().to_le_bytes());
            }
        }
        let sum = fnv1a(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    /// Rebuilds an allocator from [`PageAlloc::to_bytes`]. Refuses (with
    /// [`Error::BadSnapshot`]) a wrong length, magic, version or checksum,
    /// and any state the allocator could not have been in. O(grown chunks),
    /// plus committing their metadata.
    pub fn from_bytes(data: &[u8]) -> Result<PageAlloc> {
        if data.len() < HEADER + 8 {
            return Err(bad(format!(
                "{} bytes is shorter than any snapshot",
                data.len()
            )));
        }
        let (body, sum) = data.split_at(data.len() - 8);
        if &body[..8] != MAGIC {
            return Err(bad("not a pagealloc snapshot (bad magic)"));
        }
        if fnv1a(body) != u64::from_le_bytes(sum.try_into().expect("8 bytes")) {
            return Err(bad("checksum mismatch: the bytes are damaged"));
        }
        let mut r = Reader { buf: &body[8..] };
        let version = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
        let go = match version {
            SNAPSHOT_VERSION => crate::GoVersion::Go119,
            SNAPSHOT_VERSION_GO126 => crate::GoVersion::Go126,
            _ => {
                return Err(bad(format!(
                    "format version {version}; this build reads {SNAPSHOT_VERSION} (Go 1.19) \
                     and {SNAPSHOT_VERSION_GO126} (Go 1.26)"
                )))
            }
        };
        let go126 = go == crate::GoVersion::Go126;
        let code: [u8; 4] = r.take(4)?.try_into().expect("4 bytes");
        let offset = r.u64()?;
        let ly = match code {
            [0, 0, 0, 0] => Arch::Amd64.layout(),
            [1, 0, 0, 0] => Arch::Arm64.layout(),
            [2, 0, 0, 0] => Arch::I386.layout(),
            [3, shift, bits, 0] if shift < 64 => {
                Layout::custom(1u64 << shift, u32::from(bits), offset)
                    .map_err(|e| bad(format!("custom layout: {e}")))?
            }
            other => return Err(bad(format!("unknown layout code {other:?}"))),
        };
        if ly.arena_base_offset != offset {
            return Err(bad("arena base offset does not match the layout"));
        }
        let huge_pages = r.u64()?;
        let search_addr = r.u64()?;
        let scav_search = r.u64()?;
        let (scav_marked, phys_log) = match r.take(8)? {
            [m @ (0 | 1), p, 0, 0, 0, 0, 0, 0] => (*m == 1, *p),
            _ => return Err(bad("bad scavenge index flags")),
        };
        let nranges = r.u64()?;
        if nranges > ly.max_chunks {
            return Err(bad(format!("{nranges} grown ranges")));
        }
        let mut ranges = Vec::with_capacity(nranges as usize);
        for _ in 0..nranges {
            let (s, e) = (r.u64()?, r.u64()?);
            let ok = s < e
                && e <= ly.max_chunks
                && ranges.last().is_none_or(|&(_, pe): &(u64, u64)| pe < s);
            if !ok {
                return Err(bad(format!("bad grown range [{s:#x}, {e:#x})")));
            }
            ranges.push((s, e));
        }
        let chunks: u64 = ranges.iter().map(|&(s, e)| e - s).sum();
        let per_chunk = if go126 { 128 + 8 } else { 128 };
        let rest = (chunks as usize)
            .checked_mul(per_chunk)
            .and_then(|b| b.checked_add((chunks as usize).div_ceil(8)))
            .and_then(|b| b.checked_add(if go126 { GO126_STATE } else { 0 }));
        if rest != Some(r.buf.len()) {
            return Err(bad(format!(
                "length: {} bytes of bitmaps and marks for {chunks} chunks",
                r.buf.len()
            )));
        }
        let mut pa = PageAlloc::builder(ly).go(go).build()?;
        if phys_log != 0 {
            pa.set_phys_page_size(1u64.checked_shl(u32::from(phys_log)).unwrap_or(0))
                .map_err(|e| bad(format!("{e}")))?;
        }
        for &(s, e) in &ranges {
            pa.grow(
                ly.chunk_base(s),
                ly.pages_bytes((e - s) * PALLOC_CHUNK_PAGES),
            )
            .map_err(|e| bad(format!("grown range refused: {e}")))?;
        }
        let chunk_list: Vec<u64> = pa.grown_chunks().collect();
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        for &ci in &chunk_list {
            let raw = r.take(128)?;
            let mut d = PallocData::default();
            for (k, w) in raw.chunks_exact(8).enumerate() {
                if k < WORDS {
                    d.bits.0[k] = word(w);
                } else {
                    d.scavenged.0[k - WORDS] = word(w);
                }
            }
            // Only Go 1.26's padding pages are both in use and scavenged.
            if !go126 && d.bits.0.iter().zip(&d.scavenged.0).any(|(a, s)| a & s != 0) {
                return Err(bad(format!(
                    "chunk {ci:#x} has pages both in use and scavenged"
                )));
            }
            *pa.data_mut(ci) = d;
        }
        let marks = r.take(chunk_list.len().div_ceil(8))?;
        let marked: Vec<u64> = chunk_list
            .iter()
            .enumerate()
            .filter(|(k, _)| marks[k / 8] >> (k % 8) & 1 == 1)
            .map(|(_, &ci)| ci)
            .collect();
        // Summaries from the bitmaps, one chunk at a time.
        for &ci in &chunk_list {
            let alloc = pa.data(ci).bits != PallocBits::EMPTY;
            pa.update(
                ci << LOG_PALLOC_CHUNK_BYTES,
                PALLOC_CHUNK_PAGES,
                false,
                alloc,
            );
        }
        let search_ok = search_addr == ly.max_search_lin
            || pa.is_grown(search_addr >> LOG_PALLOC_CHUNK_BYTES)
                && search_addr % crate::PAGE_SIZE == 0;
        if !search_ok {
            return Err(bad(format!(
                "search address {search_addr:#x} is not on the heap"
            )));
        }
        pa.search_addr = search_addr;
        let scav_ok = scav_search == 0
            || scav_search < ly.space_bytes() && scav_search % crate::PAGE_SIZE == 0;
        if !scav_ok || huge_pages > PALLOC_CHUNK_PAGES * 1024 {
            return Err(bad("bad scavenger state"));
        }
        if go126 {
            // A Go 1.26 allocator has no Go 1.19 index (it is never grown,
            // so it must not be written): its fields must be empty.
            if scav_search != 0 || scav_marked || !marked.is_empty() {
                return Err(bad("Go 1.19 scavenge index state in a Go 1.26 snapshot"));
            }
        } else if let Some(ix) = pa.scav.v119_mut() {
            ix.restore(scav_search, scav_marked, &marked);
        }
        if go126 {
            let gen = r.u64()?;
            let free_hwm = r.u64()?;
            let mut cursor = || -> Result<crate::scav_index::Cursor> {
                let lin = r.u64()?;
                let marked = match r.take(8)? {
                    [m @ (0 | 1), 0, 0, 0, 0, 0, 0, 0] => *m == 1,
                    _ => return Err(bad("bad scavenge index cursor flags")),
                };
                Ok(crate::scav_index::Cursor { lin, marked })
            };
            let (bg, force) = (cursor()?, cursor()?);
            // A cursor is cleared (0) or on a known chunk, whose index
            // entry `find` reads.
            let (start, end) = pa.bounds();
            let addr_ok = |a: u64| {
                a == 0
                    || (start..end).contains(&(a >> LOG_PALLOC_CHUNK_BYTES))
                        && a % crate::PAGE_SIZE == 0
            };
            if gen > u64::from(u32::MAX) || ![free_hwm, bg.lin, force.lin].into_iter().all(addr_ok)
            {
                return Err(bad("bad Go 1.26 scavenge index state"));
            }
            let ix = pa.scav.v126_mut().expect("a Go 1.26 allocator");
            (ix.gen, ix.free_hwm, ix.bg, ix.force) = (gen as u32, free_hwm, bg, force);
            for &ci in &chunk_list {
                let sc = crate::ScavChunkData::unpack(r.u64()?);
                if u64::from(sc.last_in_use) > PALLOC_CHUNK_PAGES {
                    return Err(bad(format!("bad scavenge index entry of chunk {ci:#x}")));
                }
                ix.set(ci, sc);
            }
        }
        pa.huge_pages = huge_pages;
        pa.verify()
            .map_err(|e| bad(format!("inconsistent state: {e}")))?;
        Ok(pa)
    }
}
