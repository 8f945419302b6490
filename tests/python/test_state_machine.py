"""Differential testing: PageAlloc against the pure-Python model.

A hypothesis state machine grows, allocates (reporting scavenged bytes) and
frees on both side by side, and drives Go 1.19's layers: scavenge, page
caches (alloc_to_cache, their allocs, flush); as Go 1.26 (go="1.26")
also background scavenges, generations (next_gen) and padding pages, with
every chunk's scavenge index data compared; after every step the
addresses, bounds, bitmaps and scavenged bitmaps must agree and verify()
must pass. CI runs the bounded "ci" profile (see conftest.py).
"""

import hypothesis.strategies as st
from hypothesis import note
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import pagealloc
from pagealloc.model import CHUNK_BYTES, CHUNK_PAGES, Model, ModelCache, ModelError

ALLOC_SIZES = st.one_of(
    st.just(1),
    st.integers(2, 64),
    st.integers(65, 512),
    st.just(CHUNK_PAGES),
    st.integers(CHUNK_PAGES + 1, 8 * CHUNK_PAGES),
    st.integers(8 * CHUNK_PAGES + 1, 64 * CHUNK_PAGES),  # usually more than the heap holds
)
GAPS = st.sampled_from([0, 1, 0x100, 0x1000, 1 << 20])
PAGE = pagealloc.PAGE_SIZE
SCAVENGE_BYTES = st.sampled_from([0, 1, PAGE, 5 * PAGE, 2 << 20, 3 << 20, 1 << 40])


