"""``hippograph bench serve``: the GraphQL service end to end, over loopback HTTP.

This module owns the service benchmark: it builds (or reuses) a synthetic namespace of N
memories with the generator of :mod:`hippograph.api.bench.synthetic` (written straight to
the store, vectors random but clustered), starts ``hippograph serve`` on it as a separate
process with the real sentence model, waits for ``/readyz``, and drives it with httpx
clients posting GraphQL:

* recall, single client: p50/p99 end to end (HTTP + query embedding + recall + JSON);
* recall, C concurrent clients (default 16): throughput and p50/p99;
* remember, single client: one memory per request (embedding, association, commit);
* remember, batched: ``rememberMany`` with B memories per request.

Every phase is bounded in requests and in seconds, and only loopback is used. The
server's index of the synthetic namespace is rebuilt under the real model's name on
first start (the synthetic vectors are not the model's, which changes nothing for speed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from hippograph.api.bench.common import Reporter, build_namespace, stage_means
from hippograph.api.bench.processes import (
    RECALL,
    REMEMBER,
    REMEMBER_MANY,
    free_port,
    server_env,
)
from hippograph.api.bench.synthetic import DIM, NAMESPACE, Synthetic
from hippograph.graph import GraphConfig

__all__ = ["add_serve_arguments", "run_serve", "run_serve_command"]

MANIFEST = "bench-serve.json"


def _manifest(data_dir: Path, memories: int, seed: int) -> dict[str, Any] | None:
    """The manifest of a bench-serve build of this size and seed in ``data_dir``."""
    manifest_path = data_dir / MANIFEST
    if manifest_path.is_file():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("memories") == memories and manifest.get("seed") == seed:
            return manifest
    return None


def _reusable(data_dir: Path, memories: int, seed: int) -> bool:
    """A directory the benchmark may build in or reuse: new, empty, or its own build."""
    empty = not data_dir.exists() or not any(data_dir.iterdir())
    return empty or _manifest(data_dir, memories, seed) is not None


def _build(data_dir: Path, memories: int, seed: int) -> dict[str, Any]:
    """The synthetic namespace of ``hippograph bench latency``, derived files dropped so
    the server rebuilds its index for the real model. Reused when already built."""
    manifest = _manifest(data_dir, memories, seed)
    if manifest is not None:
        return manifest
    if not _reusable(data_dir, memories, seed):
        raise ValueError(f"{data_dir} is not empty and holds no bench-serve namespace")
    data_dir.mkdir(parents=True, exist_ok=True)
    with Reporter(True) as reporter:
        stages = build_namespace(data_dir, Synthetic(memories, seed, DIM), GraphConfig(), reporter)
    # the index was saved under the hashing encoder's name: rebuilt from the store
    for path in (data_dir / "derived").glob("*"):
        if ".faiss" in path.name or path.suffix == ".json":
            path.unlink()
    manifest = {"memories": memories, "seed": seed, "build_s": stages}
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _queries(memories: int, seed: int, count: int) -> list[str]:
    return [text for text, _ in Synthetic(memories, seed, DIM).queries(count)]


def _percentiles(seconds: list[float]) -> dict[str, float]:
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


class _Client:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=120)

    def post(self, query: str, variables: dict[str, Any]) -> float:
        """Seconds for one request; raises if the answer has errors."""
        start = time.perf_counter()
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        elapsed = time.perf_counter() - start
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"request failed: {response.status_code} {body}")
        return elapsed

    def close(self) -> None:
        self.http.close()


def _loop(
    client: _Client,
    make: Callable[[int], tuple[str, dict[str, Any]]],
    *,
    requests: int,
    seconds: float,
    offset: int = 0,
) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    for i in range(requests):
        if time.monotonic() > deadline:
            break
        query, variables = make(offset + i)
        latencies.append(client.post(query, variables))
    return latencies


def run_serve(
    memories: int,
    *,
    clients: int = 16,
    requests: int = 500,
    seconds: float = 20.0,
    batch: int = 100,
    k: int = 10,
    seed: int = 0,
    workdir: Path | None = None,
    worker_threads: int | None = None,
) -> dict[str, Any]:
    """Build or reuse the namespace, serve it, measure; a JSON-ready report."""
    temporary = workdir is None
    data_dir = (
        Path(tempfile.mkdtemp(prefix="hippograph-bench-serve-")) if workdir is None else workdir
    )
    server: subprocess.Popen[str] | None = None
    try:
        t0 = time.perf_counter()
        manifest = _build(data_dir, memories, seed)
        build_s = time.perf_counter() - t0
        port = free_port()
        env = server_env(data_dir, "minilm", worker_threads)
        log = open(data_dir / "bench-serve.log", "w")  # noqa: SIM115 (closed below)
        server = subprocess.Popen(
            [sys.executable, "-m", "hippograph.api.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        deadline = time.monotonic() + 900
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited; see {data_dir / 'bench-serve.log'}")
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server was not ready within 15 minutes")
            time.sleep(0.2)
        ready_s = time.perf_counter() - t0
        texts = _queries(memories, seed, 512)

        def recall(i: int) -> tuple[str, dict[str, Any]]:
            return RECALL, {"ns": NAMESPACE, "q": texts[i % len(texts)], "k": k}

        def remember(i: int) -> tuple[str, dict[str, Any]]:
            content = f"{texts[i % len(texts)]} benchmark note {i}"
            return REMEMBER, {"ns": NAMESPACE, "input": {"content": content, "sessionId": "w"}}

        def remember_many(i: int) -> tuple[str, dict[str, Any]]:
            inputs = [
                {"content": f"{texts[(i * batch + j) % len(texts)]} batch {i} item {j}"}
                for j in range(batch)
            ]
            return REMEMBER_MANY, {"ns": NAMESPACE, "inputs": inputs}

        one = _Client(base)
        _loop(one, recall, requests=10, seconds=seconds)  # warm-up, untimed
        single = _loop(one, recall, requests=requests, seconds=seconds, offset=10)

        per_client: list[list[float]] = [[] for _ in range(clients)]
        barrier = threading.Barrier(clients)
        failures: list[BaseException] = []

        def drive(c: int) -> None:
            client = _Client(base)
            try:
                barrier.wait(timeout=60)
                per_client[c] = _loop(
                    client, recall, requests=requests, seconds=seconds, offset=1000 * c
                )
            except BaseException as exc:
                failures.append(exc)
            finally:
                client.close()

        threads = [threading.Thread(target=drive, args=(c,)) for c in range(clients)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - t0
        if failures:
            raise RuntimeError(f"a client failed: {failures[0]}")
        concurrent = [s for latencies in per_client for s in latencies]

        t0 = time.perf_counter()
        writes = _loop(one, remember, requests=min(requests, 300), seconds=seconds)
        writes_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        batches = _loop(one, remember_many, requests=max(requests // batch, 5), seconds=seconds)
        batches_wall = time.perf_counter() - t0
        one.close()

        stages = stage_means(httpx.get(f"{base}/metrics", timeout=30).text)
        t0 = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        stop_s = time.perf_counter() - t0
        log.close()
        return {
            "memories": memories,
            "build_s": round(build_s, 1),
            "build_stages_s": manifest.get("build_s"),
            "ready_s": round(ready_s, 1),
            "recall_single": _percentiles(single),
            "recall_concurrent": {
                "clients": clients,
                **_percentiles(concurrent),
                "throughput_rps": round(len(concurrent) / wall, 1),
            },
            "remember_single": {
                **_percentiles(writes),
                "throughput_per_s": round(len(writes) / writes_wall, 1) if writes else 0,
            },
            "remember_batched": {
                "batch": batch,
                **_percentiles(batches),
                "memories_per_s": round(len(batches) * batch / batches_wall, 1) if batches else 0,
            },
            "server_recall_stage_mean_ms": stages,
            "shutdown_s": round(stop_s, 2),
            "exit_code": server.returncode,
            "cpus": os.cpu_count(),
        }
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def _count(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench serve``."""
    parser.add_argument(
        "--memories", type=_count, default=100_000, metavar="N", help="namespace size (100k)"
    )
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument(
        "--requests", type=int, default=500, help="at most this many requests per client (500)"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="at most this long per phase (20)"
    )
    parser.add_argument("--batch", type=int, default=100, help="memories per rememberMany (100)")
    parser.add_argument("-k", type=int, default=10, help="recall k (10)")
    parser.add_argument("--worker-threads", type=int, default=None, help="server worker threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data-dir-bench",
        type=Path,
        default=None,
        metavar="DIR",
        help="build the namespace here and keep it for later runs (default: a temporary dir)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_serve_command(args: argparse.Namespace, settings: Any) -> int:
    workdir = args.data_dir_bench
    if workdir is not None and not _reusable(Path(workdir), args.memories, args.seed):
        print(
            f"hippograph: --data-dir-bench: {workdir} is not empty and holds no bench-serve "
            f"namespace of {args.memories} memories (seed {args.seed}); name a new directory",
            file=sys.stderr,
        )
        return 2
    report = run_serve(
        args.memories,
        clients=args.clients,
        requests=args.requests,
        seconds=args.seconds,
        batch=args.batch,
        k=args.k,
        seed=args.seed,
        workdir=args.data_dir_bench,
        worker_threads=args.worker_threads,
    )
    print(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hippograph.api.bench.serve", description=__doc__
    )
    add_serve_arguments(parser)
    return run_serve_command(parser.parse_args(argv), None)


if __name__ == "__main__":
    raise SystemExit(main())
