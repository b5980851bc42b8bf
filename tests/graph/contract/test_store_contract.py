"""The ``GraphStore`` contract: what every backend must do, run against each backend.

A backend joins by adding one entry to ``BACKENDS`` (a factory that opens — or
reopens — the same database) and one ``pytest.param`` to the ``backend`` fixture.
Neo4j runs against the server ``make test`` starts (``NEO4J_URI`` and friends; see
``tests/stores.py``), and is skipped with the reason without one; ``pytest -m neo4j``
runs only those.
"""

from __future__ import annotations

import contextlib
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from hippograph.graph.model import (
    CONTEXT_POSITION,
    ENTITY_PREFIX,
    PASSAGE_BITS,
    Association,
    AssociationType,
    BadInput,
    DuplicateId,
    Memory,
    MemoryKind,
    NotFound,
    Tier,
    to_epoch,
)
from hippograph.graph.store import (
    AccessRecord,
    ChangeBatch,
    GraphStore,
    RunRecord,
    WriteBatch,
    WriteResult,
)
from tests.stores import open_neo4j

DIM = 8
T = AssociationType


# -- backends -------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    open: Callable[[], GraphStore]  # opens the same database every time it is called


def _sqlite(tmp_path: Path) -> Backend:
    from hippograph.graph.sqlite_store import SQLiteStore

    path = tmp_path / "contract.db"
    return Backend("sqlite", lambda: SQLiteStore(path))


def _neo4j(tmp_path: Path) -> Backend:  # pragma: no cover - needs a server
    return Backend("neo4j", open_neo4j)


BACKENDS: dict[str, Callable[[Path], Backend]] = {"sqlite": _sqlite, "neo4j": _neo4j}


