"""The SQLite store's reads: each function reads through the connection it is given
(the store's reading connection for the calling thread); the iterators take the store's
``read`` context manager and open it once per chunk, so each chunk sees the latest
committed state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from hippograph.graph.model import (
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
    passage_ids,
)
from hippograph.graph.sqlite_schema import (
    NODE_COLUMNS,
    association_from_row,
    memory_from_row,
    select_in,
)
from hippograph.graph.store import EdgeColumns, NodeColumns, RunRecord
from hippograph.graph.text import query_terms

__all__ = [
    "Reader",
    "associations",
    "entities",
    "generation",
    "get",
    "get_by_seq",
    "iter_associations",
    "iter_column",
    "iter_contents",
    "iter_embeddings",
    "iter_memories",
    "iter_passages",
    "last_in_session",
    "load_edges",
    "load_nodes",
    "namespaces",
    "node_ids",
    "resolve_aliases",
    "runs",
    "search_text",
    "seqs_of",
    "stats",
]

# The store's reading connection for the calling thread, as a context manager.
Reader = Callable[[], AbstractContextManager[sqlite3.Connection]]

_TIERS = list(Tier)
_TIER_CODE = {t.value: i for i, t in enumerate(_TIERS)}
_TYPE_CASE = (
    "CASE type "
    + " ".join(f"WHEN '{t.value}' THEN {t.code}" for t in AssociationType)
    + " ELSE -1 END"
)


def namespaces(
    db: sqlite3.Connection,
) -> list[str]:
    rows = db.execute("SELECT namespace FROM namespaces ORDER BY namespace")
    return [r[0] for r in rows]


def generation(db: sqlite3.Connection, namespace: str) -> int:
    row = db.execute(
        "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
    ).fetchone()
    return int(row[0]) if row else 0


def resolve_aliases(db: sqlite3.Connection, namespace: str, ids: Sequence[str]) -> dict[str, str]:
    sql = "SELECT id, survivor FROM aliases WHERE namespace = ? AND id IN ({marks})"
    return {r[0]: r[1] for r in select_in(db, sql, namespace, list(ids))}


def runs(db: sqlite3.Connection, namespace: str, limit: int = 20) -> list[RunRecord]:
    rows = db.execute(
        "SELECT id, job, started_at, finished_at, dry_run, counts FROM lifecycle_runs "
        "WHERE namespace = ? ORDER BY finished_at DESC, id DESC LIMIT ?",
        (namespace, int(limit)),
    ).fetchall()
    return [
        RunRecord(
            id=r[0],
            job=r[1],
            started_at=from_epoch(r[2]),
            finished_at=from_epoch(r[3]),
            dry_run=bool(r[4]),
            counts=json.loads(r[5]),
        )
        for r in rows
    ]


def seqs_of(db: sqlite3.Connection, namespace: str, ids: Sequence[str]) -> dict[str, int]:
    sql = "SELECT id, seq FROM nodes WHERE namespace = ? AND id IN ({marks})"
    return {r[0]: int(r[1]) for r in select_in(db, sql, namespace, list(ids))}


def node_ids(db: sqlite3.Connection, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
    # ``+namespace``: without it SQLite answers from the (namespace, id) index, reading
    # every row of the namespace (13 ms for 30 seqs at 100k memories, on every remember
    # and recall); by the primary key it is 0.04 ms
    sql = "SELECT seq, id FROM nodes WHERE +namespace = ? AND seq IN ({marks})"
    return {int(r[0]): r[1] for r in select_in(db, sql, namespace, [int(s) for s in seqs])}


def get(
    db: sqlite3.Connection, namespace: str, ids: Sequence[str], *, embeddings: bool = False
) -> list[Memory]:
    columns = NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
    sql = f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
    rows = select_in(db, sql + "AND id IN ({marks})", namespace, list(ids))
    by_id = {row[1]: memory_from_row(row, embeddings) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


def by_content_hash(db: sqlite3.Connection, namespace: str, hashes: Sequence[str]) -> list[Memory]:
    sql = f"SELECT {NODE_COLUMNS} FROM nodes WHERE namespace = ? AND label = 'memory' "
    rows = select_in(db, sql + "AND content_hash IN ({marks})", namespace, list(hashes))
    return sorted((memory_from_row(row, False) for row in rows), key=lambda m: m.id)


def get_by_seq(
    db: sqlite3.Connection, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
) -> dict[int, Memory]:
    columns = NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
    sql = f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
    rows = select_in(db, sql + "AND seq IN ({marks})", namespace, [int(s) for s in seqs])
    return {int(row[0]): memory_from_row(row, embeddings) for row in rows}


def last_in_session(
    db: sqlite3.Connection, namespace: str, session_id: str
) -> tuple[str, int] | None:
    row = db.execute(
        "SELECT id, seq FROM nodes WHERE namespace = ? AND session_id = ? "
        "AND label = 'memory' ORDER BY seq DESC LIMIT 1",
        (namespace, session_id),
    ).fetchone()
    return (row[0], int(row[1])) if row else None


def associations(
    db: sqlite3.Connection,
    namespace: str,
    node_id: str,
    types: Sequence[AssociationType] | None = None,
    limit: int = 100,
) -> list[Association]:
    seq = seqs_of(db, namespace, [node_id]).get(node_id)
    if seq is None:
        return []
    type_filter, params = "", []
    if types:
        type_filter = f"AND a.type IN ({','.join('?' * len(types))})"
        params = [t.value for t in types]
    rows = db.execute(
        "SELECT s.id, d.id, a.type, a.weight, a.created_at, a.last_activated_at, "
        "a.activation_count, a.explicit FROM associations a "
        "JOIN nodes s ON s.seq = a.src JOIN nodes d ON d.seq = a.dst "
        f"WHERE (a.src = ? OR a.dst = ?) {type_filter} "
        "ORDER BY a.weight DESC, a.type, s.id, d.id LIMIT ?",
        (seq, seq, *params, limit),
    ).fetchall()
    return [association_from_row(r) for r in rows]


def search_text(
    db: sqlite3.Connection, token: str, query: str, limit: int
) -> list[tuple[int, float]]:
    """(seq, BM25 score) of the memories of the namespace whose ``namespace_token``
    is ``token`` matching any term of ``query``, best first."""
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    alternatives = " OR ".join(f'"{t}"' for t in terms)
    # The namespace is a column filter, not a MATCH term: as a term its posting list
    # is the whole namespace and every query would walk it.
    rows = db.execute(
        "SELECT rowid, -rank FROM memory_fts WHERE memory_fts MATCH ? AND ns = ? "
        "ORDER BY rank LIMIT ?",
        (f"content : ({alternatives})", token, limit),
    ).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows if r[1] > 0]


def load_nodes(db: sqlite3.Connection, namespace: str) -> NodeColumns:
    rows = db.execute(
        "SELECT seq, label = 'memory', coalesce(occurred_at, 'nan'), "
        "coalesce(last_accessed_at, 'nan'), access_count, coalesce(importance, 0), "
        "coalesce(tier, ''), session_id FROM nodes WHERE namespace = ? ORDER BY seq",
        (namespace,),
    ).fetchall()
    n = len(rows)
    if n == 0:
        return NodeColumns(
            seq=np.zeros(0, np.int64),
            is_memory=np.zeros(0, bool),
            occurred_at=np.zeros(0, np.float64),
            last_accessed_at=np.zeros(0, np.float64),
            access_count=np.zeros(0, np.int32),
            importance=np.zeros(0, np.float32),
            tier=np.zeros(0, np.int8),
            session=[],
        )
    columns = list(zip(*rows, strict=True))
    return NodeColumns(
        seq=np.array(columns[0], dtype=np.int64),
        is_memory=np.array(columns[1], dtype=bool),
        occurred_at=np.array(columns[2], dtype=np.float64),
        last_accessed_at=np.array(columns[3], dtype=np.float64),
        access_count=np.array(columns[4], dtype=np.int32),
        importance=np.array(columns[5], dtype=np.float32),
        tier=np.array([_TIER_CODE.get(t, -1) for t in columns[6]], dtype=np.int8),
        session=list(columns[7]),
    )


def load_edges(db: sqlite3.Connection, namespace: str) -> EdgeColumns:
    parts: list[np.ndarray] = []
    cursor = db.execute(
        f"SELECT src, dst, {_TYPE_CASE}, weight FROM associations WHERE namespace = ?",
        (namespace,),
    )
    while rows := cursor.fetchmany(500_000):
        parts.append(np.array(rows, dtype=np.float64))
    table = np.concatenate(parts) if parts else np.zeros((0, 4))
    return EdgeColumns(
        src=table[:, 0].astype(np.int64),
        dst=table[:, 1].astype(np.int64),
        type=table[:, 2].astype(np.int8),
        weight=table[:, 3].astype(np.float32),
    )


def iter_column(
    read: Reader, namespace: str, column: str, *, min_seq: int, chunk: int
) -> Iterator[list[tuple[int, Any]]]:
    """(seq, column) rows of memories with seq > min_seq, in seq order, by chunks;
    ``column`` is one of this module's literal column names, never caller input."""
    last = min_seq
    while True:
        with read() as db:
            rows = db.execute(
                f"SELECT seq, {column} FROM nodes WHERE namespace = ? AND label = 'memory' "
                f"AND seq > ? AND {column} IS NOT NULL ORDER BY seq LIMIT ?",
                (namespace, last, chunk),
            ).fetchall()
        if not rows:
            return
        yield rows
        last = int(rows[-1][0])


