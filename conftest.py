"""Root pytest plugin: the product's doctests run under the installed import names.

``--doctest-modules`` (pyproject.toml) collects ``graph/memory.py`` and friends by path,
and pytest would import each under its folder name (``graph.memory``): a second copy of
the module beside the ``hippograph.graph.memory`` everything else uses. This wrapper
hands pytest the installed module instead, so each docstring runs against the code the
tests and the service import.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from _pytest.doctest import DoctestModule

ROOT = Path(__file__).resolve().parent
PRODUCT = ("graph", "embeddings", "lifecycle", "api", "hippograph")


def installed_name(path: Path) -> str | None:
    """The ``hippograph.*`` name of a product file, or None for any other file
    (``tests/test_layout.py`` checks it)."""
    try:
        parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    except ValueError:
        return None
    if not parts or parts[0] not in PRODUCT:
        return None
    if parts[-1] == "__init__":
        parts = parts[:-1]
    if parts[0] != "hippograph":
        parts = ("hippograph", *parts)
    return ".".join(parts)


class InstalledDoctestModule(DoctestModule):
    """A doctest collector that imports its file by the installed name."""

    def _getobj(self) -> ModuleType:
        name = installed_name(self.path)
        assert name is not None
        return importlib.import_module(name)


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    collected = yield
    if installed_name(file_path) is None:
        return collected
    return [
        InstalledDoctestModule.from_parent(parent, path=file_path)
        if type(node) is DoctestModule
        else node
        for node in collected
    ]
