"""The load driver: C concurrent GraphQL clients against a running hippograph server.

A plain asyncio + httpx closed loop. The clients share one :class:`httpx.AsyncClient`
(a fixed pool of C connections); each client loops until the deadline, choosing recall
(80% by default) or remember with its own seeded RNG, and times every request. By
default a client sends its next request as soon as the last one answered (the server's
saturation); with a think time it first waits a random 0.5-1.5 times that, as an agent
does between its memory calls and its model's (and its first request waits 0-1 times
that, so that the clients do not all start at the same instant). A
request that answers anything but HTTP 200, carries GraphQL ``errors``, lacks the data
asked for, or times out counts as an error; the first few errors are kept for the report.
Every remember the server acknowledged (an id came back) is kept with its content, so a
caller can check afterwards that each one is readable.

:func:`drive` knows nothing of hippograph but the two GraphQL operations; building the
data directory and starting the server is :mod:`hippograph.api.bench.load`'s part
(``hippograph bench load``; ``python -m hippograph.api.bench.load --url URL`` drives a
server already running on loopback with the synthetic namespace's words).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from hippograph.api.bench.processes import RECALL

__all__ = ["REMEMBER", "LoadResult", "OpResult", "drive"]

# remember, its content echoed (the recall is processes.RECALL)
REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) { id content }
}"""
OPERATIONS = ("recall", "remember")
ERROR_SAMPLES = 10  # error messages kept for the report
WORDS_PER_NOTE = (4, 8)  # synthetic words in a remembered note (inclusive)


