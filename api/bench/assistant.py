"""``hippograph bench assistant``: months of a personal assistant's use, lifecycle on
the server's schedule, then questions about the user's facts.

The history is :mod:`hippograph.api.bench.assistant_history`'s (seeded): persona facts
stated early, some updated later, daily chit-chat around them. It is remembered as it
happened: one ``remember_many`` per simulated day with the graph's clock at that day's
last memory, and every ``--lifecycle-every`` hours of simulated time (default: the
server's ``lifecycle_interval_s``) :func:`~hippograph.lifecycle.runner.run_jobs` runs as
of that time. Nothing is recalled meanwhile, as for a user who only ever talked. The same
history goes, with no lifecycle run at all, into a second namespace of the same graph
("no lifecycle"). At the end every fact's question is asked of both by default recall
(``RecallContext(at=end)``, ``learn=False``, k=3), and of a plain vector store: the
same model's vectors of every memory of the history, brute-force cosine in numpy.

Reported in one table (goals: :data:`GOAL_TOP3`, :data:`GOAL_UPDATES`):

- the share of questions whose expected memory (for an updated fact: its newest
  version; a memory merged by dedup counts as its survivor) is in the top 3;
- the share of updated facts whose newest version is in the top 3 and above the stale one;
- the hot footprint: vectors in the hot index (whole + passages) and bytes of the
  namespace's derived files (view, indexes), plus the archive files' bytes (cold);
- recall latency p50/p95 without the query's embedding (recall's own ``embed`` stage
  taken off), and the plain vector store's;
- how many fact or important memories the lifecycle archived (goal: none),

then the tiers after lifecycle and what the runs changed. ``--store`` picks the store
(``sqlite`` default, ``neo4j``: the server ``NEO4J_URI`` names, its namespaces must be
empty). The command exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.api.bench.assistant_history import History, Question, generate_history
from hippograph.api.bench.common import SQLITE, BenchStore, add_store_argument, bench_stores
from hippograph.embeddings import TextEncoder
from hippograph.graph import GraphConfig, MemoryGraph, MemoryKind, RecallContext, Tier
from hippograph.graph.namespace import namespace_token
from hippograph.lifecycle.model import LifecycleConfig
from hippograph.lifecycle.runner import run_jobs

__all__ = [
    "GOAL_TOP3",
    "GOAL_UPDATES",
    "SimulatedClock",
    "add_assistant_arguments",
    "answer_questions",
    "archived_knowledge",
    "dense_answers",
    "ingest_history",
    "run_assistant_bench",
    "run_assistant_command",
]

NAMESPACE = "assistant"
NO_LIFECYCLE = "assistant-no-lifecycle"
START = datetime(2024, 1, 1, tzinfo=UTC)
K = 3
GOAL_TOP3 = 0.99
GOAL_UPDATES = 0.90
WARMUP = 3
# What a lifecycle run changed, summed over the runs (the other counts are looked-at).
CHANGES = {
    "tiering": ("promoted", "demoted", "archived"),
    "dedup": ("merged",),
    "consolidate": ("created", "updated"),
    "archive": ("memories", "bytes"),
}


class SimulatedClock:
    """The time a simulation is at: pass it as ``MemoryGraph(clock=...)``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ingest_history(
    graph: MemoryGraph,
    namespace: str,
    history: History,
    clock: SimulatedClock,
    *,
    every_hours: float | None,
    lifecycle: LifecycleConfig | None = None,
) -> dict[str, Any]:
    """Remember ``history`` day by day at its simulated time (``clock`` must be
    ``graph``'s), running the lifecycle jobs every ``every_hours`` of simulated time up
    to the end (None: never). Returns the runs' count, seconds and summed changes."""
    interval = timedelta(hours=every_hours) if every_hours else None
    next_run = history.start + interval if interval else None
    runs, job_s, ingest_s = 0, 0.0, 0.0
    changed: dict[str, int] = {}

    def run_due(until: datetime) -> None:
        nonlocal next_run, runs, job_s
        while interval and next_run is not None and next_run <= until:
            clock.now = next_run
            started = time.perf_counter()
            report = run_jobs(graph, namespace, config=lifecycle, now=next_run.timestamp())
            job_s += time.perf_counter() - started
            runs += 1
            for job in report.jobs:
                for key in CHANGES.get(job.job, ()):
                    name = f"{job.job}.{key}"
                    changed[name] = changed.get(name, 0) + int(job.counts.get(key, 0))
            next_run += interval

    for day in history.days():
        synced = day[-1].occurred_at  # the day's memories reach the graph at its end
        run_due(synced)
        clock.now = synced
        started = time.perf_counter()
        graph.remember_many(namespace, [item.to_input() for item in day])
        ingest_s += time.perf_counter() - started
    run_due(history.end)
    clock.now = history.end
    return {
        "runs": runs,
        "lifecycle_s": round(job_s, 2),
        "ingest_s": round(ingest_s, 2),
        "changed": changed,
    }


