"""`pagealloc record`: real Go programs recorded and replayed exactly.

The differential oracle here is the recorded program itself: the hooks log
what each page allocator operation returned in the real run and, at exit,
the final bounds, bitmaps and scavenged bits (TRACE.real); the replay of the
trace must produce the same results file, identical: gofmt over GOROOT/src
and tests/goprog/allocheavy at GOMAXPROCS=1 on Go 1.26.8, allocheavy on Go
1.19 too, and tests/goprog/concurrent at GOMAXPROCS 2, 4 and 8 on both. The converter's handling of interleaved and
cut-short scavenges, truncated logs and bad logs is tested on handmade logs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pagealloc
from pagealloc.__main__ import Check, main
from pagealloc.record import RecordError, make_overlay, toolchain
from pagealloc.record.convert import LogError, convert

ROOT = Path(__file__).resolve().parents[2]
ALLOCHEAVY = ROOT / "tests" / "goprog" / "allocheavy"
GO119 = Path("/usr/lib/go-1.19/bin/go")


def have_go126() -> bool:
    try:
        toolchain("1.26")
        return True
    except RecordError:
        return False


def need(go: str) -> None:
    if go == "1.19" and not GO119.exists():
        pytest.skip(f"Go 1.19 is not at {GO119} (scripts/test.sh installs Debian's golang-1.19)")
    if go == "1.26" and shutil.which("go") is None:
        pytest.skip("no go on PATH to build with Go 1.26 (scripts/test.sh needs it)")


def run_record(tmp: Path, go: str, argv: list[str], cwd: Path, gomaxprocs: str = "1", name: str = "t.trace"):
    """`python -m pagealloc record` as a user runs it; returns the process."""
    env = dict(os.environ, GOMAXPROCS=gomaxprocs)
    cmd = [sys.executable, "-m", "pagealloc", "record", "--go", go, "-o", str(tmp / name), "--", *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def replay_check(trace: Path) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "pagealloc", "replay", str(trace), "--check", f"{trace}.real"],
                       capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def kinds(trace: Path) -> set[str]:
    out = set()
    for line in trace.read_text().splitlines():
        f = line.split("#", 1)[0].split()
        if f and f[0] != "version":
            out.add("scavenge bg" if f[0] == "scavenge" and "bg" in f else f[0])
    return out


# --- real programs ----------------------------------------------------------


@pytest.mark.parametrize("go", ["1.26", "1.19"])
def test_allocheavy_replays_exactly(tmp_path, go):
    need(go)
    p = run_record(tmp_path, go, ["go", "run", "."], ALLOCHEAVY)
    assert p.returncode == 0, p.stderr
    assert "checksum" in p.stdout  # the program's own output passes through
    trace = tmp_path / "t.trace"
    assert f"version {3 if go == '1.26' else 2}" in trace.read_text()
    want = {"grow", "alloc", "free", "scavenge", "cache", "calloc", "flush"}
    if go == "1.26":
        want |= {"scavenge bg", "nextgen", "pad"}
    assert want <= kinds(trace), f"the program did not reach {want - kinds(trace)}"
    rc, out = replay_check(trace)
    assert rc == 0, out
    assert out.rstrip().endswith(": identical"), out
    # --results writes a file cmp can compare with the real one.
    res = tmp_path / "replay.results"
    subprocess.run([sys.executable, "-m", "pagealloc", "replay", str(trace), "--results", str(res)],
                   check=True, capture_output=True)
    assert res.read_bytes() == (tmp_path / "t.trace.real").read_bytes()


CONCURRENT = ROOT / "tests" / "goprog" / "concurrent"


@pytest.mark.parametrize("go", ["1.26", "1.19"])
@pytest.mark.parametrize("procs", ["2", "4", "8"])
def test_a_concurrent_program_replays_exactly_at_any_gomaxprocs(tmp_path, go, procs):
    """Six goroutines allocating at once under a memory limit, the GC, the
    background scavenger and FreeOSMemory: with many Ps every result and
    the final bitmaps equal the real run's."""
    need(go)
    p = run_record(tmp_path, go, ["go", "run", "."], CONCURRENT, gomaxprocs=procs)
    assert p.returncode == 0, p.stderr
    assert "checksum" in p.stdout
    trace = tmp_path / "t.trace"
    rc, out = replay_check(trace)
    assert rc == 0, out
    assert out.rstrip().endswith(": identical"), out
    text = trace.read_text()
    # The run did what the test is about: scavenger steps that other Ps
    # came between and inside of, every op timed.
    assert "stop=" in text and "scavtake" in text, "no interleaved scavenger steps in this run"
    ops = [line for line in text.splitlines() if line and not line.startswith(("#", "version"))]
    assert all(" t=" in line for line in ops)


