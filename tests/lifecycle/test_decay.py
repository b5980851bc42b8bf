"""Decay: hand-checked weights, the floor, explicit slowdown, anchoring on the previous
run (idempotency), and the job end to end through a MemoryGraph."""

from __future__ import annotations

import dataclasses
import doctest
import time
from datetime import UTC, datetime
from typing import Any

import pytest

import hippograph.lifecycle.decay
from hippograph.graph import MemoryInput
from hippograph.graph.model import AssociationType, to_epoch
from hippograph.lifecycle.decay import plan
from hippograph.lifecycle.model import DAY, LifecycleConfig, Snapshot

NOW = to_epoch(datetime(2025, 6, 1, tzinfo=UTC))
CONFIG = LifecycleConfig()
S = AssociationType


def _weights(snapshot: Snapshot) -> dict[tuple[str, str, str], float]:
    return {(e.source, e.target, e.type.value): e.weight for e in snapshot.associations}


def _two(snapshot_builder: Any) -> Any:
    b = snapshot_builder(NOW)
    b.memory("a")
    b.memory("b")
    return b


def test_weight_halves_after_one_half_life(snapshot_builder: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.8, days_ago=100, activated_days_ago=30)  # half-life 30
    b.edge("b", "a", S.FOLLOWS, 0.8, days_ago=180)  # never activated: from creation, 90
    result = plan(b.build(), CONFIG, NOW)
    got = {(e.source, e.type): e.weight for e in result.changes.edges}
    assert got[("a", S.SIMILAR_TO)] == pytest.approx(0.4)
    assert got[("b", S.FOLLOWS)] == pytest.approx(0.2)
    assert result.counts == {"edges": 2, "decayed": 2, "removed": 0}
    assert not result.changes.removed_edges


def test_decayed_edge_keeps_everything_but_its_weight(snapshot_builder: Any) -> None:
    b = _two(snapshot_builder)
    before = b.edge("a", "b", S.SIMILAR_TO, 0.9, days_ago=50, activated_days_ago=15, count=7)
    (after,) = plan(b.build(), CONFIG, NOW).changes.edges
    assert after.weight == pytest.approx(0.9 * 0.5**0.5)
    assert dataclasses.replace(after, weight=before.weight) == before


def test_explicit_edges_decay_slower_by_the_slowdown(snapshot_builder: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.RELATED_TO, 1.0, days_ago=240, explicit=True)  # 60 * 4 = 240
    b.edge("b", "a", S.RELATED_TO, 1.0, days_ago=240, explicit=False)  # 4 half-lives
    got = {e.source: e.weight for e in plan(b.build(), CONFIG, NOW).changes.edges}
    assert got["a"] == pytest.approx(0.5)
    assert got["b"] == pytest.approx(1.0 / 16)


def test_edges_under_the_floor_are_removed(snapshot_builder: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.2, days_ago=60)  # 0.05: at the floor, kept
    b.edge("b", "a", S.SIMILAR_TO, 0.2, days_ago=61)  # just under: removed
    result = plan(b.build(), CONFIG, NOW)
    assert result.changes.removed_edges == [("b", "a", S.SIMILAR_TO)]
    assert [e.source for e in result.changes.edges] == ["a"]
    assert result.counts == {"edges": 2, "decayed": 1, "removed": 1}


def test_mentions_edges_to_entities_decay_too(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW)
    b.memory("a")
    paris = b.entity("paris", "Paris")
    b.edge("a", paris, S.MENTIONS, 0.6, days_ago=90)
    (edge,) = plan(b.build(), CONFIG, NOW).changes.edges
    assert (edge.target, edge.weight) == (paris, pytest.approx(0.3))


def test_since_anchors_the_decay_on_the_previous_run(snapshot_builder: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.8, days_ago=90)  # decayed up to `since` already
    b.edge("b", "a", S.SIMILAR_TO, 0.8, days_ago=90, activated_days_ago=15)  # after since
    got = {
        e.source: e.weight for e in plan(b.build(), CONFIG, NOW, since=NOW - 30 * DAY).changes.edges
    }
    assert got["a"] == pytest.approx(0.4)  # 30 days since the last run
    assert got["b"] == pytest.approx(0.8 * 0.5**0.5)  # 15 days since its activation


def test_second_run_at_the_same_time_plans_nothing(snapshot_builder: Any, apply_plan: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.8, days_ago=45)
    b.edge("b", "a", S.SIMILAR_TO, 0.1, days_ago=45)  # removed
    first = plan(b.build(), CONFIG, NOW)
    assert first.counts == {"edges": 2, "decayed": 1, "removed": 1}
    after = apply_plan(b.build(), first.changes)
    again = plan(after, CONFIG, NOW, since=NOW)
    assert again.empty
    assert again.counts == {"edges": 1, "decayed": 0, "removed": 0}


