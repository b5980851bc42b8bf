"""Consolidate: communities become concepts (content, keywords, centroid, PART_OF),
re-runs update instead of duplicating, and the job end to end through a MemoryGraph."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

import hippograph.lifecycle.consolidate
from hippograph.graph import MemoryInput
from hippograph.graph.model import AssociationType, MemoryKind, Tier, content_hash, to_epoch
from hippograph.lifecycle.consolidate import association_graph, concept_id, plan
from hippograph.lifecycle.model import LifecycleConfig, Snapshot

NOW = to_epoch(datetime(2025, 6, 1, tzinfo=UTC))
CONFIG = LifecycleConfig(min_community=5, max_keywords=3)
S = AssociationType

HIKING = [
    "mountain trail hiking",
    "mountain trail hiking boots",
    "mountain trail hike",
    "mountain trail",
    "mountain lake",
]
PIANO = [
    "piano lesson scales",
    "piano lesson chords",
    "piano lesson",
    "piano recital",
    "piano tuning",
]
A = [f"a{i}" for i in range(5)]
B = [f"b{i}" for i in range(5)]


def _clique(b: Any, ids: list[str], central: str | None = None) -> None:
    for x, y in itertools.combinations(ids, 2):
        b.edge(x, y, S.SIMILAR_TO, 1.0 if central in (x, y) else 0.5)


def _topics(snapshot_builder: Any) -> Any:
    """Two five-member cliques (a2 and b0 central) joined by one weak edge, and a
    three-member clique too small for a concept."""
    b = snapshot_builder(NOW)
    vectors_a = [(1.0, 0.0, 0.0)] * 2 + [(0.6, 0.8, 0.0)] + [(1.0, 0.0, 0.0)] * 2
    for i, (text, vector) in enumerate(zip(HIKING, vectors_a, strict=True)):
        b.memory(f"a{i}", text, vector=vector, days_ago=50 - i, importance=0.1 * (i + 1))
    for i, text in enumerate(PIANO):
        b.memory(f"b{i}", text, vector=(0.0, 0.0, 1.0), days_ago=40 - i)
    for i in range(3):
        b.memory(f"c{i}", f"kitchen chores {i}", vector=(0.0, 1.0, 0.0), days_ago=30)
    _clique(b, A, "a2")
    _clique(b, B, "b0")
    _clique(b, ["c0", "c1", "c2"])
    b.edge("a0", "b1", S.FOLLOWS, 0.1)
    return b


def _by_content(memories: list[Any]) -> dict[str, Any]:
    return {m.content.split("\n")[-1]: m for m in memories}


def test_communities_become_concepts(snapshot_builder: Any) -> None:
    b = _topics(snapshot_builder)
    result = plan(b.build(), CONFIG, NOW)
    assert result.counts == {"communities": 2, "created": 2, "updated": 0}
    hiking, piano = result.changes.new_memories
    assert hiking.id == concept_id(A) and piano.id == concept_id(B)
    assert hiking.content == "mountain, trail, hiking\nmountain trail hike"
    assert hiking.content_hash == content_hash(hiking.content)
    assert (hiking.kind, hiking.tier) == (MemoryKind.CONCEPT, Tier.SEMANTIC)
    assert hiking.importance == pytest.approx(0.5)  # the highest member's
    assert hiking.occurred_at == b.at(46)  # the latest member's
    assert hiking.created_at == b.at(0)
    assert hiking.metadata == {
        "keywords": ["mountain", "trail", "hiking"],
        "members": 5,
        "central": "a2",
    }
    centroid = np.array([4.6, 0.8, 0.0]) / np.linalg.norm([4.6, 0.8, 0.0])
    assert hiking.embedding == pytest.approx(centroid, abs=1e-6)
    assert hiking.passages is None and hiking.context_embedding is None
    assert piano.content.endswith("\npiano lesson scales")
    part_of = {(e.source, e.target) for e in result.changes.edges}
    assert part_of == {(m, hiking.id) for m in A} | {(m, piano.id) for m in B}
    assert all(
        e.type == S.PART_OF and e.weight == 1.0 and not e.explicit for e in result.changes.edges
    )


def test_the_plan_is_deterministic(snapshot_builder: Any) -> None:
    first = plan(_topics(snapshot_builder).build(), CONFIG, NOW)
    second = plan(_topics(snapshot_builder).build(), CONFIG, NOW)
    assert first.changes.new_memories == second.changes.new_memories
    assert first.changes.edges == second.changes.edges


def test_second_run_plans_nothing(snapshot_builder: Any, apply_plan: Any) -> None:
    start = _topics(snapshot_builder).build()
    after = apply_plan(start, plan(start, CONFIG, NOW).changes)
    again = plan(after, CONFIG, NOW + 1000.0)
    assert again.empty
    assert again.counts == {"communities": 2, "created": 0, "updated": 0}


def test_a_new_member_updates_its_concept(snapshot_builder: Any, apply_plan: Any) -> None:
    b = _topics(snapshot_builder)
    start = b.build()
    after = apply_plan(start, plan(start, CONFIG, NOW).changes)
    cid = concept_id(A)
    grown = snapshot_builder(NOW)
    grown.memories, grown.associations = list(after.memories), list(after.associations)
    grown.memory("a5", "mountain trail snow", vector=(1.0, 0.0, 0.0), importance=0.9)
    for other in A:
        grown.edge("a5", other, S.SIMILAR_TO, 0.5)
    result = plan(grown.build(), CONFIG, NOW)
    assert result.counts == {"communities": 2, "created": 0, "updated": 1}
    assert not result.changes.new_memories
    (updated,) = result.changes.memories
    old = next(m for m in after.memories if m.id == cid)
    assert (updated.id, updated.created_at) == (old.id, old.created_at)
    assert updated.importance == 0.9
    assert updated.metadata["members"] == 6
    assert [(e.source, e.target) for e in result.changes.edges] == [("a5", cid)]
    assert not result.changes.removed_edges
    final = apply_plan(grown.build(), result.changes)
    assert plan(final, CONFIG, NOW).empty


def test_a_departed_member_loses_its_part_of(snapshot_builder: Any, apply_plan: Any) -> None:
    config = dataclasses.replace(CONFIG, min_community=4)
    start = _topics(snapshot_builder).build()
    after = apply_plan(start, plan(start, config, NOW).changes)
    cid = concept_id(A)
    # a4 loses every association: it leaves the hiking community
    cut = Snapshot(
        after.namespace,
        after.memories,
        [e for e in after.associations if e.type == S.PART_OF or "a4" not in (e.source, e.target)],
        after.entities,
    )
    result = plan(cut, config, NOW)
    assert result.counts == {"communities": 2, "created": 0, "updated": 1}
    assert result.changes.removed_edges == [("a4", cid, S.PART_OF)]
    (updated,) = result.changes.memories
    assert updated.id == cid and updated.metadata["members"] == 4
    assert not result.changes.edges and not result.changes.new_memories


def test_a_concept_no_community_matches_is_left_alone(snapshot_builder: Any) -> None:
    b = _topics(snapshot_builder)
    # an old concept over the kitchen memories (too few for a community now) and one
    # whose members overlap the hiking community too little (Jaccard 2/6 < 0.5)
    b.memory("concept-old", "kitchen", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    b.memory("concept-thin", "trail", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    for m in ("c0", "c1", "c2"):
        b.edge(m, "concept-old", S.PART_OF, 1.0)
    for m in ("a0", "a1", "c0"):
        b.edge(m, "concept-thin", S.PART_OF, 1.0)
    result = plan(b.build(), CONFIG, NOW)
    assert result.counts == {"communities": 2, "created": 2, "updated": 0}
    assert not result.changes.memories and not result.changes.removed_edges
    assert {e.target for e in result.changes.edges} == {concept_id(A), concept_id(B)}


def test_a_taken_concept_id_gets_another(snapshot_builder: Any) -> None:
    b = _topics(snapshot_builder)
    b.memory(concept_id(A), "an unrelated concept", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    result = plan(b.build(), CONFIG, NOW)
    ids = [m.id for m in result.changes.new_memories]
    assert ids == [concept_id(A, 1), concept_id(B)]


def test_concepts_stubs_part_of_and_entities_stay_out_of_the_graph(
    snapshot_builder: Any,
) -> None:
    b = snapshot_builder(NOW)
    b.memory("m1")
    b.memory("m2")
    b.memory("stub", tier=Tier.ARCHIVED, vector=None)
    b.memory("concept", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)
    tea = b.entity("tea")
    b.edge("m1", "m2", S.SIMILAR_TO, 0.5)
    b.edge("m2", "m1", S.FOLLOWS, 0.25)
    b.edge("m1", "m2", S.PART_OF, 1.0)
    b.edge("m1", "stub", S.RELATED_TO, 1.0)
    b.edge("m1", "concept", S.PART_OF, 1.0)
    b.edge("m1", tea, S.MENTIONS, 1.0)
    graph = association_graph(b.build())
    assert list(graph.nodes) == ["m1", "m2"]
    assert graph["m1"]["m2"]["weight"] == pytest.approx(0.75)  # both directions, summed


def test_archived_memories_form_no_concept(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    for i in range(5):
        b.memory(f"x{i}", f"old shed paint note {i}", vector=(1.0, 0.0), tier=Tier.ARCHIVED)
    _clique(b, [f"x{i}" for i in range(5)])
    assert plan(b.build(), CONFIG, NOW).empty
    live = snapshot_builder(NOW)
    for i in range(5):
        live.memory(f"x{i}", f"old shed paint note {i}", vector=(1.0, 0.0))
    _clique(live, [f"x{i}" for i in range(5)])
    assert plan(live.build(), CONFIG, NOW).counts["created"] == 1


def test_module_doctests_pass() -> None:
    assert doctest.testmod(hippograph.lifecycle.consolidate).failed == 0


# -- end to end ----------------------------------------------------------------------------


def _remember_topic(graph: Any, ns: str, prefix: str, texts: list[str]) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(len(texts))]
    graph.remember_many(ns, [MemoryInput(t, id=i) for i, t in zip(ids, texts, strict=True)])
    for x, y in itertools.combinations(ids, 2):
        graph.associate(ns, x, y, S.RELATED_TO, 0.9)
    return ids


def test_consolidate_through_a_graph(make_graph: Any) -> None:
    graph = make_graph()
    ns = "agent"
    hiking = _remember_topic(graph, ns, "h", HIKING)
    piano = _remember_topic(graph, ns, "p", PIANO)
    config = dataclasses.replace(CONFIG, min_community=4)
    result = plan(Snapshot.read(graph.store, ns), config, NOW)
    assert result.counts == {"communities": 2, "created": 2, "updated": 0}
    assert graph.stats(ns)["kinds"].get("concept", 0) == 0  # dry run: nothing written

    graph.apply_changes(ns, result.changes)
    assert graph.stats(ns)["kinds"]["concept"] == 2
    cid = concept_id(hiking)
    concept = graph.get(ns, cid)
    assert concept is not None
    assert (concept.kind, concept.tier) == (MemoryKind.CONCEPT, Tier.SEMANTIC)
    assert concept.content.startswith("mountain, trail, hiking\n")
    members = {a.source for a in graph.neighbors(ns, cid, [S.PART_OF])}
    assert members == set(hiking)
    seqs = graph.store.seqs_of(ns, [cid, concept_id(piano)])
    assert set(seqs.values()) <= set(graph.indexed(ns).tolist())  # searchable by vector
    assert plan(Snapshot.read(graph.store, ns), config, NOW).empty

    # a new hiking memory joins: the same concept is updated, nothing is duplicated
    graph.remember(ns, "mountain trail in the snow", id="h5")
    for other in hiking:
        graph.associate(ns, "h5", other, S.RELATED_TO, 0.9)
    again = plan(Snapshot.read(graph.store, ns), config, NOW)
    assert again.counts == {"communities": 2, "created": 0, "updated": 1}
    graph.apply_changes(ns, again.changes)
    assert graph.stats(ns)["kinds"]["concept"] == 2
    assert {a.source for a in graph.neighbors(ns, cid, [S.PART_OF])} == {*hiking, "h5"}
    assert graph.get(ns, cid).metadata["members"] == 6
    assert plan(Snapshot.read(graph.store, ns), config, NOW).empty
