"""Fixtures shared by the lifecycle tests: hand-built snapshots, and the application of
a :class:`~graph.store.ChangeBatch` to a snapshot (for plan-level idempotency). The
MemoryGraph factory (``make_graph``, both stores) is in ``tests/conftest.py``.

Defined here rather than in ``tests/conftest.py`` so these tests depend on nothing
outside ``tests/lifecycle``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hippograph.graph import MemoryGraph
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
)
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle.model import DAY, Snapshot

MakeGraph = Callable[..., MemoryGraph]


class SnapshotBuilder:
    """Builds a :class:`Snapshot` by hand; times are given in days before ``now``."""

    def __init__(self, now: float, namespace: str = "ns") -> None:
        self.now = now
        self.namespace = namespace
        self.memories: list[Memory] = []
        self.associations: list[Association] = []
        self.entities: dict[str, str] = {}

    def at(self, days_ago: float | None) -> datetime | None:
        return None if days_ago is None else from_epoch(self.now - days_ago * DAY)

    def memory(
        self,
        id: str,
        content: str | None = None,
        *,
        vector: Sequence[float] | None = (1.0, 0.0),
        kind: MemoryKind = MemoryKind.EVENT,
        tier: Tier = Tier.EPISODIC,
        days_ago: float = 0.0,
        occurred_days_ago: float | None = None,
        accessed_days_ago: float | None = None,
        access_count: int = 0,
        importance: float = 0.5,
        metadata: dict[str, object] | None = None,
    ) -> Memory:
        created = self.at(days_ago)
        assert created is not None
        embedding = None
        if vector is not None:
            v = np.asarray(vector, dtype=np.float32)
            embedding = v / np.linalg.norm(v)
        memory = Memory(
            id=id,
            namespace=self.namespace,
            content=content if content is not None else f"memory {id}",
            kind=kind,
            tier=tier,
            created_at=created,
            occurred_at=self.at(occurred_days_ago),
            last_accessed_at=self.at(accessed_days_ago),
            access_count=access_count,
            importance=importance,
            metadata=dict(metadata or {}),
            embedding=embedding,
        )
        self.memories.append(memory)
        return memory

    def entity(self, key: str, label: str | None = None) -> str:
        self.entities[ENTITY_PREFIX + key] = label or key
        return ENTITY_PREFIX + key

    def edge(
        self,
        source: str,
        target: str,
        type: AssociationType = AssociationType.RELATED_TO,
        weight: float = 1.0,
        *,
        days_ago: float = 0.0,
        activated_days_ago: float | None = None,
        count: int = 0,
        explicit: bool = False,
    ) -> Association:
        created = self.at(days_ago)
        assert created is not None
        edge = Association(
            source,
            target,
            type,
            weight,
            created_at=created,
            last_activated_at=self.at(activated_days_ago),
            activation_count=count,
            explicit=explicit,
        )
        self.associations.append(edge)
        return edge

    def build(self) -> Snapshot:
        return Snapshot(
            self.namespace, list(self.memories), list(self.associations), dict(self.entities)
        )


def apply_to_snapshot(snapshot: Snapshot, changes: ChangeBatch) -> Snapshot:
    """The state a store reaches by applying ``changes``, as a new snapshot: the
    product's :meth:`Snapshot.apply` (``tests/lifecycle/test_dry_run.py`` checks it
    against a re-read of both stores)."""
    return snapshot.apply(changes)


@pytest.fixture
def snapshot_builder() -> Callable[..., SnapshotBuilder]:
    """``snapshot_builder(now)`` -> a fresh :class:`SnapshotBuilder`."""
    return SnapshotBuilder


@pytest.fixture
def apply_plan() -> Callable[[Snapshot, ChangeBatch], Snapshot]:
    """Application of a ChangeBatch to a snapshot (no store)."""
    return apply_to_snapshot
