"""Backup and restore: an online backup taken under write load restores every write
acknowledged before it began, with the same recall; incremental backups restore exactly
the final state; a point-in-time restore lands exactly on the requested time; a damaged
backup is found by ``backup --verify``; a restore never overwrites a data directory.

Everything runs on real SQLite files in ``tmp_path``, with the hashing encoder; one
test drives a real uvicorn server over loopback with GraphQL writers while the
``hippograph backup`` command runs beside it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from hippograph.api import backup, backup_files, restore
from hippograph.api.app import create_app
from hippograph.api.cli import main
from hippograph.api.settings import DataDirInUse, Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import Link, MemoryGraph, MemoryInput, RecallContext, SQLiteStore, Tier
from hippograph.graph.sqlite_store import snapshot
from hippograph.lifecycle.check import check
from hippograph.lifecycle.runner import run_jobs

pytestmark = pytest.mark.reliability

DIM = 64
QUERIES = ["Alice in Paris", "coffee by the river", "Bob climbs the mountain", "tea with Carol"]
AT = datetime(2030, 1, 1, tzinfo=UTC)  # the recall clock: results do not drift with time
WORDS = (
    "alpha beta gamma delta river mountain coffee tea garden station letter concert "
    "Paris London Berlin Alice Bob Carol Dave"
).split()


@pytest.fixture(autouse=True)
def _no_machine_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HIPPOGRAPH_* setting leaks in from the machine running the tests, nor the
    suite's Neo4j server: backup and restore are of the SQLite store (Neo4j has
    neo4j-admin), and the servers and commands these tests start must use that file."""
    for name in list(os.environ):
        if name.startswith(("HIPPOGRAPH_", "NEO4J_")):
            monkeypatch.delenv(name)


def _graph(data_dir: Path, **store: Any) -> MemoryGraph:
    encoder = HashingEncoder(dim=DIM)
    if store:
        return MemoryGraph(
            data_dir, encoder=encoder, store=SQLiteStore(data_dir / "hippograph.db", **store)
        )
    return MemoryGraph(data_dir, encoder=encoder)


def _text(rnd: random.Random, i: int) -> str:
    words = " ".join(rnd.choice(WORDS) for _ in range(7))
    return f"{words}. {rnd.choice(WORDS)} met {rnd.choice(WORDS)} on day {i}."


def _seed(graph: MemoryGraph, namespace: str, count: int, seed: int = 0) -> list[str]:
    rnd = random.Random(seed)
    ids: list[str] = []
    for start in range(0, count, 20):
        batch = [
            MemoryInput(
                _text(rnd, start + j),
                session_id=f"s{(start + j) % 4}",
                links=[Link(ids[-1])] if ids and j == 0 else [],
            )
            for j in range(min(20, count - start))
        ]
        ids.extend(m.id for m in graph.remember_many(namespace, batch))
    return ids


def _recall(graph: MemoryGraph, namespace: str) -> list[list[tuple[Any, ...]]]:
    """Each query's answer, every field that could differ: ids, scores, parts, paths. The
    hot tiers only: default recall may rehydrate from the archive, a write."""
    return [
        [
            (
                r.memory.id,
                r.score,
                sorted(r.parts.items()),
                [(s.source, s.type.value, s.weight) for s in r.path],
            )
            for r in graph.recall(
                namespace,
                query,
                k=8,
                learn=False,
                context=RecallContext(at=AT, session_id="s1"),
                tiers=[Tier.WORKING, Tier.EPISODIC, Tier.SEMANTIC],
            )
        ]
        for query in QUERIES
    ]