@pytest.fixture
def backend(store_kind: str, tmp_path: Path) -> Backend:
    return BACKENDS[store_kind](tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[GraphStore]:
    opened = backend.open()
    yield opened
    with contextlib.suppress(Exception):  # the persistence test closed it already
        opened.close()


@pytest.fixture
def ns() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def other_ns() -> str:
    return f"contract-other-{uuid.uuid4().hex[:10]}"


# -- helpers --------------------------------------------------------------------------


def vec(key: str) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    v = rng.standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def memory(memory_id: str, content: str | None = None, **fields: object) -> Memory:
    fields.setdefault("embedding", vec(memory_id))
    return Memory(
        id=memory_id,
        namespace="ignored-the-store-uses-its-argument",
        content=content or f"memory {memory_id}",
        **fields,  # type: ignore[arg-type]
    )


def edge(
    source: str,
    target: str,
    type_: AssociationType = T.RELATED_TO,
    weight: float = 0.5,
    *,
    explicit: bool = False,
) -> Association:
    return Association(source, target, type_, weight, explicit=explicit)


def write(
    store: GraphStore,
    namespace: str,
    *memories: Memory,
    edges: list[Association] | None = None,
    entities: dict[str, str] | None = None,
) -> WriteResult:
    return store.write(
        namespace,
        WriteBatch(memories=list(memories), entities=entities or {}, edges=edges or []),
    )


def edge_set(store: GraphStore, namespace: str) -> set[tuple[int, int, int, float]]:
    cols = store.load_edges(namespace)
    return {
        (int(s), int(d), int(t), round(float(w), 5))
        for s, d, t, w in zip(cols.src, cols.dst, cols.type, cols.weight, strict=True)
    }


def snapshot(store: GraphStore, namespace: str) -> tuple[object, ...]:
    """Everything a failed write must leave untouched."""
    return (
        store.generation(namespace),
        store.stats(namespace),
        store.load_nodes(namespace).seq.tolist(),
        edge_set(store, namespace),
    )


def weight_of(store: GraphStore, namespace: str, source: str, target: str, type_: T) -> float:
    found = [
        a
        for a in store.associations(namespace, source, [type_])
        if a.source == source and a.target == target
    ]
    assert len(found) == 1, found
    return found[0].weight


# -- writes, seqs and generations ------------------------------------------------------


def test_write_assigns_increasing_seqs_to_new_nodes(store: GraphStore, ns: str) -> None:
    first = write(store, ns, memory("a"), memory("b"))
    second = write(store, ns, memory("c"))
    assert first.new_nodes == ["a", "b"]
    assert second.new_nodes == ["c"]
    assert first.seqs["a"] < first.seqs["b"] < second.seqs["c"]
    assert store.seqs_of(ns, ["a", "b", "c"]) == {**first.seqs, **second.seqs}
    assert store.node_ids(ns, list(first.seqs.values())) == {s: i for i, s in first.seqs.items()}


def test_generation_bumps_on_every_write_forget_and_record_access(
    store: GraphStore, ns: str
) -> None:
    assert store.generation(ns) == 0
    result = write(store, ns, memory("a"), memory("b"), edges=[edge("a", "b")])
    assert result.generation == store.generation(ns) == 1
    assert write(store, ns, memory("c")).generation == store.generation(ns) == 2
    assert store.forget(ns, "c") is not None
    assert store.generation(ns) == 3
    store.record_access(ns, [AccessRecord(seq=result.seqs["a"], at=1_000.0)], [])
    assert store.generation(ns) == 4
    code = T.RELATED_TO.code
    store.record_access(ns, [], [(result.seqs["a"], result.seqs["b"], code, 0.9, 1_000.0)])
    assert store.generation(ns) == 5
    assert ns in store.namespaces()


def test_forget_of_an_unknown_id_returns_none_and_changes_nothing(
    store: GraphStore, ns: str
) -> None:
    write(store, ns, memory("a"))
    before = snapshot(store, ns)
    assert store.forget(ns, "nobody") is None
    assert snapshot(store, ns) == before


def test_duplicate_id_raises_and_changes_nothing(store: GraphStore, ns: str) -> None:
    write(store, ns, memory("a", "the original text"))
    before = snapshot(store, ns)
    with pytest.raises(DuplicateId) as caught:
        write(store, ns, memory("b", "brand new words"), memory("a", "an impostor"))
    assert isinstance(caught.value, BadInput)
    assert caught.value.field == "id"
    assert "'a'" in str(caught.value)
    assert snapshot(store, ns) == before
    assert store.get(ns, ["b"]) == []
    assert store.get(ns, ["a"])[0].content == "the original text"
    assert store.search_text(ns, "brand", 10) == []
    assert store.search_text(ns, "impostor", 10) == []


def test_edge_to_a_missing_node_raises_not_found_and_stores_nothing_of_the_batch(
    store: GraphStore, ns: str
) -> None:
    write(store, ns, memory("a"))
    before = snapshot(store, ns)
    with pytest.raises(NotFound) as caught:
        write(
            store,
            ns,
            memory("x", "orphaned zeppelin"),
            entities={"zeppelin": "Zeppelin"},
            edges=[
                edge("x", ENTITY_PREFIX + "zeppelin", T.MENTIONS),
                edge("x", "ghost"),
            ],
        )
    assert "ghost" in str(caught.value)
    # atomic: neither the memory, its entity, its edges nor its text survive
    assert snapshot(store, ns) == before
    assert store.get(ns, ["x"]) == []
    assert store.seqs_of(ns, ["x", ENTITY_PREFIX + "zeppelin"]) == {}
    assert store.search_text(ns, "zeppelin", 10) == []


def test_entity_nodes_are_created_once_per_key_and_reused(store: GraphStore, ns: str) -> None:
    caroline = ENTITY_PREFIX + "caroline"
    first = write(
        store,
        ns,
        memory("a", "Caroline went hiking"),
        entities={"caroline": "Caroline"},
        edges=[edge("a", caroline, T.MENTIONS, 0.6)],
    )
    second = write(
        store,
        ns,
        memory("b", "Caroline baked bread"),
        entities={"caroline": "Caroline"},
        edges=[edge("b", caroline, T.MENTIONS, 0.6)],
    )
    assert caroline in first.new_nodes
    assert caroline not in second.new_nodes
    assert second.new_nodes == ["b"]
    assert first.seqs[caroline] == second.seqs[caroline] == store.seqs_of(ns, [caroline])[caroline]
    assert store.stats(ns)["entities"] == {"count": 1}
    mentioning = {a.source for a in store.associations(ns, caroline, [T.MENTIONS])}
    assert mentioning == {"a", "b"}
    # an entity is a node, not a memory
    assert store.get(ns, [caroline]) == []
    assert store.node_ids(ns, [first.seqs[caroline]]) == {first.seqs[caroline]: caroline}


def test_second_write_of_a_derived_edge_keeps_the_larger_weight(store: GraphStore, ns: str) -> None:
    seqs = write(store, ns, memory("a"), memory("b")).seqs
    write(store, ns, edges=[edge("a", "b", T.SIMILAR_TO, 0.7)])
    lower = write(store, ns, edges=[edge("a", "b", T.SIMILAR_TO, 0.5)])
    assert weight_of(store, ns, "a", "b", T.SIMILAR_TO) == pytest.approx(0.7)
    # the result reports the edge as stored, not as asked
    assert lower.edges == [(seqs["a"], seqs["b"], T.SIMILAR_TO.code, pytest.approx(0.7))]
    write(store, ns, edges=[edge("a", "b", T.SIMILAR_TO, 0.9)])
    assert weight_of(store, ns, "a", "b", T.SIMILAR_TO) == pytest.approx(0.9)
    # one edge per (source, target, type): a second type is a second edge
    write(store, ns, edges=[edge("a", "b", T.FOLLOWS, 0.3)])
    assert weight_of(store, ns, "a", "b", T.FOLLOWS) == pytest.approx(0.3)
    assert store.stats(ns)["associations"]["SIMILAR_TO"] == 1
    assert store.stats(ns)["associations"]["FOLLOWS"] == 1
    assert len(store.load_edges(ns).src) == 2


def test_second_write_of_an_explicit_edge_sets_its_weight(store: GraphStore, ns: str) -> None:
    write(store, ns, memory("a"), memory("b"))
    write(store, ns, edges=[edge("a", "b", T.CAUSES, 0.9, explicit=True)])
    result = write(store, ns, edges=[edge("a", "b", T.CAUSES, 0.2, explicit=True)])
    assert weight_of(store, ns, "a", "b", T.CAUSES) == pytest.approx(0.2)
    assert result.edges[0][3] == pytest.approx(0.2)
    (stored,) = store.associations(ns, "a", [T.CAUSES])
    assert stored.explicit is True
    assert store.stats(ns)["associations"]["CAUSES"] == 1


def test_within_one_batch_the_strongest_duplicate_edge_wins(store: GraphStore, ns: str) -> None:
    write(
        store,
        ns,
        memory("a"),
        memory("b"),
        edges=[edge("a", "b", T.SIMILAR_TO, 0.4), edge("a", "b", T.SIMILAR_TO, 0.8)],
    )
    assert weight_of(store, ns, "a", "b", T.SIMILAR_TO) == pytest.approx(0.8)
    assert store.stats(ns)["associations"]["SIMILAR_TO"] == 1


def test_forget_deletes_the_memory_and_all_its_edges_in_both_directions(
    store: GraphStore, ns: str
) -> None:
    tag = ENTITY_PREFIX + "kayak"
    seqs = write(
        store,
        ns,
        memory("a", "alpha"),
        memory("b", "bravo kayak"),
        memory("c", "charlie"),
        entities={"kayak": "Kayak"},
        edges=[
            edge("a", "b", T.FOLLOWS),
            edge("b", "c", T.SIMILAR_TO),
            edge("b", tag, T.MENTIONS),
            edge("a", "c", T.RELATED_TO),
        ],
    ).seqs
    generation = store.generation(ns)
    forgotten = store.forget(ns, "b")
    assert forgotten is not None and forgotten[0] == seqs["b"]
    assert store.generation(ns) == generation + 1
    assert store.get(ns, ["b"]) == []
    assert store.get_by_seq(ns, [seqs["b"]]) == {}
    assert store.seqs_of(ns, ["b"]) == {}
    assert store.associations(ns, "b") == []
    for other in ("a", "c", tag):
        assert all("b" not in (x.source, x.target) for x in store.associations(ns, other))
    assert edge_set(store, ns) == {(seqs["a"], seqs["c"], T.RELATED_TO.code, 0.5)}
    assert seqs["b"] not in store.load_nodes(ns).seq.tolist()
    assert store.search_text(ns, "bravo", 10) == []
    assert store.stats(ns)["associations"]["FOLLOWS"] == 0
    # the entity node stays (other memories may mention it later)
    assert store.stats(ns)["entities"] == {"count": 1}
    assert store.forget(ns, "b") is None
    assert store.forget(ns, tag) is None  # entities are not memories


def test_an_id_can_be_reused_after_forget_without_reviving_anything(
    store: GraphStore, ns: str
) -> None:
    old = write(
        store, ns, memory("a", "old walrus"), memory("b"), edges=[edge("a", "b", T.FOLLOWS)]
    ).seqs
    store.forget(ns, "a")
    new = write(store, ns, memory("a", "new narwhal")).seqs
    assert new["a"] > old["b"]
    assert store.get(ns, ["a"])[0].content == "new narwhal"
    assert store.associations(ns, "a") == []
    assert store.search_text(ns, "walrus", 10) == []
    assert [s for s, _ in store.search_text(ns, "narwhal", 10)] == [new["a"]]


# -- reads ----------------------------------------------------------------------------


def test_get_and_get_by_seq_round_trip_every_field(store: GraphStore, ns: str) -> None:
    created = datetime(2024, 3, 9, 17, 45, 12, 345678, tzinfo=UTC)
    occurred = datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))
    embedding = np.random.default_rng(7).standard_normal(384).astype(np.float32)
    original = Memory(
        id="m-ü-1",
        namespace=ns,
        content="Zoë visited Łódź — café au lait ☕, 東京 next",
        kind=MemoryKind.FACT,
        tier=Tier.SEMANTIC,
        session_id="session-α",
        created_at=created,
        occurred_at=occurred,
        importance=0.37,
        metadata={
            "city": "Zürich",
            "emoji": "🦛",
            "nested": {"list": [1, 2.5, None, True, "ß"]},
            "quote": 'he said "hi"',
        },
        embedding=embedding,
    )
    seq = write(store, ns, original).seqs[original.id]
    for got in (
        store.get(ns, [original.id], embeddings=True)[0],
        store.get_by_seq(ns, [seq], embeddings=True)[seq],
    ):
        assert got.id == original.id
        assert got.namespace == ns
        assert got.content == original.content
        assert got.kind is MemoryKind.FACT
        assert got.tier is Tier.SEMANTIC
        assert got.session_id == "session-α"
        assert got.created_at == created
        assert got.occurred_at == occurred
        assert got.last_accessed_at is None
        assert got.access_count == 0
        assert got.importance == pytest.approx(0.37)
        assert got.content_hash == original.content_hash
        assert got.metadata == original.metadata
        assert got.embedding is not None
        assert got.embedding.dtype == np.float32
        assert got.embedding.tobytes() == embedding.tobytes()
    assert store.get(ns, [original.id])[0].embedding is None  # only when asked


