"""Differential replay against Go's own page allocator.

Generates a few dozen varied v1 traces (grows with gaps below and above the
heap, mixed sizes, exhaustion, churn) and a few dozen v2 traces (Go 1.19's
scavenger and page caches), replays each on Go 1.19's runtime page allocator
through tests/goharness/run.sh (one Go run for all) and on pagealloc, and requires
identical results files: every result line, the bounds, every chunk bitmap
and, for v2, every scavenged bitmap. The real Go 1.19 workload trace
(tests/data) must also come out identical through the CLI and the Rust
replay example.
"""

import gzip
import os
import subprocess
from pathlib import Path

import pytest

import pagealloc
from pagealloc.tracegen import generate

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "tests" / "goharness" / "run.sh"
REAL = ROOT / "tests" / "data" / "real-jsongz-p1.v2.trace.gz"
GO119 = Path("/usr/lib/go-1.19/bin/go")
B = pagealloc.BASE_CHUNK_IDX
CB = pagealloc.PALLOC_CHUNK_BYTES


def assert_same_results(name, ours, go):
    """Our results file equals Go's; else fail naming the first line that differs."""
    if ours != go:
        ol, gl = ours.splitlines(), go.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(ol, gl)) if a != b), min(len(ol), len(gl)))
        pytest.fail(f"{name}: results differ at line {first + 1}: ours {ol[first:first + 1]}, Go {gl[first:first + 1]}")


def skip_without_go119():
    """The harness installs Debian's golang-1.19 itself when it can (root)."""
    if not GO119.exists() and os.geteuid() != 0:
        pytest.skip(f"Go 1.19 is not at {GO119} and cannot be installed without root (apt-get install golang-1.19)")


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


def handmade_v2():
    """Small v2 traces aimed at Go 1.19's scavenger and cache edge cases."""
    base = pagealloc.chunk_base
    yield "v2-scavenge-after-grow", "\n".join(
        ["version 2", f"grow {base(B):#x} {2 * CB:#x}", "scavenge 0x100000", "alloc 3", "free 0",
         "scavenge 1", "scavenge 0x200000", "scavenge 0x10000000000", "alloc 600", "alloc 1"]
    )
    lines = ["version 2", f"grow {base(B):#x} {CB:#x}", "alloc 100", "cache", "calloc 0 1", "calloc 0 64",
             "calloc 0 3", "free 0", "scavenge 0x400000", "cache", "flush 0", "scavenge 0x400000",
             "free 1", "scavenge 0x400000", "calloc 1 2", "flush 1", "cache", "alloc 512", "alloc 1"]
    yield "v2-cache-flush", "\n".join(lines)
    # Huge pages: a chunk with its free pages in one 2 MiB-aligned half; the
    # scavenger must not split that half when asked for one page.
    lines = ["version 2", f"grow {base(B):#x} {3 * CB:#x}", "alloc 1536", "free 0", "alloc 256",
             "scavenge 0x2000", "scavenge 0x2000", "alloc 300", "free 2", "scavenge 0x6000", "scavenge 0"]
    yield "v2-huge-pages", "\n".join(lines)


