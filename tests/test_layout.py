"""The shape of the product code, checked on its source (issue "House in order"):

- no import cycle between product modules, counting every import: module level, under
  ``TYPE_CHECKING`` and inside functions;
- no private name (``_x``) taken from another module, by ``from m import _x`` or by
  ``m._x`` on an imported module;
- product code imports itself only as ``hippograph.*`` and never imports ``tests``;
- no product module over ``MAX_LINES`` lines.

The graph is built with :mod:`ast` from the files, so it sees imports that never run.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("graph", "embeddings", "lifecycle", "api", "hippograph")
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] != "hippograph":
        parts = ("hippograph", *parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def product_files() -> dict[str, Path]:
    files = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            files[module_name(path)] = path
    return files


@dataclass
class Imports:
    modules: set[str] = field(default_factory=set)  # product modules imported
    private: list[str] = field(default_factory=list)  # "line: what" for each private name
    foreign: list[str] = field(default_factory=list)  # top-level graph/api/... or tests


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The product module ``name`` (or its longest known prefix) names, if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def read_imports(module: str, path: Path, known: dict[str, Path]) -> Imports:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = Imports()
    aliases: dict[str, str] = {}  # local name -> product module it is bound to
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in ("graph", "embeddings", "lifecycle", "api", "tests"):
                    found.foreign.append(f"{node.lineno}: import {alias.name}")
                target = resolve(alias.name, known)
                if target:
                    found.modules.add(target)
                    if alias.asname:
                        aliases[alias.asname] = target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] in ("graph", "embeddings", "lifecycle", "api", "tests"):
                found.foreign.append(f"{node.lineno}: from {base} import ...")
            for alias in node.names:
                submodule = resolve(f"{base}.{alias.name}", known)
                if submodule == f"{base}.{alias.name}":
                    found.modules.add(submodule)
                    aliases[alias.asname or alias.name] = submodule
                    continue
                target = resolve(base, known)
                if target is None:
                    continue
                found.modules.add(target)
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.private.append(f"{node.lineno}: from {base} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            found.private.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    found.modules.discard(module)
    return found


@pytest.fixture(scope="module")
def imports() -> dict[str, Imports]:
    known = product_files()
    return {name: read_imports(name, path, known) for name, path in known.items()}


def test_doctests_import_product_files_by_their_installed_names() -> None:
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec is not None and spec.loader is not None
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)
    installed_name = root_conftest.installed_name

    assert installed_name(ROOT / "graph" / "memory.py") == "hippograph.graph.memory"
    assert installed_name(ROOT / "api" / "__init__.py") == "hippograph.api"
    assert installed_name(ROOT / "hippograph" / "files.py") == "hippograph.files"
    assert installed_name(ROOT / "tests" / "conftest.py") is None


def test_the_product_modules_are_found() -> None:
    known = product_files()
    assert "hippograph.graph.memory" in known
    assert "hippograph.api.cli" in known
    assert len(known) > 30


def test_no_import_cycle_with_or_without_type_checking(imports: dict[str, Imports]) -> None:
    graph = nx.DiGraph()
    for module, found in imports.items():
        graph.add_node(module)
        graph.add_edges_from((module, target) for target in found.modules)
    cycles = sorted(nx.simple_cycles(graph), key=len)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join([*c, c[0]]) for c in cycles[:20])


def test_no_private_name_is_imported_across_modules(imports: dict[str, Imports]) -> None:
    taken = [f"{m}:{p}" for m, found in sorted(imports.items()) for p in found.private]
    assert not taken, "private names taken across modules:\n" + "\n".join(taken)


def test_product_code_imports_itself_by_its_installed_names(
    imports: dict[str, Imports],
) -> None:
    foreign = [f"{m}:{p}" for m, found in sorted(imports.items()) for p in found.foreign]
    assert not foreign, "imports of top-level folder names or of tests:\n" + "\n".join(foreign)


def test_no_product_module_is_over_the_line_limit() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in product_files().items()}
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def test_the_checks_see_a_cycle_and_a_private_import(tmp_path: Path) -> None:
    """The reader itself: a made-up pair of modules with a TYPE_CHECKING cycle and a
    private import is caught."""
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hippograph.x.b import B\n"
    )
    b.write_text("import hippograph.x.a as a\n\ndef f():\n    return a._hidden\n")
    known = {"hippograph.x.a": a, "hippograph.x.b": b}
    found_a = read_imports("hippograph.x.a", a, known)
    found_b = read_imports("hippograph.x.b", b, known)
    assert found_a.modules == {"hippograph.x.b"}
    assert found_b.modules == {"hippograph.x.a"}
    assert found_b.private == ["4: a._hidden"]
