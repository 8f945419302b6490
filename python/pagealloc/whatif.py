"""One recorded trace on other machines and under the other Go's scavenger.

``pagealloc whatif TRACE --go 1.19,1.26 --phys-page 4K,16K,64K --huge-page 0,2M``
replays the trace once per configuration (every combination of the lists)
and reports, per configuration, what the kernel would have seen of the heap.
Addresses do not depend on the scavenger or the machine (the radix tree and
first fit are the same in both Gos), so configurations differ only in what
is released and when: the physical page size decides the scavenger's unit
(it releases whole, aligned physical pages only), the huge page size which
free runs it keeps whole, and the Go version its policy.

Every figure is an exact function of the replayed state after each op,
taken by the engine's census (``TraceReplay.census``):

- ``rss``: physical pages holding at least one runtime page that is not
  scavenged (in use, or free and not yet released); heap-base padding and
  grown memory never touched stay scavenged, so they never count;
- ``go_resident``: Go's own accounting, runtime pages not scavenged;
- ``trapped``: free pages that cannot be released because their physical
  page also holds an in-use page;
- releases: one per run the scavenger returned to the OS (one ``madvise``);
- ``huge_page_coverage``: the share of in-use bytes inside aligned huge
  pages that are resident throughout (what transparent huge pages could
  back; 0 without huge pages).

Peaks are the maximum over every op; means are weighted by time when the
trace has times (``t=``, from ``pagealloc record``), else taken over ops.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field

from . import TraceReplay

_SUFFIX = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


class WhatIfError(ValueError):
    """A bad configuration, named by its flag and value."""


_SIZE = re.compile(r"^(0x[0-9a-f]+|\d+)\s*(?:([kmg])(?:ib?|b)?)?$", re.IGNORECASE)


def parse_size(flag: str, token: str) -> int:
    """A size in bytes: decimal, 0x-hex, or with a K, M or G suffix (4K, 64Ki, 2MiB)."""
    m = _SIZE.match(token.strip())
    if not m:
        raise WhatIfError(f"{flag} {token!r}: not a size in bytes (e.g. 4096, 64K, 2M)")
    return int(m.group(1), 0) * _SUFFIX[m.group(2).upper()] if m.group(2) else int(m.group(1), 0)


def _sizes(flag: str, value: str, ok, want: str) -> list[int]:
    """A comma-separated list of sizes, each checked by ``ok``."""
    out = []
    for tok in value.split(","):
        v = parse_size(flag, tok)
        if not ok(v):
            raise WhatIfError(f"{flag} {tok!r}: want {want}")
        out.append(v)
    return out


def parse_phys_pages(value: str) -> list[int]:
    return _sizes("--phys-page", value, lambda v: v & (v - 1) == 0 and 4096 <= v <= 65536,
                  "a power of two from 4096 (4K) to 65536 (64K)")


def parse_huge_pages(value: str) -> list[int]:
    return _sizes("--huge-page", value, lambda v: v == 0 or (v & (v - 1) == 0 and (2 << 20) <= v <= (1 << 30)),
                  "0 (none) or a power of two from 2M to 1G")


def parse_gos(value: str) -> list[str]:
    out = []
    for tok in value.split(","):
        if tok.strip() not in ("1.19", "1.26"):
            raise WhatIfError(f"--go {tok!r}: want 1.19 or 1.26")
        out.append(tok.strip())
    return out


@dataclass
class Config:
    """One configuration's figures (bytes unless named otherwise)."""

    go: str
    physpage: int
    hugepage: int
    final_rss_bytes: int = 0
    peak_rss_bytes: int = 0
    mean_rss_bytes: float = 0.0
    final_go_resident_bytes: int = 0
    peak_go_resident_bytes: int = 0
    final_trapped_bytes: int = 0
    peak_trapped_bytes: int = 0
    released_bytes: int = 0
    release_calls: int = 0
    release_histogram: dict[str, int] = field(default_factory=dict)
    huge_page_coverage_final: float = 0.0
    huge_page_coverage_mean: float = 0.0
    # A recording with many Ps on another machine or Go: allocations that
    # landed elsewhere than recorded (another scavenger held other pages
    # meanwhile), and ops skipped for it. 0 for a GOMAXPROCS=1 recording.
    diverged_allocs: int = 0
    skipped_ops: int = 0
    # Per op, for the chart (x in seconds when the trace has times, else
    # the recorded trace's op number); not in the JSON.
    x: list[float] = field(default_factory=list, repr=False)
    rss: list[int] = field(default_factory=list, repr=False)
    seconds: bool = field(default=False, repr=False)
    # Per op of the replay, the last op of the trace as given it covers.
    op_ends: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("x", "rss", "seconds", "op_ends")}


