"""The pagealloc command line: replay traces, generate them, draw the heap.

    python -m pagealloc replay TRACE [--map OUT.png] [--results FILE] [--json]
    python -m pagealloc gen {churn,exhaust,sparse,random,mheap} [--seed S] [--ops N] [--chunks C] [--go 1.19|1.26] -o FILE
    python -m pagealloc map TRACE -o OUT.png
    python -m pagealloc heap-demo -o OUT.png

TRACE may be v1, v2 or v3 (DESIGN.md; v3 replays with Go 1.26's allocator)
and gzip-compressed (a name ending in .gz).

Exit status: 0 on success, 2 for a bad trace or bad arguments (the message
names the line), 1 for any other failure.
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


def replay_file(path: str, arch: str = "amd64", progress: bool = False) -> tuple[TraceReplay, float]:
    """Parse and replay a trace file; returns the replay and its wall time.
    Raises TraceFailure naming the file and line of the first problem."""
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
        "engine_ns_per_op": rep.elapsed_ns / max(1, rep.ops),
        "wall_ns_per_op": wall * 1e9 / max(1, rep.ops),
    }
    if args.results:
        with open(args.results, "w", encoding="utf-8") as f:
            f.write(rep.results_file())
    if args.map:
        pa.render_map(args.map, title=f"pagealloc heap after {os.path.basename(args.trace)}")
    if args.json:
        print(json.dumps({**stats.as_dict(), "replay": timing}, indent=2))
        return 0
    kinds = ", ".join(f"{n} {_plural(k)}" for k, n in counts.items())
    print(f"replayed {args.trace} (v{rep.version}): {rep.ops} ops ({kinds}; "
          f"{failed} allocation(s) failed)")
    print(stats)
    print(f"replay time: {timing['engine_ns_per_op']:.1f} ns/op in the allocator, "
          f"{timing['wall_ns_per_op']:.1f} ns/op including parsing ({wall * 1e3:.1f} ms)")
    if args.results:
        print(f"results written to {args.results}")
    if args.map:
        print(f"heap map written to {args.map}")
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
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="replay a trace and show what the allocator did",
                       description="Replay a trace (grow/alloc/free lines) and print the heap's stats.")
    r.add_argument("trace", help="trace file (DESIGN.md format)")
    r.add_argument("--arch", choices=ARCHES, default="amd64", help="layout preset (default amd64)")
    r.add_argument("--map", metavar="OUT.png", help="also draw the final heap (needs pagealloc[viz])")
    r.add_argument("--results", metavar="FILE",
                   help="write the results file: one line per result, the bounds, the chunk bitmaps (v2: and scavenged runs)")
    r.add_argument("--json", action="store_true", help="print the stats as JSON")
    r.set_defaults(func=cmd_replay)

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
