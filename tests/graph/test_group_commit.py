"""Group commit: remember calls that wait for a namespace's write lock are committed
together, in one transaction, by whoever gets the lock; each call still returns only
once its memories are durable, and one call's error stays its own.

The tests hold the namespace's write lock themselves while the calls queue up, so the
grouping is certain, not a matter of timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from hippograph.graph import AssociationType, DuplicateId, MemoryGraph

MakeGraph = Callable[..., MemoryGraph]
NS = "agent"


@contextmanager
def _queued(graph: MemoryGraph, calls: list[Callable[[], Any]]) -> Iterator[list[Any]]:
    """Start ``calls`` in threads while the write lock is held, wait until all of them
    are queued, then let go; yields their outcomes (result or exception), in order."""
    ns = graph.namespace(NS)
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with ns.write_lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(ns.queue) < len(calls):
            assert time.monotonic() < deadline, "the calls never queued"
            time.sleep(0.005)
    for thread in threads:
        thread.join(30)
    yield outcomes


def _count_writes(graph: MemoryGraph, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = graph.store.write

    def counted(namespace: str, batch: Any) -> Any:
        result = real(namespace, batch)
        sizes.append(len(batch.memories))
        return result

    monkeypatch.setattr(graph.store, "write", counted)
    return sizes


def test_waiting_calls_are_committed_in_one_transaction(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = make_graph()
    graph.remember(NS, "The ferry leaves at nine", id="ferry")
    sizes = _count_writes(graph, monkeypatch)
    calls = [
        (lambda i=i: graph.remember(NS, f"Note {i} about the ferry timetable", session_id=f"s{i}"))
        for i in range(6)
    ]
    with _queued(graph, calls) as outcomes:
        pass
    assert sizes == [6]  # six calls, one store transaction
    for i, memory in enumerate(outcomes):
        stored = graph.get(NS, memory.id)
        assert stored is not None and stored.content == f"Note {i} about the ferry timetable"
    found = {r.memory.id for r in graph.recall(NS, "ferry timetable", k=10)}
    assert {m.id for m in outcomes} <= found  # in the index and the view too


def test_a_duplicate_id_fails_only_its_own_call(
    make_graph: MakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two calls give the same new id (each checked alone before either is stored): the
    group is refused by the store, every call is then committed alone, and only the
    second of the two fails."""
    graph = make_graph()
    graph.remember(NS, "warm-up", id="warm")
    sizes = _count_writes(graph, monkeypatch)
    calls = [
        lambda: graph.remember(NS, "First claim on the id", id="same"),
        lambda: graph.remember(NS, "An unrelated note", id="other"),
        lambda: graph.remember(NS, "Second claim on the id", id="same"),
    ]
    with _queued(graph, calls) as outcomes:
        pass
    assert sizes == [1, 1]  # the group of three refused; then each alone, two stored
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert len(failed) == 1 and failed[0] in (0, 2)
    assert isinstance(outcomes[failed[0]], DuplicateId)
    winner = outcomes[2 - failed[0]]  # the other claim
    stored = graph.get(NS, "same")
    assert stored is not None and stored.content == winner.content
    assert graph.get(NS, "other") is not None


def test_a_session_continued_by_another_call_of_the_group_is_chained_and_re_embedded(
    make_graph: MakeGraph,
) -> None:
    """Both calls read the session's head before either was stored, so both embedded
    their context passage after the same head; in the group the second follows the
    first, and its context passage is embedded again to say so."""
    graph = make_graph()
    graph.remember(NS, "Lena booked the violin lesson", id="head", session_id="s")
    calls = [
        lambda: graph.remember(NS, "The lesson moved to Tuesday", id="one", session_id="s"),
        lambda: graph.remember(NS, "Bring the new sheet music", id="two", session_id="s"),
    ]
    with _queued(graph, calls) as outcomes:
        pass
    assert not any(isinstance(o, Exception) for o in outcomes)
    follows = {
        (a.source, a.target)
        for m in outcomes
        for a in graph.store.associations(NS, m.id, [AssociationType.FOLLOWS])
    }
    by_id = {m.id: m for m in outcomes}
    (first_id,) = [t for s_, t in follows if s_ == "head"]  # whichever was queued first
    first, second = by_id[first_id], by_id[({"one", "two"} - {first_id}).pop()]
    assert follows == {("head", first.id), (first.id, second.id)}
    stored = {m.id: m for m in graph.store.get(NS, [first.id, second.id], embeddings=True)}
    expected = graph.encoder.encode([f"{first.content}\n{second.content}"])[0]
    np.testing.assert_allclose(stored[second.id].context_embedding, expected, atol=1e-6)
    previous = graph.encoder.encode([f"Lena booked the violin lesson\n{first.content}"])[0]
    np.testing.assert_allclose(stored[first.id].context_embedding, previous, atol=1e-6)