def test_go_test_is_recorded(tmp_path):
    need("1.26")
    p = run_record(tmp_path, "1.26", ["go", "test", "-run", "TestJSONRounds", "."], ALLOCHEAVY)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr
    rc, out = replay_check(tmp_path / "t.trace")
    assert rc == 0 and "identical" in out, out


def test_the_docs_gofmt_recording_runs_as_written(tmp_path):
    """docs/guides/record.md's three commands, as written (gofmt over
    GOROOT/src at GOMAXPROCS=1: record, replay --check, timeline), print what
    the page shows; the replay is identical to the real run."""
    need("1.26")
    sys.path.insert(0, str(ROOT / "tests"))
    from docblocks import blocks, commands, matches, run_shell

    block = next(b for b in blocks(ROOT / "docs/guides/record.md") if b.lang == "sh")
    cmds = commands(block)
    assert len(cmds) == 3 and "record" in cmds[0] and "--check" in cmds[1] and "timeline" in cmds[2]
    printed = ""
    for k, cmd in enumerate(cmds):
        p = run_shell(cmd, tmp_path, timeout=900)
        if k == 0:
            # gofmt reports the testdata files that do not parse on purpose
            # (status 2), which `go run` turns into 1: passed through.
            assert p.returncode == 1 and "exit status 2" in p.stderr, p.stderr[-2000:]
            printed += "".join(line + "\n" for line in p.stderr.splitlines() if line.startswith("pagealloc record:"))
        else:
            assert p.returncode == 0, p.stdout + p.stderr
            printed += p.stdout
    assert matches(block.output, printed), printed
    trace = tmp_path / "gofmt.trace"
    conv_ops = sum(1 for line in trace.read_text().splitlines() if line and not line.startswith(("#", "version")))
    assert conv_ops > 100_000
    assert (tmp_path / "gofmt-heap.gif").stat().st_size > 10_000


def test_exit_status_and_stderr_pass_through_and_the_trace_is_kept(tmp_path):
    need("1.26")
    p = run_record(tmp_path, "1.26", ["go", "run", ".", "exit3"], ALLOCHEAVY)
    assert p.returncode == 1 and "exit status 3" in p.stderr  # go run's report of os.Exit(3)
    rc, out = replay_check(tmp_path / "t.trace")
    assert rc == 0 and "identical" in out, out  # os.Exit still dumps the final state


def test_a_panicking_program_leaves_a_replayable_trace(tmp_path):
    need("1.26")
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "go.mod").write_text("module p\n\ngo 1.19\n")
    (prog / "main.go").write_text(
        "package main\n\nvar sink [][]byte\n\nfunc main() {\n"
        "\tfor i := 0; i < 300; i++ {\n\t\tsink = append(sink, make([]byte, 1<<16))\n\t}\n"
        "\tpanic(\"on purpose\")\n}\n")
    p = run_record(tmp_path, "1.26", ["go", "run", "."], prog)
    assert p.returncode != 0 and "panic: on purpose" in p.stderr
    assert "the log ends early" in p.stderr
    trace = tmp_path / "t.trace"
    rc, out = replay_check(trace)
    # Every recorded result matches; only the final state is missing.
    assert rc == 1 and "the real run's final state was not recorded" in out, out
    assert "(first difference" not in out, out