def test_get_returns_memories_in_the_order_asked_skipping_absent_ones(
    store: GraphStore, ns: str
) -> None:
    write(store, ns, memory("a"), memory("b"), memory("c"))
    assert [m.id for m in store.get(ns, ["c", "missing", "a", "b"])] == ["c", "a", "b"]
    assert store.get(ns, []) == []


def test_reads_of_more_ids_than_one_statement_holds_return_them_all(
    store: GraphStore, ns: str
) -> None:
    ids = [f"m{i:04d}" for i in range(1_200)]
    seqs = write(store, ns, *[memory(i, embedding=None) for i in ids]).seqs
    assert [m.id for m in store.get(ns, ids[::-1])] == ids[::-1]
    assert store.seqs_of(ns, ids) == seqs
    assert store.node_ids(ns, list(seqs.values())) == {s: i for i, s in seqs.items()}
    assert set(store.get_by_seq(ns, list(seqs.values()))) == set(seqs.values())


def test_recalled_reads_memories_and_path_names_in_one_call(
    store: GraphStore, ns: str, other_ns: str
) -> None:
    caroline = ENTITY_PREFIX + "caroline"
    seqs = write(
        store,
        ns,
        memory("a", "Caroline went hiking"),
        memory("b", "bread"),
        entities={"caroline": "Caroline"},
        edges=[edge("a", caroline, T.MENTIONS, 0.6)],
    ).seqs
    theirs = write(store, other_ns, memory("x")).seqs
    missing = max(seqs.values()) + 100
    memories, names = store.recalled(
        ns, [seqs["b"], seqs["a"], missing, theirs["x"]], [seqs[caroline], seqs["a"], missing]
    )
    assert {s: m.id for s, m in memories.items()} == {seqs["a"]: "a", seqs["b"]: "b"}
    assert memories[seqs["a"]] == store.get_by_seq(ns, [seqs["a"]])[seqs["a"]]
    assert memories[seqs["a"]].embedding is None
    assert names == {seqs[caroline]: caroline, seqs["a"]: "a"}
    assert store.recalled(ns, [], []) == ({}, {})
    # more than one statement holds: the same answer
    many = write(store, ns, *[memory(f"m{i:04d}", embedding=None) for i in range(1_100)]).seqs
    memories, names = store.recalled(ns, list(many.values()), list(many.values()))
    assert {s: m.id for s, m in memories.items()} == {s: i for i, s in many.items()}
    assert names == {s: i for i, s in many.items()}


