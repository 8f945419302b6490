//! `Layout` and the summary and bit-range functions of the binding.

use pyo3::prelude::*;

use super::{ArchArg, AMD64, U64};
use crate::arch::{Arch, Layout};
use crate::bits;
use crate::summary::{PallocSum, SumFormat};

/// The constants of one layout: a preset's (Go's per-GOARCH constants) or a
/// custom geometry's (see the stubs for each field).
#[pyclass(frozen, get_all, name = "Layout", module = "pagealloc._pagealloc")]
pub(crate) struct PyLayout {
    arch: &'static str,
    is_custom: bool,
    page_size: u64,
    address_bits: u32,
    heap_addr_bits: u32,
    arena_base_offset: u64,
    summary_levels: usize,
    summary_l0_bits: u32,
    level_bits: Vec<u32>,
    level_shift: Vec<u32>,
    level_log_pages: Vec<u32>,
    log_max_packed_value: u32,
    max_chunks: u64,
    base_chunk_idx: u64,
    max_search_addr: u64,
}

impl From<Layout> for PyLayout {
    fn from(ly: Layout) -> PyLayout {
        let levels = ly.summary_levels;
        PyLayout {
            arch: ly.name(),
            is_custom: ly.custom,
            page_size: ly.page_size(),
            address_bits: ly.address_bits,
            heap_addr_bits: ly.heap_addr_bits,
            arena_base_offset: ly.arena_base_offset,
            summary_levels: levels,
            summary_l0_bits: ly.summary_l0_bits,
            level_bits: ly.level_bits[..levels].to_vec(),
            level_shift: ly.level_shift[..levels].to_vec(),
            level_log_pages: ly.level_log_pages[..levels].to_vec(),
            log_max_packed_value: ly.log_max_packed_value,
            max_chunks: ly.max_chunks,
            base_chunk_idx: ly.base_chunk_idx(),
            max_search_addr: ly.unlin(ly.max_search_lin),
        }
    }
}

impl PyLayout {
    /// The engine's layout these fields were read from.
    pub(crate) fn ly(&self) -> Layout {
        if self.is_custom {
            return Layout::custom(self.page_size, self.address_bits, self.arena_base_offset)
                .expect("a custom layout's own fields are valid");
        }
        let arch: Arch = self.arch.parse().expect("a preset's own name parses");
        arch.layout()
    }
}

#[pymethods]
impl PyLayout {
    /// A layout of your own geometry: page_size a power of two from 4 KiB to
    /// 1 GiB, address_bits from 32 to 57, addresses linearized by adding
    /// arena_base_offset; chunks stay 512 pages, 5 summary levels (4 at 32
    /// bits) of 3 bits each below the root, which takes the rest (at least
    /// 1 bit, else ValueError).
    #[staticmethod]
    #[pyo3(signature = (page_size, address_bits, arena_base_offset = U64(0)))]
    fn custom(page_size: U64, address_bits: u32, arena_base_offset: U64) -> PyResult<PyLayout> {
        Ok(Layout::custom(page_size.0, address_bits, arena_base_offset.0)?.into())
    }
    /// Go's chunkIndex: the chunk holding address addr.
    fn chunk_index(&self, addr: U64) -> PyResult<u64> {
        Ok(self.ly().try_chunk_index(addr.0)?)
    }
    /// Go's chunkBase: the first address of chunk ci.
    fn chunk_base(&self, ci: U64) -> PyResult<u64> {
        let ly = self.ly();
        Ok(ly.chunk_base(ly.check_chunk(ci.0)?))
    }
    /// Go's PageBase: the address of page page_idx of chunk ci (the page
    /// may run past the chunk, as in Go).
    fn page_base(&self, ci: U64, page_idx: U64) -> PyResult<u64> {
        Ok(self.ly().try_page_base(ci.0, page_idx.0)?)
    }
    fn __repr__(&self) -> String {
        format!(
            "Layout(arch={:?}, page_size={}, address_bits={}, summary_levels={}, level_bits={:?}, arena_base_offset={:#x})",
            self.arch,
            self.page_size,
            self.address_bits,
            self.summary_levels,
            self.level_bits,
            self.arena_base_offset
        )
    }
}

/// The layout constants of a preset ("amd64", "arm64" or "386").
#[pyfunction]
#[pyo3(signature = (arch = AMD64))]
pub(crate) fn layout(arch: ArchArg) -> PyLayout {
    arch.0.layout().into()
}

fn sum_format(arch: ArchArg) -> SumFormat {
    SumFormat::new(arch.0.layout().log_max_packed_value)
}

/// Go's packPallocSum: packs (start, max, end) into one int. A whole free
/// root region (max == 2**log_max_packed_value) packs to just bit 63.
#[pyfunction]
#[pyo3(signature = (start, max, end, arch = AMD64))]
pub(crate) fn pack_summary(start: U64, max: U64, end: U64, arch: ArchArg) -> PyResult<u64> {
    let sf = sum_format(arch);
    Ok(sf.go_bits(sf.try_pack(start.0, max.0, end.0)?))
}

/// Go's pallocSum.unpack: the (start, max, end) of a packed summary.
#[pyfunction]
#[pyo3(signature = (packed, arch = AMD64))]
pub(crate) fn unpack_summary(packed: U64, arch: ArchArg) -> (u64, u64, u64) {
    let sf = sum_format(arch);
    sf.unpack(sf.from_go_bits(packed.0))
}

/// Go's mergeSummaries: merges packed summaries of consecutive regions of
/// at most 2**log_max_pages_per_sum pages each into one packed summary.
#[pyfunction]
#[pyo3(signature = (sums, log_max_pages_per_sum, arch = AMD64))]
pub(crate) fn merge_summaries(
    sums: Vec<U64>,
    log_max_pages_per_sum: u32,
    arch: ArchArg,
) -> PyResult<u64> {
    let sf = sum_format(arch);
    let sums: Vec<PallocSum> = sums.into_iter().map(|s| sf.from_go_bits(s.0)).collect();
    Ok(sf.go_bits(sf.try_merge(&sums, log_max_pages_per_sum)?))
}

/// Go's findBitRange64: index of the first run of n set bits in c, or >= 64.
#[pyfunction]
pub(crate) fn find_bit_range64(c: U64, n: U64) -> PyResult<u64> {
    Ok(bits::try_find_bit_range64(c.0, n.0)?)
}
