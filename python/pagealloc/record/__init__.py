"""Record a Go program's page allocator, for an exact replay here.

``pagealloc record -o TRACE -- go run|build|test ARGS...`` builds the program
with an instrumented runtime and runs it. Nothing in GOROOT changes: the
recorder copies the toolchain's own runtime files, renames each hooked
method in the copy (``alloc`` becomes ``allocUnrecorded``, and so on), adds
the hook files of hooks/ that define the old names again as logging
wrappers, and hands the copies to ``go`` with ``-overlay``. The program's
runtime then logs every operation on ``mheap_.pages`` to
``PAGEALLOC_RECORD_DIR/<pid>.log``; convert.py turns that log into a trace
(v3 for Go 1.26, v2 for Go 1.19) and TRACE.real, the results the real run
got, in the results-file format.

Hook points, per Go version, are the functions named in HOOKS; a toolchain
whose sources lack one is refused with the versions supported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .convert import Converted, LogError, convert

SUPPORTED = ("1.19", "1.26")
GO119_ROOT = Path("/usr/lib/go-1.19")
GO126_RELEASE = "go1.26.8"
HOOKS_DIR = Path(__file__).parent / "hooks"

# file -> the definitions renamed <name>Unrecorded (the hook file defines
# <name> again), per Go version.
_RENAMES = {
    "1.19": {
        "mpagealloc.go": [
            "func (p *pageAlloc) grow(base, size uintptr) {",
            "func (p *pageAlloc) alloc(npages uintptr) (addr uintptr, scav uintptr) {",
            "func (p *pageAlloc) free(base, npages uintptr, scavenged bool) {",
        ],
        "mpagecache.go": [
            "func (c *pageCache) alloc(npages uintptr) (uintptr, uintptr) {",
            "func (c *pageCache) flush(p *pageAlloc) {",
        ],
        "mgcscavenge.go": [
            "func (p *pageAlloc) scavenge(nbytes uintptr, shouldStop func() bool) uintptr {",
            "func (s *scavengeIndex) find() (chunkIdx, uint) {",
        ],
    },
    "1.26": {
        "mpagealloc.go": [
            "func (p *pageAlloc) grow(base, size uintptr) {",
            "func (p *pageAlloc) alloc(npages uintptr) (addr uintptr, scav uintptr) {",
            "func (p *pageAlloc) free(base, npages uintptr) {",
            "func (p *pageAlloc) markRandomPaddingPages(base uintptr, npages uintptr) {",
        ],
        "mpagecache.go": [
            "func (c *pageCache) alloc(npages uintptr) (uintptr, uintptr) {",
            "func (c *pageCache) flush(p *pageAlloc) {",
        ],
        "mgcscavenge.go": [
            "func (p *pageAlloc) scavenge(nbytes uintptr, shouldStop func() bool, force bool) uintptr {",
            "func (s *scavengeIndex) find(force bool) (chunkIdx, uint) {",
            "func (s *scavengeIndex) nextGen() {",
        ],
    },
}

# (file, anchor, replacement): calls added where no method can be wrapped,
# in every version.
_INSERTS = [
    # The page cache a refill went into (allocToCache returns it by value);
    # the refill is a write the scavenge index's find can see.
    ("mheap.go", "\t\t\t*c = h.pages.allocToCache()\n",
     "\t\t\tprecWriteBegin()\n\t\t\t*c = h.pages.allocToCache()\n\t\t\tpageallocRecordCache(c)\n"),
    # os.Exit, and a test binary's exit.
    ("runtime.go", "func syscall_Exit(code int) {\n", "func syscall_Exit(code int) {\n\tpageallocRecordExit()\n"),
    # A fatal panic: keep what is buffered.
    ("panic.go", "func fatalpanic(msgs *_panic) {\n", "func fatalpanic(msgs *_panic) {\n\tpageallocRecordFlush()\n"),
    # scavengeOne's parts, each logged where it takes effect under the
    # heap lock: the run given back, scavenged (the take is per version).
    ("mgcscavenge.go", "\t\t\tp.chunkOf(ci).scavenged.setRange(base, npages)\n",
     "\t\t\tp.chunkOf(ci).scavenged.setRange(base, npages)\n\t\t\tpageallocRecordScavRun(\"sg\", ci, base, npages)\n"),
]
# The same, per version: the run taken in use before the heap lock is
# dropped for sysUnused, and a chunk the index is told to skip.
_VERSION_INSERTS = {
    "1.19": [
        ("mgcscavenge.go", '\t\t\t\tthrow("double scavenge")\n\t\t\t}\n',
         '\t\t\t\tthrow("double scavenge")\n\t\t\t}\n\t\t\tpageallocRecordScavRun(\"st\", ci, base, npages)\n'),
        ("mgcscavenge.go", "\tp.scav.index.clear(ci)\n",
         "\tprecWriteBegin()\n\tp.scav.index.clear(ci)\n\tpageallocRecordScavEmpty(ci)\n"),
    ],
    "1.26": [
        ("mgcscavenge.go", "\t\t\tp.update(addr, uintptr(npages), true, true)\n",
         "\t\t\tp.update(addr, uintptr(npages), true, true)\n\t\t\tpageallocRecordScavRun(\"st\", ci, base, npages)\n"),
        ("mgcscavenge.go", "\tp.scav.index.setEmpty(ci)\n",
         "\tprecWriteBegin()\n\tp.scav.index.setEmpty(ci)\n\tpageallocRecordScavEmpty(ci)\n"),
    ],
}
# main's return (the first `exit(0)` of func main in proc.go).
_MAIN_EXIT = re.compile(r"(\nfunc main\(\) \{\n(?:.*\n)*?)(\texit\(0\)\n)")


class RecordError(Exception):
    """The recording could not be made; the message says why."""


@dataclass
class Toolchain:
    go: str  # the go command
    env: dict[str, str]  # the environment it runs with
    version: str  # "1.19" or "1.26"
    release: str  # e.g. "go1.26.8"
    goroot: Path


def _go_env(go: str, env: dict[str, str]) -> tuple[str, Path]:
    try:
        out = subprocess.run([go, "env", "GOVERSION", "GOROOT"], env=env, capture_output=True,
                             text=True, check=True).stdout.split("\n")
    except FileNotFoundError:
        raise RecordError(f"no Go command {go!r}") from None
    except subprocess.CalledProcessError as e:
        raise RecordError(f"{go} env failed: {e.stderr.strip()}") from None
    return out[0].strip(), Path(out[1].strip())


def toolchain(go: str | None = None, command: str = "go") -> Toolchain:
    """The Go to build with: ``go`` names a version (1.19: Debian's
    /usr/lib/go-1.19, never the go on PATH; 1.26: the go on PATH when it is
    Go 1.26, else fetched as go1.26.8), or None for ``command`` as found."""
    env = dict(os.environ)
    env.pop("GOROOT", None)
    if go is None:
        cmd = command
    elif go == "1.19":
        cmd = str(GO119_ROOT / "bin" / "go")
        env["GOTOOLCHAIN"] = "local"
        if not Path(cmd).exists():
            raise RecordError(f"Go 1.19 is not installed at {GO119_ROOT} (Debian: apt-get install golang-1.19)")
    elif go == "1.26":
        cmd = shutil.which("go") or "go"
        release, _ = _go_env(cmd, env) if shutil.which("go") else ("", Path())
        if not release.startswith("go1.26"):
            env["GOTOOLCHAIN"] = GO126_RELEASE
    else:
        raise RecordError(f"--go {go}: the recorder's hooks support Go {' and '.join(SUPPORTED)}")
    release, goroot = _go_env(cmd, env)
    m = re.match(r"go(\d+)\.(\d+)", release)
    version = f"{m.group(1)}.{m.group(2)}" if m else release
    if version not in SUPPORTED:
        raise RecordError(f"{cmd} is {release}; the recorder's hooks support Go "
                          f"{' and '.join(SUPPORTED)} (choose one with --go)")
    return Toolchain(cmd, env, version, release, goroot)


def make_overlay(tc: Toolchain, workdir: Path) -> Path:
    """Writes the hooked runtime copies and the overlay file into workdir;
    returns the overlay file. Refuses a runtime missing a hook point."""
    src = tc.goroot / "src" / "runtime"
    replace: dict[str, str] = {}

    def hooked(name: str, text: str) -> None:
        out = workdir / name
        out.write_text(text)
        replace[str(src / name)] = str(out)

    def missing(name: str, what: str) -> RecordError:
        return RecordError(f"{tc.release}'s runtime/{name} has no `{what.strip()}` to hook; "
                           f"the recorder's hooks support Go {' and '.join(SUPPORTED)}")

    texts: dict[str, str] = {}

    def text_of(name: str) -> str:
        if name not in texts:
            texts[name] = (src / name).read_text()
        return texts[name]

    for name, defs in _RENAMES[tc.version].items():
        text = text_of(name)
        for d in defs:
            if text.count(d) != 1:
                raise missing(name, d)
            # "func (p *pageAlloc) alloc(" -> "func (p *pageAlloc) allocUnrecorded("
            recv, rest = d.split(") ", 1)
            fname, args = rest.split("(", 1)
            text = text.replace(d, f"{recv}) {fname}Unrecorded({args}")
        texts[name] = text
    for name, anchor, repl in [*_INSERTS, *_VERSION_INSERTS[tc.version]]:
        text = text_of(name)
        if text.count(anchor) != 1:
            raise missing(name, anchor)
        texts[name] = text.replace(anchor, repl)
    for name, text in texts.items():
        hooked(name, text)
    proc = (src / "proc.go").read_text()
    proc, n = _MAIN_EXIT.subn(lambda m: m.group(1) + "\tpageallocRecordExit()\n" + m.group(2), proc, count=1)
    if n != 1:
        raise missing("proc.go", "exit(0) in func main")
    hooked("proc.go", proc)
    for name, hook in (("zz_pagealloc_record.go", "record_common.go"),
                       ("zz_pagealloc_record_shared.go", "record_shared.go"),
                       ("zz_pagealloc_record_hooks.go", f"record_go{tc.version}.go")):
        hooked(name, (HOOKS_DIR / hook).read_text())
    overlay = workdir / "overlay.json"
    overlay.write_text(json.dumps({"Replace": replace}, indent=1))
    return overlay


def _cache_dir(tc: Toolchain) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    d = base / "pagealloc" / "record" / tc.release
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class Recording:
    status: int  # the program's exit status
    traces: list[tuple[Path, Converted, int]]  # (trace path, conversion, pid)
    built_only: bool = False


def command_line(argv: list[str], tc: Toolchain, overlay: Path) -> tuple[list[str], bool]:
    """The command to run: ``go run|build|test`` gets the overlay (and, for
    test, -count=1 so that a cached result cannot skip the run); anything
    else is run as it is (a binary built by ``record -- go build``).
    Returns the command and whether it only builds."""
    if not argv:
        raise RecordError("nothing to record: give a command after --, e.g. -- go run ./prog")
    if Path(argv[0]).name != "go":
        return argv, False
    if len(argv) < 2 or argv[1] not in ("run", "build", "test"):
        raise RecordError("record runs `go run`, `go build` or `go test` (or a binary built by "
                          f"`record -- go build`), not `{' '.join(argv[:2])}`")
    extra = [f"-overlay={overlay}"]
    if argv[1] == "test" and not any(a.startswith("-count") for a in argv[2:]):
        extra.append("-count=1")
    return [tc.go, argv[1], *extra, *argv[2:]], argv[1] == "build"


def record(argv: list[str], output: str | os.PathLike[str], go: str | None = None,
           keep_log: bool = False) -> Recording:
    """Builds and runs ``argv`` with the hooks; writes ``output`` and
    ``output.real`` (one pair per recorded process: more than one process
    gets ``output`` for the first, ``output.PID`` beside it for the others).
    The program's stdout and stderr pass through; its exit status is
    returned in the Recording. ``keep_log`` keeps each raw log beside its
    trace as ``TRACE.log``."""
    first = argv[0] if argv else "go"
    tc = toolchain(go, command=first if Path(first).name == "go" else "go")
    work = _cache_dir(tc)
    overlay = make_overlay(tc, work)
    cmd, build_only = command_line(argv, tc, overlay)
    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="pagealloc-record-") as logs:
        env = dict(tc.env)
        env["PAGEALLOC_RECORD_DIR"] = logs
        try:
            status = subprocess.run(cmd, env=env).returncode
        except FileNotFoundError:
            raise RecordError(f"cannot run {cmd[0]!r}: no such file") from None
        found = sorted(Path(logs).glob("*.log"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        traces = []
        header = f"recorded by pagealloc record ({tc.release}): {' '.join(argv)}"
        for i, log in enumerate(found):
            pid = int(log.stem)
            conv = convert(log.read_text(errors="replace"), tc.version,
                           header=f"{header}\npid {pid}, GOMAXPROCS={os.environ.get('GOMAXPROCS', 'default')}")
            path = output if i == 0 else output.with_name(f"{output.name}.{pid}")
            path.write_text(conv.trace)
            Path(f"{path}.real").write_text(conv.real)
            if keep_log:
                shutil.copyfile(log, f"{path}.log")
            traces.append((path, conv, pid))
    return Recording(status, traces, build_only)


__all__ = ["RecordError", "LogError", "Recording", "Toolchain", "SUPPORTED", "convert", "make_overlay",
           "record", "toolchain"]
