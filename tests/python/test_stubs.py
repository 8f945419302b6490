"""The type stubs (_pagealloc.pyi) say what the extension module has: every
class and function of the stubs exists at run time with the same parameters
(names, order, which have defaults), and every public method and function
of the module has a stub."""

import ast
import inspect
from pathlib import Path

import pytest

import pagealloc._pagealloc as ext

STUB = Path(__file__).resolve().parents[2] / "python" / "pagealloc" / "_pagealloc.pyi"


def stub_tree():
    return ast.parse(STUB.read_text())


def stub_params(fn: ast.FunctionDef) -> list[tuple[str, bool]]:
    """(name, has a default) of each parameter but self/cls."""
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    out = [(a.arg, d) for a, d in zip(positional, defaults)]
    out += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return [p for p in out if p[0] not in ("self", "cls")]


def runtime_params(obj) -> list[tuple[str, bool]] | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [
        (p.name, p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]


def is_property(fn: ast.FunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "property")
        or (isinstance(d, ast.Attribute) and d.attr in ("setter", "getter"))
        for d in fn.decorator_list
    )


def stubbed():
    """(qualified name, runtime object, stub FunctionDef) of every stubbed callable."""
    for node in stub_tree().body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, getattr(ext, node.name, None), node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            cls = getattr(ext, node.name, None)
            for item in node.body:
                if not isinstance(item, ast.FunctionDef) or is_property(item):
                    continue
                if item.name.startswith("__") and item.name != "__init__":
                    continue
                target = cls if item.name == "__init__" else getattr(cls, item.name, None)
                yield f"{node.name}.{item.name}", target, item


@pytest.mark.parametrize("name,obj,fn", list(stubbed()), ids=lambda v: v if isinstance(v, str) else "")
def test_stub_matches_runtime(name, obj, fn):
    assert obj is not None, f"{name} is stubbed but the module has no such thing"
    got = runtime_params(obj)
    if got is None:
        pytest.skip(f"{name}: the runtime gives no signature to compare")
    assert stub_params(fn) == got, f"{name}: stub {stub_params(fn)}, runtime {got}"


def test_every_public_callable_is_stubbed():
    stubs = {name for name, _, _ in stubbed()}
    props = set()
    for node in stub_tree().body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and is_property(item):
                    props.add(f"{node.name}.{item.name}")
                elif isinstance(item, (ast.AnnAssign,)) and isinstance(item.target, ast.Name):
                    props.add(f"{node.name}.{item.target.id}")
    missing = []
    for cname in dir(ext):
        obj = getattr(ext, cname)
        if cname.startswith("_"):
            continue
        if inspect.isclass(obj) and obj.__module__ == ext.__name__:
            for mname, member in vars(obj).items():
                if mname.startswith("_") or not callable(member):
                    continue
                q = f"{cname}.{mname}"
                if q not in stubs and q not in props:
                    missing.append(q)
        elif callable(obj) and not inspect.isclass(obj) and cname not in stubs:
            missing.append(cname)
    assert not missing, f"no stub for {missing}"


def test_public_values_show_themselves():
    """Every public class's repr says what it holds (not Python's default
    `<... object at 0x...>`), and value types compare by value."""
    import pagealloc as p

    pa = p.PageAlloc()
    pa.grow(p.chunk_base(p.BASE_CHUNK_IDX), p.PALLOC_CHUNK_BYTES)
    heap = p.Heap(max_bytes=1 << 30)
    span = heap.alloc(1)
    ra = p.RangeAllocator(1 << 20)
    values = [
        pa, pa.stats(), heap, span, heap.stats(), pa.alloc_to_cache(), p.PallocBits(5),
        p.layout("amd64"), p.TraceReplay("version 3\ngrow 0x3000000000 0x400000\n"), ra, ra.stats(),
    ]
    for v in values:
        r = repr(v)
        assert " object at 0x" not in r, r
        assert type(v).__name__ in r, r
    assert "go=1.26" in repr(pa) and "go=1.26" in repr(values[8])
    assert ra.stats() == p.RangeAllocator(1 << 20).stats()
    assert p.PallocBits(5) == p.PallocBits(5)
    span.free()
