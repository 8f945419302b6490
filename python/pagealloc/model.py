"""A small, obviously correct model of Go's page allocator semantics.

Address-ordered first fit over the linearized address space: the heap is a
set of grown 4 MiB chunks of 512 pages; ``alloc(n)`` returns the lowest
address at which ``n`` free pages lie contiguously (across adjacent grown
chunks), marks them in use, or returns None. No summaries, no search
address, no cleverness: just byte arrays and ``bytes.find``.

Go 1.19's layers, as the trace formats (docs/formats.md, v2) state them: a second
flag per page, scavenged; the set of chunks a free has touched (the scavenge
index's marks); ``scavenge`` (highest marked chunk first, its highest free
unscavenged run, never splitting a free huge page); and page caches
(``alloc_to_cache``, ``ModelCache.alloc``, ``ModelCache.flush``).

Go 1.26's, as the trace formats (v3) state them, with ``go="1.26"``:
per chunk the scavenge index's {in_use, last_in_use, gen, has_free}, a
generation, the freed-pages high-water mark and the background and forced
cursors (each with Go's "marked" bit); ``scavenge(nbytes, force)`` walking
down from a cursor; ``next_gen``; ``mark_padding``.
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
    go: str = "1.19"
    # Go 1.26: ci -> [in_use, last_in_use, gen, has_free]; cursors [lin, marked].
    index: dict[int, list] = field(default_factory=dict)
    gen: int = 0
    free_hwm: int = 0
    bg: list = field(default_factory=lambda: [0, False])
    force: list = field(default_factory=lambda: [0, False])
    min_heap_idx: int = 0

    def __post_init__(self) -> None:
        self.bits, self.offset = ARCH[self.arch]
        if self.go not in ("1.19", "1.26"):
            raise ModelError("go")

    @property
    def go126(self) -> bool:
        return self.go == "1.26"

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
            self.index[c] = [0, 0, 0, False]
        if self.min_heap_idx == 0 or sc < self.min_heap_idx:
            self.min_heap_idx = sc

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
        if self.go126:
            for cc, pp, n in _pieces(c, p, npages):
                self._idx_alloc(cc, n)
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
        if self.go126:
            for cc, pp, n in _pieces(c, p, npages):
                self._idx_free(cc, pp + n - 1, n)
        else:
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
    def scavenge(self, nbytes: int, force: bool = True) -> int:
        """The trace formats' Go 1.19 scavenge, or Go 1.26's (forced or the
        background scavenger's); returns the bytes released."""
        if self.go126:
            return self._scavenge126(nbytes, force)
        if not force:
            raise ModelError("no background scavenger in Go 1.19")
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
            # Go's scavenged.block64: the whole block (Go 1.26's padding
            # pages, in use and scavenged, show too).
            scav = sum(1 << i for i in range(64) if self.scav[c][b + i])
            for i in range(64):
                if cache >> i & 1:
                    self.chunks[c][b + i] = 1
                    self.scav[c][b + i] = 0
            if self.go126:
                self._idx_alloc(c, bin(cache).count("1"))
            return ModelCache(self.addr(c, b), cache, scav)
        return ModelCache()

    def flush(self, cache: ModelCache) -> None:
        """Its pages free again, its scavenged ones scavenged; Go 1.19 marks
        nothing, Go 1.26 frees them page by page through the index."""
        if cache.cache:
            c, b = self.locate(cache.base)
            for i in range(64):
                if cache.cache >> i & 1:
                    self.chunks[c][b + i] = 0
                    if self.go126:
                        self._idx_free(c, b + i, 1)
                if cache.scav >> i & 1:
                    self.scav[c][b + i] = 1
        cache.base = cache.cache = cache.scav = 0

    # -- Go 1.26: the scavenge index, scavenge, generations, padding ------------
    def _idx_alloc(self, c: int, n: int) -> None:
        e = self.index[c]
        if e[2] != self.gen:
            e[1], e[2] = e[0], self.gen
        e[0] += n
        if e[0] == CHUNK_PAGES:
            e[3] = False

    def _idx_free(self, c: int, last: int, n: int) -> None:
        e = self.index[c]
        if e[2] != self.gen:
            e[1], e[2] = e[0], self.gen
        e[0] -= n
        e[3] = True
        lin = c * CHUNK_BYTES + last * PAGE_SIZE
        self.free_hwm = max(self.free_hwm, lin)
        if self.force[0] < lin:
            self.force = [lin, True]

    def next_gen(self) -> None:
        if not self.go126:
            raise ModelError("no generations in Go 1.19")
        self.gen = (self.gen + 1) & 0xFFFFFFFF
        if self.bg[0] < self.free_hwm:
            self.bg = [self.free_hwm, True]
        self.free_hwm = 0

    def _should(self, c: int, force: bool) -> bool:
        in_use, last, gen, has_free = self.index.get(c, [0, 0, 0, False])
        if not has_free:
            return False
        if force:
            return True
        if gen == self.gen:
            return in_use < 496 and last < 496
        return in_use < 496

    def _find(self, force: bool) -> tuple[int, int] | None:
        cur = self.force if force else self.bg
        lin, marked = cur
        if lin == 0:
            return None
        start = lin // CHUNK_BYTES
        for c in range(start, self.min_heap_idx - 1, -1):
            if not self._should(c, force):
                continue
            if c == start:
                return c, lin % CHUNK_BYTES // PAGE_SIZE
            new = c * CHUNK_BYTES + CHUNK_BYTES - PAGE_SIZE
            if marked or new <= lin:
                cur[0], cur[1] = new, False
            return c, CHUNK_PAGES - 1
        if not marked:
            cur[0] = 0
        return None

    def _scavenge126(self, nbytes: int, force: bool) -> int:
        released = 0
        while released < nbytes:
            found = self._find(force)
            if found is None:
                break
            c, search = found
            released += self._scavenge_one(c, search, nbytes - released)
        return released

    def _scavenge_one(self, c: int, search: int, most: int) -> int:
        used, scav = self.chunks[c], self.scav[c]
        max_pages = -(-most // PAGE_SIZE)
        # findScavengeCandidate: the highest free, unscavenged page in the
        # word holding the search page or below (a whole word), and the run
        # of such pages down from it.
        top = (search // 64 + 1) * 64
        cand = [p for p in range(top) if not used[p] and not scav[p]]
        if not cand:
            self.index[c][3] = False  # setEmpty
            return 0
        h = max(cand)
        r0 = h
        while r0 > 0 and not used[r0 - 1] and not scav[r0 - 1]:
            r0 -= 1
        start = h + 1 - min(h + 1 - r0, max_pages)
        hp = self.huge_pages
        if hp > 1 and -(-start // hp) * hp <= h + 1 and start // hp * hp >= r0:
            start = start // hp * hp
        scav[start : h + 1] = b"\x01" * (h + 1 - start)
        return PAGE_SIZE * (h + 1 - start)

    def mark_padding(self, addr: int, npages: int) -> None:
        """markRandomPaddingPages: grown, free pages become in use and scavenged."""
        if not self.go126:
            raise ModelError("no padding in Go 1.19")
        if npages < 1 or addr % PAGE_SIZE:
            raise ModelError("npages or alignment")
        c, p = self.locate(addr)
        for cc, pp, n in _pieces(c, p, npages):
            if cc not in self.chunks or any(self.chunks[cc][pp : pp + n]):
                raise ModelError("not free")
        self._set(c, p, npages, 1)
        self._set(c, p, npages, 1, self.scav)
        for cc, pp, n in _pieces(c, p, npages):
            self._idx_alloc(cc, n)

    def scav_chunk_data(self, ci: int) -> tuple[int, int, int, bool]:
        in_use, last, gen, has_free = self.index[ci]
        return in_use, last, gen, has_free

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


def _pieces(c: int, p: int, npages: int):
    """Pages [p, p + npages) of chunk c onward, one (chunk, first, count) per chunk."""
    while npages:
        n = min(npages, CHUNK_PAGES - p)
        yield c, p, n
        npages -= n
        c, p = c + 1, 0


def _bits(flags) -> int:
    """Page flags (one byte each, 0 or 1) as an int, bit i = page i."""
    return int("".join("1" if f else "0" for f in reversed(flags)), 2)
