"""Every example runs as written: the docstrings' doctests, and each code
block of the README and the docs pages (tests/python/docblocks.py finds them).

- Python blocks run in order, one namespace per page (each builds on the
  ones before it, as a reader pastes them), in a scratch directory; a text
  block right after a block is its output and must match what it printed.
- Shell blocks run line by line under bash in a scratch directory that sees
  the project's examples/, with .venv/bin first on PATH; the few commands a
  test cannot run as a step of itself are listed in NOT_HERE with where
  they run instead, and the test checks that they do.
- Rust blocks are doc tests: the pages that hold them are included into
  src/lib.rs under cfg(doctest), and this file checks that none is missed.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import re
import sys
from pathlib import Path

import pytest

import pagealloc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docblocks import ROOT, blocks, commands, matches, pages, run_shell  # noqa: E402

ALL = [b for p in pages() for b in blocks(p)]
KNOWN_LANGS = {"python", "sh", "rust", "text"}

# Shell commands that are not run by this test, and why; each is checked to
# run where the reason says.
NOT_HERE = {
    "./scripts/test.sh": "the test command itself (CI runs it: .ci/run)",
    "./scripts/demo.sh": "runs setup.sh (reinstalling the package under the running tests), then "
                         "the commands test_demo_output_is_what_the_pages_show runs",
}
# Blocks run by another test, which reads them from the page itself.
RUN_BY = {
    "docs/guides/record.md": "tests/python/test_record.py::test_the_docs_gofmt_recording_runs_as_written",
    "docs/guides/whatif.md": "tests/python/test_whatif.py::test_the_docs_fragment_recording_runs_as_written",
}


def test_package_docstring_examples():
    result = doctest.testmod(pagealloc)
    assert result.attempted >= 5
    assert result.failed == 0


def test_heap_docstring_example():
    import pagealloc.heap

    result = doctest.testmod(pagealloc.heap)
    assert result.attempted >= 2
    assert result.failed == 0


def test_blocks_are_found_and_of_known_languages():
    assert len(ALL) >= 30
    bad = [f"{b.page}:{b.line}: ```{b.lang}" for b in ALL if b.lang not in KNOWN_LANGS]
    assert not bad, "blocks of a language no test runs: " + ", ".join(bad)


PY_PAGES = sorted({b.page for b in ALL if b.lang == "python"})


@pytest.mark.parametrize("page", PY_PAGES)
def test_python_blocks_run_and_print_what_they_show(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "__docs__"}
    for b in (b for b in ALL if b.page == page and b.lang == "python"):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(b.code, f"{b.page}:{b.line}", "exec"), ns)
        if b.output is not None:
            assert matches(b.output, out.getvalue()), (
                f"{b.page}:{b.line} printed\n{out.getvalue()}\nbut the page shows\n{b.output}")
    heap = ns.get("heap")
    if isinstance(heap, pagealloc.Heap):
        heap.memory_limit = None


SH = [b for b in ALL if b.lang == "sh" and b.page not in RUN_BY]


@pytest.mark.parametrize("block", SH, ids=[f"{b.page}:{b.line}" for b in SH])
def test_shell_blocks_run(block, tmp_path):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    printed = []
    for cmd in commands(block):
        bare = cmd.split("#", 1)[0].strip()
        if bare in NOT_HERE:
            print(f"{block.page}:{block.line}: `{bare}` not run here: {NOT_HERE[bare]}")
            continue
        p = run_shell(cmd, tmp_path)
        assert p.returncode == 0, f"{block.page}:{block.line}: `{cmd}` exited {p.returncode}:\n{p.stderr}"
        printed.append(p.stdout)
    if block.output is not None:
        assert matches(block.output, "".join(printed)), "".join(printed)


def test_commands_not_run_here_run_elsewhere():
    assert "exec ./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "./scripts/setup.sh" in demo and ".venv/bin/pagealloc replay" in demo
    for page, test in RUN_BY.items():
        path, name = test.split("::")
        assert f"def {name}(" in (ROOT / path).read_text()
        assert page in (ROOT / path).read_text()


def test_demo_output_is_what_the_pages_show(tmp_path):
    """The commands demo.sh runs after setup.sh, as it runs them; every
    page's block of the demo's output (README.md, docs/index.md) matches
    what the replay prints (the timing line aside). Those are the only
    text blocks that are not the output of the block before them."""
    shown = [b for b in ALL if b.lang == "text"]
    assert {b.page for b in shown} == {"README.md", "docs/index.md"}, [f"{b.page}:{b.line}" for b in shown]
    assert all(b.code.startswith("replayed examples/traces/churn-demo.trace") for b in shown)
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    steps = [line.replace('"$TRACE"', "examples/traces/churn-demo.trace").replace(".venv/bin/", "")
             for line in demo.split("\n") if line.startswith(".venv/bin/pagealloc")]
    assert len(steps) == 2
    p = run_shell(steps[0].replace("heap.png", str(tmp_path / "heap.png")), ROOT)
    assert p.returncode == 0, p.stderr
    got = [line.replace(str(tmp_path / "heap.png"), "heap.png") for line in p.stdout.split("\n")
           if not line.startswith("replay time")]
    for b in shown:
        assert [line for line in b.code.split("\n") if not line.startswith("replay time")] == got, b.page
    p = run_shell(steps[1].replace("heap-rss.png", str(tmp_path / "rss.png")), ROOT, timeout=300)
    assert p.returncode == 0 and (tmp_path / "rss.png").stat().st_size > 1000, p.stderr


def test_every_rust_block_is_a_doc_test():
    lib = (ROOT / "src" / "lib.rs").read_text()
    included = set(re.findall(r'include_str!\("\.\./([^"]+)"\)', lib))
    with_rust = {b.page for b in ALL if b.lang == "rust"}
    assert with_rust, "no Rust blocks found"
    assert with_rust <= included, f"pages with Rust blocks not compiled as doc tests: {with_rust - included}"
    assert "cargo test --doc --features allocator-api2" in (ROOT / "scripts" / "test.sh").read_text()
