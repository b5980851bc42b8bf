"""``hippograph bench latency``: recall latency on a synthetic namespace of N memories.

This module owns the latency benchmark and nothing else: a deterministic generator of a
synthetic namespace (clustered random unit vectors, ~10 associations per memory, topical
full-text content), written straight to the store in batches and turned into the derived
structures with :meth:`graph.MemoryGraph.rebuild`; then, on that one graph, it measures

* recall end to end (:meth:`~graph.MemoryGraph.recall_vector`: the query embedding is not
  timed), and where its time goes (index seed, full-text seed, vector reconstruct,
  activation, scoring, paths, fetch, learning), from a second pass in which the engine's
  calls are wrapped with timers (restored afterwards);
* the seed searches alone: FAISS (:class:`embeddings.VectorIndex`), FTS5 BM25, and an
  exact numpy brute force over every vector (which also gives the index's recall@k);
* spreading activation alone over the CSR arrays, and the same spread with the
  networkx reference implementation from the same seeds (they must agree);
* the time to reopen the data directory in a fresh process, as a restart would, and the
  store's **cold start**: a fresh process over an empty derived directory, which must
  rebuild the view and the vector indexes from the store, timed to its first recall
  (and the same with the derived files in place: warm reopen);
* build time per stage and memory use.

The namespace lives in the store ``--store`` names: ``sqlite`` (the file in the data
directory, the default), ``neo4j`` (the server ``NEO4J_URI`` points at, through the same
``GraphStore`` batches), or ``both``: SQLite first, then Neo4j, in one run, each report
beside the other.

:func:`run_latency` is the core and knows nothing of settings; :func:`add_latency_arguments`
and :func:`run_latency_command` are the thin CLI layer ``hippograph.api.cli`` wires up. A data
directory given with ``--data-dir-bench`` is kept, and reused by a later run with the same
``--memories`` and ``--seed`` (the build is then skipped and its recorded timings reported).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import faiss
import hippograph.graph.memory as memory_module
import networkx as nx
import numpy as np
import psutil
from hippograph.embeddings import HashingEncoder
from hippograph.graph import (
    Association,
    AssociationType,
    GraphConfig,
    Memory,
    MemoryGraph,
    MemoryKind,
    Tier,
)
from hippograph.graph.activation import Activation, spread_activation, spread_activation_networkx
from hippograph.graph.model import ENTITY_PREFIX
from hippograph.graph.sqlite_store import SQLiteStore
from hippograph.graph.store import GraphStore, WriteBatch
from hippograph.graph.view import NamespaceView
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
from rich.table import Table

__all__ = [
    "STORES",
    "BenchError",
    "BenchStore",
    "add_latency_arguments",
    "add_store_argument",
    "bench_stores",
    "run_latency",
    "run_latency_command",
]

DIM = 384  # the production model's dimension (all-MiniLM-L6-v2)
NAMESPACE = "bench"
GENERATOR_VERSION = 2  # bump when the synthetic data changes: old data dirs are not reused
MANIFEST = "bench.json"
WARMUP = 5  # untimed queries before each timed loop
AGREEMENT_TOL = 1e-9  # max |array - networkx| activation allowed

# The synthetic namespace.
BATCH = 10_000  # memories per store write
CLUSTER_SIZE = 100  # memories per topic cluster, on average
SPREAD = 0.75  # noise norm around a unit cluster centre: members' cosine ~ 1 / (1 + 0.75^2)
VOCABULARY = 5_000  # synthetic words; background words follow Zipf's law over them
COMMON_WORDS = 200  # the most frequent words are never topic words
TOPIC_WORDS = 8  # words of each cluster's topic
TOPICAL_SHARE = 0.5  # share of a memory's words drawn from its cluster's topic
WORDS = (8, 12)  # words per memory (inclusive)
QUERY_WORDS = 3  # topic words in a query's text
SESSION = (10, 30)  # memories per session (inclusive): ~20 consecutive memories
SESSION_CLUSTERS = 2  # topics a session moves between
SIMILAR = 5  # SIMILAR_TO edges to earlier memories of the same cluster
MENTIONS = (2, 3)  # MENTIONS edges per memory (inclusive)
# passages, as remember() makes them (graph.text.passages): a third of the memories are
# long enough for sentence vectors, and every memory that follows another in its session
# has a context vector (the two read together)
PASSAGE_SHARE = 1 / 3
PASSAGES_EACH = 3
PASSAGE_NOISE = 0.5
ENTITY_SHARE = 20  # one entity per this many memories
LOCAL_ENTITIES = 5  # entities owned by each cluster
GLOBAL_MENTION_SHARE = 0.5  # share of mentions drawn from the global (Zipf) popularity
ZIPF_OFFSET = 10.0  # Zipf-Mandelbrot offset of entity popularity: p(rank) ~ 1 / (rank + 10)
DAYS = 180  # occurred_at spans this many days, ending at build time
WORKING_DAYS = 7  # memories younger than this are in the working tier, older are episodic
FOLLOWS_WEIGHT = (0.7, 0.9)  # weights are jittered so no two activations tie by accident
MENTION_WEIGHT = (0.5, 0.7)

# Targets from the issue: recall (p50, p99) ms at 100k memories, and at 1M (applied above
# 100k); activation at least this many times faster than networkx; reopen within seconds.
RECALL_TARGETS_MS = {100_000: (2.0, 10.0), 1_000_000: (5.0, 20.0)}
SPEEDUP_TARGET = 10.0
LOAD_TARGET_S = 30.0

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
    parser.add_argument(
        "--store",
        choices=STORES,
        default="sqlite",
        help="the store the namespace lives in: sqlite (default), neo4j (NEO4J_URI), or "
        "both, SQLite first, in one run",
    )


class BenchError(AssertionError):
    """The benchmark's own check failed (the array and networkx activations disagree).

    ``result`` holds everything measured, so a caller can still print it.
    """

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


# -- progress ------------------------------------------------------------------------------


class _Reporter:
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

    def __enter__(self) -> _Reporter:
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


# -- the synthetic namespace ---------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """Pronounceable three-syllable pseudo-words: no stopwords, no stemming collisions."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    s = len(syllables)
    picks = rng.choice(s**3, size=size, replace=False)
    return [
        syllables[i // (s * s)] + syllables[(i // s) % s] + syllables[i % s] for i in picks.tolist()
    ]


class _Synthetic:
    """Deterministic plan of the namespace: clusters, sessions, words, entities.

    Everything but the per-batch noise is drawn up front, so queries can be made again
    (for a reused data directory) without generating the memories.
    """

    def __init__(self, memories: int, seed: int, dim: int) -> None:
        n = memories
        rng = np.random.default_rng([seed, 0])
        self.n, self.seed, self.dim = n, seed, dim
        self.n_clusters = max(4, n // CLUSTER_SIZE)
        self.centres = _unit(rng.standard_normal((self.n_clusters, dim), dtype=np.float32))
        self.vocab = _vocabulary(rng, VOCABULARY)
        word_p = 1.0 / np.arange(1, VOCABULARY + 1)
        self.word_cdf = np.cumsum(word_p / word_p.sum())
        self.topics = rng.integers(COMMON_WORDS, VOCABULARY, size=(self.n_clusters, TOPIC_WORDS))
        lengths = rng.integers(SESSION[0], SESSION[1] + 1, size=n // SESSION[0] + 1)
        self.session_of = np.repeat(np.arange(len(lengths)), lengths)[:n]
        topics_of_session = rng.integers(0, self.n_clusters, size=(len(lengths), SESSION_CLUSTERS))
        pick = rng.integers(0, SESSION_CLUSTERS, size=n)
        self.cluster_of = topics_of_session[self.session_of, pick]
        self.n_entities = max(16, n // ENTITY_SHARE)
        entity_p = 1.0 / (np.arange(self.n_entities) + ZIPF_OFFSET)
        self.entity_cdf = np.cumsum(entity_p / entity_p.sum())
        self.importance = rng.uniform(0.2, 0.8, size=n)
        self.members: list[list[int]] = [[] for _ in range(self.n_clusters)]
        self.sampler = random.Random(seed)

    @staticmethod
    def memory_id(i: int) -> str:
        return f"m{i:07d}"

    @staticmethod
    def entity_key(e: int) -> str:
        return f"e{e:06d}"

    def batch(self, start: int, stop: int, vectors: np.ndarray, now: float) -> WriteBatch:
        """Memories ``start..stop`` with their associations; fills ``vectors[start:stop]``.

        Batches must be made in order: SIMILAR_TO picks among earlier memories.
        """
        rng = np.random.default_rng([self.seed, 1, start])
        m = stop - start
        clusters = self.cluster_of[start:stop]
        noise = _unit(rng.standard_normal((m, self.dim), dtype=np.float32))
        vectors[start:stop] = _unit(self.centres[clusters] + SPREAD * noise)
        split = rng.random(m) < PASSAGE_SHARE
        passage_noise = _unit(rng.standard_normal((m, PASSAGES_EACH, self.dim), dtype=np.float32))
        sentence_vectors = _unit(vectors[start:stop, None, :] + PASSAGE_NOISE * passage_noise)
        # content: topical words of the cluster mixed with Zipf-distributed background
        lengths = rng.integers(WORDS[0], WORDS[1] + 1, size=m)
        total = int(lengths.sum())
        owner = np.repeat(clusters, lengths)
        topical = self.topics[owner, rng.integers(0, TOPIC_WORDS, size=total)]
        background = np.searchsorted(self.word_cdf, rng.random(total))
        words = np.where(rng.random(total) < TOPICAL_SHARE, topical, background).tolist()
        ends = np.cumsum(lengths).tolist()
        # entities: half by global popularity (Zipf-Mandelbrot), half the cluster's own
        n_mentions = rng.integers(MENTIONS[0], MENTIONS[1] + 1, size=m)
        mention_total = int(n_mentions.sum())
        popular = np.minimum(
            np.searchsorted(self.entity_cdf, rng.random(mention_total)), self.n_entities - 1
        )
        local = (
            np.repeat(clusters, n_mentions) * LOCAL_ENTITIES
            + rng.integers(0, LOCAL_ENTITIES, size=mention_total)
        ) % self.n_entities
        entities = np.where(rng.random(mention_total) < GLOBAL_MENTION_SHARE, popular, local)
        mention_w = rng.uniform(*MENTION_WEIGHT, size=mention_total).tolist()
        mention_ends = np.cumsum(n_mentions).tolist()
        follows_w = rng.uniform(*FOLLOWS_WEIGHT, size=m).tolist()
        # SIMILAR_TO: earlier memories of the same cluster, weighted by cosine
        similar: list[list[int]] = []
        for i, c in zip(range(start, stop), clusters.tolist(), strict=True):
            earlier = self.members[c]
            similar.append(
                list(earlier) if len(earlier) <= SIMILAR else self.sampler.sample(earlier, SIMILAR)
            )
            earlier.append(i)
        pairs_a = np.repeat(np.arange(start, stop), [len(s) for s in similar])
        pairs_b = np.array([j for s in similar for j in s], dtype=np.int64)
        cosines = np.einsum("ij,ij->i", vectors[pairs_a], vectors[pairs_b]) if len(pairs_b) else []
        similar_w = np.clip(np.asarray(cosines, np.float64), 0.0, 1.0).tolist()

        batch = WriteBatch()
        span = DAYS * 86_400.0
        working_after = now - WORKING_DAYS * 86_400.0
        word_start, mention_start, pair = 0, 0, 0
        vocab, memory_id = self.vocab, self.memory_id
        follows, similar_to, mentions = (
            AssociationType.FOLLOWS,
            AssociationType.SIMILAR_TO,
            AssociationType.MENTIONS,
        )
        for row, i in enumerate(range(start, stop)):
            epoch = now - span * (1.0 - i / self.n)
            when = datetime.fromtimestamp(epoch, UTC)
            mid = memory_id(i)
            session = int(self.session_of[i])
            follows_previous = i > 0 and self.session_of[i - 1] == session
            batch.memories.append(
                Memory(
                    id=mid,
                    namespace=NAMESPACE,
                    content=" ".join([vocab[w] for w in words[word_start : ends[row]]]),
                    kind=MemoryKind.EVENT,
                    tier=Tier.WORKING if epoch >= working_after else Tier.EPISODIC,
                    session_id=f"s{session:07d}",
                    created_at=when,
                    occurred_at=when,
                    importance=float(self.importance[i]),
                    embedding=vectors[i],
                    passages=sentence_vectors[row] if split[row] else None,
                    context_embedding=_unit(vectors[i - 1] + vectors[i])
                    if follows_previous
                    else None,
                )
            )
            word_start = ends[row]
            edges = batch.edges
            if follows_previous:
                edges.append(Association(memory_id(i - 1), mid, follows, follows_w[row], when))
            for j in similar[row]:
                edges.append(Association(mid, memory_id(j), similar_to, similar_w[pair], when))
                pair += 1
            named: set[int] = set()
            for slot in range(mention_start, mention_ends[row]):
                e = int(entities[slot])
                if e in named:
                    continue
                named.add(e)
                key = self.entity_key(e)
                batch.entities[key] = f"Entity {e}"
                target = ENTITY_PREFIX + key
                edges.append(Association(mid, target, mentions, mention_w[slot], when))
            mention_start = mention_ends[row]
        return batch

    def queries(self, count: int) -> list[tuple[str, np.ndarray]]:
        """``count`` (text, unit vector): a random memory's cluster centre plus noise, and a
        few of that cluster's topic words."""
        rng = np.random.default_rng([self.seed, 2])
        out: list[tuple[str, np.ndarray]] = []
        for i in rng.integers(0, self.n, size=count).tolist():
            c = int(self.cluster_of[i])
            noise = _unit(rng.standard_normal(self.dim, dtype=np.float32))
            vector = _unit(self.centres[c] + SPREAD * noise).astype(np.float32)
            words = rng.choice(self.topics[c], size=QUERY_WORDS, replace=False).tolist()
            out.append((" ".join(self.vocab[w] for w in words), vector))
        return out


# -- measuring helpers ---------------------------------------------------------------------


def _summary(nanoseconds: Sequence[int] | np.ndarray) -> dict[str, float]:
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


def _rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def _dir_mb(path: Path) -> float:
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return round(size / 2**20, 1)


def _evict_page_cache(directory: Path) -> bool:
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


def _probe_load(
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
    root = str(Path(__file__).resolve().parents[1])
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


def _cold_start(
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
        return _probe_load(data_dir, config, store, query)
    finally:
        if aside.exists():
            shutil.rmtree(derived, ignore_errors=True)
            aside.rename(derived)


def _networkx_graph(view: NamespaceView) -> nx.MultiGraph:
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


def _agreement(array: Activation, reference: dict[int, float]) -> tuple[float, int]:
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
# exclusive: a wrapped call made inside another (``reconstruct`` inside ``_score_parts``,
# ``record_access`` inside ``_learn``) is charged to itself only.
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
def _instrumented(mg: MemoryGraph, ns: Any, spent: dict[str, int]) -> Iterator[None]:
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
            (memory_module, "spread_activation", "activation"),
            (mg, "_score_parts", "scoring"),
            (memory_module, "paths_to", "paths"),
            (memory_module, "path_to", "paths"),
            (store, "recalled", "fetch"),
            (mg, "_learn", "learn"),
            (store, "record_access", "learn_flush"),
        ):
            original = getattr(target, attribute, None)
            if original is not None:  # the engine may have renamed it: time what exists
                patches.enter_context(mock.patch.object(target, attribute, timed(name, original)))
        yield


@contextmanager
def _capturing_seeds(into: list[tuple[np.ndarray, np.ndarray]]) -> Iterator[None]:
    """Record the seeds and energies every ``recall_vector`` spreads from."""
    original = memory_module.spread_activation

    def capture(layers: Any, seeds: Any, energy: Any, *args: Any, **kwargs: Any) -> Any:
        into.append((np.array(seeds, np.int64), np.array(energy, np.float64)))
        return original(layers, seeds, energy, *args, **kwargs)

    with mock.patch.object(memory_module, "spread_activation", capture):
        yield


# -- build ---------------------------------------------------------------------------------


def _stored_memories(store: BenchStore, data_dir: Path) -> int:
    """How many memories the bench namespace has in ``store`` (0: the store lacks it)."""
    opened = store.open(data_dir)
    try:
        return sum(opened.stats(NAMESPACE)["tiers"].values())
    finally:
        opened.close()


def _manifest_matches(data_dir: Path, memories: int, seed: int) -> dict[str, Any] | None:
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


def _build(
    data_dir: Path,
    synth: _Synthetic,
    config: GraphConfig,
    reporter: _Reporter,
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


# -- the benchmark -------------------------------------------------------------------------


def _targets(memories: int) -> dict[str, float]:
    p50, p99 = RECALL_TARGETS_MS[100_000 if memories <= 100_000 else 1_000_000]
    return {
        "recall_p50_ms": p50,
        "recall_p99_ms": p99,
        "activation_speedup": SPEEDUP_TARGET,
        "load_s": LOAD_TARGET_S,
    }


def run_latency(
    memories: int,
    *,
    queries: int = 200,
    seed: int = 0,
    workdir: Path | None = None,
    config: GraphConfig | None = None,
    progress: bool = True,
    store: BenchStore = SQLITE,
) -> dict[str, Any]:
    """Build (or reuse) a synthetic namespace of ``memories`` memories and measure recall.

    Parameters
    ----------
    memories:
        Memories in the namespace (at least 50).
    queries:
        Timed queries per measurement (each loop first runs a few untimed ones).
    seed:
        Seed of the synthetic data and the queries.
    workdir:
        The data directory to build in, kept afterwards and reused by a later run with
        the same ``memories`` and ``seed``; a temporary directory (deleted) when None.
    config:
        Engine parameters; ``GraphConfig()`` when None.
    progress:
        Show progress bars on stderr.
    store:
        The store holding the namespace (SQLite in the data directory by default).

    Returns
    -------
    dict
        JSON-ready report; times in ms unless the key ends in ``_s``.

    Raises
    ------
    BenchError
        When the array and networkx activations disagree (its ``result`` has the report).
    """
    if isinstance(memories, bool) or not isinstance(memories, int) or memories < 50:
        raise ValueError(f"memories must be an integer >= 50, got {memories!r}")
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
        raise ValueError(f"queries must be a positive integer, got {queries!r}")
    cfg = config or GraphConfig()
    temporary = workdir is None
    data_dir = Path(tempfile.mkdtemp(prefix="hippograph-bench-")) if workdir is None else workdir
    try:
        with _Reporter(progress) as reporter:
            return _run(memories, queries, seed, data_dir, cfg, reporter, store)
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def _run(
    memories: int,
    queries: int,
    seed: int,
    data_dir: Path,
    cfg: GraphConfig,
    reporter: _Reporter,
    store: BenchStore = SQLITE,
) -> dict[str, Any]:
    t_run = time.perf_counter()
    synth = _Synthetic(memories, seed, DIM)
    manifest = _manifest_matches(data_dir, memories, seed)
    if manifest is not None and _stored_memories(store, data_dir) != memories:
        # the derived files outlived their store (a Neo4j server started afresh): build
        # again from nothing
        reporter.log(f"{data_dir} does not match the {store.name} store's namespace: rebuilding")
        shutil.rmtree(data_dir)
        manifest = None
    reused = manifest is not None
    if manifest is not None:
        build = manifest["build_s"]
        reporter.log(f"reusing the namespace built in {data_dir}")
    else:
        if data_dir.exists() and any(data_dir.iterdir()):
            raise ValueError(
                f"{data_dir} is not empty and holds no complete bench namespace of "
                f"{memories} memories (seed {seed}); give an empty or new directory"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        build = _build(data_dir, synth, cfg, reporter, store)
        manifest = {
            "generator": GENERATOR_VERSION,
            "memories": memories,
            "seed": seed,
            "dim": DIM,
            "namespace": NAMESPACE,
            "complete": True,
            "build_s": build,
        }
        (data_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    synth.members = []

    # 1. reopen in fresh processes: cold page cache first, then warm; then the cold
    # start from the store alone (no derived files), and the warm reopen, to a recall
    first_query = synth.queries(1)[0]
    task = reporter.task("reopen (fresh process)", 3)
    evicted = _evict_page_cache(data_dir)
    cold = _probe_load(data_dir, cfg, store, first_query) if evicted else None
    reporter.advance(task)
    warm = _probe_load(data_dir, cfg, store, first_query)
    reporter.advance(task)
    cold_start = _cold_start(data_dir, cfg, store, first_query)
    reporter.advance(task)

    encoder = HashingEncoder(dim=DIM)
    mg = MemoryGraph(data_dir, encoder=encoder, config=cfg, store=store.open(data_dir))
    result: dict[str, Any] = {}
    max_diff, mismatched = 0.0, 0
    try:
        t0 = time.perf_counter()
        ns = mg.namespace(NAMESPACE)
        load_in_process_s = time.perf_counter() - t0
        rss_loaded = _rss_mb()
        view, index = ns.view, ns.index
        todo = synth.queries(WARMUP + queries)
        timed = todo[WARMUP:]
        load_before = [round(x, 2) for x in os.getloadavg()]

        # 2. seeds alone: FAISS, the in-memory BM25 recall uses, and (for comparison) the
        # store's FTS5; and the fused seeds recall spreads from, captured from a recall that
        # does not learn
        task = reporter.task("seeds (index, full text)", len(todo))
        index_ns: list[int] = []
        fts_ns: list[int] = []
        lexical_ns: list[int] = []
        seeds: list[tuple[np.ndarray, np.ndarray]] = []
        dense_found: list[np.ndarray] = []
        for n_done, (text, vector) in enumerate(todo):
            t0n = time.perf_counter_ns()
            dense_ids, _ = index.search(vector, cfg.dense_seeds)
            t1n = time.perf_counter_ns()
            mg.store.search_text(NAMESPACE, text, cfg.lexical_seeds)
            t2n = time.perf_counter_ns()
            ns.view.lexical.search(text, cfg.lexical_seeds)
            t3n = time.perf_counter_ns()
            captured: list[tuple[np.ndarray, np.ndarray]] = []
            with _capturing_seeds(captured):
                mg.recall_vector(NAMESPACE, text, vector, k=10, learn=False)
            reporter.advance(task)
            if n_done < WARMUP:
                continue
            index_ns.append(t1n - t0n)
            fts_ns.append(t2n - t1n)
            lexical_ns.append(t3n - t2n)
            dense_found.append(dense_ids)
            if captured:
                seeds.append(captured[0])

        # the same index seed search with FAISS limited to one OpenMP thread: a single
        # query gains nothing from threads, and on a busy machine waits for a second core
        threads = faiss.omp_get_max_threads()
        single_ns: list[int] = []
        try:
            faiss.omp_set_num_threads(1)
            for n_done, (_, vector) in enumerate(todo):
                t0n = time.perf_counter_ns()
                index.search(vector, cfg.dense_seeds)
                if n_done >= WARMUP:
                    single_ns.append(time.perf_counter_ns() - t0n)
        finally:
            faiss.omp_set_num_threads(threads)

        # 3. activation alone, over the CSR arrays
        task = reporter.task("activation (arrays)", len(todo))
        params = cfg.activation
        activation_ns: list[int] = []
        reached: list[int] = []
        for s, e in seeds[:WARMUP]:
            spread_activation(view.layers, s, e, params, degree=view.degree, alive=view.alive)
        reporter.advance(task, WARMUP)
        for s, e in seeds:
            t0n = time.perf_counter_ns()
            act = spread_activation(view.layers, s, e, params, degree=view.degree, alive=view.alive)
            activation_ns.append(time.perf_counter_ns() - t0n)
            reached.append(len(act.nodes))
            reporter.advance(task)

        # 4. recall end to end (query embedding excluded), with learning as in production
        task = reporter.task("recall", len(todo))
        recall_ns: list[int] = []
        returned: list[int] = []
        for n_done, (text, vector) in enumerate(todo):
            t0n = time.perf_counter_ns()
            got = mg.recall_vector(NAMESPACE, text, vector, k=10)
            elapsed = time.perf_counter_ns() - t0n
            reporter.advance(task)
            if n_done >= WARMUP:
                recall_ns.append(elapsed)
                returned.append(len(got))

        # 5. where recall's time goes: the same queries again, stages timed
        task = reporter.task("recall, stages timed", len(timed))
        breakdown: dict[str, list[int]] = {k: [] for k in (*STAGES, "other", "total")}
        spent: dict[str, int] = {}
        with _instrumented(mg, ns, spent):
            for text, vector in timed:
                spent.clear()
                t0n = time.perf_counter_ns()
                mg.recall_vector(NAMESPACE, text, vector, k=10)
                total = time.perf_counter_ns() - t0n
                for k in STAGES:
                    breakdown[k].append(spent.get(k, 0))
                breakdown["other"].append(max(total - sum(spent.values()), 0))
                breakdown["total"].append(total)
                reporter.advance(task)

        # 6. exact brute-force seed search over every vector (numpy), and index recall@k
        task = reporter.task("brute force seeds", len(timed))
        chunks = list(mg.store.iter_embeddings(NAMESPACE))
        all_seqs = np.concatenate([c[0] for c in chunks])
        all_vectors = np.concatenate([c[1] for c in chunks])
        del chunks
        k_seed = cfg.dense_seeds
        brute_ns: list[int] = []
        overlap: list[float] = []
        for (_, vector), found in zip(timed, dense_found, strict=True):
            t0n = time.perf_counter_ns()
            scores = all_vectors @ vector
            top = np.argpartition(-scores, min(k_seed, len(scores) - 1))[:k_seed]
            top = top[np.argsort(-scores[top])]
            brute_ns.append(time.perf_counter_ns() - t0n)
            exact = all_seqs[top]
            overlap.append(len(np.intersect1d(exact, found)) / max(len(exact), 1))
            reporter.advance(task)
        del all_vectors, all_seqs
        gc.collect()

        # 7. the same activation with networkx, from the same seeds, on the same graph
        task = reporter.task("networkx: build graph", 1)
        gc.disable()
        try:
            t0 = time.perf_counter()
            nxg = _networkx_graph(view)
            networkx_build_s = time.perf_counter() - t0
        finally:
            gc.enable()
        gc.freeze()  # keep the collector from walking millions of dicts during timing
        rss_networkx = _rss_mb()
        reporter.finish(task)
        task = reporter.task("networkx: activation", len(seeds))
        networkx_ns: list[int] = []
        for s, e in seeds:
            mine = spread_activation(
                view.layers, s, e, params, degree=view.degree, alive=view.alive
            )
            seed_list, energy_list = s.tolist(), e.tolist()
            t0n = time.perf_counter_ns()
            reference = spread_activation_networkx(nxg, seed_list, energy_list, params)
            networkx_ns.append(time.perf_counter_ns() - t0n)
            diff, only_one = _agreement(mine, reference)
            max_diff, mismatched = max(max_diff, diff), mismatched + only_one
            reporter.advance(task)
        gc.unfreeze()
        del nxg
        gc.collect()

        edge_counts = np.bincount(view.base.types, minlength=len(AssociationType)) // 2
        recall_summary = _summary(recall_ns)
        activation_summary = _summary(activation_ns)
        networkx_summary = _summary(networkx_ns)
        targets = _targets(memories)
        load_s = cold["load_s"] if cold else warm["load_s"]
        speedup = networkx_summary["p50"] / max(activation_summary["p50"], 1e-9)
        result = {
            "store": store.name,
            "memories": memories,
            "queries": queries,
            "seed": seed,
            "dim": DIM,
            "nodes": int(view.n_nodes),
            "entities": int(np.count_nonzero(~view.is_memory)),
            "edges": int(view.n_edges),
            "edges_by_type": {
                t.value: int(edge_counts[t.code]) for t in AssociationType if edge_counts[t.code]
            },
            "index_kind": index.kind,
            "index_params": index.params,
            "passage_vectors": int(mg.namespace(NAMESPACE).passages.live_count),
            "recall_ms": recall_summary,
            "recall_returned_mean": round(float(np.mean(returned)), 2),
            "recall_breakdown_ms": {k: _summary(v) for k, v in breakdown.items()},
            "activation_ms": activation_summary,
            "activation_reached_nodes": {
                "p50": float(np.percentile(reached, 50)),
                "max": int(max(reached)),
            },
            "networkx_activation_ms": networkx_summary,
            "activation_speedup_p50": round(speedup, 1),
            "activation_agreement_max_abs_diff": max_diff,
            "activation_agreement_mismatched_nodes": mismatched,
            "index_seed_ms": _summary(index_ns),
            "index_seed_one_thread_ms": _summary(single_ns),
            "fts_seed_ms": _summary(fts_ns),
            "lexical_seed_ms": _summary(lexical_ns),
            "brute_force_seed_ms": _summary(brute_ns),
            "index_recall_at_k": round(float(np.mean(overlap)), 4),
            "seed_k": k_seed,
            "load_s": round(load_s, 3),
            "load_cold_s": round(cold["load_s"], 3) if cold else None,
            "load_warm_s": round(warm["load_s"], 3),
            "load_breakdown_s": {
                "open_store": round((cold or warm)["open_store_s"], 3),
                "load_namespace": round((cold or warm)["load_namespace_s"], 3),
            },
            "load_method": (
                "fresh Python process (imports excluded): MemoryGraph(dir) + namespace(); "
                "load_s is the cold run (data dir evicted from the page cache with "
                "posix_fadvise), load_warm_s a second run with the page cache warm"
                if cold
                else "fresh Python process, page cache warm"
            ),
            "load_in_process_s": round(load_in_process_s, 3),
            "cold_start_s": round(cold_start["first_recall_s"], 3),
            "cold_start_breakdown_s": {
                "open_store": round(cold_start["open_store_s"], 3),
                "rebuild_namespace": round(cold_start["load_namespace_s"], 3),
                "first_recall": round(cold_start["first_recall_s"] - cold_start["load_s"], 3),
            },
            "cold_start_rebuilt": bool(cold_start["rebuilt"]),
            "warm_reopen_s": round(warm["first_recall_s"], 3),
            "load_rebuilt_derived": bool(warm["rebuilt"]),
            "networkx_build_s": round(networkx_build_s, 2),
            "build_s": build,
            "reused_data_dir": reused,
            "rss_mb": _rss_mb(),
            "peak_rss_mb": _peak_rss_mb(),
            "rss_after_load_mb": rss_loaded,
            "rss_with_networkx_mb": rss_networkx,
            "loaded_process_rss_mb": round(warm["rss_mb"], 1),
            "data_dir_mb": _dir_mb(data_dir),
            "targets": targets,
            "targets_met": {
                "recall_p50_ms": recall_summary["p50"] <= targets["recall_p50_ms"],
                "recall_p99_ms": recall_summary["p99"] <= targets["recall_p99_ms"],
                "activation_speedup": speedup >= targets["activation_speedup"],
                "load_s": load_s <= targets["load_s"],
                "cold_start_s": cold_start["first_recall_s"] <= targets["load_s"],
            },
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "faiss": getattr(faiss, "__version__", "?"),
                "networkx": nx.__version__,
                "faiss_threads": faiss.omp_get_max_threads(),
                "load_average_before": load_before,
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
        }
    finally:
        t0 = time.perf_counter()
        mg.close()
        if result:
            result["close_after_queries_s"] = round(time.perf_counter() - t0, 2)
    result["bench_wall_s"] = round(time.perf_counter() - t_run, 1)
    if mismatched or not max_diff <= AGREEMENT_TOL:
        raise BenchError(
            f"array and networkx activations disagree: max |diff| {max_diff:.3g}, "
            f"{mismatched} nodes reached by only one",
            result,
        )
    return result


# -- the command ---------------------------------------------------------------------------


def _count(text: str) -> int:
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


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench latency``."""
    parser.add_argument(
        "--memories",
        type=_count,
        required=True,
        metavar="N",
        help="memories in the synthetic namespace (e.g. 100000, 100k, 1M; at least 50)",
    )
    parser.add_argument(
        "--queries", type=_count, default=200, metavar="Q", help="timed queries (default 200)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--data-dir-bench",
        type=Path,
        default=None,
        metavar="DIR",
        help="build the namespace here and keep it (reused by a later run with the same "
        "--memories and --seed); default: a temporary directory, deleted afterwards",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data and queries (0)")
    add_store_argument(parser)


def run_latency_command(args: argparse.Namespace, settings: Any) -> int:
    """Run the benchmark from parsed arguments; engine parameters come from
    ``settings.graph_config()`` (``hippograph.api.settings.Settings``) when it has one."""
    get_config = getattr(settings, "graph_config", None)
    config = get_config() if callable(get_config) else GraphConfig()
    faiss.omp_set_num_threads(getattr(settings, "faiss_threads", 1))
    if args.memories < 50:
        print("hippograph: --memories: must be at least 50", file=sys.stderr)
        return 2
    try:
        stores = bench_stores(getattr(args, "store", "sqlite"), settings)
    except ValueError as exc:
        print(f"hippograph: {exc}", file=sys.stderr)
        return 2
    failure: BenchError | None = None
    results: dict[str, dict[str, Any]] = {}
    for store in stores:
        workdir = args.data_dir_bench
        if workdir is not None and len(stores) > 1:
            workdir = workdir / store.name
        try:
            results[store.name] = run_latency(
                args.memories,
                queries=args.queries,
                seed=args.seed,
                workdir=workdir,
                config=config,
                progress=True,
                store=store,
            )
        except BenchError as exc:
            failure, results[store.name] = exc, exc.result
        except ValueError as exc:
            print(f"hippograph: bench latency: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[stores[0].name], indent=2))
    else:
        for result in results.values():
            _print_table(result)
    if failure is not None:
        print(f"hippograph: bench latency: {failure}", file=sys.stderr)
        return 1
    return 0


def _print_table(r: dict[str, Any]) -> None:
    console = Console()
    targets, met = r["targets"], r["targets_met"]

    def mark(key: str) -> str:
        return "[green]yes[/]" if met[key] else "[red]NO[/]"

    table = Table(
        title=f"recall latency ({r.get('store', 'sqlite')}): {r['memories']:,} memories, "
        f"{r['nodes']:,} nodes, "
        f"{r['edges']:,} associations, {r['index_kind']} index, {r['queries']} queries"
    )
    for column, justify in (("measure", "left"), ("p50", "right"), ("p99", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    rec = r["recall_ms"]
    table.add_row(
        "recall (ms, no embedding)",
        f"{rec['p50']:.3f}",
        f"{rec['p99']:.3f}",
        f"{targets['recall_p50_ms']:g} / {targets['recall_p99_ms']:g}",
        f"{mark('recall_p50_ms')} / {mark('recall_p99_ms')}",
    )
    for key, label in (
        ("index_seed", "  index seed"),
        ("lexical_seed", "  lexical (BM25) seed"),
        ("reconstruct", "  vector reconstruct"),
        ("activation", "  activation"),
        ("scoring", "  scoring"),
        ("paths", "  paths"),
        ("fetch", "  fetch"),
        ("learn", "  learning"),
        ("learn_flush", "  learning: flush to store"),
        ("other", "  other"),
    ):
        part = r["recall_breakdown_ms"][key]
        table.add_row(label, f"{part['p50']:.3f}", f"{part['p99']:.3f}", "", "")
    act, ref = r["activation_ms"], r["networkx_activation_ms"]
    table.add_row("activation alone (ms)", f"{act['p50']:.3f}", f"{act['p99']:.3f}", "", "")
    table.add_row(
        "networkx activation (ms)",
        f"{ref['p50']:.3f}",
        f"{ref['p99']:.3f}",
        f">= {targets['activation_speedup']:g}x",
        f"{r['activation_speedup_p50']:g}x {mark('activation_speedup')}",
    )
    for key, label in (
        ("index_seed_ms", f"index seed alone (ms, k={r['seed_k']})"),
        ("index_seed_one_thread_ms", "  same, FAISS on 1 thread (ms)"),
        ("lexical_seed_ms", "in-memory BM25 seed alone (ms)"),
        ("fts_seed_ms", "store FTS5 seed alone, not used by recall (ms)"),
        ("brute_force_seed_ms", "brute-force seed (ms)"),
    ):
        table.add_row(label, f"{r[key]['p50']:.3f}", f"{r[key]['p99']:.3f}", "", "")
    table.add_row(
        "reopen data dir (s)",
        f"{r['load_s']:.2f}",
        "",
        f"<= {targets['load_s']:g}",
        mark("load_s"),
    )
    table.add_row(
        "cold start: no derived files, to first recall (s)",
        f"{r['cold_start_s']:.2f}",
        "",
        f"<= {targets['load_s']:g}",
        mark("cold_start_s"),
    )
    table.add_row("warm reopen, to first recall (s)", f"{r['warm_reopen_s']:.2f}", "", "", "")
    console.print(table)
    cold = r["cold_start_breakdown_s"]
    console.print(
        f"cold start (s): open store {cold['open_store']:g}, rebuild view and indexes "
        f"{cold['rebuild_namespace']:g}, first recall {cold['first_recall']:g}"
    )
    build = ", ".join(f"{k} {v:g}" for k, v in r["build_s"].items())
    console.print(f"build (s): {build}" + (" (reused data dir)" if r["reused_data_dir"] else ""))
    console.print(
        f"index recall@{r['seed_k']} vs brute force {r['index_recall_at_k']:.3f}; "
        f"activation agreement max |diff| {r['activation_agreement_max_abs_diff']:.2e}; "
        f"networkx graph built in {r['networkx_build_s']:g} s"
    )
    console.print(
        f"RSS {r['rss_mb']:,.0f} MB (peak {r['peak_rss_mb']:,.0f}, after load "
        f"{r['rss_after_load_mb']:,.0f}; a freshly loaded process "
        f"{r['loaded_process_rss_mb']:,.0f}); data dir {r['data_dir_mb']:,.0f} MB"
    )
