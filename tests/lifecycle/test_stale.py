"""Lifecycle jobs and the service writing at the same time: a job plans from a
snapshot while agents keep remembering, recalling and associating; what they wrote
between the snapshot and the apply is never overwritten or deleted (lifecycle.stale).

Each test puts a write exactly there: ``runner._plan`` is wrapped so that the write
lands after the job read its snapshot and before it applies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from hippograph.graph import AssociationType, Link, MemoryGraph, MemoryInput, RecallContext
from hippograph.graph.model import Tier, from_epoch
from hippograph.graph.store import EdgeColumns, NodeColumns
from hippograph.lifecycle import LifecycleConfig, run_jobs, runner
from hippograph.lifecycle.model import DAY
from hippograph.lifecycle.stale import _changed_edges, _changed_nodes

MakeGraph = Callable[..., MemoryGraph]
NS = "agent"


def _between_snapshot_and_apply(
    monkeypatch: pytest.MonkeyPatch, write: Callable[[int], None]
) -> list[int]:
    """Call ``write(attempt)`` after each plan the runner makes; returns the attempts."""
    real = runner._plan
    attempts: list[int] = []

    def planned(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        attempts.append(len(attempts))
        write(attempts[-1])
        return result

    monkeypatch.setattr(runner, "_plan", planned)
    return attempts


def _duplicates(graph: MemoryGraph) -> None:
    graph.remember(NS, "The ferry to the island leaves at nine", id="first")
    graph.remember(NS, "The ferry to the island leaves at nine", id="copy")


def _edges(
    graph: MemoryGraph, memory_id: str, namespace: str = NS
) -> dict[tuple[str, str, str], float]:
    return {
        (a.source, a.target, a.type.value): a.weight
        for a in graph.store.associations(namespace, memory_id, limit=1000)
    }


def test_a_link_to_a_memory_dedup_merges_moves_to_the_survivor(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent links a new memory to the duplicate that dedup is about to remove: the
    link is not deleted with it; the job plans again and re-points it to the survivor."""
    graph = make_graph()
    _duplicates(graph)

    def link(attempt: int) -> None:
        if attempt == 0:
            graph.remember(
                NS,
                MemoryInput(
                    "Ask the harbour office about the Sunday timetable",
                    id="question",
                    links=[Link("copy", AssociationType.RELATED_TO, 0.9)],
                ),
            )

    attempts = _between_snapshot_and_apply(monkeypatch, link)
    report = run_jobs(graph, NS, ["dedup"], config=LifecycleConfig())
    counts = report.jobs[0].counts
    assert graph.get(NS, "copy").id == "first"  # type: ignore[union-attr]
    edges = _edges(graph, "question")
    assert edges.get(("question", "first", "RELATED_TO")) == pytest.approx(0.9)
    assert counts["merged"] == 1 and counts["stale"] >= 1 and "skipped" not in counts
    assert len(attempts) == 2


