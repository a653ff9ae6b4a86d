"""Layers only point down, and no two modules import each other, directly or around a circle.

    cli  ->  dashboard  ->  warehouse  ->  etl  ->  core

(docs/architecture.md). Every import counts, including those inside functions: an import moved
into a function to dodge a circle is still a circle. `if TYPE_CHECKING:` imports never run and
count only for the layer rule.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each package's files live (pyproject.toml maps the top-level folders under funnelboard).
FOLDERS = {
    "funnelboard": ROOT / "funnelboard",
    "funnelboard.etl": ROOT / "etl",
    "funnelboard.warehouse": ROOT / "warehouse",
    "funnelboard.dashboard": ROOT / "dashboard",
    "funnelboard.queries": ROOT / "queries",
    "funnelboard.assets": ROOT / "assets",
}
LAYERS = {  # package prefix -> rank: a module imports only modules of its own rank or below
    "funnelboard": 0,  # the root package: the version, nothing else
    "funnelboard.core": 0,
    "funnelboard.queries": 0,
    "funnelboard.assets": 0,
    "funnelboard.etl": 1,
    "funnelboard.warehouse": 2,
    "funnelboard.dashboard": 3,
    "funnelboard.cli": 4,
    "funnelboard.__main__": 4,
}
# Third-party modules a layer must not touch: the dashboard reads through the warehouse's gateway.
BANNED = {"funnelboard.dashboard": ("duckdb",)}


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "funnelboard" and parts and parts[0] in ("etl", "warehouse", "dashboard", "queries", "assets"):
                continue
            found[".".join((package, *parts))] = path
    return found


MODULES = modules()


def layer(module: str) -> int:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return LAYERS[best]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported name, runs at run time, line) for every import of a module."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node) for n in ast.walk(node)}
    out = []
    for node in ast.walk(tree):
        runs = id(node) not in typing_only
        if isinstance(node, ast.Import):
            out += [(a.name, runs, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.append((sub if sub in MODULES else base, runs, node.lineno))
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports at run time."""
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, runs, _line in imports(module, path):
            if runs and name in MODULES and name != module:
                edges[module].add(name)
    return edges


@pytest.mark.slow
def test_the_walk_sees_every_layer():
    assert len(MODULES) > 60
    for prefix in LAYERS:
        assert any(m == prefix or m.startswith(prefix + ".") for m in MODULES), prefix
    assert "funnelboard.warehouse.pipeline" in graph()["funnelboard.cli.loading"]


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    wrong = []
    for name, _runs, line in imports(module, MODULES[module]):
        if name.split(".")[0] == "funnelboard":
            if layer(name) > layer(module):
                wrong.append(f"line {line}: {name}")
        for prefix, banned in BANNED.items():
            if module.startswith(prefix) and name.split(".")[0] in banned:
                wrong.append(f"line {line}: {name} (banned in {prefix})")
    assert not wrong, f"{module} imports against the layer rule: {wrong}"


@pytest.mark.slow
def test_no_import_circles():
    edges = graph()
    sorter = graphlib.TopologicalSorter(edges)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import circle: {' -> '.join(exc.args[1])}")

