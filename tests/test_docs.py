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


def test_readme_go126_example_runs():
    """The README's Go 1.26 example runs as written, and prints what the
    background and forced scavengers do."""
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Go 1.26's scavenger beside Go 1.19's", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert lines[0] == "(0, 0, 0, True)"  # 100 pages freed in generation 0
    assert lines[1] == "0"  # the background cursor learns of frees only at nextgen
    assert int(lines[2]) > 0 and int(lines[3]) >= 0
