"""The examples in the package docstring run as written."""

import doctest

import pagealloc


def test_package_docstring_examples():
    result = doctest.testmod(pagealloc)
    assert result.attempted >= 5
    assert result.failed == 0


def test_heap_docstring_example():
    import pagealloc.heap

    result = doctest.testmod(pagealloc.heap)
    assert result.attempted >= 2
    assert result.failed == 0


def run_readme_block(after):
    """Runs the first Python block of the README after the text `after`, as
    written; returns what it printed."""
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split(after, 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    return out.getvalue()


def test_readme_go126_example_runs():
    """The README's Go 1.26 example runs as written, and prints what the
    background and forced scavengers do."""
    lines = run_readme_block("### Go 1.26's scavenger beside Go 1.19's").splitlines()
    assert lines[0] == "(0, 0, 0, True)"  # 100 pages freed in generation 0
    assert lines[1] == "0"  # the background cursor learns of frees only at nextgen
    assert int(lines[2]) > 0 and int(lines[3]) >= 0


def test_readme_range_allocator_example_runs():
    """The README's RangeAllocator example runs as written; its errors speak
    offsets and bytes in the RangeAllocator's own page size."""
    import pytest

    assert run_readme_block("`RangeAllocator` brings the same first fit").strip() == (
        "RangeStats(size=2147483648, page_size=4096, in_use=4096, free=2147479552, "
        "largest_free=2146430976, free_runs=2)"
    )
    ra = pagealloc.RangeAllocator(1 << 20, page_size=4096)
    ra.alloc_at(8192, 4096)
    for call, fragment in [
        (lambda: ra.free(12345, 10), "offset 12345 (0x3039) is not a multiple of the page size (4096 bytes)"),
        (lambda: ra.alloc(10, align=3), "align must be a power of two, in bytes, got 3"),
        (lambda: ra.alloc_at(4096, 8192), "the page at offset 0x2000 is already allocated"),
        (lambda: ra.free(0, 4096), "the page at offset 0x0 is not allocated"),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert fragment in str(info.value), str(info.value)
    assert ra.stats() == ra.stats() and ra.stats() != 3


def test_every_readme_python_block_runs(tmp_path, monkeypatch):
    """Every Python block of the README runs as written, in order, in one
    namespace (each builds on the ones before it), as a reader would paste
    them."""
    import re
    from pathlib import Path

    pytest = __import__("pytest")
    pytest.importorskip("PIL.Image", reason="the first example draws heap.png (pagealloc[viz])")
    pytest.importorskip("numpy", reason="the Heap example wraps a span in a NumPy array")
    monkeypatch.chdir(tmp_path)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) >= 8
    ns = {}
    for k, code in enumerate(blocks):
        exec(compile(code, f"README.md, Python block {k}", "exec"), ns)
    assert (tmp_path / "heap.png").stat().st_size > 1000
    ns["heap"].memory_limit = None
