"""``bench vectors`` runs end to end on a tiny set: FAISS and Neo4j's vector index answer
the same queries, the report says how well, and the bench leaves no index behind.

Speed is measured by ``hippograph bench vectors``, never asserted here.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import neo4j
import pytest

from hippograph.api.bench.vectors import INDEX_NAME, NAMESPACE, run_vectors, run_vectors_command
from hippograph.api.settings import Settings
from tests.stores import neo4j_marks, open_neo4j, wipe_neo4j


def _driver() -> Any:
    user = os.environ.get("NEO4J_USER")
    auth = (user, os.environ.get("NEO4J_PASSWORD") or "") if user else None
    return neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=auth)


@pytest.mark.parametrize("_", [pytest.param(None, id="neo4j", marks=neo4j_marks())])
def test_faiss_and_the_neo4j_vector_index_answer_the_same_queries(_: None) -> None:
    wipe_neo4j()
    store = open_neo4j()
    try:
        with _driver() as driver:
            report = run_vectors(60, queries=5, store=store, driver=driver)
            json.dumps(report, allow_nan=False)
            assert report["vectors"] == 60 and report["k"] == 10
            for key in ("faiss_exact", "faiss_hnsw", "neo4j_vector_index"):
                part = report[key]
                assert part["query_ms"]["p50"] > 0, key
                assert part["build_s"] >= 0, key
                assert 0.0 <= part["recall_at_k"] <= 1.0, key
            assert report["faiss_exact"]["recall_at_k"] == 1.0
            neo = report["neo4j_vector_index"]
            assert neo["indexed_memories"] == 60  # every memory written through the store
            assert neo["returned_mean"] == 10
            assert neo["recall_at_k"] >= 0.5  # it finds the same neighbours, mostly
            names = [r["name"] for r in driver.execute_query("SHOW INDEXES YIELD name").records]
            assert INDEX_NAME not in names  # dropped at the end
            # the memories stay: a second run into the same database is refused, unchanged
            with pytest.raises(ValueError, match=NAMESPACE):
                run_vectors(60, queries=5, store=store, driver=driver)
            assert store.stats(NAMESPACE)["tiers"]["working"] == 60
    finally:
        store.close()


def test_bench_vectors_without_neo4j_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NEO4J_URI", raising=False)
    args = argparse.Namespace(vectors=100, queries=5, seed=0, json=True)
    assert run_vectors_command(args, Settings()) == 2
    assert "NEO4J_URI" in capsys.readouterr().err
