"""``bench lifecycle`` runs on each store at a tiny size: every job runs, the report
says what each did, and a second run of the jobs changes nothing.

What the jobs save and keep is measured by ``hippograph bench lifecycle``, never
asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hippograph.api.bench.common import BenchStore
from hippograph.api.bench.lifecycle import SQLITE, run_lifecycle_bench
from tests.stores import open_store


def _bench_store(kind: str, data_dir: Path) -> BenchStore:
    if kind == "sqlite":
        return SQLITE
    return BenchStore("neo4j", lambda _dir: open_store("neo4j", data_dir), {})


def test_every_job_runs_and_a_second_run_changes_nothing(store_kind: str, tmp_path: Path) -> None:
    report = run_lifecycle_bench(600, probes=20, store=_bench_store(store_kind, tmp_path))
    json.dumps(report, allow_nan=False)
    assert report["store"] == store_kind
    assert set(report["jobs"]) == {"decay", "tiering", "dedup", "consolidate", "archive"}
    assert report["jobs"]["dedup"]["counts"]["merged"] > 0  # the generated duplicates
    assert report["jobs"]["tiering"]["counts"]["archived"] > 0
    assert report["second_run_changed"] == {}
    assert report["targets_met"]["second_run_changes_nothing"]
    assert report["probes"] == 20 and report["recalled_before"] > 0
    before, after = report["bytes"]["before"], report["bytes"]["after"]
    assert after["index"] < before["index"]  # archived memories left the index
    # the SQLite file's pages are counted; Neo4j's store size is not visible over Bolt
    assert (before["store"] is None) == (store_kind == "neo4j")


def test_a_store_that_holds_the_namespace_is_refused(store_kind: str, tmp_path: Path) -> None:
    # one store shared by both runs (a Neo4j database; here also one SQLite file)
    shared = tmp_path / "shared"
    store = BenchStore(store_kind, lambda _dir: open_store(store_kind, shared), {})
    first = run_lifecycle_bench(300, probes=5, store=store)
    with pytest.raises(ValueError, match="already holds namespace"):
        run_lifecycle_bench(300, probes=5, store=store)
    opened = open_store(store_kind, shared)
    try:  # the refused run wrote nothing: the memories are the first run's survivors
        after = sum(opened.stats("bench")["tiers"].values())
        assert after == sum(first["tiers_after"].values())
    finally:
        opened.close()
