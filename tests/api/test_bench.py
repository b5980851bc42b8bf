"""The latency benchmark runs end to end on a small namespace and reports what it must.

Speed is measured by ``hippograph bench latency``, never asserted here.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import pytest

from hippograph.api.bench.latency import add_latency_arguments, run_latency, run_latency_command

LATENCY_KEYS = (
    "recall_ms",
    "activation_ms",
    "networkx_activation_ms",
    "brute_force_seed_ms",
    "index_seed_ms",
    "fts_seed_ms",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("bench")
    return run_latency(2000, queries=20, workdir=workdir, progress=False)


def test_reports_the_promised_keys(report: dict[str, Any]) -> None:
    assert report["memories"] == 2000
    assert report["queries"] == 20
    for key in (*LATENCY_KEYS, "load_s", "rss_mb", "build_s", "index_kind"):
        assert key in report, key
    assert report["index_kind"] == "exact"  # 2000 < hnsw_threshold
    json.dumps(report, allow_nan=False)  # JSON-ready, nothing infinite or NaN


def test_latencies_are_positive_finite_and_ordered(report: dict[str, Any]) -> None:
    for key in LATENCY_KEYS:
        p50, p99 = report[key]["p50"], report[key]["p99"]
        assert math.isfinite(p50) and p50 > 0, key
        assert math.isfinite(p99) and p99 >= p50, key
    for key in ("load_s", "rss_mb", "peak_rss_mb"):
        assert math.isfinite(report[key]) and report[key] > 0, key
    assert all(v >= 0 for v in report["build_s"].values())


def test_array_and_networkx_activation_agree(report: dict[str, Any]) -> None:
    assert report["activation_agreement_max_abs_diff"] < 1e-9
    assert report["activation_agreement_mismatched_nodes"] == 0


def test_the_graph_is_the_one_described(report: dict[str, Any]) -> None:
    # ~10 associations per memory: FOLLOWS in sessions, SIMILAR_TO, MENTIONS of entities
    assert set(report["edges_by_type"]) == {"FOLLOWS", "SIMILAR_TO", "MENTIONS"}
    assert 7 * 2000 <= report["edges"] <= 12 * 2000
    assert report["entities"] == 2000 // 20
    assert report["recall_returned_mean"] == 10
    # sentence vectors for a third of the memories (3 each), a context vector for every
    # memory that follows another in its session (all but ~1 in 20)
    assert 2000 * (1 + 0.8) <= report["passage_vectors"] <= 2000 * (1 + 1.2)


def test_command_prints_json_and_reuses_a_kept_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = run_latency(200, queries=3, workdir=tmp_path, progress=False)
    parser = argparse.ArgumentParser()
    add_latency_arguments(parser)
    args = parser.parse_args(
        ["--memories", "0.2k", "--queries", "3", "--json", "--data-dir-bench", str(tmp_path)]
    )
    assert args.memories == 200
    assert run_latency_command(args, settings=None) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["memories"] == 200
    assert not first["reused_data_dir"] and again["reused_data_dir"]
    assert again["build_s"] == first["build_s"]
    with pytest.raises(ValueError, match="not empty"):
        run_latency(300, queries=3, workdir=tmp_path, progress=False)


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="memories"):
        run_latency(10, progress=False)
    parser = argparse.ArgumentParser()
    add_latency_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--memories", "lots"])