def _dump(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (full text included), but the store's identity."""
    db = sqlite3.connect(database)
    try:
        tables = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master "
                "WHERE type = 'table' AND name NOT LIKE 'memory_fts%'"
            )
        ]
        dump = {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
        dump["memory_fts"] = sorted(db.execute("SELECT rowid, ns, content FROM memory_fts"))
        dump["meta"] = [row for row in dump["meta"] if row[0] != "store_id"]
        return dump
    finally:
        db.close()


def _memory_ids(database: Path, namespace: str) -> list[str]:
    db = sqlite3.connect(database)
    try:
        rows = db.execute(
            "SELECT id FROM nodes WHERE namespace = ? AND label = 'memory' ORDER BY seq",
            (namespace,),
        )
        return [r[0] for r in rows]
    finally:
        db.close()


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _clean(data_dir: Path, *namespaces: str) -> None:
    with _graph(data_dir) as graph:
        for namespace in namespaces:
            report = check(graph, namespace)
            assert report.clean, report.as_dict()


# -- an online backup under write load -------------------------------------------------------


def test_backup_under_write_load_restores_every_acknowledged_write_and_the_same_recall(
    tmp_path: Path,
) -> None:
    source, dest, target = tmp_path / "source", tmp_path / "backup", tmp_path / "restored"
    graph = _graph(source)
    _seed(graph, "main", 160)
    graph.checkpoint()  # derived files on disk: the backup copies them
    expected = _recall(graph, "main")
    acknowledged: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def write_load() -> None:
        rnd = random.Random(1)
        try:
            while not stop.is_set():
                memory = graph.remember("load", _text(rnd, len(acknowledged)), session_id="w")
                acknowledged.append(memory.id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    writer = threading.Thread(target=write_load)
    writer.start()
    try:
        _wait(lambda: len(acknowledged) >= 20 or bool(failures), "the first writes")
        before = list(acknowledged)
        entry = backup.full_backup(source, dest)
        after = len(acknowledged)
        _wait(lambda: len(acknowledged) >= after + 10 or bool(failures), "writes after it")
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures
    assert _recall(graph, "main") == expected  # the source answers as before the backup
    graph.close()

    assert restore.verify(dest).ok
    report = restore.restore(dest, target)
    restored = _memory_ids(target / "hippograph.db", "load")
    # One consistent snapshot: a prefix of the writes in their order, no holes, at
    # least every one acknowledged before the backup began.
    assert restored == acknowledged[: len(restored)]
    assert len(restored) >= len(before)
    assert entry["generations"]["load"] == len(restored) == report.generations["load"]
    assert report.entries == 0 and report.derived_files > 0  # ends at the full backup
    with _graph(target) as copy:
        assert _recall(copy, "main") == expected
    _clean(target, "main", "load")


# -- the real server, the real command -------------------------------------------------------


@contextlib.contextmanager
def _serving(app: Starlette) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:

        def ready() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{base}/readyz", timeout=5).status_code == 200
            return False

        _wait(ready, "readiness")
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def _gql(base: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, timeout=60
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return dict(body["data"])


REMEMBER_MANY = """mutation M($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id } }"""
REMEMBER = """mutation R($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) { id } }"""
RECALL = """query Q($ns: String!, $q: String!, $ctx: RecallContext) {
  recall(namespace: $ns, query: $q, k: 8, learn: false, context: $ctx) {
    memory { id content } score
    parts { similarity activation recency importance context informativeness }
    path { from type weight } } }"""


def _server_recall(base: str) -> list[Any]:
    context = {"at": AT.isoformat(), "sessionId": "s1"}
    return [_gql(base, RECALL, {"ns": "main", "q": q, "ctx": context})["recall"] for q in QUERIES]


def test_backup_command_beside_a_serving_server_restores_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    source, dest, target = tmp_path / "source", tmp_path / "backup", tmp_path / "restored"
    settings = Settings(data_dir=source, encoder="hashing", lifecycle_interval_s=0)
    rnd = random.Random(2)
    acknowledged: list[str] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def client(name: str) -> None:
        try:
            while not stop.is_set():
                content = _text(rnd, len(acknowledged))
                data = _gql(base, REMEMBER, {"ns": "load", "input": {"content": content}})
                acknowledged.append(data["remember"]["id"])
        except BaseException as exc:
            failures.append(exc)

    with _serving(create_app(settings)) as base:
        for start in range(0, 120, 40):
            inputs = [
                {"content": _text(rnd, start + j), "sessionId": f"s{j % 4}"} for j in range(40)
            ]
            _gql(base, REMEMBER_MANY, {"ns": "main", "inputs": inputs})
        expected = _server_recall(base)
        clients = [threading.Thread(target=client, args=(f"c{i}",)) for i in range(2)]
        for thread in clients:
            thread.start()
        try:
            _wait(lambda: len(acknowledged) >= 10 or bool(failures), "the first writes")
            before = set(acknowledged)
            assert main(["backup", "--data-dir", str(source), str(dest)]) == 0
            after = len(acknowledged)
            _wait(lambda: len(acknowledged) >= after + 5 or bool(failures), "writes after it")
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
        assert not failures
        assert _server_recall(base) == expected
    assert main(["backup", "--verify", str(dest)]) == 0
    assert main(["restore", str(dest), "--data-dir", str(target)]) == 0
    restored = set(_memory_ids(target / "hippograph.db", "load"))
    assert before <= restored <= set(acknowledged)
    with _serving(create_app(settings.model_copy(update={"data_dir": target}))) as base:
        assert _server_recall(base) == expected


# -- incremental backups ---------------------------------------------------------------------


def _eventful_writes(graph: MemoryGraph, seed: int) -> None:
    """Every kind of write the store journals: remember, associate, forget, recall side
    effects, and the lifecycle jobs (archive files included)."""
    ids = _seed(graph, "main", 30, seed=seed)
    graph.associate("main", ids[0], ids[7])
    graph.forget("main", ids[3])
    for query in QUERIES:
        graph.recall("main", query, k=5)
    graph.checkpoint()  # the recall side effects reach the store (and its journal)
    run_jobs(graph, "main", now=time.time() + 400 * 86400)  # decay, tier, archive, ...
    _seed(graph, "other", 10, seed=seed)


def test_incremental_chain_restores_exactly_the_final_state(tmp_path: Path) -> None:
    source, dest, target = tmp_path / "source", tmp_path / "backup", tmp_path / "restored"
    graph = _graph(source)
    _seed(graph, "main", 40)
    backup.full_backup(source, dest)
    _eventful_writes(graph, seed=1)
    first = backup.incremental_backup(source, dest)
    _eventful_writes(graph, seed=2)
    second = backup.incremental_backup(source, dest)
    assert first is not None and second is not None
    assert second["journal"]["first"] == first["journal"]["last"] + 1
    assert any(f["role"] == "archive" for f in first["files"].values())
    assert backup.incremental_backup(source, dest) is None  # nothing new
    expected = _recall(graph, "main")
    graph.close()

    assert restore.verify(dest).ok
    report = restore.restore(dest, target)
    assert report.incrementals == 2 and not report.missing_archive
    assert _dump(target / "hippograph.db") == _dump(source / "hippograph.db")
    _clean(target, "main", "other")
    with _graph(target) as copy:
        assert _recall(copy, "main") == expected


def test_incremental_refuses_what_it_cannot_cover(tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "backup"
    with pytest.raises(backup_files.BackupRefused, match="no database"):
        backup.full_backup(source, dest)
    with _graph(source) as graph:
        _seed(graph, "main", 10)
    with pytest.raises(backup_files.BackupRefused, match="no full backup"):
        backup.incremental_backup(source, dest)
    backup.full_backup(source, dest)
    with pytest.raises(backup_files.BackupRefused, match="not empty"):
        backup.full_backup(source, dest)
    with _graph(source, journal=False) as graph:
        _seed(graph, "main", 5, seed=3)
    with pytest.raises(backup_files.BackupRefused, match="journaling is off"):
        backup.incremental_backup(source, dest)
    with _graph(source) as graph:  # journaling back on: the gap stays a gap
        _seed(graph, "main", 5, seed=4)
    with pytest.raises(backup_files.BackupRefused, match="journaling off since the last backup"):
        backup.incremental_backup(source, dest)
    assert restore.verify(dest).ok  # the refusals left the history as it was
    fresh = tmp_path / "fresh"
    backup.full_backup(source, fresh)  # a new history covers everything
    with _graph(source) as graph:
        _seed(graph, "main", 5, seed=5)
    assert backup.incremental_backup(source, fresh) is not None


def test_a_write_missing_from_the_journal_is_found_not_skipped(tmp_path: Path) -> None:
    """Defence in depth: if a write ever commits without its journal entry (here the
    journal is switched off behind the store's back, so no break is recorded), the
    namespace generations give it away; a deleted entry leaves a gap in the ids."""
    source, dest = tmp_path / "source", tmp_path / "backup"
    graph = _graph(source)
    _seed(graph, "main", 10)
    backup.full_backup(source, dest)
    graph.store.journal = False  # type: ignore[attr-defined]
    graph.remember("main", "A write the journal never saw.")
    graph.store.journal = True  # type: ignore[attr-defined]
    graph.remember("main", "A write it saw.")
    with pytest.raises(backup_files.BackupRefused, match="generation"):
        backup.incremental_backup(source, dest)
    graph.close()

    other, dest = tmp_path / "other", tmp_path / "backup2"
    with _graph(other) as graph:
        _seed(graph, "main", 10)
        backup.full_backup(other, dest)
        for i in range(3):
            graph.remember("main", f"Write number {i}.")
    db = sqlite3.connect(other / "hippograph.db")
    with db:
        db.execute("DELETE FROM journal WHERE id = (SELECT min(id) + 1 FROM journal)")
    db.close()
    with pytest.raises(backup_files.BackupRefused, match="skips"):
        backup.incremental_backup(other, dest)
    assert sorted(p.name for p in dest.iterdir()) == [".lock", "00000-full", "manifest.json"]


def test_a_backup_that_died_is_cleaned_up_and_a_running_one_is_not_disturbed(
    tmp_path: Path,
) -> None:
    import fcntl

    source, dest = tmp_path / "source", tmp_path / "backup"
    with _graph(source) as graph:
        _seed(graph, "main", 10)
    (dest / "00000-full.partial" / "derived").mkdir(parents=True)  # killed mid-way
    backup.full_backup(source, dest)
    (dest / "00001-incremental.partial").mkdir()
    with _graph(source) as graph:
        _seed(graph, "main", 10, seed=1)
    assert backup.incremental_backup(source, dest) is not None
    assert not list(dest.glob("*.partial"))
    fd = os.open(dest / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running backup holds it
        with pytest.raises(backup_files.BackupRefused, match="another backup"):
            backup.incremental_backup(source, dest)
    finally:
        os.close(fd)
    assert restore.verify(dest).ok


def test_backup_and_restore_refuse_neo4j_and_name_the_native_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:9")  # never contacted
    assert main(["backup", "--data-dir", str(tmp_path / "d"), str(tmp_path / "b")]) == 2
    assert "neo4j-admin database dump/backup" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "b"), "--data-dir", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "b").exists() and not (tmp_path / "r").exists()


def test_incremental_of_another_store_is_refused(tmp_path: Path) -> None:
    with _graph(tmp_path / "a") as graph:
        _seed(graph, "main", 5)
    with _graph(tmp_path / "b") as graph:
        _seed(graph, "main", 5)
    backup.full_backup(tmp_path / "a", tmp_path / "backup")
    with pytest.raises(backup_files.BackupRefused, match="not the one this history backs up"):
        backup.incremental_backup(tmp_path / "b", tmp_path / "backup")


def test_pruning_after_a_full_backup_keeps_the_history_whole(tmp_path: Path) -> None:
    source, dest, target = tmp_path / "source", tmp_path / "backup", tmp_path / "restored"
    graph = _graph(source)
    _seed(graph, "main", 30)
    entry = backup.full_backup(source, dest, prune=True)
    assert entry["pruned"] == entry["journal"]["through"] > 0
    assert list(graph.store.journal_entries()) == []  # type: ignore[attr-defined]
    _seed(graph, "main", 10, seed=1)
    assert backup.incremental_backup(source, dest) is not None
    graph.close()
    restore.restore(dest, target)
    assert _dump(target / "hippograph.db")["nodes"] == _dump(source / "hippograph.db")["nodes"]
    # A history older than the pruned entries cannot be extended any more.
    old = tmp_path / "old"
    with _graph(source) as graph:
        backup.full_backup(source, old)
        _seed(graph, "main", 5, seed=2)
    assert (
        main(["backup", "--data-dir", str(source), str(tmp_path / "newer"), "--prune-journal"]) == 0
    )
    with pytest.raises(backup_files.BackupRefused, match="pruned"):
        backup.incremental_backup(source, old)


# -- point in time ---------------------------------------------------------------------------


def test_point_in_time_restore_lands_exactly_on_the_requested_time(tmp_path: Path) -> None:
    source, dest = tmp_path / "source", tmp_path / "backup"
    graph = _graph(source)
    seeded = _seed(graph, "pit", 5)
    graph.checkpoint()
    full = backup.full_backup(source, dest)
    acks: list[tuple[str, float]] = []
    began: list[float] = []
    rnd = random.Random(3)
    for i in range(12):
        time.sleep(0.003)  # each write begins strictly after the one before was acknowledged
        began.append(time.time())
        memory = graph.remember("pit", _text(rnd, i), session_id="s")
        acks.append((memory.id, time.time()))  # acknowledged by now
        if i == 5:
            assert backup.incremental_backup(source, dest) is not None
    assert backup.incremental_backup(source, dest) is not None
    graph.close()

    def restore_at(when: float, name: str) -> list[str]:
        """The memory ids of a restore, by the command, as of ``when``."""
        target = tmp_path / name
        code = main(
            [
                "restore",
                str(dest),
                "--data-dir",
                str(target),
                "--at",
                datetime.fromtimestamp(when, UTC).isoformat(),
            ]
        )
        assert code == 0
        return _memory_ids(target / "hippograph.db", "pit")

    for i in (0, 4, 5, 6, 11):  # in the first incremental, at its end, in the second, the end
        ids = restore_at(acks[i][1], f"at-ack-{i}")
        assert ids == seeded + [m for m, _ in acks[: i + 1]], f"restore as of write {i}"
    # Between two writes: after one was acknowledged, before the next began. (A write
    # in flight at the requested time, begun before it and acknowledged after, may or
    # may not be restored: its entry is timed just before its commit.)
    between = (acks[7][1] + began[8]) / 2
    ids = restore_at(between, "between")
    assert ids == seeded + [m for m, _ in acks[:8]]
    # As of the full backup's own point: the full backup alone, derived files included.
    target = tmp_path / "at-full"
    report = restore.restore(dest, target, at=datetime.fromtimestamp(full["point"], UTC))
    assert report.entries == 0 and report.derived_files > 0
    assert _memory_ids(target / "hippograph.db", "pit") == seeded
    _clean(target, "pit")
    # Before it: refused, with a message, and nothing created.
    early = datetime.fromtimestamp(full["point"], UTC) - timedelta(seconds=1)
    with pytest.raises(backup_files.BackupRefused, match="before the full backup"):
        restore.restore(dest, tmp_path / "early", at=early)
    assert not (tmp_path / "early").exists()
    assert (
        main(
            ["restore", str(dest), "--data-dir", str(tmp_path / "early"), "--at", early.isoformat()]
        )
        == 2
    )


def _history_under_load(
    tmp_path: Path, *, memories: int, writers: int, rounds: int, batch: int
) -> None:
    """Writers (single and batched remembers) and a recalling reader run while a full
    and then ``rounds`` incremental backups are taken; restores as of the end and of
    several moments in between must hold every write acknowledged by then and none
    begun after."""
    source, dest = tmp_path / "source", tmp_path / "backup"
    graph = _graph(source)
    _seed(graph, "main", memories)
    graph.checkpoint()
    log: list[tuple[str, str, float, float]] = []  # namespace, id, began, acknowledged
    lock = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def write(k: int) -> None:
        rnd, namespace = random.Random(k), f"w{k}"
        try:
            for i in range(10**9):
                if stop.is_set():
                    return
                began = time.time()
                if i % 3 == 2:
                    items = [MemoryInput(_text(rnd, i)) for _ in range(batch)]
                    written = graph.remember_many(namespace, items)
                else:
                    written = [graph.remember(namespace, _text(rnd, i), session_id="s")]
                acknowledged = time.time()
                with lock:
                    log.extend((namespace, m.id, began, acknowledged) for m in written)
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                for query in QUERIES:
                    graph.recall("main", query, k=5)  # learning: access entries too
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    threads.append(threading.Thread(target=read))
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: len(log) >= 10 or bool(failures), "the first writes")
        backup.full_backup(source, dest)
        for _ in range(rounds):
            held = len(log)
            _wait(lambda held=held: len(log) >= held + 10 or bool(failures), "more writes")
            assert backup.incremental_backup(source, dest) is not None
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not failures
    graph.close()
    assert backup.incremental_backup(source, dest) is not None  # the close's flush, at least
    assert restore.verify(dest).ok

    restore.restore(dest, tmp_path / "latest")
    assert _dump(tmp_path / "latest" / "hippograph.db") == _dump(source / "hippograph.db")
    full_point = json.loads((dest / "manifest.json").read_text())["backups"][0]["point"]
    moments = sorted(t for _, _, began, acked in log for t in (began, acked) if t >= full_point)
    rnd = random.Random(5)
    for n, moment in enumerate(rnd.sample(moments, min(4, len(moments)))):
        target = tmp_path / f"at-{n}"
        restore.restore(dest, target, at=datetime.fromtimestamp(moment, UTC))
        present = {
            (ns, i)
            for ns in {entry[0] for entry in log}
            for i in _memory_ids(target / "hippograph.db", ns)
        }
        # to the microsecond the command line can say
        when = datetime.fromtimestamp(moment, UTC).timestamp()
        done = {(ns, i) for ns, i, _, acked in log if acked <= when}
        not_begun = {(ns, i) for ns, i, began, _ in log if began > when}
        assert done <= present, f"restore as of {moment} lost acknowledged writes"
        assert not present & not_begun, f"restore as of {moment} holds later writes"
    _clean(tmp_path / "latest", "main", *{entry[0] for entry in log})


def test_point_in_time_under_concurrent_writers(tmp_path: Path) -> None:
    _history_under_load(tmp_path, memories=100, writers=2, rounds=2, batch=5)


@pytest.mark.slow
def test_point_in_time_under_heavy_concurrent_writers(tmp_path: Path) -> None:
    _history_under_load(tmp_path, memories=5_000, writers=3, rounds=6, batch=50)


# -- a damaged backup ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_backup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full backup with derived and archive files, and two incrementals."""
    root = tmp_path_factory.mktemp("good")
    source, dest = root / "source", root / "backup"
    with MemoryGraph(source, encoder=HashingEncoder(dim=DIM)) as graph:
        _seed(graph, "main", 30)
        run_jobs(graph, "main", now=time.time() + 400 * 86400)  # archive files
        _seed(graph, "main", 10, seed=1)
        graph.checkpoint()
        backup.full_backup(source, dest)
        for seed in (2, 3):
            _seed(graph, "main", 10, seed=seed)
            graph.forget("main", _memory_ids(source / "hippograph.db", "main")[-1])
            assert backup.incremental_backup(source, dest) is not None
    return dest


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _rehash(dest: Path, backup_dir: str, relative: str) -> None:
    """Make the manifest agree with a file changed on purpose, so only the deeper
    checks (integrity, journal parsing, contiguous ids) can find the damage."""
    manifest = json.loads((dest / "manifest.json").read_text())
    entry = next(e for e in manifest["backups"] if e["dir"] == backup_dir)
    entry["files"][relative].update(backup_files.digest(dest / backup_dir / relative))
    (dest / "manifest.json").write_text(json.dumps(manifest))


def _drop_journal_entry(dest: Path) -> None:
    path = dest / "00001-incremental" / "journal.jsonl.gz"
    with gzip.open(path, "rt") as fh:
        lines = fh.readlines()
    del lines[2]  # header, entry, [this entry], ...
    lines[-1] = json.dumps({"end": True, "entries": len(lines) - 2}) + "\n"
    with gzip.open(path, "wt") as out:
        out.writelines(lines)
    _rehash(dest, "00001-incremental", "journal.jsonl.gz")


def _archive_file(dest: Path) -> Path:
    return next((dest / "00000-full" / "archive").rglob("*.jsonl.gz"))


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "db byte flipped": (
        lambda d: _flip(d / "00000-full" / "hippograph.db", 5000),
        "00000-full/hippograph.db: sha256",
    ),
    "db truncated": (
        lambda d: _truncate(d / "00000-full" / "hippograph.db"),
        "00000-full/hippograph.db: size",
    ),
    "db truncated, manifest rehashed": (
        lambda d: (
            _truncate(d / "00000-full" / "hippograph.db"),
            _rehash(d, "00000-full", "hippograph.db"),
        ),
        "00000-full/hippograph.db: ",
    ),
    "journal deleted": (
        lambda d: (d / "00002-incremental" / "journal.jsonl.gz").unlink(),
        "00002-incremental/journal.jsonl.gz: missing",
    ),
    "journal truncated": (
        lambda d: _truncate(d / "00001-incremental" / "journal.jsonl.gz"),
        "00001-incremental/journal.jsonl.gz: size",
    ),
    "journal truncated, manifest rehashed": (
        lambda d: (
            _truncate(d / "00001-incremental" / "journal.jsonl.gz"),
            _rehash(d, "00001-incremental", "journal.jsonl.gz"),
        ),
        "00001-incremental/journal.jsonl.gz: ",
    ),
    "journal entry dropped, manifest rehashed": (
        _drop_journal_entry,
        "00001-incremental/journal.jsonl.gz: ",
    ),
    "archive file flipped": (lambda d: _flip(_archive_file(d), 10), "/archive/"),
    "manifest garbled": (
        lambda d: (d / "manifest.json").write_text('{"format": "hippograph-backup"'),
        "manifest.json",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_verify_finds_a_damaged_backup_and_restore_refuses_it(
    good_backup: Path, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "backup"
    shutil.copytree(good_backup, dest)
    assert restore.verify(dest).ok
    spoil, where = DAMAGE[damage]
    spoil(dest)
    report = restore.verify(dest)
    assert not report.ok
    assert any(where in problem for problem in report.problems), report.problems
    capsys.readouterr()
    assert main(["backup", "--verify", str(dest)]) == 1
    assert where.strip(": ") in capsys.readouterr().err
    with pytest.raises((backup_files.BackupCorrupt, backup_files.BackupRefused)):
        restore.restore(dest, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def test_a_damaged_derived_file_costs_only_the_derived_files(
    good_backup: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backup"
    shutil.copytree(good_backup, dest)
    derived = next((dest / "00000-full" / "derived").iterdir())
    _flip(derived, 100)
    report = restore.verify(dest)
    assert not report.ok and not report.problems and report.derived_problems
    restored = restore.restore(dest, tmp_path / "restored")
    assert restored.derived_files == 0
    _clean(tmp_path / "restored", "main")


# -- restore never overwrites ----------------------------------------------------------------


def test_restore_refuses_a_non_empty_directory(good_backup: Path, tmp_path: Path) -> None:
    target = tmp_path / "data"
    with _graph(target) as graph:
        graph.remember("main", "Precious memory that must survive.")
    before = {p: p.stat().st_size for p in target.rglob("*") if p.is_file()}
    with pytest.raises(backup_files.BackupRefused, match="not empty"):
        restore.restore(good_backup, target)
    assert main(["restore", str(good_backup), "--data-dir", str(target)]) == 2
    assert {p: p.stat().st_size for p in target.rglob("*") if p.is_file()} == before
    other = tmp_path / "stray"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(backup_files.BackupRefused, match="not empty"):
        restore.restore(good_backup, other)
    assert restore.restore(good_backup, tmp_path / "new" / "dir").entries > 0


def test_restore_holds_the_data_dir_lock_while_it_runs(
    good_backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process started on the directory mid-restore is refused (it would open a
    half-restored store); one that holds the directory makes restore refuse, and a lock
    file left by a finished process does not make the directory "not empty"."""
    target = tmp_path / "data"
    inside, finish = threading.Event(), threading.Event()
    real = restore._restore_into

    def paused(*args: Any) -> restore.RestoreReport:
        inside.set()
        assert finish.wait(60)
        return real(*args)

    monkeypatch.setattr(restore, "_restore_into", paused)
    outcome: list[object] = []
    worker = threading.Thread(
        target=lambda: outcome.append(restore.restore(good_backup, target)), daemon=True
    )
    worker.start()
    try:
        assert inside.wait(60)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HIPPOGRAPH_")}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "hippograph.api.cli",
                "stats",
                "-n",
                "main",
                "--data-dir",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "HF_HUB_OFFLINE": "1"},
        )
    finally:
        finish.set()
        worker.join(120)
    assert done.returncode == 1, done.stderr
    assert f"data directory {target} is in use by pid {os.getpid()}" in done.stderr
    assert len(outcome) == 1 and isinstance(outcome[0], restore.RestoreReport)
    _clean(target, "main")  # the restore itself finished whole

    # the other way round: the directory is held by another process
    held = tmp_path / "held"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from api.settings import lock_data_dir\n"
            "with lock_data_dir(Path(sys.argv[1])):\n"
            "    print('held', flush=True); sys.stdin.read()",
            str(held),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        monkeypatch.setattr(restore, "_restore_into", real)
        with pytest.raises(DataDirInUse, match=f"pid {holder.pid}"):
            restore.restore(good_backup, held)
        assert [p.name for p in held.iterdir()] == ["hippograph.lock"]  # nothing written
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert restore.restore(good_backup, held).entries > 0  # a released lock file is no data
    _clean(held, "main")


def test_a_failed_restore_leaves_the_directory_as_it_found_it(
    good_backup: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_fail(src: Path, data_dir: Path, *args: Any) -> restore.RestoreReport:
        (data_dir / "hippograph.db").write_bytes(b"half a database")
        (data_dir / "derived").mkdir()
        raise OSError("disk full")

    monkeypatch.setattr(restore, "_restore_into", half_then_fail)
    new = tmp_path / "new" / "dir"
    with pytest.raises(OSError, match="disk full"):
        restore.restore(good_backup, new)
    assert not new.exists()  # created by the restore: removed, lock file and all
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match="disk full"):
        restore.restore(good_backup, empty)
    assert [p.name for p in empty.iterdir()] == ["hippograph.lock"]  # the lock file only
    monkeypatch.undo()
    assert restore.restore(good_backup, empty).entries > 0  # and it can be restored into
    _clean(empty, "main")


# -- the journal itself ----------------------------------------------------------------------


def test_replaying_the_journal_onto_a_snapshot_reproduces_the_database(tmp_path: Path) -> None:
    source = tmp_path / "source"
    graph = _graph(source)
    _seed(graph, "main", 20)
    state = snapshot(source / "hippograph.db", tmp_path / "copy.db")
    _eventful_writes(graph, seed=1)
    graph.close()
    store = SQLiteStore(source / "hippograph.db")
    entries = list(store.journal_entries(after=state.journal_last))
    store.close()
    assert {e.op for e in entries} >= {"write", "forget", "record_access", "apply_changes", "run"}
    copy = SQLiteStore(tmp_path / "copy.db")
    assert copy.replay(entries) == len(entries)
    copy.close()
    assert _dump(tmp_path / "copy.db") == _dump(source / "hippograph.db")


def test_journal_memory_records_keep_the_export_shape() -> None:
    import numpy as np

    from hippograph.graph.journal import VectorSection, memory_entry
    from hippograph.graph.model import Memory
    from hippograph.graph.records import memory_record

    memory = Memory(id="m", namespace="n", content="x", embedding=np.ones(4, np.float32))
    entry = memory_entry(memory, VectorSection())
    record = memory_record(memory)
    assert entry.keys() == record.keys()
    assert {k: v for k, v in entry.items() if k != "embedding"} == {
        k: v for k, v in record.items() if k != "embedding"
    }


def test_journaling_off_writes_no_journal(tmp_path: Path) -> None:
    with _graph(tmp_path / "off", journal=False) as graph:
        _seed(graph, "main", 10)
        assert list(graph.store.journal_entries()) == []  # type: ignore[attr-defined]
    with _graph(tmp_path / "on") as graph:
        _seed(graph, "main", 10)
        assert len(list(graph.store.journal_entries())) == 1  # type: ignore[attr-defined]


# -- what journaling costs -------------------------------------------------------------------


class _DenseEncoder(HashingEncoder):
    """Hashing vectors blended with dense noise: float32 vectors as incompressible as a
    real model's (the hashing encoder's are mostly zeros and would flatter the journal)."""

    @property
    def name(self) -> str:
        return f"dense-{self.dim}"

    def encode_one(self, text: str) -> Any:
        import numpy as np

        base = super().encode_one(text)
        noise = np.random.default_rng(abs(hash(text)) % 2**32).standard_normal(self.dim)
        vector = base + 0.3 * noise / np.linalg.norm(noise)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


@pytest.mark.bench
def test_journal_overhead_figures(tmp_path: Path) -> None:
    """Prints what the journal costs a write: ``remember_many`` of 1000 memories
    (384-d dense vectors, two sentences each: whole, passage and context vectors) and
    single ``remember`` calls, with the journal on and off, and the database growth.
    Run: ``pytest -m bench -s tests/reliability/test_backup.py``. No speed assertion."""
    import statistics

    rnd = random.Random(7)
    batches = [
        [
            MemoryInput(_text(rnd, i) + " " + _text(rnd, i + 1), session_id=f"s{i % 20}")
            for i in range(1000)
        ]
        for _ in range(4)
    ]
    singles = [_text(rnd, i) for i in range(100)]
    figures: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    for _ in range(2):
        for journal in (False, True):
            data_dir = tmp_path / f"journal-{journal}"
            shutil.rmtree(data_dir, ignore_errors=True)
            store = SQLiteStore(data_dir / "hippograph.db", journal=journal)
            write, spent = store.write, []

            def timed(namespace: str, batch: Any, write: Any = write, spent: Any = spent) -> Any:
                began = time.perf_counter()
                result = write(namespace, batch)
                spent.append(time.perf_counter() - began)
                return result

            store.write = timed  # type: ignore[method-assign]
            with MemoryGraph(data_dir, encoder=_DenseEncoder(dim=384), store=store) as graph:
                for batch in batches:
                    began = time.perf_counter()
                    graph.remember_many("bench", batch)
                    figures[journal].setdefault("remember_many", []).append(
                        time.perf_counter() - began
                    )
                figures[journal].setdefault("store.write(1000)", []).extend(spent)
                for text in singles:
                    began = time.perf_counter()
                    graph.remember("single", text, session_id="s")
                    figures[journal].setdefault("remember", []).append(time.perf_counter() - began)
                entries = len(list(store.journal_entries()))
            assert (entries > 0) == journal
            size = (data_dir / "hippograph.db").stat().st_size / 1e6
            figures[journal]["db MB"] = [size]
    for name in ("remember_many", "store.write(1000)", "remember"):
        off = statistics.median(figures[False][name]) * 1000
        on = statistics.median(figures[True][name]) * 1000
        print(f"{name:>18}: journal off {off:8.1f} ms, on {on:8.1f} ms ({on / off - 1:+.0%})")
    off, on = figures[False]["db MB"][0], figures[True]["db MB"][0]
    print(f"{'database':>18}: journal off {off:8.1f} MB, on {on:8.1f} MB ({on / off - 1:+.0%})")
