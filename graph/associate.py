"""Association on write: the edges a batch of new memories gets, as pure functions.

Given the batch (memories and their explicit links), their vectors, the nearest stored
memories (ids and similarities, from one batched index search) and the stored head of
each session, :func:`associate_on_write` returns the store write: temporal ``FOLLOWS``
from the previous memory of the same session, semantic ``SIMILAR_TO`` to the nearest
neighbours above the threshold (stored or earlier in the batch), ``MENTIONS`` through
entity nodes, and the caller's explicit links (DESIGN.md, data model). No I/O.
"""

from __future__ import annotations

import numpy as np

from hippograph.graph.config import GraphConfig
from hippograph.graph.entities import extract_entities
from hippograph.graph.model import ENTITY_PREFIX, Association, AssociationType, Link, Memory
from hippograph.graph.store import WriteBatch

__all__ = ["associate_on_write", "similar_neighbours"]


def similar_neighbours(
    config: GraphConfig,
    i: int,
    memories: list[Memory],
    stored: list[tuple[str, float]],
    within: np.ndarray,
) -> list[tuple[float, str]]:
    """The ``similar_k`` most similar memories to ``memories[i]`` above the threshold:
    among the stored ones given (id, similarity) and those earlier in the batch.

    >>> from hippograph.graph.model import Memory
    >>> batch = [Memory(id=n, namespace="ns", content=n) for n in "abc"]
    >>> within = np.array([[1, 0, 0], [0.5, 1, 0], [0.25, 0.75, 1]], np.float32)
    >>> similar_neighbours(GraphConfig(), 2, batch, [("old", 0.6)], within)
    [(0.75, 'b'), (0.6, 'old')]
    """
    neighbours = [(sim, other) for other, sim in stored if sim >= config.similar_threshold]
    neighbours += [
        (float(within[i, j]), memories[j].id)
        for j in range(i)
        if within[i, j] >= config.similar_threshold
    ]
    neighbours.sort(reverse=True)
    return neighbours[: config.similar_k]


def associate_on_write(
    config: GraphConfig,
    prepared: list[tuple[Memory, list[Link]]],
    vectors: np.ndarray,
    stored: list[list[tuple[str, float]]],
    heads: dict[str, str],
) -> WriteBatch:
    """The write of a batch of new memories with its associations.

    ``stored[i]`` holds (id, similarity) of the stored memories nearest to memory ``i``;
    ``heads`` the stored memory each session continues from (its last).
    """
    memories = [memory for memory, _ in prepared]
    batch = WriteBatch(memories=memories)
    within = vectors @ vectors.T  # similar memories earlier in this batch
    last_session = dict(heads)
    for i, (memory, links) in enumerate(prepared):
        # temporal: FOLLOWS from the previous memory of the same session
        if memory.session_id is not None:
            previous = last_session.get(memory.session_id)
            if previous is not None:
                batch.edges.append(
                    Association(previous, memory.id, AssociationType.FOLLOWS, config.follows_weight)
                )
            last_session[memory.session_id] = memory.id
        # semantic: SIMILAR_TO the nearest neighbours above the threshold
        for sim, other in similar_neighbours(config, i, memories, stored[i], within):
            batch.edges.append(
                Association(memory.id, other, AssociationType.SIMILAR_TO, min(sim, 1.0))
            )
        # entities: MENTIONS through entity nodes
        for entity in extract_entities(memory.content, max_entities=config.max_entities):
            batch.entities.setdefault(entity.key, entity.label)
            batch.edges.append(
                Association(
                    memory.id,
                    ENTITY_PREFIX + entity.key,
                    AssociationType.MENTIONS,
                    config.mention_weight,
                )
            )
        # explicit: the caller's links
        for link in links:
            batch.edges.append(
                Association(memory.id, link.target, link.type, link.weight, explicit=True)
            )
    return batch
