"""Load: many GraphQL clients at once against the real server, and nothing lost.

The server is :mod:`hippograph.api.bench.load_server`'s: a separate process serving a
synthetic namespace written straight to a real SQLite data directory, on a loopback port;
the clients are :mod:`hippograph.api.bench.load_driver`'s asyncio + httpx driver. The
default run loads a small namespace for a few seconds and then reads back every remember
the server acknowledged, through the service and, after a clean shutdown, from the data
directory; the slow run is the issue's full form (100k memories, 50 clients, 60 s) and
asserts no errors. No assertion is about speed: the figures are printed by ``hippograph
bench load``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from hippograph.api.bench.load import (
    add_load_arguments,
    prepare,
    run_load,
    run_load_command,
    synthetic_texts,
)
from hippograph.api.bench.load_driver import drive
from hippograph.api.bench.load_server import serving
from hippograph.api.bench.synthetic import DIM, NAMESPACE
from hippograph.embeddings import Encoder, HashingEncoder
from hippograph.graph import MemoryGraph

# about the embedded SQLite store (the load driver, the data-dir lock)
pytestmark = [pytest.mark.reliability, pytest.mark.usefixtures("no_neo4j_env")]

MEMORY = """
query Memory($ns: String!, $id: ID!) {
  memory(namespace: $ns, id: $id) { id content sessionId }
}"""


def _small_namespace(tmp_path: Path, memories: int) -> tuple[Path, list[str], list[str]]:
    data_dir = tmp_path / "data"
    prepare(data_dir, memories, seed=0)
    queries, words = synthetic_texts(memories, seed=0)
    return data_dir, queries, words


def _drive(url: str, queries: list[str], words: list[str], **options: Any) -> Any:
    """The load driver's clients against ``url``, on the bench namespace."""
    return asyncio.run(drive(url, namespace=NAMESPACE, queries=queries, words=words, **options))


def test_short_load_loses_no_acknowledged_memory(tmp_path: Path) -> None:
    data_dir, queries, words = _small_namespace(tmp_path, 2_000)
    with serving(data_dir, log_path=tmp_path / "server.log") as served:
        result = _drive(served.url, queries, words, clients=8, seconds=5.0, seed=1)
        assert result.errors == 0, result.error_samples
        ops = result.report()["ops"]
        assert ops["recall"]["count"] > 0 and ops["remember"]["count"] > 0
        ids = [memory_id for memory_id, _ in result.acknowledged]
        assert len(ids) == ops["remember"]["count"] == len(set(ids))
        # readable through the service while it still runs
        unreadable = []
        with httpx.Client(base_url=served.url, timeout=30) as http:
            for memory_id, content in result.acknowledged:
                body = http.post(
                    "/graphql",
                    json={"query": MEMORY, "variables": {"ns": NAMESPACE, "id": memory_id}},
                ).json()
                found = (body.get("data") or {}).get("memory")
                if body.get("errors") or not found or found["content"] != content:
                    unreadable.append((memory_id, body))
        assert unreadable == []
    assert served.exit_code == 0, served.log_path.read_text()
    # and in the data directory after a clean shutdown: each one, and nothing else new
    with MemoryGraph(data_dir, encoder=HashingEncoder(dim=DIM)) as graph:
        lost = [
            memory_id
            for memory_id, content in result.acknowledged
            if (stored := graph.get(NAMESPACE, memory_id)) is None or stored.content != content
        ]
        assert lost == []
        assert graph.stats(NAMESPACE)["memories"] == 2_000 + len(result.acknowledged)


