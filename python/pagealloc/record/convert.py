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
    sf G CI PAGE RACED CURSOR MARKED
                               ... a step's index find (CI 0: nothing left);
                               RACED 1 when it overlapped a change of what
                               it reads, CURSOR MARKED what it left behind
    st G CI PAGE NPAGES        ... the run scavengeOne took, under the lock
    sg G CI PAGE NPAGES        ... and gave back, scavenged
    se G CI                    ... or the chunk it found nothing in
    E G RELEASED               ... and what the call returned
    ng                         scavengeIndex.nextGen (Go 1.26)
    pad BASE NPAGES            markRandomPaddingPages (Go 1.26)
    B START END                at exit: the bounds,
    C CI W0..W7 S0..S7         every grown chunk's bitmaps,
    X                          and the end of the log

(numbers in hex). Every line but H and X ends with two more fields: the
nanoseconds since the first line and the P plus one (0: none); they become
`t=NS p=P` on the trace op. Frees name a base address; the trace names the
allocation (`free K`), so the converter keeps the live allocations.

A scavenge call becomes one `scavenge` op when nothing happened between its
steps. When other operations interleaved (another goroutine, or other Ps),
each uninterrupted run of whole steps becomes `scavenge REMAINING [bg]
stop=K`, which replays exactly those K steps; a step that other operations
came inside of (between its find and its take, or while the OS released
its pages) is written part by part, `scavfind REMAINING [bg]`, `scavtake S`,
`scavgive S`, each where it took effect; and a find that raced is written
`scavfind ... saw=0xCI:PAGE cursor=0xADDR[:marked]`, which the replay follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PAGE_SIZE = 8192
CHUNK_BYTES = 512 * PAGE_SIZE
TRACE_VERSION = {"1.19": 2, "1.26": 3}


class LogError(ValueError):
    """A log line the converter cannot turn into a trace op (named by line)."""


@dataclass
class _Step:
    """One scavenger step: find, then take and give back (or set empty)."""

    max: int  # what the call still had to release
    ci: int
    page: int
    saw: str = ""  # " saw=... cursor=..." when the find raced
    phase: str = "found"  # found, taken, done
    npages: int = 0
    released: int = 0
    number: int = -1  # its step number once written part by part
    at: str = ""  # t=/p= of its find
    page_taken: int = 0  # the first page of the run it took
    at_take: str = ""  # t=/p= of its take (or set empty)
    at_give: str = ""  # and of its give back


@dataclass
class _Call:
    nbytes: int
    force: bool
    released: int = 0
    steps: int = 0
    segments: int = 0  # ops it became (more than one: other ops interleaved)
    open: _Step | None = None  # a step written part by part, not done yet


