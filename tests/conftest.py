"""Fixtures shared by every test package: a small graph over the hashing encoder, the
real sentence encoder loaded once per session, and the store every store-touching test
runs on (``store_kind``: SQLite and Neo4j, see ``tests/stores.py``).

The model hub must never be contacted from tests; the bundled weights are local.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from hippograph.embeddings import Encoder, HashingEncoder
from hippograph.graph import GraphConfig, MemoryGraph
from tests.neo4j_server import Neo4jServer, java_missing
from tests.stores import KINDS, WHOLE_SUITE, neo4j_marks, open_store, wipe_neo4j

MakeGraph = Callable[..., MemoryGraph]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``store_kind`` once per store (SQLite only when it is
    marked ``sqlite_only``)."""
    if "store_kind" not in metafunc.fixturenames:
        return
    if any("store_kind" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")):
        return  # the test names its stores itself
    only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
    params = [
        pytest.param(kind, id=kind, marks=neo4j_marks() if kind == "neo4j" else ())
        for kind in KINDS
        if kind == "sqlite" or not only_sqlite
    ]
    metafunc.parametrize("store_kind", params, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``runs_last`` (the check that every Neo4j statement ran) go last."""
    items.sort(key=lambda item: item.get_closest_marker("runs_last") is not None)
    default_paths = {str(config.rootpath / path) for path in config.getini("testpaths")}
    asked = {str(config.rootpath / arg) for arg in config.args}
    config.stash[WHOLE_SUITE] = not config.option.keyword and asked <= default_paths


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"neo4j"``; a Neo4j test starts from an empty database."""
    kind: str = request.param
    if kind == "neo4j":
        wipe_neo4j()
    return kind


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The real all-MiniLM-L6-v2 encoder (seconds to load: once per session)."""
    return Encoder()


@pytest.fixture
def hashing_graph(tmp_path: Path) -> Iterator[MemoryGraph]:
    """A MemoryGraph over ``tmp_path / "graph"`` with the tiny hashing encoder."""
    graph = MemoryGraph(tmp_path / "graph", encoder=HashingEncoder(dim=64))
    yield graph
    graph.close()


@pytest.fixture
def hash_encoder() -> HashingEncoder:
    return HashingEncoder(dim=64)


@pytest.fixture
def make_graph(
    tmp_path: Path, hash_encoder: HashingEncoder, store_kind: str
) -> Iterator[MakeGraph]:
    """Open a MemoryGraph over a data directory (default ``tmp_path / "data"``) and the
    store of ``store_kind`` (the SQLite file in that directory, or the Neo4j server):
    tests that take it run once per store.

    Every graph opened through the factory is closed at teardown unless the test closed
    it (``close`` is idempotent). Tests that simulate a crash close only the store.
    """
    opened: list[MemoryGraph] = []

    def factory(
        data_dir: Path | None = None,
        *,
        config: GraphConfig | None = None,
        encoder: object | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> MemoryGraph:
        directory = data_dir or tmp_path / "data"
        graph = MemoryGraph(
            directory,
            encoder=encoder or hash_encoder,  # type: ignore[arg-type]
            config=config,
            store=open_store(store_kind, directory),
            clock=clock,
        )
        opened.append(graph)
        return graph

    yield factory
    for graph in opened:
        # a crash-simulating test may have closed the store under the graph already
        with contextlib.suppress(Exception):
            graph.close()


@pytest.fixture
def own_neo4j(tmp_path: Path) -> Iterator[Neo4jServer]:
    """A Neo4j server of the test's own (to kill or restart), never the suite's shared
    one; skips, with the reason, without Java."""
    reason = java_missing()
    if reason:
        pytest.skip(reason)
    server = Neo4jServer(tmp_path / "neo4j", heap="512m", pagecache="64m")
    server.start()
    try:
        yield server
    finally:
        server.stop()