def iter_embeddings(
    read: Reader, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for rows in iter_column(read, namespace, "embedding", min_seq=min_seq, chunk=chunk):
        seqs = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        yield seqs, vectors.reshape(len(rows), -1).copy()


def iter_passages(
    read: Reader, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    last = min_seq
    while True:
        with read() as db:
            rows = db.execute(
                "SELECT seq, passages, context, length(embedding) FROM nodes "
                "WHERE namespace = ? AND label = 'memory' AND seq > ? "
                "AND (passages IS NOT NULL OR context IS NOT NULL) ORDER BY seq LIMIT ?",
                (namespace, last, chunk),
            ).fetchall()
        if not rows:
            return
        ids: list[int] = []
        blobs: list[bytes] = []
        for seq, passages, context, size in rows:
            sentences = len(passages) // int(size) if passages is not None else 0
            ids.extend(passage_ids(int(seq), sentences, context is not None))
            blobs.extend(b for b in (passages, context) if b is not None)
        vectors = np.frombuffer(b"".join(blobs), dtype=np.float32)
        yield np.array(ids, np.int64), vectors.reshape(len(ids), -1).copy()
        last = int(rows[-1][0])


def iter_contents(
    read: Reader, namespace: str, *, chunk: int = 50_000
) -> Iterator[tuple[np.ndarray, list[str]]]:
    for rows in iter_column(read, namespace, "content", min_seq=0, chunk=chunk):
        yield np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]


def iter_memories(
    read: Reader, namespace: str, *, embeddings: bool = False, chunk: int = 10_000
) -> Iterator[list[Memory]]:
    columns = NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
    last = -1
    while True:
        with read() as db:
            rows = db.execute(
                f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
                "AND seq > ? ORDER BY seq LIMIT ?",
                (namespace, last, chunk),
            ).fetchall()
        if not rows:
            return
        yield [memory_from_row(row, embeddings) for row in rows]
        last = int(rows[-1][0])


def entities(db: sqlite3.Connection, namespace: str) -> dict[str, str]:
    rows = db.execute(
        "SELECT id, content FROM nodes WHERE namespace = ? AND label = 'entity' ORDER BY seq",
        (namespace,),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def iter_associations(
    read: Reader, namespace: str, *, chunk: int = 50_000
) -> Iterator[list[Association]]:
    # By ranges of source nodes: the primary key (src, dst, type) serves each range.
    last = -1
    while True:
        with read() as db:
            sources = db.execute(
                "SELECT seq FROM nodes WHERE namespace = ? AND seq > ? ORDER BY seq LIMIT ?",
                (namespace, last, chunk),
            ).fetchall()
            if not sources:
                return
            first, last = int(sources[0][0]), int(sources[-1][0])
            rows = db.execute(
                "SELECT s.id, d.id, a.type, a.weight, a.created_at, a.last_activated_at, "
                "a.activation_count, a.explicit FROM associations a "
                "JOIN nodes s ON s.seq = a.src JOIN nodes d ON d.seq = a.dst "
                "WHERE a.src BETWEEN ? AND ? AND a.namespace = ? "
                "ORDER BY a.src, a.dst, a.type",
                (first, last, namespace),
            ).fetchall()
        if rows:
            yield [association_from_row(r) for r in rows]


def stats(db: sqlite3.Connection, namespace: str) -> dict[str, dict[str, int]]:
    tiers = dict(
        db.execute(
            "SELECT tier, count(*) FROM nodes WHERE namespace = ? AND label = 'memory' "
            "GROUP BY tier",
            (namespace,),
        ).fetchall()
    )
    kinds = dict(
        db.execute(
            "SELECT kind, count(*) FROM nodes WHERE namespace = ? AND label = 'memory' "
            "GROUP BY kind",
            (namespace,),
        ).fetchall()
    )
    types = dict(
        db.execute(
            "SELECT type, count(*) FROM associations WHERE namespace = ? GROUP BY type",
            (namespace,),
        ).fetchall()
    )
    entities = db.execute(
        "SELECT count(*) FROM nodes WHERE namespace = ? AND label = 'entity'",
        (namespace,),
    ).fetchone()[0]
    return {
        "tiers": {t.value: int(tiers.get(t.value, 0)) for t in Tier},
        "kinds": {k.value: int(kinds.get(k.value, 0)) for k in MemoryKind},
        "associations": {t.value: int(types.get(t.value, 0)) for t in AssociationType},
        "entities": {"count": int(entities)},
    }
