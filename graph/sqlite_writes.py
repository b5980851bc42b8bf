"""The SQLite store's writes: each function runs its statements in the caller's open
transaction (:class:`~hippograph.graph.sqlite_store.SQLiteStore` opens it, journals
it and commits), so a journal replay runs exactly the code the original write ran.

Every write bumps the namespace's generation (:func:`bump`) and returns it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    DuplicateId,
    Memory,
    NotFound,
    to_epoch,
)
from hippograph.graph.sqlite_reads import seqs_of
from hippograph.graph.sqlite_schema import memory_row, namespace_token, select_in
from hippograph.graph.store import (
    AccessRecord,
    ChangeBatch,
    RunRecord,
    WriteBatch,
    WriteResult,
    resolve_ends,
)

__all__ = [
    "apply_changes",
    "bump",
    "fill_stored_vectors",
    "forget",
    "record_access",
    "record_run",
    "write",
]


def bump(db: sqlite3.Connection, namespace: str) -> int:
    token = namespace_token(namespace)
    row = db.execute(
        "INSERT INTO namespaces (namespace, token, generation) VALUES (?, ?, 1) "
        "ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1 "
        "RETURNING generation",
        (namespace, token),
    ).fetchone()
    return int(row[0])


def write(db: sqlite3.Connection, namespace: str, batch: WriteBatch, now: float) -> WriteResult:
    """``write`` in the open transaction, with ``now`` as its clock reading."""
    token = namespace_token(namespace)
    seqs: dict[str, int] = {}
    new_nodes: list[str] = []
    generation = bump(db, namespace)
    for memory in batch.memories:
        seqs[memory.id] = _insert_memory(db, namespace, token, memory)
        new_nodes.append(memory.id)
    if batch.entities:
        entity_ids = [ENTITY_PREFIX + key for key in batch.entities]
        existing = seqs_of(db, namespace, entity_ids)
        for key, label in batch.entities.items():
            entity_id = ENTITY_PREFIX + key
            if entity_id in existing:
                seqs[entity_id] = existing[entity_id]
                continue
            cursor = db.execute(
                "INSERT INTO nodes (namespace, label, id, content, created_at) "
                "VALUES (?, 'entity', ?, ?, ?)",
                (namespace, entity_id, label, now),
            )
            seqs[entity_id] = int(cursor.lastrowid or 0)
            new_nodes.append(entity_id)
    stored = _write_edges(db, namespace, batch.edges, seqs, set(new_nodes), now)
    return WriteResult(seqs=seqs, new_nodes=new_nodes, edges=stored, generation=generation)


def _insert_memory(db: sqlite3.Connection, namespace: str, token: str, memory: Memory) -> int:
    """Insert one memory (and its full text) in the open transaction; its seq. A
    merged id that comes back as a new memory stops being an alias."""
    try:
        cursor = db.execute(
            "INSERT INTO nodes (namespace, label, id, content, kind, tier, "
            "session_id, created_at, occurred_at, last_accessed_at, access_count, "
            "importance, content_hash, metadata, embedding, passages, context) "
            "VALUES (?, 'memory', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            memory_row(namespace, memory),
        )
    except sqlite3.IntegrityError:
        raise DuplicateId(
            "id", f"memory {memory.id!r} already exists in namespace {namespace!r}"
        ) from None
    seq = int(cursor.lastrowid or 0)
    db.execute(
        "INSERT INTO memory_fts (rowid, ns, content) VALUES (?, ?, ?)",
        (seq, token, memory.content),
    )
    db.execute("DELETE FROM aliases WHERE namespace = ? AND id = ?", (namespace, memory.id))
    return seq


def _write_edges(
    db: sqlite3.Connection,
    namespace: str,
    edges: Sequence[Association],
    seqs: dict[str, int],
    new_nodes: set[str],
    now: float,
) -> list[tuple[int, int, int, float]]:
    resolve_ends(namespace, edges, seqs, lambda ids: seqs_of(db, namespace, ids))
    # One edge per (source, target, type): within a batch the strongest wins.
    unique: dict[tuple[int, int, str], Association] = {}
    for edge in edges:
        key = (seqs[edge.source], seqs[edge.target], edge.type.value)
        if key[0] == key[1]:
            continue
        held = unique.get(key)
        if held is None or edge.weight > held.weight or edge.explicit:
            unique[key] = edge
    fresh, upserts = [], []
    for (src, dst, type_), edge in unique.items():
        row = (
            namespace,
            src,
            dst,
            type_,
            float(edge.weight),
            to_epoch(edge.created_at) if edge.created_at else now,
            int(edge.explicit),
        )
        # An edge touching a node this batch created cannot exist yet.
        if edge.source in new_nodes or edge.target in new_nodes:
            last = edge.last_activated_at
            fresh.append((*row, to_epoch(last) if last else None, int(edge.activation_count)))
        else:
            upserts.append(row)
    stored = [(r[1], r[2], AssociationType(r[3]).code, r[4]) for r in fresh]
    db.executemany(
        "INSERT INTO associations (namespace, src, dst, type, weight, created_at, explicit, "
        "last_activated_at, activation_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        fresh,
    )
    for row in upserts:
        src, dst, type_, weight = db.execute(
            "INSERT INTO associations (namespace, src, dst, type, weight, created_at, "
            "explicit) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (src, dst, type) DO UPDATE SET "
            "  weight = CASE WHEN excluded.explicit THEN excluded.weight "
            "                ELSE max(weight, excluded.weight) END, "
            "  explicit = max(explicit, excluded.explicit) "
            "RETURNING src, dst, type, weight",
            row,
        ).fetchone()
        stored.append((int(src), int(dst), AssociationType(type_).code, float(weight)))
    return stored


def forget(db: sqlite3.Connection, namespace: str, memory_id: str) -> tuple[int, int] | None:
    row = db.execute(
        "SELECT seq FROM nodes WHERE namespace = ? AND id = ? AND label = 'memory'",
        (namespace, memory_id),
    ).fetchone()
    if row is None:
        return None
    seq = int(row[0])
    db.execute("DELETE FROM associations WHERE src = ? OR dst = ?", (seq, seq))
    db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
    db.execute("DELETE FROM nodes WHERE seq = ?", (seq,))
    return seq, bump(db, namespace)


def apply_changes(
    db: sqlite3.Connection, namespace: str, changes: ChangeBatch, now: float
) -> tuple[int, set[str]]:
    """``apply_changes`` in the open transaction, with ``now`` as its clock reading;
    the new generation and the ids of the replaced memories whose vectors it kept."""
    token = namespace_token(namespace)
    # A memory that gets a new seq moves its edges in two statements; the
    # foreign keys are checked at commit.
    db.execute("PRAGMA defer_foreign_keys = ON")
    generation = bump(db, namespace)
    if changes.removed_edges:
        ends = {e for s, d, _ in changes.removed_edges for e in (s, d)}
        seqs = seqs_of(db, namespace, sorted(ends))
        db.executemany(
            "DELETE FROM associations WHERE src = ? AND dst = ? AND type = ?",
            [
                (seqs[s], seqs[d], t.value)
                for s, d, t in changes.removed_edges
                if s in seqs and d in seqs
            ],
        )
    for memory_id in changes.removed_memories:
        row = db.execute(
            "SELECT seq FROM nodes WHERE namespace = ? AND id = ? AND label = 'memory'",
            (namespace, memory_id),
        ).fetchone()
        if row is not None:
            seq = int(row[0])
            db.execute("DELETE FROM associations WHERE src = ? OR dst = ?", (seq, seq))
            db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
            db.execute("DELETE FROM nodes WHERE seq = ?", (seq,))
    for merged, survivor in changes.aliases.items():
        db.execute(
            "UPDATE aliases SET survivor = ? WHERE namespace = ? AND survivor = ?",
            (survivor, namespace, merged),
        )
        db.execute(
            "INSERT INTO aliases (namespace, id, survivor) VALUES (?, ?, ?) "
            "ON CONFLICT (namespace, id) DO UPDATE SET survivor = excluded.survivor",
            (namespace, merged, survivor),
        )
    for memory in changes.new_memories:
        _insert_memory(db, namespace, token, memory)
    kept = {
        memory.id
        for memory in changes.memories
        if not _replace_memory(db, namespace, token, memory)
    }
    if changes.edges:
        _set_edges(db, namespace, changes.edges, now)
    return generation, kept


def _replace_memory(db: sqlite3.Connection, namespace: str, token: str, memory: Memory) -> bool:
    """Replace a stored memory's fields; whether its vectors changed (it got a new
    seq then)."""
    row = db.execute(
        "SELECT seq, embedding, passages, context FROM nodes "
        "WHERE namespace = ? AND id = ? AND label = 'memory'",
        (namespace, memory.id),
    ).fetchone()
    if row is None:
        raise NotFound(f"memory {memory.id!r} does not exist in namespace {namespace!r}")
    values = memory_row(namespace, memory)
    seq = int(row[0])
    changed = tuple(row[1:]) != values[-3:]
    if changed:
        # New vectors, new seq: the derived indexes catch up by seq.
        db.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'nodes'")
        fresh = int(
            db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'nodes'").fetchone()[0]
        )
        db.execute("UPDATE nodes SET seq = ? WHERE seq = ?", (fresh, seq))
        db.execute("UPDATE associations SET src = ? WHERE src = ?", (fresh, seq))
        db.execute("UPDATE associations SET dst = ? WHERE dst = ?", (fresh, seq))
        db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
        seq = fresh
    else:
        db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
    db.execute(
        "UPDATE nodes SET content = ?, kind = ?, tier = ?, session_id = ?, created_at = ?, "
        "occurred_at = ?, last_accessed_at = ?, access_count = ?, importance = ?, "
        "content_hash = ?, metadata = ?, embedding = ?, passages = ?, context = ? "
        "WHERE seq = ?",
        (*values[2:], seq),
    )
    db.execute(
        "INSERT INTO memory_fts (rowid, ns, content) VALUES (?, ?, ?)",
        (seq, token, memory.content),
    )
    return changed


def _set_edges(
    db: sqlite3.Connection, namespace: str, edges: Sequence[Association], now: float
) -> None:
    seqs = resolve_ends(namespace, edges, {}, lambda ids: seqs_of(db, namespace, ids))
    db.executemany(
        "INSERT INTO associations (namespace, src, dst, type, weight, created_at, "
        "last_activated_at, activation_count, explicit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (src, dst, type) DO UPDATE SET weight = excluded.weight, "
        "created_at = excluded.created_at, last_activated_at = excluded.last_activated_at, "
        "activation_count = excluded.activation_count, explicit = excluded.explicit",
        [
            (
                namespace,
                seqs[e.source],
                seqs[e.target],
                e.type.value,
                float(e.weight),
                to_epoch(e.created_at) if e.created_at else now,
                to_epoch(e.last_activated_at) if e.last_activated_at else None,
                int(e.activation_count),
                int(e.explicit),
            )
            for e in edges
            if seqs[e.source] != seqs[e.target]
        ],
    )


def record_run(db: sqlite3.Connection, namespace: str, run: RunRecord) -> None:
    db.execute(
        "INSERT INTO lifecycle_runs (namespace, id, job, started_at, finished_at, "
        "dry_run, counts) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (namespace, id) DO NOTHING",
        (
            namespace,
            run.id,
            run.job,
            to_epoch(run.started_at),
            to_epoch(run.finished_at),
            int(run.dry_run),
            json.dumps(run.counts, sort_keys=True),
        ),
    )


def record_access(
    db: sqlite3.Connection,
    namespace: str,
    accesses: Sequence[AccessRecord],
    strengthened: Sequence[tuple[int, int, int, float, float]],
) -> int:
    db.executemany(
        "UPDATE nodes SET last_accessed_at = max(coalesce(last_accessed_at, ?), ?), "
        "access_count = access_count + ?, tier = coalesce(?, tier) "
        "WHERE seq = ? AND namespace = ?",
        [
            (a.at, a.at, a.count, a.tier.value if a.tier else None, a.seq, namespace)
            for a in accesses
        ],
    )
    db.executemany(
        "UPDATE associations SET weight = ?, last_activated_at = ?, "
        "activation_count = activation_count + 1 "
        "WHERE src = ? AND dst = ? AND type = ? AND namespace = ?",
        [
            (w, at, src, dst, AssociationType.from_code(t).value, namespace)
            for src, dst, t, w, at in strengthened
        ],
    )
    return bump(db, namespace)


def fill_stored_vectors(
    db: sqlite3.Connection, namespace: str, memories: Sequence[Memory], ids: set[str]
) -> None:
    """Give the memories an entry recorded as keeping their vectors the vectors
    this copy holds for them (the very ones: the copy is where the original was)."""
    if not ids:
        return
    wanted = [m.id for m in memories if m.id in ids]
    sql = (
        "SELECT id, embedding, passages, context FROM nodes WHERE namespace = ? "
        "AND label = 'memory' AND id IN ({marks})"
    )
    rows: dict[str, tuple[Any, ...]] = {
        r[0]: tuple(r[1:]) for r in select_in(db, sql, namespace, wanted)
    }
    for memory in memories:
        if memory.id in ids and memory.id in rows:
            embedding, passages, context = rows[memory.id]
            if embedding is not None:
                memory.embedding = np.frombuffer(embedding, dtype=np.float32).copy()
                if passages is not None:
                    memory.passages = np.frombuffer(passages, dtype=np.float32).reshape(
                        -1, len(memory.embedding)
                    )
            if context is not None:
                memory.context_embedding = np.frombuffer(context, dtype=np.float32).copy()
