"""Running the jobs: every run recorded and shown by stats, dry runs change nothing,
a second run finds nothing left to do, unknown jobs are refused, and the schedule runs
in the background and stops cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from hippograph.graph import MemoryGraph, MemoryInput
from hippograph.graph.model import BadInput, Tier, from_epoch
from hippograph.lifecycle import JOBS, LifecycleConfig, LifecycleSchedule, parse_jobs, run_jobs
from hippograph.lifecycle.model import DAY

MakeGraph = Callable[..., MemoryGraph]
NS = "agent"
NOW = time.time()  # edges are created at the wall clock, so the history is set around it


def _ago(days: float) -> str:
    return from_epoch(NOW - days * DAY).isoformat()


class Clock:
    """The time the graph stores new memories at (``MemoryGraph(clock=...)``)."""

    def __init__(self) -> None:
        self.days_ago = 0.0

    def __call__(self) -> datetime:
        return from_epoch(NOW - self.days_ago * DAY)


def _history(graph: MemoryGraph) -> None:
    """Old, idle chit-chat (cold: stored 200 days ago and never used), a duplicate pair,
    and a recent important fact. ``graph`` was opened with a :class:`Clock`."""
    clock = graph.clock
    assert isinstance(clock, Clock)
    clock.days_ago = 200
    old = [
        MemoryInput(
            f"Old note {i} about the garden shed and the blue paint",
            id=f"old{i}",
            session_id="s-old",
            occurred_at=_ago(200 - i),
            importance=0.3,
        )
        for i in range(6)
    ]
    graph.remember_many(NS, old)
    clock.days_ago = 2
    graph.remember(NS, "Buy oat milk tomorrow", id="dup1", session_id="s-new", occurred_at=_ago(2))
    graph.remember(NS, "Buy oat milk tomorrow", id="dup2", session_id="s-new", occurred_at=_ago(2))
    clock.days_ago = 1
    graph.remember(
        NS,
        "The server password rotates on the first of each month",
        id="fact",
        occurred_at=_ago(1),
        importance=0.95,
    )


def _state(graph: MemoryGraph) -> tuple[object, ...]:
    stats = graph.stats(NS)
    edges = sorted(
        (a.source, a.target, a.type.value, round(a.weight, 9))
        for chunk in graph.store.iter_associations(NS)
        for a in chunk
    )
    memories = sorted(
        (m.id, m.tier.value, m.content) for chunk in graph.store.iter_memories(NS) for m in chunk
    )
    return stats["tiers"], stats["associations"], memories, edges


def test_a_dry_run_reports_changes_and_changes_nothing_but_the_run_records(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph(clock=Clock())
    _history(graph)
    before = _state(graph)
    report = run_jobs(graph, NS, config=LifecycleConfig(), now=NOW, dry_run=True)
    assert [j.job for j in report.jobs] == list(JOBS)
    assert report.dry_run and all(j.dry_run for j in report.jobs)
    counts = {j.job: j.counts for j in report.jobs}
    assert counts["dedup"]["merged"] == 1
    assert counts["tiering"]["archived"] >= 1
    assert _state(graph) == before
    runs = graph.lifecycle_runs(NS)
    assert [r["job"] for r in runs] == list(reversed(JOBS))
    assert all(r["dry_run"] for r in runs)


def test_a_run_changes_the_graph_and_a_second_run_finds_nothing_to_do(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph(clock=Clock())
    _history(graph)
    first = run_jobs(graph, NS, config=LifecycleConfig(), now=NOW)
    counts = {j.job: j.counts for j in first.jobs}
    assert counts["dedup"]["merged"] == 1
    assert graph.get(NS, "dup2").id == "dup1"  # type: ignore[union-attr]
    fact = graph.get(NS, "fact")
    assert fact is not None and fact.tier is not Tier.ARCHIVED  # important: kept hot
    old = graph.get(NS, "old0")
    assert old is not None and old.tier is Tier.ARCHIVED and old.embedding is None
    assert counts["archive"]["memories"] >= 1
    after = _state(graph)
    second = run_jobs(graph, NS, config=LifecycleConfig(), now=NOW)
    assert _state(graph) == after
    changed = {
        j.job: {
            k: v for k, v in j.counts.items() if k in {"removed", "merged", "created", "memories"}
        }
        for j in second.jobs
    }
    assert all(v == 0 for c in changed.values() for v in c.values()), changed
    assert len(graph.lifecycle_runs(NS)) == 10


def test_decay_runs_only_the_time_since_the_previous_decay(make_graph: MakeGraph) -> None:
    graph = make_graph(clock=Clock())
    _history(graph)
    weights = lambda: {  # noqa: E731
        (a.source, a.target, a.type): a.weight
        for chunk in graph.store.iter_associations(NS)
        for a in chunk
    }
    run_jobs(graph, NS, ["decay"], config=LifecycleConfig(), now=NOW)
    once = weights()
    run_jobs(graph, NS, ["decay"], config=LifecycleConfig(), now=NOW)
    assert weights() == once
    run_jobs(graph, NS, ["decay"], config=LifecycleConfig(), now=NOW + 30 * DAY)
    later = weights()
    assert set(later) <= set(once)
    assert all(later[key] < once[key] for key in later)


def test_unknown_jobs_are_refused_naming_the_field(make_graph: MakeGraph) -> None:
    assert parse_jobs("decay, tiering") == ["decay", "tiering"]
    assert parse_jobs(None) == list(JOBS)
    with pytest.raises(BadInput, match="jobs: unknown job 'compact'"):
        parse_jobs("decay,compact")
    graph = make_graph(clock=Clock())
    _history(graph)
    with pytest.raises(BadInput):
        run_jobs(graph, NS, ["vacuum"], now=NOW)
    assert graph.lifecycle_runs(NS) == []


def test_the_schedule_runs_in_the_background_and_stops(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    graph = make_graph(clock=Clock())
    _history(graph)
    seen: list[str] = []
    done = threading.Event()

    def on_report(report: object) -> None:
        seen.append(report.namespace)  # type: ignore[attr-defined]
        if len(seen) >= 2:
            done.set()

    schedule = LifecycleSchedule(
        graph,
        config=LifecycleConfig(),
        jobs=["decay", "tiering"],
        interval_s=0.05,
        on_report=on_report,
    )
    schedule.start()
    assert done.wait(timeout=30)
    schedule.stop()
    count = len(graph.lifecycle_runs(NS))
    assert count >= 2 and set(seen) == {NS}
    assert len(graph.lifecycle_runs(NS)) == count  # stopped: nothing more runs
    with pytest.raises(ValueError, match="interval_s"):
        LifecycleSchedule(graph, config=LifecycleConfig(), jobs=["decay"], interval_s=0)