def test_a_program_that_does_not_build(tmp_path):
    need("1.26")
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "go.mod").write_text("module p\n\ngo 1.19\n")
    (prog / "main.go").write_text("package main\n\nfunc main() { undefined() }\n")
    p = run_record(tmp_path, "1.26", ["go", "run", "."], prog)
    assert p.returncode == 1
    assert "undefined: undefined" in p.stderr  # the compiler's own message
    assert "recorded nothing" in p.stderr
    assert not (tmp_path / "t.trace").exists()


def test_go_build_then_record_the_binary(tmp_path):
    need("1.26")
    binary = tmp_path / "allocheavy"
    p = run_record(tmp_path, "1.26", ["go", "build", "-o", str(binary), "."], ALLOCHEAVY)
    assert p.returncode == 0 and "built with the hooks" in p.stderr, p.stderr
    # The binary records only when asked: run plainly it logs nothing.
    plain = subprocess.run([str(binary)], capture_output=True, text=True, env=dict(os.environ, GOMAXPROCS="1"))
    assert plain.returncode == 0 and "checksum" in plain.stdout
    p = run_record(tmp_path, "1.26", [str(binary)], tmp_path)
    assert p.returncode == 0, p.stderr
    rc, out = replay_check(tmp_path / "t.trace")
    assert rc == 0 and "identical" in out, out


def test_unsupported_go_versions_are_named(tmp_path):
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho go1.22.4\necho /nonexistent\n")
    fake.chmod(0o755)
    with pytest.raises(RecordError, match=r"go1\.22\.4; the recorder's hooks support Go 1\.19 and 1\.26"):
        toolchain(command=str(fake))
    with pytest.raises(RecordError, match=r"--go 1\.21: the recorder's hooks support Go 1\.19 and 1\.26"):
        toolchain("1.21")


def test_a_command_that_is_not_a_hooked_go_program_records_nothing(tmp_path, capsys):
    need("1.26")
    assert main(["record", "-o", str(tmp_path / "t.trace"), "--", "true"]) == 1
    assert "recorded nothing (was it a Go program built with the hooks?)" in capsys.readouterr().err
    assert main(["record", "--", "go", "vet", "."]) == 2
    assert "record runs `go run`, `go build` or `go test`" in capsys.readouterr().err


def test_a_runtime_without_a_hook_point_is_refused(tmp_path):
    need("1.26")
    tc = toolchain("1.26")
    fake_root = tmp_path / "goroot"
    shutil.copytree(tc.goroot / "src" / "runtime", fake_root / "src" / "runtime",
                    ignore=shutil.ignore_patterns("*_test.go", "testdata"))
    p = fake_root / "src" / "runtime" / "mgcscavenge.go"
    p.write_text(p.read_text().replace("func (s *scavengeIndex) nextGen() {", "func (s *scavengeIndex) nextGen2() {"))
    tc.goroot = fake_root
    out = tmp_path / "overlay"
    out.mkdir()
    with pytest.raises(RecordError, match=r"runtime/mgcscavenge\.go has no `func \(s \*scavengeIndex\) nextGen\(\) \{`"):
        make_overlay(tc, out)


def test_the_overlay_leaves_goroot_alone(tmp_path):
    need("1.26")
    tc = toolchain("1.26")
    src = tc.goroot / "src" / "runtime" / "mpagealloc.go"
    before = src.read_bytes()
    overlay = make_overlay(tc, tmp_path)
    assert src.read_bytes() == before
    text = (tmp_path / "mpagealloc.go").read_text()
    assert "func (p *pageAlloc) allocUnrecorded(npages uintptr)" in text
    assert str(src) in overlay.read_text()


# --- the converter on handmade logs -----------------------------------------

BASE = 0xC000000000


def log(*lines: str) -> str:
    """A hook log: each line but X gets its time (10 ns apart) and P 0 (logged as 1)."""
    timed = [line if line == "X" else f"{line} {10 * i:x} 1" for i, line in enumerate(lines)]
    return "H 1 1000 200000\n" + "\n".join(timed) + "\n"


def bare(trace: str) -> list[str]:
    """The trace's op lines without comments and without t=/p=."""
    return [" ".join(w for w in line.split() if not w.startswith(("t=", "p=")))
            for line in trace.splitlines() if line and not line.startswith("#")]


