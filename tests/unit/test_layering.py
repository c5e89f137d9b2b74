"""The shared core's layering, read from the source: ``blendr`` never imports a role package or the CLI, and
its modules do not import each other in a circle.

Every import counts, also one inside a function (a lazy import is still a dependency); only imports under
``if TYPE_CHECKING:`` are left out of the cycle check, since they never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "blendr"
# The roles and the composition root that wires them: the core depends on none of them.
OUTSIDE_THE_CORE = {"king", "queen", "provider", "blendrctl", "bench", "tests"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _core_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(CORE.rglob("*.py")) if not p.name.endswith(("_pb2.py", "_pb2_grpc.py"))}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, *, runtime_only: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``path``, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> Iterator[tuple[int, str]]:
        for child in ast.iter_child_nodes(node):
            if runtime_only and isinstance(child, ast.If) and _is_type_checking(child):
                yield from (x for stmt in child.orelse for x in visit(ast.Module(body=[stmt], type_ignores=[])))
                continue
            if isinstance(child, ast.Import):
                yield from ((child.lineno, a.name) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                yield from ((child.lineno, f"{base}.{a.name}") for a in child.names)
            yield from visit(child)

    yield from visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The core module an imported name lives in (``blendr.chain.client.ChainClient`` -> ``blendr.chain.client``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def test_the_core_imports_no_role_package_and_not_the_cli() -> None:
    modules = _core_modules()
    assert "blendr.chain.client" in modules and "blendr.store.sqlite" in modules  # the walk sees the tree
    bad = [f"{path.relative_to(REPO)}:{line}: imports {name}"
           for module, path in modules.items()
           for line, name in _imports(module, path, runtime_only=False)
           if name.split(".")[0] in OUTSIDE_THE_CORE]
    assert bad == [], "the shared core must not depend on the roles or the CLI (wire them in blendrctl):\n" + "\n".join(bad)


def test_core_modules_import_each_other_without_cycles() -> None:
    modules = _core_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for _, name in _imports(module, path, runtime_only=True):
            target = _resolve(name, modules)
            if target is not None and target != module:
                edges[module].add(target)
    assert "blendr.chain.deploy" in edges["blendr.devnet"]  # the graph has real edges
    assert find_cycles(edges) == []


@pytest.mark.parametrize(("edges", "cycles"), [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], cycles: list[list[str]]) -> None:
    assert find_cycles(edges) == cycles


def test_the_import_walk_sees_lazy_and_relative_imports_and_skips_type_checking(tmp_path: Path) -> None:
    pkg = tmp_path / "blendr" / "chain"
    pkg.mkdir(parents=True)
    src = pkg / "mod.py"
    src.write_text("from typing import TYPE_CHECKING\n"
                   "from . import types\n"
                   "if TYPE_CHECKING:\n    from king.jobs import Job\n"
                   "def f() -> None:\n    import queen.core\n")
    module = "blendr.chain.mod"
    runtime = {name for _, name in _imports(module, src, runtime_only=True)}
    everything = {name for _, name in _imports(module, src, runtime_only=False)}
    assert runtime == {"typing.TYPE_CHECKING", "blendr.chain.types", "queen.core"}
    assert everything == runtime | {"king.jobs.Job"}
