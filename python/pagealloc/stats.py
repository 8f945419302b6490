"""Heap statistics: how full the heap is and how fragmented it got."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ._pagealloc import PAGE_SIZE, Occupancy


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Stats:
    """A snapshot of a PageAlloc, from ``PageAlloc.stats()``.

    Page counts are in 8 KiB pages. ``largest_free_run`` is read from the
    root summaries (Go's radix tree), the rest from one pass over the bitmaps.
    """

    pages_grown: int
    """Pages in chunks the heap has grown into ("known" pages)."""
    pages_in_use: int
    """Pages allocated (spans, page caches' blocks and padding)."""
    pages_free: int
    """pages_grown - pages_in_use."""
    largest_free_run: int
    """The longest run of contiguous free pages (the largest alloc that fits)."""
    free_runs: int
    """Maximal runs of free pages (holes), counted across adjacent chunks."""
    external_fragmentation: float
    """1 - largest_free_run / pages_free: 0 when all free pages form one run."""
    chunks_grown: int
    """Chunks grown (4 MiB each)."""
    mapped_bytes: int
    """Metadata bytes committed (Go's sysStat for the page allocator)."""
    reserved_bytes: int
    """Metadata address space reserved."""

    @classmethod
    def of(cls, o: Occupancy) -> Stats:
        """The statistics of an allocator's ``occupancy()``."""
        free = o.pages_grown - o.pages_in_use
        return cls(
            pages_grown=o.pages_grown,
            pages_in_use=o.pages_in_use,
            pages_free=free,
            largest_free_run=o.largest_free_run,
            free_runs=o.free_runs,
            external_fragmentation=1.0 - o.largest_free_run / free if free else 0.0,
            chunks_grown=o.chunks_grown,
            mapped_bytes=o.mapped_bytes,
            reserved_bytes=o.reserved_bytes,
        )

    @property
    def occupancy(self) -> float:
        """Fraction of known pages in use."""
        return self.pages_in_use / self.pages_grown if self.pages_grown else 0.0

    def as_dict(self) -> dict:
        """The fields as a dict (for JSON)."""
        return asdict(self)

    def summary_line(self) -> str:
        """One line, for image titles."""
        return (
            f"{self.chunks_grown} chunks, {self.occupancy:.1%} in use, "
            f"{self.free_runs} free runs, largest {self.largest_free_run} pages, "
            f"fragmentation {self.external_fragmentation:.3f}"
        )

    def __str__(self) -> str:
        rows = [
            ("chunks grown", f"{self.chunks_grown} ({_bytes(self.pages_grown * PAGE_SIZE)})"),
            ("pages known", f"{self.pages_grown}"),
            ("pages in use", f"{self.pages_in_use} ({self.occupancy:.1%})"),
            ("pages free", f"{self.pages_free}"),
            ("largest free run", f"{self.largest_free_run} pages ({_bytes(self.largest_free_run * PAGE_SIZE)})"),
            ("free runs", f"{self.free_runs}"),
            ("external fragmentation", f"{self.external_fragmentation:.4f}"),
            ("metadata committed", f"{self.mapped_bytes} B ({_bytes(self.mapped_bytes)})"),
            ("metadata reserved", f"{self.reserved_bytes} B ({_bytes(self.reserved_bytes)})"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