def _score(questions: Sequence[Question], found: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Top-k hits and updates ranked right, from each question's ids (best first)."""
    hits = updates_ok = updates = 0
    misses: list[str] = []
    for question, ids in zip(questions, found, strict=True):
        rank = {memory_id: i for i, memory_id in enumerate(ids)}
        hit = question.expected_id in rank
        hits += hit
        if not hit:
            misses.append(question.fact)
        if question.stale_id is not None:
            updates += 1
            stale = rank.get(question.stale_id, len(ids))
            updates_ok += hit and rank[question.expected_id] < stale
    return {
        "top3": round(hits / max(len(questions), 1), 4),
        "updates": round(updates_ok / updates, 4) if updates else 1.0,
        "hits": hits,
        "questions": len(questions),
        "updates_ok": updates_ok,
        "updated": updates,
        "missed": misses,
    }


def _ms(seconds: Sequence[float]) -> dict[str, float]:
    if not seconds:
        return {"p50": float("nan"), "p95": float("nan")}
    p50, p95 = np.percentile(np.asarray(seconds) * 1000.0, [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def answer_questions(
    graph: MemoryGraph, namespace: str, history: History, *, k: int = K
) -> dict[str, Any]:
    """Ask every question by default recall at the history's end (no learning). A memory
    dedup merged away counts as its survivor. Returns :func:`_score`'s figures, each
    question's ids and the latency without the query's embedding."""
    context = RecallContext(at=history.end)
    questions = history.questions
    wanted = [q.expected_id for q in questions] + [q.stale_id for q in questions if q.stale_id]
    merged = graph.store.resolve_aliases(namespace, wanted)
    # a memory dedup merged away is found where its survivor is
    stands_for = {s: w for w, s in merged.items() if s != w and s not in wanted}
    for q in questions[:WARMUP]:
        graph.recall(namespace, q.text, k=k, context=context, learn=False)
    found: list[list[str]] = []
    took: list[float] = []
    for q in questions:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        result = graph.recall(namespace, q.text, k=k, context=context, learn=False, timings=timings)
        took.append(time.perf_counter() - started - timings.get("embed", 0.0))
        found.append([stands_for.get(r.memory.id, r.memory.id) for r in result])
    report = _score(questions, found)
    report["ranked"] = {q.fact: ids for q, ids in zip(questions, found, strict=True)}
    report["recall_ms"] = _ms(took)
    return report


def dense_answers(encoder: TextEncoder, history: History, *, k: int = K) -> dict[str, Any]:
    """The questions answered by a plain vector store: the same model's vector of every
    memory of the history, brute-force cosine, top ``k``."""
    ids = [m.id for m in history.memories]
    matrix = np.asarray(encoder.encode([m.content for m in history.memories]), np.float32)
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    queries = np.asarray(encoder.encode([q.text for q in history.questions]), np.float32)
    found: list[list[str]] = []
    took: list[float] = []
    for q in queries:
        started = time.perf_counter()
        sims = matrix @ (q / max(float(np.linalg.norm(q)), 1e-12))
        top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        top = top[np.argsort(-sims[top])]
        took.append(time.perf_counter() - started)
        found.append([ids[int(i)] for i in top])
    report = _score(history.questions, found)
    report["recall_ms"] = _ms(took)
    report["vectors"] = len(ids)
    report["bytes"] = int(matrix.nbytes)
    return report


def archived_knowledge(
    graph: MemoryGraph, namespace: str, history: History, important: float
) -> dict[str, int]:
    """How many memories of the history are in the archived tier, by role, and how many
    of them are facts or important (``importance >= important``)."""
    by_id = {m.id: m for m in history.memories}
    counts = {"chat": 0, "fact": 0, "update": 0, "fact_or_important": 0}
    for memory in graph.store.get(namespace, list(by_id)):
        if memory.tier != Tier.ARCHIVED:
            continue
        counts[by_id[memory.id].role] += 1
        if memory.kind == MemoryKind.FACT or memory.importance >= important:
            counts["fact_or_important"] += 1
    return counts


def _footprint(graph: MemoryGraph, namespace: str) -> dict[str, Any]:
    graph.checkpoint()  # the derived files as saved
    stats = graph.stats(namespace)
    token = namespace_token(namespace)
    derived = sum(p.stat().st_size for p in (graph.data_dir / "derived").glob(f"{token}*"))
    cold = sum(p.stat().st_size for p in graph.archive_dir(namespace).glob("*") if p.is_file())
    return {
        "vectors": stats["index"]["vectors"],
        "passages": stats["index"]["passages"],
        "derived_bytes": derived,
        "archive_bytes": cold,
        "tiers": stats["tiers"],
    }


def run_assistant_bench(
    encoder: TextEncoder,
    *,
    months: int = 6,
    seed: int = 0,
    scale: float = 1.0,
    every_hours: float = 6.0,
    start: datetime = START,
    config: GraphConfig | None = None,
    lifecycle: LifecycleConfig | None = None,
    store: BenchStore = SQLITE,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Simulate, ask, measure (see the module doc); ``store``'s namespaces must be empty."""
    lifecycle = lifecycle or LifecycleConfig()
    history = generate_history(start, months=months, seed=seed, scale=scale)
    encoder.encode([history.user])  # load the model before anything is timed
    base = Path(tempfile.mkdtemp(prefix="hippograph-bench-assistant-", dir=workdir))
    clock = SimulatedClock(start)
    started = time.perf_counter()
    try:
        opened = store.open(base)
        graph = MemoryGraph(base, encoder=encoder, config=config, store=opened, clock=clock)
        try:
            for ns in (NAMESPACE, NO_LIFECYCLE):
                if opened.generation(ns):
                    raise ValueError(f"the {store.name} store already holds namespace {ns!r}")
            clock.now = start
            plain = ingest_history(graph, NO_LIFECYCLE, history, clock, every_hours=None)
            clock.now = start
            simulated = ingest_history(
                graph, NAMESPACE, history, clock, every_hours=every_hours, lifecycle=lifecycle
            )
            archived = archived_knowledge(graph, NAMESPACE, history, lifecycle.important)
            footprint = {
                "before": _footprint(graph, NO_LIFECYCLE),
                "after": _footprint(graph, NAMESPACE),
            }
            answers = {
                "before": answer_questions(graph, NO_LIFECYCLE, history),
                "after": answer_questions(graph, NAMESPACE, history),
            }
        finally:
            graph.close()
        dense = dense_answers(encoder, history)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    after = answers["after"]
    return {
        "store": store.name,
        "history": history.counts,
        "every_hours": every_hours,
        "lifecycle": simulated,
        "ingest_s_no_lifecycle": plain["ingest_s"],
        "archived": archived,
        "footprint": footprint,
        "answers": answers,
        "dense": dense,
        "goals": {"top3": GOAL_TOP3, "updates": GOAL_UPDATES, "archived_knowledge": 0},
        "goals_met": {
            "top3": after["top3"] >= GOAL_TOP3,
            "updates": after["updates"] >= GOAL_UPDATES,
            "archived_knowledge": archived["fact_or_important"] == 0,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def add_assistant_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench assistant``."""
    parser.add_argument("--months", type=int, default=6, help="simulated months (default 6)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="grow the history (chit-chat and facts) x S"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the history (0)")
    parser.add_argument(
        "--lifecycle-every",
        type=float,
        default=None,
        metavar="HOURS",
        help="simulated hours between lifecycle runs (default: the server's schedule, "
        "HIPPOGRAPH_LIFECYCLE_INTERVAL_S)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_store_argument(parser)


def run_assistant_command(args: argparse.Namespace, settings: Any) -> int:
    import faiss

    from hippograph.api.settings import make_encoder

    faiss.omp_set_num_threads(getattr(settings, "faiss_threads", 1))
    every = args.lifecycle_every
    if every is None:
        every = settings.lifecycle_interval_s / 3600.0
    if every <= 0 or args.months < 1 or args.scale < 1:
        print(
            "hippograph: bench assistant: --lifecycle-every (or the server's interval) must be "
            "above 0, --months and --scale at least 1",
            file=sys.stderr,
        )
        return 2
    try:
        results = [
            run_assistant_bench(
                make_encoder(settings),
                months=args.months,
                seed=args.seed,
                scale=args.scale,
                every_hours=every,
                config=settings.graph_config(),
                lifecycle=settings.lifecycle_config(),
                store=store,
            )
            for store in bench_stores(getattr(args, "store", "sqlite"), settings)
        ]
    except ValueError as exc:
        print(f"hippograph: bench assistant: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        for result in results:
            _print_report(result)
    return 0 if all(all(r["goals_met"].values()) for r in results) else 1


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _print_report(r: dict[str, Any]) -> None:
    h, before, after, dense = (
        r["history"],
        r["answers"]["before"],
        r["answers"]["after"],
        r["dense"],
    )
    fb, fa = r["footprint"]["before"], r["footprint"]["after"]
    runs = r["lifecycle"]
    print(
        f"[{r['store']}] {h['memories']} memories over {h['days']} days ({h['facts']} facts, "
        f"{h['updates']} updates, {h['chat']} chit-chat; {h['questions']} questions); "
        f"lifecycle every {r['every_hours']:g} h: {runs['runs']} runs, {runs['lifecycle_s']} s"
    )
    rows = [
        ("", "no lifecycle", "after lifecycle", "plain dense", "goal"),
        (
            f"expected memory in top {K}",
            f"{_pct(before['top3'])} ({before['hits']}/{before['questions']})",
            f"{_pct(after['top3'])} ({after['hits']}/{after['questions']})",
            f"{_pct(dense['top3'])} ({dense['hits']}/{dense['questions']})",
            f">= {_pct(GOAL_TOP3)}",
        ),
        (
            "newest above stale, in top 3",
            f"{_pct(before['updates'])} ({before['updates_ok']}/{before['updated']})",
            f"{_pct(after['updates'])} ({after['updates_ok']}/{after['updated']})",
            f"{_pct(dense['updates'])} ({dense['updates_ok']}/{dense['updated']})",
            f">= {_pct(GOAL_UPDATES)}",
        ),
        (
            "hot vectors (whole + passages)",
            f"{fb['vectors']} + {fb['passages']}",
            f"{fa['vectors']} + {fa['passages']}",
            f"{dense['vectors']} + 0",
            "",
        ),
        (
            "derived bytes (archive bytes)",
            f"{fb['derived_bytes']:,} ({fb['archive_bytes']:,})",
            f"{fa['derived_bytes']:,} ({fa['archive_bytes']:,})",
            f"{dense['bytes']:,}",
            "",
        ),
        (
            "recall p50 / p95 ms (no embed)",
            f"{before['recall_ms']['p50']:.2f} / {before['recall_ms']['p95']:.2f}",
            f"{after['recall_ms']['p50']:.2f} / {after['recall_ms']['p95']:.2f}",
            f"{dense['recall_ms']['p50']:.3f} / {dense['recall_ms']['p95']:.3f}",
            "",
        ),
        (
            "fact/important memories archived",
            "0",
            str(r["archived"]["fact_or_important"]),
            "0",
            "0",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"tiers after lifecycle: {fa['tiers']} (no lifecycle: {fb['tiers']})")
    print(f"archived by role: {r['archived']}; changes summed over the runs: {runs['changed']}")
    print(f"missed after lifecycle: {after['missed']}; plain dense missed: {dense['missed']}")
    print(
        f"ingest {runs['ingest_s']} s (no lifecycle: {r['ingest_s_no_lifecycle']} s); "
        f"whole bench {r['seconds']} s"
    )
