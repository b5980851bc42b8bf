"""The hippograph service and command line driven from outside, as ``bench crash``,
``bench serve``, ``bench load`` and the reliability tests drive them: one command run to
completion, ``hippograph serve`` as a subprocess on a free loopback port, a GraphQL client
for it, the GraphQL documents the benchmarks post, and ``hippograph check``'s report.

Every process gets an environment built from scratch (:func:`hippograph_env`): no
``HIPPOGRAPH_*`` setting or store variable is inherited from the caller's shell.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

# The variables that choose the store: passed explicitly, never inherited, so that a run
# on the SQLite file stays on it whatever the caller's shell says.
from hippograph.api.settings import STORE_VARIABLES

__all__ = [
    "READY_TIMEOUT_S",
    "RECALL",
    "REMEMBER",
    "REMEMBER_MANY",
    "GraphQLClient",
    "ServerProcess",
    "check_report",
    "free_port",
    "hippograph",
    "hippograph_command",
    "hippograph_env",
    "kill_process",
    "server_env",
    "serving",
]

READY_TIMEOUT_S = 120.0

RECALL = """
query Recall($ns: String!, $q: String!, $k: Int!) {
  recall(namespace: $ns, query: $q, k: $k) {
    memory { id content }
    score
    parts { similarity activation recency importance context }
    path { from type weight }
  }
}"""
REMEMBER = """
mutation Remember($ns: String!, $input: MemoryInput!) {
  remember(namespace: $ns, input: $input) { id }
}"""
REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id }
}"""


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


def server_env(data_dir: Path, encoder: str, worker_threads: int | None) -> dict[str, str]:
    """The environment of a server a benchmark measures (:func:`hippograph_env` on the
    SQLite data directory the bench built): ``encoder``, warnings-only logs, tokenizers
    single-threaded, and ``worker_threads`` when given."""
    env = hippograph_env(data_dir, encoder=encoder, log_level="WARNING")
    env["TOKENIZERS_PARALLELISM"] = "false"
    if worker_threads is not None:
        env["HIPPOGRAPH_WORKER_THREADS"] = str(worker_threads)
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
    """A TCP port free on loopback right now (the OS's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kill_process(process: subprocess.Popen[Any]) -> bool:
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
        return kill_process(self.process)

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
