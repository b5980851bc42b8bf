"""The embedded store: one SQLite file in the data directory (WAL), no server.

All SQL lives here. Memories and entities are rows of one ``nodes`` table (a label
column tells them apart) so that associations can point at either by ``seq``, the
integer key the derived structures use. Full text is an FTS5 table keyed by the same
seq, carrying a per-namespace token so one MATCH both filters and ranks.

Every public method takes the connection lock, and every write runs in one explicit
``BEGIN IMMEDIATE`` transaction that also bumps the namespace's generation.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from graph.model import (
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
from graph.store import (
    AccessRecord,
    ChangeBatch,
    EdgeColumns,
    NodeColumns,
    RunRecord,
    WriteBatch,
    WriteResult,
)
from graph.text import query_terms

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 3  # 2: nodes.passages, nodes.context; 3: aliases, lifecycle_runs

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
    """

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous}")
        self.path = Path(path)
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

    def close(self) -> None:
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()

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
        token = _namespace_token(namespace)
        seqs: dict[str, int] = {}
        new_nodes: list[str] = []
        now = time.time()
        with self._tx() as db:
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

    def _write_edges(
        self,
        namespace: str,
        edges: Sequence[Association],
        seqs: dict[str, int],
        new_nodes: set[str],
        now: float,
    ) -> list[tuple[int, int, int, float]]:
        missing = {e.source for e in edges} | {e.target for e in edges}
        missing -= seqs.keys()
        if missing:
            found = self._seqs(self._db, namespace, sorted(missing))
            seqs.update(found)
            absent = missing - found.keys()
            if absent:
                raise NotFound(
                    f"association endpoint {sorted(absent)[0]!r} does not exist in "
                    f"namespace {namespace!r}"
                )
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
        with self._tx() as db:
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
        token = _namespace_token(namespace)
        with self._tx() as db:
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
            for memory in changes.memories:
                self._replace_memory(namespace, token, memory)
            if changes.edges:
                self._set_edges(namespace, changes.edges)
            return generation

    def _replace_memory(self, namespace: str, token: str, memory: Memory) -> None:
        row = self._db.execute(
            "SELECT seq, embedding, passages, context FROM nodes "
            "WHERE namespace = ? AND id = ? AND label = 'memory'",
            (namespace, memory.id),
        ).fetchone()
        if row is None:
            raise NotFound(f"memory {memory.id!r} does not exist in namespace {namespace!r}")
        values = _memory_row(namespace, memory)
        seq = int(row[0])
        if tuple(row[1:]) != values[-3:]:
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

    def _set_edges(self, namespace: str, edges: Sequence[Association]) -> None:
        ends = sorted({e for edge in edges for e in (edge.source, edge.target)})
        seqs = self._seqs(self._db, namespace, ends)
        absent = [e for e in ends if e not in seqs]
        if absent:
            raise NotFound(
                f"association endpoint {absent[0]!r} does not exist in namespace {namespace!r}"
            )
        now = time.time()
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
        with self._tx() as db:
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
        with self._tx() as db:
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
                rows = db.execute(
                    f"SELECT seq, id FROM nodes WHERE namespace = ? AND seq IN ({marks})",
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
