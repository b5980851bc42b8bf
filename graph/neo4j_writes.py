"""The work of the Neo4j store's write transactions: functions of ``run`` (which runs one
statement in the open transaction and returns its records), so that the driver can
retry a transaction by calling them again; each recomputes everything it sends.

Rows go in batches of :data:`ROWS` per ``UNWIND $rows`` statement; seqs come from the
counter node (:func:`reserve`), in the same transaction as the nodes that take them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    DuplicateId,
    Memory,
    NotFound,
)
from hippograph.graph.neo4j_read_statements import NODE_SEQS
from hippograph.graph.neo4j_records import caption, edge_row, memory_row, time_param
from hippograph.graph.neo4j_statements import (
    BUMP_GENERATION,
    CREATE_MEMORIES,
    DROP_ALIASES,
    EXISTING_ENTITIES,
    EXISTING_MEMORIES,
    MERGE_ALIASES,
    MERGE_EDGES,
    MERGE_ENTITIES,
    REMOVE_EDGES,
    REMOVE_MEMORIES,
    REPLACE_MEMORIES,
    REPOINT_ALIASES,
    RESERVE_SEQS,
    SET_EDGES,
    STORED_VECTORS,
)
from hippograph.graph.store import ChangeBatch, WriteBatch, WriteResult, resolve_ends

__all__ = ["ROWS", "Run", "apply_changes", "change_rows", "chunks", "node_seqs", "write_batch"]

ROWS = 1_000  # rows per UNWIND statement
Run = Callable[..., list[Any]]  # run(statement, **params) -> its records


def chunks(rows: Sequence[Any], size: int = ROWS) -> Iterator[Sequence[Any]]:
    """``rows`` in consecutive slices of ``size``."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def node_seqs(run: Run, namespace: str, ids: Sequence[str]) -> dict[str, int]:
    """The seq of each of ``ids`` that is a memory or an entity of ``namespace``."""
    seqs: dict[str, int] = {}
    for part in chunks(list(ids)):
        for r in run(NODE_SEQS, namespace=namespace, ids=list(part)):
            seqs[r["id"]] = int(r["seq"])
    return seqs


def change_rows(changes: ChangeBatch) -> int:
    """How many rows applying ``changes`` writes (for the transaction timeout)."""
    return (
        len(changes.new_memories)
        + len(changes.memories)
        + len(changes.edges)
        + len(changes.removed_edges)
        + len(changes.removed_memories)
        + len(changes.aliases)
    )


def write_batch(run: Run, namespace: str, batch: WriteBatch) -> WriteResult:
    """Write ``batch`` (new memories, entities, edges) and bump the generation."""
    seqs: dict[str, int] = {}
    new_nodes: list[str] = []
    generation = int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])
    if batch.memories:
        first = _create_memories(run, namespace, batch.memories)
        for offset, memory in enumerate(batch.memories):
            seqs[memory.id] = first + offset
            new_nodes.append(memory.id)
    if batch.entities:
        _write_entities(run, namespace, batch.entities, seqs, new_nodes)
    edges = _write_edges(run, namespace, batch.edges, seqs)
    return WriteResult(seqs=seqs, new_nodes=new_nodes, edges=edges, generation=generation)


def apply_changes(run: Run, namespace: str, changes: ChangeBatch) -> int:
    """Apply a lifecycle job's ``changes``; the new generation."""
    generation = int(run(BUMP_GENERATION, namespace=namespace)[0]["generation"])
    if changes.removed_edges:
        ends = sorted({e for s, d, _ in changes.removed_edges for e in (s, d)})
        seqs = node_seqs(run, namespace, ends)
        rows = [
            {"src": seqs[s], "dst": seqs[d], "type": t.value}
            for s, d, t in changes.removed_edges
            if s in seqs and d in seqs
        ]
        for part in chunks(rows):
            run(REMOVE_EDGES, namespace=namespace, rows=list(part))
    for part in chunks(changes.removed_memories):
        run(REMOVE_MEMORIES, namespace=namespace, ids=list(part))
    alias_rows = [{"id": m, "survivor": s} for m, s in changes.aliases.items()]
    for part in chunks(alias_rows):
        run(REPOINT_ALIASES, namespace=namespace, rows=list(part))
        run(MERGE_ALIASES, namespace=namespace, rows=list(part))
    if changes.new_memories:
        _create_memories(run, namespace, changes.new_memories)
    if changes.memories:
        _replace_memories(run, namespace, changes.memories)
    if changes.edges:
        _set_edges(run, namespace, changes.edges)
    return generation