def traces(tmp: Path):
    out = []
    for name, text in handmade_v2():
        out.append((name, text + "\n"))
    for seed in range(1, 25):
        chunks = [4, 8, 16, 40][seed % 4]
        out.append((f"mheap-{seed}", generate("mheap", seed=seed, ops=2500, chunks=chunks)))
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
    skip_without_go119()
    paths = traces(tmp_path)
    proc = subprocess.run(
        [str(RUN), "traces", *map(str, paths)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(paths) >= 50
    assert sum(1 for p in paths if p.read_text().find("version 2") >= 0) >= 25
    for p in paths:
        go = Path(str(p) + ".go-results")
        assert go.exists(), f"Go wrote no results for {p.name}: {proc.stdout}{proc.stderr}"
        rep = pagealloc.TraceReplay(p.read_text())
        rep.run()
        assert_same_results(p.name, rep.results_file(), go.read_text())
        rep.allocator.verify()


def handmade_v3():
    """Small v3 traces aimed at Go 1.26's scavenge index: the background
    scavenger's occupancy edges (495, 496 and 497 pages in use, now and at
    the start of the generation), a free above the background cursor,
    generations, flushes that return pages to the scavenger, padding, and
    scavenges cut mid-chunk."""
    base = pagealloc.chunk_base
    for used in (495, 496, 497):
        yield f"v3-occupancy-{used}", "\n".join(
            ["version 3", f"grow {base(B):#x} {2 * CB:#x}", f"alloc {used + 8}", "alloc 1",
             "free 0", f"alloc {used}", "nextgen", "scavenge 0xffffffffffffffff bg",
             "scavenge 0xffffffffffffffff bg", "scavenge 0x10000"]
        )
    # lastInUse: dense at the start of the generation, sparse now.
    yield "v3-last-in-use", "\n".join(
        ["version 3", f"grow {base(B):#x} {CB:#x}", "alloc 500", "nextgen", "free 0", "alloc 100",
         "scavenge 0xffffffffffffffff bg", "nextgen", "scavenge 0xffffffffffffffff bg",
         "free 1", "scavenge 0x2000 bg", "nextgen", "scavenge 0xffffffffffffffff bg"]
    )
    # A free above the background cursor is invisible to it until nextgen;
    # scavenges of one page cut a chunk's run and continue from the cursor.
    yield "v3-free-above-cursor", "\n".join(
        ["version 3", f"grow {base(B):#x} {4 * CB:#x}", "alloc 300", "alloc 1200", "alloc 1",
         "free 0", "nextgen", "scavenge 0x2000 bg", "free 1", "scavenge 0x4000 bg",
         "scavenge 0x4000 bg", "nextgen", "scavenge 0x2000 bg", "scavenge 0x2000",
         "scavenge 0x100000 bg", "scavenge 0x100000", "alloc 64", "scavenge 0xffffffffffffffff"]
    )
    # Caches: a flush returns its pages to the scavenger; padding shows in a
    # cache's scav bits.
    yield "v3-cache-flush-pad", "\n".join(
        ["version 3", f"grow {base(B):#x} {2 * CB:#x}", f"pad {base(B):#x} 5", "cache", "calloc 0 2",
         "alloc 70", "free 1", "scavenge 0xffffffffffffffff", "cache", "calloc 1 1", "flush 1",
         "scavenge 0xffffffffffffffff", f"pad {base(B) + 200 * 8192:#x} 3", "flush 0", "nextgen",
         "scavenge 0xffffffffffffffff bg", "cache", "calloc 2 64", "alloc 1"]
    )


def test_v3_identical_results_to_go126(tmp_path):
    """v3 traces (Go 1.26's scavenger) replayed on Go 1.26.8's own
    pageAlloc (tests/goharness/run.sh --go 1.26) and on pagealloc: identical
    results files, every result line, bitmap and scavenged bitmap."""
    paths = []
    for name, text in handmade_v3():
        p = tmp_path / f"{name}.trace"
        p.write_text(text + "\n")
        paths.append(p)
    for seed in range(1, 21):
        chunks = [4, 8, 16, 40][seed % 4]
        p = tmp_path / f"mheap126-{seed}.trace"
        p.write_text(generate("mheap", seed=seed, ops=2500, chunks=chunks, go="1.26"))
        paths.append(p)
    assert all(p.read_text().find("version 3") >= 0 for p in paths)
    proc = subprocess.run(
        [str(RUN), "--go", "1.26", "traces", *map(str, paths)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kinds = set()
    for p in paths:
        text = p.read_text()
        kinds |= {line.split()[0] for line in text.splitlines() if line and not line.startswith("#")}
        go = Path(str(p) + ".go-results")
        assert go.exists(), f"Go 1.26 wrote no results for {p.name}: {proc.stdout}{proc.stderr}"
        rep = pagealloc.TraceReplay(text)
        rep.run()
        assert rep.allocator.go == "1.26"
        assert_same_results(p.name, rep.results_file(), go.read_text())
        rep.allocator.verify()
    # Every v3 op kind was exercised.
    assert {"grow", "alloc", "free", "scavenge", "cache", "calloc", "flush", "nextgen", "pad"} <= kinds
    assert sum("bg" in p.read_text() for p in paths) >= 10


# Machines other than linux/amd64's (4 KiB pages, 2 MiB huge pages): arm64
# kernels with 16 KiB or 64 KiB pages, no transparent huge pages, and arm64's
# 512 MiB huge pages over 64 KiB pages.
MACHINES = [(16384, 2 << 20), (65536, 2 << 20), (4096, 0), (65536, 512 << 20)]


def with_machine(text: str, phys: int, huge: int) -> str:
    """The trace with `physpage` and `hugepage` headers after its version line."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("version")) + 1
    return "\n".join([*lines[:at], f"physpage {phys}", f"hugepage {huge}", *lines[at:]]) + "\n"


@pytest.mark.parametrize("go", ["1.26", "1.19"])
def test_other_machines_identical_to_go(tmp_path, go):
    """Traces with physpage/hugepage headers replayed on each Go's own
    pageAlloc with its physPageSize and physHugePageSize set to them
    (tests/goharness/run.sh) and on pagealloc: identical results files. The
    machine matters: every trace's results differ from the same ops on
    linux/amd64's machine."""
    if go == "1.19":
        skip_without_go119()
    paths = []
    for k, (phys, huge) in enumerate(MACHINES):
        for seed in (31 + k, 41 + k, 51 + k):
            text = generate("mheap", seed=seed, ops=2500, chunks=[4, 16, 40][seed % 3], go=go)
            p = tmp_path / f"machine-{phys}-{huge}-{seed}.trace"
            p.write_text(with_machine(text, phys, huge))
            paths.append((p, text))
    proc = subprocess.run(
        [str(RUN), "--go", go, "traces", *(str(p) for p, _ in paths)], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    differs = 0
    for p, plain in paths:
        gofile = Path(str(p) + ".go-results")
        assert gofile.exists(), f"Go {go} wrote no results for {p.name}: {proc.stdout}{proc.stderr}"
        rep = pagealloc.TraceReplay(p.read_text())
        rep.run()
        assert (rep.allocator.phys_page_size, rep.allocator.phys_huge_page_size) == (
            rep.phys_page_size, rep.huge_page_size if rep.huge_page_size > rep.phys_page_size else 0)
        assert_same_results(p.name, rep.results_file(), gofile.read_text())
        rep.allocator.verify()
        amd64 = pagealloc.TraceReplay(plain)
        amd64.run()
        differs += amd64.results_file() != rep.results_file()
    assert differs >= len(paths) - 2, f"only {differs} of {len(paths)} traces depend on the machine"


def test_real_workload_identical_through_cli_and_rust_replay(tmp_path):
    """The real Go 1.19 workload (tests/data, 140,033 ops, v2): Go's results,
    the CLI's and the Rust replay example's must be the same file."""
    assert REAL.exists(), f"the real-workload trace is part of the repository: {REAL}"
    skip_without_go119()
    plain = tmp_path / "real.v2.trace"
    plain.write_bytes(gzip.decompress(REAL.read_bytes()))
    proc = subprocess.run([str(RUN), "traces", str(plain)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    go = Path(str(plain) + ".go-results").read_text()
    assert go.count("\n") > 79426  # every logged result, then bounds, chunk and scav lines

    cli = tmp_path / "cli.results"
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "pagealloc"), "replay", str(REAL), "--results", str(cli)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert cli.read_text() == go

    build = subprocess.run(["cargo", "build", "-q", "--example", "replay"], cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr
    rust = tmp_path / "rust.results"
    proc = subprocess.run([str(ROOT / "target" / "debug" / "examples" / "replay"), str(plain), "--reps", "1",
                           "--results", str(rust)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert rust.read_text() == go