def test_last_in_session_is_the_most_recently_stored_memory(store: GraphStore, ns: str) -> None:
    seqs = write(
        store,
        ns,
        memory("a", session_id="s1"),
        memory("b", session_id="s1"),
        memory("c", session_id="s2"),
    ).seqs
    assert store.last_in_session(ns, "s1") == ("b", seqs["b"])
    assert store.last_in_session(ns, "s2") == ("c", seqs["c"])
    assert store.last_in_session(ns, "s3") is None
    store.forget(ns, "b")
    assert store.last_in_session(ns, "s1") == ("a", seqs["a"])


def test_associations_are_strongest_first_filtered_by_type_and_limited(
    store: GraphStore, ns: str
) -> None:
    write(
        store,
        ns,
        memory("hub"),
        memory("x"),
        memory("y"),
        memory("z"),
        edges=[
            edge("hub", "x", T.SIMILAR_TO, 0.3),
            edge("y", "hub", T.FOLLOWS, 0.9),
            edge("hub", "z", T.RELATED_TO, 0.6),
        ],
    )
    assert [a.weight for a in store.associations(ns, "hub")] == pytest.approx([0.9, 0.6, 0.3])
    assert [(a.source, a.target) for a in store.associations(ns, "hub")] == [
        ("y", "hub"),
        ("hub", "z"),
        ("hub", "x"),
    ]
    only = store.associations(ns, "hub", [T.SIMILAR_TO, T.RELATED_TO])
    assert {a.type for a in only} == {T.SIMILAR_TO, T.RELATED_TO}
    assert len(store.associations(ns, "hub", limit=1)) == 1
    assert store.associations(ns, "nobody") == []


def test_record_access_updates_count_time_tier_and_strengthens_edges(
    store: GraphStore, ns: str
) -> None:
    seqs = write(
        store, ns, memory("a"), memory("b"), edges=[edge("a", "b", T.SIMILAR_TO, 0.5)]
    ).seqs
    store.record_access(
        ns,
        [AccessRecord(seqs["a"], 2_000.0, Tier.EPISODIC), AccessRecord(seqs["b"], 1_500.0)],
        [(seqs["a"], seqs["b"], T.SIMILAR_TO.code, 0.55, 2_000.0)],
    )
    # an older access never moves last_accessed_at back
    store.record_access(ns, [AccessRecord(seqs["a"], 1_000.0)], [])
    a, b = store.get(ns, ["a", "b"])
    assert (a.access_count, to_epoch(a.last_accessed_at)) == (2, 2_000.0)  # type: ignore[arg-type]
    assert a.tier is Tier.EPISODIC
    assert (b.access_count, to_epoch(b.last_accessed_at)) == (1, 1_500.0)  # type: ignore[arg-type]
    assert b.tier is Tier.WORKING  # no tier given: unchanged
    (strengthened,) = store.associations(ns, "a", [T.SIMILAR_TO])
    assert strengthened.weight == pytest.approx(0.55)
    assert strengthened.activation_count == 1
    assert strengthened.last_activated_at is not None
    assert to_epoch(strengthened.last_activated_at) == 2_000.0


# -- full text ------------------------------------------------------------------------


def test_search_text_finds_memories_by_their_words(store: GraphStore, ns: str) -> None:
    seqs = write(
        store,
        ns,
        memory("kayak", "We paddled a kayak down the river"),
        memory("bread", "She baked sourdough bread on Sunday"),
    ).seqs
    hits = store.search_text(ns, "sourdough", 10)
    assert [s for s, _ in hits] == [seqs["bread"]]
    assert all(score > 0 for _, score in hits)
    assert [s for s, _ in store.search_text(ns, "KAYAK river", 10)] == [seqs["kayak"]]
    assert store.search_text(ns, "volcano", 10) == []


