//! Layout presets and address arithmetic.
//!
//! Every size in the allocator follows from a handful of constants that the
//! seed names: the page size, the chunk size (pages per bitmap), the number of
//! address bits the heap may use, the number of summary levels and the fan-out
//! of each level below the root. They are tied together by
//!
//! ```text
//! summary_l0_bits + (summary_levels-1)*SUMMARY_LEVEL_BITS + LOG_PALLOC_CHUNK_BYTES = heap_addr_bits
//! ```
//!
//! so the root level takes whatever bits are left over once every other level
//! has taken its 3 bits and the chunk its 22. For amd64 that is
//! `14 + 4*3 + 22 = 48`; for 386 it is `1 + 3*3 + 22 = 32`.
//!
//! # Linearized addresses
//!
//! On amd64 the user half of the address space is `[0, 2^47)` and the kernel
//! half `[2^64 - 2^47, 2^64)`. Go adds `arenaBaseOffset = 1 << 47` (mod 2^64)
//! to every address before indexing, which maps the high half to
//! `[0, 2^47)` and the low half to `[2^47, 2^48)`: one contiguous,
//! linearly ordered space of `2^heap_addr_bits` bytes. The engine stores and
//! compares linearized addresses everywhere (Go stores real addresses and adds
//! the offset at each comparison; the order is the same) and converts at its
//! public edge. On arm64 and 386 the offset is zero and both views coincide.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// log2 of the runtime page size (Go's `_PageShift`).
pub const PAGE_SHIFT: u32 = 13;
/// The runtime page size: 8 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// log2 of the pages tracked by one bitmap chunk.
pub const LOG_PALLOC_CHUNK_PAGES: u32 = 9;
/// Pages per chunk: 512.
pub const PALLOC_CHUNK_PAGES: u64 = 1 << LOG_PALLOC_CHUNK_PAGES;
/// log2 of the bytes covered by one chunk: `LOG_PALLOC_CHUNK_PAGES + PAGE_SHIFT`.
pub const LOG_PALLOC_CHUNK_BYTES: u32 = LOG_PALLOC_CHUNK_PAGES + PAGE_SHIFT;
/// Bytes covered by one chunk: 4 MiB.
pub const PALLOC_CHUNK_BYTES: u64 = 1 << LOG_PALLOC_CHUNK_BYTES;
/// Fan-out bits of every level below the root. Eight 8-byte summaries make
/// one 64-byte block, about a cache line.
pub const SUMMARY_LEVEL_BITS: u32 = 3;
/// The most summary levels any preset uses (64-bit presets use 5).
pub const MAX_SUMMARY_LEVELS: usize = 5;

/// The layout presets: which of Go's ports the allocator imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// linux/amd64: 48 address bits, 5 levels, arenaBaseOffset 1<<47.
    Amd64,
    /// linux/arm64: 48 address bits, 5 levels, no offset.
    Arm64,
    /// linux/386: 32 address bits, 4 levels, no offset; all summary levels
    /// reserved and committed at once.
    I386,
}

impl Arch {
    /// Every preset, in a fixed order.
    pub const ALL: [Arch; 3] = [Arch::Amd64, Arch::Arm64, Arch::I386];