class PageAllocMachine(RuleBasedStateMachine):
    @initialize(
        arch=st.sampled_from(["amd64", "arm64", "386"]),
        nchunks=st.integers(1, 4),
        huge=st.sampled_from([0, 2 << 20]),
        go=st.sampled_from(["1.19", "1.26"]),
    )
    def start(self, arch, nchunks, huge, go):
        self.arch = arch
        self.go = go
        self.ly = pagealloc.layout(arch)
        self.pa = pagealloc.PageAlloc(arch, go=go)
        self.pa.phys_huge_page_size = huge
        self.model = Model(arch, huge_pages=huge // PAGE, go=go)
        self.live = []  # (base, npages)
        self.caches = []  # (engine PageCache, ModelCache)
        self.do_grow(self.ly.base_chunk_idx, nchunks)

    def do_grow(self, ci, nchunks, offset=0, extra=0):
        """Grow nchunks chunks at chunk ci (possibly unaligned base/size) on both."""
        ci = max(1, min(ci, self.ly.max_chunks - nchunks))
        base = self.ly.chunk_base(ci) + offset
        size = nchunks * CHUNK_BYTES - offset - extra
        expect_ok = model_accepts(lambda: self.model.grow(base, size))
        note(f"grow({base:#x}, {size:#x}) expect_ok={expect_ok}")
        if expect_ok:
            self.pa.grow(base, size)
        else:
            self.refused(lambda: self.pa.grow(base, size), "grow should have been refused", lambda: self.pa.bounds)

    @rule(gap=GAPS, n=st.integers(1, 4), unaligned=st.booleans())
    def grow_above(self, gap, n, unaligned):
        self.do_grow(self.model.bounds[1] + gap, n, *((0x2000, 0x1000) if unaligned else (0, 0)))

    @rule(gap=GAPS, n=st.integers(1, 4))
    def grow_below(self, gap, n):
        self.do_grow(self.model.bounds[0] - gap - n, n)

    @rule(n=st.integers(1, 3), delta=st.integers(-8, 8))
    def grow_anywhere(self, n, delta):
        """Often overlaps what exists: both must refuse it."""
        self.do_grow(self.model.bounds[0] + delta, n)

    @rule(npages=ALLOC_SIZES)
    def alloc(self, npages):
        want = self.model.alloc_scav(npages)
        got = self.pa.alloc_scav(npages)
        note(f"alloc_scav({npages}) -> {got}")
        assert got == want, f"alloc_scav({npages}): got {got}, model {want}"
        if got[0] is not None:
            self.live.append((got[0], npages))

    @rule(
        npages=st.one_of(st.integers(1, 8), st.integers(9, 700)),
        align_log=st.integers(0, 10),
        window=st.one_of(st.none(), st.tuples(st.integers(-2, 12), st.integers(0, 1 << 23), st.integers(1, 8 << 22))),
    )
    def alloc_constrained(self, npages, align_log, window):
        align = 1 << align_log
        within = None
        if window is not None:
            c, off, size = window
            lo = self.ly.chunk_base(max(1, self.model.bounds[0] + c)) + off
            within = (lo, lo + size)
        want = self.model.alloc_constrained(npages, align, within)
        got = self.pa.alloc_scav(npages, align=align, within=within)
        note(f"alloc_scav({npages}, align={align}, within={within}) -> {got}")
        assert got == want, f"alloc({npages}, align={align}, within={within}): got {got}, model {want}"
        if got[0] is not None:
            self.live.append((got[0], npages))

    @rule(c=st.integers(-1, 8), page=st.integers(0, CHUNK_PAGES - 1), npages=st.integers(1, 600))
    def alloc_at(self, c, page, npages):
        ci = max(1, self.model.bounds[0] + c)
        addr = self.ly.page_base(ci, page)
        try:
            want = self.model.alloc_at(addr, npages)
        except ModelError:
            want = None
        note(f"alloc_at({addr:#x}, {npages}) -> model {want}")
        if want is None:
            self.refused(lambda: self.pa.alloc_at(addr, npages), "alloc_at accepted pages that are not all grown and free")
        else:
            assert self.pa.alloc_at(addr, npages) == want
            self.live.append((addr, npages))

    @rule(nbytes=SCAVENGE_BYTES, bg=st.booleans())
    def scavenge(self, nbytes, bg):
        force = not (bg and self.go == "1.26")
        want = self.model.scavenge(nbytes, force=force)
        got = self.pa.scavenge(nbytes, force=force)
        note(f"scavenge({nbytes:#x}, force={force}) -> {got}")
        assert got == want, f"scavenge({nbytes:#x}, force={force}): got {got}, model {want}"

    @precondition(lambda self: self.go == "1.26")
    @rule()
    def next_gen(self):
        note("next_gen()")
        self.model.next_gen()
        self.pa.next_gen()

    @precondition(lambda self: self.go == "1.26")
    @rule(c=st.integers(-1, 8), page=st.integers(0, CHUNK_PAGES - 1), npages=st.integers(1, 70))
    def pad(self, c, page, npages):
        addr = self.ly.page_base(max(1, self.model.bounds[0] + c), page)
        ok = model_accepts(lambda: self.model.mark_padding(addr, npages))
        note(f"mark_padding({addr:#x}, {npages}) -> model ok={ok}")
        if ok:
            self.pa.mark_padding(addr, npages)
        else:
            self.refused(lambda: self.pa.mark_padding(addr, npages), "mark_padding accepted pages that are not all grown and free")

    def refused(self, call, failure, state=None):
        """call() must raise ValueError and change nothing that state()
        reads (by default every grown chunk's bitmap); else `failure`."""
        if state is None:
            state = lambda: [self.pa.chunk_bitmap(ci) for ci in self.model.chunks]  # noqa: E731
        before = state()
        try:
            call()
        except ValueError:
            pass
        else:
            raise AssertionError(failure)
        assert state() == before

    @precondition(lambda self: len(self.caches) < 4)
    @rule()
    def cache(self):
        want = self.model.alloc_to_cache()
        got = self.pa.alloc_to_cache()
        note(f"alloc_to_cache() -> {got!r}")
        assert (got.base, got.cache, got.scav) == (want.base, want.cache, want.scav)
        self.caches.append((got, want))

    @precondition(lambda self: self.caches)
    @rule(i=st.integers(0, 10**6), npages=st.one_of(st.just(1), st.integers(2, 16), st.integers(17, 70)))
    def calloc(self, i, npages):
        got_c, want_c = self.caches[i % len(self.caches)]
        want = want_c.alloc(npages)
        got = got_c.alloc(npages)
        note(f"cache {got_c!r}.alloc({npages}) -> {got}")
        assert got == want
        if got[0] is not None:
            self.live.append((got[0], npages))

    @precondition(lambda self: self.caches)
    @rule(i=st.integers(0, 10**6))
    def flush(self, i):
        got_c, want_c = self.caches.pop(i % len(self.caches))
        note(f"flush {got_c!r}")
        self.model.flush(want_c)
        got_c.flush(self.pa)
        assert got_c.empty and isinstance(want_c, ModelCache)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 10**6))
    def free(self, i):
        base, npages = self.live.pop(i % len(self.live))
        note(f"free({base:#x}, {npages})")
        self.model.free(base, npages)
        self.pa.free(base, npages)

    @precondition(lambda self: self.live)
    @rule(i=st.integers(0, 10**6))
    def double_free_is_refused(self, i):
        base, npages = self.live[i % len(self.live)]
        self.pa.free(base, npages)
        self.model.free(base, npages)
        before = self.pa.chunk_bitmap(self.ly.chunk_index(base))
        try:
            self.pa.free(base, npages)
        except ValueError:
            pass
        else:
            raise AssertionError("double free accepted")
        assert self.pa.chunk_bitmap(self.ly.chunk_index(base)) == before
        # Take it again so the live list stays true.
        self.live.remove((base, npages))

    @invariant()
    def agrees_with_model(self):
        assert self.pa.bounds == self.model.bounds
        assert self.pa.grown_ranges == list(_ranges(self.model.chunks))
        for ci in self.model.chunks:
            assert self.pa.chunk_bitmap(ci) == self.model.chunk_bitmap(ci), f"chunk {ci:#x}"
            assert self.pa.chunk_scavenged(ci) == self.model.chunk_scavenged(ci), f"chunk {ci:#x} scavenged"
            if self.go == "1.26":
                got, want = self.pa.scav_chunk_data(ci), self.model.scav_chunk_data(ci)
                assert got == want, f"chunk {ci:#x} index data: got {got}, model {want}"
        assert self.pa.pages_in_use == self.model.pages_in_use
        runs = self.model.free_runs()
        assert self.pa.largest_free_run == max(runs, default=0)
        self.pa.verify()


def model_accepts(call):
    """Whether the model carries out call() (else it raised ModelError)."""
    try:
        call()
    except ModelError:
        return False
    return True


def _ranges(chunks):
    start = prev = None
    for c in sorted(chunks):
        if prev is not None and c != prev + 1:
            yield (start, prev + 1)
            start = None
        if start is None:
            start = c
        prev = c
    if start is not None:
        yield (start, prev + 1)


TestPageAllocMachine = PageAllocMachine.TestCase