def test_convert_names_allocations_and_caches():
    c = convert(log(
        f"g {BASE:x} 400000",
        f"a 4 {BASE:x} 8000",
        f"c 77 {BASE + 0x8000:x} fffffffffffffff0 0",
        f"ca 77 2 {BASE + 0x8000 + 4 * 0x2000:x} 0",
        f"f {BASE:x} 4",
        f"f {BASE + 0x8000 + 4 * 0x2000:x} 2",
        "fl 77",
        "ng",
        "X",
    ), "1.26")
    assert bare(c.trace) == ["version 3", f"grow {BASE:#x} 0x400000", "alloc 4", "cache", "calloc 0 2",
                             "free 0", "free 1", "flush 0", "nextgen"]
    # Each op carries when and where Go ran it.
    assert c.trace.splitlines()[-1] == "nextgen t=70 p=0"
    assert pagealloc.TraceReplay(c.trace).times == [0, 10, 20, 30, 40, 50, 60, 70]
    assert c.real.splitlines() == [f"{BASE:#x} 32768", f"cache {BASE + 0x8000:#x} 0xfffffffffffffff0 0x0",
                                   f"{BASE + 0x10000:#x} 0"]
    assert not c.complete  # no final dump (B/C lines) before X


def test_convert_scavenge_calls_whole_split_and_cut_short():
    c = convert(log(
        # A whole call: one op.
        "S 1 10000 0", "sf 1 5 1ff 0 0 0", "st 1 5 1f8 8", "sg 1 5 1f8 8", "E 1 10000",
        # A call another goroutine's free interleaved with between its
        # steps: two ops, the first stopping after its one step.
        f"a 1 {BASE:x} 0",
        "S 1 30000 1", "sf 1 5 1ff 0 0 0", "st 1 5 1f8 8", "sg 1 5 1f8 8",
        f"f {BASE:x} 1",
        "sf 1 4 1ff 0 0 0", "st 1 4 1f0 10", "sg 1 4 1f0 10", "E 1 30000",
        # Cut short by shouldStop after one step.
        "S 2 100000 1", "sf 2 3 1ff 0 0 0", "st 2 3 1fe 2", "sg 2 3 1fe 2", "E 2 4000",
        # Exhausted: the find found nothing.
        "S 2 100000 1", "sf 2 0 0 0 0 0", "E 2 0",
        "S 2 0 1", "E 2 0",
    ), "1.26")
    ops = [line for line in bare(c.trace) if line.startswith("scav")]
    assert ops == ["scavenge 65536 bg", "scavenge 196608 stop=1", "scavenge 131072",
                   "scavenge 1048576 stop=1", "scavenge 1048576", "scavenge 0"]
    assert [r for r in c.real.splitlines() if r.startswith("scavenged")] == [
        "scavenged 65536", "scavenged 65536", "scavenged 131072", "scavenged 16384", "scavenged 0", "scavenged 0"]
    assert c.interleaved_scavenges == 1 and c.split_steps == 0


def test_convert_writes_a_step_other_ps_came_inside_of_part_by_part():
    c = convert(log(
        f"g {BASE:x} 400000",
        # Another P allocates between the find and the take, and frees
        # while the OS releases the run.
        "S 3 10000 1", "sf 3 5 1ff 0 0 0",
        f"a 1 {BASE:x} 0",
        "st 3 5 1f8 8",
        f"f {BASE:x} 1",
        "sg 3 5 1f8 8", "E 3 10000",
        # A find that raced: written with what Go saw and left, followed.
        "S 4 10000 1", "sf 4 5 1ff 1 c0003fe000 1", "se 4 5", "sf 4 0 0 0 0 0", "E 4 0",
    ), "1.26")
    assert bare(c.trace)[2:] == ["scavfind 65536", "alloc 1", "scavtake 0", "free 0", "scavgive 0",
                                 "scavfind 65536 saw=0x5:511 cursor=0xc0003fe000:marked", "scavtake 1",
                                 "scavenge 65536"]
    assert c.real.splitlines() == ["found 0x5 511", f"{BASE:#x} 0", "taken 0x5 504 8",
                                   "found 0x5 511", "taken 0x0 0 0", "scavenged 0"]
    assert (c.split_steps, c.raced_finds, c.interleaved_scavenges) == (2, 1, 1)
    # Its step parts carry their own times.
    assert "scavgive 0 t=60 p=0" in c.trace.splitlines()


