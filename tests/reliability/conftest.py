"""Shared fixtures of the reliability tests: the real server as a subprocess on a free
loopback port (ready when ``/readyz`` says so), killed at teardown.

The machinery (``ServerProcess``, ``GraphQLClient``, ``hippograph`` to run one CLI
command) lives in :mod:`hippograph.api.bench.processes`, which ``hippograph bench crash``
uses too; import it from there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hippograph.api.bench.processes import ServerProcess

StartServer = Callable[..., ServerProcess]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def start_server(tmp_path: Path, data_dir: Path) -> Iterator[StartServer]:
    """``start_server(data_dir=None, *, ready=True, store=None, **settings)``:
    ``hippograph serve`` on ``data_dir`` (default the ``data_dir`` fixture) and ``store``
    (Neo4j's variables, e.g. ``tests.stores.store_env(store_kind)``; None: the SQLite
    file) with the hashing encoder and no lifecycle schedule, ``settings`` as
    ``HIPPOGRAPH_*`` (``max_batch="5"``); waits for ``/readyz`` unless ``ready=False``.
    Every server started is killed at teardown; its log is ``tmp_path/serve-N.log``."""
    started: list[ServerProcess] = []

    def start(
        directory: Path | None = None,
        *,
        ready: bool = True,
        store: Mapping[str, str] | None = None,
        **settings: str,
    ) -> ServerProcess:
        log = tmp_path / f"serve-{len(started)}.log"
        server = ServerProcess(directory or data_dir, log, store=store, **settings)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def no_neo4j_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the suite's Neo4j server from a test about the embedded SQLite store: the
    servers and commands it starts read their store from the environment."""
    for name in list(os.environ):
        if name.startswith("NEO4J_"):
            monkeypatch.delenv(name)
