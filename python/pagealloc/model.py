"""A small, obviously correct model of Go's page allocator semantics.

Address-ordered first fit over the linearized address space: the heap is a
set of grown 4 MiB chunks of 512 pages; ``alloc(n)`` returns the lowest
address at which ``n`` free pages lie contiguously (across adjacent grown
chunks), marks them in use, or returns None. No summaries, no search
address, no cleverness: just byte arrays and ``bytes.find``.

Go 1.19's layers, as DESIGN.md ("Trace format v2") states them: a second
flag per page, scavenged; the set of chunks a free has touched (the scavenge
index's marks); ``scavenge`` (highest marked chunk first, its highest free
unscavenged run, never splitting a free huge page); and page caches
(``alloc_to_cache``, ``ModelCache.alloc``, ``ModelCache.flush``).
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
class ModelCache:
    """Go's pageCache in the model: bit i of ``cache`` = page base + i is
    free for the cache, bit i of ``scav`` = that page is scavenged."""

    base: int = 0
    cache: int = 0
    scav: int = 0

    def alloc(self, npages: int) -> tuple[int | None, int]:
        """The lowest run of npages cached pages, taken; (None, 0) if none."""
        if npages < 1:
            raise ModelError("npages")
        run = (1 << npages) - 1
        for i in range(64 - npages + 1):
            if (self.cache >> i) & run == run:
                mask = run << i
                scav = bin(self.scav & mask).count("1") * PAGE_SIZE
                self.cache &= ~mask
                self.scav &= ~mask
                return self.base + i * PAGE_SIZE, scav
        return None, 0


@dataclass
class Model:
    arch: str = "amd64"
    chunks: dict[int, bytearray] = field(default_factory=dict)  # ci -> 512 flags, 1 = in use
    scav: dict[int, bytearray] = field(default_factory=dict)  # ci -> 512 flags, 1 = scavenged
    marked: set[int] = field(default_factory=set)  # chunks a free touched since last found empty
    huge_pages: int = 0  # huge page size in pages (0 or 1: none)

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
            self.scav[c] = bytearray(b"\x01" * CHUNK_PAGES)  # new memory is scavenged

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
        return self.alloc_scav(npages)[0]

    def alloc_scav(self, npages: int) -> tuple[int | None, int]:
        """First fit; also the bytes of it that were scavenged (now not)."""
        if npages < 1:
            raise ModelError("npages")
        want = bytes(npages)
        for first, flags in self.groups():
            if npages > len(flags):
                continue
            i = flags.find(want)
            if i >= 0:
                return self._take(first + i // CHUNK_PAGES, i % CHUNK_PAGES, npages)
        return None, 0

    def alloc_constrained(self, npages: int, align: int = 1, within: tuple[int, int] | None = None) -> tuple[int | None, int]:
        """Scans every candidate address in search order (linearized): the
        lowest one that is a multiple of ``align`` pages, lies in ``within``
        and has ``npages`` free pages; taken as by ``alloc_scav``."""
        if npages < 1 or align < 1 or align & (align - 1):
            raise ModelError("npages or align")
        lo, hi = within if within is not None else (0, 1 << 64)
        if lo >= hi:
            raise ModelError("window")
        for first, flags in self.groups():
            for i in range(len(flags) - npages + 1):
                c, p = first + i // CHUNK_PAGES, i % CHUNK_PAGES
                a = self.addr(c, p)
                if a % (align * PAGE_SIZE) or a < lo or a + npages * PAGE_SIZE > hi:
                    continue
                if not any(flags[i : i + npages]):
                    return self._take(c, p, npages)
        return None, 0

    def alloc_at(self, addr: int, npages: int) -> int:
        """Claims exactly these pages (all grown and free); scavenged bytes."""
        if npages < 1 or addr % PAGE_SIZE:
            raise ModelError("npages or alignment")
        c, p = self.locate(addr)
        for k in range(npages):
            cc, pp = c + (p + k) // CHUNK_PAGES, (p + k) % CHUNK_PAGES
            if cc not in self.chunks or self.chunks[cc][pp]:
                raise ModelError("not free")
        return self._take(c, p, npages)[1]

    def _take(self, c: int, p: int, npages: int) -> tuple[int, int]:
        scav = sum(self.scav[c + (p + k) // CHUNK_PAGES][(p + k) % CHUNK_PAGES] for k in range(npages))
        self._set(c, p, npages, 1)
        self._set(c, p, npages, 0, self.scav)
        return self.addr(c, p), scav * PAGE_SIZE

    def free(self, base: int, npages: int) -> None:
        if npages < 1 or base % PAGE_SIZE:
            raise ModelError("npages or alignment")
        c, p = self.locate(base)
        for k in range(npages):
            cc, pp = c + (p + k) // CHUNK_PAGES, (p + k) % CHUNK_PAGES
            if cc not in self.chunks or not self.chunks[cc][pp]:
                raise ModelError("not in use")
        self._set(c, p, npages, 0)
        # mheap's free marks every chunk the pages touch.
        self.marked.update(range(c, c + (p + npages - 1) // CHUNK_PAGES + 1))

    def _set(self, c: int, p: int, n: int, v: int, flags=None) -> None:
        flags = self.chunks if flags is None else flags
        while n:
            k = min(n, CHUNK_PAGES - p)
            flags[c][p : p + k] = bytes([v]) * k
            n -= k
            c, p = c + 1, 0

    # -- Go 1.19: the scavenger and page caches ---------------------------------
    def scavenge(self, nbytes: int) -> int:
        """DESIGN.md's Go 1.19 scavenge; returns the bytes released."""
        released = 0
        hp = self.huge_pages
        while released < nbytes and self.marked:
            ci = max(self.marked)
            used, scav = self.chunks[ci], self.scav[ci]
            cand = [p for p in range(CHUNK_PAGES) if not used[p] and not scav[p]]
            if not cand:
                self.marked.discard(ci)
                continue
            h = max(cand)
            r0 = h
            while r0 > 0 and not used[r0 - 1] and not scav[r0 - 1]:
                r0 -= 1
            size = min(h + 1 - r0, -(-(nbytes - released) // PAGE_SIZE))
            start = h + 1 - size
            if hp > 1 and -(-start // hp) * hp <= h + 1 and start // hp * hp >= r0:
                start = start // hp * hp
            scav[start : h + 1] = b"\x01" * (h + 1 - start)
            released += PAGE_SIZE * (h + 1 - start)
        return released

    def alloc_to_cache(self) -> ModelCache:
        """The 64-page block holding the lowest free page, its free pages now
        the cache's (in use, unscavenged here); an empty cache if none."""
        for c in sorted(self.chunks):
            p = self.chunks[c].find(0)
            if p < 0:
                continue
            b = p // 64 * 64
            cache = sum(1 << i for i in range(64) if not self.chunks[c][b + i])
            scav = sum(1 << i for i in range(64) if cache >> i & 1 and self.scav[c][b + i])
            for i in range(64):
                if cache >> i & 1:
                    self.chunks[c][b + i] = 1
                    self.scav[c][b + i] = 0
            return ModelCache(self.addr(c, b), cache, scav)
        return ModelCache()

    def flush(self, cache: ModelCache) -> None:
        """Its pages free again, its scavenged ones scavenged; marks nothing."""
        if cache.cache:
            c, b = self.locate(cache.base)
            for i in range(64):
                if cache.cache >> i & 1:
                    self.chunks[c][b + i] = 0
                    self.scav[c][b + i] = cache.scav >> i & 1
        cache.base = cache.cache = cache.scav = 0

    # -- observations ----------------------------------------------------------
    @property
    def bounds(self) -> tuple[int, int]:
        if not self.chunks:
            return (0, 0)
        return (min(self.chunks), max(self.chunks) + 1)

    def chunk_bitmap(self, ci: int) -> int:
        return _bits(self.chunks.get(ci, bytes(CHUNK_PAGES)))

    def chunk_scavenged(self, ci: int) -> int:
        return _bits(self.scav.get(ci, bytes(CHUNK_PAGES)))

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


def _bits(flags) -> int:
    """Page flags (one byte each, 0 or 1) as an int, bit i = page i."""
    return int("".join("1" if f else "0" for f in reversed(flags)), 2)
