"""`pagealloc view`: one self-contained HTML page per trace.

The page opens offline anywhere: its script (uPlot, vendored with its
licence, and view.js), its styles and its data are inline. The data is the
engine's (`TraceReplay.view_data`: the census after every op, the heap map
as keyframes and per-op runs, every allocation's span), packed as
little-endian arrays into one gzip'd, base64 blob the page unpacks with the
browser's own DecompressionStream; the figures a tool may want are also a
JSON summary in ``<script type="application/json" id="pagealloc-summary">``.

Why uPlot: a small (50 KB), dependency-free charting library made for large
series; the page still draws at most one minimum and one maximum per pixel
column (recomputed for the visible range on every zoom), so a chart of
millions of ops stays fast and no peak hides. The heap map is a canvas.

Everything that came from the trace or the command line (its comments, the
recorded command line, the file name, ``--title``) is shown as text, never
markup: the JSON is escaped so that ``</script>`` cannot close its element,
and the page sets it with ``textContent``.
"""

from __future__ import annotations

import array
import base64
import gzip
import json
import os
from pathlib import Path

from . import TraceReplay
from .whatif import Config

ASSETS = Path(__file__).parent / "assets"
_KINDS = {"in_use": "u32", "released": "u32", "free_resident": "u32", "rss_kib": "u32", "slot_chunk": "u64",
          "slot_base": "u64", "slot_op": "u32", "op_runs": "u32", "run_slot": "u32", "run_page": "u16",
          "run_len": "u16", "run_state": "u8", "keyframe_slots": "u32", "keyframes": "u8", "alloc_slot": "u32",
          "alloc_page": "u16", "alloc_pages": "u32", "alloc_op": "u32", "free_op": "u32"}
_CONFIG_COLORS = ["#c0392b", "#8e44ad", "#16a085", "#d35400", "#2c3e50", "#7f8c8d"]


def _script_json(obj) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&` as
    themselves (so `</script>` and `<!--` cannot occur), and no line
    separators that older parsers mishandle."""
    s = json.dumps(obj, ensure_ascii=True)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _comments(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            out.append(stripped[1:].strip())
        elif stripped and not stripped.startswith(("version", "physpage", "hugepage")):
            break
    return out[:50]


def build(text: str, title: str, source: str, arch: str = "amd64",
          configs: list[Config] | None = None, keyframe_every: int = 0) -> str:
    """The page's HTML for trace ``text``. ``configs`` (from ``whatif``) adds
    an RSS series per what-if configuration."""
    rep = TraceReplay(text, arch=arch)
    data = rep.view_data(keyframe_every)
    n = rep.ops
    times = rep.times
    arrays: dict[str, tuple[bytes, str]] = {k: (data[k], _KINDS[k]) for k in _KINDS}
    if times is not None:
        secs = array.array("d", (t / 1e9 for t in times))
        arrays["times"] = (secs.tobytes(), "f64")
    series = []
    for k, cfg in enumerate(configs or []):
        # The configuration's RSS after each op of the trace as given (ops
        # its Go dropped take the value after the next one).
        per_op = array.array("I", bytes(4 * n))
        j = 0
        for end, v in zip(cfg.op_ends, cfg.rss):
            while j <= end and j < n:
                per_op[j] = v // 1024
                j += 1
        for i in range(j, n):
            per_op[i] = per_op[j - 1] if j else 0
        key = f"rss_{k}"
        arrays[key] = (per_op.tobytes(), "u32")
        hp = "no huge pages" if not cfg.hugepage else f"{cfg.hugepage >> 20} MiB huge pages"
        series.append({"key": key, "label": f"RSS, Go {cfg.go}, {cfg.physpage >> 10} KiB pages, {hp}",
                       "color": _CONFIG_COLORS[k % len(_CONFIG_COLORS)]})
    blob = bytearray()
    index = {}
    for name, (raw, kind) in arrays.items():
        while len(blob) % 8:
            blob.append(0)
        index[name] = [len(blob), len(raw), kind]
        blob += raw
    packed = base64.b64encode(gzip.compress(bytes(blob), 6)).decode("ascii")

    def u32s(b: bytes) -> list[int]:
        return array.array("I", b).tolist()

    in_use = u32s(data["in_use"])
    rss_kib = u32s(data["rss_kib"])
    pa = rep.allocator
    st = pa.stats()
    summary = {
        "title": title,
        "source": source,
        "ops": n,
        "duration_s": (times[-1] - times[0]) / 1e9 if times else None,
        "peak_in_use_bytes": max(in_use, default=0) * 8192,
        "final_in_use_bytes": in_use[-1] * 8192 if in_use else 0,
        "peak_rss_bytes": max(rss_kib, default=0) * 1024,
        "final_rss_bytes": rss_kib[-1] * 1024 if rss_kib else 0,
        "largest_free_run_bytes": st.largest_free_run * 8192,
        "external_fragmentation": st.external_fragmentation,
        "go": rep.go,
        "machine": (f"{rep.phys_page_size >> 10} KiB pages, "
                    + (f"{rep.huge_page_size >> 20} MiB huge pages" if rep.huge_page_size else "no huge pages")
                    if rep.version >= 2 else ""),
        "comments": _comments(text),
        "keyframe_every": data["keyframe_every"],
        "configs": series,
        "arrays": index,
    }
    css = (ASSETS / "uPlot.min.css").read_text() + (ASSETS / "view.css").read_text()
    js = (ASSETS / "uPlot.iife.min.js").read_text() + "\n" + (ASSETS / "view.js").read_text()
    licence = (ASSETS / "uPlot.LICENSE").read_text()
    legend = "".join(f'<span style="background:{c}"></span>{name}' for c, name in (
        ("#1f4e9c", "in use"), ("#e9f0e8", "free"), ("#dec48c", "free and scavenged"), ("#966ea0", "padding")))
    for bad in ("</script", "</style"):
        if bad in js.lower() or bad in css.lower():
            raise ValueError(f"an asset holds {bad!r}")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src data: blob:">
<title>pagealloc view</title>
<style>{css}</style>
</head><body>
<h1 id="title"></h1>
<p class="source" id="source"></p>
<div class="panel"><dl class="summary" id="summary"></dl></div>
<div class="panel">
<p class="help">Timeline: in use, free but resident, released{', and RSS per configuration' if series else ''}; each pixel column spans the least to the most of its ops. Drag to zoom, wheel to zoom around the cursor, shift+wheel or the arrow keys to pan, double-click to reset, click to show the heap at that moment.</p>
<p class="legend" id="series"></p>
<div id="timeline"></div>
<div id="hover"></div>
</div>
<div class="panel">
<div id="cursor"></div>
<p class="legend">{legend}</p>
<canvas id="map" width="1024" height="1"></canvas>
<div id="page"></div>
<div id="span"></div>
<p class="help">One row per 4 MiB chunk, in address order; one cell per 8 KiB page. Hover a page for its address and state, click it for its span.</p>
</div>
<pre class="comments" id="comments"></pre>
<script type="application/json" id="pagealloc-summary">{_script_json(summary)}</script>
<script type="application/octet-stream" id="pagealloc-data">{packed}</script>
<script>
/* uPlot {licence.splitlines()[0]} (MIT licence, below) */
{js}
</script>
<!-- uPlot's licence:
{licence.replace("--", "- -")}
-->
</body></html>
"""


def write(path: str | os.PathLike[str], html: str) -> None:
    Path(path).write_text(html, encoding="utf-8")
