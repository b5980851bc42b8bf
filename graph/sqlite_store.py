"""The embedded store: one SQLite file in the data directory (WAL), no server.

All SQL lives here. Memories and entities are rows of one ``nodes`` table (a label
column tells them apart) so that associations can point at either by ``seq``, the
integer key the derived structures use. Full text is an FTS5 table keyed by the same
seq, carrying a per-namespace token so one MATCH both filters and ranks.

Every public method takes the connection lock, and every write runs in one explicit
``BEGIN IMMEDIATE`` transaction that also bumps the namespace's generation.

The journal: every committing write transaction (``write``, ``forget``,
``record_access``, ``apply_changes``, ``record_run``) also appends one row to the
``journal`` table, in the same transaction: its namespace, the generation it produced,
the wall time just before the commit, the operation, and a payload holding everything
the transaction was given (zlib-compressed JSON in the export's record shapes, the
clock reading it used, and the raw float32 vectors), so :meth:`SQLiteStore.replay`
applied to a copy of the database taken before it reproduces it exactly: same rows,
same seqs, same generations. Row ids are assigned in commit order without gaps, so an
incremental backup is "the rows after the last id I saved", and a point-in-time
restore is "the rows up to the last one at or before the time". The functions at the
end of the module (:func:`snapshot`, :func:`read_journal`, :func:`prune_journal`; and
:func:`read_state`, :func:`archive_stubs`, :func:`integrity_problems` for copies nobody
writes) work on a database file through their own connection, so a backup runs beside
a live server without opening a second store on it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    DuplicateId,
    Memory,
    MemoryKind,
    NotFound,
    Tier,
    from_epoch,
    passage_ids,
    to_epoch,
)
from hippograph.graph.store import (
    AccessRecord,
    ChangeBatch,
    EdgeColumns,
    NodeColumns,
    RunRecord,
    WriteBatch,
    WriteResult,
)
from hippograph.graph.text import query_terms
from hippograph.graph.transfer import _association_record, _read_time, _time

__all__ = [
    "JournalEntry",
    "JournalMismatch",
    "SQLiteStore",
    "StoreState",
    "archive_stubs",
    "integrity_problems",
    "prune_journal",
    "read_journal",
    "read_state",
    "snapshot",
]

# 2: nodes.passages, nodes.context; 3: aliases, lifecycle_runs; 4: journal
SCHEMA_VERSION = 4

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

_NODE_COLUMNS = (
    "seq, id, namespace, content, kind, tier, session_id, created_at, occurred_at, "
    "last_accessed_at, access_count, importance, content_hash, metadata"
)
_TIERS = list(Tier)
_TIER_CODE = {t.value: i for i, t in enumerate(_TIERS)}
_TYPE_CASE = (
    "CASE type "
    + " ".join(f"WHEN '{t.value}' THEN {t.code}" for t in AssociationType)
    + " ELSE -1 END"
)
_CHUNK = 500  # rows per IN (...) list; SQLite allows 32766 variables, keep statements small


def _namespace_token(namespace: str) -> str:
    return "n" + hashlib.blake2b(namespace.encode("utf-8"), digest_size=10).hexdigest()


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


class SQLiteStore:
    """``GraphStore`` over one SQLite database file.

    Parameters
    ----------
    path:
        The database file; created with its schema when missing.
    synchronous:
        SQLite ``synchronous`` pragma. ``FULL`` (default) makes every acknowledged write
        survive power loss as well as a killed process; ``NORMAL`` survives a killed
        process only.
    journal:
        Append every write transaction to the ``journal`` table (default), which
        incremental backups and point-in-time restores read. Opening with ``False``
        records a break in the journal (``meta.journal_breaks``), so an incremental
        backup refuses to pretend it saw the writes made meanwhile.
    """

    def __init__(
        self, path: Path | str, *, synchronous: str = "FULL", journal: bool = True
    ) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous}")
        self.path = Path(path)
        self.journal = journal
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One writer connection behind a lock; each reading thread has its own connection,
        # so in WAL mode reads go on while a write commits (fsyncs).
        self._lock = threading.RLock()
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        with self._tx():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(nodes)")}
            for column in ("passages", "context"):  # a version 1 database lacks them
                if column not in columns:
                    self._db.execute(f"ALTER TABLE nodes ADD COLUMN {column} BLOB")
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version' AND value < ?",
                (str(SCHEMA_VERSION), str(SCHEMA_VERSION)),
            )
            self._db.execute(
                "INSERT INTO memory_fts (memory_fts, rank) VALUES ('rank', 'bm25(0.0, 1.0)')"
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('store_id', ?) ON CONFLICT (key) DO NOTHING",
                (uuid.uuid4().hex,),
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('journal', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("on" if journal else "off",),
            )
            if not journal:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('journal_breaks', '1') "
                    "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                )
        self._tokens: dict[str, str] = {}

    # -- plumbing -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA cache_size = -100000")  # 100 MB page cache
        return db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """This thread's reading connection (autocommit: each statement sees the latest
        committed state)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            db.execute("PRAGMA query_only = ON")
            self._local.db = db
            with self._lock:
                self._readers.append(db)
        yield db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _bump(self, namespace: str) -> int:
        token = _namespace_token(namespace)
        row = self._db.execute(
            "INSERT INTO namespaces (namespace, token, generation) VALUES (?, ?, 1) "
            "ON CONFLICT (namespace) DO UPDATE SET generation = generation + 1 "
            "RETURNING generation",
            (namespace, token),
        ).fetchone()
        return int(row[0])

    def _journal(self, namespace: str, generation: int, op: str, payload: bytes) -> None:
        """Append the open transaction to the journal (last, so ``at`` is as close to
        the commit as it can be). ``at`` never goes below the previous row's, so time
        order and id order agree even if the wall clock steps back."""
        if not self.journal:
            return
        at = time.time()
        last = self._db.execute("SELECT at FROM journal ORDER BY id DESC LIMIT 1").fetchone()
        if last is not None and last[0] > at:
            at = float(last[0])
        self._db.execute(
            "INSERT INTO journal (namespace, generation, at, op, payload) VALUES (?, ?, ?, ?, ?)",
            (namespace, generation, at, op, payload),
        )

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()

    def ping(self) -> None:
        # An in-process file: reading one row is all there is to check.
        with self._read() as db:
            db.execute("SELECT 1").fetchone()

    def namespaces(self) -> list[str]:
        with self._read() as db:
            rows = db.execute("SELECT namespace FROM namespaces ORDER BY namespace")
            return [r[0] for r in rows]

    def generation(self, namespace: str) -> int:
        with self._read() as db:
            row = db.execute(
                "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
            ).fetchone()
            return int(row[0]) if row else 0

    # -- writes ---------------------------------------------------------------------

    def write(self, namespace: str, batch: WriteBatch) -> WriteResult:
        now = time.time()
        with self._tx():
            result = self._write(namespace, batch, now)
            if self.journal:
                payload = _write_payload(batch, now, result)
                self._journal(namespace, result.generation, "write", payload)
        return result

    def _write(self, namespace: str, batch: WriteBatch, now: float) -> WriteResult:
        """``write`` in the open transaction, with ``now`` as its clock reading."""
        token = _namespace_token(namespace)
        seqs: dict[str, int] = {}
        new_nodes: list[str] = []
        db = self._db
        generation = self._bump(namespace)
        for memory in batch.memories:
            seqs[memory.id] = self._insert_memory(namespace, token, memory)
            new_nodes.append(memory.id)
        if batch.entities:
            entity_ids = [ENTITY_PREFIX + key for key in batch.entities]
            existing = self._seqs(db, namespace, entity_ids)
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
        stored = self._write_edges(namespace, batch.edges, seqs, set(new_nodes), now)
        return WriteResult(seqs=seqs, new_nodes=new_nodes, edges=stored, generation=generation)

    def _insert_memory(self, namespace: str, token: str, memory: Memory) -> int:
        """Insert one memory (and its full text) in the open transaction; its seq. A
        merged id that comes back as a new memory stops being an alias."""
        try:
            cursor = self._db.execute(
                "INSERT INTO nodes (namespace, label, id, content, kind, tier, "
                "session_id, created_at, occurred_at, last_accessed_at, access_count, "
                "importance, content_hash, metadata, embedding, passages, context) "
                "VALUES (?, 'memory', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _memory_row(namespace, memory),
            )
        except sqlite3.IntegrityError:
            raise DuplicateId(
                "id", f"memory {memory.id!r} already exists in namespace {namespace!r}"
            ) from None
        seq = int(cursor.lastrowid or 0)
        self._db.execute(
            "INSERT INTO memory_fts (rowid, ns, content) VALUES (?, ?, ?)",
            (seq, token, memory.content),
        )
        self._db.execute(
            "DELETE FROM aliases WHERE namespace = ? AND id = ?", (namespace, memory.id)
        )
        return seq

    def _resolve_ends(
        self, namespace: str, edges: Sequence[Association], seqs: dict[str, int]
    ) -> dict[str, int]:
        """``seqs`` completed with the seq of every edge end it lacks, in the open
        transaction; ``NotFound`` naming the first (sorted) end that does not exist."""
        missing = sorted({e for edge in edges for e in (edge.source, edge.target)} - seqs.keys())
        found = self._seqs(self._db, namespace, missing) if missing else {}
        absent = [e for e in missing if e not in found]
        if absent:
            raise NotFound(
                f"association endpoint {absent[0]!r} does not exist in namespace {namespace!r}"
            )
        seqs.update(found)
        return seqs

    def _write_edges(
        self,
        namespace: str,
        edges: Sequence[Association],
        seqs: dict[str, int],
        new_nodes: set[str],
        now: float,
    ) -> list[tuple[int, int, int, float]]:
        self._resolve_ends(namespace, edges, seqs)
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
        self._db.executemany(
            "INSERT INTO associations (namespace, src, dst, type, weight, created_at, explicit, "
            "last_activated_at, activation_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fresh,
        )
        for row in upserts:
            src, dst, type_, weight = self._db.execute(
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

    def forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        with self._tx():
            forgotten = self._forget(namespace, memory_id)
            if forgotten is not None and self.journal:
                payload = _pack({"id": memory_id, "seq": forgotten[0]})
                self._journal(namespace, forgotten[1], "forget", payload)
            return forgotten

    def _forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        db = self._db
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
        return seq, self._bump(namespace)

    def apply_changes(self, namespace: str, changes: ChangeBatch) -> int:
        now = time.time()
        with self._tx():
            generation, kept = self._apply_changes(namespace, changes, now)
            if self.journal:
                payload = _changes_payload(changes, now, kept)
                self._journal(namespace, generation, "apply_changes", payload)
            return generation

    def _apply_changes(
        self, namespace: str, changes: ChangeBatch, now: float
    ) -> tuple[int, set[str]]:
        """``apply_changes`` in the open transaction, with ``now`` as its clock reading;
        the new generation and the ids of the replaced memories whose vectors it kept."""
        token = _namespace_token(namespace)
        db = self._db
        # A memory that gets a new seq moves its edges in two statements; the
        # foreign keys are checked at commit.
        db.execute("PRAGMA defer_foreign_keys = ON")
        generation = self._bump(namespace)
        if changes.removed_edges:
            ends = {e for s, d, _ in changes.removed_edges for e in (s, d)}
            seqs = self._seqs(db, namespace, sorted(ends))
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
            self._insert_memory(namespace, token, memory)
        kept = {
            memory.id
            for memory in changes.memories
            if not self._replace_memory(namespace, token, memory)
        }
        if changes.edges:
            self._set_edges(namespace, changes.edges, now)
        return generation, kept

    def _replace_memory(self, namespace: str, token: str, memory: Memory) -> bool:
        """Replace a stored memory's fields; whether its vectors changed (it got a new
        seq then)."""
        row = self._db.execute(
            "SELECT seq, embedding, passages, context FROM nodes "
            "WHERE namespace = ? AND id = ? AND label = 'memory'",
            (namespace, memory.id),
        ).fetchone()
        if row is None:
            raise NotFound(f"memory {memory.id!r} does not exist in namespace {namespace!r}")
        values = _memory_row(namespace, memory)
        seq = int(row[0])
        changed = tuple(row[1:]) != values[-3:]
        if changed:
            # New vectors, new seq: the derived indexes catch up by seq.
            self._db.execute("UPDATE sqlite_sequence SET seq = seq + 1 WHERE name = 'nodes'")
            fresh = int(
                self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'nodes'").fetchone()[
                    0
                ]
            )
            self._db.execute("UPDATE nodes SET seq = ? WHERE seq = ?", (fresh, seq))
            self._db.execute("UPDATE associations SET src = ? WHERE src = ?", (fresh, seq))
            self._db.execute("UPDATE associations SET dst = ? WHERE dst = ?", (fresh, seq))
            self._db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
            seq = fresh
        else:
            self._db.execute("DELETE FROM memory_fts WHERE rowid = ?", (seq,))
        self._db.execute(
            "UPDATE nodes SET content = ?, kind = ?, tier = ?, session_id = ?, created_at = ?, "
            "occurred_at = ?, last_accessed_at = ?, access_count = ?, importance = ?, "
            "content_hash = ?, metadata = ?, embedding = ?, passages = ?, context = ? "
            "WHERE seq = ?",
            (*values[2:], seq),
        )
        self._db.execute(
            "INSERT INTO memory_fts (rowid, ns, content) VALUES (?, ?, ?)",
            (seq, token, memory.content),
        )
        return changed

    def _set_edges(self, namespace: str, edges: Sequence[Association], now: float) -> None:
        seqs = self._resolve_ends(namespace, edges, {})
        self._db.executemany(
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

    def resolve_aliases(self, namespace: str, ids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self._read() as db:
            for part in _chunks(list(ids)):
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT id, survivor FROM aliases WHERE namespace = ? AND id IN ({marks})",
                    (namespace, *part),
                )
                found.update((r[0], r[1]) for r in rows)
        return found

    def record_run(self, namespace: str, run: RunRecord) -> None:
        with self._tx():
            self._record_run(namespace, run)
            if self.journal:
                generation = self._db.execute(
                    "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
                ).fetchone()
                payload = _run_payload(run)
                self._journal(namespace, int(generation[0]) if generation else 0, "run", payload)

    def _record_run(self, namespace: str, run: RunRecord) -> None:
        db = self._db
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

    def runs(self, namespace: str, limit: int = 20) -> list[RunRecord]:
        with self._read() as db:
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

    def record_access(
        self,
        namespace: str,
        accesses: Sequence[AccessRecord],
        strengthened: Sequence[tuple[int, int, int, float, float]],
    ) -> int:
        if not accesses and not strengthened:
            return self.generation(namespace)
        with self._tx():
            generation = self._record_access(namespace, accesses, strengthened)
            if self.journal:
                payload = _access_payload(accesses, strengthened)
                self._journal(namespace, generation, "record_access", payload)
            return generation

    def _record_access(
        self,
        namespace: str,
        accesses: Sequence[AccessRecord],
        strengthened: Sequence[tuple[int, int, int, float, float]],
    ) -> int:
        db = self._db
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
        return self._bump(namespace)

    # -- journal --------------------------------------------------------------------

    def replay(self, entries: Iterable[JournalEntry]) -> int:
        """Apply journal entries (from a backup of another copy of this database), in
        order, each in its own transaction through the same code the original write
        ran, and append each to this store's journal under its own id and time; the
        number applied.

        Raises :class:`JournalMismatch` (and keeps the entries applied before it) when
        an entry does not follow this database's last journal id, or when applying it
        gives another generation or other seqs than it recorded: the entries do not
        belong on this copy."""
        applied = 0
        for entry in entries:
            with self._tx() as db:
                last = _last_journal_id(db)
                if entry.id != last + 1:
                    raise JournalMismatch(
                        f"journal entry {entry.id} does not follow this database's last "
                        f"entry {last}"
                    )
                generation = self._replay(entry)
                if generation != entry.generation:
                    raise JournalMismatch(
                        f"journal entry {entry.id} ({entry.op} in {entry.namespace!r}) gave "
                        f"generation {generation}, it recorded {entry.generation}"
                    )
                db.execute(
                    "INSERT INTO journal (id, namespace, generation, at, op, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    entry.row(),
                )
            applied += 1
        return applied

    def _replay(self, entry: JournalEntry) -> int:
        """Apply one entry in the open transaction; the generation it leaves."""
        namespace, op = entry.namespace, entry.operation()
        if op.batch is not None:
            result = self._write(namespace, op.batch, op.now)
            if {node: result.seqs[node] for node in result.new_nodes} != op.created:
                raise JournalMismatch(
                    f"journal entry {entry.id} created nodes with other seqs than it recorded"
                )
            return result.generation
        if op.forget is not None:
            memory_id, seq = op.forget
            forgotten = self._forget(namespace, memory_id)
            if forgotten is None or forgotten[0] != seq:
                raise JournalMismatch(
                    f"journal entry {entry.id} forgets {memory_id!r} (seq {seq}), which this "
                    "database does not hold under that seq"
                )
            return forgotten[1]
        if op.changes is not None:
            self._fill_stored_vectors(namespace, op.changes.memories, op.stored_vectors)
            return self._apply_changes(namespace, op.changes, op.now)[0]
        if op.run is not None:
            self._record_run(namespace, op.run)
            row = self._db.execute(
                "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
            ).fetchone()
            return int(row[0]) if row else 0
        return self._record_access(namespace, op.accesses, op.strengthened)

    def _fill_stored_vectors(
        self, namespace: str, memories: Sequence[Memory], ids: set[str]
    ) -> None:
        """Give the memories an entry recorded as keeping their vectors the vectors
        this copy holds for them (the very ones: the copy is where the original was)."""
        if not ids:
            return
        wanted = [m.id for m in memories if m.id in ids]
        rows: dict[str, tuple[Any, ...]] = {}
        for part in _chunks(wanted):
            marks = ",".join("?" * len(part))
            rows.update(
                (r[0], r[1:])
                for r in self._db.execute(
                    "SELECT id, embedding, passages, context FROM nodes WHERE namespace = ? "
                    f"AND label = 'memory' AND id IN ({marks})",
                    (namespace, *part),
                )
            )
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

    def journal_entries(self, *, after: int = 0) -> Iterator[JournalEntry]:
        """This store's journal entries with id > ``after``, in id order."""
        with self._read() as db:
            yield from _journal_rows(db, after)

    def prune_journal(self, through: int) -> int:
        """Delete journal entries with id <= ``through`` (covered by a full backup); the
        number deleted. Ids are never reused."""
        with self._tx() as db:
            return _delete_journal(db, through)

    def state(self) -> StoreState:
        """Identity, generations and journal position, as one consistent read."""
        with self._read() as db:
            db.execute("BEGIN")
            try:
                return _state(db)
            finally:
                db.execute("COMMIT")

    def new_identity(self) -> str:
        """Give this database a new ``store_id`` (a restored copy starts its own backup
        history: its journal continues from the restore point, not from the source's
        later writes); the new id."""
        store_id = uuid.uuid4().hex
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('store_id', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (store_id,),
            )
        return store_id

    # -- reads ----------------------------------------------------------------------

    def _seqs(self, db: sqlite3.Connection, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for part in _chunks(list(ids)):
            marks = ",".join("?" * len(part))
            rows = db.execute(
                f"SELECT id, seq FROM nodes WHERE namespace = ? AND id IN ({marks})",
                (namespace, *part),
            )
            found.update((r[0], int(r[1])) for r in rows)
        return found

    def seqs_of(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        with self._read() as db:
            return self._seqs(db, namespace, ids)

    def node_ids(self, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        with self._read() as db:
            for part in _chunks([int(s) for s in seqs]):
                marks = ",".join("?" * len(part))
                # ``+namespace``: without it SQLite answers from the (namespace, id) index,
                # reading every row of the namespace (13 ms for 30 seqs at 100k memories,
                # on every remember and recall); by the primary key it is 0.04 ms
                rows = db.execute(
                    f"SELECT seq, id FROM nodes WHERE +namespace = ? AND seq IN ({marks})",
                    (namespace, *part),
                )
                found.update((int(r[0]), r[1]) for r in rows)
        return found

    def get(self, namespace: str, ids: Sequence[str], *, embeddings: bool = False) -> list[Memory]:
        by_id: dict[str, Memory] = {}
        columns = _NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
        with self._read() as db:
            for part in _chunks(list(ids)):
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
                    f"AND id IN ({marks})",
                    (namespace, *part),
                )
                for row in rows:
                    by_id[row[1]] = _memory_from_row(row, embeddings)
        return [by_id[i] for i in ids if i in by_id]

    def get_by_seq(
        self, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
    ) -> dict[int, Memory]:
        found: dict[int, Memory] = {}
        columns = _NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
        with self._read() as db:
            for part in _chunks([int(s) for s in seqs]):
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
                    f"AND seq IN ({marks})",
                    (namespace, *part),
                )
                for row in rows:
                    found[int(row[0])] = _memory_from_row(row, embeddings)
        return found

    def recalled(
        self, namespace: str, seqs: Sequence[int], named: Sequence[int]
    ) -> tuple[dict[int, Memory], dict[int, str]]:
        return self.get_by_seq(namespace, seqs), self.node_ids(namespace, named)

    def last_in_session(self, namespace: str, session_id: str) -> tuple[str, int] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT id, seq FROM nodes WHERE namespace = ? AND session_id = ? "
                "AND label = 'memory' ORDER BY seq DESC LIMIT 1",
                (namespace, session_id),
            ).fetchone()
        return (row[0], int(row[1])) if row else None

    def associations(
        self,
        namespace: str,
        node_id: str,
        types: Sequence[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[Association]:
        with self._read() as db:
            seq = self._seqs(db, namespace, [node_id]).get(node_id)
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
        return [_association_from_row(r) for r in rows]

    def search_text(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or limit <= 0:
            return []
        token = self._tokens.get(namespace) or _namespace_token(namespace)
        self._tokens[namespace] = token
        alternatives = " OR ".join(f'"{t}"' for t in terms)
        # The namespace is a column filter, not a MATCH term: as a term its posting list
        # is the whole namespace and every query would walk it.
        with self._read() as db:
            rows = db.execute(
                "SELECT rowid, -rank FROM memory_fts WHERE memory_fts MATCH ? AND ns = ? "
                "ORDER BY rank LIMIT ?",
                (f"content : ({alternatives})", token, limit),
            ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows if r[1] > 0]

    def load_nodes(self, namespace: str) -> NodeColumns:
        with self._read() as db:
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

    def load_edges(self, namespace: str) -> EdgeColumns:
        parts: list[np.ndarray] = []
        with self._read() as db:
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

    def _iter_memories(
        self, namespace: str, column: str, *, min_seq: int, chunk: int
    ) -> Iterator[list[tuple[int, Any]]]:
        """(seq, column) rows of memories with seq > min_seq, in seq order, by chunks;
        ``column`` is one of this module's literal column names, never caller input."""
        last = min_seq
        while True:
            with self._read() as db:
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
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for rows in self._iter_memories(namespace, "embedding", min_seq=min_seq, chunk=chunk):
            seqs = np.array([r[0] for r in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield seqs, vectors.reshape(len(rows), -1).copy()

    def iter_passages(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = min_seq
        while True:
            with self._read() as db:
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
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        for rows in self._iter_memories(namespace, "content", min_seq=0, chunk=chunk):
            yield np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def iter_memories(
        self, namespace: str, *, embeddings: bool = False, chunk: int = 10_000
    ) -> Iterator[list[Memory]]:
        columns = _NODE_COLUMNS + (", embedding, passages, context" if embeddings else "")
        last = -1
        while True:
            with self._read() as db:
                rows = db.execute(
                    f"SELECT {columns} FROM nodes WHERE namespace = ? AND label = 'memory' "
                    "AND seq > ? ORDER BY seq LIMIT ?",
                    (namespace, last, chunk),
                ).fetchall()
            if not rows:
                return
            yield [_memory_from_row(row, embeddings) for row in rows]
            last = int(rows[-1][0])

    def entities(self, namespace: str) -> dict[str, str]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, content FROM nodes WHERE namespace = ? AND label = 'entity' "
                "ORDER BY seq",
                (namespace,),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def iter_associations(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[list[Association]]:
        # By ranges of source nodes: the primary key (src, dst, type) serves each range.
        last = -1
        while True:
            with self._read() as db:
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
                yield [_association_from_row(r) for r in rows]

    def stats(self, namespace: str) -> dict[str, dict[str, int]]:
        with self._read() as db:
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


def _memory_row(namespace: str, m: Memory) -> tuple[Any, ...]:
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


def _association_from_row(r: Sequence[Any]) -> Association:
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


def _memory_from_row(row: Sequence[Any], embeddings: bool) -> Memory:
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


# -- the journal's records ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One committed write transaction, as the journal holds it."""

    id: int
    namespace: str
    generation: int  # the namespace's generation after it
    at: float  # wall time (epoch seconds) just before its commit
    op: str  # write, forget, record_access, apply_changes, run
    payload: bytes  # what the transaction was given (see _pack)

    def row(self) -> tuple[int, str, int, float, str, bytes]:
        """(id, namespace, generation, at, op, payload): the journal table's columns."""
        return (self.id, self.namespace, self.generation, self.at, self.op, self.payload)

    def operation(self) -> _Operation:
        """The payload decoded into the operation's arguments; ``ValueError`` naming
        the entry when it does not decompress, parse or hold what its operation needs
        (so a backup check finds a bad entry without applying it)."""
        try:
            obj, vectors = _unpack(self.payload)
            return _decode_operation(self.op, obj, vectors, self.namespace)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"journal entry {self.id} ({self.op}): {exc!r}") from None


class JournalMismatch(ValueError):
    """Journal entries that do not belong on the database they are replayed onto."""


@dataclass(frozen=True, slots=True)
class StoreState:
    """What one consistent read of a database says about its identity and history."""

    store_id: str | None
    schema_version: int
    generations: dict[str, int]
    has_journal: bool  # the database has a journal table (schema 4 or later)
    journaling: bool  # the store was last opened with journaling on
    journal_breaks: int  # times the store was opened with journaling off
    journal_last: int  # the last journal id ever assigned (0: none)
    journal_last_at: float | None  # that entry's time, if it is still held
    journal_first: int | None  # the oldest entry still held (None: none held)


@dataclass(slots=True)
class _Operation:
    """A journal entry's payload decoded into the arguments its operation was given
    (exactly one of ``batch``, ``forget``, ``changes``, ``run``, or the accesses)."""

    now: float = 0.0
    batch: WriteBatch | None = None
    created: dict[str, int] = field(default_factory=dict)  # write: new node id -> seq
    forget: tuple[str, int] | None = None  # (memory id, its seq)
    changes: ChangeBatch | None = None
    run: RunRecord | None = None
    # apply_changes: replaced memories that kept their vectors (not in the payload)
    stored_vectors: set[str] = field(default_factory=set)
    accesses: list[AccessRecord] = field(default_factory=list)
    strengthened: list[tuple[int, int, int, float, float]] = field(default_factory=list)


# A payload: magic, the length of the zlib-compressed JSON, that JSON, then the raw
# little-endian float32 vectors the JSON refers to as [offset, count] (in floats).
# Vectors stay out of the compressed part: float32 noise does not compress (zlib ran at
# ~20 MB/s on them here for a 7% gain), and as base64 JSON text they would be a third
# larger. Everything else is in transfer's export shapes.
_PAYLOAD_MAGIC = b"HGJ1"
STORED = "stored"  # a vector the database already holds (see _memory_entry)
_HEADER = struct.Struct(">4sI")


class _VectorSection:
    """The raw vector part of a payload being built."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.floats = 0

    def add(self, vector: np.ndarray | None) -> list[int] | None:
        if vector is None:
            return None
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        ref = [self.floats, len(data) // 4]
        self.parts.append(data)
        self.floats += len(data) // 4
        return ref


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _pack(payload: dict[str, Any], vectors: _VectorSection | None = None) -> bytes:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    packed = zlib.compress(text.encode("utf-8"), 1)
    raw = b"".join(vectors.parts) if vectors is not None else b""
    return _HEADER.pack(_PAYLOAD_MAGIC, len(packed)) + packed + raw


def _unpack(blob: bytes) -> tuple[dict[str, Any], bytes]:
    if len(blob) < _HEADER.size:
        raise ValueError("payload too short")
    magic, size = _HEADER.unpack_from(blob)
    if magic != _PAYLOAD_MAGIC or _HEADER.size + size > len(blob):
        raise ValueError("not a journal payload")
    try:
        text = zlib.decompress(blob[_HEADER.size : _HEADER.size + size]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"payload does not decompress ({exc})") from None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("payload is not a JSON object")
    return value, blob[_HEADER.size + size :]


def _memory_entry(m: Memory, vectors: _VectorSection, *, stored: bool = False) -> dict[str, Any]:
    """``transfer``'s export record of a memory, with its vectors as references into
    the payload's vector section instead of base64 (written out here: copying the
    memory to blank its vectors for ``_memory_record`` cost more than the rest), or,
    with ``stored``, as ``"stored"``: a replaced memory that kept the vectors the
    database holds (a tiering run moves thousands of memories and changes no vector)."""
    passages = m.passages if m.passages is not None and len(m.passages) else None
    if stored:
        entry = _memory_entry(m, _VectorSection())  # vectors to a section thrown away
        entry.update(embedding=STORED, passages=STORED, context_embedding=STORED)
        return entry
    return {
        "record": "memory",
        "id": m.id,
        "content": m.content,
        "kind": m.kind.value,
        "tier": m.tier.value,
        "session_id": m.session_id,
        "created_at": _time(m.created_at),
        "occurred_at": _time(m.occurred_at),
        "last_accessed_at": _time(m.last_accessed_at),
        "access_count": m.access_count,
        "importance": m.importance,
        "content_hash": m.content_hash,
        "metadata": m.metadata,
        "embedding": vectors.add(m.embedding),
        "passages": vectors.add(passages),
        "context_embedding": vectors.add(m.context_embedding),
    }


def _write_payload(batch: WriteBatch, now: float, result: WriteResult) -> bytes:
    vectors = _VectorSection()
    payload = {
        "now": now,
        "memories": [_memory_entry(m, vectors) for m in batch.memories],
        "entities": batch.entities,
        "edges": [_association_record(a) for a in batch.edges],
        # checked on replay: the same seqs, or the copy is not the one this followed
        "new": {node: result.seqs[node] for node in result.new_nodes},
    }
    return _pack(payload, vectors)


def _changes_payload(changes: ChangeBatch, now: float, kept: set[str]) -> bytes:
    vectors = _VectorSection()
    payload = {
        "now": now,
        "new_memories": [_memory_entry(m, vectors) for m in changes.new_memories],
        "memories": [_memory_entry(m, vectors, stored=m.id in kept) for m in changes.memories],
        "edges": [_association_record(a) for a in changes.edges],
        "removed_edges": [[s, d, t.value] for s, d, t in changes.removed_edges],
        "removed_memories": list(changes.removed_memories),
        "aliases": changes.aliases,
    }
    return _pack(payload, vectors)


def _access_payload(
    accesses: Sequence[AccessRecord], strengthened: Sequence[tuple[int, int, int, float, float]]
) -> bytes:
    # By seq: a replay onto the copy this journal follows assigns the same seqs.
    return _pack(
        {
            "accesses": [
                [int(a.seq), float(a.at), a.tier.value if a.tier else None, int(a.count)]
                for a in accesses
            ],
            "strengthened": [
                [int(src), int(dst), int(t), float(w), float(at)]
                for src, dst, t, w, at in strengthened
            ],
        }
    )


def _run_payload(run: RunRecord) -> bytes:
    return _pack(
        {
            "id": run.id,
            "job": run.job,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat(),
            "dry_run": run.dry_run,
            "counts": run.counts,
        }
    )


def _decode_operation(op: str, obj: dict[str, Any], vectors: bytes, namespace: str) -> _Operation:
    def memory(record: dict[str, Any]) -> Memory:
        return _decode_memory(record, namespace, vectors)

    if op == "write":
        return _Operation(
            now=float(obj["now"]),
            batch=WriteBatch(
                memories=[memory(m) for m in obj["memories"]],
                entities={str(k): str(v) for k, v in obj["entities"].items()},
                edges=[_decode_association(a) for a in obj["edges"]],
            ),
            created={str(k): int(v) for k, v in obj["new"].items()},
        )
    if op == "forget":
        return _Operation(forget=(str(obj["id"]), int(obj["seq"])))
    if op == "record_access":
        return _Operation(
            accesses=[
                AccessRecord(seq=int(s), at=float(at), tier=Tier(t) if t else None, count=int(c))
                for s, at, t, c in obj["accesses"]
            ],
            strengthened=[
                (int(src), int(dst), int(t), float(w), float(at))
                for src, dst, t, w, at in obj["strengthened"]
            ],
        )
    if op == "apply_changes":
        return _Operation(
            now=float(obj["now"]),
            stored_vectors={str(m["id"]) for m in obj["memories"] if m["embedding"] == STORED},
            changes=ChangeBatch(
                new_memories=[memory(m) for m in obj["new_memories"]],
                memories=[memory(m) for m in obj["memories"]],
                edges=[_decode_association(a) for a in obj["edges"]],
                removed_edges=[(s, d, AssociationType(t)) for s, d, t in obj["removed_edges"]],
                removed_memories=[str(i) for i in obj["removed_memories"]],
                aliases={str(k): str(v) for k, v in obj["aliases"].items()},
            ),
        )
    if op == "run":
        started = _read_time(obj["started_at"], "started_at")
        finished = _read_time(obj["finished_at"], "finished_at")
        assert started is not None and finished is not None
        run = RunRecord(
            id=str(obj["id"]),
            job=str(obj["job"]),
            started_at=started,
            finished_at=finished,
            dry_run=bool(obj["dry_run"]),
            counts=dict(obj["counts"]),
        )
        return _Operation(run=run)
    raise ValueError(f"unknown operation {op!r}")


def _decode_vector(ref: list[int] | str | None, vectors: bytes) -> np.ndarray | None:
    if ref is None or ref == STORED:
        return None
    offset, count = int(ref[0]), int(ref[1])
    if offset < 0 or count <= 0 or (offset + count) * 4 > len(vectors):
        raise ValueError(f"vector [{offset}, {count}] lies outside the payload")
    return np.frombuffer(vectors, dtype="<f4", count=count, offset=offset * 4).astype(np.float32)


def _decode_memory(obj: dict[str, Any], namespace: str, vectors: bytes) -> Memory:
    """A memory record of the journal back to the ``Memory`` the store was given:
    unlike an import, vectors may be absent (an archive stub has none) and nothing is
    re-validated: it was checked when it was written."""
    embedding = _decode_vector(obj["embedding"], vectors)
    passages = _decode_vector(obj["passages"], vectors)
    if passages is not None:
        if embedding is None or len(passages) % len(embedding):
            raise ValueError(f"memory {obj['id']!r}: passages do not fit its embedding")
        passages = passages.reshape(-1, len(embedding))
    created = _read_time(obj["created_at"], "created_at")
    occurred = _read_time(obj["occurred_at"], "occurred_at")
    assert created is not None
    return Memory(
        id=str(obj["id"]),
        namespace=namespace,
        content=str(obj["content"]),
        kind=MemoryKind(obj["kind"]),
        tier=Tier(obj["tier"]),
        session_id=obj["session_id"],
        created_at=created,
        occurred_at=occurred,
        last_accessed_at=_read_time(obj["last_accessed_at"], "last_accessed_at", optional=True),
        access_count=int(obj["access_count"]),
        importance=obj["importance"],
        content_hash=str(obj["content_hash"]),
        metadata=dict(obj["metadata"]),
        embedding=embedding,
        passages=passages,
        context_embedding=_decode_vector(obj["context_embedding"], vectors),
    )


def _decode_association(obj: dict[str, Any]) -> Association:
    # A missing created_at stays missing: the store stamps it with the entry's "now".
    created = _read_time(obj["created_at"], "created_at", optional=True)
    return Association(
        source=str(obj["source"]),
        target=str(obj["target"]),
        type=AssociationType(obj["type"]),
        weight=obj["weight"],
        created_at=cast(datetime, created),
        last_activated_at=_read_time(obj["last_activated_at"], "last_activated_at", optional=True),
        activation_count=int(obj["activation_count"]),
        explicit=bool(obj["explicit"]),
    )


# -- a database file, beside whoever has it open -------------------------------------------


def _connect_file(path: Path) -> sqlite3.Connection:
    """A plain connection of our own (not a store: the server may hold that)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def _last_journal_id(db: sqlite3.Connection) -> int:
    # sqlite_sequence keeps the last id even after the rows are pruned: ids never repeat.
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    return int(row[0]) if row else 0


def _journal_rows(db: sqlite3.Connection, after: int, chunk: int = 256) -> Iterator[JournalEntry]:
    last = after
    while True:
        rows = db.execute(
            "SELECT id, namespace, generation, at, op, payload FROM journal WHERE id > ? "
            "ORDER BY id LIMIT ?",
            (last, chunk),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield JournalEntry(int(row[0]), row[1], int(row[2]), float(row[3]), row[4], row[5])
        last = int(rows[-1][0])


def _delete_journal(db: sqlite3.Connection, through: int) -> int:
    return db.execute("DELETE FROM journal WHERE id <= ?", (int(through),)).rowcount


def _state(db: sqlite3.Connection) -> StoreState:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    generations: dict[str, int] = {}
    if "namespaces" in tables:
        rows = db.execute("SELECT namespace, generation FROM namespaces ORDER BY namespace")
        generations = {r[0]: int(r[1]) for r in rows}
    has_journal = "journal" in tables
    last, last_at, first = 0, None, None
    if has_journal:
        last = _last_journal_id(db)
        row = db.execute("SELECT at FROM journal WHERE id = ?", (last,)).fetchone()
        last_at = float(row[0]) if row else None
        first_row = db.execute("SELECT min(id) FROM journal").fetchone()
        first = int(first_row[0]) if first_row and first_row[0] is not None else None
    return StoreState(
        store_id=meta.get("store_id"),
        schema_version=int(meta.get("schema_version", 0)),
        generations=generations,
        has_journal=has_journal,
        journaling=has_journal and meta.get("journal", "on") == "on",
        journal_breaks=int(meta.get("journal_breaks", 0)),
        journal_last=last,
        journal_last_at=last_at,
        journal_first=first,
    )


def snapshot(source: Path | str, dest: Path | str) -> StoreState:
    """Copy the database at ``source`` to the new file ``dest`` with SQLite's online
    backup API, from a connection of its own, while others keep reading and writing it
    (WAL): the copy is one consistent snapshot (every transaction committed before it
    began, none after), in rollback-journal mode so it is one self-contained file.
    Returns the snapshot's :class:`StoreState`."""
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if dest.exists():
        raise FileExistsError(f"{dest} exists")
    src = _connect_file(source)
    try:
        src.execute("PRAGMA query_only = ON")
        dst = sqlite3.connect(dest, isolation_level=None)
        try:
            # One step (pages=-1): the whole copy runs in one read transaction.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")
            return _state(dst)
        finally:
            dst.close()
    finally:
        src.close()


@contextmanager
def read_journal(
    path: Path | str, *, after: int
) -> Iterator[tuple[StoreState, Iterator[JournalEntry]]]:
    """The database's state and its journal entries with id > ``after``, both from one
    read transaction (so the entries end exactly at ``state.journal_last``), read
    through a connection of its own beside a live server."""
    db = _connect_file(Path(path))
    try:
        db.execute("PRAGMA query_only = ON")
        db.execute("BEGIN")
        state = _state(db)
        entries = _journal_rows(db, after) if state.has_journal else iter(())
        yield state, entries
        db.execute("COMMIT")
    finally:
        db.close()


def prune_journal(path: Path | str, *, through: int) -> int:
    """Delete the journal entries with id <= ``through`` from the database at ``path``
    (beside a live server); the number deleted."""
    db = _connect_file(Path(path))
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = _delete_journal(db, through)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return deleted
    finally:
        db.close()


@contextmanager
def _immutable(path: Path | str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a database file nobody writes (a backup copy): it
    neither locks nor adds a byte, not even a -wal or -shm file."""
    uri = Path(path).resolve().as_uri() + "?mode=ro&immutable=1"
    db = sqlite3.connect(uri, uri=True)
    try:
        yield db
    finally:
        db.close()


def read_state(path: Path | str) -> StoreState:
    """The :class:`StoreState` of a database file nobody writes (a backup copy)."""
    with _immutable(path) as db:
        return _state(db)


def archive_stubs(path: Path | str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, id, metadata) of the memories without a vector whose metadata has
    an ``archive`` entry (what the lifecycle archive leaves), in a database file
    nobody writes; ``hippograph.lifecycle.archive.archive_ref`` says which are stubs."""
    with _immutable(path) as db:
        rows = db.execute(
            "SELECT namespace, id, metadata FROM nodes WHERE label = 'memory' "
            "AND embedding IS NULL AND metadata LIKE '%\"archive\"%' ORDER BY seq"
        )
        for namespace, memory_id, metadata in rows:
            try:
                value = json.loads(metadata)
            except ValueError:
                continue
            if isinstance(value, dict):
                yield namespace, memory_id, value


def integrity_problems(path: Path | str) -> list[str]:
    """What SQLite's ``integrity_check`` and ``foreign_key_check`` find wrong with the
    database file at ``path`` (empty: none), read without changing or adding a byte
    (immutable, read-only)."""
    try:
        with _immutable(path) as db:
            found = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
            problems = [] if found == ["ok"] else found
            for table, rowid, parent, _ in db.execute("PRAGMA foreign_key_check"):
                problems.append(f"{table} row {rowid} points at a missing {parent} row")
            return problems
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database ({exc})"]
