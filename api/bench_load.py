"""``hippograph bench load``: many clients at once against the real server, over loopback.

This module owns the hippograph side of the load benchmark: the data directory and the
server. The namespace is the synthetic one of ``hippograph bench latency`` (the
generator and builder of :mod:`hippograph.api.bench`, written straight to the store and turned into
the derived structures with :meth:`graph.MemoryGraph.rebuild`), 100k memories by default.
The server is :func:`hippograph.api.app.create_app` under uvicorn in a separate process, on a free
loopback port. It encodes with the real model (``--encoder minilm``, the default: every
recall's query and every remembered note and its passages go through all-MiniLM-L6-v2,
as in the deployed service) or with the hashing encoder at the data's 384 dimensions
(``--encoder hashing``: the cost of everything but the model). The stored vectors are
the generator's either way; for the model, the served copy's saved indexes are labelled
with the model's name (their contents do not depend on the encoder that is named), so
the server does not rebuild them. The load itself, 50 closed-loop clients for 60 s, 80%
recall and 20% remember, is ``tests/benchmarks/load.py``'s :func:`drive`, loaded from the
source checkout.

Reported: throughput, p50/p99 and errors per operation (any non-200, GraphQL error or
timeout is an error), and whether the targets were met: no errors, recall p99 under
100 ms. A data directory given with ``--data-dir-bench`` is built once (or is one that
``bench latency`` built) and reused: each run serves a copy of it, since remember
changes the data.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import httpx
from hippograph.api.bench import (
    DIM,
    GENERATOR_VERSION,
    MANIFEST,
    NAMESPACE,
    _build,
    _count,
    _manifest_matches,
    _Reporter,
    _Synthetic,
)
from hippograph.api.bench_serve import _free_port, _stage_means
from hippograph.embeddings.encoder import MODEL_NAME
from hippograph.graph import GraphConfig

__all__ = [
    "Served",
    "add_load_arguments",
    "load_driver",
    "prepare",
    "run_load",
    "run_load_command",
    "serving",
    "synthetic_texts",
]

MEMORIES = 100_000
CLIENTS = 50
SECONDS = 60.0
RECALL_SHARE = 0.8
TIMEOUT_S = 10.0
QUERIES = 512  # distinct recall texts
TARGET_RECALL_P99_MS = 100.0
READY_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 120.0
DRIVER = Path(__file__).resolve().parents[1] / "tests" / "benchmarks" / "load.py"

ENCODERS = ("minilm", "hashing")

# The server process: the app over a graph with the chosen 384-d encoder.
_SERVER = r"""
import sys
from hippograph.api.bench_load import _serve
sys.exit(_serve(int(sys.argv[1])))
"""


def load_driver() -> ModuleType:
    """``tests/benchmarks/load.py`` as a module (it lives with the tests, not in the
    installed packages: this command needs the source checkout)."""
    if not DRIVER.is_file():
        raise FileNotFoundError(
            f"the load driver {DRIVER} is missing: bench load runs from a source checkout"
        )
    name = "hippograph_load_driver"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DRIVER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


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
    manifest = _manifest_matches(data_dir, memories, seed)
    if manifest is not None:
        return dict(manifest["build_s"]), True
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ValueError(
            f"{data_dir} is not empty and holds no bench namespace of {memories} memories "
            f"(seed {seed}); give an empty or new directory"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with _Reporter(progress) as reporter:
        stages = _build(data_dir, _Synthetic(memories, seed, DIM), GraphConfig(), reporter)
    manifest = {
        "generator": GENERATOR_VERSION,
        "memories": memories,
        "seed": seed,
        "dim": DIM,
        "namespace": NAMESPACE,
        "complete": True,
        "build_s": stages,
    }
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return stages, False


def synthetic_texts(memories: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Recall queries (topic words of the namespace's clusters) and the vocabulary the
    remembered notes are made of."""
    synth = _Synthetic(memories, seed, DIM)
    return [text for text, _ in synth.queries(QUERIES)], list(synth.vocab)


# -- the server ------------------------------------------------------------------------


