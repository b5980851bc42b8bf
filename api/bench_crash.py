"""``hippograph bench crash``: SIGKILL at random moments, then prove nothing acknowledged
was lost and nothing half-written is visible.

Three kinds of process are killed, each on real files in a scratch directory:

- **the service**: ``hippograph serve`` runs as a subprocess on a free loopback port;
  writer threads post ``remember``, ``rememberMany`` and ``associate`` and record each
  write the server acknowledged (HTTP 200 without errors) in a :class:`Ledger`, and
  each one it did not answer (in doubt); the server gets SIGKILL at a random moment and
  restarts on the same data directory. After every kill ``hippograph check`` must find
  store and index agreeing, and after every restart every acknowledged memory (with its
  exact content) and association must be there, an unanswered ``rememberMany`` batch
  must be there whole or not at all, and no memory may exist that no writer sent;
- **an import**: ``hippograph import`` of a JSONL file larger than one batch is killed;
  what it left must be whole batches in file order (each batch is one transaction; the
  import as a whole is not), and ``check`` clean. An import of an ``export`` file is
  one transaction: all or nothing;
- **a lifecycle archive run**: ``hippograph lifecycle run --jobs tiering,archive`` over
  old, unimportant memories is killed; ``check`` may then report archive files written
  before the commit (orphans) but nothing else, a second run must finish the job and
  leave ``check`` clean, and every memory must still be there (as itself or a stub).

Example::

    hippograph bench crash --kills 20 --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

# The variables that choose the store: passed explicitly, never inherited, so that a run
# on the SQLite file stays on it whatever the caller's shell says.
from hippograph.api.settings import STORE_VARIABLES

__all__ = [
    "GraphQLClient",
    "Ledger",
    "ServerProcess",
    "add_crash_arguments",
    "crash_archive",
    "crash_import",
    "crash_server",
    "free_port",
    "hippograph",
    "hippograph_command",
    "hippograph_env",
    "run_crash",
    "run_crash_command",
]

NAMESPACE = "crash"
WRITERS = 4
BATCH = 5  # memories per rememberMany
ALIASES = 50  # memory lookups per verification request
READY_TIMEOUT_S = 120.0
KILL_ATTEMPTS = 3  # runs of a command until one is killed before it ends
WORDS = (
    "alice bob paris berlin coffee train meeting budget garden piano river winter "
    "project deadline doctor birthday concert recipe mountain letter"
).split()

REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) { id }
}"""
REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id }
}"""
ASSOCIATE = """
mutation Associate($ns: String!, $input: AssociationInput!) {
  associate(namespace: $ns, input: $input) { source target type }
}"""
ASSOCIATIONS = """
query Associations($ns: String!, $id: ID!) {
  associations(namespace: $ns, id: $id, types: [RELATED_TO], limit: 1000) { target }
}"""
STATS = """
query Stats($ns: String!) { stats(namespace: $ns) { memories } }"""


# -- processes ---------------------------------------------------------------------------


def hippograph_command() -> list[str]:
    """The ``hippograph`` console script next to this interpreter (or ``-m hippograph.api.cli``)."""
    script = Path(sys.executable).with_name("hippograph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hippograph.api.cli"]


def hippograph_env(
    data_dir: Path, *, store: Mapping[str, str] | None = None, **settings: str
) -> dict[str, str]:
    """This process's environment without any ``HIPPOGRAPH_*`` setting or Neo4j
    variable, then the data directory, the hashing encoder, no lifecycle schedule,
    offline model hub, ``store`` (``NEO4J_URI`` and friends for Neo4j; None or empty:
    the SQLite file in the data directory) and ``settings``
    (``max_query_aliases="50"`` -> ``HIPPOGRAPH_MAX_QUERY_ALIASES=50``)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HIPPOGRAPH_") and k not in STORE_VARIABLES
    }
    env.update(store or {})
    env.update(
        HIPPOGRAPH_DATA_DIR=str(data_dir),
        HIPPOGRAPH_ENCODER="hashing",
        HIPPOGRAPH_LIFECYCLE_INTERVAL_S="0",
        HF_HUB_OFFLINE="1",
    )
    env.update({f"HIPPOGRAPH_{k.upper()}": v for k, v in settings.items()})
    return env


