"""Crash safety: the service, an import and a lifecycle archive run are killed with
SIGKILL at random moments; every acknowledged write must survive, nothing half-written
may show, and ``hippograph check`` must find store and index agreeing.

The default run does a few kills of each (bounded); ``-m slow`` does twenty of the
server through ``hippograph bench crash``. The random seed of a run is in every
assertion message: rerun with ``HIPPOGRAPH_CRASH_SEED=<seed>`` to replay its delays and
writes (the moment a SIGKILL lands still varies with the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hippograph.api.bench.crash import add_crash_arguments, run_crash_command
from hippograph.api.bench.crash_commands import crash_archive, crash_import
from hippograph.api.bench.crash_server import NAMESPACE, Ledger, crash_server, verify
from hippograph.api.bench.processes import REMEMBER, REMEMBER_MANY, GraphQLClient, ServerProcess
from tests.stores import store_env

pytestmark = pytest.mark.reliability

StartServer = Callable[..., ServerProcess]  # the start_server fixture (conftest.py)


@pytest.fixture
def seed() -> int:
    given = os.environ.get("HIPPOGRAPH_CRASH_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**31)


def _summary(report: dict[str, Any], seed: int) -> str:
    shown = {k: v for k, v in report.items() if k not in {"checks", "verified"}}
    return f"seed {seed}: {json.dumps(shown, default=str)[:4000]}"


def test_every_acknowledged_write_survives_sigkills_of_the_server(
    tmp_path: Path, seed: int, store_kind: str
) -> None:
    report = crash_server(tmp_path, kills=3, seed=seed, store=store_env(store_kind))
    why = _summary(report, seed)
    # rounds 1 and 2 kill a writing server; round 3 one in its graceful shutdown, which
    # may be over before the SIGKILL
    assert report["kills"] - report["kills_in_shutdown"] == 2, why
    assert report["acknowledged_memories"] > 0 and report["acknowledged_associations"] > 0, why
    assert report["rejected"] == [], why
    assert report["problems"] == [], why  # nothing lost, altered, torn or phantom
    assert report["lost"] == 0, why
    # check after each kill (on the killed server's files) and after the graceful stop
    assert len(report["checks"]) == 4, why
    assert report["check_clean"], json.dumps(report["checks"], default=str)
    assert report["stop_exit"] == 0, why
    assert [v["phantoms"] for v in report["verified"]] == [0] * 4, why


def test_the_verification_finds_lost_torn_altered_and_phantom_memories(
    start_server: StartServer, store_kind: str
) -> None:
    # The harness must be able to fail: a ledger that claims more than the server holds.
    server = start_server(store=store_env(store_kind))
    with GraphQLClient(server.base) as client:
        kept = {"id": "kept", "content": "kept as written"}
        client.data(REMEMBER, {"ns": NAMESPACE, "input": kept})
        client.data(REMEMBER, {"ns": NAMESPACE, "input": {"id": "other", "content": "other"}})
        half = [{"id": "half-0", "content": "half 0"}]
        client.data(REMEMBER_MANY, {"ns": NAMESPACE, "inputs": half})
        client.data(REMEMBER, {"ns": NAMESPACE, "input": {"id": "unsent", "content": "x"}})
        ledger = Ledger(
            memories={"kept": "kept as written", "never": "never stored", "other": "changed"},
            associations={("kept", "other")},
            doubtful_batches=[{"half-0": "half 0", "half-1": "half 1"}],
        )
        result = verify(client, ledger)
    assert result["lost"] == ["never"]
    assert result["altered"] == ["other"]
    assert result["lost_associations"] == [("kept", "other")]
    assert result["torn_batches"] == [["half-0", "half-1"]]
    assert result["phantoms"] == 1  # "unsent": in the store, in no ledger


def test_a_killed_import_leaves_whole_batches_and_a_clean_store(
    tmp_path: Path, seed: int, store_kind: str
) -> None:
    # A JSONL import commits batch by batch (max_batch lines each): after a kill the
    # store holds whole batches in file order. An export is imported in one transaction.
    report = crash_import(
        tmp_path, kills=2, seed=seed, memories=1_200, max_batch=400, store=store_env(store_kind)
    )
    why = _summary(report, seed)
    assert report["problems"] == [], why
    assert report["check_clean"], json.dumps(report["checks"], default=str)
    assert [r["file"] for r in report["runs"]] == ["jsonl", "export"], why
    assert report["kills"] >= 1, why  # at least one kill landed before the import ended


def test_a_killed_archive_run_is_finished_by_the_next_run(
    tmp_path: Path, seed: int, store_kind: str
) -> None:
    report = crash_archive(tmp_path, kills=2, seed=seed, memories=600, store=store_env(store_kind))
    why = _summary(report, seed)
    assert report["stubs"] > 0, why  # the uninterrupted run archives something
    assert report["problems"] == [], why  # same end state, nothing lost, check clean
    assert report["check_clean"], json.dumps(report["checks"], default=str)
    assert all(r["lost"] == 0 for r in report["runs"]), why
    assert report["kills"] >= 1, why


@pytest.mark.slow
def test_bench_crash_survives_twenty_server_kills(
    seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_crash_arguments(parser)
    args = parser.parse_args(["--kills", "20", "--seed", str(seed), "--json"])
    code = run_crash_command(args, settings=None)
    report = json.loads(capsys.readouterr().out)
    why = f"seed {seed}: {json.dumps(report, default=str)[:4000]}"
    assert code == 0, why
    assert report["server"]["kills"] == 20, why
    assert report["kills"] >= 20, why
    assert report["acknowledged"] > 0, why
    assert report["lost"] == 0 and report["problems"] == 0 and report["check_clean"], why
