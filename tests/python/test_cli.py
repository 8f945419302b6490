"""The command line, stats and the heap map (issue: seeing the heap)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pagealloc
from pagealloc.__main__ import main
from pagealloc.model import CHUNK_BYTES, Model
from pagealloc.tracegen import generate

ROOT = Path(__file__).resolve().parents[2]
# The benchmark trace churn-mixed (scenario c of docs/benchmarks.md) by its
# ops: how many, and the SHA-256 of their lines joined by newlines.
CHURN_MIXED_OPS = 200_001
CHURN_MIXED_SHA256 = "f0acf1641bec95dd161ebb242de3789efef3471f4d5c75ecabf54a64be8f90c2"


def run(*args, check_rc=None):
    out = subprocess.run(
        [sys.executable, "-m", "pagealloc", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    if check_rc is not None:
        assert out.returncode == check_rc, out.stderr
    return out


def ops_only(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def replay_on(alloc_api, text):
    """Replay a trace through any object with grow/alloc/free (PageAlloc or
    the model); returns the address of each alloc (0 on failure)."""
    addrs, sizes = [], []
    for line in ops_only(text):
        op, *args = line.split("#")[0].split()
        vals = [int(a, 0) for a in args]
        if op == "grow":
            alloc_api.grow(*vals)
        elif op == "alloc":
            addrs.append(alloc_api.alloc(vals[0]) or 0)
            sizes.append(vals[0])
        else:
            alloc_api.free(addrs[vals[0]], sizes[vals[0]])
    return addrs


def model_replay(text, arch="amd64"):
    """Replay a trace on the pure-Python model; returns (model, addresses)."""
    m = Model(arch)
    return m, replay_on(m, text)


def test_help_for_every_subcommand():
    for sub in ([], ["replay"], ["gen"], ["map"]):
        out = run(*sub, "--help", check_rc=0)
        assert "usage: pagealloc" in out.stdout


def test_gen_churn_reproduces_the_benchmark_trace(tmp_path):
    out = tmp_path / "churn.trace"
    run("gen", "churn", "--seed", 1, "-o", out, check_rc=0)
    ops = ops_only(out.read_text())
    assert len(ops) == CHURN_MIXED_OPS
    assert hashlib.sha256("\n".join(ops).encode()).hexdigest() == CHURN_MIXED_SHA256


@pytest.mark.parametrize("kind", ["churn", "exhaust", "sparse", "random"])
def test_gen_is_deterministic_and_replays_like_the_model(tmp_path, kind):
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    args = ["--seed", 3, "--chunks", 8] + (["--ops", 3000] if kind in ("churn", "random") else [])
    run("gen", kind, *args, "-o", a, check_rc=0)
    run("gen", kind, *args, "-o", b, check_rc=0)
    assert a.read_text() == b.read_text()
    res = tmp_path / "res.txt"
    out = run("replay", a, "--results", res, "--json", check_rc=0)
    stats = json.loads(out.stdout)
    m, addrs = model_replay(a.read_text())
    runs = m.free_runs()
    assert stats["pages_grown"] == m.pages_grown
    assert stats["pages_in_use"] == m.pages_in_use
    assert stats["pages_free"] == m.pages_grown - m.pages_in_use
    assert stats["free_runs"] == len(runs)
    assert stats["largest_free_run"] == max(runs, default=0)
    free = m.pages_grown - m.pages_in_use
    assert stats["external_fragmentation"] == pytest.approx(1 - max(runs, default=0) / free if free else 0.0)
    assert stats["chunks_grown"] == len(m.chunks)
    assert stats["replay"]["allocs"] == len(addrs)
    # --results: addresses from the model, then bounds and chunk runs.
    lines = res.read_text().splitlines()
    assert [int(x, 16) for x in lines[: len(addrs)]] == addrs
    s, e = m.bounds
    assert lines[len(addrs)] == f"bounds {s:#x} {e:#x}"


def test_results_match_a_python_replay(tmp_path):
    trace = tmp_path / "t.trace"
    trace.write_text(generate("random", seed=5, ops=2000, chunks=12))
    res = tmp_path / "res.txt"
    run("replay", trace, "--results", res, check_rc=0)
    # Replay by hand through the PageAlloc API and rebuild the results file.
    pa = pagealloc.PageAlloc()
    addrs = replay_on(pa, trace.read_text())
    out = [f"{a:#x}" for a in addrs]
    out.append("bounds {:#x} {:#x}".format(*pa.bounds))
    for s, e in pa.grown_ranges:
        for ci in range(s, e):
            out.append(" ".join([f"chunk {ci:#x}"] + [f"{i}+{n}" for i, n in pa.chunk_ranges(ci)]))
    assert res.read_text() == "\n".join(out) + "\n"


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("grow 0x3000000000 0x400000\nalloc 1\nbogus 3\n", 3, "unknown op"),
        ("grow 0x3000000000 0x400000\nalloc one\n", 2, "not a decimal"),
        ("grow 0x3000000000\n", 1, "takes 2"),
        ("grow 0x3000000000 0x400000\nalloc 1\nfree 5\n", 3, "names no earlier alloc"),
        ("grow 0x3000000000 0x400000\nalloc 1\nfree 0\nfree 0\n", 4, "already freed"),
        ("grow 0x3000000000 0x400000\nalloc 1024\nfree 0\n", 3, "allocation 0 failed"),
        ("grow 0x3000000000 0x400000\nscavenge 1\n", 2, "needs a v2 trace"),
        ("alloc 1\nversion 2\n", 2, "first op line"),
        ("version 4\n", 1, "unknown trace version"),
        # v3 (Go 1.26) ops outside v3 traces, and bad v3 lines.
        ("version 2\ngrow 0x3000000000 0x400000\nnextgen\n", 3, "needs a v3 trace"),
        ("grow 0x3000000000 0x400000\npad 0x3000000000 1\n", 2, "needs a v3 trace"),
        ("version 2\nscavenge 1 bg\n", 2, "needs a v3 trace"),
        ("version 3\nscavenge 1 fg\n", 2, "takes 1"),
        ("version 3\nnextgen 1\n", 2, "takes 0"),
        ("version 3\npad 0x3000000001 1\n", 2, "not page-aligned"),
        ("version 3\ngrow 0x3000000000 0x400000\nalloc 3\npad 0x3000004000 2\n", 4, "is not grown and free"),
        ("version 3\ngrow 0x3000000000 0x400000\npad 0x3000400000 1\n", 3, "is not grown and free"),
        ("version 2\ncalloc 0 1\n", 2, "names no earlier cache"),
        ("version 2\ncache\ncalloc 0 65\n", 3, "outside 1..=64"),
        ("version 2\ncache\nflush 0\nflush 0\n", 4, "already flushed"),
        ("version 2\ncache\nflush 0\ncalloc 0 1\n", 4, "already flushed"),
        ("version 2\ncache 1\n", 2, "takes 0"),
        ("grow 0x3000000000 0x400000\ngrow 0x3000000000 0x400000\n", 2, "already grown"),
    ],
)
def test_bad_trace_lines(tmp_path, text, line, fragment):
    trace = tmp_path / "bad.trace"
    trace.write_text(text)
    for args in (["replay", trace], ["replay", trace, "--json"], ["map", trace, "-o", tmp_path / "x.png"]):
        out = run(*args)
        assert out.returncode == 2, out
        assert out.stdout == "", "nothing half-printed"
        assert f"line {line}:" in out.stderr and fragment in out.stderr, out.stderr
    assert not (tmp_path / "x.png").exists()


def test_missing_trace_file(tmp_path):
    out = run("replay", tmp_path / "nope.trace")
    assert out.returncode == 2 and "nope.trace" in out.stderr


def test_stats_match_the_model():
    pa, m = pagealloc.PageAlloc(), Model()
    b = pagealloc.BASE_CHUNK_IDX
    for c, n in [(b, 3), (b + 3, 1), (b + 10, 2)]:
        pa.grow(pagealloc.chunk_base(c), n * CHUNK_BYTES)
        m.grow(pagealloc.chunk_base(c), n * CHUNK_BYTES)
    live = []
    for n in [1, 700, 3, 512, 1, 1, 40, 2000]:
        a = pa.alloc(n)
        assert a == m.alloc(n)
        if a:
            live.append((a, n))
    for a, n in live[1::2]:
        pa.free(a, n)
        m.free(a, n)
    s = pa.stats()
    runs = m.free_runs()
    assert (s.pages_grown, s.pages_in_use, s.free_runs, s.largest_free_run) == (
        m.pages_grown,
        m.pages_in_use,
        len(runs),
        max(runs),
    )
    assert s.chunks_grown == 6 and s.mapped_bytes == pa.mapped_bytes
    text = str(s)
    assert "largest free run" in text and str(s.pages_in_use) in text
    with pytest.raises(Exception):
        s.pages_in_use = 0  # frozen


def test_render_map_colours(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow (pagealloc[viz]) is not installed")
    from pagealloc.viz import FREE, IN_USE, SCAVENGED

    b = pagealloc.BASE_CHUNK_IDX
    pa = pagealloc.PageAlloc.from_chunks(
        {b: [(0, 100)], b + 1: [(500, 12)], b + 0x40: [(7, 1)]}, scav={b + 1: [(0, 400)]}
    )
    info = pa.render_map(tmp_path / "m.png")
    img = Image.open(tmp_path / "m.png").convert("RGB")
    assert img.size == info["size"]
    assert info["chunks_per_row"] == 1
    rows = dict(info["rows"])
    assert set(rows) == {b, b + 1, b + 0x40}

    def cell(ci, page):
        x = info["x0"] + page * info["cell_width"] + info["cell_width"] // 2
        y = rows[ci] + info["row_height"] // 2
        return img.getpixel((x, y))

    assert cell(b, 0) == IN_USE and cell(b, 99) == IN_USE and cell(b, 100) == FREE
    assert cell(b + 1, 0) == SCAVENGED and cell(b + 1, 399) == SCAVENGED and cell(b + 1, 400) == FREE
    assert cell(b + 1, 499) == FREE and cell(b + 1, 500) == IN_USE and cell(b + 1, 511) == IN_USE
    assert cell(b + 0x40, 7) == IN_USE and cell(b + 0x40, 6) == FREE
    # The gap is a band between the grown regions, not 0x3e empty rows.
    assert rows[b + 0x40] - rows[b + 1] < 3 * info["row_height"] + 20


def test_render_map_downsamples_large_heaps(tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow (pagealloc[viz]) is not installed")
    pa = pagealloc.PageAlloc()
    pa.grow(pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX), 2048 * CHUNK_BYTES)
    info = pa.render_map(tmp_path / "big.png", max_rows=256)
    assert info["chunks_per_row"] == 8 and len(info["rows"]) == 256


def test_render_map_without_pillow_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['PIL'] = None\n"
        "import pagealloc\n"
        "pa = pagealloc.PageAlloc()\n"
        "try:\n"
        "    pa.render_map('x.png')\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert "pagealloc[viz]" in out.stdout, out
    assert not os.path.exists(tmp_path / "x.png")


def test_constrained_trace_forms_replay(tmp_path):
    trace = tmp_path / "c.trace"
    trace.write_text(
        "grow 0x3000000000 0x800000\n"
        "alloc 1\n"
        "alloc 2 align=4\n"
        "alloc 1 within=0x3000400000:0x3000800000\n"
        "allocat 0x3000012000 2\n"
        "allocat 0x3000000000 1\n"
        "free 3\n"
    )
    res = tmp_path / "r.txt"
    run("replay", trace, "--results", res, check_rc=0)
    lines = res.read_text().splitlines()
    assert lines[:5] == ["0x3000000000", "0x3000008000", "0x3000400000", "0x3000012000", "0x0"]
    assert lines[5] == "bounds 0x200c000 0x200c002"


# --- rough edges a newcomer hit -----------------------------------------------


def test_version_and_empty_trace(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"pagealloc {pagealloc.__version__}"
    empty = tmp_path / "empty.trace"
    empty.write_text("# nothing here\n")
    assert main(["replay", str(empty)]) == 0
    out = capsys.readouterr().out
    assert "no ops" in out and "ns/op" not in out and "(;" not in out
    assert main(["replay", str(empty), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replay"]["engine_ns_per_op"] is None


def test_failed_allocations_in_a_recording_are_explained(tmp_path, capsys):
    t = tmp_path / "t.trace"
    t.write_text("version 3\ngrow 0xc000000000 0x400000\nalloc 600\ngrow 0xc000400000 0x400000\nalloc 600\n")
    assert main(["replay", str(t)]) == 0
    out = capsys.readouterr().out
    assert "1 allocation(s) failed" in out and "Go then grows the heap and allocates again" in out


@pytest.mark.parametrize("argv,message", [
    (["map", "TRACE", "-o", "m.jpg"], "-o m.jpg: pictures are written as PNG; name the file .png"),
    (["replay", "TRACE", "--map", "m.jpeg"], "--map m.jpeg: pictures are written as PNG"),
    (["timeline", "TRACE", "-o", "t.png", "--gif", "a.png"], "--gif a.png: the animation is written as GIF"),
    (["timeline", "TRACE", "-o", "/no/such/dir/t.png"], "-o /no/such/dir/t.png: no such folder /no/such/dir"),
    (["replay", "TRACE", "--results", "/no/such/dir/r"], "--results /no/such/dir/r: no such folder"),
    (["record", "-o", "/no/such/dir/x.trace", "--", "go", "run", "."], "-o /no/such/dir/x.trace: no such folder"),
])
def test_outputs_are_checked_before_any_work(tmp_path, capsys, argv, message):
    t = tmp_path / "t.trace"
    t.write_text("grow 0xc000000000 0x400000\nalloc 1\n")
    argv = [str(t) if a == "TRACE" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [t]  # nothing was written
