"""Differential replay against Go's own page allocator.

Generates a few dozen varied traces (grows with gaps below and above the heap,
mixed sizes, exhaustion, churn), replays each on Go 1.19's runtime page
allocator through benches/go/run.sh and on pagealloc, and requires identical
results files: every address, the bounds and every chunk bitmap.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import pagealloc
from pagealloc.tracegen import generate

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benches" / "go" / "run.sh"
B = pagealloc.BASE_CHUNK_IDX
CB = pagealloc.PALLOC_CHUNK_BYTES


def handmade():
    """Small traces aimed at the seed's edge cases."""
    base = pagealloc.chunk_base
    yield "gaps-and-straddles", "\n".join(
        [
            f"grow {base(B + 0x100):#x} {2 * CB:#x}",  # high first
            f"grow {base(B):#x} {CB:#x}",  # then low, 0xff chunks below
            f"grow {base(B + 0x102):#x} {CB:#x}",  # adjacent above
            "alloc 1024",  # too big for the low chunk: lands at B+0x100
            "alloc 21",
            "alloc 1",
            "alloc 1536",  # fails: 3 chunks hold only 1536 - ... minus what is used
            "free 0",
            "alloc 1023",
            "alloc 600",
            f"grow {base(B + 1):#x} {3 * CB:#x}",  # fill part of the gap
            "alloc 2000",
            "free 4",
            "alloc 1",
        ]
    )
    lines = [f"grow {base(B):#x} {4 * CB:#x}"]
    lines += ["alloc 1"] * 2049  # exhaust, one failure
    lines += ["free 7", "free 1000", "free 2047", "alloc 1", "alloc 1", "alloc 1", "alloc 1"]
    yield "exhaust-refill", "\n".join(lines)
    lines = [f"grow {base(B + 16 * k):#x} {8 * CB:#x}" for k in range(4)]
    lines += [f"alloc {512 * n + 7}" for n in range(1, 6)] + ["free 1", "free 3", "alloc 1030", "alloc 3000"]
    yield "multi-chunk", "\n".join(lines)


def traces(tmp: Path):
    out = []
    for name, text in handmade():
        out.append((name, text + "\n"))
    for seed in range(1, 23):
        chunks = [6, 12, 24, 48][seed % 4]
        out.append((f"random-{seed}", generate("random", seed=seed, ops=2500, chunks=chunks)))
    out.append(("churn", generate("churn", seed=9, ops=20000, chunks=16)))
    out.append(("exhaust", generate("exhaust", chunks=3)))
    out.append(("sparse", generate("sparse", seed=5, chunks=48)))
    paths = []
    for name, text in out:
        p = tmp / f"{name}.trace"
        p.write_text(text)
        paths.append(p)
    return paths


def test_identical_results_to_go(tmp_path):
    if shutil.which("go") is None and os.geteuid() != 0:
        pytest.skip("Go is not installed and cannot be installed without root (apt-get install golang-go)")
    paths = traces(tmp_path)
    proc = subprocess.run(
        [str(RUN), "traces", *map(str, paths)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(paths) >= 24
    for p in paths:
        go = Path(str(p) + ".go-results")
        assert go.exists(), f"Go wrote no results for {p.name}: {proc.stdout}{proc.stderr}"
        rep = pagealloc.TraceReplay(p.read_text())
        rep.run()
        ours = rep.results_file()
        if ours != go.read_text():
            ol, gl = ours.splitlines(), go.read_text().splitlines()
            first = next((i for i, (a, b) in enumerate(zip(ol, gl)) if a != b), min(len(ol), len(gl)))
            pytest.fail(f"{p.name}: results differ at line {first + 1}: ours {ol[first:first + 1]}, Go {gl[first:first + 1]}")
        rep.allocator.verify()
