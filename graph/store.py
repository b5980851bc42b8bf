"""The ``GraphStore`` protocol: what every backend (SQLite, Neo4j) must do, and the
plain records that cross it.

The store is the source of truth. Every node has a store-assigned integer ``seq``,
unique in the store and increasing, which the derived structures (the FAISS index, the
CSR view) use as their key; every write bumps the namespace's ``generation`` so a
derived structure saved at generation *g* knows whether it is current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from hippograph.graph.model import Association, AssociationType, Memory, NotFound, Tier

__all__ = [
    "AccessRecord",
    "ChangeBatch",
    "EdgeColumns",
    "GraphStore",
    "NodeColumns",
    "RunRecord",
    "WriteBatch",
    "WriteResult",
    "resolve_ends",
]


@dataclass(slots=True)
class WriteBatch:
    """Everything one acknowledged write adds, applied atomically.

    ``edges`` name their ends by id: memory ids (existing or in this batch) and entity
    ids (``entity:<key>``, created on demand from ``entities``).
    """

    memories: list[Memory] = field(default_factory=list)
    entities: dict[str, str] = field(default_factory=dict)  # key -> label
    edges: list[Association] = field(default_factory=list)


@dataclass(slots=True)
class ChangeBatch:
    """Lifecycle changes to a namespace, applied atomically by ``apply_changes`` in
    this order: ``removed_edges``, ``removed_memories`` (with their edges),
    ``aliases``, ``new_memories``, ``memories``, ``edges``.

    - ``new_memories``: written like ``WriteBatch.memories`` (new ids, with vectors).
    - ``memories``: existing memories (by id), every stored field replaced by the given
      one. One whose vectors (whole, passages, context) differ from the stored ones
      gets a new seq, so the derived indexes catch up by seq as after any write.
    - ``edges``: set exactly: created, or weight, times, count and ``explicit``
      overwritten; ends are memory or entity ids.
    - ``removed_edges``: (source id, target id, type); absent ones are ignored.
    - ``aliases``: merged memory id -> surviving memory id; ``resolve_aliases`` answers
      them, and aliases that pointed at a removed memory follow it to its survivor.
    """

    new_memories: list[Memory] = field(default_factory=list)
    memories: list[Memory] = field(default_factory=list)
    edges: list[Association] = field(default_factory=list)
    removed_edges: list[tuple[str, str, AssociationType]] = field(default_factory=list)
    removed_memories: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class RunRecord:
    """One lifecycle job run, as recorded in the store and shown by stats."""

    id: str
    job: str
    started_at: datetime
    finished_at: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class WriteResult:
    seqs: dict[str, int]  # node id -> seq, for every node the batch created or touched
    new_nodes: list[str]  # ids of nodes this batch created (memories and entities)
    # edges as stored after the upsert: (source seq, target seq, type code, weight)
    edges: list[tuple[int, int, int, float]]
    generation: int


@dataclass(slots=True)
class AccessRecord:
    """Recalls touched this node ``count`` times, the last at ``at``; maybe promote it."""

    seq: int
    at: float
    tier: Tier | None = None
    count: int = 1


@dataclass(slots=True)
class NodeColumns:
    """Columnar snapshot of a namespace's nodes, ordered by seq (what the view loads)."""

    seq: np.ndarray  # int64
    is_memory: np.ndarray  # bool
    occurred_at: np.ndarray  # float64 epoch seconds (entities: nan)
    last_accessed_at: np.ndarray  # float64, nan when never accessed
    access_count: np.ndarray  # int32
    importance: np.ndarray  # float32
    tier: np.ndarray  # int8, index into list(Tier); -1 for entities
    session: list[str | None]


@dataclass(slots=True)
class EdgeColumns:
    src: np.ndarray  # int64 seq
    dst: np.ndarray  # int64 seq
    type: np.ndarray  # int8 AssociationType.code
    weight: np.ndarray  # float32


