"""The heap over a trace: memory, largest free run and fragmentation against
op index, the same trace under the other Go's scavenger, and an animated
heap map.

Each point is taken between ops of the replay: in use (pages held by spans,
page caches and heap-base padding), free and resident (free, not scavenged),
released (free and scavenged: returned to the OS), the largest free run
(read from the summaries) and external fragmentation, 1 - largest free run /
free pages.

What-if: a trace's allocations and frees land at the same addresses under
Go 1.19's and Go 1.26's allocator (their radix tree and first fit are the
same), so replaying one trace with the other Go's scavenger shows what that
scavenger would have released. The engine converts the trace
(``TraceReplay(text, go=...)``; the trace format has one owner, the Rust
parser): from v3 to v2, background scavenges become Go 1.19 scavenges,
``nextgen`` (Go 1.19 has no generations) is dropped and heap-base padding
becomes a fixed allocation of the same pages (so every address stays the
same); from v2 to v3, every scavenge becomes Go 1.26's forced scavenge, its
meaning in a v3 trace.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from . import TraceReplay

PAGE = 8192
MIB = 1 << 20
_FULL = (1 << 512) - 1


@dataclass
class Point:
    """The heap between two ops (bytes, except the fragmentation ratio).
    A point sampled over a run of ops also has the least and most in use
    and released after any op of the run, so no peak between two points is
    lost, and the time of its op in seconds when the trace has times."""

    op: int
    in_use: int
    free_resident: int
    released: int
    largest_free: int
    fragmentation: float
    in_use_min: int | None = None
    in_use_max: int | None = None
    released_min: int | None = None
    released_max: int | None = None
    seconds: float | None = None
    seconds_from: float | None = None  # the time of the first op of its run

    def __post_init__(self) -> None:
        for name in ("in_use", "released"):
            for end in ("_min", "_max"):
                if getattr(self, name + end) is None:
                    setattr(self, name + end, getattr(self, name))


def measure(pa, op: int) -> Point:
    """One point of ``pa``: bitmaps per grown chunk, largest run from the
    summaries."""
    in_use = released = grown = 0
    for s, e in pa.grown_ranges:
        for ci in range(s, e):
            bits = int(pa.chunk_bitmap(ci))
            scav = int(pa.chunk_scavenged(ci))
            in_use += bits.bit_count()
            released += (scav & ~bits & _FULL).bit_count()
        grown += (e - s) * 512
    free = grown - in_use
    largest = pa.largest_free_run
    return Point(
        op=op,
        in_use=in_use * PAGE,
        free_resident=(free - released) * PAGE,
        released=released * PAGE,
        largest_free=largest * PAGE,
        fragmentation=1.0 - largest / free if free else 0.0,
    )


def sample(text: str, points: int = 400, arch: str = "amd64", go: str | None = None) -> list[Point]:
    """Replays ``text`` and measures the heap about ``points`` times, evenly
    spaced in time for a trace with times (a recording), else in ops, first
    before any op and last after all; each point also has the least and
    most in use and released after any op since the one before (from the
    engine's census, exact per op). ``go`` replays the trace under that
    Go's allocator (a what-if, ``TraceReplay(go=...)``, lenient as a
    many-P recording needs); its points keep the trace's own op numbers and
    times."""
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    rep = TraceReplay(text, arch=arch, go=go, lenient=go is not None)
    op_index = rep.op_index
    times = TraceReplay(text).times if go is not None else rep.times
    at = op_index.__getitem__

    def seconds(op: int) -> float | None:
        return times[max(0, op - 1)] / 1e9 if times else None

    # Where the points fall: evenly in time for a trace with times (each
    # after the last op at or before its moment), else evenly in ops.
    if times and times[-1] > 0:
        own = [times[at(n) - 1] if at(n) else 0 for n in range(rep.ops + 1)]
        ends = sorted({bisect.bisect_right(own, times[-1] * k / (points - 1)) - 1
                       for k in range(1, points)} | {rep.ops})
        ends = [e for e in ends if e > 0]
    else:
        step = max(1, -(-rep.ops // (points - 1)))
        ends = [min(rep.ops, step * k) for k in range(1, -(-rep.ops // step) + 1)]
    first = measure(rep.allocator, at(0))
    first.seconds = first.seconds_from = 0.0 if times else None
    out = [first]
    for end in ends:
        start = rep.done
        if end <= start:
            continue
        c = rep.census(end - start)
        p = measure(rep.allocator, at(rep.done))
        used, released = c["in_use"], c["free_scavenged"]
        p.in_use_min, p.in_use_max = min(used), max(used)
        p.released_min, p.released_max = min(released), max(released)
        p.seconds = seconds(at(rep.done))
        p.seconds_from = seconds(at(start + 1))
        out.append(p)
    return out


_COLORS = {
    "in_use": (31, 78, 156),
    "free": (170, 205, 170),
    "released": (222, 196, 140),
    "line": (31, 78, 156),
    "band": (12, 34, 80),
    "other": (200, 90, 40),
}


def draw(points: list[Point], path: str | os.PathLike[str], title: str = "",
         what_if: tuple[str, list[Point], str, list[Point]] | None = None) -> None:
    """Writes the timeline PNG: memory (stacked), largest free run,
    fragmentation, and, given ``what_if`` = (this Go, its points, other Go,
    its points), released memory under both scavengers."""
    from .viz import _require_pillow, chart_axes

    Image, ImageDraw, ImageFont = _require_pillow()
    font = ImageFont.load_default()
    panels = 4 if what_if else 3
    w, left, right, top, ph, gap = 1100, 80, 20, 40, 150, 46
    h = top + panels * (ph + gap) + 10
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((left, 12), title or "the heap over the trace", fill=(20, 20, 20), font=font)
    use_seconds = points[-1].seconds is not None
    n_ops = max(1, points[-1].op)
    x_end = (points[-1].seconds or 1e-9) if use_seconds else n_ops
    pw = w - left - right

    def x_of(p: Point) -> float:
        return p.seconds if use_seconds else p.op

    def x_from(a: Point, b: Point) -> float:
        """Where b's run of ops began: its first op's time (an idle gap
        before it stays empty), else right after a."""
        return b.seconds_from if use_seconds and b.seconds_from is not None else x_of(a)

    def steps(pts: list[Point], value) -> list[tuple[float, float]]:
        """A value that holds from one point to the next, as a staircase."""
        out = [xy(x_of(pts[0]), value(pts[0]))]
        for a, b in zip(pts, pts[1:]):
            x = x_from(a, b)
            out += [xy(x, value(a)), xy(x, value(b)), xy(x_of(b), value(b))]
        return out

    def panel(k: int, label: str, y_max: float, unit: str, fmt) -> tuple:
        y0 = top + k * (ph + gap) + 14
        d.text((left, y0 - 14), label, fill=(20, 20, 20), font=font)
        chart_axes(d, font, left, y0, pw, ph, y_max, lambda v: f"{fmt(v)}{unit}", x_end,
                   (lambda v: f"{v:.2f} s") if use_seconds else (lambda v: f"{round(v):,}"))

        def xy(x: float, v: float) -> tuple[float, float]:
            return left + pw * x / x_end, y0 + ph - ph * (v / y_max if y_max else 0)
        return xy, y0

    def legend(y0: int, items: list[tuple[str, tuple]]) -> None:
        x = left + pw - 10
        for label, color in reversed(items):
            x -= 8 * len(label) + 24
            d.rectangle([x, y0 - 12, x + 10, y0 - 3], fill=color)
            d.text((x + 14, y0 - 14), label, fill=(20, 20, 20), font=font)

    mib = lambda v: f"{v / MIB:.0f}" if v >= 10 * MIB or v == 0 else f"{v / MIB:.1f}"  # noqa: E731
    axis = "seconds" if use_seconds else "op index"
    total = max(max(p.in_use + p.free_resident + p.released, p.in_use_max) for p in points) or 1
    xy, y0 = panel(0, f"memory (MiB) against {axis}; the dark band: least to most in use between two points",
                   total, " MiB", lambda v: mib(v))
    layers = [("in_use", lambda p: p.in_use), ("free", lambda p: p.in_use + p.free_resident),
              ("released", lambda p: p.in_use + p.free_resident + p.released)]
    prev = steps(points, lambda p: 0)
    for name, top_of in layers:
        cur = steps(points, top_of)
        d.polygon(cur + prev[::-1], fill=_COLORS[name])
        prev = cur
    # Each point's range since the one before, so a peak between two points shows.
    for a, b in zip(points, points[1:]):
        xa, xb = xy(x_from(a, b), 0)[0], xy(x_of(b), 0)[0]
        d.rectangle([xa, xy(0, b.in_use_max)[1], max(xa, xb), xy(0, b.in_use_min)[1]], fill=_COLORS["band"])
    legend(y0, [("in use", _COLORS["in_use"]), ("free, resident", _COLORS["free"]),
                ("released (scavenged)", _COLORS["released"])])

    big = max(p.largest_free for p in points) or 1
    xy, y0 = panel(1, "largest free run (MiB): the largest allocation that fits without growing", big, " MiB", mib)
    d.line(steps(points, lambda p: p.largest_free), fill=_COLORS["line"], width=2)

    xy, y0 = panel(2, "external fragmentation: 1 - largest free run / free pages", 1.0, "", lambda v: f"{v:.2f}")
    d.line(steps(points, lambda p: p.fragmentation), fill=_COLORS["line"], width=2)

    if what_if:
        go_a, pa, go_b, pb = what_if
        peak = max(max(p.released_max for p in pa), max(p.released_max for p in pb)) or 1
        xy, y0 = panel(3, "what-if: memory released (free and scavenged, MiB) under each Go's scavenger",
                       peak, " MiB", mib)
        # The other Go wide and below, the recorded one thin and on top:
        # where they agree both stay visible. Each point's range since the
        # one before is drawn too.
        for pts, color, width in ((pb, _COLORS["other"], 5), (pa, _COLORS["line"], 2)):
            for a, b in zip(pts, pts[1:]):
                x = xy(x_of(b), 0)[0]
                d.line([(x, xy(0, b.released_min)[1]), (x, xy(0, b.released_max)[1])], fill=color, width=1)
            d.line(steps(pts, lambda p: p.released), fill=color, width=width)
        legend(y0, [(f"Go {go_a} (as recorded)", _COLORS["line"]), (f"Go {go_b}", _COLORS["other"])])
    img.save(os.fspath(path), format="PNG")


def draw_gif(text: str, path: str | os.PathLike[str], frames: int = 48, arch: str = "amd64",
             ms_per_frame: int = 120, title: str = "") -> int:
    """Writes an animated heap map: ``frames`` maps evenly spaced over the
    replay (the last one after every op), each on the final heap's canvas.
    Returns the number of frames written."""
    from .viz import _require_pillow, render_image

    Image, ImageDraw, ImageFont = _require_pillow()
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    # One row height for every frame, the final heap's, so that a page keeps
    # its size while the heap grows.
    final = TraceReplay(text, arch=arch)
    final.run()
    _, info = render_image(final.allocator)
    rep = TraceReplay(text, arch=arch)
    step = max(1, -(-rep.ops // frames))
    images = []
    while True:
        rep.run(step)
        img, _ = render_image(rep.allocator, row_height=info["row_height"],
                              title=f"{title} after op {rep.done:,} of {rep.ops:,}".strip())
        images.append(img)
        if rep.done >= rep.ops:
            break
    wmax = max(i.size[0] for i in images)
    hmax = max(i.size[1] for i in images)
    canvas = []
    for img in images:
        c = Image.new("RGB", (wmax, hmax), (255, 255, 255))
        c.paste(img, (0, 0))
        canvas.append(c.convert("P", palette=Image.ADAPTIVE, colors=64))
    canvas[0].save(os.fspath(path), format="GIF", save_all=True, append_images=canvas[1:],
                   duration=[ms_per_frame] * (len(canvas) - 1) + [ms_per_frame * 15], loop=0)
    return len(canvas)
