"""MemoryGraph: association on write, recall with explanations, forgetting, bad input,
persistence and recovery, learning from recall, context — over real files in tmp_path.

The hashing encoder is used throughout (deterministic, no model); the last test loads
the real sentence encoder to check that a paraphrase finds its memory.
"""

from __future__ import annotations

import itertools
import math
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hippograph.embeddings import HashingEncoder
from hippograph.graph import (
    AssociationType,
    BadInput,
    DuplicateId,
    GraphConfig,
    Link,
    MemoryGraph,
    MemoryInput,
    NotFound,
    PathStep,
    RecallContext,
    Recollection,
    Tier,
)
from hippograph.graph.model import ENTITY_PREFIX
from hippograph.graph.scoring import PART_NAMES, blend
from hippograph.graph.store import AccessRecord
from tests.stores import open_store

T = AssociationType
NS = "agent"
AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)  # "now" for recalls that must be repeatable
MakeGraph = Callable[..., MemoryGraph]


def ids(results: list[Recollection]) -> list[str]:
    return [r.memory.id for r in results]


def recall_ids(graph: MemoryGraph, query: str, **kwargs: Any) -> list[str]:
    kwargs.setdefault("learn", False)
    return ids(graph.recall(NS, query, **kwargs))


def edges_of(graph: MemoryGraph, memory_id: str, type_: T) -> set[tuple[str, str, float]]:
    return {
        (a.source, a.target, round(a.weight, 6)) for a in graph.neighbors(NS, memory_id, [type_])
    }


def snapshot(graph: MemoryGraph) -> tuple[int, dict[str, Any]]:
    return graph.store.generation(NS), graph.store.stats(NS)


def similarity(encoder: HashingEncoder, a: str, b: str) -> float:
    va, vb = encoder.encode([a, b])
    return float(va @ vb)


def crash(graph: MemoryGraph) -> None:
    """Lose the process without close(): nothing derived is saved after this."""
    graph.store.close()


# -- associations built on write ---------------------------------------------------------


def test_remember_links_a_memory_to_the_previous_one_of_its_session(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "packed the tent", id="a", session_id="trip")
    g.remember(NS, "paid the electricity bill", id="x", session_id="home")
    g.remember(NS, "drove to the lake", id="b", session_id="trip")
    g.remember(NS, "no session at all", id="loose")
    follows = g.config.follows_weight
    assert edges_of(g, "b", T.FOLLOWS) == {("a", "b", follows)}
    assert edges_of(g, "x", T.FOLLOWS) == set()
    assert edges_of(g, "loose", T.FOLLOWS) == set()


def test_remember_many_chains_follows_inside_one_batch(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "woke up early", id="w", session_id="s")
    g.remember_many(
        NS,
        [
            MemoryInput("made coffee", id="x", session_id="s"),
            MemoryInput("other session", id="o", session_id="t"),
            MemoryInput("read the news", id="y", session_id="s"),
            MemoryInput("went jogging", id="z", session_id="s"),
        ],
    )
    chain = {
        (a.source, a.target)
        for m in ("w", "x", "y", "z", "o")
        for a in g.neighbors(NS, m, [T.FOLLOWS])
    }
    assert chain == {("w", "x"), ("x", "y"), ("y", "z")}


