"""The SQLite store's tables, and how memories and associations map onto their rows.

:data:`SCHEMA` is created idempotently by :func:`create_schema`; a memory is one row of
``nodes`` (:func:`memory_row`, :func:`memory_from_row`), times as float epoch seconds and
vectors as raw float32 blobs. :func:`namespace_token` names a namespace where its name
cannot go: the full-text table's ``ns`` column, and the files of its derived views and
archive in the data directory.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from hippograph.graph.model import (
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
    to_epoch,
)

__all__ = [
    "NODE_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "association_from_row",
    "chunks",
    "create_schema",
    "memory_from_row",
    "memory_row",
    "namespace_token",
    "select_in",
]

# 2: nodes.passages, nodes.context; 3: aliases, lifecycle_runs; 4: journal;
# 5: nodes_by_content_hash (idempotent remember)
SCHEMA_VERSION = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (
    namespace  TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS nodes (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace        TEXT NOT NULL,
    label            TEXT NOT NULL CHECK (label IN ('memory', 'entity')),
    id               TEXT NOT NULL,
    content          TEXT NOT NULL,
    kind             TEXT,
    tier             TEXT,
    session_id       TEXT,
    created_at       REAL NOT NULL,
    occurred_at      REAL,
    last_accessed_at REAL,
    access_count     INTEGER NOT NULL DEFAULT 0,
    importance       REAL,
    content_hash     TEXT,
    metadata         TEXT,
    embedding        BLOB,
    passages         BLOB,
    context          BLOB,
    UNIQUE (namespace, id)
);
CREATE INDEX IF NOT EXISTS nodes_by_namespace ON nodes (namespace, seq);
CREATE INDEX IF NOT EXISTS nodes_by_session ON nodes (namespace, session_id, seq)
    WHERE label = 'memory';
CREATE INDEX IF NOT EXISTS nodes_by_content_hash ON nodes (namespace, content_hash)
    WHERE label = 'memory';
CREATE TABLE IF NOT EXISTS associations (
    namespace         TEXT NOT NULL,
    src               INTEGER NOT NULL REFERENCES nodes (seq) ON DELETE CASCADE,
    dst               INTEGER NOT NULL REFERENCES nodes (seq) ON DELETE CASCADE,
    type              TEXT NOT NULL,
    weight            REAL NOT NULL,
    created_at        REAL NOT NULL,
    last_activated_at REAL,
    activation_count  INTEGER NOT NULL DEFAULT 0,
    explicit          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (src, dst, type)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS associations_by_dst ON associations (dst);
CREATE INDEX IF NOT EXISTS associations_by_namespace ON associations (namespace, type);
CREATE TABLE IF NOT EXISTS aliases (
    namespace TEXT NOT NULL,
    id        TEXT NOT NULL,
    survivor  TEXT NOT NULL,
    PRIMARY KEY (namespace, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aliases_by_survivor ON aliases (namespace, survivor);
CREATE TABLE IF NOT EXISTS lifecycle_runs (
    namespace   TEXT NOT NULL,
    id          TEXT NOT NULL,
    job         TEXT NOT NULL,
    started_at  REAL NOT NULL,
    finished_at REAL NOT NULL,
    dry_run     INTEGER NOT NULL,
    counts      TEXT NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS lifecycle_runs_by_time ON lifecycle_runs (namespace, finished_at);
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5 (
    ns, content, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS journal (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace  TEXT NOT NULL,
    generation INTEGER NOT NULL,
    at         REAL NOT NULL,
    op         TEXT NOT NULL,
    payload    BLOB NOT NULL
);
"""

# The columns memory_from_row reads, in its order.
NODE_COLUMNS = (
    "seq, id, namespace, content, kind, tier, session_id, created_at, occurred_at, "
    "last_accessed_at, access_count, importance, content_hash, metadata"
)
CHUNK = 500  # rows per IN (...) list; SQLite allows 32766 variables, keep statements small


def namespace_token(namespace: str) -> str:
    """A short, file-name-safe token standing for ``namespace`` (stable: a hash).

    >>> namespace_token("default")
    'ned027182b0f311ceda57'
    """
    return "n" + hashlib.blake2b(namespace.encode("utf-8"), digest_size=10).hexdigest()


def chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    """``seq`` in slices of at most ``size`` (one ``IN (...)`` list each)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def select_in(
    db: sqlite3.Connection, sql: str, namespace: str, values: Sequence[Any]
) -> Iterator[Sequence[Any]]:
    """The rows of ``sql`` (parameters: the namespace, then ``IN ({marks})``) for all
    ``values``, one statement per chunk of them."""
    for part in chunks(values):
        marks = ",".join("?" * len(part))
        yield from db.execute(sql.format(marks=marks), (namespace, *part))


def create_schema(db: sqlite3.Connection, *, journal: bool) -> None:
    """Create (or bring up to date) the schema in the open transaction, and record
    whether the store journals (a store opened without it counts a journal break)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(nodes)")}
    for column in ("passages", "context"):  # a version 1 database lacks them
        if column not in columns:
            db.execute(f"ALTER TABLE nodes ADD COLUMN {column} BLOB")
    db.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version' AND value < ?",
        (str(SCHEMA_VERSION), str(SCHEMA_VERSION)),
    )
    db.execute("INSERT INTO memory_fts (memory_fts, rank) VALUES ('rank', 'bm25(0.0, 1.0)')")
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        (str(SCHEMA_VERSION),),
    )
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING",
        (uuid.uuid4().hex,),
    )
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('journal', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ("on" if journal else "off",),
    )
    if not journal:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('journal_breaks', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )


def memory_row(namespace: str, m: Memory) -> tuple[Any, ...]:
    """The ``nodes`` row of a memory: (namespace, id, content, kind, tier, session_id,
    created_at, occurred_at, last_accessed_at, access_count, importance, content_hash,
    metadata, embedding, passages, context); times as epoch seconds, vectors as raw
    float32."""
    embedding = passages = None
    if m.embedding is not None:
        embedding = np.ascontiguousarray(m.embedding, dtype=np.float32).tobytes()
    if m.passages is not None and len(m.passages):
        passages = np.ascontiguousarray(m.passages, dtype=np.float32).tobytes()
    context = None
    if m.context_embedding is not None:
        context = np.ascontiguousarray(m.context_embedding, dtype=np.float32).tobytes()
    return (
        namespace,
        m.id,
        m.content,
        m.kind.value,
        m.tier.value,
        m.session_id,
        to_epoch(m.created_at),
        to_epoch(m.when),
        to_epoch(m.last_accessed_at) if m.last_accessed_at else None,
        m.access_count,
        m.importance,
        m.content_hash,
        json.dumps(m.metadata, ensure_ascii=False, sort_keys=True),
        embedding,
        passages,
        context,
    )


def association_from_row(r: Sequence[Any]) -> Association:
    """(source id, target id, type, weight, created_at, last_activated_at,
    activation_count, explicit) -> Association."""
    return Association(
        source=r[0],
        target=r[1],
        type=AssociationType(r[2]),
        weight=float(r[3]),
        created_at=from_epoch(r[4]),
        last_activated_at=from_epoch(r[5]) if r[5] is not None else None,
        activation_count=int(r[6]),
        explicit=bool(r[7]),
    )


def memory_from_row(row: Sequence[Any], embeddings: bool) -> Memory:
    """A ``SELECT NODE_COLUMNS`` row (with ``embeddings``, followed by embedding,
    passages, context) -> Memory."""
    memory = Memory(
        id=row[1],
        namespace=row[2],
        content=row[3],
        kind=MemoryKind(row[4]),
        tier=Tier(row[5]),
        session_id=row[6],
        created_at=from_epoch(row[7]),
        occurred_at=from_epoch(row[8]),
        last_accessed_at=from_epoch(row[9]) if row[9] is not None else None,
        access_count=int(row[10]),
        importance=float(row[11]),
        content_hash=row[12] or "",
        metadata=json.loads(row[13]) if row[13] and row[13] != "{}" else {},
    )
    if embeddings and row[14] is not None:
        memory.embedding = np.frombuffer(row[14], dtype=np.float32).copy()
        if row[15] is not None:
            memory.passages = np.frombuffer(row[15], dtype=np.float32).reshape(
                -1, len(memory.embedding)
            )
        if row[16] is not None:
            memory.context_embedding = np.frombuffer(row[16], dtype=np.float32).copy()
    return memory