def _serve(port: int) -> int:
    """The server process: settings from the environment, the settings' encoder (the
    hashing one at the data's dimension), uvicorn on 127.0.0.1:``port`` until SIGTERM."""
    import faiss
    import uvicorn
    from hippograph.api.app import configure_logging, create_app
    from hippograph.api.settings import Settings, make_encoder, open_store
    from hippograph.embeddings import HashingEncoder
    from hippograph.graph import MemoryGraph

    settings = Settings()
    faiss.omp_set_num_threads(settings.faiss_threads)
    store = open_store(settings)
    graph = MemoryGraph(
        settings.data_dir,
        encoder=HashingEncoder(dim=DIM)
        if settings.encoder == "hashing"
        else make_encoder(settings),
        config=settings.graph_config(),
        store=store,
    )
    app = create_app(settings, graph=graph)  # the app owns and closes the graph
    configure_logging(settings.log_level)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        server_header=False,
    )
    server = uvicorn.Server(config)

    # uvicorn shuts down on SIGTERM, then re-raises it to the handler it found: this one,
    # so a clean stop exits 0 (as ``hippograph serve`` does)
    def note(signum: int, frame: FrameType | None) -> None:
        pass

    signal.signal(signal.SIGTERM, note)
    signal.signal(signal.SIGINT, note)
    server.run()
    return 0 if server.started else 1


@dataclass
class Served:
    """A running server: its base URL, its log, and (once stopped) its exit code."""

    url: str
    log_path: Path
    process: subprocess.Popen[bytes]
    ready_s: float
    exit_code: int | None = None


@contextmanager
def serving(
    data_dir: Path,
    *,
    encoder: str = "hashing",
    log_path: Path | None = None,
    worker_threads: int | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[Served]:
    """Serve ``data_dir`` in a separate process on a free loopback port until the block
    ends; then SIGTERM (a clean shutdown, its exit code in ``Served.exit_code``), or
    SIGKILL if it has not stopped within two minutes.

    The ``HIPPOGRAPH_*`` settings of the calling environment are not passed on: the
    server runs with the defaults, ``encoder`` (one of :data:`ENCODERS`; the saved indexes
    of ``data_dir`` are labelled for it, see the module docstring), the lifecycle
    schedule off and warnings-only logs.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {encoder!r}")
    _label_indexes(data_dir, encoder)
    log_path = log_path or data_dir.with_name(data_dir.name + "-server.log")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIPPOGRAPH_")}
    env.update(
        HIPPOGRAPH_DATA_DIR=str(data_dir),
        HIPPOGRAPH_ENCODER=encoder,
        HIPPOGRAPH_LIFECYCLE_INTERVAL_S="0",
        HIPPOGRAPH_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    if worker_threads is not None:
        env["HIPPOGRAPH_WORKER_THREADS"] = str(worker_threads)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port)], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.perf_counter()
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({process.returncode}) before it was ready:\n"
                    + _tail(log_path)
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_timeout_s:g} s")
            time.sleep(0.2)
        served = Served(url, log_path, process, time.perf_counter() - started)
        yield served
        process.send_signal(signal.SIGTERM)
        served.exit_code = process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _label_indexes(data_dir: Path, encoder: str) -> None:
    """Name ``encoder``'s model in the metadata of the vector indexes saved in
    ``data_dir``: the bench's vectors are the generator's, whichever encoder serves."""
    name = MODEL_NAME if encoder == "minilm" else f"hashing-{DIM}"
    for path in (data_dir / "derived").glob("*.json"):
        saved = json.loads(path.read_text())
        meta = saved.get("meta")
        if isinstance(meta, dict) and "model" in meta and meta["model"] != name:
            meta["model"] = name
            path.write_text(json.dumps(saved, indent=1))


def _request_means(metrics: str) -> dict[str, float]:
    """Mean milliseconds per GraphQL operation from the server's first byte in to its
    last byte out (warm-up included): the client's figure less this is spent queueing
    outside the server's request handling (connections, the driver's own event loop)."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name != "hippograph_request_duration_seconds":
            continue
        for sample in family.samples:
            operation = sample.labels.get("operation", "")
            if sample.name.endswith("_sum"):
                sums[operation] = sums.get(operation, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[operation] = counts.get(operation, 0.0) + sample.value
    return {op: round(1000.0 * sums[op] / counts[op], 2) for op in sums if counts.get(op)}


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


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
    driver = load_driver()
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
            result = asyncio.run(
                driver.drive(
                    served.url,
                    namespace=NAMESPACE,
                    queries=queries,
                    words=words,
                    clients=clients,
                    seconds=seconds,
                    recall_share=recall_share,
                    k=k,
                    seed=seed,
                    timeout_s=timeout_s,
                    think_ms=think_ms,
                )
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
        "server_recall_stage_mean_ms": _stage_means(metrics),
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
        type=_count,
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
        and _manifest_matches(workdir, args.memories, args.seed) is None
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
    parser = argparse.ArgumentParser(
        prog="python -m hippograph.api.bench_load", description=__doc__
    )
    add_load_arguments(parser)
    return run_load_command(parser.parse_args(argv), None)


if __name__ == "__main__":
    raise SystemExit(main())