def test_an_association_set_meanwhile_is_not_decayed_from_its_old_weight(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Decay re-weights an edge from its weight in the snapshot; an agent sets the edge
    to 1.0 meanwhile. The result is the serial one (associate, then decay), not the
    old weight decayed over the agent's write."""
    later = time.time() + 40 * DAY

    def build(graph: MemoryGraph, namespace: str) -> None:
        graph.remember(namespace, "Lena plays the violin on Tuesdays", id="lena")
        graph.remember(namespace, "The music school closes in August", id="school")
        graph.associate(namespace, "lena", "school", AssociationType.RELATED_TO, 0.4)

    raced = make_graph(tmp_path / "raced")
    build(raced, NS)

    def associate(attempt: int) -> None:
        if attempt == 0:
            raced.associate(NS, "lena", "school", AssociationType.RELATED_TO, 1.0)

    _between_snapshot_and_apply(monkeypatch, associate)
    counts = run_jobs(raced, NS, ["decay"], config=LifecycleConfig(), now=later).jobs[0].counts
    monkeypatch.undo()

    # its own namespace: on Neo4j both graphs share one database
    serial = make_graph(tmp_path / "serial")
    build(serial, "serial")
    serial.associate("serial", "lena", "school", AssociationType.RELATED_TO, 1.0)
    run_jobs(serial, "serial", ["decay"], config=LifecycleConfig(), now=later)

    key = ("lena", "school", "RELATED_TO")
    got, want = _edges(raced, "lena").get(key), _edges(serial, "lena", "serial").get(key)
    assert want is not None and want > 0.4  # decayed from 1.0, still above the old weight
    assert got == pytest.approx(want, rel=1e-4)
    assert counts["stale"] >= 1 and "skipped" not in counts


def _old_notes(graph: MemoryGraph) -> None:
    long_ago = from_epoch(time.time() - 400 * DAY)
    graph.remember_many(
        NS,
        [
            MemoryInput(
                f"Old note {i} about the garden shed and the blue paint",
                id=f"old{i}",
                session_id="s-old",
                occurred_at=(long_ago + timedelta(hours=i)).isoformat(),
                importance=0.2,
            )
            for i in range(6)
        ],
    )


def test_a_memory_recalled_meanwhile_is_not_sent_to_the_archive_tier(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiering picks memories idle for months; an agent recalls them before the job
    applies. They stay out of the archive tier, and the recall's access is kept (not
    overwritten by the snapshot's)."""
    graph = make_graph()
    _old_notes(graph)
    now = time.time() + 60 * DAY
    dry = run_jobs(graph, NS, ["tiering"], config=LifecycleConfig(), now=now, dry_run=True)
    assert dry.jobs[0].counts["archived"] == 6  # all six are cold: the job would take them

    def recall(attempt: int) -> None:
        if attempt == 0:
            found = graph.recall(
                NS, "garden shed blue paint", k=10, context=RecallContext(at=from_epoch(now))
            )
            assert {r.memory.id for r in found} == {f"old{i}" for i in range(6)}

    _between_snapshot_and_apply(monkeypatch, recall)
    counts = run_jobs(graph, NS, ["tiering"], config=LifecycleConfig(), now=now).jobs[0].counts
    for i in range(6):
        memory = graph.get(NS, f"old{i}")
        assert memory is not None and memory.tier is not Tier.ARCHIVED
        assert memory.access_count == 1 and memory.last_accessed_at == from_epoch(now)
    assert counts["archived"] == 0  # recalled at `now`: none is idle any more
    assert counts["stale"] >= 1 and "skipped" not in counts


def test_an_archive_run_raced_every_time_leaves_no_files_and_no_stubs(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = make_graph()
    _old_notes(graph)
    now = time.time() + 60 * DAY
    run_jobs(graph, NS, ["tiering"], config=LifecycleConfig(), now=now)
    assert all(graph.get(NS, f"old{i}").tier is Tier.ARCHIVED for i in range(6))  # type: ignore[union-attr]

    def relink(attempt: int) -> None:  # an agent keeps re-weighting an edge inside the region
        graph.associate(NS, "old0", "old1", AssociationType.FOLLOWS, 0.5 + attempt / 10)

    attempts = _between_snapshot_and_apply(monkeypatch, relink)
    counts = run_jobs(graph, NS, ["archive"], config=LifecycleConfig(), now=now).jobs[0].counts
    assert len(attempts) == runner.ATTEMPTS
    assert counts == {"stale": counts["stale"], "skipped": 1}
    assert list(graph.archive_dir(NS).iterdir()) == []  # every attempt's file removed again
    for i in range(6):  # no stubs: every member keeps its content and metadata
        memory = graph.get(NS, f"old{i}")
        assert memory is not None and "archive" not in memory.metadata
        assert memory.content == f"Old note {i} about the garden shed and the blue paint"

    monkeypatch.undo()
    again = run_jobs(graph, NS, ["archive"], config=LifecycleConfig(), now=now).jobs[0].counts
    assert again["memories"] == 6 and "skipped" not in again
    assert len(list(graph.archive_dir(NS).iterdir())) == again["regions"]


def test_a_write_elsewhere_costs_no_second_plan(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = make_graph()
    _duplicates(graph)

    def unrelated(attempt: int) -> None:
        graph.remember(NS, f"Water the tomatoes before noon ({attempt})", id=f"other{attempt}")

    attempts = _between_snapshot_and_apply(monkeypatch, unrelated)
    counts = run_jobs(graph, NS, ["dedup"], config=LifecycleConfig()).jobs[0].counts
    assert attempts == [0]
    assert counts["merged"] == 1 and "stale" not in counts and "skipped" not in counts
    assert graph.get(NS, "copy").id == "first"  # type: ignore[union-attr]


def test_a_job_raced_on_every_attempt_is_skipped_and_runs_next_time(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = make_graph()
    _duplicates(graph)
    graph.remember(NS, "Ask about the Sunday timetable", id="question")

    def relink(attempt: int) -> None:  # a new weight on the duplicate's edge, every dedup plan
        if attempt < runner.ATTEMPTS:
            graph.associate(NS, "question", "copy", AssociationType.RELATED_TO, 0.5 + attempt / 10)

    attempts = _between_snapshot_and_apply(monkeypatch, relink)
    report = run_jobs(graph, NS, ["dedup", "decay"], config=LifecycleConfig())
    dedup, decay = (job.counts for job in report.jobs)
    assert len(attempts) == runner.ATTEMPTS + 1  # dedup's three, and decay's first
    assert dedup == {"stale": dedup["stale"], "skipped": 1} and dedup["stale"] >= runner.ATTEMPTS
    assert graph.get(NS, "copy").id == "copy"  # type: ignore[union-attr]  # not merged
    assert "as_of" in decay  # decay's plan was made after the last write: it applied
    runs = {r["job"]: r["counts"] for r in graph.lifecycle_runs(NS)}
    assert runs["dedup"]["skipped"] == 1

    monkeypatch.undo()
    again = run_jobs(graph, NS, ["dedup"], config=LifecycleConfig()).jobs[0].counts
    assert again["merged"] == 1 and "skipped" not in again
    assert graph.get(NS, "copy").id == "first"  # type: ignore[union-attr]
    merged = _edges(graph, "question")[("question", "first", "RELATED_TO")]
    assert merged == pytest.approx(0.7, abs=1e-3)  # the last weight set, re-pointed


def _edges_of(rows: list[tuple[int, int, int, float]]) -> EdgeColumns:
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return EdgeColumns(
        src=table[:, 0].astype(np.int64),
        dst=table[:, 1].astype(np.int64),
        type=table[:, 2].astype(np.int8),
        weight=table[:, 3].astype(np.float32),
    )


@pytest.mark.parametrize("base", [1, 2**40], ids=["packed", "record-by-record"])
def test_changed_edges_finds_added_removed_and_reweighted(base: int) -> None:
    then = _edges_of(
        [(base, base + 1, 0, 0.5), (base + 1, base + 2, 7, 0.25), (base, base + 2, 3, 1.0)]
    )
    now = _edges_of(
        [(base, base + 1, 0, 0.5), (base + 1, base + 2, 7, 0.3), (base + 2, base, 3, 1.0)]
    )
    assert _changed_edges(then, now) == {
        (base + 1, base + 2, 7),  # re-weighted
        (base, base + 2, 3),  # removed
        (base + 2, base, 3),  # added (the reverse direction is another edge)
    }
    assert _changed_edges(then, then) == set()


def test_changed_nodes_finds_accesses_tiers_importance_and_comings_and_goings() -> None:
    def nodes(rows: list[tuple[int, float, int, int, float]]) -> NodeColumns:
        seq, last, count, tier, importance = (list(c) for c in zip(*rows, strict=True))
        return NodeColumns(
            seq=np.array(seq, np.int64),
            is_memory=np.ones(len(rows), bool),
            occurred_at=np.zeros(len(rows)),
            last_accessed_at=np.array(last, np.float64),
            access_count=np.array(count, np.int32),
            importance=np.array(importance, np.float32),
            tier=np.array(tier, np.int8),
            session=[None] * len(rows),
        )

    nan = float("nan")
    then = nodes(
        [(1, nan, 0, 1, 0.5), (2, 10.0, 1, 1, 0.5), (3, nan, 0, 1, 0.5), (4, 5.0, 2, 0, 0.9)]
    )
    now = nodes(
        [(1, 20.0, 1, 0, 0.5), (2, 10.0, 1, 1, 0.5), (3, nan, 0, 2, 0.5), (5, nan, 0, 1, 0.5)]
    )
    assert _changed_nodes(then, now) == {1, 3, 4, 5}  # 2 is as it was (nan == nan here)
    assert _changed_nodes(then, then) == set()
