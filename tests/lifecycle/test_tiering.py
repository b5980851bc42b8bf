"""Tiering: promotion by recent use, demotion by disuse, archiving of cold memories
(ACT-R activation, idle time, importance), what never moves, idempotency, and the job
end to end through a MemoryGraph."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from hippograph.graph import MemoryInput
from hippograph.graph.model import MemoryKind, Tier, from_epoch, to_epoch
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle.model import DAY, LifecycleConfig, Snapshot
from hippograph.lifecycle.tiering import activation, plan

NOW = to_epoch(datetime(2025, 6, 1, tzinfo=UTC))
CONFIG = LifecycleConfig()


def _tiers(result: Any) -> dict[str, Tier]:
    return {m.id: m.tier for m in result.changes.memories}


def test_recently_used_episodic_memories_are_promoted(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("used", days_ago=30, accessed_days_ago=0.5, access_count=2)
    b.memory("used-long-ago", days_ago=30, accessed_days_ago=2)
    b.memory("new-never-used", days_ago=0.1)  # creation is not use
    result = plan(b.build(), CONFIG, NOW)
    assert _tiers(result) == {"used": Tier.WORKING}
    assert result.counts == {"promoted": 1, "demoted": 0, "archived": 0}


def test_idle_working_memories_are_demoted(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("idle", tier=Tier.WORKING, days_ago=8)  # never accessed: idle since it occurred
    b.memory("busy", tier=Tier.WORKING, days_ago=8, accessed_days_ago=6)
    b.memory("accessed-idle", tier=Tier.WORKING, days_ago=30, accessed_days_ago=7.5)
    result = plan(b.build(), CONFIG, NOW)
    assert _tiers(result) == {"idle": Tier.EPISODIC, "accessed-idle": Tier.EPISODIC}
    assert result.counts == {"promoted": 0, "demoted": 2, "archived": 0}


def test_moved_memory_keeps_every_other_field(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    before = b.memory("idle", tier=Tier.WORKING, days_ago=8, importance=0.3, metadata={"k": 1})
    (after,) = plan(b.build(), CONFIG, NOW).changes.memories
    assert dataclasses.replace(after, tier=Tier.WORKING) == before
    assert after.embedding is before.embedding


def test_activation_is_actr_base_level_with_creation_as_a_presentation(
    snapshot_builder: Any,
) -> None:
    b = snapshot_builder(NOW)
    once = b.memory("once", days_ago=100)
    twice = b.memory("twice", days_ago=100, accessed_days_ago=100, access_count=1)
    got = activation([once, twice], NOW)
    t = 100 * DAY
    assert got[0] == pytest.approx(-0.5 * math.log(t))  # ln(t ** -0.5)
    assert got[1] == pytest.approx(math.log(2 * t**-0.5))  # two presentations at t


def test_cold_episodic_memories_are_archived(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("cold", days_ago=100)  # B = ln((100 d) ** -0.5) = -7.96 < -2
    b.memory("important", days_ago=100, importance=0.8)
    idle = CONFIG.archive_idle_days
    b.memory("recently-idle", days_ago=100, accessed_days_ago=idle - 1)
    b.memory("occurred-recently", days_ago=0, occurred_days_ago=idle - 1)
    result = plan(b.build(), CONFIG, NOW)
    assert _tiers(result) == {"cold": Tier.ARCHIVED}
    assert result.counts == {"promoted": 0, "demoted": 0, "archived": 1}


def test_activation_threshold_keeps_frequently_used_memories(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("cold", days_ago=100)
    b.memory("busy", days_ago=100, accessed_days_ago=61, access_count=10_000)
    levels = activation(b.build().memories, NOW).tolist()
    threshold = (levels[0] + levels[1]) / 2  # between the two: -7.96 < t < B(busy)
    config = LifecycleConfig(archive_activation=threshold)
    assert _tiers(plan(b.build(), config, NOW)) == {"cold": Tier.ARCHIVED}
    lower = LifecycleConfig(archive_activation=levels[0])  # B == threshold: not below
    assert plan(b.build(), lower, NOW).empty


def test_a_long_idle_working_memory_is_archived_in_one_run(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("old", tier=Tier.WORKING, days_ago=90)
    result = plan(b.build(), CONFIG, NOW)
    assert _tiers(result) == {"old": Tier.ARCHIVED}
    assert result.counts == {"promoted": 0, "demoted": 0, "archived": 1}


def test_concepts_semantic_and_archived_memories_never_move(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("concept", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC, days_ago=400)
    b.memory("concept-working", kind=MemoryKind.CONCEPT, tier=Tier.WORKING, days_ago=400)
    b.memory("fact", kind=MemoryKind.FACT, tier=Tier.SEMANTIC, days_ago=400)
    b.memory("archived", tier=Tier.ARCHIVED, days_ago=400, accessed_days_ago=0.1)
    b.memory("stub", tier=Tier.ARCHIVED, days_ago=400, accessed_days_ago=0.1, vector=None)
    result = plan(b.build(), CONFIG, NOW)
    assert result.empty
    assert result.counts == {"promoted": 0, "demoted": 0, "archived": 0}


def test_second_run_plans_nothing(snapshot_builder: Any, apply_plan: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("promote", days_ago=30, accessed_days_ago=0.2)
    b.memory("demote", tier=Tier.WORKING, days_ago=10)
    b.memory("archive", days_ago=100)
    b.memory("archive-from-working", tier=Tier.WORKING, days_ago=100)
    b.memory("stay", days_ago=20)
    first = plan(b.build(), CONFIG, NOW)
    assert first.counts == {"promoted": 1, "demoted": 1, "archived": 2}
    after = apply_plan(b.build(), first.changes)
    assert {m.id: m.tier for m in after.memories} == {
        "promote": Tier.WORKING,
        "demote": Tier.EPISODIC,
        "archive": Tier.ARCHIVED,
        "archive-from-working": Tier.ARCHIVED,
        "stay": Tier.EPISODIC,
    }
    assert plan(after, CONFIG, NOW).empty


def test_settings_that_would_oscillate_are_refused(snapshot_builder: Any) -> None:
    config = LifecycleConfig(promote_recent_days=8.0, working_idle_days=7.0)
    with pytest.raises(ValueError, match="promote_recent_days"):
        plan(snapshot_builder(NOW).build(), config, NOW)


def test_a_snapshot_without_vectors_is_refused(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("idle", tier=Tier.WORKING, days_ago=8, vector=None)
    with pytest.raises(ValueError, match="embedding"):
        plan(b.build(), CONFIG, NOW)


# -- end to end ----------------------------------------------------------------------------


def test_tiering_through_a_graph(make_graph: Any) -> None:
    now = time.time()
    stored_at = {"t": now - 200 * DAY}
    graph = make_graph(clock=lambda: from_epoch(stored_at["t"]))
    ns = "agent"
    graph.remember_many(
        ns,
        [
            MemoryInput("an old holiday", id="old"),
            MemoryInput("an old but important promise", id="kept", importance=0.9),
            MemoryInput("the office wifi password is on the fridge", id="fact", kind="fact"),
        ],
    )
    stored_at["t"] = now - 10 * DAY
    graph.remember(ns, "last week's standup", id="week")
    stored_at["t"] = now
    graph.remember(ns, "fresh note about the garden", id="fresh")
    ids = ("fresh", "week", "old", "kept", "fact")
    assert {graph.get(ns, i).tier for i in ids} == {Tier.WORKING}
    snapshot = Snapshot.read(graph.store, ns)
    result = plan(snapshot, CONFIG, now)
    assert result.counts == {"promoted": 0, "demoted": 3, "archived": 1}
    assert graph.get(ns, "old").tier == Tier.WORKING  # planning alone (dry run) changes nothing

    graph.apply_changes(ns, result.changes)
    tiers = {i: graph.get(ns, i).tier for i in ids}
    assert tiers == {
        "fresh": Tier.WORKING,
        "week": Tier.EPISODIC,
        "old": Tier.ARCHIVED,
        "kept": Tier.EPISODIC,  # important: never archived by age
        "fact": Tier.EPISODIC,  # a fact: never archived by age
    }
    stored = graph.store.get(ns, ["old"], embeddings=True)[0]
    assert stored.embedding is not None  # relabelled, not stripped (that is archive's job)
    assert graph.stats(ns)["tiers"]["archived"] == 1
    assert plan(Snapshot.read(graph.store, ns), CONFIG, now).empty


def test_an_imported_old_history_is_not_archived_on_its_first_run(make_graph: Any) -> None:
    """Idleness counts from when hippograph stored a memory, not from when the event
    happened: a history remembered today with occurredAt months back stays hot."""
    graph = make_graph()
    ns = "agent"
    now = time.time()
    graph.remember_many(
        ns,
        [
            MemoryInput(f"note {i} from last spring", occurred_at=from_epoch(now - (200 - i) * DAY))
            for i in range(5)
        ],
    )
    result = plan(Snapshot.read(graph.store, ns), CONFIG, now + 60)
    assert result.counts == {"promoted": 0, "demoted": 0, "archived": 0}
    # and 40 idle days after storing them, the same memories do go cold
    later = plan(Snapshot.read(graph.store, ns), CONFIG, now + 40 * DAY)
    assert later.counts["archived"] == 5


def test_recall_then_tiering_promotes(make_graph: Any) -> None:
    graph = make_graph()
    ns = "agent"
    now = time.time()
    graph.remember(ns, "the blue bicycle in the shed", id="bike")
    old = Snapshot.read(graph.store, ns).memories[0]
    # a memory demoted earlier, then used again within the day
    used = dataclasses.replace(
        old,
        tier=Tier.EPISODIC,
        last_accessed_at=from_epoch(now - 3600),
        access_count=3,
    )
    graph.apply_changes(ns, ChangeBatch(memories=[used]))
    assert graph.get(ns, "bike").tier == Tier.EPISODIC
    result = plan(Snapshot.read(graph.store, ns), CONFIG, now)
    assert result.counts["promoted"] == 1
    graph.apply_changes(ns, result.changes)
    assert graph.get(ns, "bike").tier == Tier.WORKING
    assert graph.get(ns, "bike").access_count == 3