def test_chained_runs_decay_like_one_run(snapshot_builder: Any, apply_plan: Any) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.9, days_ago=100, activated_days_ago=60)
    b.edge("b", "a", S.FOLLOWS, 0.7, days_ago=20)
    start = b.build()
    t1, t2 = NOW + 10 * DAY, NOW + 45 * DAY
    once = apply_plan(start, plan(start, CONFIG, t2).changes)
    mid = apply_plan(start, plan(start, CONFIG, t1).changes)
    twice = apply_plan(mid, plan(mid, CONFIG, t2, since=t1).changes)
    assert _weights(twice) == pytest.approx(_weights(once))
    # without `since` the second run would decay the first interval twice
    wrong = apply_plan(mid, plan(mid, CONFIG, t2).changes)
    key = ("b", "a", "FOLLOWS")
    assert _weights(wrong)[key] == pytest.approx(0.7 * 0.5 ** ((30 + 65) / 90))
    assert _weights(once)[key] == pytest.approx(0.7 * 0.5 ** (65 / 90))


def test_edges_used_after_now_and_types_without_half_life_do_not_decay(
    snapshot_builder: Any,
) -> None:
    b = _two(snapshot_builder)
    b.edge("a", "b", S.SIMILAR_TO, 0.8, days_ago=100, activated_days_ago=-1)
    b.edge("b", "a", S.CAUSES, 0.8, days_ago=400)
    config = LifecycleConfig(half_life_days={"SIMILAR_TO": 30.0})
    result = plan(b.build(), config, NOW)
    assert result.empty
    assert result.counts == {"edges": 2, "decayed": 0, "removed": 0}


@pytest.mark.parametrize(
    "config",
    [LifecycleConfig(half_life_days={"SIMILAR_TO": 0.0}), LifecycleConfig(explicit_slowdown=0.0)],
)
def test_bad_settings_are_refused(snapshot_builder: Any, config: LifecycleConfig) -> None:
    with pytest.raises(ValueError):
        plan(_two(snapshot_builder).build(), config, NOW)


def test_module_doctests_pass() -> None:
    assert doctest.testmod(hippograph.lifecycle.decay).failed == 0


# -- end to end ----------------------------------------------------------------------------


def _store_weights(graph: Any, ns: str) -> dict[tuple[str, str, str], float]:
    return _weights(Snapshot.read(graph.store, ns))


def test_decay_through_a_graph_is_applied_once(make_graph: Any) -> None:
    graph = make_graph()
    ns = "agent"
    graph.remember_many(
        ns,
        [
            MemoryInput("Alice flew to Paris for the conference", id="m1"),
            MemoryInput("The weather in Lisbon was sunny all week", id="m2"),
        ],
    )
    graph.associate(ns, "m1", "m2", S.RELATED_TO, 0.9)
    before = _store_weights(graph, ns)
    assert ("m1", "m2", "RELATED_TO") in before
    assert any(t == "MENTIONS" for _, _, t in before)
    now = time.time() + 60 * DAY
    snapshot = Snapshot.read(graph.store, ns)

    dry = plan(snapshot, CONFIG, now)  # a dry run reports and changes nothing
    assert dry.counts["decayed"] == len(before)
    assert _store_weights(graph, ns) == before

    graph.apply_changes(ns, dry.changes)
    after = _store_weights(graph, ns)
    assert set(after) == set(before)
    explicit = 0.9 * 0.5 ** (60 / (60 * 4))
    assert after[("m1", "m2", "RELATED_TO")] == pytest.approx(explicit, rel=1e-4)
    for key, weight in after.items():
        if key[2] == "MENTIONS":
            assert weight == pytest.approx(before[key] * 0.5 ** (60 / 90), rel=1e-4)

    again = plan(Snapshot.read(graph.store, ns), CONFIG, now, since=now)
    assert again.empty
    # last activation is untouched: decay does not pretend the edges were used
    stored = {(e.source, e.target): e for e in Snapshot.read(graph.store, ns).associations}
    assert stored[("m1", "m2")].last_activated_at is None


def test_decay_removes_dead_edges_from_the_graph(make_graph: Any) -> None:
    graph = make_graph()
    ns = "agent"
    graph.remember_many(
        ns,
        [MemoryInput("first note about gardening", id="a"), MemoryInput("bicycle repair", id="b")],
    )
    graph.associate(ns, "a", "b", S.RELATED_TO, 0.3)
    now = time.time() + 400 * DAY  # explicit: 0.3 * 0.5 ** (400 / 240) = 0.094; kept
    graph.apply_changes(ns, plan(Snapshot.read(graph.store, ns), CONFIG, now).changes)
    (edge,) = graph.neighbors(ns, "a", [S.RELATED_TO])
    assert edge.weight == pytest.approx(0.3 * 0.5 ** (400 / 240), rel=1e-4)
    later = now + 240 * DAY  # halves again to 0.047 < 0.05: removed
    result = plan(Snapshot.read(graph.store, ns), CONFIG, later, since=now)
    assert result.counts["removed"] >= 1
    graph.apply_changes(ns, result.changes)
    assert graph.neighbors(ns, "a", [S.RELATED_TO]) == []
    assert graph.get(ns, "a") is not None  # decay never removes memories