@dataclass
class _Pending:
    """Steps of one call with nothing in between, not written yet."""

    g: int
    steps: list[_Step] = field(default_factory=list)


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
    split_steps: int = 0  # steps written part by part
    raced_finds: int = 0  # finds the replay follows
    duration_ns: int = 0  # from the first line to the last


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
    counts = {k: 0 for k in ("grow", "alloc", "free", "scavenge", "cache", "calloc", "flush", "nextgen", "pad",
                             "scavfind", "scavtake", "scavgive")}
    live: dict[int, tuple[int, int]] = {}  # base -> (allocation index, pages)
    nalloc = 0
    caches: dict[int, int] = {}  # cache address -> trace cache number
    ncache = 0
    nstep = 0
    calls: dict[int, _Call] = {}
    pending: _Pending | None = None
    split = split_steps = raced = 0
    final: list[str] = []
    scav_final: list[str] = []
    bounds = None
    complete = False
    phys = huge = 0
    last_ns = 0
    at = ""

    def emit(op: str, kind: str, result: str | None = None, when: str | None = None) -> None:
        ops.append(op + (at if when is None else when))
        counts[kind] += 1
        if result is not None:
            results.append(result)

    def bg(call: _Call) -> str:
        return "" if call.force else " bg"

    def write_parts(call: _Call, st: _Step) -> None:
        """A step written part by part: its find, and its take if done."""
        nonlocal nstep, split_steps
        st.number = nstep
        nstep += 1
        split_steps += 1
        emit(f"scavfind {st.max}{bg(call)}{st.saw}", "scavfind", f"found {st.ci:#x} {st.page}", st.at)
        call.open = st if st.ci else None

    def flush() -> None:
        """Writes the pending steps: runs of whole steps as `scavenge`, a
        step still in progress part by part."""
        nonlocal pending
        p, pending = pending, None
        if p is None or not p.steps:
            return
        call = calls[p.g]
        group: list[_Step] = []

        def write_group() -> None:
            if not group:
                return
            call.segments += 1
            steps = sum(1 for s in group if s.ci)
            rel = sum(s.released for s in group)
            op = f"scavenge {group[0].max}{bg(call)}"
            # The replay's loop ends by itself when the find found nothing
            # or the bytes asked are released; otherwise it must stop where
            # Go did.
            if group[-1].ci and group[0].max - rel > 0:
                op += f" stop={steps}"
            emit(op, "scavenge", f"scavenged {rel}", group[0].at)
            group.clear()

        for st in p.steps:
            if st.phase == "done" and not st.saw:
                group.append(st)
                continue
            write_group()
            call.segments += 1
            write_parts(call, st)
            if st.phase in ("taken", "done") and st.ci:
                emit(f"scavtake {st.number}", "scavtake", _taken(st), st.at_take)
            if st.phase == "done" and st.npages:
                emit(f"scavgive {st.number}", "scavgive", None, st.at_give)
            if st.phase == "done":
                call.open = None
        write_group()

    def step_event(g: int) -> _Call:
        nonlocal pending
        call = calls.get(g)
        if call is None:
            raise LogError("a scavenge step of a call that never started")
        if pending is not None and pending.g != g:
            flush()
        return call

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
            if tag != "X":
                if len(a) < 2:
                    raise IndexError
                ns, pid = a[-2], a[-1]
                a = a[:-2]
                last_ns = max(last_ns, ns)
                at = f" t={ns}" + (f" p={pid - 1}" if pid else "")
            if tag in ("S", "E"):
                g = a[0]
                if tag == "S":
                    calls[g] = _Call(a[1], bool(a[2]))
                    continue
                call = calls.get(g)
                if call is None:
                    raise LogError("a scavenge call ended that never started")
                if pending is not None and pending.g == g:
                    flush()
                elif call.steps == 0 and call.nbytes == 0:
                    emit(f"scavenge 0{bg(call)}", "scavenge", "scavenged 0")
                if a[1] != call.released:
                    raise LogError(f"scavenge returned {a[1]} but its steps released {call.released}")
                split += call.segments > 1
                del calls[g]
                continue
            if tag == "sf":
                call = step_event(a[0])
                if call.open is not None:
                    raise LogError("a find while the call's last step is still in progress")
                call.steps += 1
                st = _Step(call.nbytes - call.released, a[1], a[2], at=at)
                if a[3]:
                    mark = ":marked" if a[5] else ""
                    st.saw = f" saw={a[1]:#x}:{a[2]} cursor={a[4]:#x}{mark}"
                    raced += 1
                if not st.ci:
                    st.phase = "done"
                if pending is None:
                    pending = _Pending(a[0])
                pending.steps.append(st)
                continue
            if tag in ("st", "sg", "se"):
                call = step_event(a[0])
                st = call.open
                if st is None:
                    if pending is None or not pending.steps or pending.steps[-1].phase == "done":
                        raise LogError("a scavenge step without its find")
                    st = pending.steps[-1]
                if a[1] != st.ci:
                    raise LogError(f"a step in chunk {a[1]:#x} after a find of chunk {st.ci:#x}")
                if tag == "sg":
                    st.at_give = at
                else:
                    st.at_take = at
                if tag == "st":
                    if st.phase != "found":
                        raise LogError("a step took two runs")
                    st.phase, st.page_taken, st.npages = "taken", a[2], a[3]
                elif tag == "se":
                    if st.phase != "found":
                        raise LogError("a step both took a run and found nothing")
                    st.phase = "done"
                else:
                    if st.phase != "taken" or (a[2], a[3]) != (st.page_taken, st.npages):
                        raise LogError("a step gave back what it did not take")
                    st.phase = "done"
                    st.released = st.npages * PAGE_SIZE
                    call.released += st.released
                if st is call.open:
                    # Written part by part already: this part goes now.
                    if pending is not None:
                        flush()
                    if tag == "sg":
                        emit(f"scavgive {st.number}", "scavgive")
                    else:
                        emit(f"scavtake {st.number}", "scavtake", _taken(st))
                    if st.phase == "done":
                        call.open = None
                continue
            # Every other line changes the allocator: a run of steps ends here.
            flush()
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
        # A scavenge still running when the log stopped: keep its whole parts.
        truncated = True
    flush()

    real = "\n".join(results)
    if complete:
        tail = [f"bounds {bounds[0]:#x} {bounds[1]:#x}", *final, *scav_final]
        real = "\n".join([*results, *tail])
    if real:
        real += "\n"
    if version >= 2 and phys and (phys, huge) != (4096, 2 << 20):
        # The machine Go ran on, as the trace's headers (after `version`).
        at_version = ops.index(f"version {version}") + 1
        ops[at_version:at_version] = [f"physpage {phys}", f"hugepage {huge}"]
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
        split_steps=split_steps,
        raced_finds=raced,
        duration_ns=last_ns,
    )


def _taken(st: _Step) -> str:
    """The result line of a step's take, as the replay writes it."""
    if st.phase == "done" and not st.npages:
        return "taken 0x0 0 0"
    return f"taken {st.ci:#x} {st.page_taken} {st.npages}"
