"""``bench latency`` and ``bench ingest`` run on either store (``--store``), on a tiny
namespace, so their code cannot rot. Speed is measured by the commands, never here."""

from __future__ import annotations

import argparse
import types
from pathlib import Path
from typing import Any

import pytest

from hippograph.api.bench.common import SQLITE, BenchStore, bench_stores
from hippograph.api.bench.ingest import add_ingest_arguments, run_ingest
from hippograph.api.bench.latency import add_latency_arguments, run_latency
from hippograph.embeddings import Encoder
from tests.stores import neo4j_settings_env, open_store, wipe_neo4j


def _bench_store(kind: str) -> BenchStore:
    if kind == "sqlite":
        return SQLITE
    return BenchStore("neo4j", lambda data_dir: open_store("neo4j", data_dir), neo4j_settings_env())


def test_latency_reports_cold_start_and_warm_reopen_on_each_store(
    store_kind: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "bench"
    report: dict[str, Any] = run_latency(
        200, queries=3, workdir=data_dir, progress=False, store=_bench_store(store_kind)
    )
    assert report["store"] == store_kind
    assert report["memories"] == 200
    # memories and entities (at least 16), as read back from the store
    assert report["nodes"] == 200 + 16 and report["entities"] == 16
    assert report["recall_returned_mean"] == 10
    # the cold start rebuilt everything derived from the store; the derived files are
    # back in place afterwards
    assert report["cold_start_rebuilt"] is True
    assert report["cold_start_s"] > 0 and report["warm_reopen_s"] > 0
    assert set(report["cold_start_breakdown_s"]) == {
        "open_store",
        "rebuild_namespace",
        "first_recall",
    }
    assert sorted(p.name for p in (data_dir / "derived").iterdir())
    assert not (data_dir / "derived.aside").exists()
    assert report["activation_agreement_mismatched_nodes"] == 0


def test_latency_refuses_a_store_that_already_holds_the_namespace(
    store_kind: str, tmp_path: Path
) -> None:
    store = _bench_store(store_kind)
    run_latency(60, queries=1, workdir=tmp_path / "first", progress=False, store=store)
    if store_kind == "sqlite":  # a new data directory is a new SQLite file: no clash
        again = run_latency(60, queries=1, workdir=tmp_path / "second", progress=False)
        assert not again["reused_data_dir"]
        return
    with pytest.raises(ValueError, match="already holds namespace 'bench'"):
        run_latency(60, queries=1, workdir=tmp_path / "second", progress=False, store=store)


def test_a_kept_data_dir_whose_store_lost_the_namespace_is_built_again(
    store_kind: str, tmp_path: Path
) -> None:
    """The derived files of a kept ``--data-dir-bench`` outlive a Neo4j server started
    afresh (or a SQLite file deleted): the next run builds the namespace again instead
    of measuring recall over an empty store."""
    store = _bench_store(store_kind)
    data_dir = tmp_path / "kept"
    run_latency(60, queries=1, workdir=data_dir, progress=False, store=store)
    again = run_latency(60, queries=1, workdir=data_dir, progress=False, store=store)
    assert again["reused_data_dir"]
    if store_kind == "sqlite":
        for path in data_dir.glob("hippograph.db*"):  # with its -wal and -shm
            path.unlink()
    else:
        wipe_neo4j()
    rebuilt = run_latency(60, queries=1, workdir=data_dir, progress=False, store=store)
    assert not rebuilt["reused_data_dir"]
    assert rebuilt["memories"] == 60 and rebuilt["recall_returned_mean"] == 10


def test_store_option_needs_neo4j_uri_for_neo4j() -> None:
    no_uri = types.SimpleNamespace(neo4j_uri=None)
    assert [s.name for s in bench_stores("sqlite", no_uri)] == ["sqlite"]
    with pytest.raises(ValueError, match="NEO4J_URI"):
        bench_stores("neo4j", no_uri)
    with pytest.raises(ValueError, match="--store"):
        bench_stores("mongo", no_uri)
    parser = argparse.ArgumentParser()
    add_latency_arguments(parser)
    assert parser.parse_args(["--memories", "100"]).store == "sqlite"
    with pytest.raises(SystemExit):
        parser.parse_args(["--memories", "100", "--store", "mongo"])


def test_ingest_remembers_every_note_with_the_model_on_each_store(
    store_kind: str, encoder: Encoder
) -> None:
    report = run_ingest(30, batch=10, encoder=encoder, stores=[_bench_store(store_kind)])
    figures = report["stores"][store_kind]
    assert figures["stored"] == 30
    assert figures["per_s"] > 0 and report["encode_only_per_s"] > 0
    assert report["encoder"] == encoder.name
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)
    args = parser.parse_args(["--memories", "1k", "--store", "both"])
    assert (args.memories, args.batch, args.store) == (1000, 100, "both")
