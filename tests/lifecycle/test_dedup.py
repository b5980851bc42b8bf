"""Dedup: which memories merge, what the survivor absorbs, how associations are re-pointed
and combined, idempotency, and merged ids answering with the survivor through a
MemoryGraph."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
from typing import Any

import pytest

import hippograph.lifecycle.dedup
from hippograph.graph import MemoryInput
from hippograph.graph.model import AssociationType, MemoryKind, Tier, to_epoch
from hippograph.lifecycle.dedup import plan
from hippograph.lifecycle.model import LifecycleConfig, Snapshot

NOW = to_epoch(datetime(2025, 6, 1, tzinfo=UTC))
CONFIG = LifecycleConfig()
S = AssociationType


def _edges(snapshot: Snapshot) -> dict[tuple[str, str, AssociationType], Any]:
    return {(e.source, e.target, e.type): e for e in snapshot.associations}


def test_same_normalised_content_and_vector_merge_into_the_earliest(
    snapshot_builder: Any,
) -> None:
    b = snapshot_builder(NOW)
    b.memory("late", "Met  Alice at the Cafe.", days_ago=1, vector=(1.0, 0.0, 0.0))
    b.memory("early", "met alice at the cafe.", days_ago=5, vector=(1.0, 0.01, 0.0))
    b.memory("other", "met bob at the cafe.", days_ago=9, vector=(1.0, 0.0, 0.0))
    result = plan(b.build(), CONFIG, NOW)
    assert result.changes.removed_memories == ["late"]
    assert result.changes.aliases == {"late": "early"}
    assert [m.id for m in result.changes.memories] == ["early"]
    assert result.counts == {"groups": 1, "merged": 1}


def test_same_content_with_distant_vectors_does_not_merge(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("a", "see you tomorrow", vector=(1.0, 0.0))
    b.memory("b", "see you tomorrow", vector=(0.96, 0.28))  # cosine 0.96 < 0.97
    result = plan(b.build(), CONFIG, NOW)
    assert result.empty
    assert result.counts == {"groups": 0, "merged": 0}
    assert not plan(b.build(), LifecycleConfig(duplicate_cosine=0.95), NOW).empty


def test_members_are_compared_with_the_survivor_not_chained(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("first", "ok", days_ago=3, vector=(1.0, 0.0))
    b.memory("second", "ok", days_ago=2, vector=(0.98, 0.199))  # 0.98 to first
    b.memory("third", "ok", days_ago=1, vector=(0.921, 0.389))  # 0.99 to second, 0.92 first
    result = plan(b.build(), CONFIG, NOW)
    assert result.changes.aliases == {"second": "first"}


def test_survivor_absorbs_counts_recency_importance_and_metadata(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("a", "x", days_ago=9, access_count=2, accessed_days_ago=5, importance=0.2,
             metadata={"source": "chat", "lang": "en"})  # fmt: skip
    b.memory("b", "x", days_ago=8, access_count=3, accessed_days_ago=1, importance=0.9,
             metadata={"source": "mail", "thread": 7})  # fmt: skip
    b.memory("c", "x", days_ago=7, access_count=0, importance=0.4)
    (survivor,) = plan(b.build(), CONFIG, NOW).changes.memories
    assert survivor.id == "a"
    assert survivor.access_count == 5
    assert survivor.last_accessed_at == b.at(1)
    assert survivor.importance == 0.9
    assert survivor.metadata == {"source": "chat", "lang": "en", "thread": 7}
    assert survivor.created_at == b.at(9)
    assert survivor.embedding is b.memories[0].embedding


def test_a_duplicate_said_later_counts_as_a_use_of_the_survivor(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("old", "buy oat milk", days_ago=90)
    b.memory("again", "buy oat milk", days_ago=2)
    (survivor,) = plan(b.build(), CONFIG, NOW).changes.memories
    assert survivor.id == "old" and survivor.last_accessed_at == b.at(2)


@pytest.mark.parametrize(
    ("tiers", "expected"),
    [
        ((Tier.EPISODIC, Tier.WORKING), Tier.WORKING),
        ((Tier.SEMANTIC, Tier.EPISODIC), Tier.SEMANTIC),
        ((Tier.EPISODIC, Tier.ARCHIVED), Tier.EPISODIC),
        ((Tier.ARCHIVED, Tier.EPISODIC), Tier.EPISODIC),
        ((Tier.ARCHIVED, Tier.EPISODIC, Tier.SEMANTIC), Tier.SEMANTIC),
        ((Tier.ARCHIVED, Tier.ARCHIVED), Tier.ARCHIVED),
    ],
)
def test_survivor_tier(snapshot_builder: Any, tiers: tuple[Tier, ...], expected: Tier) -> None:
    b = snapshot_builder(NOW)
    for i, tier in enumerate(tiers):
        b.memory(f"m{i}", "same words", tier=tier, days_ago=10 - i)
    (survivor,) = plan(b.build(), CONFIG, NOW).changes.memories
    assert (survivor.id, survivor.tier) == ("m0", expected)


def test_associations_are_repointed_and_combined(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("keep", "lunch with Alice", days_ago=5)
    b.memory("dup", "Lunch with Alice", days_ago=4)
    b.memory("x", "something else", vector=(0.0, 1.0))
    alice = b.entity("alice", "Alice")
    b.edge("keep", "x", S.SIMILAR_TO, 0.5, days_ago=5, activated_days_ago=3, count=1)
    b.edge("dup", "x", S.SIMILAR_TO, 0.6, days_ago=2, activated_days_ago=1, count=2,
           explicit=True)  # fmt: skip
    b.edge("x", "dup", S.FOLLOWS, 0.8, days_ago=4)  # survivor has none: moved as is
    b.edge("dup", "keep", S.SIMILAR_TO, 1.0, days_ago=4)  # becomes a self-loop: dropped
    b.edge("keep", alice, S.MENTIONS, 0.6, days_ago=5)
    b.edge("dup", alice, S.MENTIONS, 0.6, days_ago=4)
    result = plan(b.build(), CONFIG, NOW)
    edges = {(e.source, e.target, e.type): e for e in result.changes.edges}
    assert set(edges) == {
        ("keep", "x", S.SIMILAR_TO),
        ("x", "keep", S.FOLLOWS),
        ("keep", alice, S.MENTIONS),
    }
    similar = edges[("keep", "x", S.SIMILAR_TO)]
    assert similar.weight == pytest.approx(1 - 0.5 * 0.4)
    assert similar.activation_count == 3
    assert similar.last_activated_at == b.at(1)
    assert similar.created_at == b.at(5)
    assert similar.explicit
    assert edges[("x", "keep", S.FOLLOWS)].weight == 0.8
    assert edges[("keep", alice, S.MENTIONS)].weight == pytest.approx(1 - 0.4 * 0.4)


def test_combined_weight_is_capped_at_one(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("keep", "same", days_ago=2)
    b.memory("dup", "same", days_ago=1)
    b.memory("x", "other", vector=(0.0, 1.0))
    b.edge("keep", "x", S.RELATED_TO, 1.0)
    b.edge("dup", "x", S.RELATED_TO, 1.0)
    (edge,) = plan(b.build(), CONFIG, NOW).changes.edges
    assert edge.weight == 1.0


def test_concepts_and_stubs_never_merge(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("c1", "a topic", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    b.memory("c2", "a topic", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    b.memory("s1", "archived words", tier=Tier.ARCHIVED, vector=None)
    b.memory("s2", "archived words", tier=Tier.ARCHIVED, vector=None)
    b.memory("live", "archived words")
    assert plan(b.build(), CONFIG, NOW).empty


def test_second_run_plans_nothing_and_nothing_dangles(
    snapshot_builder: Any, apply_plan: Any
) -> None:
    b = snapshot_builder(NOW)
    for i in range(3):
        b.memory(f"d{i}", "the same reply", days_ago=10 - i)
    b.memory("y", "unrelated", vector=(0.0, 1.0))
    b.edge("d0", "d1", S.FOLLOWS, 0.8)
    b.edge("d1", "d2", S.FOLLOWS, 0.8)
    b.edge("d2", "y", S.FOLLOWS, 0.8)
    b.edge("y", "d1", S.RELATED_TO, 0.5)
    b.edge("y", "d2", S.RELATED_TO, 0.5)
    first = plan(b.build(), CONFIG, NOW)
    assert first.counts == {"groups": 1, "merged": 2}
    after = apply_plan(b.build(), first.changes)
    assert [m.id for m in after.memories] == ["d0", "y"]
    edges = _edges(after)
    assert set(edges) == {("d0", "y", S.FOLLOWS), ("y", "d0", S.RELATED_TO)}
    assert edges[("y", "d0", S.RELATED_TO)].weight == pytest.approx(0.75)
    assert plan(after, CONFIG, NOW).empty


def test_module_doctests_pass() -> None:
    assert doctest.testmod(hippograph.lifecycle.dedup).failed == 0


# -- end to end ----------------------------------------------------------------------------


def test_dedup_through_a_graph(make_graph: Any) -> None:
    graph = make_graph()
    ns = "agent"
    graph.remember_many(
        ns,
        [
            MemoryInput("Bought oat milk at the corner shop", id="first", session_id="s1"),
            MemoryInput("the bus was late again", id="bus", session_id="s1"),
            MemoryInput("bought  OAT milk at the corner shop", id="again", session_id="s2"),
        ],
    )
    graph.associate(ns, "bus", "again", S.CAUSES, 0.7)
    before = Snapshot.read(graph.store, ns)
    result = plan(before, CONFIG, 0.0)
    assert result.counts == {"groups": 1, "merged": 1}
    assert graph.get(ns, "again").id == "again"  # a dry run changes nothing

    graph.apply_changes(ns, result.changes)
    assert graph.get(ns, "again").id == "first"  # a merged id answers with its survivor
    assert graph.store.resolve_aliases(ns, ["again", "bus"]) == {"again": "first"}
    assert graph.store.get(ns, ["again"]) == []
    edges = _edges(Snapshot.read(graph.store, ns))
    assert ("bus", "first", S.CAUSES) in edges
    assert edges[("bus", "first", S.CAUSES)].explicit
    assert not any("again" in (s, t) for s, t, _ in edges)
    recalled = [r.memory.id for r in graph.recall(ns, "oat milk corner shop", k=5)]
    assert "first" in recalled and "again" not in recalled
    assert plan(Snapshot.read(graph.store, ns), CONFIG, 0.0).empty
