"""Both stores for tests: every test that touches the store runs on SQLite and on a live
Neo4j server (``tests/neo4j_server.py`` starts one for ``make test``).

A test joins by taking the ``store_kind`` fixture (directly, or through a fixture such as
``make_graph`` that takes it); it is then run once per store, ids ``[sqlite]`` and
``[neo4j]``. ``@pytest.mark.sqlite_only`` keeps a test that is about the SQLite file
itself (its journal, its lock, its pages) to SQLite, with the reason in the test.

Each Neo4j test starts from an empty database (the server is shared by the whole run and
tests run one at a time), so fixed namespace names are as safe as on a fresh SQLite file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hippograph.graph.store import GraphStore

__all__ = [
    "KINDS",
    "WHOLE_SUITE",
    "neo4j_marks",
    "neo4j_settings_env",
    "neo4j_skip_reason",
    "open_neo4j",
    "open_store",
    "store_env",
    "store_settings",
    "wipe_neo4j",
]

KINDS = ("sqlite", "neo4j")
# Set on the pytest config when the run collected the whole suite (no paths, no -k):
# only then must every Neo4j statement have run.
WHOLE_SUITE = pytest.StashKey[bool]()


def neo4j_skip_reason() -> str | None:
    """Why the Neo4j half cannot run in this process (None when it can)."""
    if os.environ.get("NEO4J_URI"):
        return None
    return os.environ.get("HIPPOGRAPH_NEO4J_SKIP_REASON") or (
        "NEO4J_URI is not set: run the suite with `make test`, which starts a Neo4j "
        "server (tests/neo4j_server.py), or point NEO4J_URI at one"
    )


def neo4j_marks() -> list[pytest.MarkDecorator]:
    reason = neo4j_skip_reason()
    marks = [pytest.mark.neo4j]
    if reason:
        marks.append(pytest.mark.skip(reason=reason))
    return marks


def neo4j_settings_env() -> dict[str, str]:
    """The variables that make a hippograph process (server, CLI) use the test server."""
    names = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")
    env = {name: os.environ[name] for name in names if os.environ.get(name)}
    if os.environ.get("HIPPOGRAPH_NEO4J_TRACE"):
        env["HIPPOGRAPH_NEO4J_TRACE"] = os.environ["HIPPOGRAPH_NEO4J_TRACE"]
    return env


# The test server's variables as the run started: a test that clears the environment of
# its own process (monkeypatch) still hands them to the hippograph it starts.
_STORE_ENV_AT_START = neo4j_settings_env()


def store_env(kind: str) -> dict[str, str]:
    """The variables that put a hippograph process (``hippograph_env(store=...)``) on
    the store of ``kind``: the test server's for Neo4j, none for SQLite (the file in the
    process's data directory)."""
    return dict(_STORE_ENV_AT_START) if kind == "neo4j" else {}


def store_settings(kind: str) -> dict[str, Any]:
    """Keyword arguments that put ``hippograph.api.settings.Settings`` on the store of ``kind``
    whatever this process's environment says (every Neo4j variable given, None when
    unset, so none is read from the environment)."""
    env = store_env(kind)
    names = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE")
    chosen: dict[str, Any] = {name: env.get(name) for name in names}
    chosen["neo4j_trace"] = env.get("HIPPOGRAPH_NEO4J_TRACE")
    return chosen


def open_neo4j() -> GraphStore:
    """A store on the test server (NEO4J_URI and friends), recording its statements."""
    from hippograph.graph.neo4j_store import Neo4jStore

    trace = os.environ.get("HIPPOGRAPH_NEO4J_TRACE")
    return Neo4jStore(
        os.environ["NEO4J_URI"],
        os.environ.get("NEO4J_USER"),
        os.environ.get("NEO4J_PASSWORD"),
        database=os.environ.get("NEO4J_DATABASE"),
        statement_trace=Path(trace) if trace else None,
    )


def open_store(kind: str, data_dir: Path) -> GraphStore:
    """A store of ``kind``: SQLite in ``data_dir`` or the Neo4j test server."""
    if kind == "neo4j":
        return open_neo4j()
    from hippograph.graph.sqlite_store import SQLiteStore

    data_dir.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(data_dir / "hippograph.db")


@contextmanager
def neo4j_session() -> Iterator[Any]:
    """A plain driver session on the test database, past the store: for tests that
    write what the store never would (a relationship drawn by hand, damage)."""
    import neo4j

    user = os.environ.get("NEO4J_USER")
    auth = (user, os.environ.get("NEO4J_PASSWORD") or "") if user else None
    with (
        neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth) as driver,
        driver.session(database=os.environ.get("NEO4J_DATABASE")) as session,
    ):
        yield session


def wipe_neo4j() -> None:
    """Delete every node and relationship of the test database (schema stays)."""
    with neo4j_session() as session:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