    /// Go's GOARCH name of the preset.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::I386 => "386",
        }
    }

    /// `heapAddrBits`: how many bits of (linearized) address the heap may use.
    pub const fn heap_addr_bits(self) -> u32 {
        match self {
            Arch::Amd64 | Arch::Arm64 => 48,
            Arch::I386 => 32,
        }
    }

    /// `arenaBaseOffset`, added (mod 2^64) to linearize an address.
    pub const fn arena_base_offset(self) -> u64 {
        match self {
            Arch::Amd64 => 1 << 47,
            Arch::Arm64 | Arch::I386 => 0,
        }
    }

    /// `summaryLevels`: depth of the radix tree.
    pub const fn summary_levels(self) -> usize {
        match self {
            Arch::Amd64 | Arch::Arm64 => 5,
            Arch::I386 => 4,
        }
    }

    /// Whether the preset is one of Go's 64-bit ports (`pageAlloc64Bit`).
    pub const fn is_64bit(self) -> bool {
        !matches!(self, Arch::I386)
    }

    /// All the derived constants of this preset.
    pub const fn layout(self) -> Layout {
        Layout::new(self)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A preset's layout, so an [`Arch`] goes wherever a [`Layout`] is asked for.
impl From<Arch> for Layout {
    fn from(arch: Arch) -> Layout {
        arch.layout()
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch, Error> {
        match s {
            "amd64" => Ok(Arch::Amd64),
            "arm64" => Ok(Arch::Arm64),
            "386" | "i386" => Ok(Arch::I386),
            _ => Err(Error::UnknownArch(s.to_owned())),
        }
    }
}

/// The constants of one layout: a preset's, derived from the few that
/// [`Arch`] names, or a custom geometry's ([`Layout::custom`]).
///
/// The engine always works in 8 KiB units ([`PAGE_SIZE`]) over its
/// linearized space of `2^heap_addr_bits` bytes; a layout's own page (of
/// `2^page_shift` bytes) is one such unit, so a custom geometry is the same
/// radix tree over a space of `address_bits - page_shift + PAGE_SHIFT` bits.
/// [`Layout::lin`] and [`Layout::unlin`] convert at the edge.
///
/// Arrays are sized for [`MAX_SUMMARY_LEVELS`]; only the first
/// `summary_levels` entries are meaningful.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The preset; for a custom layout, the preset whose way of committing
    /// metadata it follows (386's when it has 32 address bits, else arm64's).
    pub arch: Arch,
    /// Whether this is a custom geometry rather than a preset.
    pub custom: bool,
    /// log2 of the layout's page size (13, 8 KiB, for the presets).
    pub page_shift: u32,
    /// Bits of the layout's (linearized) addresses.
    pub address_bits: u32,
    /// Bits of the engine's linearized space:
    /// `address_bits - page_shift + PAGE_SHIFT` (equal for the presets).
    pub heap_addr_bits: u32,
    pub arena_base_offset: u64,
    pub summary_levels: usize,
    /// `summaryL0Bits = heap_addr_bits - LOG_PALLOC_CHUNK_BYTES - (summary_levels-1)*SUMMARY_LEVEL_BITS`.
    pub summary_l0_bits: u32,
    /// `levelBits[l]`: radix bits of level l (`summary_l0_bits`, then 3s).
    /// Their sum plus `LOG_PALLOC_CHUNK_BYTES` is `heap_addr_bits`.
    pub level_bits: [u32; MAX_SUMMARY_LEVELS],
    /// `levelShift[l]`: a linearized address shifted right by this gives the
    /// index of its summary at level l. The leaf shift is `LOG_PALLOC_CHUNK_BYTES`.
    pub level_shift: [u32; MAX_SUMMARY_LEVELS],
    /// `levelLogPages[l]`: log2 of the pages one summary at level l covers.
    /// `level_log_pages[l] = level_shift[l] - PAGE_SHIFT`.
    pub level_log_pages: [u32; MAX_SUMMARY_LEVELS],
    /// `logMaxPackedValue = LOG_PALLOC_CHUNK_PAGES + (summary_levels-1)*SUMMARY_LEVEL_BITS`:
    /// width of each packed summary field. Equal to `level_log_pages[0]`, so a
    /// whole free root entry is exactly the special value `1 << log_max_packed_value`.
    pub log_max_packed_value: u32,
    /// Chunks in the whole (linearized) address space: `2^(heap_addr_bits - 22)`.
    pub max_chunks: u64,
    /// `maxSearchAddr`, linearized: the last byte of the address space. A
    /// search address here means "no free page anywhere".
    pub max_search_lin: u64,
}

impl Layout {
    const fn new(arch: Arch) -> Layout {
        Layout::derive(
            arch,
            false,
            PAGE_SHIFT,
            arch.heap_addr_bits(),
            arch.arena_base_offset(),
            arch.summary_levels(),
        )
    }

    /// A layout of your own geometry: pages of `page_size` bytes (a power of
    /// two from 4 KiB to 1 GiB), addresses of `address_bits` bits (32 to 57),
    /// linearized by adding `arena_base_offset` (a multiple of the page
    /// size, mod 2^64). Chunks stay 512 pages; there are 5 summary levels (4
    /// when `address_bits == 32`) of 3 bits each below the root, which takes
    /// the rest: `address_bits - log2(page_size) - 9 - 3 * (levels - 1)` bits,
    /// at least 1. Metadata reservations scale with the geometry (a 57-bit
    /// space of 4 KiB pages reserves about 9 TiB of address space, none of
    /// it touched).
    pub fn custom(
        page_size: u64,
        address_bits: u32,
        arena_base_offset: u64,
    ) -> Result<Layout, Error> {
        let bad = |why: &str| Error::BadLayout(why.to_owned());
        if !page_size.is_power_of_two() || !(1 << 12..=1 << 30).contains(&page_size) {
            return Err(bad(&format!(
                "page_size must be a power of two from 4096 to 2^30, got {page_size}"
            )));
        }
        if !(32..=57).contains(&address_bits) {
            return Err(bad(&format!(
                "address_bits must be from 32 to 57, got {address_bits}"
            )));
        }
        if arena_base_offset % page_size != 0 {
            return Err(bad(&format!(
                "arena_base_offset {arena_base_offset:#x} is not a multiple of the page size"
            )));
        }
        let page_shift = page_size.trailing_zeros();
        let levels = if address_bits == 32 { 4 } else { 5 };
        let below = LOG_PALLOC_CHUNK_PAGES + (levels as u32 - 1) * SUMMARY_LEVEL_BITS;
        if address_bits < page_shift + below + 1 {
            return Err(bad(&format!(
                "{address_bits} address bits of {page_size}-byte pages leave {} bit(s) for the \
                 root summary level; it needs at least 1",
                address_bits as i64 - (page_shift + below) as i64
            )));
        }
        let arch = if address_bits == 32 {
            Arch::I386
        } else {
            Arch::Arm64
        };
        Ok(Layout::derive(
            arch,
            true,
            page_shift,
            address_bits,
            arena_base_offset,
            levels,
        ))
    }

    const fn derive(
        arch: Arch,
        custom: bool,
        page_shift: u32,
        address_bits: u32,
        arena_base_offset: u64,
        summary_levels: usize,
    ) -> Layout {
        let heap_addr_bits = address_bits - page_shift + PAGE_SHIFT;
        let summary_l0_bits = heap_addr_bits
            - LOG_PALLOC_CHUNK_BYTES
            - (summary_levels as u32 - 1) * SUMMARY_LEVEL_BITS;
        let mut level_bits = [0; MAX_SUMMARY_LEVELS];
        let mut level_shift = [0; MAX_SUMMARY_LEVELS];
        let mut level_log_pages = [0; MAX_SUMMARY_LEVELS];
        let mut l = 0;
        while l < summary_levels {
            level_bits[l] = if l == 0 {
                summary_l0_bits
            } else {
                SUMMARY_LEVEL_BITS
            };
            level_shift[l] = heap_addr_bits - summary_l0_bits - l as u32 * SUMMARY_LEVEL_BITS;
            level_log_pages[l] =
                LOG_PALLOC_CHUNK_PAGES + (summary_levels - 1 - l) as u32 * SUMMARY_LEVEL_BITS;
            l += 1;
        }
        Layout {
            arch,
            custom,
            page_shift,
            address_bits,
            heap_addr_bits,
            arena_base_offset,
            summary_levels,
            summary_l0_bits,
            level_bits,
            level_shift,
            level_log_pages,
            log_max_packed_value: LOG_PALLOC_CHUNK_PAGES
                + (summary_levels as u32 - 1) * SUMMARY_LEVEL_BITS,
            max_chunks: 1 << (heap_addr_bits - LOG_PALLOC_CHUNK_BYTES),
            max_search_lin: (1 << heap_addr_bits) - 1,
        }
    }

    /// Bytes in the engine's linearized space: `2^heap_addr_bits`.
    pub const fn space_bytes(&self) -> u64 {
        1 << self.heap_addr_bits
    }

    /// The layout's page size in bytes (8 KiB for the presets).
    #[inline]
    pub const fn page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// The layout's name: its preset's, or "custom".
    pub const fn name(&self) -> &'static str {
        if self.custom {
            "custom"
        } else {
            self.arch.name()
        }
    }

    /// Whether summaries are committed as the heap grows (Go's 64-bit
    /// ports) rather than all at once (its 32-bit ones).
    pub const fn commits_on_grow(&self) -> bool {
        self.arch.is_64bit()
    }

    /// Index of the leaf level (`summary_levels - 1`).
    pub const fn leaf(&self) -> usize {
        self.summary_levels - 1
    }

    /// Number of summaries at level l: `2^(heap_addr_bits - level_shift[l])`.
    pub const fn level_entries(&self, l: usize) -> u64 {
        1 << (self.heap_addr_bits - self.level_shift[l])
    }

    /// Linearizes a real address: `(addr + arenaBaseOffset) mod 2^64`, in
    /// the engine's units (for a custom page size, scaled so that one of the
    /// layout's pages is one 8 KiB unit; a byte inside a page maps to its
    /// page's start). The result may lie beyond the address space; see
    /// [`Layout::lin_checked`].
    #[inline]
    pub const fn lin(&self, addr: u64) -> u64 {
        let u = addr.wrapping_add(self.arena_base_offset);
        if self.page_shift == PAGE_SHIFT {
            u
        } else {
            (u >> self.page_shift) << PAGE_SHIFT
        }
    }

    /// The real address of a linearized one.
    #[inline(always)]
    pub const fn unlin(&self, lin: u64) -> u64 {
        let u = if self.page_shift == PAGE_SHIFT {
            lin
        } else {
            (lin >> PAGE_SHIFT) << self.page_shift
        };
        u.wrapping_sub(self.arena_base_offset)
    }

    /// Linearizes `addr` and checks that `[addr, addr+len)` (real bytes)
    /// lies inside the address space, returning the linearized base.
    pub fn lin_checked(&self, addr: u64, len: u64) -> Result<u64, Error> {
        if self.in_space(addr, len) {
            Ok(self.lin(addr))
        } else {
            Err(Error::BeyondAddressSpace {
                addr,
                len,
                bits: self.address_bits,
            })
        }
    }

    /// Whether `[addr, addr+len)` (real bytes) lies inside the address space.
    #[inline(always)]
    pub const fn in_space(&self, addr: u64, len: u64) -> bool {
        match addr.wrapping_add(self.arena_base_offset).checked_add(len) {
            Some(end) => end <= 1 << self.address_bits,
            None => false,
        }
    }

    /// Bytes of `npages` of the layout's pages (saturating).
    #[inline]
    pub const fn pages_bytes(&self, npages: u64) -> u64 {
        npages.saturating_mul(self.page_size())
    }

    /// [`Layout::chunk_index`] of an address that must lie in the address space.
    pub fn try_chunk_index(&self, addr: u64) -> Result<u64, Error> {
        self.lin_checked(addr, 1)?;
        Ok(self.chunk_index(addr))
    }

    /// `ci` itself, if it is a chunk index of the address space.
    pub fn check_chunk(&self, ci: u64) -> Result<u64, Error> {
        if ci >= self.max_chunks {
            return Err(Error::ChunkBeyondSpace {
                chunk: ci,
                max_chunks: self.max_chunks,
            });
        }
        Ok(ci)
    }

    /// [`Layout::page_base`] for any `ci` and `page_idx`: like Go's
    /// `PageBase`, the page may run past its chunk into later ones, as long
    /// as the address stays in the address space.
    pub fn try_page_base(&self, ci: u64, page_idx: u64) -> Result<u64, Error> {
        self.check_chunk(ci)?;
        page_idx
            .checked_mul(PAGE_SIZE)
            .and_then(|off| (ci << LOG_PALLOC_CHUNK_BYTES).checked_add(off))
            .filter(|&lin| lin < self.space_bytes())
            .map(|lin| self.unlin(lin))
            .ok_or(Error::PageBeyondSpace {
                chunk: ci,
                page: page_idx,
            })
    }

    /// Go's `chunkIndex`: the global index of the chunk holding real address `addr`.
    #[inline]
    pub const fn chunk_index(&self, addr: u64) -> u64 {
        self.lin(addr) >> LOG_PALLOC_CHUNK_BYTES
    }

    /// Go's `chunkBase`: the real base address of chunk `ci`.
    #[inline]
    pub const fn chunk_base(&self, ci: u64) -> u64 {
        self.unlin(ci << LOG_PALLOC_CHUNK_BYTES)
    }

    /// Go's test helper `PageBase`: the real address of page `page_idx` of chunk `ci`.
    #[inline]
    pub const fn page_base(&self, ci: u64, page_idx: u64) -> u64 {
        self.chunk_base(ci)
            .wrapping_add(page_idx.wrapping_mul(self.page_size()))
    }

    /// Go's test `BaseChunkIdx`: a chunk index that lies comfortably inside
    /// the heap range of every port: `chunkIndex(0xc000 * 4 MiB)` on 64-bit
    /// ports, `chunkIndex(0x200 * 4 MiB)` on 32-bit ones. For a custom
    /// layout: chunk `0xc000`, or the middle chunk of a smaller space.
    pub const fn base_chunk_idx(&self) -> u64 {
        if self.custom {
            return if self.max_chunks > 0x18000 {
                0xc000
            } else {
                self.max_chunks / 2
            };
        }
        let base = if self.arch.is_64bit() { 0xc000 } else { 0x200 };
        self.chunk_index(base * PALLOC_CHUNK_BYTES)
    }

    /// Go's `addrsToSummaryRange` on linearized addresses: the summaries of
    /// level `l` that cover `[base, limit)`, as `[lo, hi)`.
    ///
    /// The upper bound is computed from the inclusive `limit-1` and then
    /// bumped by one, so a limit on the very edge of a summary does not pull
    /// in the next one.
    #[inline]
    pub const fn addrs_to_summary_range(&self, l: usize, base: u64, limit: u64) -> (u64, u64) {
        debug_assert!(base < limit);
        let lo = base >> self.level_shift[l];
        let hi = ((limit - 1) >> self.level_shift[l]) + 1;
        (lo, hi)
    }

    /// Go's `blockAlignSummaryRange`: widens `[lo, hi)` at level `l` to whole
    /// blocks of `1 << level_bits[l]` entries (the unit a parent summarizes).
    #[inline]
    pub const fn block_align_summary_range(&self, l: usize, lo: u64, hi: u64) -> (u64, u64) {
        let e = 1u64 << self.level_bits[l];
        (lo & !(e - 1), (hi + e - 1) & !(e - 1))
    }
}

