"""The pagealloc command line: replay traces, generate them, draw the heap.

    python -m pagealloc record [-o TRACE] [--go 1.19|1.26] -- go run|build|test ARGS...
    python -m pagealloc replay TRACE [--map OUT.png] [--results FILE] [--check REAL] [--json]
    python -m pagealloc timeline TRACE -o OUT.png [--gif OUT.gif] [--points N] [--frames N]
    python -m pagealloc gen {churn,exhaust,sparse,random,mheap} [--seed S] [--ops N] [--chunks C] [--go 1.19|1.26] -o FILE
    python -m pagealloc map TRACE -o OUT.png
    python -m pagealloc heap-demo -o OUT.png

TRACE may be v1, v2 or v3 (docs/formats.md; v3 replays with Go 1.26's allocator)
and gzip-compressed (a name ending in .gz).

Exit status: 0 on success, 2 for a bad trace or bad arguments (the message
names the line), 1 for any other failure (``replay --check``: 1 when a
result or a final chunk differs from the real run's). ``record`` exits with
the recorded program's own status.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time

from . import ARCHES, TraceReplay
from .tracegen import GENERATORS, generate

STEP = 50_000  # ops per replay step between progress updates


class TraceFailure(Exception):
    """A trace that cannot be read or replayed; the message says where."""


def _progress(done: int, total: int, t0: float) -> None:
    width = 40
    filled = width * done // max(1, total)
    rate = done / max(1e-9, time.perf_counter() - t0)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} ops {rate:,.0f} ops/s")
    sys.stderr.flush()


def read_trace(path: str) -> str:
    """A trace file's text (gzip when the name ends in .gz); TraceFailure
    naming the file when it cannot be read."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            text = f.read()
    except gzip.BadGzipFile as e:
        raise TraceFailure(f"{path}: not a gzip file ({e})") from e
    except EOFError as e:
        raise TraceFailure(f"{path}: truncated gzip data") from e
    except OSError as e:
        raise TraceFailure(f"{path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise TraceFailure(f"{path}: not a text file ({e.reason})") from e
    return text


def replay_file(path: str, arch: str = "amd64", progress: bool = False) -> tuple[TraceReplay, float]:
    """Parse and replay a trace file; returns the replay and its wall time.
    Raises TraceFailure naming the file and line of the first problem."""
    text = read_trace(path)
    t0 = time.perf_counter()
    try:
        rep = TraceReplay(text, arch=arch)
        shown, last = False, 0.0
        while rep.done < rep.ops:
            rep.run(STEP)
            # A progress bar only on a terminal, only for slow replays, and
            # redrawn at most ten times a second.
            now = time.perf_counter()
            if progress and now - t0 > 1.0 and (now - last > 0.1 or rep.done == rep.ops):
                _progress(rep.done, rep.ops, t0)
                shown, last = True, now
        if shown:
            sys.stderr.write("\r" + " " * 79 + "\r")
    except ValueError as e:
        raise TraceFailure(f"{path}: {e}") from e
    return rep, time.perf_counter() - t0


def _plural(kind: str) -> str:
    return kind + ("es" if kind.endswith("sh") else "s")


def cmd_replay(args: argparse.Namespace) -> int:
    if args.map:
        _png(args.map, "--map")
    for flag, path in (("--results", args.results),):
        if path:
            _writable(path, flag)
    rep, wall = replay_file(args.trace, args.arch, progress=sys.stderr.isatty() and not args.json)
    pa = rep.allocator
    stats = pa.stats()
    failed = sum(1 for a in rep.addresses if a == 0)
    counts = {k: n for k, n in rep.counts.items() if n}
    timing = {
        "version": rep.version,
        "ops": rep.ops,
        **{_plural(k): n for k, n in counts.items()},
        "failed_allocs": failed,
        "followed_finds": rep.followed,
        "followed_finds_differed": rep.followed_differed,
        "engine_ns_per_op": rep.elapsed_ns / rep.ops if rep.ops else None,
        "wall_ns_per_op": wall * 1e9 / rep.ops if rep.ops else None,
    }
    if args.results:
        with open(args.results, "w", encoding="utf-8") as f:
            f.write(rep.results_file())
    check = None
    if args.check:
        try:
            with open(args.check, encoding="utf-8") as f:
                real = f.read()
        except OSError as e:
            raise TraceFailure(f"{args.check}: {e.strerror}") from e
        check = Check(rep.results_file(), real)
    if args.map:
        pa.render_map(args.map, title=f"pagealloc heap after {os.path.basename(args.trace)}")
    if args.json:
        extra = {"check": check.as_dict()} if check else {}
        print(json.dumps({**stats.as_dict(), "replay": timing, **extra}, indent=2))
        return 0 if check is None or check.identical else 1
    kinds = ", ".join(f"{n} {_plural(k)}" for k, n in counts.items())
    if rep.ops:
        print(f"replayed {args.trace} (v{rep.version}): {rep.ops} ops ({kinds}; "
              f"{failed} allocation(s) failed)")
    else:
        print(f"replayed {args.trace} (v{rep.version}): no ops")
    if failed and rep.version >= 2:
        print("  (an allocation fails when no run of free pages fits; Go then grows the heap and "
              "allocates again, which the trace records as a grow and another alloc)")
    print(stats)
    if rep.followed:
        print(f"followed {rep.followed} recorded find(s) that raced with another P "
              f"({rep.followed_differed} differed from the replay's own)")
    if rep.ops:
        print(f"replay time: {timing['engine_ns_per_op']:.1f} ns/op in the allocator, "
              f"{timing['wall_ns_per_op']:.1f} ns/op including parsing ({wall * 1e3:.1f} ms)")
    if args.results:
        print(f"results written to {args.results}")
    if args.map:
        print(f"heap map written to {args.map}")
    if check is not None:
        print(f"check against {args.check}: {check}")
        return 0 if check.identical else 1
    return 0


class Check:
    """How a replay's results file compares with the real run's."""

    def __init__(self, mine: str, real: str) -> None:
        def split(text: str) -> tuple[list[str], dict[str, str], str | None]:
            lines = text.splitlines()
            results, chunks, bounds = [], {}, None
            for line in lines:
                if line.startswith("bounds "):
                    bounds = line
                elif line.startswith(("chunk ", "scav ")):
                    tag, ci = line.split()[:2]
                    chunks[f"{tag} {ci}"] = line
                elif bounds is None:
                    results.append(line)
            return results, chunks, bounds

        r_mine, c_mine, self.bounds_mine = split(mine)
        r_real, c_real, self.bounds_real = split(real)
        self.results = len(r_real)
        self.results_replayed = len(r_mine)
        self.results_matching = sum(a == b for a, b in zip(r_mine, r_real))
        self.first_difference = next(
            (i for i, (a, b) in enumerate(zip(r_mine, r_real)) if a != b),
            None if len(r_mine) == len(r_real) else min(len(r_mine), len(r_real)))
        self.final_recorded = self.bounds_real is not None
        self.chunks = sum(1 for k in c_real if k.startswith("chunk "))
        self.chunks_matching = sum(1 for k, v in c_real.items() if k.startswith("chunk ") and c_mine.get(k) == v)
        self.scav_matching = sum(1 for k, v in c_real.items() if k.startswith("scav ") and c_mine.get(k) == v)
        self.scav = sum(1 for k in c_real if k.startswith("scav "))
        self.chunks_replayed = sum(1 for k in c_mine if k.startswith("chunk "))

    @property
    def identical(self) -> bool:
        return (self.first_difference is None and self.final_recorded
                and self.bounds_mine == self.bounds_real
                and self.chunks == self.chunks_matching == self.chunks_replayed
                and self.scav == self.scav_matching)

    def as_dict(self) -> dict:
        return {"identical": self.identical, "results": self.results, "results_matching": self.results_matching,
                "first_difference": self.first_difference, "final_state_recorded": self.final_recorded,
                "bounds_match": self.bounds_mine == self.bounds_real, "chunks": self.chunks,
                "chunks_matching": self.chunks_matching, "scav_matching": self.scav_matching}

    def __str__(self) -> str:
        parts = [f"results {self.results_matching}/{self.results} match"]
        if self.results_replayed != self.results:
            parts.append(f"(the replay has {self.results_replayed})")
        if self.first_difference is not None:
            parts.append(f"(first difference: result {self.first_difference + 1})")
        if self.final_recorded:
            parts.append(f"; final chunks {self.chunks_matching}/{self.chunks} in use and "
                         f"{self.scav_matching}/{self.scav} scavenged match")
            if self.bounds_mine != self.bounds_real:
                parts.append(f"; bounds differ ({self.bounds_mine} here, {self.bounds_real} there)")
        else:
            parts.append("; the real run's final state was not recorded (it did not exit through main or os.Exit)")
        parts.append(": identical" if self.identical else ": DIFFERENT")
        return " ".join(parts).replace(" ;", ";").replace(" :", ":")


def cmd_record(args: argparse.Namespace) -> int:
    from .record import RecordError, record
    from .record.convert import LogError

    # Refused before the program runs, not after: the recording would be lost.
    _writable(args.output, "-o")
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    t0 = time.perf_counter()
    try:
        rec = record(argv, args.output, go=args.go, keep_log=args.keep_log)
    except RecordError as e:
        raise TraceFailure(str(e)) from e
    except LogError as e:
        print(f"pagealloc record: error: the log cannot be converted: {e}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - t0
    say = lambda m: print(f"pagealloc record: {m}", file=sys.stderr)  # noqa: E731
    if rec.built_only:
        say("built with the hooks; record a run with `pagealloc record -o TRACE -- ./BINARY ARGS...`")
        return rec.status
    if not rec.traces:
        say(f"the command exited with status {rec.status} and recorded nothing"
            + ("" if rec.status else " (was it a Go program built with the hooks?)"))
        return rec.status or 1
    for path, conv, pid in rec.traces:
        kinds = ", ".join(f"{n} {_plural(k)}" for k, n in conv.counts.items() if n)
        say(f"pid {pid}: {conv.ops} ops ({kinds}) -> {path}, {path}.real")
        if conv.interleaved_scavenges:
            say(f"  {conv.interleaved_scavenges} scavenge call(s) had other operations between their "
                f"steps (GOMAXPROCS > 1?); each run of whole steps is an op of its own (stop=K), "
                f"{conv.split_steps} step(s) other Ps came inside of are written part by part "
                f"(scavfind/scavtake/scavgive), {conv.raced_finds} of whose finds raced and are followed (saw=)")
        if conv.truncated or not conv.complete:
            say("  the log ends early (the program was killed or crashed): the trace replays up to its "
                "last whole op, and the final state is missing")
    say(f"the program exited with status {rec.status} ({wall:.1f} s with the build)")
    return rec.status


def cmd_timeline(args: argparse.Namespace) -> int:
    from . import timeline

    for name in ("points", "frames"):
        if getattr(args, name) < (2 if name == "points" else 1):
            raise TraceFailure(f"--{name} must be at least {2 if name == 'points' else 1}")
    _png(args.output, "-o")
    if args.gif:
        if not args.gif.lower().endswith(".gif"):
            raise TraceFailure(f"--gif {args.gif}: the animation is written as GIF; name the file .gif")
        _writable(args.gif, "--gif")
    text = read_trace(args.trace)
    name = os.path.basename(args.trace)
    try:
        points = timeline.sample(text, args.points, args.arch)
        what_if = None
        rep = TraceReplay(text, arch=args.arch)
        if not args.no_what_if and rep.version >= 2:
            other = "1.19" if rep.go == "1.26" else "1.26"
            what_if = (rep.go, points, other, timeline.sample(text, args.points, args.arch, go=other))
        timeline.draw(points, args.output, title=f"{name}: the heap over {points[-1].op:,} ops", what_if=what_if)
        print(f"timeline written to {args.output}")
        if args.gif:
            n = timeline.draw_gif(text, args.gif, frames=args.frames, arch=args.arch, title=name)
            print(f"animated heap map ({n} frames) written to {args.gif}")
    except ValueError as e:
        raise TraceFailure(f"{args.trace}: {e}") from e
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from . import whatif as wi

    try:
        gos = wi.parse_gos(args.go)
        phys = wi.parse_phys_pages(args.phys_page)
        huge = wi.parse_huge_pages(args.huge_page)
    except wi.WhatIfError as e:
        raise TraceFailure(str(e)) from e
    if args.output:
        _png(args.output, "-o")
    text = read_trace(args.trace)
    try:
        recorded, configs = wi.whatif(text, gos, phys, huge, args.arch)
    except wi.WhatIfError as e:
        raise TraceFailure(f"{args.trace}: {e}" if "trace" in str(e) else str(e)) from e
    except ValueError as e:
        raise TraceFailure(f"{args.trace}: {e}") from e
    if args.output:
        wi.draw(configs, args.output, title=f"{os.path.basename(args.trace)}: RSS per configuration")
    if args.json:
        print(json.dumps({"trace": args.trace, "recorded_go": recorded,
                          "configs": [c.as_dict() for c in configs]}, indent=2))
        return 0
    print(f"what-if for {args.trace} (recorded with Go {recorded}): {len(configs)} configuration(s)")
    print(wi.table(configs))
    if args.output:
        print(f"RSS chart written to {args.output}")
    return 0


def _writable(path: str, flag: str) -> None:
    """Refuses an output path whose folder does not exist, before any work."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TraceFailure(f"{flag} {path}: no such folder {folder}")


def _png(path: str, flag: str) -> None:
    """Refuses a picture path that does not name a PNG, or cannot be written."""
    if not path.lower().endswith(".png"):
        raise TraceFailure(f"{flag} {path}: pictures are written as PNG; name the file .png")
    _writable(path, flag)


def cmd_view(args: argparse.Namespace) -> int:
    from . import view
    from . import whatif as wi

    if not args.output.lower().endswith((".html", ".htm")):
        raise TraceFailure(f"-o {args.output}: the page is HTML; name the file .html")
    _writable(args.output, "-o")
    try:
        gos = wi.parse_gos(args.go) if args.go else None
        phys = wi.parse_phys_pages(args.phys_page) if args.phys_page else None
        huge = wi.parse_huge_pages(args.huge_page) if args.huge_page else None
    except wi.WhatIfError as e:
        raise TraceFailure(str(e)) from e
    text = read_trace(args.trace)
    t0 = time.perf_counter()
    try:
        configs = wi.whatif(text, gos, phys, huge, args.arch)[1] if args.go or args.phys_page or args.huge_page \
            else None
        html = view.build(text, title=args.title or os.path.basename(args.trace),
                          source=f"{os.path.basename(args.trace)}", arch=args.arch, configs=configs)
    except ValueError as e:
        raise TraceFailure(f"{args.trace}: {e}") from e
    view.write(args.output, html)
    print(f"page written to {args.output} ({len(html) / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_gen(args: argparse.Namespace) -> int:
    if any(v is not None and v < 0 for v in (args.seed, args.ops, args.chunks)):
        raise TraceFailure("--seed, --ops and --chunks must not be negative")
    if args.chunks is not None and args.chunks < 1:
        raise TraceFailure("--chunks must be at least 1")
    if args.go is not None and args.kind != "mheap":
        raise TraceFailure(f"--go applies to mheap traces only, not {args.kind}")
    text = generate(args.kind, seed=args.seed, ops=args.ops, chunks=args.chunks, go=args.go)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.output}: {text.count(chr(10)) - 1} ops")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    _png(args.output, "-o")
    rep, _ = replay_file(args.trace, args.arch)
    rep.allocator.render_map(args.output, title=f"pagealloc heap after {os.path.basename(args.trace)}")
    print(f"heap map written to {args.output}")
    return 0


def cmd_heap_demo(args: argparse.Namespace) -> int:
    from .heapdemo import draw, record, summary

    samples, phases = record()
    draw(samples, phases, args.output)
    print(summary(samples))
    print(f"memory picture written to {args.output}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pagealloc", description="Go's runtime page allocator, in Rust.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"pagealloc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="replay a trace and show what the allocator did",
                       description="Replay a trace (grow/alloc/free lines) and print the heap's stats.")
    r.add_argument("trace", help="trace file (v1, v2 or v3; docs/formats.md)")
    r.add_argument("--arch", choices=ARCHES, default="amd64", help="layout preset (default amd64)")
    r.add_argument("--map", metavar="OUT.png", help="also draw the final heap (needs pagealloc[viz])")
    r.add_argument("--results", metavar="FILE",
                   help="write the results file: one line per result, the bounds, the chunk bitmaps (v2: and scavenged runs)")
    r.add_argument("--check", metavar="REAL",
                   help="compare with a real run's results (TRACE.real from `record`); exit 1 unless identical")
    r.add_argument("--json", action="store_true", help="print the stats as JSON")
    r.set_defaults(func=cmd_replay)

    rc = sub.add_parser("record", help="record a Go program's page allocator as a trace",
                        description="Build a Go program with an instrumented runtime (go build -overlay; "
                        "GOROOT is not changed), run it, and write every operation on its page allocator "
                        "as a trace (Go 1.26: v3, Go 1.19: v2), and TRACE.real, the real run's results. "
                        "Set GOMAXPROCS=1 for a run the replay reproduces exactly.",
                        usage="pagealloc record [-o TRACE] [--go 1.19|1.26] -- go run|build|test ARGS...")
    rc.add_argument("-o", "--output", default="go.trace", metavar="TRACE", help="the trace (default go.trace)")
    rc.add_argument("--go", choices=("1.19", "1.26"),
                    help="whose Go builds it (1.19: /usr/lib/go-1.19; 1.26: the go on PATH or go1.26.8); "
                    "default: the go on PATH")
    rc.add_argument("--keep-log", action="store_true", help="keep the runtime's raw log as TRACE.log")
    rc.add_argument("command", nargs=argparse.REMAINDER,
                    help="go run|build|test ARGS, or a binary built by `record -- go build`")
    rc.set_defaults(func=cmd_record)

    tl = sub.add_parser("timeline", help="chart the heap over a trace",
                        description="Replay a trace and chart in use, free and released memory, the largest "
                        "free run and fragmentation against time (seconds, for a recording) or op index, each point with the "
                        "least and most in use since the one before; for v2/v3 traces also the memory the "
                        "other Go's scavenger would have released (needs pagealloc[viz]).")
    tl.add_argument("trace")
    tl.add_argument("-o", "--output", required=True, metavar="OUT.png")
    tl.add_argument("--gif", metavar="OUT.gif", help="also write an animated heap map")
    tl.add_argument("--points", type=int, default=400, help="points per series (default 400)")
    tl.add_argument("--frames", type=int, default=48, help="frames of the GIF (default 48)")
    tl.add_argument("--no-what-if", action="store_true", help="leave out the other Go's scavenger")
    tl.add_argument("--arch", choices=ARCHES, default="amd64")
    tl.set_defaults(func=cmd_timeline)

    w = sub.add_parser("whatif", help="the heap of one trace on other machines and under the other Go",
                       description="Replay a v2 or v3 trace once per configuration (every combination of "
                       "--go, --phys-page and --huge-page) and print, per configuration, RSS (final, peak, "
                       "mean), Go's resident bytes, trapped bytes (free but unreleasable: their physical page "
                       "holds an in-use page), what the scavenger released and in how many madvise calls, "
                       "and how much of the heap in use huge pages could back. Sizes take K, M, G suffixes.")
    w.add_argument("trace")
    w.add_argument("--go", default="1.19,1.26", help="Go versions, comma-separated (default 1.19,1.26)")
    w.add_argument("--phys-page", default="4K,16K,64K",
                   help="physical page sizes, 4K to 64K, comma-separated (default 4K,16K,64K)")
    w.add_argument("--huge-page", default="0,2M",
                   help="huge page sizes, 0 (none) or 2M to 1G, comma-separated (default 0,2M)")
    w.add_argument("--json", action="store_true", help="print the figures as JSON")
    w.add_argument("-o", "--output", metavar="OUT.png", help="also chart RSS over time, configurations overlaid")
    w.add_argument("--arch", choices=ARCHES, default="amd64")
    w.set_defaults(func=cmd_whatif)

    v = sub.add_parser("view", help="one interactive HTML page of the heap over a trace",
                       description="Write one self-contained HTML page (it opens offline: scripts, styles and "
                       "data inline) with the heap over the trace: a zoomable timeline of in use, free and "
                       "released memory (and RSS per what-if configuration with --go/--phys-page/--huge-page), "
                       "the heap map at any op, each page's span, and a summary.")
    v.add_argument("trace")
    v.add_argument("-o", "--output", required=True, metavar="PAGE.html")
    v.add_argument("--title", help="the page's title (default: the trace's file name)")
    v.add_argument("--go", help="RSS under these Gos too, comma-separated (1.19, 1.26)")
    v.add_argument("--phys-page", help="... on these physical page sizes (4K to 64K)")
    v.add_argument("--huge-page", help="... with these huge page sizes (0, or 2M to 1G)")
    v.add_argument("--arch", choices=ARCHES, default="amd64")
    v.set_defaults(func=cmd_view)

    g = sub.add_parser("gen", help="write a sample trace",
                       description="Write a sample trace, deterministic for a seed "
                       "(mheap writes a v2 trace: scavenges and page caches too; with --go 1.26 a v3 trace "
                       "with Go 1.26's background scavenges, generations and padding).")
    g.add_argument("kind", choices=sorted(GENERATORS))
    g.add_argument("--seed", type=int, help="PRNG seed (churn: 1, sparse: 42, random: 1, mheap: 1)")
    g.add_argument("--ops", type=int, help="ops (churn: 200000, random: 20000, mheap: 20000)")
    g.add_argument("--chunks", type=int, help="4 MiB chunks of heap")
    g.add_argument("--go", choices=("1.19", "1.26"), help="mheap: whose Go's mheap (1.19: v2 trace, the default; 1.26: v3)")
    g.add_argument("-o", "--output", required=True, help="where to write the trace")
    g.set_defaults(func=cmd_gen)

    m = sub.add_parser("map", help="replay a trace quietly and draw the final heap",
                       description="Replay a trace and write a PNG of the final heap.")
    m.add_argument("trace")
    m.add_argument("-o", "--output", required=True, metavar="OUT.png")
    m.add_argument("--arch", choices=ARCHES, default="amd64")
    m.set_defaults(func=cmd_map)

    h = sub.add_parser("heap-demo", help="run a Heap workload under a memory limit and chart its memory",
                       description="Allocate, write and free real memory on a Heap, set a memory limit, "
                       "and draw resident memory and the heap's counters over time (needs pagealloc[viz]).")
    h.add_argument("-o", "--output", required=True, metavar="OUT.png")
    h.set_defaults(func=cmd_heap_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except TraceFailure as e:
        print(f"pagealloc: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"pagealloc: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pagealloc: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
