"""What every lifecycle job shares: its settings, its report, and the snapshot of a
namespace it plans from.

A job is two steps: ``plan(snapshot, config, now) -> Plan`` is a pure function (no
store, no clock) that decides what to change and counts it, and the runner applies the
plan's :class:`~graph.store.ChangeBatch` in one atomic store transaction through
:meth:`graph.MemoryGraph.apply_changes`. A re-run plans from the new state and finds
nothing left to do (idempotent); a crash before the commit leaves the old state, which
a re-run plans from again (resumable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hippograph.graph.model import Association, AssociationType, Memory
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
    """A namespace as the jobs see it, read from the store (``Snapshot.read``)."""

    namespace: str
    memories: list[Memory]  # with embeddings, in seq order
    associations: list[Association]
    entities: dict[str, str]  # id -> label

    @classmethod
    def read(cls, store: GraphStore, namespace: str, *, embeddings: bool = True) -> Snapshot:
        memories = [
            m for chunk in store.iter_memories(namespace, embeddings=embeddings) for m in chunk
        ]
        edges = [a for chunk in store.iter_associations(namespace) for a in chunk]
        return cls(namespace, memories, edges, store.entities(namespace))


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
