"""MemoryGraph.apply_changes: lifecycle changes land atomically in the store and the
derived structures follow, in memory and after a restart (crash included)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from hippograph.graph import Association, AssociationType, MemoryGraph, MemoryInput, Tier
from hippograph.graph.store import ChangeBatch

MakeGraph = Callable[..., MemoryGraph]
NS = "agent"


def _three(graph: MemoryGraph) -> None:
    graph.remember_many(
        NS,
        [
            MemoryInput("Alice adopted a grey cat named Pixel.", id="cat", session_id="s"),
            MemoryInput("Pixel sleeps on the piano every afternoon.", id="piano", session_id="s"),
            MemoryInput("Bob repaired the old bicycle in the garage.", id="bike", session_id="s"),
        ],
    )


def _searchable(graph: MemoryGraph, text: str) -> list[str]:
    vector = graph.encoder.encode_one(text)
    return [memory_id for memory_id, _ in graph.nearest(NS, vector, k=10)]


def test_a_stub_leaves_the_index_and_its_restored_vectors_come_back(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    _three(graph)
    full = graph.store.get(NS, ["cat"], embeddings=True)[0]
    stub = replace(full, content="stub", embedding=None, passages=None, context_embedding=None)
    graph.apply_changes(NS, ChangeBatch(memories=[replace(stub, tier=Tier.ARCHIVED)]))
    assert "cat" not in _searchable(graph, full.content)
    assert graph.get(NS, "cat").tier is Tier.ARCHIVED  # type: ignore[union-attr]
    seqs = graph.store.seqs_of(NS, ["cat", "piano", "bike"])
    assert sorted(graph.indexed(NS).tolist()) == sorted([seqs["piano"], seqs["bike"]])
    # the stub keeps its edges to the rest of the graph
    assert {a.target for a in graph.neighbors(NS, "cat")} >= {"piano"}
    graph.apply_changes(NS, ChangeBatch(memories=[replace(full, tier=Tier.WORKING)]))
    assert _searchable(graph, full.content)[0] == "cat"
    found = graph.recall(NS, "grey cat Pixel", k=3, learn=False)
    assert found[0].memory.id == "cat"


def test_merged_ids_answer_with_their_survivor_and_edges_are_repointed(
    make_graph: MakeGraph,
) -> None:
    graph = make_graph()
    _three(graph)
    graph.apply_changes(
        NS,
        ChangeBatch(
            removed_memories=["piano"],
            aliases={"piano": "cat"},
            edges=[Association("cat", "bike", AssociationType.RELATED_TO, 0.7)],
        ),
    )
    survivor = graph.get(NS, "piano")
    assert survivor is not None and survivor.id == "cat"
    assert "piano" not in _searchable(graph, "Pixel sleeps on the piano")
    kinds = {(a.source, a.target, a.type) for a in graph.neighbors(NS, "cat")}
    assert ("cat", "bike", AssociationType.RELATED_TO) in kinds
    assert graph.stats(NS)["memories"] == 2


def test_after_a_crash_the_reopened_graph_matches_the_store(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    graph = make_graph(tmp_path / "d")
    _three(graph)
    graph.checkpoint()  # derived files saved before the change
    full = graph.store.get(NS, ["bike"], embeddings=True)[0]
    graph.apply_changes(NS, ChangeBatch(memories=[replace(full, embedding=None)]))
    graph.store.close()  # killed: the derived files still describe the old state
    reopened = make_graph(tmp_path / "d")
    seqs = reopened.store.seqs_of(NS, ["cat", "piano"])
    assert sorted(reopened.indexed(NS).tolist()) == sorted(seqs.values())
    assert "bike" not in _searchable(reopened, full.content)
    assert np.isfinite(reopened.recall(NS, "cat", k=2, learn=False)[0].score)