@dataclass
class OpResult:
    """What one kind of request did: seconds per completed request, errors among them."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        ms = np.asarray(self.seconds, dtype=np.float64) * 1000.0
        p50, p99 = np.percentile(ms, [50, 99]) if len(ms) else (float("nan"),) * 2
        return {
            "count": len(ms),
            "p50_ms": round(float(p50), 2),
            "p99_ms": round(float(p99), 2),
            "mean_ms": round(float(ms.mean()), 2) if len(ms) else float("nan"),
            "max_ms": round(float(ms.max()), 2) if len(ms) else float("nan"),
            "errors": self.errors,
        }


@dataclass
class LoadResult:
    """Everything :func:`drive` measured; :meth:`report` is the JSON-ready part."""

    clients: int
    seconds: float
    think_ms: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # the driver's own CPU time: it shares the machine with the server
    ops: dict[str, OpResult] = field(default_factory=lambda: {op: OpResult() for op in OPERATIONS})
    warmup_errors: int = 0  # the untimed first request of each client
    error_samples: list[str] = field(default_factory=list)
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (id, content)

    @property
    def requests(self) -> int:
        return sum(len(op.seconds) for op in self.ops.values())

    @property
    def errors(self) -> int:
        return self.warmup_errors + sum(op.errors for op in self.ops.values())

    def report(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": self.seconds,
            "think_ms": self.think_ms,
            "wall_s": round(self.wall_s, 2),
            "driver_cpu_s": round(self.cpu_s, 2),
            "requests": self.requests,
            "throughput_rps": round(self.requests / self.wall_s, 1) if self.wall_s else 0.0,
            "ops": {name: op.summary() for name, op in self.ops.items()},
            "errors": self.errors,
            "warmup_errors": self.warmup_errors,
            "error_samples": self.error_samples,
            "acknowledged_remembers": len(self.acknowledged),
        }

    def fail(self, op: str, message: str) -> None:
        if op == "warm-up":
            self.warmup_errors += 1
        else:
            self.ops[op].errors += 1
        if len(self.error_samples) < ERROR_SAMPLES:
            self.error_samples.append(f"{op}: {message}")


async def _post(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> tuple[float, Any, str | None]:
    """(seconds, data, error): one GraphQL request; ``error`` is None when it succeeded."""
    start = time.perf_counter()
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables})
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            return elapsed, None, f"HTTP {response.status_code}: {response.text[:200]}"
        body = response.json()
    except httpx.TimeoutException as exc:
        return time.perf_counter() - start, None, f"timeout ({type(exc).__name__})"
    except httpx.HTTPError as exc:
        return time.perf_counter() - start, None, f"{type(exc).__name__}: {exc}"
    except ValueError as exc:  # the body was not JSON
        return time.perf_counter() - start, None, f"bad JSON: {exc}"
    if not isinstance(body, dict) or body.get("errors"):
        errors = body.get("errors") if isinstance(body, dict) else body
        return elapsed, None, f"GraphQL errors: {str(errors)[:300]}"
    return elapsed, body.get("data"), None


async def drive(
    base_url: str,
    *,
    namespace: str,
    queries: list[str],
    words: list[str],
    clients: int = 50,
    seconds: float = 60.0,
    recall_share: float = 0.8,
    k: int = 10,
    seed: int = 0,
    timeout_s: float = 10.0,
    session_prefix: str = "load",
    think_ms: float = 0.0,
) -> LoadResult:
    """Run ``clients`` closed-loop clients against ``base_url`` for ``seconds``.

    Parameters
    ----------
    base_url:
        The server, e.g. ``http://127.0.0.1:8000`` (loopback only: others are refused).
    namespace:
        The namespace recalled from and written to.
    queries:
        Recall query texts; each recall picks one at random.
    words:
        Vocabulary of the remembered notes: each note is a few of these words and a
        marker (client, request) that makes it unique.
    clients, seconds:
        Concurrent clients, and how long they start new requests. A request running at
        the deadline finishes (bounded by ``timeout_s``) and is counted.
    recall_share:
        Probability that a request is a recall (otherwise a remember).
    k:
        Recall's ``k``.
    seed:
        Seed of every client's choices (client ``c`` uses ``(seed, c)``).
    timeout_s:
        Per-request timeout; a request that times out is an error.
    session_prefix:
        Client ``c`` remembers in session ``<prefix>-<seed>-<c>``.
    think_ms:
        Mean pause of a client between an answer and its next request (uniform over
        0.5-1.5 times this); 0, the default, sends at once.

    Returns
    -------
    LoadResult
        Latencies and errors per operation, the error samples and every acknowledged
        remember as ``(id, content)``.

    Examples
    --------
    Against a server on port 8000 (not a doctest: it needs one)::

        result = asyncio.run(drive("http://127.0.0.1:8000", namespace="bench",
            queries=["kalomi"], words=["kalomi"], clients=2, seconds=1))
        result.report()["errors"]  # 0
    """
    host = urlsplit(base_url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the load driver only talks to loopback, not {host!r}")
    if clients < 1 or seconds <= 0 or not queries or not words:
        raise ValueError("need clients >= 1, seconds > 0, and some queries and words")
    if not 0.0 <= recall_share <= 1.0:
        raise ValueError(f"recall_share must be within 0..1, got {recall_share}")
    if not think_ms >= 0.0:
        raise ValueError(f"think_ms must be at least 0, got {think_ms}")
    result = LoadResult(clients=clients, seconds=seconds, think_ms=think_ms)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as http:
        # one untimed recall per connection: connections opened, server paths warm
        warm = await asyncio.gather(
            *(
                _post(http, RECALL, {"ns": namespace, "q": queries[c % len(queries)], "k": k})
                for c in range(clients)
            )
        )
        for _, _, error in warm:
            if error is not None:
                result.fail("warm-up", error)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def client(c: int) -> None:
            rng = random.Random(seed * 1_000_003 + c)
            session = f"{session_prefix}-{seed}-{c}"
            n = 0
            while loop.time() < deadline:
                n += 1
                if think_ms:  # the first pause staggers the clients' starts over one
                    low, high = (0.0, 1.0) if n == 1 else (0.5, 1.5)
                    await asyncio.sleep(rng.uniform(low, high) * think_ms / 1000.0)
                    if loop.time() >= deadline:
                        break
                if rng.random() < recall_share:
                    variables = {"ns": namespace, "q": rng.choice(queries), "k": k}
                    took, data, error = await _post(http, RECALL, variables)
                    result.ops["recall"].seconds.append(took)
                    if error is None and not isinstance((data or {}).get("recall"), list):
                        error = f"no recall list in {str(data)[:200]}"
                    if error is not None:
                        result.fail("recall", error)
                    continue
                note = rng.choices(words, k=rng.randint(*WORDS_PER_NOTE))
                content = " ".join([*note, f"load{seed} c{c} n{n}"])
                variables = {
                    "ns": namespace,
                    "input": {"content": content, "sessionId": session},
                }
                took, data, error = await _post(http, REMEMBER, variables)
                result.ops["remember"].seconds.append(took)
                stored = (data or {}).get("remember") or {}
                if error is None and not stored.get("id"):
                    error = f"no id in {str(data)[:200]}"
                if error is not None:
                    result.fail("remember", error)
                else:
                    result.acknowledged.append((str(stored["id"]), content))

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(c) for c in range(clients)))
        result.wall_s = time.perf_counter() - started
        result.cpu_s = time.process_time() - cpu
    return result