def test_the_bench_serves_with_the_real_model(tmp_path: Path, encoder: Encoder) -> None:
    """``bench load``'s default encoder is the model: the namespace the generator wrote
    (indexes saved under the hashing encoder's name) is served without a model mismatch,
    and what the clients remember is embedded by the model."""
    data_dir, queries, words = _small_namespace(tmp_path, 300)
    with (
        pytest.raises(ValueError, match="encoder must be one of minilm, hashing"),
        serving(data_dir, encoder="bert"),
    ):
        pass
    with serving(data_dir, encoder="minilm", log_path=tmp_path / "server.log") as served:
        result = _drive(
            served.url, queries, words, clients=4, seconds=2.0, recall_share=0.5, seed=2
        )
    assert result.errors == 0, result.error_samples
    assert served.exit_code == 0, served.log_path.read_text()
    assert result.acknowledged, result.report()
    with MemoryGraph(data_dir, encoder=encoder) as graph:  # the model's name: no mismatch
        memory_id, content = result.acknowledged[0]
        [stored] = graph.store.get(NAMESPACE, [memory_id], embeddings=True)
        assert stored.embedding is not None
        expected = encoder.encode_one(content)
        assert float(np.dot(stored.embedding, expected)) == pytest.approx(1.0, abs=1e-3)


def test_graphql_errors_are_counted_per_operation(tmp_path: Path) -> None:
    """The zero-error check above can fail: a rejected recall (k=0) is an error."""
    data_dir, queries, words = _small_namespace(tmp_path, 200)
    with serving(data_dir, log_path=tmp_path / "server.log") as served:
        result = _drive(served.url, queries, words, clients=2, seconds=1.0, recall_share=0.5, k=0)
    report = result.report()
    assert report["warmup_errors"] == 2  # the untimed recall of each client
    assert report["ops"]["recall"]["count"] > 0
    assert report["ops"]["recall"]["errors"] == report["ops"]["recall"]["count"]
    assert report["ops"]["remember"]["errors"] == 0
    assert report["errors"] == 2 + report["ops"]["recall"]["count"]
    assert all("GraphQL errors" in sample for sample in report["error_samples"])


def test_think_time_paces_each_client(tmp_path: Path) -> None:
    """With a think time a client pauses at least half of it between requests, so two
    clients in 1.5 s at 300 ms send at most 2 * (1 + 1.5 / 0.15) requests (without it,
    hundreds); every one still answers."""
    data_dir, queries, words = _small_namespace(tmp_path, 200)
    with serving(data_dir, log_path=tmp_path / "server.log") as served:
        result = _drive(served.url, queries, words, clients=2, seconds=1.5, think_ms=300.0)
    report = result.report()
    assert report["think_ms"] == 300.0
    assert 2 <= result.requests <= 22, report
    assert result.errors == 0, result.error_samples


def test_a_server_that_never_answers_gives_timeouts_and_the_run_still_ends() -> None:
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        result = _drive(
            f"http://127.0.0.1:{port}",
            ["kalomi"],
            ["kalomi"],
            clients=2,
            seconds=0.3,
            timeout_s=0.2,
        )
    assert result.requests > 0
    assert result.errors == result.requests + 2  # every request, and both warm-ups
    assert all("timeout" in sample for sample in result.error_samples)


def test_the_driver_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        _drive("http://example.com", ["a"], ["a"], seconds=1)


@pytest.mark.parametrize(
    "argv",
    [
        ["--memories", "10"],
        ["--clients", "0"],
        ["--seconds", "0"],
        ["--recall-share", "1.5"],
        ["--timeout", "-1"],
        ["--think-ms", "-5"],
    ],
)
def test_the_command_rejects_bad_arguments(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    assert run_load_command(parser.parse_args(argv), None) == 2
    assert "hippograph: --" in capsys.readouterr().err


def test_the_command_will_not_build_over_a_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    args = parser.parse_args(["--memories", "2000", "--data-dir-bench", str(tmp_path)])
    assert run_load_command(args, None) == 2
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_full_load_100k_memories_50_clients_60_seconds_has_no_errors() -> None:
    report = run_load(100_000, clients=50, seconds=60.0)
    print(report)  # the figures, for whoever runs the slow tests
    assert report["errors"] == 0, report["error_samples"]
    assert report["ops"]["recall"]["count"] > 0 and report["ops"]["remember"]["count"] > 0
    assert report["acknowledged_remembers"] == report["ops"]["remember"]["count"]
    assert report["server_exit_code"] == 0