/// Go's `chunkPageIndex`: the page index within its chunk of (real or
/// linearized) address `addr`. The offset is a multiple of the chunk size, so
/// both give the same answer.
#[inline]
pub const fn chunk_page_index(addr: u64) -> u64 {
    (addr % PALLOC_CHUNK_BYTES) / PAGE_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equation_holds_for_every_preset() {
        for arch in Arch::ALL {
            let ly = arch.layout();
            let bits: u32 = ly.level_bits[..ly.summary_levels].iter().sum();
            assert_eq!(bits + LOG_PALLOC_CHUNK_BYTES, ly.heap_addr_bits, "{arch}");
            assert_eq!(ly.level_shift[ly.leaf()], LOG_PALLOC_CHUNK_BYTES);
            assert_eq!(ly.level_log_pages[ly.leaf()], LOG_PALLOC_CHUNK_PAGES);
            assert_eq!(ly.level_log_pages[0], ly.log_max_packed_value);
            for l in 0..ly.summary_levels {
                assert_eq!(ly.level_log_pages[l] + PAGE_SHIFT, ly.level_shift[l]);
            }
        }
    }

    #[test]
    fn amd64_constants() {
        let ly = Arch::Amd64.layout();
        assert_eq!(ly.summary_l0_bits, 14);
        assert_eq!(ly.level_bits[..5], [14, 3, 3, 3, 3]);
        assert_eq!(ly.level_shift[..5], [34, 31, 28, 25, 22]);
        assert_eq!(ly.level_log_pages[..5], [21, 18, 15, 12, 9]);
        assert_eq!(ly.log_max_packed_value, 21);
        assert_eq!(ly.max_chunks, 1 << 26);
        assert_eq!(ly.chunk_index(0xc000 * 4 * 1024 * 1024), 0x200c000);
        assert_eq!(ly.base_chunk_idx(), 0x200c000);
        assert_eq!(ly.chunk_base(0x200c000), 0xc000 * PALLOC_CHUNK_BYTES);
        assert_eq!(ly.page_base(0x200c000, 3), 0x30_0000_6000);
        // The kernel half sorts first.
        assert_eq!(ly.chunk_index(0xffff_8000_0000_0000), 0);
        assert_eq!(ly.chunk_index(0), 1 << 25);
    }

    #[test]
    fn arm64_and_386_constants() {
        let ly = Arch::Arm64.layout();
        assert_eq!(ly.base_chunk_idx(), 0xc000);
        assert_eq!(ly.chunk_base(0xc000), 0xc000 * PALLOC_CHUNK_BYTES);
        let ly = Arch::I386.layout();
        assert_eq!(ly.summary_l0_bits, 1);
        assert_eq!(ly.level_bits[..4], [1, 3, 3, 3]);
        assert_eq!(ly.level_shift[..4], [31, 28, 25, 22]);
        assert_eq!(ly.level_log_pages[..4], [18, 15, 12, 9]);
        assert_eq!(ly.log_max_packed_value, 18);
        assert_eq!(ly.max_chunks, 1024);
        assert_eq!(ly.base_chunk_idx(), 0x200);
        assert_eq!(ly.chunk_index(0xff00_0000), 1020);
        assert_eq!(ly.max_search_lin, 0xffff_ffff);
    }

    #[test]
    fn page_base_round_trips() {
        for arch in Arch::ALL {
            let ly = arch.layout();
            for ci in [1, ly.base_chunk_idx(), ly.max_chunks - 1] {
                for p in [0, 1, 255, 511] {
                    let a = ly.page_base(ci, p);
                    assert_eq!(ly.chunk_index(a), ci, "{arch} {ci:#x} {p}");
                    assert_eq!(chunk_page_index(a), p);
                }
            }
        }
    }

    #[test]
    fn summary_ranges() {
        let ly = Arch::Amd64.layout();
        let b = ly.lin(ly.chunk_base(0x200c000));
        // One chunk: one leaf entry, and its block of 8.
        assert_eq!(
            ly.addrs_to_summary_range(4, b, b + PALLOC_CHUNK_BYTES),
            (0x200c000, 0x200c001)
        );
        assert_eq!(
            ly.block_align_summary_range(4, 0x200c003, 0x200c009),
            (0x200c000, 0x200c010)
        );
        // The root block is the whole root level.
        assert_eq!(ly.block_align_summary_range(0, 5, 6), (0, 1 << 14));
        "amd64".parse::<Arch>().unwrap();
        assert!("sparc".parse::<Arch>().is_err());
    }
}
