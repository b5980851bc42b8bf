"""``hippograph bench load``: many clients at once against the real server, over loopback.

This module owns the hippograph side of the load benchmark: the data directory and the
server. The namespace is the synthetic one of ``hippograph bench latency`` (the
generator of :mod:`hippograph.api.bench.synthetic`, written straight to the store and turned into
the derived structures with :meth:`graph.MemoryGraph.rebuild`), 100k memories by default.
The server is :func:`hippograph.api.app.create_app` under uvicorn in a separate process, on a free
loopback port. It encodes with the real model (``--encoder minilm``, the default: every
recall's query and every remembered note and its passages go through all-MiniLM-L6-v2,
as in the deployed service) or with the hashing encoder at the data's 384 dimensions
(``--encoder hashing``: the cost of everything but the model). The stored vectors are
the generator's either way; for the model, the served copy's saved indexes are labelled
with the model's name (their contents do not depend on the encoder that is named), so
the server does not rebuild them. The load itself, 50 closed-loop clients for 60 s, 80%
recall and 20% remember, is :func:`hippograph.api.bench.load_driver.drive`; the server
is :mod:`hippograph.api.bench.load_server`'s.
Reported: throughput, p50/p99 and errors per operation (any non-200, GraphQL error or
timeout is an error), and whether the targets were met: no errors, recall p99 under
100 ms. A data directory given with ``--data-dir-bench`` is built once (or is one that
``bench latency`` built) and reused: each run serves a copy of it, since remember
changes the data.
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from hippograph.api.bench.common import (
    Reporter,
    build_namespace,
    manifest_matches,
    metric_means,
    parse_count,
    stage_means,
    write_manifest,
)
from hippograph.api.bench.load_driver import LoadResult, drive
from hippograph.api.bench.load_server import ENCODERS, serving
from hippograph.api.bench.synthetic import DIM, NAMESPACE, Synthetic
from hippograph.graph import GraphConfig

__all__ = [
    "add_load_arguments",
    "main",
    "prepare",
    "run_load",
    "run_load_command",
    "synthetic_texts",
]

MEMORIES = 100_000
CLIENTS = 50
SECONDS = 60.0
RECALL_SHARE = 0.8
TIMEOUT_S = 10.0
QUERIES = 512  # distinct recall texts
TARGET_RECALL_P99_MS = 100.0


# -- the data --------------------------------------------------------------------------


def prepare(
    data_dir: Path, memories: int, seed: int = 0, *, progress: bool = False
) -> tuple[dict[str, float], bool]:
    """Build the synthetic namespace in ``data_dir``, or reuse the one there.

    Returns the build's seconds per stage (recorded in the manifest when reused) and
    whether it was reused. The manifest is ``bench latency``'s, so either benchmark
    reuses the other's directory. Raises ValueError for a non-empty directory that
    holds no such build.
    """
    manifest = manifest_matches(data_dir, memories, seed)
    if manifest is not None:
        return dict(manifest["build_s"]), True
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValueError(
            f"{data_dir} is not empty and holds no bench namespace of {memories} memories "
            f"(seed {seed}); give an empty or new directory"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with Reporter(progress) as reporter:
        stages = build_namespace(data_dir, Synthetic(memories, seed, DIM), GraphConfig(), reporter)
    write_manifest(data_dir, memories, seed, stages)
    return stages, False


def synthetic_texts(memories: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Recall queries (topic words of the namespace's clusters) and the vocabulary the
    remembered notes are made of."""
    synth = Synthetic(memories, seed, DIM)
    return [text for text, _ in synth.queries(QUERIES)], list(synth.vocab)


def _drive_bench(url: str, queries: list[str], words: list[str], **options: Any) -> LoadResult:
    """The load driver's clients against ``url``, on the bench namespace (``options``:
    :func:`~hippograph.api.bench.load_driver.drive`'s)."""
    return asyncio.run(drive(url, namespace=NAMESPACE, queries=queries, words=words, **options))


def _request_means(metrics: str) -> dict[str, float]:
    """Mean milliseconds per GraphQL operation from the server's first byte in to its
    last byte out (warm-up included): the client's figure less this is spent queueing
    outside the server's request handling (connections, the driver's own event loop)."""
    return metric_means(metrics, "hippograph_request_duration_seconds", "operation")


# -- the benchmark ---------------------------------------------------------------------