def test_a_raced_find_is_followed_and_counted():
    cb = pagealloc.PALLOC_CHUNK_BYTES
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    ci = pagealloc.BASE_CHUNK_IDX
    head = f"version 3\ngrow {base:#x} {2 * cb:#x}\nalloc 1024\nfree 0\n"
    # Computed: the forced cursor is at the freed run's top, chunk ci + 1.
    own = pagealloc.TraceReplay(head + "scavfind 8192\n")
    own.run()
    assert own.results_file().splitlines()[1] == f"found {ci + 1:#x} 511" and own.followed == 0
    # Go's find saw chunk ci (another P had just moved the cursor): the
    # replay follows it, takes from that chunk and counts the difference.
    rep = pagealloc.TraceReplay(head + f"scavfind 8192 saw={ci:#x}:511 cursor={base + cb - 8192:#x}\n"
                                "scavtake 0\nscavgive 0\n")
    rep.run()
    res = rep.results_file().splitlines()
    # (a whole free 2 MiB huge page: 256 pages, not one)
    assert res[1:3] == [f"found {ci:#x} 511", f"taken {ci:#x} 256 256"]
    assert (rep.followed, rep.followed_differed) == (1, 1)
    for bad in ("saw=0x5", "saw=0x5:512 cursor=0x0", "saw=0x5:1", "cursor=0x0:maybe saw=0x5:1"):
        with pytest.raises(ValueError, match="saw|cursor"):
            pagealloc.TraceReplay(f"version 3\nscavfind 8192 {bad}\n")
    with pytest.raises(ValueError, match="line 3: step 0 is not waiting for `scavgive`"):
        pagealloc.TraceReplay("version 3\nscavfind 1\nscavgive 0\n")


def test_convert_truncated_log_keeps_every_whole_op():
    ci = pagealloc.chunk_index(BASE)
    text = log(f"g {BASE:x} 400000", f"a 1 {BASE:x} 2000", f"f {BASE:x} 1", "S 1 10000 1",
               f"sf 1 {ci:x} 0 0 0 0", f"st 1 {ci:x} 0 1")
    c = convert(text + "a 3 c0", "1.26")  # killed in the middle of a line and of a scavenge
    assert c.truncated and not c.complete
    assert bare(c.trace) == ["version 3", f"grow {BASE:#x} 0x400000", "alloc 1", "free 0", "scavfind 65536",
                             "scavtake 0"]
    rep = pagealloc.TraceReplay(c.trace)
    rep.run()
    assert rep.done == 5
    assert rep.results_file().startswith(c.real)  # the real results so far, all of them


def test_convert_refuses_what_a_trace_cannot_say():
    with pytest.raises(LogError, match=r"log line 3 .*no live allocation starts there"):
        convert(log(f"g {BASE:x} 400000", f"f {BASE:x} 1"), "1.26")
    with pytest.raises(LogError, match=r"it was allocated with 2"):
        convert(log(f"g {BASE:x} 400000", f"a 2 {BASE:x} 0", f"f {BASE:x} 1"), "1.26")
    with pytest.raises(LogError, match=r"log line 2: bad number"):
        convert(log("a 1 zz 0"), "1.26")
    with pytest.raises(LogError, match=r"unknown event 'q'"):
        convert(log("q 1"), "1.26")
    with pytest.raises(LogError, match=r"supports 1\.19 and 1\.26"):
        convert(log(), "1.21")


# --- stop=K in traces -------------------------------------------------------


