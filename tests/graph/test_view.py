"""NamespaceView: the CSR adjacency of a namespace, kept current on write, compacted,
saved and rebuilt from the store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hippograph.graph.activation import REVERSE, ActivationParams, spread_activation
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    Memory,
    Tier,
    to_epoch,
)
from hippograph.graph.store import GraphStore, WriteBatch, WriteResult
from hippograph.graph.view import NamespaceView
from tests.stores import open_store

T = AssociationType
TIERS = list(Tier)
PARAMS = ActivationParams(hops=3, decay=0.5, fanout_exponent=0.5, threshold=0.0)


def add_nodes(
    view: NamespaceView, seqs: list[int], sessions: list[str | None] | None = None
) -> None:
    k = len(seqs)
    view.add_nodes(
        np.array(seqs, np.int64),
        is_memory=np.ones(k, bool),
        occurred_at=np.arange(k, dtype=np.float64) + 1_000.0,
        importance=np.full(k, 0.5, np.float32),
        tier=np.zeros(k, np.int8),
        sessions=sessions or [None] * k,
    )


def adjacency(view: NamespaceView) -> Counter[tuple[int, int, int, float]]:
    """Every stored direction of every live edge, by seq: (from, to, type, weight)."""
    out: Counter[tuple[int, int, int, float]] = Counter()
    for layer in view.layers:
        for i in range(layer.n_nodes):
            for p in range(layer.indptr[i], layer.indptr[i + 1]):
                j = int(layer.indices[p])
                if layer.weights[p] > 0 and view.alive[i] and view.alive[j]:
                    key = (int(view.seq[i]), int(view.seq[j]), int(layer.types[p]))
                    out[(*key, round(float(layer.weights[p]), 5))] += 1
    return out


def degree_by_seq(view: NamespaceView) -> dict[int, int]:
    return {int(s): int(d) for s, d, a in zip(view.seq, view.degree, view.alive, strict=True) if a}


def activation(view: NamespaceView, seed_seqs: list[int]) -> dict[int, float]:
    """Spread from seeds (by seq) the way recall does; energies keyed by seq."""
    seeds = view.index_of(np.array(seed_seqs, np.int64))
    seeds = seeds[seeds >= 0]  # as recall does: unknown and forgotten seqs seed nothing
    result = spread_activation(
        view.layers,
        seeds,
        np.ones(len(seeds)),
        PARAMS,
        degree=view.degree,
        alive=view.alive,
    )
    return {int(view.seq[n]): e for n, e in result.as_dict().items()}


def unique_edges(
    rng: np.random.Generator, seqs: list[int], m: int
) -> list[tuple[int, int, int, float]]:
    """m distinct associations (no self loops, never both i->j and j->i of one type)."""
    seen: set[tuple[int, int, int]] = set()
    edges = []
    while len(edges) < m:
        a, b = rng.choice(len(seqs), 2, replace=False)
        t = int(rng.integers(0, 8))
        key = (min(a, b), max(a, b), t)
        if key in seen:
            continue
        seen.add(key)
        edges.append((seqs[a], seqs[b], t, round(float(rng.uniform(0.1, 1.0)), 3)))
    return edges


# -- kept current on write ------------------------------------------------------------


def test_a_new_edge_is_seen_by_activation_before_any_compaction() -> None:
    view = NamespaceView()
    add_nodes(view, [10, 20, 30])
    assert activation(view, [10]) == {10: 1.0}
    view.add_edges([(10, 20, T.FOLLOWS.code, 1.0)])
    assert len(view.layers) == 2  # base + delta: nothing was compacted
    assert activation(view, [10]).keys() == {10, 20}
    view.add_edges([(20, 30, T.SIMILAR_TO.code, 0.5)])
    assert activation(view, [10]).keys() == {10, 20, 30}
    assert degree_by_seq(view) == {10: 1, 20: 2, 30: 1}
    assert view.n_edges == 2


def test_nodes_added_after_edges_can_be_linked_at_once() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2])
    view.add_edges([(1, 2, 0, 1.0)])
    add_nodes(view, [5])  # the delta CSR was built for two nodes
    view.add_edges([(5, 1, 0, 1.0)])
    assert activation(view, [5]).keys() == {1, 2, 5}


def test_edges_naming_unknown_or_dead_nodes_are_ignored() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2, 3])
    view.remove_node(3)
    view.add_edges([(1, 99, 0, 1.0), (3, 1, 0, 1.0), (77, 2, 0, 1.0)])
    assert adjacency(view) == Counter()
    assert view.n_edges == 0
    assert degree_by_seq(view) == {1: 0, 2: 0}


def test_nodes_must_be_added_in_increasing_seq_order() -> None:
    view = NamespaceView()
    add_nodes(view, [5, 6])
    with pytest.raises(ValueError, match="increasing"):
        add_nodes(view, [6])
    with pytest.raises(ValueError, match="increasing"):
        add_nodes(view, [3])
    assert view.seq.tolist() == [5, 6]


def test_index_of_maps_seqs_to_positions_and_unknown_or_dead_to_minus_one() -> None:
    view = NamespaceView()
    assert view.index_of([1]).tolist() == [-1]
    add_nodes(view, [3, 8, 20])
    view.remove_node(8)
    assert view.index_of([20, 3, 8, 4, 0, 99]).tolist() == [2, 0, -1, -1, -1, -1]


def test_an_existing_edge_written_again_takes_the_new_weight_without_a_duplicate() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2])
    view.add_edges([(1, 2, T.SIMILAR_TO.code, 0.6)])
    view.add_edges([(1, 2, T.SIMILAR_TO.code, 0.9)])
    assert adjacency(view) == Counter({(1, 2, 0, 0.9): 1, (2, 1, REVERSE, 0.9): 1})
    assert degree_by_seq(view) == {1: 1, 2: 1}


# -- compaction -----------------------------------------------------------------------


def test_compaction_at_the_delta_limit_keeps_the_same_adjacency() -> None:
    rng = np.random.default_rng(11)
    seqs = [int(s) for s in np.cumsum(rng.integers(1, 4, 25))]
    small, large = NamespaceView(delta_limit=5), NamespaceView(delta_limit=10**6)
    for view in (small, large):
        add_nodes(view, seqs)
    compactions = 0
    for e in unique_edges(rng, seqs, 60):
        for view in (small, large):
            view.add_edges([e])
        if len(small.layers) == 1:
            compactions += 1
        assert adjacency(small) == adjacency(large)
        assert degree_by_seq(small) == degree_by_seq(large)
    assert compactions >= 5  # the small view did compact, repeatedly
    assert len(large.layers) == 2  # and the large one never did
    for seed in seqs[:5]:
        want = activation(large, [seed])
        got = activation(small, [seed])
        assert got.keys() == want.keys()
        assert [got[k] for k in want] == pytest.approx(list(want.values()))


def test_explicit_compaction_changes_nothing_a_query_can_see() -> None:
    rng = np.random.default_rng(5)
    seqs = list(range(1, 16))
    view = NamespaceView()
    add_nodes(view, seqs)
    view.add_edges(unique_edges(rng, seqs, 30))
    before_adjacency, before_degree = adjacency(view), degree_by_seq(view)
    before = activation(view, [1, 7])
    view.compact()
    assert len(view.layers) == 1
    assert adjacency(view) == before_adjacency
    assert degree_by_seq(view) == before_degree
    after = activation(view, [1, 7])
    assert after == pytest.approx(before)


def test_set_weight_updates_both_stored_directions_in_delta_and_base() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2, 3])
    view.add_edges([(1, 2, T.RELATED_TO.code, 0.5), (2, 3, T.FOLLOWS.code, 0.5)])
    i, j = view.index_of([1, 2]).tolist()
    assert view.set_weight(i, j, T.RELATED_TO.code, 0.75) is True
    assert adjacency(view)[(1, 2, T.RELATED_TO.code, 0.75)] == 1
    assert adjacency(view)[(2, 1, T.RELATED_TO.code + REVERSE, 0.75)] == 1
    view.compact()  # the new weight survives compaction (the delta rows were updated)
    assert adjacency(view)[(1, 2, T.RELATED_TO.code, 0.75)] == 1
    assert view.set_weight(i, j, T.RELATED_TO.code, 0.25) is True  # now in the base
    assert adjacency(view)[(1, 2, T.RELATED_TO.code, 0.25)] == 1
    assert adjacency(view)[(2, 1, T.RELATED_TO.code + REVERSE, 0.25)] == 1
    # associations are directed: 2 -> 1 is another association, which does not exist
    assert view.set_weight(j, i, T.RELATED_TO.code, 0.9) is False
    # no such edge: other type, or no edge between the nodes at all
    assert view.set_weight(i, j, T.FOLLOWS.code, 0.9) is False
    k = int(view.index_of([3])[0])
    assert view.set_weight(i, k, T.FOLLOWS.code, 0.9) is False
    assert adjacency(view)[(2, 3, T.FOLLOWS.code, 0.5)] == 1


# -- forgetting -----------------------------------------------------------------------


def test_remove_node_hides_it_from_activation_and_compaction_drops_its_edges() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2, 3, 4])
    view.add_edges([(1, 2, 0, 1.0), (2, 3, 0, 1.0), (1, 4, 0, 1.0)])
    view.remove_node(2)
    assert view.index_of([2]).tolist() == [-1]
    assert view.n_memories == 3
    reached = activation(view, [1])
    assert 2 not in reached and 3 not in reached  # 3 was only reachable through 2
    assert 4 in reached
    # a forgotten node passed as a seed anyway starts nothing
    dead = spread_activation(view.layers, np.array([1]), np.ones(1), PARAMS, alive=view.alive)
    assert dead.as_dict() == {}
    view.compact()
    assert adjacency(view) == Counter({(1, 4, 0, 1.0): 1, (4, 1, REVERSE, 1.0): 1})
    assert degree_by_seq(view) == {1: 1, 3: 0, 4: 1}
    view.remove_node(12345)  # unknown: nothing happens
    assert view.n_memories == 3


def test_activation_after_remove_node_does_not_change_when_the_view_is_compacted() -> None:
    # hub 1 with leaves 2..5; forget leaf 5. Before compaction the hub's degree is still 4.
    view = NamespaceView()
    add_nodes(view, [1, 2, 3, 4, 5])
    view.add_edges([(1, leaf, 0, 1.0) for leaf in (2, 3, 4, 5)])
    view.remove_node(5)
    before = activation(view, [2])
    view.compact()
    after = activation(view, [2])
    assert after == pytest.approx(before)


# -- touch and small queries -----------------------------------------------------------


def test_touch_records_the_latest_access_the_count_and_the_tier() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2])
    nodes = np.array([0, 1])
    view.touch(nodes, 500.0, np.array([TIERS.index(Tier.WORKING)] * 2, np.int8))
    view.touch(np.array([0]), 400.0)  # an older access: the count rises, the time stays
    assert view.last_accessed_at.tolist() == [500.0, 500.0]
    assert view.access_count.tolist() == [2, 1]


def test_edges_among_lists_each_edge_between_the_nodes_once() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2, 3])
    view.add_edges([(1, 2, T.FOLLOWS.code, 0.8), (2, 3, T.SIMILAR_TO.code, 0.6)])
    view.compact()
    view.add_edges([(1, 3, T.RELATED_TO.code, 0.4)])  # one edge in the delta
    among = view.edges_among(np.array([0, 1, 2]))
    assert sorted(among) == sorted(
        [
            (0, 1, T.FOLLOWS.code, pytest.approx(0.8)),
            (1, 2, T.SIMILAR_TO.code, pytest.approx(0.6)),
            (0, 2, T.RELATED_TO.code, pytest.approx(0.4)),
        ]
    )
    assert view.edges_among(np.array([0, 2])) == [(0, 2, T.RELATED_TO.code, pytest.approx(0.4))]


def test_session_codes_tell_no_session_from_an_unknown_one() -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2, 3], sessions=["s1", None, "s1"])
    assert view.session.tolist() == [0, -1, 0]
    assert view.session_code(None) == -1
    assert view.session_code("s1") == 0
    assert view.session_code("never") == -2  # matches no node, not even "no session"


# -- persistence ----------------------------------------------------------------------


def test_save_and_load_round_trip_arrays_and_generation(tmp_path: Path) -> None:
    view = NamespaceView()
    view.add_nodes(
        np.array([2, 4, 9, 11]),
        is_memory=np.array([True, True, False, True]),
        occurred_at=np.array([10.0, 20.0, np.nan, 40.0]),
        importance=np.array([0.1, 0.2, 0.0, 0.9], np.float32),
        tier=np.array([0, 1, -1, 3], np.int8),
        sessions=["a", None, None, "b"],
    )
    view.add_edges([(2, 4, 1, 0.8), (4, 9, 2, 0.6), (2, 11, 7, 0.3), (9, 11, 2, 0.6)])
    view.touch(np.array([1]), 123.0)
    view.remove_node(11)
    path = tmp_path / "derived" / "ns.view.npz"
    view.save(path, generation=42)  # compacts first
    loaded, generation = NamespaceView.load(path)
    assert generation == 42
    for name in (
        "seq",
        "is_memory",
        "alive",
        "occurred_at",
        "last_accessed_at",
        "access_count",
        "importance",
        "tier",
        "session",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(view, name), err_msg=name)
        assert getattr(loaded, name).dtype == getattr(view, name).dtype, name
    assert loaded.sessions == ["a", "b"]
    assert adjacency(loaded) == adjacency(view)
    assert degree_by_seq(loaded) == degree_by_seq(view)
    assert activation(loaded, [2]) == pytest.approx(activation(view, [2]))
    assert loaded.index_of([11]).tolist() == [-1]  # forgotten stays forgotten
    # the loaded view keeps working: a new node and edge
    add_nodes(loaded, [12])
    loaded.add_edges([(12, 2, 0, 1.0)])
    assert 12 in activation(loaded, [2])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_a_view_whose_newest_nodes_have_no_edges_saves_and_loads(tmp_path: Path) -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2])  # e.g. two memories that mention nothing and follow nothing
    view.save(tmp_path / "v.npz", generation=2)
    loaded, generation = NamespaceView.load(tmp_path / "v.npz")
    assert generation == 2
    assert loaded.seq.tolist() == [1, 2]


def test_load_rejects_a_file_of_another_format(tmp_path: Path) -> None:
    view = NamespaceView()
    add_nodes(view, [1, 2])
    view.add_edges([(1, 2, 0, 1.0)])
    path = tmp_path / "v.npz"
    view.save(path, generation=1)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = np.array('{"format": 99, "generation": 1, "sessions": []}')
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="format"):
        NamespaceView.load(path)


# -- rebuilt from the store ---------------------------------------------------------------


def apply(view: NamespaceView, batch: WriteBatch, result: WriteResult) -> None:
    """What MemoryGraph does after a store write: new nodes in seq order, then edges."""
    by_id = {m.id: m for m in batch.memories}
    created = sorted(result.new_nodes, key=lambda i: result.seqs[i])
    memories = [by_id.get(i) for i in created]
    view.add_nodes(
        np.array([result.seqs[i] for i in created], np.int64),
        is_memory=np.array([m is not None for m in memories]),
        occurred_at=np.array([to_epoch(m.when) if m else np.nan for m in memories]),
        importance=np.array([m.importance if m else 0.0 for m in memories], np.float32),
        tier=np.array([TIERS.index(m.tier) if m else -1 for m in memories], np.int8),
        sessions=[m.session_id if m else None for m in memories],
    )
    view.add_edges(result.edges)


def write(store: GraphStore, view: NamespaceView, batch: WriteBatch) -> WriteResult:
    result = store.write("ns", batch)
    apply(view, batch, result)
    return result


def mem(memory_id: str, session: str | None = None, importance: float = 0.5) -> Memory:
    return Memory(
        id=memory_id, namespace="ns", content=memory_id, session_id=session, importance=importance
    )


def same_view(a: NamespaceView, b: NamespaceView) -> None:
    assert a.seq.tolist() == b.seq.tolist()
    assert a.is_memory.tolist() == b.is_memory.tolist()
    np.testing.assert_array_equal(a.occurred_at, b.occurred_at)
    np.testing.assert_array_equal(a.importance, b.importance)
    assert a.tier.tolist() == b.tier.tolist()
    sessions = [[v.sessions[c] if c >= 0 else None for c in v.session] for v in (a, b)]
    assert sessions[0] == sessions[1]
    assert adjacency(a) == adjacency(b)
    assert degree_by_seq(a) == degree_by_seq(b)


def test_from_store_equals_the_incrementally_built_view(tmp_path: Path, store_kind: str) -> None:
    store = open_store(store_kind, tmp_path)
    view = NamespaceView(delta_limit=4)
    write(store, view, WriteBatch(memories=[mem("a", "s1"), mem("b", "s1", 0.9)]))
    write(
        store,
        view,
        WriteBatch(
            memories=[mem("c", "s2")],
            entities={"caroline": "Caroline"},
            edges=[
                Association("a", "b", T.FOLLOWS, 0.8),
                Association("c", "a", T.SIMILAR_TO, 0.6),
                Association("c", ENTITY_PREFIX + "caroline", T.MENTIONS, 0.6),
                Association("a", ENTITY_PREFIX + "caroline", T.MENTIONS, 0.6),
            ],
        ),
    )
    write(
        store,
        view,
        WriteBatch(
            memories=[mem("d")],
            entities={"caroline": "Caroline"},
            edges=[
                Association("d", ENTITY_PREFIX + "caroline", T.MENTIONS, 0.6),
                Association("c", "a", T.SIMILAR_TO, 0.9),  # derived upsert: rises to 0.9
                Association("b", "d", T.CAUSES, 0.7, explicit=True),
            ],
        ),
    )
    write(store, view, WriteBatch(edges=[Association("b", "d", T.CAUSES, 0.2, explicit=True)]))
    write(store, view, WriteBatch(memories=[mem("e", "s1")]))  # a node without edges
    rebuilt = NamespaceView.from_store(store, "ns")
    same_view(view, rebuilt)
    assert adjacency(rebuilt)[(3, 1, T.SIMILAR_TO.code, 0.9)] == 1
    for seed in rebuilt.seq.tolist():
        assert activation(view, [seed]) == pytest.approx(activation(rebuilt, [seed]))
    store.close()


def test_from_store_equals_the_incremental_view_with_reciprocal_associations(
    tmp_path: Path, store_kind: str
) -> None:
    store = open_store(store_kind, tmp_path)
    view = NamespaceView()
    write(store, view, WriteBatch(memories=[mem("a"), mem("b")]))
    write(store, view, WriteBatch(edges=[Association("a", "b", T.RELATED_TO, 0.9, explicit=True)]))
    write(store, view, WriteBatch(edges=[Association("b", "a", T.RELATED_TO, 0.2, explicit=True)]))
    rebuilt = NamespaceView.from_store(store, "ns")
    store.close()
    assert adjacency(rebuilt)[(1, 2, T.RELATED_TO.code, 0.9)] == 1  # the store's truth
    same_view(view, rebuilt)