def run_load(
    memories: int = MEMORIES,
    *,
    clients: int = CLIENTS,
    seconds: float = SECONDS,
    recall_share: float = RECALL_SHARE,
    k: int = 10,
    seed: int = 0,
    timeout_s: float = TIMEOUT_S,
    think_ms: float = 0.0,
    encoder: str = "minilm",
    workdir: Path | None = None,
    worker_threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Build (or reuse) the namespace, serve it, drive it; a JSON-ready report.

    ``workdir`` is kept and reused by later runs with the same ``memories`` and ``seed``
    (each run serves a copy); without it everything lives in a temporary directory.
    """
    if memories < 50:
        raise ValueError(f"memories must be at least 50, got {memories}")
    scratch = Path(tempfile.mkdtemp(prefix="hippograph-bench-load-"))
    try:
        built = workdir if workdir is not None else scratch / "data"
        t0 = time.perf_counter()
        build_s, reused = prepare(built, memories, seed, progress=progress)
        if workdir is not None:  # remember changes the data: serve a copy
            data_dir = scratch / "data"
            shutil.copytree(built, data_dir)
        else:
            data_dir = built
        prepare_s = time.perf_counter() - t0
        queries, words = synthetic_texts(memories, seed)
        load_before = [round(x, 2) for x in os.getloadavg()]
        with serving(
            data_dir,
            encoder=encoder,
            log_path=scratch / "server.log",
            worker_threads=worker_threads,
        ) as served:
            result = _drive_bench(
                served.url,
                queries,
                words,
                clients=clients,
                seconds=seconds,
                recall_share=recall_share,
                k=k,
                seed=seed,
                timeout_s=timeout_s,
                think_ms=think_ms,
            )
            metrics = httpx.get(f"{served.url}/metrics", timeout=30).text
        load_after = [round(x, 2) for x in os.getloadavg()]
        measured = result.report()
        server_log = None
        if measured["errors"] or served.exit_code != 0:  # keep the server's account
            handle, name = tempfile.mkstemp(prefix="hippograph-bench-load-", suffix=".log")
            os.close(handle)
            shutil.copyfile(served.log_path, name)
            server_log = name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    recall_p99 = measured["ops"]["recall"]["p99_ms"]
    return {
        "clients": clients,
        "seconds": seconds,
        "think_ms": think_ms,
        "encoder": encoder,
        "memories": memories,
        "requests": measured["requests"],
        "throughput_rps": measured["throughput_rps"],
        "ops": measured["ops"],
        "errors": measured["errors"],
        "targets": {"errors": 0, "recall_p99_ms": TARGET_RECALL_P99_MS},
        "targets_met": {
            "zero_errors": measured["errors"] == 0,
            "recall_p99_ms": bool(recall_p99 < TARGET_RECALL_P99_MS),
        },
        "recall_share": recall_share,
        "k": k,
        "seed": seed,
        "wall_s": measured["wall_s"],
        "driver_cpu_s": measured["driver_cpu_s"],
        "server_request_mean_ms": _request_means(metrics),
        "server_recall_stage_mean_ms": stage_means(metrics),
        "warmup_errors": measured["warmup_errors"],
        "error_samples": measured["error_samples"],
        "acknowledged_remembers": measured["acknowledged_remembers"],
        "build_s": build_s,
        "reused_data_dir": reused,
        "prepare_s": round(prepare_s, 1),
        "ready_s": round(served.ready_s, 2),
        "server_exit_code": served.exit_code,
        "server_log": server_log,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


# -- the command -----------------------------------------------------------------------


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench load``."""
    parser.add_argument(
        "--memories",
        type=parse_count,
        default=MEMORIES,
        metavar="N",
        help="memories in the synthetic namespace (e.g. 2000, 100k; default 100k)",
    )
    parser.add_argument(
        "--clients", type=int, default=CLIENTS, help=f"concurrent clients ({CLIENTS})"
    )
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"how long to load ({SECONDS:g})"
    )
    parser.add_argument(
        "--recall-share",
        type=float,
        default=RECALL_SHARE,
        metavar="P",
        help=f"share of requests that recall; the others remember ({RECALL_SHARE:g})",
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="mean pause of each client between an answer and its next request, as an "
        "agent's between memory calls (0: none, the server's saturation)",
    )
    parser.add_argument(
        "--encoder",
        choices=ENCODERS,
        default="minilm",
        help="the server's encoder: the real model (default) or the hashing encoder "
        "(everything but the model's cost)",
    )
    parser.add_argument("-k", type=int, default=10, help="recall k (10)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_S,
        metavar="S",
        help=f"per-request timeout; a timeout is an error ({TIMEOUT_S:g})",
    )
    parser.add_argument("--worker-threads", type=int, default=None, help="server worker threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and clients (0)")
    parser.add_argument(
        "--data-dir-bench",
        type=Path,
        default=None,
        metavar="DIR",
        help="build the namespace here and keep it (reused by later runs with the same "
        "--memories and --seed, and by bench latency); default: a temporary directory",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_load_command(args: argparse.Namespace, settings: Any) -> int:
    """Run the benchmark from parsed arguments: 0 when no request failed and the server
    stopped cleanly, 1 otherwise, 2 for bad arguments. ``settings`` is not used: the
    server runs with the defaults (see :func:`serving`)."""
    problems = []
    if args.memories < 50:
        problems.append("--memories: must be at least 50")
    if args.clients < 1:
        problems.append("--clients: must be at least 1")
    if not args.seconds > 0:
        problems.append("--seconds: must be above 0")
    if not 0.0 <= args.recall_share <= 1.0:
        problems.append("--recall-share: must be within 0..1")
    if not args.timeout > 0:
        problems.append("--timeout: must be above 0")
    if not args.think_ms >= 0:
        problems.append("--think-ms: must be at least 0")
    workdir = args.data_dir_bench
    if (
        workdir is not None
        and workdir.exists()
        and any(workdir.iterdir())
        and manifest_matches(workdir, args.memories, args.seed) is None
    ):
        problems.append(
            f"--data-dir-bench: {workdir} is not empty and holds no bench namespace of "
            f"{args.memories} memories (seed {args.seed}); name a new directory"
        )
    for problem in problems:
        print(f"hippograph: {problem}", file=sys.stderr)
    if problems:
        return 2
    report = run_load(
        args.memories,
        clients=args.clients,
        seconds=args.seconds,
        recall_share=args.recall_share,
        k=args.k,
        seed=args.seed,
        timeout_s=args.timeout,
        think_ms=args.think_ms,
        encoder=args.encoder,
        workdir=workdir,
        worker_threads=args.worker_threads,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_summary(report)
    return 0 if report["errors"] == 0 and report["server_exit_code"] == 0 else 1


def _print_summary(r: dict[str, Any]) -> None:
    met = r["targets_met"]
    think = f", think {r['think_ms']:g} ms" if r["think_ms"] else ""
    print(
        f"{r['clients']} clients{think}, {r['seconds']:g} s, {r['memories']:,} memories, "
        f"encoder {r['encoder']}: "
        f"{r['requests']:,} requests, {r['throughput_rps']:g} req/s, {r['errors']} errors"
    )
    for name, op in r["ops"].items():
        print(
            f"  {name:<9} {op['count']:>7,}  p50 {op['p50_ms']:>8.2f} ms  "
            f"p99 {op['p99_ms']:>8.2f} ms  errors {op['errors']}"
        )
    print(
        f"targets: zero errors {'yes' if met['zero_errors'] else 'NO'}, recall p99 < "
        f"{r['targets']['recall_p99_ms']:g} ms {'yes' if met['recall_p99_ms'] else 'NO'}"
    )
    for sample in r["error_samples"]:
        print(f"  error: {sample}")
    if r["server_log"]:
        print(f"the server's log: {r['server_log']}")
    print(
        f"load average {r['load_average_before']} -> {r['load_average_after']} on "
        f"{r['cpus']} CPUs; server exit code {r['server_exit_code']}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m hippograph.api.bench.load``: the whole benchmark (``hippograph bench
    load``), or with ``--url`` only the driving part, against a server already running."""
    parser = argparse.ArgumentParser(
        prog="python -m hippograph.api.bench.load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_arguments(parser)
    parser.add_argument(
        "--url",
        default=None,
        help="drive this server (loopback) instead of building and starting one; it must "
        "serve the synthetic namespace of --memories and --seed",
    )
    args = parser.parse_args(argv)
    if args.url is None:
        return run_load_command(args, None)
    queries, words = synthetic_texts(args.memories, args.seed)
    options = {o: getattr(args, o) for o in ("clients", "seconds", "recall_share", "k", "seed")}
    result = _drive_bench(
        args.url, queries, words, timeout_s=args.timeout, think_ms=args.think_ms, **options
    )
    print(json.dumps(result.report(), indent=2))
    return 0 if result.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