def test_search_text_ranks_the_better_match_first(store: GraphStore, ns: str) -> None:
    seqs = write(
        store,
        ns,
        memory("one", "a kayak in the garage next to old bicycles and boxes"),
        memory("both", "a kayak trip on the river"),
        memory("none", "tax forms and receipts"),
    ).seqs
    hits = store.search_text(ns, "kayak river", 10)
    assert [s for s, _ in hits] == [seqs["both"], seqs["one"]]
    assert hits[0][1] > hits[1][1] > 0
    assert len(store.search_text(ns, "kayak river", 1)) == 1


def test_search_text_is_namespace_isolated(store: GraphStore, ns: str, other_ns: str) -> None:
    mine = write(store, ns, memory("a", "lighthouse keeper diary")).seqs["a"]
    write(store, other_ns, memory("a", "lighthouse keeper diary"))
    write(store, other_ns, memory("b", "another lighthouse"))
    assert [s for s, _ in store.search_text(ns, "lighthouse", 10)] == [mine]
    assert len(store.search_text(other_ns, "lighthouse", 10)) == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"foo" OR bar)', {"foo", "bar"}),
        ("'; DROP TABLE nodes; --", {"drop"}),
        ("NEAR(", {"near"}),
        ("foo* AND NOT bar", {"foo", "bar"}),
        ("content: foo", {"foo"}),
        ("ns : foo ^bar {baz}", {"foo", "bar"}),
        ('"unterminated foo', {"foo"}),
    ],
)
def test_search_text_treats_query_syntax_as_plain_words(
    store: GraphStore, ns: str, query: str, expected: set[str]
) -> None:
    seqs = write(
        store,
        ns,
        memory("foo", "the foo widget"),
        memory("bar", "a bar of chocolate"),
        memory("near", "the shop near the station"),
        memory("drop", "a drop of rain on the table"),
    ).seqs
    hits = store.search_text(ns, query, 10)
    assert {s for s, _ in hits} == {seqs[k] for k in expected}
    # nothing was dropped
    assert len(store.get(ns, ["foo", "bar", "near", "drop"])) == 4


@pytest.mark.parametrize("query", ["the and of", "a", "", "   ", "?!", "is it you"])
def test_search_text_returns_nothing_for_queries_without_content_words(
    store: GraphStore, ns: str, query: str
) -> None:
    write(store, ns, memory("a", "the and of is it you a"), memory("b", "plain words"))
    assert store.search_text(ns, query, 10) == []


# -- columns for the derived structures ----------------------------------------------


def test_load_nodes_and_load_edges_match_what_was_written(store: GraphStore, ns: str) -> None:
    occurred = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = write(
        store,
        ns,
        memory("a", session_id="s", importance=0.25, occurred_at=occurred),
        memory("b", tier=Tier.SEMANTIC, kind=MemoryKind.CONCEPT, importance=0.75),
        entities={"nasa": "NASA"},
        edges=[
            edge("a", "b", T.PART_OF, 0.4),
            edge("a", ENTITY_PREFIX + "nasa", T.MENTIONS, 0.6),
        ],
    )
    seqs = result.seqs
    nodes = store.load_nodes(ns)
    order = [seqs["a"], seqs["b"], seqs[ENTITY_PREFIX + "nasa"]]
    assert nodes.seq.dtype == np.int64
    assert nodes.seq.tolist() == sorted(order)
    row = {int(s): i for i, s in enumerate(nodes.seq)}
    a, b, e = (row[s] for s in order)
    assert nodes.is_memory.tolist() == [i != e for i in range(3)]
    assert nodes.occurred_at[a] == to_epoch(occurred)
    assert np.isnan(nodes.occurred_at[e])
    assert np.isnan(nodes.last_accessed_at).all()
    assert nodes.access_count.tolist() == [0, 0, 0]
    assert nodes.importance[a] == pytest.approx(0.25)
    assert nodes.importance[b] == pytest.approx(0.75)
    tiers = list(Tier)
    assert nodes.tier[a] == tiers.index(Tier.WORKING)
    assert nodes.tier[b] == tiers.index(Tier.SEMANTIC)
    assert nodes.tier[e] == -1
    assert [nodes.session[i] for i in (a, b, e)] == ["s", None, None]

    assert edge_set(store, ns) == {
        (seqs["a"], seqs["b"], T.PART_OF.code, 0.4),
        (seqs["a"], seqs[ENTITY_PREFIX + "nasa"], T.MENTIONS.code, 0.6),
    }
    assert edge_set(store, ns) == {(s, d, t, round(w, 5)) for s, d, t, w in result.edges}

    store.record_access(ns, [AccessRecord(seqs["b"], 5_000.0, Tier.WORKING)], [])
    nodes = store.load_nodes(ns)
    assert nodes.access_count[b] == 1
    assert nodes.last_accessed_at[b] == 5_000.0
    assert nodes.tier[b] == tiers.index(Tier.WORKING)


def test_load_columns_of_an_empty_namespace_are_empty(store: GraphStore, ns: str) -> None:
    nodes, edges = store.load_nodes(ns), store.load_edges(ns)
    assert len(nodes.seq) == len(nodes.session) == len(edges.src) == len(edges.weight) == 0


