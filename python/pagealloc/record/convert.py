"""From a recorded runtime log to a trace and the real run's results.

The hooks (hooks/record_*.go) log one line per event, in the order the
page allocator's state changed:

    H 1 PHYS HUGE              header: physical and huge page size
    g BASE SIZE                pageAlloc.grow
    a NPAGES ADDR SCAV         pageAlloc.alloc and what it returned
    f BASE NPAGES              pageAlloc.free (of a span)
    c CACHE BASE BITS SCAV     a page cache refilled by allocToCache
    ca CACHE NPAGES ADDR SCAV  pageCache.alloc on that cache
    fl CACHE                   pageCache.flush
    S G NBYTES FORCE           pageAlloc.scavenge called for goroutine G ...
    sf G CI PAGE               ... its index find (CI 0: nothing left)
    so G CI MAX RELEASED       ... one scavengeOne
    E G RELEASED               ... and what the call returned
    ng                         scavengeIndex.nextGen (Go 1.26)
    pad BASE NPAGES            markRandomPaddingPages (Go 1.26)
    B START END                at exit: the bounds,
    C CI W0..W7 S0..S7         every grown chunk's bitmaps,
    X                          and the end of the log

(numbers in hex). Frees name a base address; the trace names the
allocation (`free K`), so the converter keeps the live allocations. A
scavenge call becomes one `scavenge` op when nothing happened between its
steps; when other operations interleaved (another goroutine, or GOMAXPROCS
> 1), each uninterrupted run of its steps becomes an op of its own,
`scavenge REMAINING [bg] stop=K`, which replays exactly those K steps.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SIZE = 8192
CHUNK_BYTES = 512 * PAGE_SIZE
TRACE_VERSION = {"1.19": 2, "1.26": 3}


class LogError(ValueError):
    """A log line the converter cannot turn into a trace op (named by line)."""


@dataclass
class _Call:
    nbytes: int
    force: bool
    released: int = 0
    segments: int = 0  # ops it became (more than one: other ops interleaved)


@dataclass
class _Segment:
    """Consecutive steps of one scavenge call with nothing in between."""

    g: int
    start_released: int
    steps: int = 0
    released: int = 0
    exhausted: bool = False  # its last find found nothing
    pending_find: bool = False  # its last find's scavengeOne came later


@dataclass
class Converted:
    """The trace, the real results, and what the log said about the run."""

    trace: str
    real: str
    ops: int
    counts: dict[str, int]
    complete: bool  # the final state was dumped (the program exited normally)
    truncated: bool  # the log ended inside a line or inside a scavenge call
    interleaved_scavenges: int  # scavenge calls split into steps
    phys_page: int = 0
    huge_page: int = 0


def _runs(words: list[int]) -> str:
    """A chunk's maximal runs of set bits as ` I+N ...` (results format)."""
    bits = 0
    for i, w in enumerate(words):
        bits |= w << (64 * i)
    out = []
    i = 0
    while i < 512:
        if bits >> i & 1:
            j = i
            while j < 512 and bits >> j & 1:
                j += 1
            out.append(f" {i}+{j - i}")
            i = j
        else:
            i += 1
    return "".join(out)


