"""The layering of the project's packages: oracle -> components -> golden -> conformance -> benchmarks, and no
import cycle between modules (imports inside functions included, since a deferred import is still a dependency).

``python -m pytest tests/meta/test_architecture.py`` is the proof the docs refer to."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("oracle", "components", "golden", "conformance", "benchmarks")
LAYER = {name: i for i, name in enumerate(PACKAGES)}


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: the project modules it imports}``, from every import statement of its source."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                # ``from package import submodule`` depends on the submodule; ``from module import name`` on
                # the module (the package's own __init__ is never an edge of a submodule import either way).
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                         for alias in node.names]
            else:
                continue
            deps |= {r for r in map(resolve, names) if r is not None and r != module}
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = import_graph()
    graph["oracle.boxes"] = graph["oracle.boxes"] | {"oracle.losses"}  # oracle.losses imports oracle.boxes
    assert ["oracle.boxes", "oracle.losses"] in cycles(graph)


def test_no_arrow_backwards():
    # oracle imports nothing of golden, golden nothing of conformance, conformance nothing of benchmarks.
    backwards = sorted((m, d) for m, deps in import_graph().items() for d in deps
                       if LAYER[d.partition(".")[0]] > LAYER[m.partition(".")[0]])
    assert backwards == []


def test_the_old_contract_paths_work_and_warn():
    import importlib
    import sys

    import pytest

    import components.contract
    import components.dense_calls
    for old, new in (("golden.components", components.contract), ("golden.dense_calls", components.dense_calls)):
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import {new.__name__}"):
            moved = importlib.import_module(old)
        assert moved is new