def test_iter_embeddings_yields_chunks_in_seq_order_after_min_seq(
    store: GraphStore, ns: str
) -> None:
    ids = [f"m{i}" for i in range(5)]
    seqs = write(
        store,
        ns,
        *[memory(i) for i in ids[:3]],
        entities={"x": "X"},  # entities have no embedding and are never yielded
        edges=[edge("m0", ENTITY_PREFIX + "x", T.MENTIONS)],
    ).seqs
    seqs |= write(store, ns, memory("bare", embedding=None)).seqs
    seqs |= write(store, ns, *[memory(i) for i in ids[3:]]).seqs

    chunks = list(store.iter_embeddings(ns, chunk=2))
    assert [len(s) for s, _ in chunks] == [2, 2, 1]
    got = np.concatenate([s for s, _ in chunks])
    assert got.dtype == np.int64
    assert got.tolist() == [seqs[i] for i in ids]
    vectors = np.concatenate([v for _, v in chunks])
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, np.stack([vec(i) for i in ids]))

    later = list(store.iter_embeddings(ns, min_seq=seqs["m1"]))
    assert np.concatenate([s for s, _ in later]).tolist() == [seqs[i] for i in ids[2:]]
    assert list(store.iter_embeddings(ns, min_seq=seqs["m4"])) == []


def test_iter_passages_yields_sentence_and_context_vectors_keyed_by_position(
    store: GraphStore, ns: str
) -> None:
    sentences = np.stack([vec("p0"), vec("p1"), vec("p2")])
    context = vec("ctx")
    seqs = write(
        store,
        ns,
        memory("plain"),  # one passage: no passage vectors
        memory("split", passages=sentences),
        memory("reply", context_embedding=context),
        memory("both", passages=sentences[:2], context_embedding=context),
    ).seqs
    chunks = list(store.iter_passages(ns, chunk=2))
    ids = np.concatenate([i for i, _ in chunks])
    vectors = np.concatenate([v for _, v in chunks])
    assert ids.dtype == np.int64 and vectors.dtype == np.float32
    want = {
        seqs["split"] << PASSAGE_BITS: sentences[0],
        (seqs["split"] << PASSAGE_BITS) + 1: sentences[1],
        (seqs["split"] << PASSAGE_BITS) + 2: sentences[2],
        (seqs["reply"] << PASSAGE_BITS) + CONTEXT_POSITION: context,
        seqs["both"] << PASSAGE_BITS: sentences[0],
        (seqs["both"] << PASSAGE_BITS) + 1: sentences[1],
        (seqs["both"] << PASSAGE_BITS) + CONTEXT_POSITION: context,
    }
    assert sorted(ids.tolist()) == sorted(want)
    for key, row in zip(ids.tolist(), vectors, strict=True):
        np.testing.assert_array_equal(row, want[key])
    later = np.concatenate([i for i, _ in store.iter_passages(ns, min_seq=seqs["split"])])
    assert sorted(set((later >> PASSAGE_BITS).tolist())) == [seqs["reply"], seqs["both"]]
    got = store.get(ns, ["both"], embeddings=True)[0]
    assert got.passages is not None and got.context_embedding is not None
    np.testing.assert_array_equal(got.passages, sentences[:2])
    np.testing.assert_array_equal(got.context_embedding, context)
    store.forget(ns, "split")
    left = np.concatenate([i for i, _ in store.iter_passages(ns)])
    assert seqs["split"] not in set((left >> PASSAGE_BITS).tolist())


def test_iter_memories_yields_every_memory_in_seq_order_with_every_field(
    store: GraphStore, ns: str, other_ns: str
) -> None:
    sentences = np.stack([vec("s0"), vec("s1")])
    accessed = datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)
    written = [
        memory("first", kind=MemoryKind.SKILL, importance=0.9, metadata={"k": [1, "ü"]}),
        memory("second", passages=sentences, context_embedding=vec("c"), session_id="s"),
        memory("third", tier=Tier.ARCHIVED, access_count=4, last_accessed_at=accessed),
    ]
    write(store, ns, *written)
    write(store, other_ns, memory("elsewhere"))
    chunks = list(store.iter_memories(ns, embeddings=True, chunk=2))
    assert [len(c) for c in chunks] == [2, 1]
    got = [m for c in chunks for m in c]
    assert [m.id for m in got] == ["first", "second", "third"]
    for want, have in zip(written, got, strict=True):
        for name in ("content", "kind", "tier", "session_id", "created_at", "occurred_at"):
            assert getattr(have, name) == getattr(want, name), name
        for name in ("last_accessed_at", "access_count", "content_hash", "metadata"):
            assert getattr(have, name) == getattr(want, name), name
        assert have.importance == pytest.approx(want.importance)
        assert have.embedding is not None and want.embedding is not None
        assert have.embedding.tobytes() == want.embedding.tobytes()
    assert got[0].passages is None and got[0].context_embedding is None
    assert got[1].passages is not None and got[1].context_embedding is not None
    np.testing.assert_array_equal(got[1].passages, sentences)
    np.testing.assert_array_equal(got[1].context_embedding, vec("c"))
    plain = [m for c in store.iter_memories(ns) for m in c]
    assert [m.id for m in plain] == ["first", "second", "third"]
    assert all(m.embedding is None for m in plain)


def test_iter_associations_and_entities_carry_every_property_for_export(
    store: GraphStore, ns: str, other_ns: str
) -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    activated = datetime(2024, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)
    given = [
        Association("a", "b", T.CAUSES, 0.75, created, activated, 3, explicit=True),
        Association("b", "a", T.FOLLOWS, 0.8, created),
        Association("a", f"{ENTITY_PREFIX}zoe", T.MENTIONS, 0.6, created),
    ]
    write(store, ns, memory("a"), memory("b"), edges=given, entities={"zoe": "Zoë"})
    write(store, other_ns, memory("x"), memory("y"), edges=[edge("x", "y")])
    assert store.entities(ns) == {f"{ENTITY_PREFIX}zoe": "Zoë"}
    assert store.entities(other_ns) == {}
    got = [a for c in store.iter_associations(ns, chunk=1) for a in c]
    key = lambda a: (a.source, a.target, a.type.value)  # noqa: E731
    assert sorted(got, key=key) == sorted(given, key=key)
    assert [key(a) for a in got if a.source == "x"] == []


