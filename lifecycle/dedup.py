"""Dedup: memories that say the same thing merge into one, keeping every association.

Two memories are duplicates when their normalised contents are equal (the same
:func:`hippograph.graph.model.content_hash`: NFKC, casefolded, whitespace collapsed) *and* their
whole-memory embeddings are near-identical, cosine :math:`\\ge` ``duplicate_cosine``.
Memories are grouped by content hash first (cheap, exact), then within a hash group in
survivor order (``created_at``, then seq) each memory joins the first group whose
*survivor* it matches by cosine, else starts a group of its own. Comparing with the
survivor (not any member) keeps every merged memory near-identical to what it merges
into: no chains of "similar to something similar".

The survivor, the earliest of its group, absorbs the others:

- ``access_count`` summed, ``importance`` the highest, ``last_accessed_at`` the latest
  use of any member, where a merged duplicate's own ``occurred_at`` counts as a use
  (saying a thing again is remembering it): so the survivor is as fresh to tiering as
  its freshest copy, and a second run of tiering does not demote what dedup kept hot;
- ``tier``: ``working`` if any member is working, else the survivor's own, unless that
  is ``archived`` and a member is not (then ``semantic`` if any, else ``episodic``): a
  live duplicate never disappears into an archived one;
- ``metadata``: every member's keys, the earlier member's value winning;
- everything else (content, kind, times, vectors) is the survivor's.

Every association of a merged memory is re-pointed to the survivor (an edge between two
members of a group becomes a self-loop and is dropped). Edges that land on the same
(source, target, type) combine like independent evidence: weights by noisy-or
:math:`1 - \\prod_i (1 - w_i)` (at most 1), activation counts summed, the latest
``last_activated_at``, the earliest ``created_at``, ``explicit`` if any was.

Merged ids leave the store (``ChangeBatch.removed_memories``, their edges with them)
and are recorded as aliases of the survivor, so ``MemoryGraph.get`` of a merged id
answers with the survivor. After the merge no group has two members: a second run
plans nothing. Concept memories and stubs (no embedding) are never merged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

import numpy as np

from hippograph.graph.model import Association, AssociationType, Memory, MemoryKind, Tier
from hippograph.lifecycle.model import LifecycleConfig, Plan, Snapshot

__all__ = ["combine", "duplicate_groups", "plan"]

EdgeKey = tuple[str, str, AssociationType]


def _unit(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0.0 else v


def duplicate_groups(memories: list[Memory], threshold: float) -> list[list[Memory]]:
    """Groups of two or more duplicates among ``memories`` (given in seq order), each
    survivor first, then the merged members in survivor order.

    >>> import numpy as np
    >>> a = Memory("a", "ns", "Hello world", embedding=np.array([1.0, 0.0]))
    >>> b = Memory("b", "ns", "hello   WORLD", embedding=np.array([1.0, 0.01]))
    >>> c = Memory("c", "ns", "hello world", embedding=np.array([0.0, 1.0]))
    >>> [[m.id for m in g] for g in duplicate_groups([a, b, c], 0.97)]
    [['a', 'b']]
    """
    by_hash: dict[str, list[tuple[datetime, int, Memory]]] = defaultdict(list)
    for position, memory in enumerate(memories):
        if memory.embedding is None or memory.kind == MemoryKind.CONCEPT:
            continue
        by_hash[memory.content_hash].append((memory.created_at, position, memory))
    groups: list[list[Memory]] = []
    for entries in by_hash.values():
        if len(entries) < 2:
            continue
        entries.sort(key=lambda e: (e[0], e[1]))
        leaders: list[tuple[np.ndarray, list[Memory]]] = []
        for _, _, memory in entries:
            assert memory.embedding is not None
            vector = _unit(memory.embedding)
            for leader, group in leaders:
                if float(leader @ vector) >= threshold:
                    group.append(memory)
                    break
            else:
                leaders.append((vector, [memory]))
        groups += [group for _, group in leaders if len(group) > 1]
    # survivors in seq order, so the plan reads in the order of the store
    order = {m.id: i for i, m in enumerate(memories)}
    groups.sort(key=lambda g: order[g[0].id])
    return groups


def _merged_tier(group: list[Memory]) -> Tier:
    tiers = {m.tier for m in group}
    if Tier.WORKING in tiers:
        return Tier.WORKING
    survivor = group[0].tier
    if survivor != Tier.ARCHIVED:
        return survivor
    for tier in (Tier.SEMANTIC, Tier.EPISODIC):
        if tier in tiers:
            return tier
    return Tier.ARCHIVED


def _absorb(group: list[Memory]) -> Memory:
    survivor = group[0]
    accessed = [m.last_accessed_at for m in group if m.last_accessed_at is not None]
    accessed += [m.when for m in group[1:]]
    metadata: dict[str, object] = {}
    for member in reversed(group):
        metadata.update(member.metadata)
    return replace(
        survivor,
        access_count=sum(m.access_count for m in group),
        last_accessed_at=max(accessed) if accessed else None,
        importance=max(m.importance for m in group),
        tier=_merged_tier(group),
        metadata=metadata,
    )


def combine(edge: Association, other: Association) -> Association:
    """One edge from two with the same ends and type: noisy-or weight (at most 1),
    summed activation counts, latest activation, earliest creation, either explicit.

    >>> a = Association("x", "y", AssociationType.SIMILAR_TO, 0.5, activation_count=1)
    >>> b = Association("x", "y", AssociationType.SIMILAR_TO, 0.6, activation_count=2)
    >>> c = combine(a, b)
    >>> round(c.weight, 6), c.activation_count
    (0.8, 3)
    """
    activated = [t for t in (edge.last_activated_at, other.last_activated_at) if t is not None]
    return replace(
        edge,
        weight=min(1.0, 1.0 - (1.0 - edge.weight) * (1.0 - other.weight)),
        created_at=min(edge.created_at, other.created_at),
        last_activated_at=max(activated) if activated else None,
        activation_count=edge.activation_count + other.activation_count,
        explicit=edge.explicit or other.explicit,
    )


def plan(snapshot: Snapshot, config: LifecycleConfig, now: float) -> Plan:
    """Merge duplicate memories of ``snapshot`` (``now`` is unused: dedup does not
    depend on time).

    Returns
    -------
    Plan
        ``changes.removed_memories`` and ``changes.aliases`` (merged id -> survivor id),
        ``changes.memories`` (each survivor with what it absorbed), ``changes.edges``
        (every re-pointed edge, combined with the survivor's own where it had one).
        ``counts``: ``groups`` (duplicate groups), ``merged`` (memories merged away).
    """
    groups = duplicate_groups(snapshot.memories, config.duplicate_cosine)
    result = Plan("dedup")
    changes = result.changes
    survivor_of: dict[str, str] = {}
    for group in groups:
        changes.memories.append(_absorb(group))
        for member in group[1:]:
            survivor_of[member.id] = group[0].id
            changes.removed_memories.append(member.id)
    changes.aliases = dict(survivor_of)

    existing: dict[EdgeKey, Association] = {}
    moved: list[Association] = []
    for edge in snapshot.associations:
        if edge.source in survivor_of or edge.target in survivor_of:
            moved.append(edge)
        else:
            existing[(edge.source, edge.target, edge.type)] = edge
    combined: dict[EdgeKey, Association] = {}
    for edge in moved:
        source = survivor_of.get(edge.source, edge.source)
        target = survivor_of.get(edge.target, edge.target)
        if source == target:
            continue
        key = (source, target, edge.type)
        repointed = replace(edge, source=source, target=target)
        base = combined.get(key) or existing.get(key)
        combined[key] = repointed if base is None else combine(base, repointed)
    changes.edges = list(combined.values())
    result.counts = {"groups": len(groups), "merged": len(survivor_of)}
    return result