def _histogram(releases: list[int]) -> dict[str, int]:
    """Releases by size, in power-of-two buckets named by their lower bound in bytes."""
    out: dict[int, int] = {}
    for r in releases:
        b = 1 << (r.bit_length() - 1)
        out[b] = out.get(b, 0) + 1
    return {str(k): out[k] for k in sorted(out)}


def _mean(values: list[int] | list[float], times: list[int] | None) -> float:
    """Time-weighted mean of a value that holds from one op to the next."""
    if not values:
        return 0.0
    if times and times[-1] > times[0]:
        total = 0.0
        for i in range(len(values) - 1):
            total += values[i] * (times[i + 1] - times[i])
        return total / (times[-1] - times[0])
    return sum(values) / len(values)


@dataclass
class Recorded:
    """What every configuration is compared with: the trace as given, replayed
    once (its Go, machine, times, and every allocation's address)."""

    go: str
    phys_page: int
    huge_page: int
    times: list[int] | None
    addresses: list[int]

    @classmethod
    def of(cls, text: str, arch: str = "amd64") -> Recorded:
        base = TraceReplay(text, arch=arch)
        if base.version < 2:
            raise WhatIfError("what-ifs (--go, --phys-page, --huge-page) need a v2 or v3 trace "
                              "(a v1 trace never scavenges)")
        base.run()
        return cls(base.recorded_go, base.phys_page_size, base.huge_page_size, base.times, base.addresses)


def run_config(text: str, go: str, phys: int, huge: int, arch: str = "amd64",
               rec: Recorded | None = None) -> Config:
    """Replays ``text`` (v2 or v3) under Go ``go`` on a machine with ``phys``
    and ``huge`` pages; returns the configuration's figures. ``rec``, the
    trace as recorded (``Recorded.of``), is made here when not given."""
    rec = rec or Recorded.of(text, arch)
    recorded, times = rec.go, rec.times
    as_recorded = go == recorded and (phys, huge) == (rec.phys_page, rec.huge_page)
    # Exactly as recorded, the replay is strict and follows raced finds; on
    # another machine or Go, a recording with many Ps replays leniently and
    # computes every find: where this scavenger held other pages than the
    # recorded one, an allocation made meanwhile may land elsewhere (or
    # fail, and its free is skipped).
    rep = TraceReplay(text, arch=arch, go=go, phys_page_size=phys, huge_page_size=huge,
                      lenient=not as_recorded, follow_races=as_recorded)
    index = rep.op_index
    c = rep.census()
    # Op i of this replay ends at op index[i + 1] - 1 of the recorded trace.
    at = [index[i + 1] - 1 for i in range(len(c["rss"]))]
    t = [times[j] for j in at] if times else None
    rss, res, trapped = c["rss"], c["go_resident"], c["trapped"]
    cov = [cv / u if u else 0.0 for cv, u in zip(c["covered"], c["in_use"])]
    releases = c["releases"]
    cfg = Config(go=go, physpage=phys, hugepage=huge)
    if rss:
        cfg.final_rss_bytes, cfg.peak_rss_bytes, cfg.mean_rss_bytes = rss[-1], max(rss), _mean(rss, t)
        cfg.final_go_resident_bytes, cfg.peak_go_resident_bytes = res[-1], max(res)
        cfg.final_trapped_bytes, cfg.peak_trapped_bytes = trapped[-1], max(trapped)
        cfg.huge_page_coverage_final, cfg.huge_page_coverage_mean = cov[-1], _mean(cov, t)
    cfg.released_bytes, cfg.release_calls = sum(releases), len(releases)
    cfg.release_histogram = _histogram(releases)
    cfg.skipped_ops = rep.skipped
    cfg.diverged_allocs = sum(k >= 0 and a != rec.addresses[k]
                              for a, k in zip(rep.addresses, rep.source_allocations))
    cfg.op_ends = at
    cfg.x = [tt / 1e9 for tt in t] if t else [float(j + 1) for j in at]
    cfg.rss, cfg.seconds = rss, t is not None
    return cfg


def whatif(text: str, gos: list[str] | None, phys_pages: list[int] | None, huge_pages: list[int] | None,
           arch: str = "amd64") -> tuple[str, list[Config]]:
    """Every combination of the lists, in order (a list left None: as
    recorded); returns the recorded Go and the configurations. A combination
    whose huge page is smaller than its physical page is refused, naming
    both."""
    rec = Recorded.of(text, arch)
    gos, phys_pages, huge_pages = gos or [rec.go], phys_pages or [rec.phys_page], huge_pages or [rec.huge_page]
    for p, h in itertools.product(phys_pages, huge_pages):
        if h and h < p:
            raise WhatIfError(f"--huge-page {h} is smaller than --phys-page {p}")
    configs = [run_config(text, g, p, h, arch, rec) for g, p, h in itertools.product(gos, phys_pages, huge_pages)]
    return rec.go, configs