def test_apply_changes_replaces_fields_and_moves_a_revectored_memory_to_a_new_seq(
    store: GraphStore, ns: str
) -> None:
    seqs = write(
        store,
        ns,
        memory("a"),
        memory("b"),
        memory("c"),
        edges=[edge("a", "b", T.FOLLOWS, 0.8), edge("c", "a", T.SIMILAR_TO, 0.6)],
    ).seqs
    before = store.generation(ns)
    [a] = store.get(ns, ["a"], embeddings=True)
    [b] = store.get(ns, ["b"], embeddings=True)
    retiered = replace(a, tier=Tier.EPISODIC, importance=0.9, access_count=5)
    stub = replace(b, content="stub of b", embedding=None, metadata={"archive": "f"})
    generation = store.apply_changes(ns, ChangeBatch(memories=[retiered, stub]))
    assert generation > before
    now = store.seqs_of(ns, ["a", "b", "c"])
    assert now["a"] == seqs["a"]  # same vectors: same seq
    assert now["b"] > max(seqs.values())  # vectors dropped: a new seq
    got_a, got_b = store.get(ns, ["a", "b"], embeddings=True)
    assert got_a.tier is Tier.EPISODIC and got_a.importance == pytest.approx(0.9)
    assert got_a.access_count == 5 and got_a.embedding is not None
    assert got_b.content == "stub of b" and got_b.embedding is None
    assert got_b.metadata == {"archive": "f"}
    assert [s for s, _ in store.search_text(ns, "stub", 5)] == [now["b"]]
    found = {seq for seq, _ in store.search_text(ns, "memory", 10)}
    assert found == {now["a"], now["c"]}  # b's old text left the full-text index
    # edges followed the memory to its new seq
    assert (now["a"], now["b"], T.FOLLOWS.code, 0.8) in edge_set(store, ns)
    ids = np.concatenate([i for i, _ in store.iter_embeddings(ns)])
    assert sorted(ids.tolist()) == sorted([now["a"], now["c"]])
    assert set(store.load_nodes(ns).seq.tolist()) >= set(now.values())


def test_apply_changes_sets_an_edge_of_every_association_type(store: GraphStore, ns: str) -> None:
    write(store, ns, memory("a"), memory("b"))
    weights = {t: round(0.1 + 0.1 * i, 2) for i, t in enumerate(AssociationType)}
    store.apply_changes(
        ns, ChangeBatch(edges=[Association("a", "b", t, w) for t, w in weights.items()])
    )
    got = {x.type: x.weight for x in store.associations(ns, "a") if x.target == "b"}
    assert got == pytest.approx(weights)


def test_apply_changes_sets_and_removes_edges_and_memories_atomically(
    store: GraphStore, ns: str
) -> None:
    write(
        store,
        ns,
        memory("a"),
        memory("b"),
        memory("c"),
        edges=[edge("a", "b", T.FOLLOWS, 0.8), edge("b", "c", T.SIMILAR_TO, 0.6)],
    )
    activated = datetime(2024, 6, 1, tzinfo=UTC)
    changes = ChangeBatch(
        new_memories=[memory("concept", kind=MemoryKind.CONCEPT, tier=Tier.SEMANTIC)],
        edges=[
            Association("a", "b", T.FOLLOWS, 0.25, activated, activated, 7),
            Association("a", "concept", T.PART_OF, 1.0),
        ],
        removed_edges=[("b", "c", T.SIMILAR_TO), ("c", "a", T.CAUSES)],  # the 2nd is absent
        removed_memories=["c", "never-there"],
        aliases={"c": "a"},
    )
    store.apply_changes(ns, changes)
    got = {(x.source, x.target, x.type): x for x in store.associations(ns, "a")}
    assert set(got) == {("a", "b", T.FOLLOWS), ("a", "concept", T.PART_OF)}
    follows = got[("a", "b", T.FOLLOWS)]
    assert follows.weight == pytest.approx(0.25)  # set exactly, even though lower
    assert follows.last_activated_at == activated and follows.activation_count == 7
    assert store.get(ns, ["c"]) == []
    assert store.resolve_aliases(ns, ["c", "a", "zzz"]) == {"c": "a"}
    # an alias follows its survivor when that is merged in turn
    store.apply_changes(ns, ChangeBatch(removed_memories=["a"], aliases={"a": "b"}))
    assert store.resolve_aliases(ns, ["c", "a"]) == {"c": "b", "a": "b"}
    # a new memory under a merged id is itself again
    write(store, ns, memory("c"))
    assert store.resolve_aliases(ns, ["c"]) == {}


