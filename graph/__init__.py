"""The memory graph: model, stores, spreading activation and recall."""

from hippograph.graph.memory import (
    GraphConfig,
    MemoryGraph,
    MemoryInput,
    PathStep,
    RecallContext,
    Recollection,
)
from hippograph.graph.model import (
    Association,
    AssociationType,
    BadInput,
    DuplicateId,
    HippographError,
    Link,
    Memory,
    MemoryKind,
    NotFound,
    StaleChanges,
    Tier,
)
from hippograph.graph.sqlite_store import SQLiteStore
from hippograph.graph.store import GraphStore

__all__ = [
    "Association",
    "AssociationType",
    "BadInput",
    "DuplicateId",
    "GraphConfig",
    "GraphStore",
    "HippographError",
    "Link",
    "Memory",
    "MemoryGraph",
    "MemoryInput",
    "MemoryKind",
    "NotFound",
    "PathStep",
    "RecallContext",
    "Recollection",
    "SQLiteStore",
    "StaleChanges",
    "Tier",
]