def test_scavenge_stop_replays_only_its_steps():
    cb = pagealloc.PALLOC_CHUNK_BYTES
    base = pagealloc.chunk_base(pagealloc.BASE_CHUNK_IDX)
    head = [f"grow {base:#x} {3 * cb:#x}", "alloc 1536", "free 0"]
    for version, bg in ((3, " bg"), (3, ""), (2, "")):
        def released(extra: str) -> list[int]:
            text = "\n".join([f"version {version}", *head, "nextgen" if version == 3 else "",
                              f"scavenge {1 << 40}{bg if version == 3 else ''}{extra}"]) + "\n"
            rep = pagealloc.TraceReplay(text)
            rep.run()
            return [int(line.split()[1]) for line in rep.results_file().splitlines() if line.startswith("scavenged")]
        # Each chunk takes two steps: its whole free run, then a look that
        # finds nothing left and marks it empty (Go's setEmpty / clear).
        assert released("") == [3 * cb], (version, bg)
        steps = [released(f" stop={k}") for k in range(1, 7)]
        assert steps == [[cb], [cb], [2 * cb], [2 * cb], [3 * cb], [3 * cb]], (version, bg)
    for bad in ("stop=0", "stop=x", "stop=1 stop=2"):
        with pytest.raises(ValueError, match="stop"):
            pagealloc.TraceReplay(f"version 3\nscavenge 1 {bad}\n")


# --- replay --check ---------------------------------------------------------


def test_check_counts_and_exit_status(tmp_path, capsys):
    text = "version 3\ngrow 0xc000000000 0x400000\nalloc 3\nalloc 2\nscavenge 8192\n"
    trace = tmp_path / "t.trace"
    trace.write_text(text)
    rep = pagealloc.TraceReplay(text)
    rep.run()
    good = rep.results_file()
    (tmp_path / "good").write_text(good)
    assert main(["replay", str(trace), "--check", str(tmp_path / "good")]) == 0
    assert "results 3/3 match; final chunks 1/1 in use and 1/1 scavenged match: identical" in capsys.readouterr().out
    lines = good.splitlines()
    lines[1] = "0xc000008000 0"
    bad = "\n".join(lines) + "\n"
    (tmp_path / "bad").write_text(bad)
    assert main(["replay", str(trace), "--check", str(tmp_path / "bad")]) == 1
    out = capsys.readouterr().out
    assert "results 2/3 match (first difference: result 2)" in out and "DIFFERENT" in out
    chk = Check(good, "\n".join(good.splitlines()[:3]))
    assert not chk.identical and "final state was not recorded" in str(chk)
    assert main(["replay", str(trace), "--check", str(tmp_path / "missing")]) == 2
    assert "missing: No such file or directory" in capsys.readouterr().err


# --- timeline ---------------------------------------------------------------


