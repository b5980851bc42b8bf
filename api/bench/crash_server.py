"""``hippograph bench crash``, the service under writers: ``hippograph serve`` on real
files, writer threads posting ``remember``, ``rememberMany`` and ``associate`` and keeping
a :class:`Ledger` of what the server acknowledged and what it left in doubt, SIGKILL at a
random moment, a restart on the same data, and :func:`verify` of the ledger against what
the server holds (see :mod:`hippograph.api.bench.crash` for what must hold).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hippograph.api.bench.processes import (
    READY_TIMEOUT_S,
    REMEMBER,
    REMEMBER_MANY,
    GraphQLClient,
    ServerProcess,
    check_report,
)

__all__ = [
    "ALIASES",
    "ASSOCIATE",
    "ASSOCIATIONS",
    "NAMESPACE",
    "STATS",
    "WORDS",
    "Ledger",
    "crash_server",
    "namespace_of",
    "verify",
]

NAMESPACE = "crash"
WRITERS = 4
BATCH = 5  # memories per rememberMany
ALIASES = 50  # memory lookups per verification request
WORDS = (
    "alice bob paris berlin coffee train meeting budget garden piano river winter "
    "project deadline doctor birthday concert recipe mountain letter"
).split()

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


def namespace_of(data_dir: Path, store: Mapping[str, str] | None) -> str:
    """The namespace a scenario uses with ``data_dir``: ``NAMESPACE`` in the directory's
    own SQLite file; on Neo4j, whose one database every directory shares, a namespace of
    the directory's own (named from its path: no two directories, nor runs, meet)."""
    if not store:
        return NAMESPACE
    return f"{NAMESPACE}-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]}"


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
