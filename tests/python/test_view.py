"""`pagealloc view` in a real browser: Debian's Chromium driven by
Playwright (no browser download: the system binary). The page loads without
console errors, draws the trace's peak, shows the engine's heap at any op,
answers hovers and clicks, keeps hostile strings inert, and a 2,000,000-op
page loads and scrubs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pagealloc
from pagealloc import view
from pagealloc.__main__ import main
from pagealloc.tracegen import generate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BASE = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
HOSTILE = '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">&amp;'


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (the test extra installs it: pip install -e .[test])")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (scripts/test.sh installs Debian's chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, path: Path, timeout_ms: int = 30000):
    # bypass_csp: the page's Content-Security-Policy forbids eval, which
    # Playwright's polling uses; the tests then also show that escaping
    # alone keeps hostile strings inert, without the policy's help.
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(path.resolve().as_uri())
    page.wait_for_function("window.pageallocView && window.pageallocView.ready", timeout=timeout_ms)
    return page, errors


def timed_trace() -> str:
    """A recording in miniature: every op timed, a comment with markup in it."""
    lines = [f"# recorded by pagealloc record: go run . {HOSTILE}"]
    t = 0
    for line in generate("mheap", seed=5, ops=1500, chunks=8, go="1.26").splitlines():
        if line and not line.startswith(("#", "version")):
            t += 1000
            line = f"{line} t={t} p={t % 3}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("view")
    text = timed_trace()
    trace = d / "t.trace"
    trace.write_text(text)
    page = d / "t.html"
    assert main(["view", str(trace), "-o", str(page), "--title", HOSTILE, "--phys-page", "4K,64K"]) == 0
    return text, trace, page


def state_after(text: str, k: int) -> dict[tuple[int, int], int]:
    """The engine's page states after k ops: (chunk, page) -> 0..3."""
    rep = pagealloc.TraceReplay(text)
    rep.run(k)
    pa = rep.allocator
    out = {}
    for s, e in pa.grown_ranges:
        for ci in range(s, e):
            bits, scav = int(pa.chunk_bitmap(ci)), int(pa.chunk_scavenged(ci))
            for p in range(512):
                out[(ci, p)] = (bits >> p & 1) | (scav >> p & 1) << 1
    return out


def test_the_page_loads_and_draws_the_traces_peak(browser, built):
    text, _, path = built
    page, errors = open_page(browser, path)
    assert errors == []
    summary = json.loads(page.locator("#pagealloc-summary").text_content())
    census = pagealloc.TraceReplay(text).census()
    assert summary["ops"] == len(census["in_use"])
    assert summary["peak_in_use_bytes"] == max(census["in_use"])
    assert summary["final_in_use_bytes"] == census["in_use"][-1]
    assert page.evaluate("window.pageallocView.drawnPeakInUseBytes()") == max(census["in_use"])
    # Times: the axis is seconds, and the summary has the duration.
    times = pagealloc.TraceReplay(text).times
    assert summary["duration_s"] == pytest.approx((times[-1] - times[0]) / 1e9)
    assert page.evaluate("window.pageallocView.xAxis") == "seconds since the recording began"
    # The what-if series are there (two configurations asked for).
    assert [c["label"] for c in summary["configs"]] == [
        "RSS, Go 1.26, 4 KiB pages, 2 MiB huge pages", "RSS, Go 1.26, 64 KiB pages, 2 MiB huge pages"]
    page.close()


