"""What every lifecycle job shares: its settings, its report, and the snapshot of a
namespace it plans from.

A job is two steps: ``plan(snapshot, config, now) -> Plan`` is a pure function (no
store, no clock) that decides what to change and counts it, and the runner applies the
plan's :class:`~graph.store.ChangeBatch` in one atomic store transaction through
:meth:`graph.MemoryGraph.apply_changes`. A re-run plans from the new state and finds
nothing left to do (idempotent); a crash before the commit leaves the old state, which
a re-run plans from again (resumable). A dry run applies each plan to the snapshot
instead (:meth:`Snapshot.apply`), so the next job plans from the state this one would
leave.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from hippograph.graph.model import (
    Association,
    AssociationType,
    DuplicateId,
    Memory,
    NotFound,
    from_epoch,
    to_epoch,
)
from hippograph.graph.store import ChangeBatch, GraphStore

__all__ = ["JOBS", "LifecycleConfig", "Plan", "Snapshot"]

JOBS = ("decay", "tiering", "dedup", "consolidate", "archive")

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """Thresholds of the lifecycle jobs (``hippograph.api.settings`` fills them from the
    environment, ``HIPPOGRAPH_LIFECYCLE_*``)."""

    # decay: weight * 0.5 ** (idle / half-life), idle since last activation (or creation)
    half_life_days: dict[str, float] = field(
        default_factory=lambda: {
            AssociationType.SIMILAR_TO.value: 30.0,
            AssociationType.FOLLOWS.value: 90.0,
            AssociationType.MENTIONS.value: 90.0,
            AssociationType.PART_OF.value: 180.0,
            AssociationType.DERIVED_FROM.value: 180.0,
            AssociationType.CAUSES.value: 180.0,
            AssociationType.CONTRADICTS.value: 180.0,
            AssociationType.RELATED_TO.value: 60.0,
        }
    )
    explicit_slowdown: float = 4.0  # explicit edges: half-life times this
    edge_floor: float = 0.05  # below it an edge is removed
    # tiering
    working_idle_days: float = 7.0  # working -> episodic after this long without use
    promote_recent_days: float = 1.0  # used within this -> working
    archive_activation: float = -2.0  # ACT-R base level below this is cold ...
    archive_idle_days: float = 30.0  # ... and no use for this long ...
    important: float = 0.8  # ... and importance below this
    # dedup
    duplicate_cosine: float = 0.97
    # consolidate
    min_community: int = 5
    max_keywords: int = 5
    resolution: float = 1.0
    seed: int = 42
    # archive
    min_region: int = 1
    compression: str = "gzip"


@dataclass(slots=True)
class Snapshot:
    """A namespace as the jobs see it, read from the store (``Snapshot.read``) or
    reached by applying changes to another snapshot (``Snapshot.apply``)."""

    namespace: str
    memories: list[Memory]  # with embeddings, in seq order
    associations: list[Association]
    entities: dict[str, str]  # id -> label
    # merged id -> survivor id, as far as this snapshot knows: ``read`` leaves it empty
    # (no job plans from aliases), ``apply`` records those of the changes it applies
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, store: GraphStore, namespace: str, *, embeddings: bool = True) -> Snapshot:
        memories = [
            m for chunk in store.iter_memories(namespace, embeddings=embeddings) for m in chunk
        ]
        edges = [a for chunk in store.iter_associations(namespace) for a in chunk]
        return cls(namespace, memories, edges, store.entities(namespace))

    def apply(self, changes: ChangeBatch, now: float | None = None) -> Snapshot:
        """The snapshot a re-read of the store would give after it applied ``changes``
        (``GraphStore.apply_changes``), computed in memory; this one is not changed.

        The steps and their order are :class:`~graph.store.ChangeBatch`'s:

        1. ``removed_edges`` go (absent ones are ignored);
        2. ``removed_memories`` go with every edge touching them (absent ones and
           entity ids are ignored);
        3. ``aliases`` are recorded, and aliases that pointed at a merged memory follow
           it to its survivor;
        4. ``new_memories`` are appended in order (``DuplicateId`` if an id exists),
           each dropping any alias of its id;
        5. ``memories`` replace the stored ones (``NotFound`` if one does not exist):
           one whose vectors differ from the stored ones gets a new seq, so it moves to
           the end, in the order given; the others keep their place;
        6. ``edges`` are set exactly (created or overwritten); their ends must be
           memories or entities after the steps above (``NotFound`` naming the first
           missing end, sorted, as the stores do); self-loops are skipped; an edge
           without ``created_at`` is created at ``now`` (epoch seconds, the store's
           clock at the commit; None reads the clock).

        Memories and edges come out as the stores give them back: vectors as
        float32, a memory without an embedding without passages and context vector
        (``iter_memories`` reads them only with one), empty passages as None,
        metadata through JSON, times as aware UTC. Edges keep no particular order
        (a re-read orders them by seq, which a snapshot does not know); no job
        depends on it. The snapshot must hold the embeddings (``read(...,
        embeddings=True)``): whether a memory moves depends on them.

        Examples
        --------
        A plan's changes applied to its own snapshot give the state the job leaves,
        from which a second plan finds nothing to do::

            after = snapshot.apply(plan(snapshot, config, now).changes)
            assert plan(after, config, now).empty
        """
        memories = {m.id: m for m in self.memories}  # insertion order: seq order
        edges = {_edge_key(e): e for e in self.associations}
        for key in changes.removed_edges:
            edges.pop(key, None)
        gone = {memory_id for memory_id in changes.removed_memories if memory_id in memories}
        if gone:
            for memory_id in gone:
                del memories[memory_id]
            edges = {k: e for k, e in edges.items() if k[0] not in gone and k[1] not in gone}
        aliases = dict(self.aliases)
        for merged, survivor in changes.aliases.items():
            aliases = {k: survivor if v == merged else v for k, v in aliases.items()}
            aliases[merged] = survivor
        for memory in changes.new_memories:
            if memory.id in memories:
                raise DuplicateId(
                    "id", f"memory {memory.id!r} already exists in namespace {self.namespace!r}"
                )
            memories[memory.id] = _as_stored(memory, self.namespace)
            aliases.pop(memory.id, None)
        for memory in changes.memories:
            held = memories.get(memory.id)
            if held is None:
                raise NotFound(
                    f"memory {memory.id!r} does not exist in namespace {self.namespace!r}"
                )
            stored = _as_stored(memory, self.namespace)
            if _vectors(stored) != _vectors(held):
                del memories[memory.id]  # a new seq: after every other memory
            memories[memory.id] = stored
        if changes.edges:
            ends = {end for e in changes.edges for end in (e.source, e.target)}
            missing = sorted(ends - memories.keys() - self.entities.keys())
            if missing:
                raise NotFound(
                    f"association endpoint {missing[0]!r} does not exist in namespace "
                    f"{self.namespace!r}"
                )
            created = from_epoch(time.time() if now is None else now)
            for edge in changes.edges:
                if edge.source != edge.target:
                    edges[_edge_key(edge)] = _edge_as_stored(edge, created)
        return Snapshot(
            self.namespace,
            list(memories.values()),
            list(edges.values()),
            dict(self.entities),
            aliases,
        )


def _edge_key(edge: Association) -> tuple[str, str, AssociationType]:
    return (edge.source, edge.target, edge.type)


def _utc(value: datetime) -> datetime:
    # What both stores give back: SQLite keeps epoch seconds, exact to the microsecond.
    return from_epoch(to_epoch(value))


def _float32(vector: Any) -> np.ndarray:
    return np.ascontiguousarray(vector, dtype=np.float32).ravel().copy()


def _as_stored(memory: Memory, namespace: str) -> Memory:
    """``memory`` as a store reads it back once written (see ``Snapshot.apply``)."""
    embedding = passages = context = None
    if memory.embedding is not None:
        embedding = _float32(memory.embedding)
        if memory.passages is not None and len(memory.passages):
            passages = _float32(memory.passages).reshape(-1, len(embedding))
        if memory.context_embedding is not None:
            context = _float32(memory.context_embedding)
    metadata = json.loads(json.dumps(memory.metadata, ensure_ascii=False, sort_keys=True))
    return replace(
        memory,
        namespace=namespace,
        created_at=_utc(memory.created_at),
        occurred_at=_utc(memory.when),
        last_accessed_at=None if memory.last_accessed_at is None else _utc(memory.last_accessed_at),
        access_count=int(memory.access_count),
        importance=float(memory.importance),
        metadata=metadata or {},
        embedding=embedding,
        passages=passages,
        context_embedding=context,
    )


def _vectors(memory: Memory) -> tuple[bytes | None, ...]:
    return tuple(
        None if v is None else np.ascontiguousarray(v, dtype=np.float32).tobytes()
        for v in (memory.embedding, memory.passages, memory.context_embedding)
    )


def _edge_as_stored(edge: Association, created: datetime) -> Association:
    activated = edge.last_activated_at
    return replace(
        edge,
        weight=float(edge.weight),
        created_at=_utc(edge.created_at) if edge.created_at else created,
        last_activated_at=None if activated is None else _utc(activated),
        activation_count=int(edge.activation_count),
        explicit=bool(edge.explicit),
    )


@dataclass(slots=True)
class Plan:
    """What a job will change (``changes``) and its report counts (``counts``)."""

    job: str
    changes: ChangeBatch = field(default_factory=ChangeBatch)
    counts: dict[str, int] = field(default_factory=dict)
    # extra work outside the store the runner must do first (archive files), by job
    files: list[Any] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        c = self.changes
        return not (
            c.memories
            or c.edges
            or c.removed_edges
            or c.removed_memories
            or c.aliases
            or c.new_memories
        )