def test_follows_skips_a_forgotten_previous_memory_also_after_reopen(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    g = make_graph()
    g.remember(NS, "first", id="a", session_id="s")
    g.remember(NS, "second", id="b", session_id="s")
    g.forget(NS, "b")
    g.remember(NS, "third", id="c", session_id="s")
    assert edges_of(g, "c", T.FOLLOWS) == {("a", "c", g.config.follows_weight)}
    g.forget(NS, "c")
    g.close()
    g = make_graph()  # the session cache is empty now: the store answers
    g.remember(NS, "fourth", id="d", session_id="s")
    assert {a.source for a in g.neighbors(NS, "d", [T.FOLLOWS])} == {"a"}


def test_similar_memories_are_linked_above_the_threshold(
    make_graph: MakeGraph, hash_encoder: HashingEncoder
) -> None:
    config = GraphConfig(similar_threshold=0.5)
    g = make_graph(config=config)
    pie, pie2, tax = (
        "red apple pie recipe",
        "red apple pie recipe with cinnamon",
        "quarterly tax forms",
    )
    close_enough = similarity(hash_encoder, pie, pie2)
    assert close_enough >= 0.5  # precondition on the encoder
    assert similarity(hash_encoder, pie, tax) < 0.5
    assert similarity(hash_encoder, pie2, tax) < 0.5
    g.remember(NS, pie, id="pie")
    g.remember(NS, tax, id="tax")
    g.remember(NS, pie2, id="pie2")
    assert edges_of(g, "pie2", T.SIMILAR_TO) == {("pie2", "pie", round(close_enough, 6))}
    assert edges_of(g, "tax", T.SIMILAR_TO) == set()
    # inside one batch as well
    g.remember_many(
        NS,
        [MemoryInput("green tea leaves", id="t1"), MemoryInput("green tea leaves dried", id="t2")],
    )
    assert {(a.source, a.target) for a in g.neighbors(NS, "t2", [T.SIMILAR_TO])} == {("t2", "t1")}


def test_similar_to_is_not_built_below_the_default_threshold(make_graph: MakeGraph) -> None:
    g = make_graph(config=GraphConfig(similar_threshold=0.99))
    g.remember(NS, "red apple pie recipe", id="pie")
    g.remember(NS, "red apple pie recipe with cinnamon", id="pie2")
    assert edges_of(g, "pie2", T.SIMILAR_TO) == set()


def test_memories_naming_one_person_share_one_entity_node(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "Caroline joined the pottery workshop", id="a")
    g.remember(NS, "I met Caroline at the bakery", id="b")
    g.remember(NS, "nobody in particular", id="c")
    caroline = ENTITY_PREFIX + "caroline"
    weight = g.config.mention_weight
    assert edges_of(g, "a", T.MENTIONS) == {("a", caroline, weight)}
    assert edges_of(g, "b", T.MENTIONS) == {("b", caroline, weight)}
    assert edges_of(g, "c", T.MENTIONS) == set()
    assert {a.source for a in g.neighbors(NS, caroline)} == {"a", "b"}
    assert g.stats(NS)["entities"] == {"count": 1}


def test_explicit_links_become_explicit_associations(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "the server ran out of disk", id="cause")
    g.remember(NS, "the nightly backup failed", id="effect", links=[Link("cause", T.CAUSES, 0.7)])
    g.remember_many(
        NS,
        [
            MemoryInput("draft of the plan", id="draft"),
            MemoryInput("final plan", id="final", links=[Link("draft", T.DERIVED_FROM)]),
        ],
    )
    (causes,) = g.neighbors(NS, "effect", [T.CAUSES])
    assert (causes.source, causes.target, causes.weight, causes.explicit) == (
        "effect",
        "cause",
        pytest.approx(0.7),
        True,
    )
    assert edges_of(g, "final", T.DERIVED_FROM) == {("final", "draft", 1.0)}


def test_associate_creates_then_updates_an_explicit_association(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "the sky is green", id="a")
    g.remember(NS, "the sky is blue", id="b")
    first = g.associate(NS, "a", "b", "CONTRADICTS", 0.4)
    assert (first.type, first.weight, first.explicit) == (T.CONTRADICTS, 0.4, True)
    assert g.associate(NS, "a", "b", T.CONTRADICTS, 0.9).weight == pytest.approx(0.9)
    assert edges_of(g, "a", T.CONTRADICTS) == {("a", "b", 0.9)}
    before = snapshot(g)
    for call, field in [
        (lambda: g.associate(NS, "a", "b", "NOT_A_TYPE"), "type"),
        (lambda: g.associate(NS, "a", "b", T.MENTIONS), "type"),
        (lambda: g.associate(NS, "a", "b", T.CAUSES, 1.5), "weight"),
        (lambda: g.associate(NS, "a", "b", T.CAUSES, float("nan")), "weight"),
        (lambda: g.associate(NS, "a", "a", T.CAUSES), "target"),
    ]:
        with pytest.raises(BadInput) as caught:
            call()
        assert caught.value.field == field
        assert field in str(caught.value)
    with pytest.raises(NotFound, match="target"):
        g.associate(NS, "a", "ghost")
    with pytest.raises(NotFound, match="source"):
        g.associate(NS, ENTITY_PREFIX + "sky", "a")
    assert snapshot(g) == before


# -- recall --------------------------------------------------------------------------------


def small_world(g: MemoryGraph) -> None:
    """A dozen memories with sessions, a shared entity and an explicit link."""
    start = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    texts = [
        ("Caroline joined the pottery workshop", "s1"),
        ("bright orange kayak on the roof rack", "s1"),
        ("I met Caroline at the bakery", "s2"),
        ("the bakery sells rye bread on Fridays", "s2"),
        ("Melanie ran a charity race in the rain", "s3"),
        ("the charity raised money for the shelter", "s3"),
        ("we adopted a cat from the shelter", "s3"),
        ("pottery glaze needs a hotter kiln", None),
        ("quarterly tax forms are due", None),
        ("Caroline painted a sunrise over the lake", "s1"),
        ("the lake froze early this winter", None),
        ("kiln repair costs too much", None),
    ]
    g.remember_many(
        NS,
        [
            MemoryInput(
                text,
                id=f"m{i}",
                session_id=session,
                occurred_at=start + timedelta(hours=i),
                importance=0.3 + 0.05 * i,
                links=[Link("m0", T.RELATED_TO, 0.5)] if i == 11 else [],
            )
            for i, (text, session) in enumerate(texts)
        ],
    )


QUERIES = [
    "pottery workshop",
    "Caroline",
    "bread at the bakery",
    "charity shelter cat",
    "frozen lake in winter",
    "kiln",
    "something else entirely",
]


def test_recall_parts_lie_in_zero_one_and_the_score_is_their_weighted_sum(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    small_world(g)
    names = PART_NAMES
    for query in QUERIES:
        results = g.recall(NS, query, k=8, learn=False, context=RecallContext(session_id="s1"))
        assert 0 < len(results) <= 8
        scores = [r.score for r in results]
        assert scores == sorted(scores, reverse=True)
        for r in results:
            assert set(r.parts) == set(names)
            assert all(0.0 <= v <= 1.0 for v in r.parts.values()), r.parts
            parts = {n: np.array([r.parts[n]]) for n in names}
            assert r.score == pytest.approx(float(blend(parts, g.config.weights)[0]))
            assert r.as_dict()["id"] == r.memory.id


def test_recall_paths_name_real_nodes_joined_by_real_associations(make_graph: MakeGraph) -> None:
    g = make_graph(config=GraphConfig(dense_seeds=2, lexical_seeds=2))
    small_world(g)
    walked = 0
    for query in QUERIES:
        for r in g.recall(NS, query, k=12, learn=False, hops=3):
            chain = [step.source for step in r.path] + [r.memory.id]
            for step, (here, there) in zip(r.path, itertools.pairwise(chain), strict=True):
                assert isinstance(step, PathStep)
                assert g.store.seqs_of(NS, [here]), f"{here} is not a node"
                linked = {
                    (a.source, a.target, a.type)
                    for a in g.neighbors(NS, here, [step.type], limit=1_000)
                }
                assert (here, there, step.type) in linked or (there, here, step.type) in linked
                assert 0.0 < step.weight <= 1.0
                walked += 1
    assert walked > 0  # some answers did come through the graph


def test_a_memory_reachable_only_through_the_graph_is_recalled_along_its_associations(
    make_graph: MakeGraph, hash_encoder: HashingEncoder
) -> None:
    # without context passages, which would give "b" a vector of its own that reads "a"
    # (tests/graph/test_passages.py)
    g = make_graph(config=GraphConfig(context_passages=False))
    query = "pottery workshop"
    g.remember(NS, "Caroline joined the pottery workshop", id="a", session_id="s")
    g.remember(NS, "bright orange kayak", id="b", session_id="s")
    g.remember(NS, "I met Caroline at the bakery", id="c")
    g.remember(NS, "quarterly tax forms", id="d")
    for text in ("bright orange kayak", "I met Caroline at the bakery", "quarterly tax forms"):
        assert similarity(hash_encoder, query, text) <= 0.0  # precondition: no shared signal
    results = {r.memory.id: r for r in g.recall(NS, query, learn=False)}
    assert results["a"].path == []  # the seed
    kayak = results["b"]
    assert kayak.parts["similarity"] == 0.0
    assert kayak.parts["activation"] > 0.0
    assert kayak.path == [PathStep("a", T.FOLLOWS, pytest.approx(g.config.follows_weight))]
    # through the shared entity node: memory -> entity -> memory
    bakery = results["c"]
    assert bakery.parts["similarity"] == 0.0
    mention = pytest.approx(g.config.mention_weight)
    assert bakery.path == [
        PathStep("a", T.MENTIONS, mention),
        PathStep(ENTITY_PREFIX + "caroline", T.MENTIONS, mention),
    ]
    assert "d" not in results  # unrelated and unconnected
    assert ids(g.recall(NS, query, learn=False, hops=0)) == ["a"]  # no spreading, no friends


def test_recall_in_an_empty_namespace_returns_nothing(make_graph: MakeGraph) -> None:
    g = make_graph()
    assert g.recall("empty", "anything at all") == []
    assert g.store.generation("empty") == 0


# -- forgetting ----------------------------------------------------------------------------


def test_a_forgotten_memory_never_comes_back(make_graph: MakeGraph) -> None:
    config = GraphConfig(delta_limit=3)  # compaction happens along the way
    g = make_graph(config=config)
    small_world(g)
    target = "m0"  # "Caroline joined the pottery workshop": linked, mentioned, in a session
    assert target in recall_ids(g, "Caroline pottery workshop")
    assert g.neighbors(NS, target)
    assert g.forget(NS, target) is True
    queries = [*QUERIES, "Caroline joined the pottery workshop", "joined", "workshop"]

    def never_recalled(graph: MemoryGraph) -> None:
        for query in queries:
            for hops in (2, 4):
                found = recall_ids(graph, query, k=100, hops=hops, learn=True)
                assert target not in found, (query, hops)
        assert graph.get(NS, target) is None
        assert graph.neighbors(NS, target) == []
        for other in ("m1", "m2", "m11", ENTITY_PREFIX + "caroline"):
            assert all(target not in (a.source, a.target) for a in graph.neighbors(NS, other))

    never_recalled(g)
    assert g.forget(NS, target) is False
    # more writes push the view through compaction
    for i in range(6):
        g.remember(NS, f"Caroline pottery workshop note {i}", session_id="s1")
    never_recalled(g)
    g.checkpoint()
    never_recalled(g)
    g.close()
    g = make_graph(config=config)
    never_recalled(g)
    assert g.stats(NS)["memories"] == 17


def test_an_id_remembered_again_after_forget_is_a_new_memory(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "old walrus fact", id="x", session_id="s")
    g.remember(NS, "later note", id="y", session_id="s")
    g.forget(NS, "x")
    g.remember(NS, "new narwhal fact", id="x")
    assert recall_ids(g, "narwhal") == ["x"]
    assert "x" not in recall_ids(g, "walrus", k=100)
    assert g.neighbors(NS, "x") == []  # the old FOLLOWS edge is not revived
    assert g.stats(NS)["index"]["vectors"] == 2


def test_forgetting_an_unknown_memory_returns_false_and_changes_nothing(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "something", id="a")
    before = snapshot(g)
    assert g.forget(NS, "nope") is False
    assert g.forget(NS, ENTITY_PREFIX + "something") is False
    assert snapshot(g) == before


# -- bad input -----------------------------------------------------------------------------


BAD_MEMORIES = [
    pytest.param({"content": ""}, "content", id="empty content"),
    pytest.param({"content": "  \n\t"}, "content", id="blank content"),
    pytest.param({"content": 42}, "content", id="content not text"),
    pytest.param({"content": "x" * 201}, "content", id="content too long"),
    pytest.param({"kind": "dream"}, "kind", id="unknown kind"),
    pytest.param({"importance": 1.5}, "importance", id="importance above one"),
    pytest.param({"importance": -0.1}, "importance", id="importance below zero"),
    pytest.param({"importance": math.nan}, "importance", id="importance nan"),
    pytest.param({"importance": "high"}, "importance", id="importance not a number"),
    pytest.param({"occurred_at": "last tuesday"}, "occurredAt", id="occurred_at not iso"),
    pytest.param({"occurred_at": "2024-13-45"}, "occurredAt", id="occurred_at impossible"),
    pytest.param({"occurred_at": 12345}, "occurredAt", id="occurred_at a number"),
    pytest.param({"id": "entity:caroline"}, "id", id="reserved id prefix"),
    pytest.param({"id": "  "}, "id", id="blank id"),
    pytest.param({"id": "x" * 300}, "id", id="id too long"),
    pytest.param({"session_id": 7}, "sessionId", id="session not text"),
    pytest.param({"metadata": {"x": math.nan}}, "metadata", id="metadata nan"),
    pytest.param({"metadata": ["a", "list"]}, "metadata", id="metadata not an object"),
    pytest.param({"metadata": {"x": object()}}, "metadata", id="metadata not json"),
    pytest.param({"links": [Link("old", weight=1.5)]}, "links[0].weight", id="link weight"),
    pytest.param({"links": [Link("old", T.MENTIONS)]}, "links[0].type", id="link mentions"),
    pytest.param({"links": [Link("old")] * 65}, "links", id="too many links"),
    pytest.param({"metadata": {"blob": "x" * 20_000}}, "metadata", id="metadata too big"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_MEMORIES)
def test_bad_memory_input_is_rejected_naming_its_field_and_changes_nothing(
    make_graph: MakeGraph, fields: dict[str, Any], field: str
) -> None:
    g = make_graph(config=GraphConfig(max_content_chars=200))
    g.remember(NS, "an old memory", id="old")
    before = snapshot(g)
    item = MemoryInput(**({"content": "fine words"} | fields))
    with pytest.raises(BadInput) as caught:
        g.remember(NS, item)
    assert caught.value.field.endswith(field)
    assert field in str(caught.value)
    assert snapshot(g) == before


def test_one_bad_item_in_a_batch_stores_none_and_names_its_position(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "already here", id="old")
    before = snapshot(g)
    with pytest.raises(BadInput) as caught:
        g.remember_many(
            NS,
            [
                MemoryInput("good one", id="g1", session_id="s"),
                MemoryInput("good two", id="g2", session_id="s"),
                MemoryInput("bad importance", id="g3", importance=2.0),
            ],
        )
    assert caught.value.field == "inputs[2].importance"
    assert "inputs[2].importance" in str(caught.value)
    assert snapshot(g) == before
    assert g.get(NS, "g1") is None and g.get(NS, "g2") is None
    # a link to a missing target fails the whole batch too
    with pytest.raises(NotFound, match=r"links.*ghost"):
        g.remember_many(
            NS,
            [MemoryInput("good", id="g1"), MemoryInput("bad", id="g2", links=[Link("ghost")])],
        )
    assert snapshot(g) == before
    assert recall_ids(g, "good") == []


@pytest.mark.parametrize(
    ("items", "field"),
    [
        pytest.param([], "inputs", id="empty batch"),
        pytest.param([MemoryInput(f"m{i}") for i in range(4)], "inputs", id="batch too big"),
        pytest.param(
            [MemoryInput("one", id="same"), MemoryInput("two", id="same")],
            "inputs[1].id",
            id="duplicate id in the batch",
        ),
        pytest.param([MemoryInput("again", id="old")], "input.id", id="id already stored"),
    ],
)
def test_bad_batches_are_rejected_naming_the_field(
    make_graph: MakeGraph, items: list[MemoryInput], field: str
) -> None:
    g = make_graph(config=GraphConfig(max_batch=3))
    g.remember(NS, "an old memory", id="old")
    before = snapshot(g)
    with pytest.raises(BadInput) as caught:
        g.remember_many(NS, items)
    assert caught.value.field == field
    assert field in str(caught.value)
    assert snapshot(g) == before
    assert g.get(NS, "old").content == "an old memory"  # type: ignore[union-attr]


def test_an_id_that_already_exists_raises_duplicate_id(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    with pytest.raises(DuplicateId):
        g.remember(NS, "again", id="old")


def test_a_link_of_an_unknown_type_is_bad_input(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    with pytest.raises(BadInput) as caught:
        g.remember(NS, MemoryInput("new", links=[Link("old", "NOT_A_TYPE")]))  # type: ignore[arg-type]
    assert "links[0].type" in str(caught.value)


def test_a_link_to_a_missing_memory_is_not_found_and_changes_nothing(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    before = snapshot(g)
    with pytest.raises(NotFound) as caught:
        g.remember(NS, "points nowhere", links=[Link("ghost")])
    assert "links" in str(caught.value) and "ghost" in str(caught.value)
    assert snapshot(g) == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"k": 0}, "k", id="k zero"),
        pytest.param({"k": -3}, "k", id="k negative"),
        pytest.param({"k": 101}, "k", id="k above max_k"),
        pytest.param({"k": 2.5}, "k", id="k not an integer"),
        pytest.param({"hops": -1}, "hops", id="hops negative"),
        pytest.param({"hops": 5}, "hops", id="hops above max_hops"),
        pytest.param({"query": ""}, "query", id="empty query"),
        pytest.param({"query": "   "}, "query", id="blank query"),
        pytest.param({"query": "q" * 20_001}, "query", id="query too long"),
        pytest.param({"namespace": ""}, "namespace", id="empty namespace"),
    ],
)
def test_bad_recall_input_is_rejected_naming_its_field_and_changes_nothing(
    make_graph: MakeGraph, kwargs: dict[str, Any], field: str
) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    g.checkpoint()
    before = snapshot(g)
    call = {"namespace": NS, "query": "old memory"} | kwargs
    with pytest.raises(BadInput) as caught:
        g.recall(call.pop("namespace"), call.pop("query"), **call)
    assert caught.value.field == field
    assert field in str(caught.value)
    g.checkpoint()
    assert snapshot(g) == before


@pytest.mark.parametrize(("kwargs", "field"), [({"k": 0}, "k"), ({"hops": 99}, "hops")])
def test_recall_vector_validates_k_and_hops_like_recall(
    make_graph: MakeGraph, hash_encoder: HashingEncoder, kwargs: dict[str, Any], field: str
) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    vector = hash_encoder.encode(["old memory"])[0]
    with pytest.raises(BadInput) as caught:
        g.recall_vector(NS, "old memory", vector, learn=False, **kwargs)
    assert caught.value.field == field


def test_an_unknown_tier_filter_is_bad_input_naming_tiers(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "an old memory", id="old")
    with pytest.raises(BadInput) as caught:
        g.recall(NS, "old", tiers=["bogus"])  # type: ignore[list-item]
    assert caught.value.field == "tiers"


def test_a_link_to_an_entity_node_is_rejected_like_associate_does(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "Caroline likes pottery", id="a")
    with pytest.raises(NotFound):
        g.associate(NS, "a", ENTITY_PREFIX + "caroline")
    before = snapshot(g)
    with pytest.raises(NotFound):
        g.remember(NS, "points at an entity", links=[Link(ENTITY_PREFIX + "caroline")])
    assert snapshot(g) == before


# -- persistence and recovery --------------------------------------------------------------


def recall_everything(g: MemoryGraph) -> list[list[Recollection]]:
    return [
        g.recall(NS, query, k=12, learn=False, context=RecallContext(session_id="s1", at=AT))
        for query in QUERIES
    ]


def assert_same_recalls(got: list[list[Recollection]], want: list[list[Recollection]]) -> None:
    assert [ids(r) for r in got] == [ids(r) for r in want]
    for got_rows, want_rows in zip(got, want, strict=True):
        for g_row, w_row in zip(got_rows, want_rows, strict=True):
            assert g_row.score == pytest.approx(w_row.score, rel=1e-6), g_row.memory.id
            assert g_row.parts == pytest.approx(w_row.parts, rel=1e-6), g_row.memory.id
            assert g_row.path == w_row.path, g_row.memory.id


def test_recall_is_identical_after_close_and_reopen(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    g.associate(NS, "m4", "m8", T.CAUSES, 0.3)
    before, stats = recall_everything(g), g.stats(NS)
    g.close()
    g = make_graph()
    assert g.stats(NS) == stats
    assert_same_recalls(recall_everything(g), before)


def test_graph_stats_agree_with_the_store_after_forget(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    g.forget(NS, "m0")
    stats = g.stats(NS)
    assert stats["graph"]["edges"] == sum(stats["associations"].values())
    assert stats["graph"]["nodes"] == stats["memories"] + stats["entities"]["count"]


def test_recall_is_identical_after_reopen_following_a_forget(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    g.forget(NS, "m2")  # mentions Caroline, in session s2
    before = recall_everything(g)
    g.close()
    g = make_graph()
    assert_same_recalls(recall_everything(g), before)


def test_writes_after_the_last_checkpoint_survive_a_crash(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "alpha penguin", id="a", session_id="s")
    g.remember(NS, "bravo walrus", id="b", session_id="s")
    g.checkpoint()
    g.remember(NS, "charlie narwhal", id="c", session_id="s")
    g.remember(NS, "delta puffin", id="d", links=[Link("c")])
    g.forget(NS, "a")
    crash(g)

    g = make_graph()
    assert recall_ids(g, "walrus")[0] == "b"
    assert recall_ids(g, "narwhal")[0] == "c"
    assert recall_ids(g, "puffin")[0] == "d"
    for query in ("alpha penguin", "penguin", "walrus narwhal puffin"):
        assert "a" not in recall_ids(g, query, k=100)
    stats = g.stats(NS)
    assert stats["memories"] == 3
    assert stats["index"]["vectors"] == 3
    assert edges_of(g, "c", T.FOLLOWS) == {("b", "c", g.config.follows_weight)}
    # and it keeps working: new writes follow the recovered session
    g.remember(NS, "echo seal", id="e", session_id="s")
    assert edges_of(g, "e", T.FOLLOWS) == {("c", "e", g.config.follows_weight)}


def test_deleted_derived_files_are_rebuilt_from_the_store(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    g = make_graph()
    small_world(g)
    g.forget(NS, "m4")
    g.close()
    g = make_graph()  # from the saved files
    before = recall_everything(g)
    g.close()
    derived = tmp_path / "data" / "derived"
    assert any(derived.iterdir())
    shutil.rmtree(derived)
    g = make_graph()  # from the store alone
    assert "m4" not in recall_ids(g, "Melanie ran a charity race", k=100)
    assert_same_recalls(recall_everything(g), before)
    g.close()
    assert any(derived.iterdir())  # saved again


def test_corrupt_derived_files_are_rebuilt_from_the_store(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    g = make_graph()
    small_world(g)
    g.close()
    for path in (tmp_path / "data" / "derived").iterdir():
        path.write_bytes(b"not what it was")
    g = make_graph()
    assert recall_ids(g, "quarterly tax forms")[0] == "m8"
    assert g.stats(NS)["index"]["vectors"] == 12


def test_memories_written_through_a_second_graph_on_the_same_directory_are_recalled(
    make_graph: MakeGraph,
) -> None:
    first = make_graph()
    first.remember(NS, "first apple memory", id="m1")
    first.checkpoint()
    second = make_graph()
    second.remember(NS, "second banana memory", id="m2")
    second.close()
    first.remember(NS, "third cherry memory", id="m3")
    first.close()
    g = make_graph()
    for word, memory_id in (("apple", "m1"), ("banana", "m2"), ("cherry", "m3")):
        assert recall_ids(g, word)[0] == memory_id


def test_namespaces_never_see_each_other(make_graph: MakeGraph, tmp_path: Path) -> None:
    g = make_graph()
    g.remember("alice", "secret pottery plans", id="same", session_id="s")
    g.remember("bob", "public kayak plans", id="same", session_id="s")
    g.remember("bob", "more kayak plans", id="b2", session_id="s")
    assert g.get("alice", "same").content == "secret pottery plans"  # type: ignore[union-attr]
    assert g.get("alice", "b2") is None
    assert ids(g.recall("alice", "pottery kayak plans", learn=False)) == ["same"]
    bob = g.recall("bob", "pottery kayak plans", learn=False)
    assert {r.memory.content for r in bob} == {"public kayak plans", "more kayak plans"}
    assert g.neighbors("alice", "same") == []  # bob's FOLLOWS stays in bob
    assert g.forget("alice", "b2") is False
    assert g.forget("bob", "same") is True
    assert g.get("alice", "same") is not None
    g.close()
    g = make_graph()
    assert ids(g.recall("alice", "plans", learn=False)) == ["same"]
    assert ids(g.recall("bob", "plans", learn=False)) == ["b2"]


def test_concurrent_writers_in_one_session_build_a_single_follows_chain(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for i in range(12):
                g.remember(NS, f"thread {thread} note {i}", session_id="shared")
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert g.stats(NS)["memories"] == 72
    edges = g.store.load_edges(NS)
    follows = [
        (int(s), int(d))
        for s, d, t in zip(edges.src, edges.dst, edges.type, strict=True)
        if t == T.FOLLOWS.code
    ]
    assert len(follows) == 71
    sources, targets = Counter(s for s, _ in follows), Counter(d for _, d in follows)
    assert max(sources.values()) == max(targets.values()) == 1  # a chain, not a tree
    assert all(s < d for s, d in follows)  # each follows the one stored before it


def test_kind_strings_are_accepted_and_concepts_start_in_the_semantic_tier(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    fact = g.remember(NS, "water boils at 100 C", kind="fact")
    concept = g.remember(NS, "thermodynamics", kind="concept")
    assert (fact.kind.value, fact.tier) == ("fact", Tier.WORKING)
    assert (concept.kind.value, concept.tier) == ("concept", Tier.SEMANTIC)
    assert g.get(NS, concept.id).tier is Tier.SEMANTIC  # type: ignore[union-attr]


# -- learning from recall ---------------------------------------------------------------


def test_recall_with_learn_records_the_access_after_checkpoint(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "violin lesson on thursday", id="v")
    g.remember(NS, "unrelated garden hose", id="u")
    started = time.time()
    assert recall_ids(g, "violin lesson", k=1, learn=True) == ["v"]
    recalled = time.time()
    g.checkpoint()
    v, u = g.get(NS, "v"), g.get(NS, "u")
    assert v is not None and u is not None
    assert v.access_count == 1
    assert v.last_accessed_at is not None
    assert started - 1e-3 <= v.last_accessed_at.timestamp() <= recalled + 1e-3
    assert (u.access_count, u.last_accessed_at) == (0, None)  # not returned: not touched
    g.recall(NS, "violin lesson", k=1, learn=True)
    g.checkpoint()
    assert g.get(NS, "v").access_count == 2  # type: ignore[union-attr]


def test_recall_side_effects_reach_the_store_once_enough_are_pending(
    make_graph: MakeGraph,
) -> None:
    g = make_graph(config=GraphConfig(access_flush_every=2))
    g.remember(NS, "violin lesson", id="a")
    g.remember(NS, "garden hose", id="b")

    def stored_counts() -> list[int]:
        return [m.access_count for m in g.store.get(NS, ["a", "b"])]

    assert recall_ids(g, "violin lesson", k=1, learn=True) == ["a"]
    assert stored_counts() == [0, 0]  # one pending access: kept in memory
    assert recall_ids(g, "garden hose", k=1, learn=True) == ["b"]
    # two pending: the background writer is woken and flushes without a checkpoint
    deadline = time.monotonic() + 10.0
    while stored_counts() != [1, 1] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored_counts() == [1, 1]


def test_every_recall_counts_as_an_access_even_between_checkpoints(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "violin lesson", id="a")
    for _ in range(3):
        assert recall_ids(g, "violin lesson", k=1, learn=True) == ["a"]
    g.checkpoint()
    assert g.get(NS, "a").access_count == 3  # type: ignore[union-attr]


def test_recall_strengthens_the_association_between_memories_recalled_together(
    make_graph: MakeGraph,
) -> None:
    g = make_graph(config=GraphConfig(hebbian_rate=0.5))
    g.remember(NS, "violin lesson", id="a", session_id="s")
    g.remember(NS, "violin recital", id="b", session_id="s")
    start = g.config.follows_weight
    weights = [start]
    for _ in range(12):
        assert set(recall_ids(g, "violin", k=2, learn=True)) == {"a", "b"}
        g.checkpoint()
        (edge,) = g.neighbors(NS, "b", [T.FOLLOWS])
        weights.append(edge.weight)
    assert weights[1] == pytest.approx(start + g.config.hebbian_rate * (1 - start))
    assert all(later > earlier for earlier, later in itertools.pairwise(weights))
    assert max(weights) <= g.config.hebbian_max
    assert weights[-1] > 0.999  # 1 - 0.2 * 0.5 ** 12
    assert edge.activation_count == 12
    assert edge.last_activated_at is not None


def test_recall_promotes_an_episodic_memory_to_working(
    make_graph: MakeGraph, tmp_path: Path, store_kind: str
) -> None:
    g = make_graph()
    g.remember(NS, "saxophone practice", id="sax")
    g.remember(NS, "dentist appointment", id="dentist")
    g.close()
    store = open_store(store_kind, tmp_path / "data")  # what tiering would do
    seqs = store.seqs_of(NS, ["sax", "dentist"])
    store.record_access(NS, [AccessRecord(s, 1.0, Tier.EPISODIC) for s in seqs.values()], [])
    store.close()
    g = make_graph()
    assert g.get(NS, "sax").tier is Tier.EPISODIC  # type: ignore[union-attr]
    assert recall_ids(g, "saxophone", k=1, learn=True) == ["sax"]
    g.checkpoint()
    assert g.get(NS, "sax").tier is Tier.WORKING  # type: ignore[union-attr]
    assert g.get(NS, "dentist").tier is Tier.EPISODIC  # type: ignore[union-attr]


def test_recall_without_learning_changes_nothing(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    g.checkpoint()
    before = snapshot(g)
    weights = {m: edges_of(g, m, T.FOLLOWS) for m in ("m0", "m1", "m9")}
    for query in QUERIES:
        g.recall(NS, query, learn=False)
    g.checkpoint()
    assert snapshot(g) == before
    assert {m: edges_of(g, m, T.FOLLOWS) for m in weights} == weights
    assert all(g.get(NS, f"m{i}").access_count == 0 for i in range(12))  # type: ignore[union-attr]


# -- context and filters ------------------------------------------------------------------


def test_a_session_context_gives_same_session_memories_full_context(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    sessions = {f"m{i}": g.get(NS, f"m{i}").session_id for i in range(12)}  # type: ignore[union-attr]
    results = g.recall(NS, "Caroline", k=12, learn=False, context=RecallContext(session_id="s2"))
    assert results
    for r in results:
        assert r.parts["context"] == (1.0 if sessions[r.memory.id] == "s2" else 0.0)
    # a session no memory belongs to matches nothing
    other = g.recall(NS, "Caroline", k=12, learn=False, context=RecallContext(session_id="zz"))
    assert all(r.parts["context"] == 0.0 for r in other)


def test_entity_and_time_window_context_mark_matching_memories(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    by_entity = g.recall(
        NS, "lake", k=12, learn=False, context=RecallContext(entities=["Caroline"])
    )
    mentions = {"m0", "m2", "m9"}
    assert by_entity
    for r in by_entity:
        assert r.parts["context"] == (1.0 if r.memory.id in mentions else 0.0), r.memory.id
    window = RecallContext(
        since=datetime(2024, 5, 1, 9, 30, tzinfo=UTC), until=datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    )
    in_window = {"m1", "m2"}  # occurred 10:00 and 11:00
    for r in g.recall(NS, "bakery kayak tax", k=12, learn=False, context=window):
        assert r.parts["context"] == (1.0 if r.memory.id in in_window else 0.0), r.memory.id


def test_context_text_moves_the_query_towards_the_memory_it_describes(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "apple pie with cinnamon dessert", id="pie")
    g.remember(NS, "apple laptop computer keyboard", id="laptop")

    def similarities(context: RecallContext | None) -> dict[str, float]:
        found = g.recall(NS, "apple", learn=False, context=context)
        return {r.memory.id: r.parts["similarity"] for r in found}

    plain = similarities(None)
    baking = similarities(RecallContext(text="baking a dessert pie"))
    computing = similarities(RecallContext(text="computer keyboard repair"))
    assert baking["pie"] > plain["pie"]
    assert baking["pie"] - baking["laptop"] > plain["pie"] - plain["laptop"]
    assert computing["laptop"] - computing["pie"] > plain["laptop"] - plain["pie"]


def test_recalling_as_of_a_past_time_gives_later_memories_no_recency(
    make_graph: MakeGraph,
) -> None:
    g = make_graph()
    g.remember(NS, "planted tulip bulbs", id="old", occurred_at="2020-03-01T10:00:00Z")
    g.remember(NS, "tulip bulbs flowered", id="new", occurred_at="2024-04-01T10:00:00Z")
    past = RecallContext(at=datetime(2022, 1, 1, tzinfo=UTC))
    parts = {r.memory.id: r.parts for r in g.recall(NS, "tulip bulbs", learn=False, context=past)}
    assert parts["new"]["recency"] == 0.0
    assert parts["old"]["recency"] > 0.0
    now = {r.memory.id: r.parts for r in g.recall(NS, "tulip bulbs", learn=False)}
    assert now["new"]["recency"] > now["old"]["recency"] > 0.0


def test_archived_memories_are_left_out_unless_their_tier_is_asked_for(
    make_graph: MakeGraph, tmp_path: Path, store_kind: str
) -> None:
    g = make_graph()
    g.remember(NS, "harbour lighthouse visit", id="cold", session_id="s")
    g.remember(NS, "harbour ferry timetable", id="warm", session_id="s")
    g.close()
    store = open_store(store_kind, tmp_path / "data")  # what archiving would do
    cold = store.seqs_of(NS, ["cold"])["cold"]
    store.record_access(NS, [AccessRecord(cold, 1.0, Tier.ARCHIVED)], [])
    store.close()
    g = make_graph()
    assert recall_ids(g, "harbour lighthouse", k=10) == ["warm"]
    assert recall_ids(g, "harbour lighthouse", k=10, tiers=[Tier.ARCHIVED]) == ["cold"]
    assert set(recall_ids(g, "harbour", k=10, tiers=[Tier.WORKING, Tier.ARCHIVED])) == {
        "cold",
        "warm",
    }
    assert recall_ids(g, "harbour", k=10, tiers=[Tier.SEMANTIC]) == []


def test_stats_count_memories_edges_and_the_index(make_graph: MakeGraph) -> None:
    g = make_graph()
    small_world(g)
    g.forget(NS, "m8")
    stats = g.stats(NS)
    assert stats["memories"] == 11
    assert stats["tiers"]["working"] == 11
    assert stats["kinds"]["event"] == 11
    assert stats["index"]["vectors"] == 11
    assert stats["associations"]["RELATED_TO"] == 1
    assert stats["associations"]["FOLLOWS"] == 5  # sessions of 3, 2 and 3 memories
    assert stats["graph"]["nodes"] >= 12


# -- recall quality with the real model ---------------------------------------------------


@pytest.fixture(scope="module")
def sentence_encoder() -> Iterator[Any]:
    from hippograph.embeddings import Encoder

    yield Encoder()


PARAPHRASES = {
    "dog": (
        "I adopted a golden retriever puppy from the animal shelter last weekend.",
        "Did they get a new pet?",
    ),
    "paris": (
        "We spent our honeymoon in Paris and climbed the Eiffel Tower at sunset.",
        "Where did the couple travel after the wedding?",
    ),
    "job": (
        "My manager promoted me to senior software engineer after the quarterly review.",
        "career advancement at work",
    ),
    "bake": (
        "I baked sourdough bread for the first time and the crust came out perfect.",
        "making homemade loaves",
    ),
    "run": ("She finished her first marathon in just under four hours.", "long distance race"),
    "guitar": (
        "He has been taking guitar lessons every Tuesday evening.",
        "learning a musical instrument",
    ),
    "flu": (
        "The kids stayed home from school because they caught the flu.",
        "children were sick",
    ),
    "garden": (
        "Tomatoes and basil are growing well in the backyard vegetable garden.",
        "plants at home",
    ),
}


def test_a_paraphrased_query_recalls_the_right_memory_first_with_the_real_model(
    make_graph: MakeGraph, sentence_encoder: Any
) -> None:
    g = make_graph(encoder=sentence_encoder)
    g.remember_many(NS, [MemoryInput(text, id=key) for key, (text, _) in PARAPHRASES.items()])
    for key, (_, query) in PARAPHRASES.items():
        results = g.recall(NS, query, k=3, learn=False)
        assert ids(results)[0] == key, (query, ids(results))
        assert results[0].parts["similarity"] > results[1].parts["similarity"]


def test_recall_reports_its_stage_timings(make_graph: MakeGraph) -> None:
    g = make_graph()
    g.remember(NS, "violin lesson on tuesday", id="a")
    timings: dict[str, float] = {}
    g.recall(NS, "violin lesson", k=1, timings=timings)
    assert set(timings) == {"embed", "seed", "activate", "score", "fetch", "learn"}
    assert all(seconds >= 0.0 for seconds in timings.values())
    assert sum(timings.values()) > 0.0
