"""Dry runs that chain: a dry run plans each job from the state the jobs before it would
leave (``Snapshot.apply`` in memory), so it reports the counts of the real run at the
same ``now``; and ``Snapshot.apply`` gives what a re-read of either store gives after
the store applied the same changes."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hippograph.graph import MemoryGraph, MemoryInput
from hippograph.graph.model import (
    Association,
    AssociationType,
    DuplicateId,
    Link,
    Memory,
    NotFound,
    Tier,
)
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle import JOBS, LifecycleConfig, run_jobs
from hippograph.lifecycle.model import DAY, Snapshot

MakeGraph = Callable[..., MemoryGraph]
NS = "agent"
CONFIG = LifecycleConfig()


def _history(graph: MemoryGraph) -> float:
    """A namespace every job has work in at the returned ``now`` (90 days after it was
    stored): a linked group of important notes (kept hot, one community), a linked
    chain of ordinary multi-sentence notes (archived: a region), a duplicate pair, and a
    weak explicit link (decayed away)."""
    hot = [
        MemoryInput(
            f"Tomato seedlings in the greenhouse need water, note {i}",
            id=f"hot{i}",
            session_id="s-hot",
            importance=0.9,
            links=[Link(f"hot{j}", AssociationType.RELATED_TO, 1.0) for j in range(i)],
        )
        for i in range(6)
    ]
    cold = [
        MemoryInput(
            f"Old note {i} about the garden shed. It needs the blue paint again.",
            id=f"cold{i}",
            session_id="s-cold",
            links=[Link(f"cold{i - 1}", AssociationType.RELATED_TO, 1.0)] if i else [],
        )
        for i in range(6)
    ]
    graph.remember_many(NS, hot)
    graph.remember_many(NS, cold)
    graph.remember(NS, "Buy oat milk tomorrow", id="dup1", session_id="s-milk")
    graph.remember(
        NS,
        "Buy  oat milk TOMORROW",
        id="dup2",
        session_id="s-milk",
        links=[Link("hot0", AssociationType.RELATED_TO, 0.06)],
    )
    return time.time() + 90 * DAY


def _state(graph: MemoryGraph) -> tuple[object, ...]:
    stats = graph.stats(NS)
    memories = [
        (m.id, m.tier.value, m.content, m.embedding is None)
        for chunk in graph.store.iter_memories(NS, embeddings=True)
        for m in chunk
    ]
    edges = sorted(
        (a.source, a.target, a.type.value, a.weight)
        for chunk in graph.store.iter_associations(NS)
        for a in chunk
    )
    return stats["tiers"], stats["associations"], memories, edges


def _archive_files(graph: MemoryGraph) -> list[str]:
    return sorted(p.name for p in (graph.data_dir / "archive").rglob("*") if p.is_file())


def _vectors(m: Memory) -> tuple[bytes | None, ...]:
    return tuple(
        None if v is None else np.asarray(v, np.float32).tobytes()
        for v in (m.embedding, m.passages, m.context_embedding)
    )


def _comparable(snapshot: Snapshot) -> tuple[object, ...]:
    """Everything a snapshot holds, vectors as bytes; edges in a fixed order."""
    memories = [(m, _vectors(m)) for m in snapshot.memories]
    edges = sorted(snapshot.associations, key=lambda a: (a.source, a.target, a.type.value))
    return memories, edges, snapshot.entities


def test_a_dry_run_reports_the_counts_of_the_real_run_and_changes_nothing(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    now = _history(graph)
    before = _state(graph)

    dry = run_jobs(graph, NS, config=CONFIG, now=now, dry_run=True)

    assert _state(graph) == before
    assert _archive_files(graph) == []
    real = run_jobs(graph, NS, config=CONFIG, now=now)
    assert _state(graph) != before
    assert [j.job for j in dry.jobs] == [j.job for j in real.jobs] == list(JOBS)
    predicted = {j.job: j.counts for j in dry.jobs}
    done = {j.job: j.counts for j in real.jobs}
    assert predicted == done
    # every job had something to do, so a dry run planning on the unchanged state
    # (no archived tier yet: no region) would have mispredicted
    assert done["decay"]["decayed"] > 0 and done["decay"]["removed"] > 0
    assert done["tiering"]["archived"] > 0
    assert done["dedup"]["merged"] == 1
    assert done["consolidate"]["created"] == 1
    assert done["archive"]["regions"] > 0 and done["archive"]["memories"] > 0
    assert len(_archive_files(graph)) == done["archive"]["regions"]


def test_a_dry_run_of_some_jobs_chains_them_in_the_order_given(make_graph: MakeGraph) -> None:
    graph = make_graph()
    now = _history(graph)
    dry = run_jobs(graph, NS, ["tiering", "archive"], config=CONFIG, now=now, dry_run=True)
    real = run_jobs(graph, NS, ["tiering", "archive"], config=CONFIG, now=now)
    assert [j.counts for j in dry.jobs] == [j.counts for j in real.jobs]
    assert real.jobs[1].counts["regions"] > 0


def test_apply_gives_what_a_reread_of_the_store_gives_after_each_job(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    now = _history(graph)
    chained = Snapshot.read(graph.store, NS)
    for job in JOBS:
        module: Any = importlib.import_module(f"hippograph.lifecycle.{job}")
        snapshot = Snapshot.read(graph.store, NS)
        assert _comparable(snapshot) == _comparable(chained), f"before {job}"
        plan = module.plan(snapshot, CONFIG, now)
        chained = chained.apply(module.plan(chained, CONFIG, now).changes)
        report = run_jobs(graph, NS, [job], config=CONFIG, now=now)
        assert {k: v for k, v in report.jobs[0].counts.items() if k != "as_of"} == plan.counts
    final = Snapshot.read(graph.store, NS)
    assert [m.id for m in final.memories] == [m.id for m in chained.memories]
    assert _comparable(final) == _comparable(chained)
    assert any(m.embedding is None for m in final.memories)  # stubs: vectors changed, moved


# -- Snapshot.apply on hand-built snapshots --------------------------------------------------


NOW = 1_700_000_000.0


def _start(snapshot_builder: Any) -> Snapshot:
    b = snapshot_builder(NOW)
    for name in "abcd":
        b.memory(name, vector=(1.0, 0.1 * (ord(name) - 96)))
    person = b.entity("ann")
    b.edge("a", "b")
    b.edge("b", "a", AssociationType.SIMILAR_TO, 0.7)
    b.edge("c", "b")
    b.edge("a", person, AssociationType.MENTIONS)
    b.edge("d", "c")
    return b.build()


def _edges(snapshot: Snapshot) -> set[tuple[str, str, str, float]]:
    return {(e.source, e.target, e.type.value, e.weight) for e in snapshot.associations}


def test_a_removed_memory_takes_its_edges_and_absent_ones_are_ignored(
    snapshot_builder: Any,
) -> None:
    start = _start(snapshot_builder)
    after = start.apply(
        ChangeBatch(
            removed_memories=["b", "nobody", "entity:ann"],
            removed_edges=[
                ("d", "c", AssociationType.RELATED_TO),
                ("x", "y", AssociationType.CAUSES),
            ],
        )
    )
    assert [m.id for m in after.memories] == ["a", "c", "d"]
    assert _edges(after) == {("a", "entity:ann", "MENTIONS", 1.0)}
    assert after.entities == start.entities
    assert len(start.memories) == 4 and len(start.associations) == 5  # unchanged


def test_a_memory_whose_vectors_change_moves_after_the_new_ones(snapshot_builder: Any) -> None:
    start = _start(snapshot_builder)
    a, b, c = start.memories[:3]
    new = Memory("e", "ns", "new", embedding=np.array([0.0, 1.0]))
    after = start.apply(
        ChangeBatch(
            new_memories=[new],
            memories=[
                replace(c, embedding=np.array([0.5, 0.5], np.float32)),
                replace(b, tier=Tier.ARCHIVED),  # same vectors: keeps its place
                replace(a, embedding=None),
            ],
        )
    )
    assert [m.id for m in after.memories] == ["b", "d", "e", "c", "a"]
    assert after.memories[0].tier is Tier.ARCHIVED
    e = after.memories[2]
    assert e.embedding is not None and e.embedding.dtype == np.float32


def test_a_memory_given_without_an_embedding_loses_its_passages(snapshot_builder: Any) -> None:
    start = _start(snapshot_builder)
    a = start.memories[0]
    with_passages = replace(
        a, passages=np.ones((2, 2), np.float32), context_embedding=np.ones(2, np.float32)
    )
    kept = start.apply(ChangeBatch(memories=[with_passages]))
    assert kept.memories[-1].passages is not None
    assert kept.memories[-1].context_embedding is not None
    stub = kept.apply(ChangeBatch(memories=[replace(with_passages, embedding=None)]))
    assert stub.memories[-1].id == "a"
    assert _vectors(stub.memories[-1]) == (None, None, None)
    empty = start.apply(ChangeBatch(memories=[replace(a, passages=np.zeros((0, 2)))]))
    assert empty.memories[0].id == "a" and empty.memories[0].passages is None  # not moved


def test_edges_are_set_exactly_and_self_loops_skipped(snapshot_builder: Any) -> None:
    start = _start(snapshot_builder)
    after = start.apply(
        ChangeBatch(
            edges=[
                Association("a", "b", AssociationType.RELATED_TO, 0.3),
                Association("d", "entity:ann", AssociationType.MENTIONS, 0.5),
                Association("c", "c", AssociationType.RELATED_TO, 1.0),
            ]
        )
    )
    assert ("a", "b", "RELATED_TO", 0.3) in _edges(after)
    assert ("d", "entity:ann", "MENTIONS", 0.5) in _edges(after)
    assert len(after.associations) == 6


@pytest.mark.parametrize(
    "changes",
    [
        ChangeBatch(edges=[Association("a", "zz", AssociationType.RELATED_TO, 1.0)]),
        ChangeBatch(
            removed_memories=["c"],
            edges=[Association("c", "a", AssociationType.RELATED_TO, 1.0)],
        ),
        ChangeBatch(memories=[Memory("zz", "ns", "absent")]),
    ],
    ids=["missing end", "end removed in the batch", "replacing an absent memory"],
)
def test_what_a_store_refuses_raises_not_found(snapshot_builder: Any, changes: ChangeBatch) -> None:
    with pytest.raises(NotFound):
        _start(snapshot_builder).apply(changes)


def test_a_new_memory_with_a_taken_id_is_refused(snapshot_builder: Any) -> None:
    with pytest.raises(DuplicateId):
        _start(snapshot_builder).apply(ChangeBatch(new_memories=[Memory("a", "ns", "again")]))


def test_aliases_follow_their_survivor_and_a_new_memory_drops_its_alias(
    snapshot_builder: Any,
) -> None:
    start = _start(snapshot_builder)
    merged = start.apply(ChangeBatch(removed_memories=["b"], aliases={"b": "a"}))
    assert merged.aliases == {"b": "a"}
    again = merged.apply(ChangeBatch(removed_memories=["a"], aliases={"a": "c"}))
    assert again.aliases == {"b": "c", "a": "c"}
    back = again.apply(ChangeBatch(new_memories=[Memory("b", "ns", "back")]))
    assert back.aliases == {"a": "c"}
    assert start.aliases == {}
