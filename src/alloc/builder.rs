//! [`Builder`]: every way to make a [`PageAlloc`] but the plain
//! [`PageAlloc::new`], as one value with options.

use super::*;

/// A chunk's runs of pages, `(first page, page count)`.
type Runs = Vec<(u64, u64)>;

/// How to make a [`PageAlloc`]: a layout (a preset's or a custom one), the
/// Go version it follows, the machine's page sizes, and optionally a heap
/// already grown in some chunks, as Go's test constructor `NewPageAlloc`
/// writes it. Made by [`PageAlloc::builder`]; nothing is reserved until
/// [`Builder::build`].
///
/// ```
/// use pagealloc::{Arch, GoVersion, PageAlloc};
/// // Go 1.19's allocator on a 64 KiB-page machine, with chunk 0x100 grown
/// // and its first 8 pages in use.
/// let pa = PageAlloc::builder(Arch::Arm64)
///     .go(GoVersion::Go119)
///     .phys_page_size(64 << 10)
///     .chunks([(0x100u64, [(0u64, 8u64)])])
///     .build()?;
/// assert_eq!(pa.pages_in_use(), 8);
/// # Ok::<(), pagealloc::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a Builder does nothing until build()"]
pub struct Builder {
    ly: Layout,
    go: GoVersion,
    phys_page: Option<u64>,
    huge_page: Option<u64>,
    chunks: Vec<(u64, Runs)>,
    scavenged: Vec<(u64, Runs)>,
}

impl PageAlloc {
    /// A [`Builder`] for an allocator over `layout` (an [`Arch`] or a
    /// [`Layout`], preset or [`Layout::custom`]), following
    /// [`GoVersion::default`] until told otherwise.
    pub fn builder(layout: impl Into<Layout>) -> Builder {
        Builder {
            ly: layout.into(),
            go: GoVersion::default(),
            phys_page: None,
            huge_page: None,
            chunks: Vec::new(),
            scavenged: Vec::new(),
        }
    }
}

impl Builder {
    /// Follow the page allocator of Go version `go` (see [`GoVersion`]).
    pub fn go(mut self, go: GoVersion) -> Builder {
        self.go = go;
        self
    }

    /// The scavenger's physical page, in bytes (Go's `physPageSize`; by
    /// default the host's): see [`PageAlloc::set_phys_page_size`].
    pub fn phys_page_size(mut self, bytes: u64) -> Builder {
        self.phys_page = Some(bytes);
        self
    }

    /// The huge page the scavenger never splits, in bytes, 0 for none (Go's
    /// `physHugePageSize`; by default the OS's transparent huge page): see
    /// [`PageAlloc::set_phys_huge_page_size`].
    pub fn huge_page_size(mut self, bytes: u64) -> Builder {
        self.huge_page = Some(bytes);
        self
    }

    /// Grow each chunk `(chunk index, runs)` and mark its `(first page, page
    /// count)` runs in use, as Go's `NewPageAlloc(chunks, scav)` does. Every
    /// page of a listed chunk is scavenged unless [`Builder::scavenged`]
    /// says otherwise, then the runs in use are not; a chunk left with free,
    /// unscavenged pages is told to the scavenge index as that Go version's
    /// constructor tells it (Go 1.26's counts each chunk wholly in use, then
    /// wholly freed, then each run in use). Runs of length zero are ignored.
    /// Adds to the chunks given before.
    pub fn chunks<I, R>(mut self, chunks: I) -> Builder
    where
        I: IntoIterator<Item = (u64, R)>,
        R: IntoIterator<Item = (u64, u64)>,
    {
        self.chunks.extend(runs_of(chunks));
        self
    }

    /// The scavenged pages of chunks given to [`Builder::chunks`], as
    /// `(chunk index, runs)` (Go's `scav` argument); a chunk not listed here
    /// has no scavenged page, and entries for chunks not grown are ignored,
    /// as in Go. Adds to the runs given before.
    pub fn scavenged<J, S>(mut self, scav: J) -> Builder
    where
        J: IntoIterator<Item = (u64, S)>,
        S: IntoIterator<Item = (u64, u64)>,
    {
        self.scavenged.extend(runs_of(scav));
        self
    }

    /// Go's `init` (reserving the metadata for the whole address space:
    /// 8.6 GiB of address space on amd64, none of it touched), then the
    /// options. Fails, reserving nothing, on a bad option: a chunk outside
    /// the layout, a run outside its chunk, a bad page size.
    pub fn build(self) -> Result<PageAlloc> {
        let ly = self.ly;
        for (ci, runs) in self.chunks.iter().chain(&self.scavenged) {
            ly.check_chunk(*ci)?;
            for &(i, n) in runs {
                crate::bits::check_range(i, n)?;
            }
        }
        let mut pa = PageAlloc::reserve(ly, self.go)?;
        if let Some(bytes) = self.phys_page {
            pa.set_phys_page_size(bytes)?;
        }
        if let Some(bytes) = self.huge_page {
            pa.set_phys_huge_page_size(bytes)?;
        }
        pa.grow_chunks(self.chunks, self.scavenged)?;
        Ok(pa)
    }
}

/// Collects `(chunk index, runs)` pairs, dropping empty runs.
fn runs_of<I, R>(chunks: I) -> impl Iterator<Item = (u64, Runs)>
where
    I: IntoIterator<Item = (u64, R)>,
    R: IntoIterator<Item = (u64, u64)>,
{
    chunks
        .into_iter()
        .map(|(ci, runs)| (ci, runs.into_iter().filter(|r| r.1 != 0).collect()))
}

impl PageAlloc {
    /// The body of Go's test constructor: grows each chunk in ascending
    /// order, sets its scavenged and in-use pages, and tells the scavenge
    /// index (see [`Builder::chunks`]). Arguments are checked.
    fn grow_chunks(&mut self, mut chunks: Vec<(u64, Runs)>, scav: Vec<(u64, Runs)>) -> Result<()> {
        let mut scavenged: std::collections::HashMap<u64, Runs> = std::collections::HashMap::new();
        for (ci, runs) in scav {
            scavenged.entry(ci).or_default().extend(runs);
        }
        chunks.sort_by_key(|(ci, _)| *ci);
        let ly = self.ly;
        let (min, huge) = (self.min_scav_pages(), self.huge_pages);
        for (ci, runs) in chunks {
            self.grow(ly.chunk_base(ci), ly.pages_bytes(PALLOC_CHUNK_PAGES))?;
            let data = self.data_mut(ci);
            data.scavenged = PallocBits::EMPTY;
            for &(i, n) in scavenged.get(&ci).into_iter().flatten() {
                data.scavenged.alloc_range(i, n);
            }
            for &(i, n) in &runs {
                data.alloc_range(i, n);
            }
            let (_, n) = data.find_scavenge_candidate(PALLOC_CHUNK_PAGES - 1, min, min, huge);
            let lin = ci << LOG_PALLOC_CHUNK_BYTES;
            match &mut self.scav {
                ScavIndex::Go119(ix) if n != 0 => ix.mark(lin, lin + PALLOC_CHUNK_BYTES),
                ScavIndex::Go119(_) => {}
                ScavIndex::Go126(ix) => {
                    ix.alloc(ci, PALLOC_CHUNK_PAGES);
                    ix.free(ci, PALLOC_CHUNK_PAGES - 1, PALLOC_CHUNK_PAGES);
                    for &(_, n) in &runs {
                        ix.alloc(ci, n);
                    }
                }
            }
            self.update(lin, PALLOC_CHUNK_PAGES, false, false);
        }
        Ok(())
    }
}