@runtime_checkable
class GraphStore(Protocol):
    """A durable property graph of memories, entities and associations."""

    def close(self) -> None: ...

    def ping(self) -> None:
        """Cheaply check that the store can be used now (readiness); raise
        ``StoreUnavailable`` within a bounded time when it cannot."""
        ...

    def namespaces(self) -> list[str]: ...

    def generation(self, namespace: str) -> int: ...

    def write(self, namespace: str, batch: WriteBatch) -> WriteResult:
        """Apply a batch atomically; raise ``DuplicateId`` (and change nothing) when a
        memory id exists already, ``NotFound`` when an edge names a missing node."""
        ...

    def forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        """Delete a memory and every edge touching it; return (its seq, the new
        generation), None if absent."""
        ...

    def get(self, namespace: str, ids: Sequence[str], *, embeddings: bool = False) -> list[Memory]:
        """Memories by id, in the order asked, skipping absent ones."""
        ...

    def get_by_seq(
        self, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
    ) -> dict[int, Memory]: ...

    def by_content_hash(self, namespace: str, hashes: Sequence[str]) -> list[Memory]:
        """Memories (without embeddings) whose ``content_hash`` is one of ``hashes``, in
        seq order: what idempotent remember looks for."""
        ...

    def node_ids(self, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
        """Ids (memory ids and ``entity:<key>``) of nodes by seq."""
        ...

    def recalled(
        self, namespace: str, seqs: Sequence[int], named: Sequence[int]
    ) -> tuple[dict[int, Memory], dict[int, str]]:
        """What a recall answers with, in one read: ``get_by_seq(seqs)`` (no embeddings)
        and ``node_ids(named)`` (the nodes on the answers' paths). One round trip on a
        server store: this is the only store call on the recall path."""
        ...

    def seqs_of(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        """Seqs of existing nodes (memories or entities) by id."""
        ...

    def last_in_session(self, namespace: str, session_id: str) -> tuple[str, int] | None:
        """The most recently stored memory of a session: (id, seq)."""
        ...

    def associations(
        self,
        namespace: str,
        node_id: str,
        types: Sequence[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[Association]:
        """Edges touching a node (either direction), strongest first."""
        ...

    def record_access(
        self,
        namespace: str,
        accesses: Sequence[AccessRecord],
        strengthened: Sequence[tuple[int, int, int, float, float]],
    ) -> int:
        """Apply recall side effects: accesses, and (src, dst, type code, new weight, at)
        edge updates for Hebbian strengthening. Returns the new generation."""
        ...

    def search_text(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        """Full-text (BM25) matches of memories: (seq, score), best first, score > 0."""
        ...

    def load_nodes(self, namespace: str) -> NodeColumns: ...

    def load_edges(self, namespace: str) -> EdgeColumns: ...

    def iter_embeddings(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(seqs int64, vectors float32) of memories with seq > min_seq, in seq order."""
        ...

    def iter_passages(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(passage ids int64, vectors float32) of memories with seq > min_seq, in seq
        order: each memory's sentence passages at ``(seq << PASSAGE_BITS) | position``
        and its context passage at position ``CONTEXT_POSITION`` (graph.model)."""
        ...

    def iter_contents(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        """(seqs int64, texts) of memories, in seq order."""
        ...

    def iter_memories(
        self, namespace: str, *, embeddings: bool = False, chunk: int = 10_000
    ) -> Iterator[list[Memory]]:
        """Every memory of the namespace, in seq order, by chunks (export)."""
        ...

    def entities(self, namespace: str) -> dict[str, str]:
        """Entity nodes of the namespace: id (``entity:<key>``) -> label."""
        ...

    def iter_associations(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[list[Association]]:
        """Every edge of the namespace with all its properties, ends named by id
        (export), by source seq, then target seq, then type name: the same seqs give the
        same file from either store. ``write`` stores a given ``last_activated_at`` and
        ``activation_count`` of a new edge, so an exported edge imports unchanged."""
        ...

    def apply_changes(self, namespace: str, changes: ChangeBatch) -> int:
        """Apply lifecycle changes atomically (see :class:`ChangeBatch`); the new
        generation. ``NotFound`` (and nothing changed) when a memory to replace or an
        edge end does not exist; ``DuplicateId`` when a new memory's id does."""
        ...

    def resolve_aliases(self, namespace: str, ids: Sequence[str]) -> dict[str, str]:
        """Surviving memory id of each merged id among ``ids``."""
        ...

    def record_run(self, namespace: str, run: RunRecord) -> None: ...

    def runs(self, namespace: str, limit: int = 20) -> list[RunRecord]:
        """The namespace's latest lifecycle runs, newest first."""
        ...

    def stats(self, namespace: str) -> dict[str, dict[str, int]]:
        """Counts: ``tiers``, ``kinds``, ``associations`` (per type), ``entities``."""
        ...


def resolve_ends(
    namespace: str,
    edges: Sequence[Association],
    seqs: dict[str, int],
    lookup: Callable[[list[str]], dict[str, int]],
) -> dict[str, int]:
    """``seqs`` completed with the seq of every edge end it lacks, found by ``lookup``
    (the store's id -> seq query, in its open transaction); ``NotFound`` naming the
    first (sorted) end that does not exist. Both stores' writes resolve ends this way."""
    missing = sorted({e for edge in edges for e in (edge.source, edge.target)} - seqs.keys())
    found = lookup(missing) if missing else {}
    absent = [e for e in missing if e not in found]
    if absent:
        raise NotFound(
            f"association endpoint {absent[0]!r} does not exist in namespace {namespace!r}"
        )
    seqs.update(found)
    return seqs