def _mib(v: float) -> str:
    return f"{v / (1 << 20):.1f}"


def table(configs: list[Config]) -> str:
    """The configurations as a text table (MiB; coverage as a percentage)."""
    head = ["go", "physpage", "hugepage", "RSS final", "RSS peak", "RSS mean", "Go resident final",
            "Go resident peak", "trapped final", "trapped peak", "released", "madvise calls",
            "THP coverage final", "THP coverage mean"]
    rows = [head]
    for c in configs:
        rows.append([c.go, _size(c.physpage), _size(c.hugepage) if c.hugepage else "none",
                     _mib(c.final_rss_bytes), _mib(c.peak_rss_bytes), _mib(c.mean_rss_bytes),
                     _mib(c.final_go_resident_bytes), _mib(c.peak_go_resident_bytes),
                     _mib(c.final_trapped_bytes), _mib(c.peak_trapped_bytes), _mib(c.released_bytes),
                     str(c.release_calls), f"{100 * c.huge_page_coverage_final:.1f}%",
                     f"{100 * c.huge_page_coverage_mean:.1f}%"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i > 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in rows]
    return "\n".join(lines) + "\n(sizes in MiB; THP coverage: in-use bytes inside wholly resident huge pages)"


def _size(v: int) -> str:
    for unit, m in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if v >= m and v % m == 0:
            return f"{v // m}{unit}"
    return str(v)


_PALETTE = [(31, 78, 156), (200, 90, 40), (46, 140, 80), (150, 60, 160), (120, 120, 30), (20, 150, 170),
            (190, 40, 90), (90, 90, 90), (240, 160, 30), (100, 180, 240), (160, 110, 70), (0, 0, 0)]


def draw(configs: list[Config], path: str | os.PathLike[str], title: str = "") -> None:
    """RSS over time, the configurations overlaid. Each pixel column shows the
    minimum and maximum of its ops, so no peak is lost to downsampling."""
    from .viz import _require_pillow, chart_axes

    Image, ImageDraw, ImageFont = _require_pillow()
    font = ImageFont.load_default()
    w, left, right, top, ph = 1100, 80, 20, 40, 360
    legend_h = 16 * len(configs) + 10
    h = top + ph + 40 + legend_h
    img = Image.new("RGB", (w, h), (255, 255, 255))
    d = ImageDraw.Draw(img)
    seconds = bool(configs) and configs[0].seconds
    d.text((left, 12), title or "RSS over the trace, per configuration", fill=(20, 20, 20), font=font)
    pw = w - left - right
    x_max = max((c.x[-1] for c in configs if c.x), default=1.0) or 1.0
    y_max = max((max(c.rss) for c in configs if c.rss), default=1) or 1
    y0 = top + 14
    chart_axes(d, font, left, y0, pw, ph, y_max, lambda v: f"{_mib(v)} MiB", x_max,
               (lambda v: f"{v:.2f} s") if seconds else (lambda v: f"{round(v):,}"))
    d.text((left, y0 + ph + 18), "time since the recording began" if seconds else "op index",
           fill=(60, 60, 60), font=font)
    for k, c in enumerate(configs):
        color = _PALETTE[k % len(_PALETTE)]
        cols = min_max_columns(c.x, c.rss, x_max, pw)
        prev = None
        for col, (lo, hi) in cols:
            x = left + col
            ylo, yhi = y0 + ph - ph * lo / y_max, y0 + ph - ph * hi / y_max
            d.line([(x, ylo), (x, yhi)], fill=color, width=1)
            if prev is not None:
                d.line([prev, (x, yhi)], fill=color, width=1)
            prev = (x, yhi)
        ly = y0 + ph + 36 + 16 * k
        d.rectangle([left, ly, left + 10, ly + 9], fill=color)
        label = f"Go {c.go}, {_size(c.physpage)} pages, huge pages {_size(c.hugepage) if c.hugepage else 'none'}"
        d.text((left + 16, ly - 2), label, fill=(20, 20, 20), font=font)
    img.save(os.fspath(path), format="PNG")


def min_max_columns(xs: list[float], ys: list[int], x_max: float, width: int) -> list[tuple[int, tuple[int, int]]]:
    """Per pixel column (0 .. width), the minimum and maximum of the values
    whose x falls in it; columns with no value are left out."""
    cols: dict[int, list[int]] = {}
    for x, y in zip(xs, ys):
        col = min(width, int(width * x / x_max)) if x_max else 0
        mm = cols.get(col)
        if mm is None:
            cols[col] = [y, y]
        else:
            mm[0] = min(mm[0], y)
            mm[1] = max(mm[1], y)
    return [(col, (mm[0], mm[1])) for col, mm in sorted(cols.items())]