def hippograph(
    data_dir: Path, *args: str, store: Mapping[str, str] | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run one ``hippograph`` command on ``data_dir`` (and ``store``, see
    :func:`hippograph_env`) to completion (at most 5 minutes)."""
    return subprocess.run(
        [*hippograph_command(), *args],
        env=hippograph_env(data_dir, store=store, **settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kill(process: subprocess.Popen[Any]) -> bool:
    """SIGKILL and reap; True when the process was still running."""
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return alive


class ServerProcess:
    """``hippograph serve`` on a free loopback port, as a subprocess.

    Its log (JSON lines on stderr) goes to ``log`` rather than a pipe: a pipe nobody
    reads fills up and stops the server. ``store``: see :func:`hippograph_env`.
    """

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        *,
        store: Mapping[str, str] | None = None,
        **settings: str,
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*hippograph_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=hippograph_env(data_dir, store=store, **settings),
                stdout=out,
                stderr=out,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until ``/readyz`` answers 200; raises with the log's tail if the server exits
        or takes longer than ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}: {self.tail()}"
                )
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the server was not ready after {timeout:.0f} s: {self.tail()}")

    def kill(self) -> bool:
        """SIGKILL; True when it was still running."""
        return _kill(self.process)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a graceful shutdown) and the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def tail(self, lines: int = 20) -> str:
        with suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextmanager
def serving(
    data_dir: Path, log: Path, *, store: Mapping[str, str] | None = None, **settings: str
) -> Iterator[ServerProcess]:
    """A ready server for the block; killed at the end if the block left it running."""
    server = ServerProcess(data_dir, log, store=store, **settings)
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


class GraphQLClient:
    """Posts GraphQL documents to one server as JSON over HTTP."""

    def __init__(self, base: str, *, timeout: float = 60.0) -> None:
        self.http = httpx.Client(base_url=base, timeout=timeout)

    def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return self.http.post("/graphql", json={"query": query, "variables": variables or {}})

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result's ``data``; raises when the answer is not 200 or has errors."""
        response = self.post(query, variables)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"GraphQL request failed ({response.status_code}): {body}")
        data: dict[str, Any] = body["data"]
        return data

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GraphQLClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the service under writers ---------------------------------------------------------


