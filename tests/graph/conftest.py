"""Fixtures shared by the graph tests: a deterministic encoder and a MemoryGraph factory.

Defined here rather than in ``tests/conftest.py`` so these tests depend on nothing
outside ``tests/graph``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from embeddings import HashingEncoder
from graph import GraphConfig, MemoryGraph

MakeGraph = Callable[..., MemoryGraph]


@pytest.fixture
def hash_encoder() -> HashingEncoder:
    return HashingEncoder(dim=64)


@pytest.fixture
def make_graph(tmp_path: Path, hash_encoder: HashingEncoder) -> Iterator[MakeGraph]:
    """Open a MemoryGraph over a data directory (default ``tmp_path / "data"``).

    Every graph opened through the factory is closed at teardown unless the test closed
    it (``close`` is idempotent). Tests that simulate a crash close only the store.
    """
    opened: list[MemoryGraph] = []

    def factory(
        data_dir: Path | None = None,
        *,
        config: GraphConfig | None = None,
        encoder: object | None = None,
    ) -> MemoryGraph:
        graph = MemoryGraph(
            data_dir or tmp_path / "data",
            encoder=encoder or hash_encoder,  # type: ignore[arg-type]
            config=config,
        )
        opened.append(graph)
        return graph

    yield factory
    for graph in opened:
        # a crash-simulating test may have closed the store under the graph already
        with contextlib.suppress(Exception):
            graph.close()