def test_timeline_what_if_keeps_every_address_and_only_scavenging_differs():
    from pagealloc import timeline
    from pagealloc.tracegen import generate

    text = generate("mheap", seed=3, ops=3000, go="1.26")
    assert "\npad " in text and "\nnextgen" in text and " bg" in text
    # The engine converts the trace for the other Go (its one owner).
    a, b = pagealloc.TraceReplay(text), pagealloc.TraceReplay(text, go="1.19")
    other = b.trace_text()
    assert (b.go, b.recorded_go, b.version) == ("1.19", "1.26", 2) and other.startswith("version 2\n")
    assert " bg" not in other and "\nnextgen" not in other and "\npad " not in other
    a.run()
    b.run()
    # Every allocation lands where it did; the pads became allocat lines,
    # allocations the source did not have.
    src = b.source_allocations
    assert src.count(-1) == text.count("\npad ")
    assert a.addresses == [x for x, k in zip(b.addresses, src) if k >= 0]
    assert [k for k in src if k >= 0] == list(range(len(a.addresses)))
    assert a.allocator.pages_in_use == b.allocator.pages_in_use
    pts = timeline.sample(text, 50)
    assert pts[0].op == 0 and pts[-1].op == a.ops and len(pts) <= 51
    grown = sum(e - s for s, e in a.allocator.grown_ranges) * 512 * 8192
    final = pts[-1]
    assert final.in_use + final.free_resident + final.released == grown
    assert final.in_use == a.allocator.pages_in_use * 8192
    assert final.largest_free == a.allocator.largest_free_run * 8192
    assert all(0.0 <= p.fragmentation <= 1.0 for p in pts)
    # Each point knows the least and most in use since the one before: the
    # peak over every op, read from a per-op census, is the points' peak.
    every = pagealloc.TraceReplay(text).census()
    assert max(p.in_use_max for p in pts) == max(every["in_use"])
    assert min(p.in_use_min for p in pts[1:]) == min(every["in_use"])
    assert all(p.in_use_min <= p.in_use <= p.in_use_max for p in pts)
    pts_b = timeline.sample(text, 50, go="1.19")
    assert pts_b[-1].op == pts[-1].op  # numbered by the original trace's ops
    assert [p.in_use for p in pts_b][-1] == final.in_use
    # v1 means the same in both Gos: nothing to convert.
    v1 = pagealloc.TraceReplay("grow 0xc000000000 0x400000\nalloc 1\n", go="1.26")
    assert (v1.version, v1.go, v1.op_index) == (1, "1.19", [0, 1, 2])
    # A many-P recording's step parts and machine headers: the other Go
    # runs each part where it was (its own find: no saw=), on the same
    # machine, leniently (what it takes may differ).
    many = ("version 3\nphyspage 16384\nhugepage 0\ngrow 0xc000000000 0x800000 t=1 p=0\nalloc 700\nfree 0\n"
            "nextgen\nscavfind 1048576 bg saw=0x3000:511 cursor=0xc0007fe000 t=9\nscavtake 0\nalloc 1\n"
            "scavgive 0\nscavenge 65536\n")
    rep = pagealloc.TraceReplay(many, go="1.19", lenient=True)
    other = rep.trace_text()
    assert "saw=" not in other and " bg" not in other and "physpage 16384\nhugepage 0\n" in other
    rep.run()
    assert (rep.go, rep.version, rep.phys_page_size, rep.huge_page_size) == ("1.19", 2, 16384, 0)
    assert rep.done == rep.ops == 8 and rep.op_index == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert rep.times == [1, 1, 1, 9, 9, 9, 9, 9]


def test_timeline_of_a_recording_is_in_seconds():
    from pagealloc import timeline

    text = ("version 3\ngrow 0xc000000000 0x400000 t=0 p=0\nalloc 300 t=1000\nfree 0 t=2000 p=1\n"
            "alloc 5 t=1000000000\n")
    pts = timeline.sample(text, 5)
    # Points fall evenly in time, each after the last op before its moment;
    # the idle second holds no point, and the last run starts after it.
    assert [p.seconds for p in pts] == [0.0, 2e-06, 1.0] and [p.op for p in pts] == [0, 3, 4]
    assert pts[-1].seconds_from == 1.0 and pts[1].in_use_max == 300 * 8192 and pts[1].in_use == 0


def test_timeline_cli_draws_the_chart_and_the_gif(tmp_path, capsys):
    from PIL import Image

    from pagealloc.tracegen import generate

    trace = tmp_path / "t.trace"
    trace.write_text(generate("mheap", seed=2, ops=2000, go="1.26"))
    png, gif = tmp_path / "t.png", tmp_path / "t.gif"
    assert main(["timeline", str(trace), "-o", str(png), "--gif", str(gif), "--frames", "6", "--points", "40"]) == 0
    out = capsys.readouterr().out
    assert f"timeline written to {png}" in out and "(6 frames)" in out
    with Image.open(png) as im:
        assert im.size == (1100, 40 + 4 * (150 + 46) + 10)  # four panels: the what-if included
    with Image.open(gif) as im:
        assert im.n_frames == 6
    assert main(["timeline", str(trace), "-o", str(png), "--points", "1"]) == 2
    assert "--points must be at least 2" in capsys.readouterr().err
    v1 = tmp_path / "v1.trace"
    v1.write_text("grow 0xc000000000 0x400000\nalloc 1\n")
    assert main(["timeline", str(v1), "-o", str(png)]) == 0  # no scavenger: three panels
    with Image.open(png) as im:
        assert im.size == (1100, 40 + 3 * (150 + 46) + 10)
