"""``hippograph bench lifecycle``: months of agent use, then the lifecycle jobs.

A synthetic namespace (``hippograph.api.bench.synthetic``'s generator: topic clusters,
sessions, entities, passages) is written as if over 180 days: topics come and go (a
memory's cluster drifts with its time), a tenth of the memories are near-duplicates of
a recent one (same text, vector within noise), a small hot set is recalled often and
lately, a few memories are important, and some others were looked at once. Then every
job runs once as of the last day. Reported, before and after in the same process:

- hot bytes: the store's live pages (SQLite ``page_count - freelist_count``, what a
  ``VACUUM`` would leave; the store runs without its write journal, the backup log)
  plus the saved vector indexes;
- retained recall: probe queries for recent, important and hot memories (the
  memory's vector plus noise and three of its words); the share of the probes whose
  memory (or, merged by dedup, its survivor) was in the top 10 before and still is;
- recall latency p50/p99 of the probes, and each job's run time;
- what a second run of every job changed: nothing, when the jobs are idempotent;
- after it, default recall (which consults the archive index and rehydrates what it
  finds there) against recall of the hot tiers only, and probes for archived memories.

``--store`` picks the store: ``sqlite`` (default), ``neo4j`` (the server ``NEO4J_URI``
names; its hot bytes count the saved vector indexes only, Neo4j's own store size is
not visible over Bolt) or ``both``, SQLite first, in one run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from hippograph.api.bench.common import BenchStore, add_store_argument, bench_stores, ms_summary
from hippograph.api.bench.synthetic import DIM, NAMESPACE, Synthetic, unit
from hippograph.embeddings import HashingEncoder
from hippograph.graph import GraphConfig, MemoryGraph, RecallContext, SQLiteStore, Tier
from hippograph.graph.archived import archive_ref
from hippograph.graph.model import content_hash, from_epoch
from hippograph.graph.store import GraphStore
from hippograph.lifecycle.model import LifecycleConfig
from hippograph.lifecycle.runner import run_jobs

__all__ = ["add_lifecycle_arguments", "run_lifecycle_bench", "run_lifecycle_command"]

DAY = 86_400.0
DAYS = 180
DUPLICATE_SHARE = 0.10
DUPLICATE_NOISE = 0.02  # noise norm on a duplicate's vector: cosine ~ 0.9998
HOT_SHARE = 0.01  # recalled often and lately
TOUCHED_SHARE = 0.05  # recalled once, some time after they happened
IMPORTANT_SHARE = 0.02  # importance 0.9
TOPIC_WINDOW = 12  # clusters active at any time; the window slides over the 180 days
PROBES = 400
HOT_TIERS = [Tier.WORKING, Tier.EPISODIC, Tier.SEMANTIC]
PROBE_NOISE = 0.3
WORDS_PER_PROBE = 3
TARGET_SMALLER = 0.60
TARGET_RETAINED = 0.99
# The counts of each job that are changes (the others count what it looked at).
CHANGE_KEYS = {
    "decay": ("decayed", "removed"),
    "tiering": ("promoted", "demoted", "archived"),
    "dedup": ("merged",),
    "consolidate": ("created", "updated"),
    "archive": ("memories", "edges", "bytes"),
}


def _sqlite_without_journal(data_dir: Path) -> GraphStore:
    # No write journal: it is the backup log (pruned by backups), not the hot store the
    # jobs shrink, and it would count every vector twice.
    return SQLiteStore(data_dir / "hippograph.db", journal=False)


SQLITE = BenchStore("sqlite", _sqlite_without_journal, {"NEO4J_URI": None})


def _plan_time(synth: Synthetic, rng: np.random.Generator) -> None:
    """Topics that come and go: memory i (in time order) draws its cluster from a window
    of clusters that slides from the first to the last over the span."""
    n, clusters = synth.n, synth.n_clusters
    start = (np.arange(n) * max(clusters - TOPIC_WINDOW, 1)) // max(n, 1)
    synth.cluster_of = (start + rng.integers(0, TOPIC_WINDOW, size=n)) % clusters


def _write(graph: MemoryGraph, synth: Synthetic, now: float, seed: int) -> dict[str, Any]:
    """Write the namespace through the store (like ``bench latency``) with times, access
    and duplicates applied to each batch; returns what the probes need."""
    n = synth.n
    rng = np.random.default_rng([seed, 7])
    first = now - DAYS * DAY
    times = first + DAYS * DAY * (np.arange(n) + 0.5) / n
    duplicate = rng.random(n) < DUPLICATE_SHARE
    duplicate[:50] = False
    hot = rng.random(n) < HOT_SHARE
    touched = ~hot & (rng.random(n) < TOUCHED_SHARE)
    important = rng.random(n) < IMPORTANT_SHARE
    vectors = np.empty((n, synth.dim), np.float32)
    contents: list[str] = [""] * n
    batch_size = 5_000
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch = synth.batch(start, stop, vectors, now)
        for row, memory in enumerate(batch.memories):
            i = start + row
            when = from_epoch(float(times[i]))
            memory.created_at = memory.occurred_at = when
            memory.tier = Tier.WORKING if times[i] >= now - 7 * DAY else Tier.EPISODIC
            if duplicate[i]:  # the same thing said again, shortly after
                j = int(rng.integers(max(0, i - 50), i))
                memory.content = contents[j]
                memory.content_hash = content_hash(memory.content)
                noise = unit(rng.standard_normal(synth.dim).astype(np.float32))
                vectors[i] = unit(vectors[j] + DUPLICATE_NOISE * noise)
                memory.embedding = vectors[i]
                memory.passages = None
            if hot[i]:
                memory.access_count = int(rng.integers(5, 40))
                memory.last_accessed_at = from_epoch(now - float(rng.uniform(0, 3)) * DAY)
            elif touched[i]:
                memory.access_count = 1
                memory.last_accessed_at = from_epoch(
                    float(rng.uniform(times[i], min(times[i] + 30 * DAY, now)))
                )
            if important[i]:
                memory.importance = 0.9
            contents[i] = memory.content
        for edge in batch.edges:
            edge.created_at = from_epoch(float(times[int(edge.source[1:])]))
        graph.store.write(NAMESPACE, batch)
    recent = times >= now - 14 * DAY
    return {
        "vectors": vectors,
        "contents": contents,
        "wanted": np.flatnonzero((recent | important | hot) & ~duplicate),
        "counts": {
            "duplicates": int(duplicate.sum()),
            "hot": int(hot.sum()),
            "touched": int(touched.sum()),
            "important": int(important.sum()),
            "recent": int(recent.sum()),
        },
    }


def _hot_bytes(graph: MemoryGraph) -> dict[str, int | None]:
    """The store's live bytes (None when it is not a file here: Neo4j) plus the saved
    vector indexes."""
    graph.checkpoint()  # save (and compact) the derived indexes
    derived = sum(p.stat().st_size for p in (graph.data_dir / "derived").glob("*.faiss"))
    path = graph.data_dir / "hippograph.db"
    if not path.is_file():
        return {"store": None, "index": derived, "total": derived}
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    store = (pages - free) * size
    return {"store": store, "index": derived, "total": store + derived}


def _probe(
    graph: MemoryGraph,
    probes: list[tuple[str, str, np.ndarray]],
    now: float,
    tiers: list[Tier] | None = None,
) -> tuple[list[bool], list[int]]:
    """Default recall (which consults the archive), or recall of ``tiers`` only."""
    hits: list[bool] = []
    took: list[int] = []
    context = RecallContext(at=from_epoch(now))
    for target, text, vector in probes:
        t0 = time.perf_counter_ns()
        found = graph.recall_vector(
            NAMESPACE, text, vector, k=10, context=context, learn=False, tiers=tiers
        )
        took.append(time.perf_counter_ns() - t0)
        ids = {r.memory.id for r in found}
        survivor = graph.store.resolve_aliases(NAMESPACE, [target]).get(target, target)
        hits.append(target in ids or survivor in ids)
    return hits, took


def _probe_of(
    synth: Synthetic, built: dict[str, Any], i: int, rng: np.random.Generator
) -> tuple[str, str, np.ndarray]:
    """A probe for memory ``i``: its vector plus noise, and three of its words."""
    noise = unit(rng.standard_normal(DIM).astype(np.float32))
    vector = unit(built["vectors"][i] + PROBE_NOISE * noise).astype(np.float32)
    words = built["contents"][i].split()
    text = " ".join(rng.choice(words, size=min(WORDS_PER_PROBE, len(words)), replace=False))
    return synth.memory_id(i), text, vector


def run_lifecycle_bench(
    memories: int = 50_000,
    *,
    probes: int = PROBES,
    seed: int = 0,
    workdir: Path | None = None,
    config: GraphConfig | None = None,
    lifecycle: LifecycleConfig | None = None,
    store: BenchStore = SQLITE,
) -> dict[str, Any]:
    """Build, probe, run every job once, probe again, run every job again; the report
    (see module doc). ``store``'s namespace must be empty."""
    config = config or GraphConfig()
    lifecycle = lifecycle or LifecycleConfig()
    base = Path(tempfile.mkdtemp(prefix="hippograph-bench-lifecycle-", dir=workdir))
    try:
        now = time.time()
        synth = Synthetic(memories, seed, DIM)
        _plan_time(synth, np.random.default_rng([seed, 5]))
        opened = store.open(base)
        graph = MemoryGraph(base, encoder=HashingEncoder(dim=DIM), config=config, store=opened)
        try:
            if opened.generation(NAMESPACE):
                raise ValueError(
                    f"the {store.name} store already holds namespace {NAMESPACE!r}: give an "
                    "empty database"
                )
            t0 = time.perf_counter()
            built = _write(graph, synth, now, seed)
            graph.rebuild(NAMESPACE)
            build_s = time.perf_counter() - t0
            rng = np.random.default_rng([seed, 9])
            chosen = rng.choice(
                built["wanted"], size=min(probes, len(built["wanted"])), replace=False
            )
            probe_list = [_probe_of(synth, built, i, rng) for i in chosen.tolist()]
            bytes_before = _hot_bytes(graph)
            hits_before, took_before = _probe(graph, probe_list, now)
            stats_before = graph.stats(NAMESPACE)
            report = run_jobs(graph, NAMESPACE, config=lifecycle, now=now)
            bytes_after = _hot_bytes(graph)
            _, took_hot_only = _probe(graph, probe_list, now, tiers=HOT_TIERS)
            stats_after = graph.stats(NAMESPACE)
            again = run_jobs(graph, NAMESPACE, config=lifecycle, now=now)
            # default recall consults the archive and may rehydrate (a write): after the
            # second run, whose "changes nothing" it would otherwise disturb
            hits_after, took_after = _probe(graph, probe_list, now)
            # archived memories, asked for by default recall (which rehydrates them): last,
            # since it moves them back
            index_of = {synth.memory_id(i): i for i in range(synth.n)}
            archived = sorted(
                index_of[m.id]
                for chunk in graph.store.iter_memories(NAMESPACE, embeddings=False)
                for m in chunk
                if archive_ref(m) is not None and m.id in index_of
            )
            picked = rng.choice(archived, size=min(probes, len(archived)), replace=False)
            archived_probes = [_probe_of(synth, built, int(i), rng) for i in picked.tolist()]
            archived_hits, _ = _probe(graph, archived_probes, now)
        finally:
            graph.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    second_run = {j.job: {k: v for k, v in j.counts.items() if k != "as_of"} for j in again.jobs}
    changed_again = {
        job: {k: v for k, v in counts.items() if k in CHANGE_KEYS.get(job, tuple(counts)) and v}
        for job, counts in second_run.items()
    }
    changed_again = {job: counts for job, counts in changed_again.items() if counts}
    kept = [a for b, a in zip(hits_before, hits_after, strict=True) if b]
    retained = sum(kept) / len(kept) if kept else 1.0
    smaller = 1.0 - (bytes_after["total"] or 0) / (bytes_before["total"] or 1)
    return {
        "store": store.name,
        "memories": memories,
        "days": DAYS,
        "generated": built["counts"],
        "build_s": round(build_s, 2),
        "bytes_before": bytes_before["total"],
        "bytes_after": bytes_after["total"],
        "bytes": {"before": bytes_before, "after": bytes_after},
        "smaller": round(smaller, 4),
        "probes": len(probe_list),
        "recalled_before": int(sum(hits_before)),
        "recalled_after": int(sum(hits_after)),
        "retained_recall": round(retained, 4),
        "recall_ms_before": ms_summary(took_before),
        "recall_ms_after": ms_summary(took_after),
        "recall_ms_after_hot_only": ms_summary(took_hot_only),
        "archived_probes": len(archived_probes),
        "archived_found": int(sum(archived_hits)),
        "jobs": {j.job: {"seconds": round(j.seconds, 2), "counts": j.counts} for j in report.jobs},
        "second_run_changes": second_run,
        "second_run_changed": changed_again,
        "tiers_before": stats_before["tiers"],
        "tiers_after": stats_after["tiers"],
        "targets": {"smaller": TARGET_SMALLER, "retained_recall": TARGET_RETAINED},
        "targets_met": {
            "smaller": smaller >= TARGET_SMALLER,
            "retained_recall": retained >= TARGET_RETAINED,
            "second_run_changes_nothing": not changed_again,
        },
    }


