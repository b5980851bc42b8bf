"""``hippograph bench encode``: both ways of encoding a mixed call give the same vectors;
the figures themselves are printed, never asserted."""

from __future__ import annotations

import argparse
import json

import pytest

from hippograph.api.bench.encode import MIXES, add_encode_arguments, run_encode_command


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_encode_arguments(parser)
    return parser.parse_args(argv)


def test_bench_encode_reports_each_mix_both_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_encode_command(_parse(["--repeats", "2", "--json"]), None) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "all-MiniLM-L6-v2"
    rows = {(r["queries"], r["notes_with_context"]): r for r in report["mixes"]}
    assert list(rows) == list(MIXES)
    for row in rows.values():
        assert row["max_abs_diff"] < 1e-5, row  # grouping changes no vector
        assert row["one_pass_ms"] > 0 and row["grouped_ms"] > 0
    assert rows[(8, 0)]["passes"] == 1  # queries alone: one pass
    assert rows[(16, 2)]["passes"] >= 2  # queries and notes: split by length


def test_bench_encode_rejects_no_repeats(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_encode_command(_parse(["--repeats", "0"]), None) == 2
    assert "--repeats" in capsys.readouterr().err
