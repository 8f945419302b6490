"""The Python side of ``Heap``: its statistics as a frozen dataclass, and
resident memory read from ``/proc/self/statm`` (for tests, benchmarks and the
memory picture)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from . import _pagealloc


@dataclass(frozen=True)
class HeapStats:
    """A heap's counters, read under one lock; bytes except ``arenas``.

    ``in_use + free`` is what the heap has grown to (whole 64 MiB arenas);
    ``released`` is the part of ``free`` returned to the OS (or never
    touched); ``retained = in_use + free - released`` is what the heap may
    hold in RAM, the quantity a memory limit bounds."""

    in_use: int
    """Bytes of spans handed out (and held by thread caches)."""
    free: int
    """Bytes of the grown arenas not in use, released or not."""
    released: int
    """Free bytes returned to the OS (or never touched): they cost no RAM."""
    retained: int
    """in_use + free - released: what the heap may hold in RAM."""
    arenas: int
    """64 MiB arenas grown so far (the last may be partial at max_bytes)."""
    metadata_committed: int
    """Bytes of page-allocator metadata committed."""

    @classmethod
    def of(cls, c: _pagealloc.HeapCounters) -> HeapStats:
        """The stats of the engine's counters."""
        return cls(
            in_use=c.in_use,
            free=c.free,
            released=c.released,
            retained=c.retained,
            arenas=c.arenas,
            metadata_committed=c.metadata_committed,
        )

    @property
    def grown(self) -> int:
        """Bytes the heap has grown to: in_use + free."""
        return self.in_use + self.free

    def as_dict(self) -> dict[str, int]:
        """The fields as a dict (for JSON)."""
        return asdict(self)


class Heap(_pagealloc.Heap):
    """Go's mheap in miniature: spans of real, writable pages over address
    space the heap reserves itself, grown by 64 MiB arenas and returned to
    the OS by Go 1.26's scavenger (on ``scavenge()``, or in the background
    under ``memory_limit``).

    >>> heap = Heap(max_bytes=1 << 30)
    >>> with heap.alloc(2) as span:
    ...     view = memoryview(span)
    ...     view[:5] = b"hello"
    ...     bytes(view[:5])
    ...     view.release()
    b'hello'
    """

    __slots__ = ()

    def stats(self) -> HeapStats:
        """The counters as a frozen `HeapStats`."""
        return HeapStats.of(self.counters())


def rss_bytes() -> int:
    """This process's resident memory, from ``/proc/self/statm``."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
