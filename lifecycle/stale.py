"""Which planned changes the store has moved past since their snapshot.

A job plans from a :class:`~lifecycle.model.Snapshot` read without holding up the
service, which goes on remembering, recalling and associating meanwhile. Applied as
planned, a change would then overwrite what landed in between: a recall's access (and
archive a memory that was just used), an association an agent set (decay re-weighting
or pruning it from its old weight), an edge a new memory made to a memory the plan
removes (deleted with it). :func:`stale_changes` counts such changes; the runner calls
it through ``MemoryGraph.apply_changes(stale=...)``, where no write can land between
the count and the apply, and plans again when it is not 0.

What is compared, against the store's current state:

* every memory a change names (replaced, removed, merged or surviving a merge, or an
  end of a changed association): all of its fields but the vectors;
* every association a change sets or removes: its weight, or its absence;
* every removed memory: the number and total weight of its associations.

A store whose generation has not moved since the snapshot was read has nothing to
compare. An association set again to the very weight it had is not seen (the state is
the same); neither is a change of ``explicit`` alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from graph.model import ENTITY_PREFIX, Association, AssociationType, Memory
from graph.store import ChangeBatch, GraphStore
from lifecycle.model import Snapshot

__all__ = ["stale_changes"]

_WEIGHT_TOLERANCE = 1e-6  # the store's weights go through float32 columns


def _fields(memory: Memory) -> Memory:
    """A memory without its vectors (what a concurrent write can change)."""
    return replace(memory, embedding=None, passages=None, context_embedding=None)


def _edge_key(edge: Association) -> tuple[str, str, AssociationType]:
    return (edge.source, edge.target, edge.type)


def stale_changes(
    store: GraphStore, namespace: str, generation: int, snapshot: Snapshot, changes: ChangeBatch
) -> int:
    """How many of ``changes`` (planned from ``snapshot``, read when the namespace was
    at ``generation``) touch what the store holds differently now; 0 when none do.
    Call it where no write can land before the changes are applied."""
    if store.generation(namespace) == generation:
        return 0
    planned = {m.id: m for m in snapshot.memories}
    edge_changes: list[tuple[str, str, AssociationType]] = [
        *(_edge_key(e) for e in changes.edges),
        *changes.removed_edges,
    ]
    named = {m.id for m in changes.memories} | set(changes.removed_memories)
    named |= set(changes.aliases) | set(changes.aliases.values())
    named |= {end for s, d, _ in edge_changes for end in (s, d)}
    memory_ids = sorted(i for i in named if not i.startswith(ENTITY_PREFIX))

    stale = 0
    current = {m.id: m for m in store.get(namespace, memory_ids)}
    for memory_id in memory_ids:
        before, now = planned.get(memory_id), current.get(memory_id)
        if before is None:  # new in this plan (a concept): a plan names only what it read
            continue
        if now is None or _fields(before) != _fields(now):
            stale += 1

    if not (edge_changes or changes.removed_memories):
        return stale
    # the associations now, by (source id, target id, type), for the ends named
    ends = {end for s, d, _ in edge_changes for end in (s, d)} | set(changes.removed_memories)
    seqs = store.seqs_of(namespace, sorted(ends))
    by_seq = {seq: node_id for node_id, seq in seqs.items()}
    edges = store.load_edges(namespace)
    wanted = np.fromiter(by_seq, dtype=np.int64, count=len(by_seq))
    near = np.isin(edges.src, wanted) | np.isin(edges.dst, wanted)
    types = list(AssociationType)
    now_weight: dict[tuple[str, str, AssociationType], float] = {}
    incident_now: dict[str, list[float]] = {}
    for src, dst, code, weight in zip(
        edges.src[near].tolist(),
        edges.dst[near].tolist(),
        edges.type[near].tolist(),
        edges.weight[near].tolist(),
        strict=True,
    ):
        source, target = by_seq.get(src), by_seq.get(dst)
        if source is not None and target is not None:
            now_weight[(source, target, types[code])] = weight
        for end in (source, target):
            if end is not None:
                incident_now.setdefault(end, []).append(weight)

    then_weight = {_edge_key(e): e.weight for e in snapshot.associations}
    for key in edge_changes:
        before_w, now_w = then_weight.get(key), now_weight.get(key)
        if (before_w is None) != (now_w is None) or (
            before_w is not None and now_w is not None and abs(before_w - now_w) > _WEIGHT_TOLERANCE
        ):
            stale += 1

    removed = set(changes.removed_memories)
    incident_then: dict[str, list[float]] = {}
    for edge in snapshot.associations:
        for end in {edge.source, edge.target} & removed:
            incident_then.setdefault(end, []).append(edge.weight)
    for memory_id in removed:
        had, has = incident_then.get(memory_id, []), incident_now.get(memory_id, [])
        if len(had) != len(has) or abs(sum(had) - sum(has)) > _WEIGHT_TOLERANCE * (1 + len(has)):
            stale += 1
    return stale
