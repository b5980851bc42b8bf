"""Updates and validity: updateMemory keeps the old version reachable, SUPERSEDES ranks
the valid version first and says so, asOf answers as of a past time, a hard window is a
filter, remember is idempotent, and every bad input is refused naming its field with
nothing changed. On both stores (the small hashing encoder: nothing here is about
recall quality)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from hippograph.graph import MemoryGraph, MemoryInput, RecallContext
from hippograph.graph.model import AssociationType, BadInput, DuplicateId, NotFound

MakeGraph = Callable[..., MemoryGraph]
NS = "assistant"
T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _state(graph: MemoryGraph) -> tuple[object, ...]:
    memories = sorted(
        (m.id, m.content, m.importance, m.access_count)
        for chunk in graph.store.iter_memories(NS)
        for m in chunk
    )
    edges = sorted(
        (a.source, a.target, a.type.value)
        for chunk in graph.store.iter_associations(NS)
        for a in chunk
    )
    return tuple(memories), tuple(edges)


def test_update_with_new_content_makes_a_version_that_supersedes_the_old(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    graph.remember(NS, "Dentist appointment on November 12 at 3pm", id="dentist", occurred_at=T0)
    new = graph.update(
        NS,
        "dentist",
        content="Dentist appointment moved to November 19 at 10am",
        occurred_at=T0 + timedelta(days=3),
    )
    assert new.id != "dentist" and new.content.startswith("Dentist appointment moved")
    assert new.session_id is None and new.importance == 0.5
    edges = graph.neighbors(NS, new.id, [AssociationType.SUPERSEDES])
    assert [(e.source, e.target) for e in edges] == [(new.id, "dentist")]
    assert graph.superseded(NS, "dentist") == (T0 + timedelta(days=3), [new.id])
    assert graph.superseded(NS, new.id) == (None, [])
    assert graph.get(NS, "dentist") is not None  # the old version stays reachable

    found = graph.recall(NS, "dentist appointment", k=5, learn=False)
    ids = [r.memory.id for r in found]
    assert ids.index(new.id) < ids.index("dentist")
    old = found[ids.index("dentist")]
    assert old.parts["validity"] == 0.0 and old.superseded_by == [new.id]
    assert old.invalid_at == T0 + timedelta(days=3)
    assert found[ids.index(new.id)].parts["validity"] == 1.0

    # as of a day after the first appointment was made, the old one was the valid one
    # and the new one had not happened
    then = graph.recall(
        NS,
        "dentist appointment",
        k=5,
        learn=False,
        context=RecallContext(as_of=T0 + timedelta(days=1)),
    )
    assert [r.memory.id for r in then] == ["dentist"]
    assert then[0].parts["validity"] == 1.0


def test_update_without_content_changes_fields_in_place(make_graph: MakeGraph) -> None:
    graph = make_graph()
    graph.remember(NS, "Anna's birthday is on May 3", id="bday")
    updated = graph.update(NS, "bday", importance=0.9, metadata={"source": "chat"}, kind="fact")
    assert updated.id == "bday" and updated.importance == 0.9
    assert updated.metadata == {"source": "chat"} and updated.kind.value == "fact"
    assert graph.superseded(NS, "bday") == (None, [])


def test_bad_updates_are_refused_naming_the_field_and_change_nothing(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    graph.remember(NS, "The gym opens at 6am", id="gym")
    newer = graph.update(NS, "gym", content="The gym now opens at 7am")
    before = _state(graph)
    with pytest.raises(NotFound, match=r"^id: memory 'nope'"):
        graph.update(NS, "nope", content="anything")
    with pytest.raises(BadInput) as superseded:
        graph.update(NS, "gym", content="The gym opens at 5am")
    assert superseded.value.field == "id" and newer.id in str(superseded.value)
    with pytest.raises(BadInput) as importance:
        graph.update(NS, newer.id, importance=3.0)
    assert importance.value.field == "input.importance"
    with pytest.raises(NotFound, match=r"input\.supersedes\[0\]"):
        graph.remember(NS, "The pool opens at 8am", supersedes=["missing"])
    with pytest.raises(BadInput) as itself:
        graph.remember(NS, "The pool opens at 9am", id="pool", supersedes=["pool"])
    assert itself.value.field == "input.supersedes[0]"
    with pytest.raises(BadInput) as cycle:
        graph.associate(NS, "gym", newer.id, AssociationType.SUPERSEDES)
    assert cycle.value.field == "target" and "cycle" in str(cycle.value)
    assert _state(graph) == before


def test_supersedes_given_by_the_caller_links_the_versions(make_graph: MakeGraph) -> None:
    graph = make_graph()
    graph.remember(NS, "Tom's phone number is 555-0101", id="phone1", occurred_at=T0)
    graph.remember(
        NS,
        "Tom has a new phone number: 555-0199",
        id="phone2",
        occurred_at=T0 + timedelta(days=9),
        supersedes=["phone1"],
    )
    invalid, by = graph.superseded(NS, "phone1")
    assert by == ["phone2"] and invalid == T0 + timedelta(days=9)
    edge = graph.neighbors(NS, "phone2", [AssociationType.SUPERSEDES])[0]
    assert edge.explicit and edge.weight == 1.0


def test_remember_is_idempotent_on_content(make_graph: MakeGraph) -> None:
    graph = make_graph()
    first = graph.remember(NS, "Milo the cat needs his flea drops on Sundays")
    again = graph.remember(NS, "  Milo the cat needs his flea   drops on Sundays\n")
    assert again.id == first.id
    graph.checkpoint()  # the use is recorded in the background: flush it
    stored = graph.get(NS, first.id)
    assert stored is not None and stored.access_count == 1
    forced = graph.remember(NS, "Milo the cat needs his flea drops on Sundays", force_new=True)
    assert forced.id != first.id
    # a batch that repeats itself stores the content once
    a, b, c = graph.remember_many(
        NS,
        [
            MemoryInput("Water the fern"),
            MemoryInput("Feed the fish"),
            MemoryInput("Water  the fern"),
        ],
    )
    assert a.id == c.id != b.id
    # a caller's id: the same content again is the same memory (a retry) ...
    graph.remember(NS, "Bins go out on Tuesday", id="bins")
    assert graph.remember(NS, "Bins go out on Tuesday", id="bins").id == "bins"
    # ... and other content under a stored id is an error naming the field
    before = _state(graph)
    with pytest.raises(DuplicateId) as clash:
        graph.remember(NS, "Bins go out on Wednesday", id="bins")
    assert clash.value.field == "input.id" and "other content" in str(clash.value)
    assert _state(graph) == before


def test_a_hard_window_is_a_filter(make_graph: MakeGraph) -> None:
    graph = make_graph()
    october = [
        MemoryInput(
            f"Haircut at the salon on Main Street, visit {i}", occurred_at=T0 + timedelta(days=i)
        )
        for i in range(3)
    ]
    november = [
        MemoryInput("Picked up dry cleaning", occurred_at=T0 + timedelta(days=50)),
        MemoryInput("Haircut booked again", occurred_at=T0 + timedelta(days=55)),
    ]
    graph.remember_many(NS, october + november)
    since, until = T0 + timedelta(days=45), T0 + timedelta(days=60)
    soft = graph.recall(
        NS,
        "haircut at the salon",
        k=3,
        learn=False,
        context=RecallContext(since=since, until=until),
    )
    assert any(r.memory.when < since for r in soft)  # the window only adds to the score
    hard = graph.recall(
        NS,
        "haircut at the salon",
        k=3,
        learn=False,
        context=RecallContext(since=since, until=until, hard_window=True),
    )
    assert hard and all(since <= r.memory.when <= until for r in hard)
    assert "Haircut booked again" in [r.memory.content for r in hard]


def test_bad_time_contexts_are_refused_naming_the_field(make_graph: MakeGraph) -> None:
    graph = make_graph()
    graph.remember(NS, "Started the new job", occurred_at=T0)
    with pytest.raises(BadInput) as window:
        graph.recall(NS, "job", context=RecallContext(since=T0, until=T0 - timedelta(days=1)))
    assert window.value.field == "context.since"
    with pytest.raises(BadInput) as early:
        graph.recall(NS, "job", context=RecallContext(as_of=T0 - timedelta(days=30)))
    assert early.value.field == "context.asOf" and "before the namespace existed" in str(
        early.value
    )
    with pytest.raises(BadInput) as open_window:
        graph.recall(NS, "job", context=RecallContext(hard_window=True))
    assert open_window.value.field == "context.hardWindow"
