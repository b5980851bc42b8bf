"""Query plans of the SQLite statements on the hot paths (remember, recall, the access
write-back): none may read a whole namespace or a whole table to answer a point lookup.

A plan is data-independent here (the store runs no ANALYZE), so a small database shows
the plan a large one gets. The regression this guards against: ``node_ids`` answered
``namespace = ? AND seq IN (...)`` from the (namespace, id) index, reading every row of
the namespace (13 ms per call at 100k memories, on every remember and recall).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from hippograph.embeddings import HashingEncoder
from hippograph.graph import MemoryGraph, MemoryInput, SQLiteStore

# about SQLite's query planner and the SQLite file: nothing here applies to Neo4j
pytestmark = pytest.mark.sqlite_only


class _Traced(SQLiteStore):
    """A SQLiteStore that records every statement its connections run (bound values
    expanded, as SQLite's trace gives them)."""

    def __init__(self, path: Path) -> None:
        self.statements: set[str] = set()
        self._seen = threading.Lock()
        super().__init__(path)
        self._db.set_trace_callback(self._note)

    def _note(self, sql: str) -> None:
        with self._seen:
            self.statements.add(sql)

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        db.set_trace_callback(self._note)
        return db


def _bad_steps(db: sqlite3.Connection, sql: str) -> list[str]:
    """The plan steps of ``sql`` that read a table, or one namespace of it, whole."""
    bad = []
    for *_, detail in db.execute("EXPLAIN QUERY PLAN " + sql):
        if detail.startswith(("SCAN nodes", "SCAN associations")) or detail.endswith(
            "(namespace=?)"
        ):
            bad.append(detail)
    return bad


@pytest.fixture
def traced(tmp_path: Path) -> tuple[MemoryGraph, _Traced]:
    store = _Traced(tmp_path / "data" / "hippograph.db")
    graph = MemoryGraph(tmp_path / "data", encoder=HashingEncoder(dim=64), store=store)
    yield graph, store
    graph.close()


def test_hot_path_statements_use_keys_not_namespace_scans(
    traced: tuple[MemoryGraph, _Traced], tmp_path: Path
) -> None:
    graph, store = traced
    topics = ["harbour ferry timetable", "violin lesson tuesday", "garden tomato blight"]
    for ns in ("alpha", "beta"):  # two namespaces: a namespace-only search is not a key
        graph.remember_many(
            ns,
            [
                MemoryInput(
                    f"{topics[i % 3]} note {i} with Lisbon and Oslo", session_id=f"s{i % 4}"
                )
                for i in range(120)
            ],
        )
    store.statements.clear()  # from here: the steady-state hot paths only
    for i in range(6):
        graph.remember("alpha", f"{topics[i % 3]} follow-up {i} in Lisbon", session_id="s1")
        results = graph.recall("alpha", topics[i % 3], k=5)
        assert results, "the recall found nothing: the workload does not exercise the paths"
    graph.checkpoint()  # the access write-back (recency, counts, Hebbian weights)

    checked = [
        s for s in store.statements if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE"))
    ]
    assert any("seq IN" in s for s in checked), "the recall path ran no seq lookup"
    assert any(s.lstrip().upper().startswith("UPDATE") for s in checked), "no write-back ran"
    plans = sqlite3.connect(tmp_path / "data" / "hippograph.db")
    try:
        problems = {s[:160]: _bad_steps(plans, s) for s in checked}
    finally:
        plans.close()
    problems = {s: bad for s, bad in problems.items() if bad}
    assert problems == {}


def test_the_plan_check_flags_a_namespace_scan(tmp_path: Path) -> None:
    """The check itself: the statement ``node_ids`` used to run is flagged."""
    store = SQLiteStore(tmp_path / "hippograph.db")
    store.close()
    db = sqlite3.connect(tmp_path / "hippograph.db")
    try:
        old = "SELECT seq, id FROM nodes WHERE namespace = 'a' AND seq IN (1, 2, 3)"
        new = "SELECT seq, id FROM nodes WHERE +namespace = 'a' AND seq IN (1, 2, 3)"
        assert _bad_steps(db, old) == [
            "SEARCH nodes USING COVERING INDEX sqlite_autoindex_nodes_1 (namespace=?)"
        ]
        assert _bad_steps(db, new) == []
    finally:
        db.close()
