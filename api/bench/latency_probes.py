"""What ``hippograph bench latency`` measures with besides its clock: a fresh process
reopening the data directory (warm, cold from the page cache, and from the store alone),
memory use, the networkx reference graph and its agreement with the array activation,
and timers wrapped around the stages of recall.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import networkx as nx
import numpy as np
import psutil

import hippograph.graph.recall as recall_module
from hippograph.api.bench.common import SQLITE, BenchStore
from hippograph.api.bench.synthetic import DIM, NAMESPACE
from hippograph.graph import GraphConfig, MemoryGraph
from hippograph.graph.activation import Activation
from hippograph.graph.view import NamespaceView

__all__ = [
    "STAGES",
    "agreement",
    "capturing_seeds",
    "dir_mb",
    "evict_page_cache",
    "instrumented",
    "networkx_graph",
    "peak_rss_mb",
    "probe_cold_start",
    "probe_load",
    "rss_mb",
]

# A fresh process opens the store as the service would (api.settings.open_store: Neo4j
# when NEO4J_URI is set, else the SQLite file in the data directory), loads the
# namespace, and runs one recall.
_PROBE = r"""
import json, sys, time
from dataclasses import replace
import numpy as np
import psutil
from hippograph.api.settings import Settings, open_store
from hippograph.embeddings import HashingEncoder
from hippograph.graph import GraphConfig, MemoryGraph
args = json.loads(sys.argv[1])
config = replace(GraphConfig(), **args["config"])
t0 = time.perf_counter()
store = open_store(Settings(data_dir=args["data_dir"]))
graph = MemoryGraph(
    args["data_dir"], encoder=HashingEncoder(dim=args["dim"]), config=config, store=store
)
t1 = time.perf_counter()
ns = graph.namespace(args["namespace"])
t2 = time.perf_counter()
text, vector = args["query"]
graph.recall_vector(args["namespace"], text, np.array(vector, np.float32), k=10, learn=False)
t3 = time.perf_counter()
report = {
    "load_s": t2 - t0,
    "open_store_s": t1 - t0,
    "load_namespace_s": t2 - t1,
    "first_recall_s": t3 - t0,
    "rss_mb": psutil.Process().memory_info().rss / 2**20,
    "index_kind": ns.index.kind,
    "vectors": ns.index.live_count,
    "nodes": ns.view.n_nodes,
    "rebuilt": ns.dirty,
}
graph.close()
print(json.dumps(report))
"""


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def dir_mb(path: Path) -> float:
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(size / 2**20, 1)


def evict_page_cache(directory: Path) -> bool:
    """Drop the directory's files from the OS page cache (no root needed); False if the
    platform cannot."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:
        return False
    for path in directory.rglob("*"):
        if not path.is_file():
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages cannot be dropped
            advise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def probe_load(
    data_dir: Path,
    config: GraphConfig,
    store: BenchStore = SQLITE,
    query: tuple[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Open the data directory and its store in a fresh Python process, as a restart
    would, load the namespace and run one recall; time it (imports excluded)."""
    text, vector = query or ("", np.zeros(DIM, np.float32))
    args = {
        "data_dir": str(data_dir),
        "namespace": NAMESPACE,
        "dim": DIM,
        "query": [text, np.asarray(vector, np.float64).tolist()],
        "config": {
            key: getattr(config, key)
            for key in ("delta_limit", "hnsw_threshold", "hnsw_m", "ef_construction", "ef_search")
        },
    }
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    for name, value in store.env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reopening {data_dir} in a fresh process failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def probe_cold_start(
    data_dir: Path, config: GraphConfig, store: BenchStore, query: tuple[str, np.ndarray]
) -> dict[str, Any]:
    """A fresh process over an empty derived directory (the derived files set aside,
    put back afterwards): everything derived is rebuilt from the store before the
    first recall."""
    derived = data_dir / "derived"
    aside = data_dir / "derived.aside"
    shutil.rmtree(aside, ignore_errors=True)
    if derived.exists():
        derived.rename(aside)
    try:
        return probe_load(data_dir, config, store, query)
    finally:
        if aside.exists():
            shutil.rmtree(derived, ignore_errors=True)
            aside.rename(derived)


def networkx_graph(view: NamespaceView) -> nx.MultiGraph:
    """The view's adjacency as a networkx MultiGraph: each stored association once (CSR
    rows hold both directions; keep the i < j copy), attrs ``weight`` and ``type``."""
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(view.n_nodes))
    for layer in view.layers:
        rows = np.repeat(np.arange(layer.n_nodes, dtype=np.int64), np.diff(layer.indptr))
        chunk = 1_000_000
        for lo in range(0, len(rows), chunk):
            src = rows[lo : lo + chunk]
            dst = layer.indices[lo : lo + chunk].astype(np.int64)
            keep = src < dst
            graph.add_edges_from(
                (u, v, {"weight": w, "type": t})
                for u, v, w, t in zip(
                    src[keep].tolist(),
                    dst[keep].tolist(),
                    layer.weights[lo : lo + chunk][keep].tolist(),
                    layer.types[lo : lo + chunk][keep].tolist(),
                    strict=True,
                )
            )
    return graph


def agreement(array: Activation, reference: dict[int, float]) -> tuple[float, int]:
    """Max |energy difference| over the union of reached nodes (a node only one side
    reached counts with its full energy), and how many nodes only one side reached."""
    mine = dict(zip(array.nodes.tolist(), array.energy.tolist(), strict=True))
    only_one = len(mine.keys() ^ reference.keys())
    diff = max(
        (abs(mine.get(k, 0.0) - reference.get(k, 0.0)) for k in mine.keys() | reference.keys()),
        default=0.0,
    )
    return diff, only_one


# Stages of recall, as (object, attribute) that ``recall_vector`` calls. A stage's time is
# exclusive: a wrapped call made inside another (``reconstruct`` inside ``score_parts``,
# ``record_access`` inside ``learn``) is charged to itself only.
STAGES = (
    "index_seed",
    "lexical_seed",
    "reconstruct",
    "activation",
    "scoring",
    "paths",
    "fetch",
    "learn",
    "learn_flush",
)


@contextmanager
def instrumented(mg: MemoryGraph, ns: Any, spent: dict[str, int]) -> Iterator[None]:
    """Time the stages of recall (see ``STAGES``) by wrapping what ``recall_vector`` calls;
    restored on exit. ``spent`` receives exclusive nanoseconds per stage."""
    stack: list[list[int]] = []  # per active wrapped call: [time spent in wrapped children]

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            frame = [0]
            stack.append(frame)
            start = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter_ns() - start
                stack.pop()
                spent[name] = spent.get(name, 0) + elapsed - frame[0]
                if stack:
                    stack[-1][0] += elapsed

        return wrapper

    store = mg.store
    with ExitStack() as patches:
        for target, attribute, name in (
            (ns.index, "search", "index_seed"),
            (ns.view.lexical, "search", "lexical_seed"),
            (ns.index, "reconstruct", "reconstruct"),
            (recall_module, "spread_activation", "activation"),
            (mg.recaller, "score_parts", "scoring"),
            (recall_module, "paths_to", "paths"),
            (recall_module, "path_to", "paths"),
            (store, "recalled", "fetch"),
            (mg.access, "learn", "learn"),
            (store, "record_access", "learn_flush"),
        ):
            original = getattr(target, attribute, None)
            if original is not None:  # the engine may have renamed it: time what exists
                patches.enter_context(mock.patch.object(target, attribute, timed(name, original)))
        yield


@contextmanager
def capturing_seeds(into: list[tuple[np.ndarray, np.ndarray]]) -> Iterator[None]:
    """Record the seeds and energies every ``recall_vector`` spreads from."""
    original = recall_module.spread_activation

    def capture(layers: Any, seeds: Any, energy: Any, *args: Any, **kwargs: Any) -> Any:
        into.append((np.array(seeds, np.int64), np.array(energy, np.float64)))
        return original(layers, seeds, energy, *args, **kwargs)

    with mock.patch.object(recall_module, "spread_activation", capture):
        yield