def test_apply_changes_with_a_missing_end_raises_and_changes_nothing(
    store: GraphStore, ns: str
) -> None:
    write(store, ns, memory("a"), memory("b"), edges=[edge("a", "b")])
    before = snapshot(store, ns)
    bad = [
        ChangeBatch(removed_memories=["b"], edges=[edge("a", "nowhere")]),
        ChangeBatch(removed_edges=[("a", "b", T.RELATED_TO)], memories=[memory("ghost")]),
        ChangeBatch(removed_memories=["a"], new_memories=[memory("b")]),
    ]
    for changes in bad:
        with pytest.raises((NotFound, DuplicateId)):
            store.apply_changes(ns, changes)
        assert snapshot(store, ns) == before


def test_lifecycle_runs_are_recorded_newest_first_per_namespace(
    store: GraphStore, ns: str, other_ns: str
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i, job in enumerate(["decay", "tiering", "archive"]):
        store.record_run(
            ns,
            RunRecord(
                f"run-{i}",
                job,
                start + timedelta(hours=i),
                start + timedelta(hours=i, minutes=5),
                dry_run=i == 1,
                counts={"changed": i},
            ),
        )
    runs = store.runs(ns)
    assert [r.job for r in runs] == ["archive", "tiering", "decay"]
    assert runs[1].dry_run and not runs[0].dry_run
    assert runs[0].counts == {"changed": 2}
    assert runs[0].finished_at == start + timedelta(hours=2, minutes=5)
    assert [r.id for r in store.runs(ns, limit=1)] == ["run-2"]
    assert store.runs(other_ns) == []


def test_stats_count_memories_per_tier_and_kind_and_edges_per_type(
    store: GraphStore, ns: str
) -> None:
    write(
        store,
        ns,
        memory("a", kind=MemoryKind.FACT),
        memory("b", kind=MemoryKind.FACT, tier=Tier.EPISODIC),
        memory("c", kind=MemoryKind.SKILL, tier=Tier.ARCHIVED),
        entities={"e1": "E1", "e2": "E2"},
        edges=[
            edge("a", "b", T.FOLLOWS),
            edge("b", "c", T.FOLLOWS),
            edge("a", ENTITY_PREFIX + "e1", T.MENTIONS),
            edge("c", "a", T.CONTRADICTS),
        ],
    )
    stats = store.stats(ns)
    assert stats["tiers"] == {"working": 1, "episodic": 1, "semantic": 0, "archived": 1}
    assert stats["kinds"] == {"event": 0, "fact": 2, "skill": 1, "concept": 0}
    assert stats["associations"] == {t.value: 0 for t in T} | {
        "FOLLOWS": 2,
        "MENTIONS": 1,
        "CONTRADICTS": 1,
    }
    assert stats["entities"] == {"count": 2}


# -- namespaces -----------------------------------------------------------------------


def test_namespaces_are_isolated(store: GraphStore, ns: str, other_ns: str) -> None:
    mine = write(store, ns, memory("a", "mine"), memory("b"), edges=[edge("a", "b")]).seqs
    theirs = write(store, other_ns, memory("a", "theirs"), memory("only-there")).seqs
    assert store.get(ns, ["a"])[0].content == "mine"
    assert store.get(other_ns, ["a"])[0].content == "theirs"
    assert store.get(ns, ["only-there"]) == []
    assert store.seqs_of(ns, ["a", "only-there"]) == {"a": mine["a"]}
    assert store.get_by_seq(ns, [theirs["a"]]) == {}
    assert store.node_ids(ns, [theirs["only-there"]]) == {}
    assert len(store.associations(ns, "a")) == 1
    assert store.associations(other_ns, "a") == []
    assert store.generation(ns) == 1
    assert store.generation(other_ns) == 1
    assert store.load_nodes(other_ns).seq.tolist() == sorted(theirs.values())
    assert store.forget(other_ns, "b") is None
    # an edge may not cross namespaces: "b" does not exist in the other one
    with pytest.raises(NotFound):
        write(store, other_ns, edges=[edge("only-there", "b")])
    assert edge_set(store, other_ns) == set()
    forgotten = store.forget(other_ns, "a")
    assert forgotten is not None and forgotten[0] == theirs["a"]
    assert store.get(ns, ["a"])[0].content == "mine"
    assert store.stats(ns)["tiers"]["working"] == 2


# -- persistence ----------------------------------------------------------------------


def test_everything_is_still_there_after_close_and_reopen(
    backend: Backend, store: GraphStore, ns: str
) -> None:
    original = memory(
        "a", "persistent lighthouse", metadata={"k": "välue"}, session_id="s", importance=0.9
    )
    result = write(
        store,
        ns,
        original,
        memory("b", "second"),
        entities={"lighthouse": "Lighthouse"},
        edges=[
            edge("a", "b", T.FOLLOWS, 0.8),
            edge("a", ENTITY_PREFIX + "lighthouse", T.MENTIONS, 0.6),
        ],
    )
    store.forget(ns, "b")
    before = snapshot(store, ns)
    store.close()

    reopened = backend.open()
    try:
        assert snapshot(reopened, ns) == before
        (again,) = reopened.get(ns, ["a"], embeddings=True)
        assert again.content == original.content
        assert again.metadata == {"k": "välue"}
        assert again.embedding is not None
        assert again.embedding.tobytes() == original.embedding.tobytes()  # type: ignore[union-attr]
        assert [s for s, _ in reopened.search_text(ns, "lighthouse", 5)] == [result.seqs["a"]]
        assert reopened.get(ns, ["b"]) == []
        later = write(reopened, ns, memory("c"))
        assert later.seqs["c"] > max(result.seqs.values())  # seqs are never reused
        assert later.generation == before[0] + 1  # type: ignore[operator]
    finally:
        reopened.close()
