"""A small, obviously correct model of Go's page allocator semantics.

Address-ordered first fit over the linearized address space: the heap is a
set of grown 4 MiB chunks of 512 pages; ``alloc(n)`` returns the lowest
address at which ``n`` free pages lie contiguously (across adjacent grown
chunks), marks them in use, or returns None. No summaries, no search
address, no cleverness: just byte arrays and ``bytes.find``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._pagealloc import PAGE_SIZE, PALLOC_CHUNK_PAGES as CHUNK_PAGES

CHUNK_BYTES = PAGE_SIZE * CHUNK_PAGES
MASK64 = (1 << 64) - 1

ARCH = {
    # name: (heap_addr_bits, arena_base_offset)
    "amd64": (48, 1 << 47),
    "arm64": (48, 0),
    "386": (32, 0),
}


class ModelError(ValueError):
    """The model's verdict that an operation is invalid."""


@dataclass
class Model:
    arch: str = "amd64"
    chunks: dict[int, bytearray] = field(default_factory=dict)  # ci -> 512 flags, 1 = in use

    def __post_init__(self) -> None:
        self.bits, self.offset = ARCH[self.arch]

    # -- addresses ---------------------------------------------------------
    def lin(self, addr: int) -> int:
        return (addr + self.offset) & MASK64

    def addr(self, ci: int, page: int = 0) -> int:
        return ((ci * CHUNK_BYTES) + page * PAGE_SIZE - self.offset) & MASK64

    def locate(self, addr: int) -> tuple[int, int]:
        lin = self.lin(addr)
        return lin // CHUNK_BYTES, lin % CHUNK_BYTES // PAGE_SIZE

    # -- operations ----------------------------------------------------------
    def grow(self, base: int, size: int) -> None:
        if size <= 0:
            raise ModelError("size")
        lin = self.lin(base)
        if lin + size > 1 << self.bits:
            raise ModelError("beyond address space")
        sc = lin // CHUNK_BYTES
        ec = -(-(lin + size) // CHUNK_BYTES)
        zero_chunk = self.lin(0) // CHUNK_BYTES
        if sc == 0 or sc <= zero_chunk < ec:
            raise ModelError("covers address 0 or chunk 0")
        if any(c in self.chunks for c in range(sc, ec)):
            raise ModelError("already grown")
        for c in range(sc, ec):
            self.chunks[c] = bytearray(CHUNK_PAGES)

    def groups(self):
        """Maximal runs of adjacent grown chunks: (first ci, concatenated flags)."""
        run_start, flags, prev = None, bytearray(), None
        for c in sorted(self.chunks):
            if prev is not None and c != prev + 1:
                yield run_start, flags
                run_start, flags = None, bytearray()
            if run_start is None:
                run_start = c
            flags += self.chunks[c]
            prev = c
        if run_start is not None:
            yield run_start, flags

    def alloc(self, npages: int) -> int | None:
        if npages < 1:
            raise ModelError("npages")
        want = bytes(npages)
        for first, flags in self.groups():
            if npages > len(flags):
                continue
            i = flags.find(want)
            if i >= 0:
                c, p = first + i // CHUNK_PAGES, i % CHUNK_PAGES
                self._set(c, p, npages, 1)
                return self.addr(c, p)
        return None

    def free(self, base: int, npages: int) -> None:
        if npages < 1 or base % PAGE_SIZE:
            raise ModelError("npages or alignment")
        c, p = self.locate(base)
        for k in range(npages):
            cc, pp = c + (p + k) // CHUNK_PAGES, (p + k) % CHUNK_PAGES
            if cc not in self.chunks or not self.chunks[cc][pp]:
                raise ModelError("not in use")
        self._set(c, p, npages, 0)

    def _set(self, c: int, p: int, n: int, v: int) -> None:
        while n:
            k = min(n, CHUNK_PAGES - p)
            self.chunks[c][p : p + k] = bytes([v]) * k
            n -= k
            c, p = c + 1, 0

    # -- observations ----------------------------------------------------------
    @property
    def bounds(self) -> tuple[int, int]:
        if not self.chunks:
            return (0, 0)
        return (min(self.chunks), max(self.chunks) + 1)

    def chunk_bitmap(self, ci: int) -> int:
        flags = self.chunks.get(ci, bytes(CHUNK_PAGES))
        return int("".join("1" if f else "0" for f in reversed(flags)), 2)

    def free_runs(self) -> list[int]:
        """Lengths of the maximal free runs, in address order."""
        runs = []
        for _, flags in self.groups():
            n = 0
            for f in flags:
                if f:
                    if n:
                        runs.append(n)
                    n = 0
                else:
                    n += 1
            if n:
                runs.append(n)
        return runs

    @property
    def pages_in_use(self) -> int:
        return sum(sum(f) for f in self.chunks.values())

    @property
    def pages_grown(self) -> int:
        return len(self.chunks) * CHUNK_PAGES
