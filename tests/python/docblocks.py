"""The fenced code blocks of the README and the docs pages, as the tests
run them: each block with its language, and the output block that follows
it, if any (a ```text block separated from it by blank lines only)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    page: str  # path relative to the project root
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    output: str | None = None  # the expected output, when a text block follows


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """The page's code blocks in order; an output block is attached to the
    block before it, not listed on its own."""
    lines = page.read_text().split("\n")
    out: list[Block] = []
    i = 0
    last_end = -10
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page}:{start + 1}: unclosed code block")
        code = "\n".join(body) + "\n"
        between = lines[last_end + 1:start]
        if lang == "text" and out and all(not s.strip() for s in between) \
                and out[-1].output is None and out[-1].lang in ("python", "sh"):
            out[-1].output = code
        else:
            out.append(Block(str(page.relative_to(ROOT)), start + 1, lang, code))
        last_end = i
        i += 1
    return out


def matches(expected: str, got: str) -> bool:
    """got equals expected line by line, where `...` inside a line stands for
    any text on that line (timings, process ids), and a line of just `...`
    for any number of whole lines."""
    parts = []
    for line in expected.rstrip("\n").split("\n"):
        if line == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*".join(re.escape(p) for p in line.split("...")) + r"\n")
    return re.fullmatch("".join(parts), got.rstrip("\n") + "\n") is not None


def commands(block: Block) -> list[str]:
    """A shell block's command lines (comment and blank lines left out)."""
    return [line for line in block.code.split("\n") if line.strip() and not line.lstrip().startswith("#")]


def run_shell(cmd: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """One command line under bash, as a reader runs it after the first
    README command: the venv's bin (pagealloc) first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
