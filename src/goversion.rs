//! Which Go's page allocator an allocator follows.
//!
//! The radix tree, `find`, `alloc`, `allocToCache` and `pageCache.alloc`
//! are the same in every Go since 1.14. What changed after Go 1.19 is the
//! scavenger's half (Go 1.21, CL 436395, golang/go#55328, as Go 1.26.8 ships
//! it): the scavenge index, what `alloc`, `free` and a cache flush tell it,
//! and `scavenge` itself. So the choice selects the scavenge index (Go
//! 1.19's or Go 1.26's, `scav_index`) and a few calls around it; it is one
//! dispatch per allocation or free.
//!
//! | | Go 1.19 | Go 1.26 |
//! |---|---|---|
//! | scavenge index | one bit per chunk: "may hold free, unscavenged pages" | per chunk `scavChunkData` {inUse, lastInUse, gen, hasFree} |
//! | `alloc` | nothing | `index.alloc(ci, n)` per chunk |
//! | `free` | marks the chunks (`free(base, n, scavenged)`) | `index.free(ci, page, n)` per chunk |
//! | cache flush | invisible to the scavenger | `index.free` per page returned |
//! | `scavenge` | highest marked chunk first, from the top every call | from one of two cursors (background, forced), continuing |
//! | background scavenger | - | skips chunks with 496 or more pages in use, now or in the last generation |
//! | heap-base randomization | - | `markRandomPaddingPages`: pages in use and scavenged |

use crate::error::{Error, Result};

/// The Go version whose page allocator a [`crate::PageAlloc`] follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GoVersion {
    /// Go 1.19 (trace formats v1 and v2).
    Go119,
    /// Go 1.26.8 (trace format v3); Go 1.27.3's allocator files are the
    /// same. The default: the page allocator Go ships today.
    #[default]
    Go126,
}

impl GoVersion {
    /// Every version, oldest first.
    pub const ALL: [GoVersion; 2] = [GoVersion::Go119, GoVersion::Go126];

    /// The version's name as users write it: `"1.19"`, `"1.26"`.
    pub const fn name(self) -> &'static str {
        match self {
            GoVersion::Go119 => "1.19",
            GoVersion::Go126 => "1.26",
        }
    }

    /// Parses `"1.19"` or `"1.26"` (also with a `go` prefix, `"go1.26"`).
    pub fn parse(s: &str) -> Result<GoVersion> {
        let v = s.strip_prefix("go").unwrap_or(s);
        GoVersion::ALL
            .into_iter()
            .find(|g| g.name() == v)
            .ok_or_else(|| Error::UnknownGoVersion {
                given: s.to_string(),
            })
    }
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Go {}", self.name())
    }
}