def add_lifecycle_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench lifecycle``."""
    parser.add_argument(
        "--memories", type=int, default=50_000, metavar="N", help="memories (default 50000)"
    )
    parser.add_argument("--probes", type=int, default=PROBES, metavar="P", help="probe queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and probes (0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_store_argument(parser)


def run_lifecycle_command(args: argparse.Namespace, settings: Any) -> int:
    faiss.omp_set_num_threads(getattr(settings, "faiss_threads", 1))
    if args.memories < 1_000:
        print("hippograph: --memories: must be at least 1000", file=sys.stderr)
        return 2
    try:
        stores = [
            SQLITE if s.name == SQLITE.name else s
            for s in bench_stores(getattr(args, "store", "sqlite"), settings)
        ]
        results = [
            run_lifecycle_bench(
                args.memories,
                probes=args.probes,
                seed=args.seed,
                config=settings.graph_config(),
                lifecycle=settings.lifecycle_config(),
                store=store,
            )
            for store in stores
        ]
    except ValueError as exc:
        print(f"hippograph: bench lifecycle: {exc}", file=sys.stderr)
        return 2
    if args.json:
        by_store = {r["store"]: r for r in results}
        print(json.dumps(by_store if len(results) > 1 else results[0], indent=2))
    else:
        for result in results:
            _print_report(result)
    return 0 if all(r["targets_met"]["second_run_changes_nothing"] for r in results) else 1


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f}"


def _print_report(result: dict[str, Any]) -> None:
    before, after = result["bytes"]["before"], result["bytes"]["after"]
    print(
        f"[{result['store']}] memories {result['memories']:,} over {result['days']} days: "
        f"{result['generated']}"
    )
    print(
        f"hot bytes: {_mib(before['total'])} MiB -> {_mib(after['total'])} MiB "
        f"({100 * result['smaller']:.1f}% smaller; store {_mib(before['store'])} -> "
        f"{_mib(after['store'])}, index {_mib(before['index'])} -> {_mib(after['index'])})"
    )
    print(
        f"retained recall: {100 * result['retained_recall']:.1f}% "
        f"({result['recalled_after']} of {result['recalled_before']} probes recalled before; "
        f"{result['probes']} probes)"
    )
    print(
        f"recall p50 {result['recall_ms_before']['p50']:.2f} -> "
        f"{result['recall_ms_after']['p50']:.2f} ms, p99 {result['recall_ms_before']['p99']:.2f}"
        f" -> {result['recall_ms_after']['p99']:.2f} ms (after, hot tiers only: p50 "
        f"{result['recall_ms_after_hot_only']['p50']:.2f}, p99 "
        f"{result['recall_ms_after_hot_only']['p99']:.2f} ms: the rest is consulting the archive)"
    )
    print(
        f"archived memories found by default recall (top 10): {result['archived_found']} of "
        f"{result['archived_probes']} probes"
    )
    for job, figures in result["jobs"].items():
        print(f"  {job:<12} {figures['seconds']:>7.2f} s  {figures['counts']}")
    print(f"second run: {result['second_run_changes']}")
    changed = result["second_run_changed"]
    print("second run changed nothing" if not changed else f"SECOND RUN CHANGED: {changed}")