def convert(log: str, go: str, header: str = "") -> Converted:
    """Turn the log of one process into a trace (v2 for Go 1.19, v3 for Go
    1.26) and its results file. A log cut short (a killed program) converts
    up to its last whole line; a line the trace cannot express raises
    LogError naming it."""
    if go not in TRACE_VERSION:
        raise LogError(f"no trace format for Go {go}; the recorder supports 1.19 and 1.26")
    version = TRACE_VERSION[go]
    lines = log.split("\n")
    truncated = bool(lines) and lines[-1] != ""
    if truncated:
        lines = lines[:-1]  # a partial last line: the program died mid-write

    ops: list[str] = [f"# {h}" for h in header.splitlines()] + [f"version {version}"]
    results: list[str] = []
    counts = {k: 0 for k in ("grow", "alloc", "free", "scavenge", "cache", "calloc", "flush", "nextgen", "pad")}
    live: dict[int, tuple[int, int]] = {}  # base -> (allocation index, pages)
    nalloc = 0
    caches: dict[int, int] = {}  # cache address -> trace cache number
    ncache = 0
    calls: dict[int, _Call] = {}
    seg: _Segment | None = None
    split = 0
    final: list[str] = []
    scav_final: list[str] = []
    bounds = None
    complete = False
    phys = huge = 0

    def emit(op: str, kind: str, result: str | None = None) -> None:
        ops.append(op)
        counts[kind] += 1
        if result is not None:
            results.append(result)

    def close_segment() -> None:
        nonlocal seg
        s, seg = seg, None
        if s is None or (s.steps == 0 and not s.exhausted):
            # Only a find whose step comes later: it replays with that step.
            return
        call = calls[s.g]
        remaining = call.nbytes - s.start_released
        op = f"scavenge {remaining}"
        if not call.force:
            op += " bg"
        # The replay's loop ends by itself when the find found nothing or
        # the bytes asked are released; otherwise it must stop where Go did.
        if not s.exhausted and call.released < call.nbytes:
            op += f" stop={s.steps}"
        emit(op, "scavenge", f"scavenged {s.released}")

    def segment_for(g: int) -> _Segment:
        nonlocal seg
        if seg is not None and seg.g == g:
            return seg
        close_segment()
        if g not in calls:
            raise LogError("a scavenge step of a call that never started")
        calls[g].segments += 1
        seg = _Segment(g, calls[g].released)
        return seg

    for lineno, line in enumerate(lines, 1):
        f = line.split()
        if not f:
            continue
        tag = f[0]
        try:
            a = [int(x, 16) for x in f[1:]]
        except ValueError:
            raise LogError(f"log line {lineno}: bad number in {line!r}") from None
        try:
            if tag == "H":
                phys, huge = a[1], a[2]
                continue
            if tag in ("S", "E"):
                g = a[0]
                if tag == "S":
                    calls[g] = _Call(a[1], bool(a[2]))
                    continue
                call = calls.get(g)
                if call is None:
                    raise LogError("a scavenge call ended that never started")
                if seg is not None and seg.g == g:
                    close_segment()
                elif call.nbytes == 0:
                    emit(f"scavenge 0{'' if call.force else ' bg'}", "scavenge", "scavenged 0")
                if a[1] != call.released:
                    raise LogError(f"scavenge returned {a[1]} but its steps released {call.released}")
                split += call.segments > 1
                del calls[g]
                continue
            if tag == "sf":
                s = segment_for(a[0])
                s.exhausted = a[1] == 0
                s.pending_find = a[1] != 0
                continue
            if tag == "so":
                s = segment_for(a[0])
                calls[a[0]].released += a[3]
                s.steps += 1
                s.released += a[3]
                s.pending_find = False
                continue
            # Every other line changes the allocator: a scavenge run ends here.
            close_segment()
            if tag == "g":
                emit(f"grow {a[0]:#x} {a[1]:#x}", "grow")
            elif tag == "a":
                npages, addr, scav = a
                emit(f"alloc {npages}", "alloc", f"{addr:#x} {scav}")
                if addr:
                    live[addr] = (nalloc, npages)
                nalloc += 1
            elif tag == "f":
                base, npages = a
                k, n = live.pop(base, (None, 0))
                if k is None:
                    raise LogError(f"free of {npages} pages at {base:#x}: no live allocation starts there")
                if n != npages:
                    raise LogError(f"free of {npages} pages at {base:#x}: it was allocated with {n}")
                emit(f"free {k}", "free")
            elif tag == "c":
                ptr, base, bits, scav = a
                caches[ptr] = ncache
                ncache += 1
                emit("cache", "cache", f"cache {base:#x} {bits:#x} {scav:#x}")
            elif tag == "ca":
                ptr, npages, addr, scav = a
                if ptr not in caches:
                    raise LogError(f"an allocation from page cache {ptr:#x}, which was never filled")
                emit(f"calloc {caches[ptr]} {npages}", "calloc", f"{addr:#x} {scav}")
                if addr:
                    live[addr] = (nalloc, npages)
                nalloc += 1
            elif tag == "fl":
                c = caches.pop(a[0], None)
                if c is None:
                    raise LogError(f"a flush of page cache {a[0]:#x}, which was never filled")
                emit(f"flush {c}", "flush")
            elif tag == "ng":
                emit("nextgen", "nextgen")
            elif tag == "pad":
                emit(f"pad {a[0]:#x} {a[1]}", "pad")
            elif tag == "B":
                bounds = (a[0], a[1])
            elif tag == "C":
                ci = a[0]
                final.append(f"chunk {ci:#x}{_runs(a[1:9])}")
                scav_final.append(f"scav {ci:#x}{_runs(a[9:17])}")
            elif tag == "X":
                complete = bounds is not None
                break
            else:
                raise LogError(f"unknown event {tag!r}")
        except (IndexError, ValueError) as e:
            if isinstance(e, LogError):
                raise LogError(f"log line {lineno} ({line!r}): {e}") from None
            raise LogError(f"log line {lineno}: too few fields in {line!r}") from None
    if calls:
        # A scavenge still running when the log stopped: keep its whole steps.
        truncated = True
    close_segment()

    real = "\n".join(results)
    if complete:
        tail = [f"bounds {bounds[0]:#x} {bounds[1]:#x}", *final, *scav_final]
        real = "\n".join([*results, *tail])
    if real:
        real += "\n"
    return Converted(
        trace="\n".join(ops) + "\n",
        real=real,
        ops=sum(counts.values()),
        counts=counts,
        complete=complete,
        truncated=truncated,
        interleaved_scavenges=split,
        phys_page=phys,
        huge_page=huge,
    )
