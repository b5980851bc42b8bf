"""What the benchmarks share, as public names: where a bench keeps its namespace
(:class:`BenchStore`, ``--store``), progress on stderr (:class:`Reporter`), the build of
the synthetic namespace into a data directory with its manifest (so a later run, of
this bench or another, reuses it), and small helpers for counts and timings.

The namespace itself is :mod:`hippograph.api.bench.synthetic`'s.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from hippograph.api.bench.synthetic import DIM, GENERATOR_VERSION, NAMESPACE, Synthetic
from hippograph.embeddings import HashingEncoder
from hippograph.graph import GraphConfig, MemoryGraph
from hippograph.graph.sqlite_store import SQLiteStore
from hippograph.graph.store import GraphStore

__all__ = [
    "MANIFEST",
    "SQLITE",
    "STORES",
    "WARMUP",
    "BenchStore",
    "Reporter",
    "add_store_argument",
    "bench_stores",
    "build_namespace",
    "manifest_matches",
    "metric_means",
    "ms_summary",
    "parse_count",
    "stage_means",
    "stored_memories",
    "write_manifest",
]

MANIFEST = "bench.json"
WARMUP = 5  # untimed queries before each timed loop
BATCH = 10_000  # memories per store write


@dataclass(frozen=True)
class BenchStore:
    """Where a benchmark keeps its namespace: ``open(data_dir)`` opens the store, and a
    fresh process given ``env`` (None: unset) opens the same one through
    ``hippograph.api.settings.open_store``."""

    name: str
    open: Callable[[Path], GraphStore]
    env: Mapping[str, str | None] = field(default_factory=dict)


def _sqlite_store(data_dir: Path) -> GraphStore:
    return SQLiteStore(data_dir / "hippograph.db")


SQLITE = BenchStore("sqlite", _sqlite_store, {"NEO4J_URI": None})
STORES = ("sqlite", "neo4j", "both")


def bench_stores(choice: str, settings: Any) -> list[BenchStore]:
    """The stores ``--store`` names, SQLite first; Neo4j is the server the settings
    point at (``NEO4J_URI``), opened with ``hippograph.api.settings.open_store``."""
    if choice not in STORES:
        raise ValueError(f"--store: one of {', '.join(STORES)}, got {choice!r}")
    stores = [SQLITE] if choice in ("sqlite", "both") else []
    if choice in ("neo4j", "both"):
        if not getattr(settings, "neo4j_uri", None):
            raise ValueError("--store neo4j: set NEO4J_URI (and NEO4J_USER, NEO4J_PASSWORD)")
        from hippograph.api.settings import open_store

        stores.append(BenchStore("neo4j", lambda _dir: open_store(settings), {}))
    return stores


def add_store_argument(parser: argparse.ArgumentParser) -> None:
    """``--store``: one of :data:`STORES`, for :func:`bench_stores`."""
    parser.add_argument(
        "--store",
        choices=STORES,
        default="sqlite",
        help="the store the namespace lives in: sqlite (default), neo4j (NEO4J_URI), or "
        "both, SQLite first, in one run",
    )


# -- progress ------------------------------------------------------------------------------


class Reporter:
    """Progress bars on stderr (rich), or nothing. When stderr is not a terminal (a log
    file), each task also logs a line at every tenth of its way and when it is done."""

    def __init__(self, enabled: bool) -> None:
        self.console = Console(stderr=True)
        self._state: dict[TaskID, list[Any]] = {}  # description, total, done, start, next log
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def task(self, description: str, total: int) -> TaskID | None:
        if self._progress is None:
            return None
        task = self._progress.add_task(description, total=total)
        self._state[task] = [description, max(total, 1), 0, time.perf_counter(), 0.1]
        return task

    def update(self, task: TaskID | None, completed: int) -> None:
        if self._progress is None or task is None:
            return
        self._progress.update(task, completed=completed)
        state = self._state[task]
        description, total, _, started, next_log = state
        state[2] = completed
        if self.console.is_terminal or completed < next_log * total:
            return
        elapsed = time.perf_counter() - started
        if completed >= total:
            state[4] = math.inf
            self.log(f"{description}: done, {completed:,} in {elapsed:.1f} s")
        else:
            state[4] = math.floor(10 * completed / total) / 10 + 0.1
            self.log(f"{description}: {completed:,} of {total:,} in {elapsed:.1f} s")

    def advance(self, task: TaskID | None, amount: int = 1) -> None:
        if task is not None and task in self._state:
            self.update(task, self._state[task][2] + amount)

    def finish(self, task: TaskID | None) -> None:
        if task is not None and task in self._state:
            self.update(task, self._state[task][1])

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.log(message)


# -- measuring ----------------------------------------------------------------------------


def ms_summary(nanoseconds: Sequence[int] | np.ndarray) -> dict[str, float]:
    """p50, p99, mean and max in milliseconds of times in nanoseconds (NaN when none)."""
    ms = np.asarray(nanoseconds, dtype=np.float64) / 1e6
    if len(ms) == 0:
        return {"p50": math.nan, "p99": math.nan, "mean": math.nan, "max": math.nan}
    p50, p99 = np.percentile(ms, [50, 99])
    return {
        "p50": round(float(p50), 4),
        "p99": round(float(p99), 4),
        "mean": round(float(ms.mean()), 4),
        "max": round(float(ms.max()), 4),
    }


def parse_count(text: str) -> int:
    """``100000``, ``100_000``, ``100k`` or ``1M``."""
    raw = text.strip().lower().replace("_", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(raw[-1:], 1)
    try:
        value = float(raw[:-1] if scale > 1 else raw) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}") from None
    if value != int(value) or value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole count: {text!r}")
    return int(value)


def metric_means(metrics: str, family: str, label: str) -> dict[str, float]:
    """Mean milliseconds per value of ``label`` of the histogram ``family`` in a server's
    ``/metrics`` text (the sums and counts of every series with that value added up)."""
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for found in text_string_to_metric_families(metrics):
        if found.name != family:
            continue
        for sample in found.samples:
            value = sample.labels.get(label, "")
            if sample.name.endswith("_sum"):
                sums[value] = sums.get(value, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[value] = counts.get(value, 0.0) + sample.value
    return {v: round(1000.0 * sums[v] / counts[v], 2) for v in sums if counts.get(v)}


def stage_means(metrics: str) -> dict[str, float]:
    """Mean milliseconds per recall stage, as the server measured them (all phases)."""
    return metric_means(metrics, "hippograph_recall_stage_duration_seconds", "stage")


# -- build ---------------------------------------------------------------------------------


def stored_memories(store: BenchStore, data_dir: Path) -> int:
    """How many memories the bench namespace has in ``store`` (0: the store lacks it)."""
    opened = store.open(data_dir)
    try:
        return sum(opened.stats(NAMESPACE)["tiers"].values())
    finally:
        opened.close()


def manifest_matches(data_dir: Path, memories: int, seed: int) -> dict[str, Any] | None:
    """The manifest in ``data_dir`` when it records a complete build of this generator,
    size and seed; None otherwise."""
    path = data_dir / MANIFEST
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    wanted = {
        "generator": GENERATOR_VERSION,
        "memories": memories,
        "seed": seed,
        "dim": DIM,
        "namespace": NAMESPACE,
    }
    if any(manifest.get(k) != v for k, v in wanted.items()) or not manifest.get("complete"):
        return None
    return manifest


def write_manifest(data_dir: Path, memories: int, seed: int, build_s: dict[str, float]) -> None:
    """Record in ``data_dir`` that it holds the whole synthetic namespace of ``memories``
    and ``seed`` (with the build's seconds per stage): what :func:`manifest_matches`
    reads."""
    manifest = {
        "generator": GENERATOR_VERSION,
        "memories": memories,
        "seed": seed,
        "dim": DIM,
        "namespace": NAMESPACE,
        "complete": True,
        "build_s": build_s,
    }
    (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))


def build_namespace(
    data_dir: Path,
    synth: Synthetic,
    config: GraphConfig,
    reporter: Reporter,
    store: BenchStore = SQLITE,
) -> dict[str, float]:
    """Write the synthetic namespace to the store, rebuild the derived structures, close.
    Returns seconds per stage."""
    n = synth.n
    now = time.time()
    stages: dict[str, float] = {"generate": 0.0, "store_write": 0.0}
    t_start = time.perf_counter()
    vectors = np.empty((n, synth.dim), np.float32)
    mg = MemoryGraph(
        data_dir, encoder=HashingEncoder(dim=DIM), config=config, store=store.open(data_dir)
    )
    try:
        if mg.store.generation(NAMESPACE):
            raise ValueError(
                f"the {store.name} store already holds namespace {NAMESPACE!r}: give an "
                "empty database"
            )
        task = reporter.task(f"generate + write {store.name}", n)
        for start in range(0, n, BATCH):
            stop = min(start + BATCH, n)
            t0 = time.perf_counter()
            batch = synth.batch(start, stop, vectors, now)
            t1 = time.perf_counter()
            mg.store.write(NAMESPACE, batch)
            t2 = time.perf_counter()
            stages["generate"] += t1 - t0
            stages["store_write"] += t2 - t1
            reporter.advance(task, stop - start)
        del vectors, batch
        synth.members = []
        gc.collect()

        marks: dict[str, float] = {}
        view_task = reporter.task("rebuild: view (CSR)", 1)
        index_task = reporter.task("rebuild: vector index", n)

        def on_progress(stage: str, count: int) -> None:
            marks[stage] = time.perf_counter()
            if stage == "view":
                reporter.finish(view_task)
            elif stage == "index":
                reporter.update(index_task, count)

        t0 = time.perf_counter()
        mg.rebuild(NAMESPACE, progress=on_progress)
        t1 = time.perf_counter()
        stages["view"] = marks.get("view", t0) - t0
        stages["index"] = marks.get("index", t1) - marks.get("view", t0)
        stages["passage_index"] = marks.get("passages", t1) - marks.get("index", t1)
        stages["save"] = t1 - marks.get("passages", t1)
        stages["rebuild"] = t1 - t0
    finally:
        t0 = time.perf_counter()
        mg.close()
        stages["close"] = time.perf_counter() - t0
    stages["total"] = time.perf_counter() - t_start
    return {k: round(v, 2) for k, v in stages.items()}