@dataclass
class Ledger:
    """What writers sent: acknowledged (answered 200 without errors) or in doubt (no
    answer: the server died under the request)."""

    memories: dict[str, str] = field(default_factory=dict)  # id -> content
    associations: set[tuple[str, str]] = field(default_factory=set)  # RELATED_TO
    doubtful: dict[str, str] = field(default_factory=dict)  # single remembers
    doubtful_batches: list[dict[str, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # answers with errors
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def acknowledged(self) -> int:
        return len(self.memories) + len(self.associations)


def _write_until_dead(
    base: str,
    ledger: Ledger,
    writer: int,
    tag: str,
    seed: int,
    stop: threading.Event,
    namespace: str = NAMESPACE,
) -> None:
    """One writer: random writes until the server stops answering (or ``stop``)."""
    rng = random.Random(seed)
    with ledger.lock:
        mine = [i for i in ledger.memories if i.startswith(f"w{writer}-")]
    count = 0
    variables: dict[str, Any]

    def memory(n: int) -> dict[str, Any]:
        text = " ".join(rng.choice(WORDS) for _ in range(8))
        return {"id": f"w{writer}-{tag}-{n}", "content": f"{text} ({tag} {n})"}

    with GraphQLClient(base, timeout=30.0) as client:
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.4 or len(mine) < 2:
                item = memory(count)
                count += 1
                item["sessionId"] = f"w{writer}"
                op, query, variables = "one", REMEMBER, {"ns": namespace, "input": item}
                sent: dict[str, str] = {item["id"]: item["content"]}
                pair = None
            elif roll < 0.7:
                items = [memory(count + j) for j in range(BATCH)]
                count += BATCH
                op, query, variables = "batch", REMEMBER_MANY, {"ns": namespace, "inputs": items}
                sent = {m["id"]: m["content"] for m in items}
                pair = None
            else:
                source, target = rng.sample(mine, 2)
                op, query = "associate", ASSOCIATE
                variables = {
                    "ns": namespace,
                    "input": {"source": source, "target": target, "weight": 0.9},
                }
                sent, pair = {}, (source, target)
            try:
                response = client.post(query, variables)
                body = response.json()
            except (httpx.TransportError, ValueError):
                response, body = None, {}
            acknowledged = response is not None and response.status_code == 200
            acknowledged = acknowledged and not body.get("errors")
            with ledger.lock:
                if acknowledged and pair is not None:
                    ledger.associations.add(pair)
                elif acknowledged:
                    ledger.memories.update(sent)
                    mine.extend(sent)
                else:  # in doubt: for all this writer knows, the write may have happened
                    if op == "one":
                        ledger.doubtful.update(sent)
                    elif op == "batch":
                        ledger.doubtful_batches.append(sent)
                    if response is not None and response.status_code != 503:
                        # 503 is "stopping" (a SIGTERM round); anything else is a bug
                        ledger.rejected.append(f"{response.status_code} {body}")
            if not acknowledged:
                return  # the server is gone or going


def _lookup(
    client: GraphQLClient, ids: Sequence[str], namespace: str = NAMESPACE
) -> dict[str, str | None]:
    """id -> stored content (None when absent), ``ALIASES`` lookups per request."""
    found: dict[str, str | None] = {}
    for start in range(0, len(ids), ALIASES):
        chunk = ids[start : start + ALIASES]
        fields = " ".join(
            f"m{j}: memory(namespace: $ns, id: {json.dumps(i)}) {{ content }}"
            for j, i in enumerate(chunk)
        )
        data = client.data(f"query Lookup($ns: String!) {{ {fields} }}", {"ns": namespace})
        for j, memory_id in enumerate(chunk):
            value = data[f"m{j}"]
            found[memory_id] = None if value is None else value["content"]
    return found


def verify(client: GraphQLClient, ledger: Ledger, namespace: str = NAMESPACE) -> dict[str, Any]:
    """Compare the server's state with the ledger. Returns counts and lists of problems:
    ``lost`` (acknowledged memories absent), ``altered`` (present with other content),
    ``lost_associations``, ``torn_batches`` (unanswered batches partly present) and
    ``phantoms`` (memories no writer sent: stats count minus the ones found)."""
    doubtful = [i for batch in ledger.doubtful_batches for i in batch]
    wanted = [*ledger.memories, *ledger.doubtful, *doubtful]
    stored = _lookup(client, wanted, namespace)
    sent = {**ledger.memories, **ledger.doubtful}
    for batch in ledger.doubtful_batches:
        sent.update(batch)
    lost = sorted(i for i in ledger.memories if stored[i] is None)
    altered = sorted(i for i in wanted if stored[i] is not None and stored[i] != sent[i])
    torn = [
        sorted(batch)
        for batch in ledger.doubtful_batches
        if 0 < sum(stored[i] is not None for i in batch) < len(batch)
    ]
    lost_edges: list[tuple[str, str]] = []
    by_source: dict[str, set[str]] = {}
    for source, target in ledger.associations:
        by_source.setdefault(source, set()).add(target)
    for source, targets in sorted(by_source.items()):
        data = client.data(ASSOCIATIONS, {"ns": namespace, "id": source})
        targets_found = {edge["target"] for edge in data["associations"]}
        lost_edges += [(source, t) for t in sorted(targets - targets_found)]
    count = client.data(STATS, {"ns": namespace})["stats"]["memories"]
    present = sum(v is not None for v in stored.values())
    return {
        "memories": count,
        "doubtful_present": sum(stored[i] is not None for i in [*ledger.doubtful, *doubtful]),
        "lost": lost,
        "altered": altered,
        "lost_associations": lost_edges,
        "torn_batches": torn,
        "phantoms": count - present,
    }


def check_report(
    data_dir: Path, namespace: str, store: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``hippograph check --namespace NS --json`` on ``data_dir`` and ``store`` (no
    process may have them open): the namespace's report, with the exit code as ``exit``."""
    done = hippograph(data_dir, "check", "--namespace", namespace, "--json", store=store)
    try:
        reports = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"exit": done.returncode, "clean": False, "error": done.stderr.strip()}
    return {"exit": done.returncode, **reports[0]}


def _problems(result: dict[str, Any]) -> int:
    return (
        len(result["lost"])
        + len(result["altered"])
        + len(result["lost_associations"])
        + len(result["torn_batches"])
        + abs(result["phantoms"])
    )


def crash_server(
    workdir: Path,
    kills: int,
    *,
    seed: int = 0,
    max_delay_s: float = 1.5,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``kills`` rounds of: start the server on ``workdir/data`` (and ``store``: Neo4j's
    variables, or None for the SQLite file; see :func:`namespace_of`), verify
    everything the ledger holds, write with ``WRITERS`` threads, SIGKILL a random 0.1 to
    ``max_delay_s`` seconds after the round's first acknowledged write (every third
    round SIGTERM first, and SIGKILL up to 0.3 s into the graceful shutdown), run
    ``check``. Then a last start, verification and
    graceful stop, and ``check`` again. Returns the counts (``kills``: SIGKILLs that
    found the server running) and every problem found."""
    rng = random.Random(seed)
    data_dir = workdir / "data"
    namespace = namespace_of(data_dir, store)
    log = workdir / "serve.log"
    ledger = Ledger()
    settings = {"max_query_aliases": str(ALIASES)}
    report: dict[str, Any] = {
        "rounds": kills,
        "kills": 0,
        "kills_in_shutdown": 0,
        "problems": [],
        "checks": [],
        "verified": [],
        "delays_s": [],
    }

    def verified(server: ServerProcess, when: str) -> None:
        with GraphQLClient(server.base) as client:
            result = verify(client, ledger, namespace)
        result["when"] = when
        report["verified"].append({k: v for k, v in result.items() if not isinstance(v, list)})
        if _problems(result):
            report["problems"].append(result)

    def checked(when: str) -> None:
        result = check_report(data_dir, namespace, store)
        result["when"] = when
        report["checks"].append(result)

    for round_ in range(kills):
        stop = threading.Event()
        threads: list[threading.Thread] = []
        delay = 0.0
        server = ServerProcess(data_dir, log, store=store, **settings)
        try:
            server.wait_ready()
            verified(server, f"start {round_}")
            threads = [
                threading.Thread(
                    target=_write_until_dead,
                    args=(
                        server.base,
                        ledger,
                        w,
                        f"r{round_}",
                        rng.randrange(2**32),
                        stop,
                        namespace,
                    ),
                    daemon=True,
                )
                for w in range(WRITERS)
            ]
            before = ledger.acknowledged
            for thread in threads:
                thread.start()
            # The delay counts from the round's first acknowledged write (and, until
            # one is, the first acknowledged association): a cold server (Neo4j plans
            # its statements on first use) or a loaded machine can take longer than the
            # whole delay to answer one, and a kill before any was acknowledged tests
            # nothing of it.
            deadline = time.monotonic() + READY_TIMEOUT_S
            while (
                ledger.acknowledged == before or not ledger.associations
            ) and time.monotonic() < deadline:
                if not any(thread.is_alive() for thread in threads):
                    break  # every writer gave up: nothing more to wait for
                time.sleep(0.01)
            delay = rng.uniform(0.1, max_delay_s)
            time.sleep(delay)
            if round_ % 3 == 2:
                # SIGKILL during the graceful shutdown: the checkpoint saving the
                # derived files (when it lands before the process is gone)
                server.process.send_signal(signal.SIGTERM)
                time.sleep(rng.uniform(0.0, 0.3))
        finally:
            killed = server.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        report["kills"] += killed
        report["kills_in_shutdown"] += killed and round_ % 3 == 2
        report["delays_s"].append(round(delay, 3))
        checked(f"after kill {round_}")
    server = ServerProcess(data_dir, log, store=store, **settings)
    try:
        server.wait_ready()
        verified(server, "final")
        code = server.stop()
    finally:
        server.kill()
    checked("after a graceful stop")
    report["stop_exit"] = code
    report["acknowledged"] = ledger.acknowledged
    report["acknowledged_memories"] = len(ledger.memories)
    report["acknowledged_associations"] = len(ledger.associations)
    report["doubtful"] = len(ledger.doubtful) + sum(len(b) for b in ledger.doubtful_batches)
    report["rejected"] = ledger.rejected[:5]
    report["lost"] = max(
        (len(p["lost"]) + len(p["lost_associations"]) for p in report["problems"]), default=0
    )
    report["check_clean"] = all(c["exit"] == 0 and c["clean"] for c in report["checks"])
    return report


# -- an import -------------------------------------------------------------------------


def write_jsonl(path: Path, count: int, *, old: bool = False, prefix: str = "i") -> list[str]:
    """A JSONL file of ``count`` memories with ids ``{prefix}0..``, sessions of 20; with
    ``old``, from two years ago and unimportant (cold: tiering archives them). Returns
    the ids in file order."""
    rng = random.Random(count)
    ids = []
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            memory_id = f"{prefix}{n}"
            ids.append(memory_id)
            record: dict[str, Any] = {
                "id": memory_id,
                "content": " ".join(rng.choice(WORDS) for _ in range(10)) + f" ({memory_id})",
                "session_id": f"s{n // 20}",
            }
            if old:
                record["occurred_at"] = f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}T12:00:00+00:00"
                record["importance"] = 0.1
            out.write(json.dumps(record) + "\n")
    return ids


def present_ids(
    data_dir: Path, namespace: str, ids: Sequence[str], store: Mapping[str, str] | None = None
) -> set[str]:
    """Which of ``ids`` the store of ``data_dir`` (or ``store``, see :func:`hippograph_env`)
    holds, opened in this process."""
    from hippograph.api.settings import Settings, open_store

    # every store variable given (None when absent), so none is read from this process
    chosen: dict[str, Any] = {name: (store or {}).get(name) for name in STORE_VARIABLES}
    settings = Settings(data_dir=data_dir, encoder="hashing", **chosen)
    store_ = open_store(settings)
    try:
        found = store_.seqs_of(namespace, list(ids)) if store_.namespaces() else {}
        return set(found) & set(ids)
    finally:
        store_.close()


def _killed_midway(
    command: Callable[[Path], Sequence[str]],
    fresh: Callable[[], Path],
    window: tuple[float, float],
    rng: random.Random,
    *,
    store: Mapping[str, str] | None = None,
    **settings: str,
) -> tuple[bool, str, float, int, Path]:
    """Run ``hippograph COMMAND`` (``command(data_dir)``) on the data directory
    ``fresh()`` prepares and SIGKILL it at a moment drawn from ``window`` (seconds). A
    run that ends before its kill tests nothing but says how long the command really
    takes here: up to KILL_ATTEMPTS runs, each on a fresh directory, with the next moment
    drawn from before that end. (whether the last run was killed, its stderr, its delay,
    the runs made, its data directory)"""
    low, high = window
    for attempt in range(1, KILL_ATTEMPTS + 1):
        delay = rng.uniform(low, high)
        data_dir = fresh()
        with tempfile.TemporaryFile() as err:
            started = time.monotonic()
            process = subprocess.Popen(
                [*hippograph_command(), *command(data_dir)],
                env=hippograph_env(data_dir, store=store, **settings),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=delay)
            ended = time.monotonic() - started
            killed = _kill(process)
            err.seek(0)
            text = err.read().decode(errors="replace")
        if killed or attempt == KILL_ATTEMPTS:
            return killed, text, delay, attempt, data_dir
        low, high = min(low, 0.9 * ended), 0.9 * ended
    raise AssertionError("unreachable")


def namespace_of(data_dir: Path, store: Mapping[str, str] | None) -> str:
    """The namespace a scenario uses with ``data_dir``: ``NAMESPACE`` in the directory's
    own SQLite file; on Neo4j, whose one database every directory shares, a namespace of
    the directory's own (named from its path: no two directories, nor runs, meet)."""
    if not store:
        return NAMESPACE
    return f"{NAMESPACE}-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]}"


def _fresh(
    data_dir: Path,
    copy_of: Path | None = None,
    *,
    store: Mapping[str, str] | None = None,
    seed: Path | None = None,
) -> Path:
    """A data directory as new: ``data_dir`` emptied, or made a copy of ``copy_of``.
    On Neo4j, where emptying the directory leaves its namespace in the database, a new
    directory beside it (so a new namespace), with ``seed`` (a JSONL file) imported
    instead of the copy."""
    if store:
        n = 0
        while data_dir.with_name(f"{data_dir.name}-{n}").exists():
            n += 1
        data_dir = data_dir.with_name(f"{data_dir.name}-{n}")
        data_dir.mkdir(parents=True)
        if seed is not None:
            _timed(data_dir, "import", "-n", namespace_of(data_dir, store), str(seed), store=store)
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    if copy_of is not None:
        shutil.copytree(copy_of, data_dir)
    return data_dir


def _timed(
    data_dir: Path, *args: str, store: Mapping[str, str] | None = None, **settings: str
) -> float:
    """Seconds ``hippograph ARGS`` takes on ``data_dir`` (and ``store``), run to
    completion; raises if it fails."""
    started = time.monotonic()
    done = hippograph(data_dir, *args, store=store, **settings)
    if done.returncode != 0:
        raise RuntimeError(f"hippograph {' '.join(args)} failed: {done.stderr.strip()}")
    return time.monotonic() - started


def crash_import(
    workdir: Path,
    kills: int,
    *,
    seed: int = 0,
    memories: int = 2_500,
    max_batch: int = 1_000,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Kill ``hippograph import`` of a ``memories``-line JSONL file ``kills`` times, each
    into a fresh data directory (on ``store``: Neo4j's variables, or None for the SQLite
    file; see :func:`namespace_of`), alternately of the file itself and of an ``export``
    of it, at a random moment between the time a command takes to open the store and the
    time a whole import takes (a tenth more). A JSONL import must leave
    whole batches of ``max_batch`` in file order, and the same import with ``--resume``
    must then finish it as an uninterrupted one would (the same memories and
    associations); an export import all or nothing; ``check`` clean every time."""
    rng = random.Random(seed)
    source = workdir / "import.jsonl"
    ids = write_jsonl(source, memories)
    exported = workdir / "export.jsonl"
    batch = str(max_batch)

    def ns(data_dir: Path) -> str:
        return namespace_of(data_dir, store)

    whole_jsonl = _fresh(workdir / "whole-jsonl", store=store)
    whole_export = _fresh(workdir / "whole-export", store=store)
    took = {
        "jsonl": _timed(
            whole_jsonl, "import", "-n", ns(whole_jsonl), str(source), store=store, max_batch=batch
        )
    }
    _timed(whole_jsonl, "export", "-n", ns(whole_jsonl), str(exported), store=store)
    whole_counts = _stats_counts(whole_jsonl, store)
    took["export"] = _timed(
        whole_export, "import", "-n", ns(whole_export), str(exported), store=store
    )
    # a kill before the command opened the store tests nothing: start after that
    startup = _timed(whole_export, "stats", "-n", ns(whole_export), store=store)
    report: dict[str, Any] = {
        "kills": 0,
        "whole_s": {k: round(v, 2) for k, v in took.items()},
        "startup_s": round(startup, 2),
        "runs": [],
        "problems": [],
        "checks": [],
    }
    for n in range(kills):
        kind = "export" if n % 2 else "jsonl"
        file = exported if kind == "export" else source
        killed, err, delay, attempts, data_dir = _killed_midway(
            partial(_import_command, file=file, store=store),
            partial(_fresh, workdir / f"import-{n}", store=store),
            (min(startup, took[kind]), 1.1 * took[kind]),
            rng,
            store=store,
            max_batch=batch,
        )
        check = check_report(data_dir, ns(data_dir), store)
        check["when"] = f"import {n}"
        report["checks"].append(check)
        present = present_ids(data_dir, ns(data_dir), ids, store)
        count = len(present)
        prefix = set(ids[:count]) == present
        if kind == "export":
            whole = count in (0, len(ids))
        else:
            whole = count % max_batch == 0 or count == len(ids)
        run = {
            "file": kind,
            "delay_s": round(delay, 3),
            "attempts": attempts,
            "killed": killed,
            "present": count,
        }
        problem: dict[str, Any] = {}
        if not (prefix and whole):
            problem.update(prefix=prefix, whole_batches=whole, err=err)
        if kind == "jsonl":
            # the same import again with --resume finishes it: every line once, as an
            # uninterrupted import leaves the namespace
            done = hippograph(
                data_dir,
                "import",
                "-n",
                ns(data_dir),
                str(source),
                "--resume",
                store=store,
                max_batch=batch,
            )
            resumed = _stats_counts(data_dir, store)
            run["resumed"] = done.returncode == 0 and resumed == whole_counts
            if not run["resumed"]:
                problem.update(resume_err=done.stderr.strip()[-300:], resumed=resumed)
            check = check_report(data_dir, ns(data_dir), store)
            check["when"] = f"import {n}, resumed"
            report["checks"].append(check)
        report["runs"].append(run)
        report["kills"] += killed
        if problem:
            report["problems"].append({**run, **problem})
    report["check_clean"] = all(c["exit"] == 0 and c["clean"] for c in report["checks"])
    return report


def _import_command(data_dir: Path, *, file: Path, store: Mapping[str, str] | None) -> list[str]:
    return ["import", "-n", namespace_of(data_dir, store), str(file)]


def _stats_counts(data_dir: Path, store: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Memories per tier and associations per type of the directory's namespace."""
    namespace = namespace_of(data_dir, store)
    done = hippograph(data_dir, "stats", "-n", namespace, "--json", store=store)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    stats = json.loads(done.stdout)
    return {"memories": stats.get("memories"), "associations": stats.get("associations")}


# -- a lifecycle archive run -----------------------------------------------------------


def _archive_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "archive").rglob("*") if p.is_file())


def crash_archive(
    workdir: Path,
    kills: int,
    *,
    seed: int = 0,
    memories: int = 1_500,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Kill ``hippograph lifecycle run --jobs tiering,archive`` ``kills`` times, each on
    a fresh copy of a data directory of ``memories`` old unimportant memories (on
    ``store``: Neo4j's variables, or None for the SQLite file; on Neo4j a fresh import
    into a namespace of its own), at a random moment between the store's opening and the
    end of a whole run; then run it again to completion. See the module docstring for
    what must hold; the end state must also be the one an uninterrupted run reaches (the
    same stubs and archive files)."""
    rng = random.Random(seed)
    old = workdir / "old.jsonl"
    ids = write_jsonl(old, memories, old=True, prefix="o")
    seeded = _fresh(workdir / "archive-seed", store=store)
    _timed(seeded, "import", "-n", namespace_of(seeded, store), str(old), store=store)

    def run(data_dir: Path) -> list[str]:
        namespace = namespace_of(data_dir, store)
        return ["lifecycle", "run", "-n", namespace, "--jobs", "tiering,archive", "--json"]

    def fresh(data_dir: Path) -> Path:
        return _fresh(data_dir, seeded, store=store, seed=old)

    reference = fresh(workdir / "archive-whole")
    took = _timed(reference, *run(reference), store=store)
    startup = _timed(seeded, "stats", "-n", namespace_of(seeded, store), store=store)
    expected = check_report(reference, namespace_of(reference, store), store)
    expected_files = _archive_files(reference)
    report: dict[str, Any] = {
        "kills": 0,
        "whole_s": round(took, 2),
        "startup_s": round(startup, 2),
        "stubs": expected.get("stubs", 0),
        "runs": [],
        "problems": [],
        "checks": [],
    }
    for n in range(kills):
        killed, err, delay, attempts, data_dir = _killed_midway(
            run,
            partial(fresh, workdir / f"archive-{n}"),
            (min(startup, took), 1.1 * took),
            rng,
            store=store,
        )
        namespace = namespace_of(data_dir, store)
        after_kill = check_report(data_dir, namespace, store)
        # after a kill only archive files written for a commit that never came may be
        # out of place; anything else is damage
        bad = [
            key
            for key in ("not_indexed", "stale_indexed", "dangling_edges", "broken_stubs")
            if after_kill.get(key)
        ]
        again = hippograph(data_dir, *run(data_dir), store=store)
        final = check_report(data_dir, namespace, store)
        final["when"] = f"archive {n}, after the second run"
        report["checks"].append(final)
        lost = len(ids) - len(present_ids(data_dir, namespace, ids, store))
        if after_kill.get("stubs"):
            landed = "after the commit"
        elif after_kill.get("orphan_files"):
            landed = "files written, before the commit"
        else:
            landed = "before any archive file"
        entry = {
            "delay_s": round(delay, 3),
            "attempts": attempts,
            "killed": killed,
            "landed": landed,
            "orphans_after_kill": after_kill.get("orphan_files", []),
            "lost": lost,
        }
        report["runs"].append(entry)
        report["kills"] += killed
        same = final.get("stubs") == expected.get("stubs") and (
            _archive_files(data_dir) == expected_files
        )
        if bad or again.returncode != 0 or lost or not final.get("clean") or not same:
            report["problems"].append(
                {
                    **entry,
                    "after_kill": {k: after_kill.get(k) for k in bad},
                    "second_run": again.returncode,
                    "second_run_err": again.stderr.strip()[-500:],
                    "final": {k: v for k, v in final.items() if v},
                    "same_as_uninterrupted": same,
                    "err": err[-500:],
                }
            )
    report["check_clean"] = all(c["exit"] == 0 and c["clean"] for c in report["checks"])
    return report


# -- the benchmark ---------------------------------------------------------------------


def run_crash(
    kills: int = 20,
    *,
    import_kills: int = 4,
    archive_kills: int = 4,
    seed: int | None = None,
    workdir: Path | None = None,
    keep: bool = False,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every scenario in a scratch directory (and on ``store``: Neo4j's variables, each
    scenario in namespaces of its own there, or None for SQLite files); the combined
    report."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    base = Path(tempfile.mkdtemp(prefix="hippograph-bench-crash-", dir=workdir))
    started = time.monotonic()
    try:
        (base / "server").mkdir()
        (base / "import").mkdir()
        (base / "archive").mkdir()
        server = crash_server(base / "server", kills, seed=seed, store=store)
        imports = (
            crash_import(base / "import", import_kills, seed=seed, store=store)
            if import_kills
            else {}
        )
        archive = (
            crash_archive(base / "archive", archive_kills, seed=seed, store=store)
            if archive_kills
            else {}
        )
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    parts = [p for p in (server, imports, archive) if p]
    problems = sum(len(p["problems"]) for p in parts)
    return {
        "kills": sum(p["kills"] for p in parts),
        "acknowledged": server["acknowledged"],
        "lost": server["lost"],
        "check_clean": all(p["check_clean"] for p in parts),
        "problems": problems,
        "seed": seed,
        "store": "neo4j" if store else "sqlite",
        "seconds": round(time.monotonic() - started, 1),
        "server": {
            k: server[k]
            for k in (
                "kills",
                "kills_in_shutdown",
                "acknowledged_memories",
                "acknowledged_associations",
                "doubtful",
                "rejected",
                "problems",
                "stop_exit",
            )
        },
        "import": {k: v for k, v in imports.items() if k != "checks"} if imports else None,
        "archive": {k: v for k, v in archive.items() if k != "checks"} if archive else None,
        "workdir": str(base) if keep else None,
    }


def add_crash_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench crash``."""
    parser.add_argument(
        "--kills", type=int, default=20, metavar="N", help="SIGKILLs of the server (default 20)"
    )
    parser.add_argument(
        "--import-kills", type=int, default=4, metavar="N", help="SIGKILLs of an import (4)"
    )
    parser.add_argument(
        "--archive-kills",
        type=int,
        default=4,
        metavar="N",
        help="SIGKILLs of a lifecycle archive run (4)",
    )
    parser.add_argument("--seed", type=int, help="seed of delays and writes (default random)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (its path is printed)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--store",
        choices=("sqlite", "neo4j"),
        help="the store to crash on: SQLite files in the scratch directory, or the Neo4j "
        "server of NEO4J_URI (namespaces of the run's own; default: neo4j when NEO4J_URI "
        "is set)",
    )


def _store_variables(settings: Any) -> dict[str, str]:
    """The Neo4j variables of ``settings`` (the CLI's), for the processes the bench runs."""
    password = settings.neo4j_password
    values = {
        "NEO4J_URI": settings.neo4j_uri,
        "NEO4J_USER": settings.neo4j_user,
        "NEO4J_PASSWORD": password.get_secret_value() if password is not None else None,
        "NEO4J_DATABASE": settings.neo4j_database,
        "HIPPOGRAPH_NEO4J_TRACE": str(settings.neo4j_trace) if settings.neo4j_trace else None,
    }
    return {name: value for name, value in values.items() if value}


def run_crash_command(args: argparse.Namespace, settings: Any) -> int:
    """``hippograph bench crash``: exit 0 when nothing was lost and every check was clean."""
    if min(args.kills, args.import_kills, args.archive_kills) < 0 or args.kills < 1:
        print("hippograph: --kills must be at least 1, the others at least 0", file=sys.stderr)
        return 2
    uri = getattr(settings, "neo4j_uri", None)
    kind = args.store or ("neo4j" if uri else "sqlite")
    if kind == "neo4j" and not uri:
        print(
            "hippograph: --store neo4j: NEO4J_URI is not set (and NEO4J_USER, "
            "NEO4J_PASSWORD for the server's credentials)",
            file=sys.stderr,
        )
        return 2
    result = run_crash(
        args.kills,
        import_kills=args.import_kills,
        archive_kills=args.archive_kills,
        seed=args.seed,
        keep=args.keep,
        store=_store_variables(settings) if kind == "neo4j" else None,
    )
    ok = result["lost"] == 0 and result["check_clean"] and result["problems"] == 0
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    server = result["server"]
    print(
        f"{result['store']}: kills {result['kills']} (server {server['kills']}, import "
        f"{(result['import'] or {}).get('kills', 0)}, archive "
        f"{(result['archive'] or {}).get('kills', 0)}) in {result['seconds']} s, seed "
        f"{result['seed']}"
    )
    print(
        f"acknowledged {result['acknowledged']} ({server['acknowledged_memories']} memories, "
        f"{server['acknowledged_associations']} associations; {server['doubtful']} in doubt)"
    )
    print(
        f"lost {result['lost']}, problems {result['problems']}, "
        f"check {'clean' if result['check_clean'] else 'NOT CLEAN'}"
    )
    for name in ("import", "archive"):
        for problem in (result[name] or {}).get("problems", []):
            print(f"  {name}: {problem}")
    for problem in server["problems"]:
        print(f"  server: {problem}")
    if result["workdir"]:
        print(f"kept {result['workdir']}")
    return 0 if ok else 1