def test_scrubbing_to_an_op_draws_the_engines_heap(browser, built):
    text, _, path = built
    page, errors = open_page(browser, path)
    n = page.evaluate("window.pageallocView.meta.ops")
    for k in (0, 1, 2, 57, 700, n // 2, n - 1, n):
        page.evaluate(f"window.pageallocView.seek({k})")
        want = state_after(text, k)
        # Every page's state, as the page holds it.
        got = page.evaluate("""(cells) => cells.map(([c, p]) => window.pageallocView.pageState(c, p))""",
                            [[c, p] for c, p in want])
        assert dict(zip(want, got)) == want, f"after op {k}"
        if not want:
            continue
        # And as drawn: sample pixels of the canvas.
        h = page.evaluate("window.pageallocView.cell.height()")
        rgb = {0: [233, 240, 232], 1: [31, 78, 156], 2: [222, 196, 140], 3: [150, 110, 160]}
        sample = list(want.items())[:: max(1, len(want) // 300)]
        px = page.evaluate("""([cells, h]) => {
            const ctx = document.getElementById('map').getContext('2d', {willReadFrequently: true});
            return cells.map(([c, p]) => {
                const r = window.pageallocView.rowOf(c);
                return Array.from(ctx.getImageData(p * 2, r * h, 1, 1).data.slice(0, 3));
            });
        }""", [[[c, p] for (c, p), _ in sample], h])
        assert px == [rgb[s] for _, s in sample], f"pixels after op {k}"
    assert errors == []
    page.close()


def test_hover_and_click_tell_a_pages_address_and_span(browser, built):
    text, _, path = built
    page, _ = open_page(browser, path)
    k = 400
    page.evaluate(f"window.pageallocView.seek({k})")
    # A live span after k ops: an allocation made and not freed by then.
    rep = pagealloc.TraceReplay(text)
    rep.run(k)
    ops = [line.split()[:2] for line in text.splitlines() if line and not line.startswith(("#", "version"))][:k]
    freed = {int(f[1]) for f in ops if f[0] == "free"}
    live = [a for i, a in enumerate(rep.addresses) if a and i not in freed]
    addr0 = live[len(live) // 2]
    ci = pagealloc.chunk_index(addr0)
    p = (addr0 - pagealloc.chunk_base(ci)) // 8192
    r = page.evaluate(f"window.pageallocView.rowOf({ci})")
    h = page.evaluate("window.pageallocView.cell.height()")
    box = page.locator("#map").bounding_box()
    scale = box["width"] / 1024
    page.mouse.move(box["x"] + (p * 2 + 1) * scale, box["y"] + (r * h + h / 2) * scale)
    addr = pagealloc.page_base(ci, p)
    assert page.locator("#page").text_content() == f"page {addr:#x} (chunk {ci:#x}, page {p}): in use"
    page.mouse.click(box["x"] + (p * 2 + 1) * scale, box["y"] + (r * h + h / 2) * scale)
    span = page.locator("#span").text_content()
    m = re.fullmatch(r"span (0x[0-9a-f]+), (\d+) page\(s\): allocated by op ([\d,]+) \([\d.]+ s\)"
                     r"(?:, never freed|, freed by op ([\d,]+) \([\d.]+ s\))", span)
    assert m, span
    base, npages = int(m.group(1), 16), int(m.group(2))
    assert base <= addr < base + npages * 8192
    made = int(m.group(3).replace(",", ""))
    assert made <= k and (m.group(4) is None or int(m.group(4).replace(",", "")) > k)
    # Zoom and pan keep the view inside the trace; double-click resets.
    page.evaluate("window.pageallocView.zoom(0.2e-3, 0.4e-3)")
    assert page.evaluate("window.pageallocView.range()") == pytest.approx([0.2e-3, 0.4e-3])
    page.keyboard.press("ArrowRight")
    assert page.evaluate("window.pageallocView.range()") == pytest.approx([0.22e-3, 0.42e-3])
    tl0 = page.locator("#timeline .u-over").bounding_box()
    page.mouse.dblclick(tl0["x"] + 10, tl0["y"] + 10)
    full = page.evaluate("window.pageallocView.range()")
    assert full[0] == 0 and full[1] == pytest.approx(pagealloc.TraceReplay(text).times[-1] / 1e9)
    # The timeline: hovering shows exact values; a click moves the map there.
    tl = page.locator("#timeline .u-over").bounding_box()
    page.mouse.move(tl["x"] + tl["width"] / 3, tl["y"] + tl["height"] / 2)
    assert re.match(r"op [\d,]+ \u00b7 [\d.]+ s \u00b7 in use [\d.]+ MiB", page.locator("#hover").text_content())
    page.mouse.click(tl["x"] + tl["width"] / 3, tl["y"] + tl["height"] / 2)
    assert 0 < page.evaluate("window.pageallocView.op()") < page.evaluate("window.pageallocView.meta.ops")
    page.close()


def test_hostile_strings_stay_text(browser, built):
    text, _, path = built
    html = path.read_text()
    # In the file: no markup from the title or the comments, and the JSON
    # cannot close its script element.
    assert HOSTILE not in html and "window.__pwned" in html
    assert html.count("</script>") == 3
    page, errors = open_page(browser, path)
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("#title").text_content() == HOSTILE
    assert HOSTILE in page.locator("#comments").text_content()
    assert page.locator("img").count() == 0
    assert errors == []
    page.close()


def test_bad_input_writes_no_page(tmp_path, capsys):
    bad = tmp_path / "bad.trace"
    bad.write_text("grow 0xc000000000 0x400000\nalloc 1\nfree 7\n")
    out = tmp_path / "p.html"
    assert main(["view", str(bad), "-o", str(out)]) == 2
    assert "line 3" in capsys.readouterr().err and not out.exists()
    ok = tmp_path / "ok.trace"
    ok.write_text("grow 0xc000000000 0x400000\nalloc 1\n")
    for args, message in ((["-o", "/no/such/dir/p.html"], "no such folder"),
                          (["-o", str(tmp_path / "p.png")], "name the file .html"),
                          (["-o", str(out), "--phys-page", "3K"], "--phys-page '3K'"),
                          (["-o", str(out), "--go", "1.26"], "need a v2 or v3 trace")):
        assert main(["view", str(ok), *args]) == 2
        assert message in capsys.readouterr().err
    assert not out.exists()


def test_two_million_ops(browser, tmp_path):
    """The scale the issue asks: a 2,000,000-op trace gives a page of at most
    60 MB written in at most 120 s, which loads within 30 s and scrubs."""
    trace = tmp_path / "big.trace"
    trace.write_text(generate("churn", seed=1, ops=2_000_000))
    out = tmp_path / "big.html"
    t0 = time.perf_counter()
    assert main(["view", str(trace), "-o", str(out)]) == 0
    written = time.perf_counter() - t0
    size = out.stat().st_size
    print(f"2,000,000 ops: page {size / 1e6:.1f} MB written in {written:.1f} s")
    assert size <= 60e6 and written <= 120
    t0 = time.perf_counter()
    page, errors = open_page(browser, out, timeout_ms=30000)
    loaded = time.perf_counter() - t0
    seeks = []
    for k in (1_000_000, 1_999_999, 17, 1_234_567):
        t = time.perf_counter()
        page.evaluate(f"window.pageallocView.seek({k})")
        seeks.append(time.perf_counter() - t)
    print(f"loaded in {loaded:.1f} s; seeks {', '.join(f'{s * 1e3:.0f} ms' for s in seeks)}")
    assert loaded <= 30 and max(seeks) <= 2 and errors == []
    assert page.evaluate("window.pageallocView.op()") == 1_234_567
    page.close()


def test_the_published_page_of_the_docs_loads(browser):
    """docs/pages/gofmt.html (linked from the record guide) is a page of
    this version: it loads without errors and its summary is whole."""
    path = Path(__file__).resolve().parents[2] / "docs" / "pages" / "gofmt.html"
    page, errors = open_page(browser, path)
    meta = page.evaluate("window.pageallocView.meta")
    assert meta["ops"] > 100_000 and meta["peak_in_use_bytes"] >= meta["final_in_use_bytes"] > 0
    assert page.evaluate("window.pageallocView.drawnPeakInUseBytes()") == meta["peak_in_use_bytes"]
    assert errors == []
    page.close()


def test_the_docs_site_cuts_nothing_off_at_1280_px(browser, tmp_path):
    """Every page of the docs site, built as the test command builds it, at
    1280 px: no code block or table wider than its box (a long line wraps
    instead of running under the copy button)."""
    root = Path(__file__).resolve().parents[2]
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "-d", str(site)], cwd=root, check=True,
                   env=dict(os.environ, NO_MKDOCS_2_WARNING="1"), capture_output=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    pages = sorted(site.rglob("index.html"))
    assert len(pages) >= 20
    for f in pages:
        page.goto(f.as_uri())
        cut = page.evaluate("""() => Array.from(document.querySelectorAll('pre > code, .md-typeset__scrollwrap'))
            .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.slice(0, 60))""")
        assert cut == [], f"{f.relative_to(site)}: {cut}"
    page.close()
