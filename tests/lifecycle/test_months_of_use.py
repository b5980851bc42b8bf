"""Months of a personal assistant's use with the lifecycle jobs on a schedule: lifecycle
must not make anything vanish, nor archive knowledge by age, and an update that recall
knows supersedes its stale version ranks above it.

The history (``hippograph.api.bench.assistant_history``, 2 months: persona facts, some
updated later, daily chit-chat) is remembered day by day at its simulated time, and the
jobs run every 14 simulated days (``hippograph bench assistant`` runs them at full size
on the server's 6-hour schedule). Nothing is recalled before the questions, as for a user who
only ever talked. The real encoder (the test is about what recall finds).

The share of fact questions answered in the top 3 is printed; it is the bench's goal
(``bench assistant`` reports it beside the same history with no lifecycle and beside
plain dense search, and exits 1 below it), not an assertion here: it measures recall
quality on one synthetic history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np

from hippograph.api.bench.assistant import (
    SimulatedClock,
    answer_questions,
    archived_knowledge,
    ingest_history,
)
from hippograph.api.bench.assistant_history import generate_history
from hippograph.embeddings import Encoder
from hippograph.graph import MemoryGraph, RecallContext, Tier
from hippograph.graph.archived import archive_ref
from hippograph.lifecycle.model import LifecycleConfig

MakeGraph = Callable[..., MemoryGraph]

NAMESPACE = "assistant"
START = datetime(2024, 1, 1, tzinfo=UTC)
MONTHS = 2
EVERY_HOURS = 14 * 24.0
ASKED = 12  # archived memories asked for by their own text


def test_months_of_use_archive_nothing_away_and_rank_updates_first(
    make_graph: MakeGraph, encoder: Encoder
) -> None:
    history = generate_history(START, months=MONTHS, seed=0)
    config = LifecycleConfig()
    clock = SimulatedClock(history.start)
    graph = make_graph(encoder=encoder, clock=clock)
    runs = ingest_history(
        graph, NAMESPACE, history, clock, every_hours=EVERY_HOURS, lifecycle=config
    )
    assert runs["runs"] == 4

    # knowledge is never archived by age: facts and important memories stay hot
    archived = archived_knowledge(graph, NAMESPACE, history, config.important)
    assert archived["fact_or_important"] == 0, archived
    stubs = [
        m.id
        for chunk in graph.store.iter_memories(NAMESPACE)
        for m in chunk
        if archive_ref(m) is not None
    ]
    assert len(stubs) >= ASKED, f"the jobs archived {len(stubs)} memories: too few to test"

    after = answer_questions(graph, NAMESPACE, history)
    print(
        f"top 3: {after['hits']}/{after['questions']} after lifecycle; updates ranked "
        f"first {after['updates_ok']}/{after['updated']}; {len(stubs)} archived"
    )

    # an update recall knows as such (a SUPERSEDES link) ranks above the stale version
    linked = 0
    for question in history.questions:
        if question.stale_id is None:
            continue
        _, newer = graph.superseded(NAMESPACE, question.stale_id)
        if question.expected_id not in newer:
            continue
        linked += 1
        found = graph.recall(
            NAMESPACE, question.text, k=50, context=RecallContext(at=history.end), learn=False
        )
        ids = [r.memory.id for r in found]
        assert question.expected_id in ids, question
        if question.stale_id in ids:
            assert ids.index(question.expected_id) < ids.index(question.stale_id), question
    assert linked, "no update was linked to the fact it replaces"

    # nothing vanished: an archived memory asked for by its own words comes back whole
    by_id = {m.id: m for m in history.memories}
    rng = np.random.default_rng(0)
    for memory_id in rng.choice(sorted(stubs), size=ASKED, replace=False).tolist():
        found = graph.recall(
            NAMESPACE,
            by_id[memory_id].content,
            k=3,
            context=RecallContext(at=history.end),
            learn=False,
        )
        assert memory_id in [r.memory.id for r in found], memory_id
        back = next(r.memory for r in found if r.memory.id == memory_id)
        assert back.content == by_id[memory_id].content and back.tier == Tier.WORKING