def _create_memories(run: Run, namespace: str, memories: Sequence[Memory]) -> int:
    """Create ``memories`` (``DuplicateId`` if one exists) on consecutive seqs, dropping
    any alias of their ids; the first seq."""
    ids = [m.id for m in memories]
    for part in chunks(ids):
        taken = run(EXISTING_MEMORIES, namespace=namespace, ids=list(part))
        if taken:
            raise DuplicateId(
                "id",
                f"memory {taken[0]['id']!r} already exists in namespace {namespace!r}",
            )
    first = _reserve(run, len(ids))
    rows = [memory_row(m, first + i) for i, m in enumerate(memories)]
    for part in chunks(rows):
        run(CREATE_MEMORIES, namespace=namespace, rows=list(part))
        run(DROP_ALIASES, namespace=namespace, ids=[r["id"] for r in part])
    return first


def _write_entities(
    run: Run,
    namespace: str,
    entities: dict[str, str],
    seqs: dict[str, int],
    new_nodes: list[str],
) -> None:
    ids = [ENTITY_PREFIX + key for key in entities]
    existing: dict[str, int] = {}
    for part in chunks(ids):
        for r in run(EXISTING_ENTITIES, namespace=namespace, ids=list(part)):
            existing[r["id"]] = int(r["seq"])
    seqs.update(existing)
    missing = [(i, entities[i[len(ENTITY_PREFIX) :]]) for i in ids if i not in existing]
    if not missing:
        return
    first = _reserve(run, len(missing))
    now = datetime.now(UTC)
    rows = [
        {
            "id": i,
            "seq": first + n,
            "content": label,
            "caption": caption(label),
            "created_at": time_param(now),
        }
        for n, (i, label) in enumerate(missing)
    ]
    for part in chunks(rows):
        for r in run(MERGE_ENTITIES, namespace=namespace, rows=list(part)):
            seqs[r["id"]] = int(r["seq"])
    new_nodes += [str(row["id"]) for row in rows if seqs[str(row["id"])] == row["seq"]]


def _write_edges(
    run: Run,
    namespace: str,
    edges: Sequence[Association],
    seqs: dict[str, int],
) -> list[tuple[int, int, int, float]]:
    resolve_ends(namespace, edges, seqs, lambda ids: node_seqs(run, namespace, ids))
    # One edge per (source, target, type): within a batch the strongest wins.
    unique: dict[tuple[int, int, AssociationType], Association] = {}
    for edge in edges:
        key = (seqs[edge.source], seqs[edge.target], edge.type)
        if key[0] == key[1]:
            continue
        held = unique.get(key)
        if held is None or edge.weight > held.weight or edge.explicit:
            unique[key] = edge
    now = datetime.now(UTC)
    by_type: dict[AssociationType, list[dict[str, Any]]] = {}
    for (src, dst, type_), edge in unique.items():
        by_type.setdefault(type_, []).append(edge_row(edge, src, dst, now))
    stored: list[tuple[int, int, int, float]] = []
    for type_, rows in by_type.items():
        for part in chunks(rows):
            for r in run(MERGE_EDGES[type_], namespace=namespace, rows=list(part)):
                stored.append((int(r["src"]), int(r["dst"]), type_.code, float(r["weight"])))
    return stored


def _replace_memories(run: Run, namespace: str, memories: Sequence[Memory]) -> None:
    stored: dict[str, Any] = {}
    for part in chunks([m.id for m in memories]):
        for r in run(STORED_VECTORS, namespace=namespace, ids=list(part)):
            stored[r["id"]] = r
    missing = [m.id for m in memories if m.id not in stored]
    if missing:
        raise NotFound(f"memory {missing[0]!r} does not exist in namespace {namespace!r}")
    rows = [memory_row(m, int(stored[m.id]["seq"])) for m in memories]
    # New vectors, new seq: the derived indexes catch up by seq.
    moved = [
        row
        for row in rows
        if (row["embedding"], row["passages"], row["context_embedding"])
        != (
            stored[row["id"]]["embedding"],
            stored[row["id"]]["passages"],
            stored[row["id"]]["context"],
        )
    ]
    if moved:
        first = _reserve(run, len(moved))
        for offset, row in enumerate(moved):
            row["seq"] = first + offset
    for part in chunks(rows):
        run(REPLACE_MEMORIES, namespace=namespace, rows=list(part))


def _set_edges(run: Run, namespace: str, edges: Sequence[Association]) -> None:
    seqs = resolve_ends(namespace, edges, {}, lambda ids: node_seqs(run, namespace, ids))
    now = datetime.now(UTC)
    by_type: dict[AssociationType, list[dict[str, Any]]] = {}
    for e in edges:
        if seqs[e.source] == seqs[e.target]:
            continue
        by_type.setdefault(e.type, []).append(edge_row(e, seqs[e.source], seqs[e.target], now))
    for type_, rows in by_type.items():
        for part in chunks(rows):
            run(SET_EDGES[type_], namespace=namespace, rows=list(part))


def _reserve(run: Run, count: int) -> int:
    """Reserve ``count`` consecutive seqs; the first of them."""
    last = int(run(RESERVE_SEQS, count=count)[0]["last"])
    return last - count + 1
