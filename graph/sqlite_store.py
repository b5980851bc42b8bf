"""The embedded store: one SQLite file in the data directory (WAL), no server.

:class:`SQLiteStore` owns the connections, the lock and the transactions; the SQL is in
:mod:`~hippograph.graph.sqlite_schema` (the tables, and memories and associations as
rows), :mod:`~hippograph.graph.sqlite_writes` and :mod:`~hippograph.graph.sqlite_reads`.
Memories and entities are rows of one ``nodes`` table (a label column tells them
apart) so that associations can point at either by ``seq``, the integer key the derived
structures use. Full text is an FTS5 table keyed by the same seq, carrying a
per-namespace token so one MATCH both filters and ranks.

Every public method takes the connection lock, and every write runs in one explicit
``BEGIN IMMEDIATE`` transaction that also bumps the namespace's generation.

The journal: every committing write transaction (``write``, ``forget``,
``record_access``, ``apply_changes``, ``record_run``) also appends one row to the
``journal`` table, in the same transaction: its namespace, the generation it produced,
the wall time just before the commit, the operation, and a payload holding everything
the transaction was given (:mod:`~hippograph.graph.journal`), so
:meth:`SQLiteStore.replay` applied to a copy of the database taken before it reproduces
it exactly: same rows, same seqs, same generations. Row ids are assigned in commit order
without gaps, so an incremental backup is "the rows after the last id I saved", and a
point-in-time restore is "the rows up to the last one at or before the time". The
functions of :mod:`~hippograph.graph.sqlite_files` (:func:`snapshot`,
:func:`read_journal`, :func:`prune_journal`; and :func:`read_state`,
:func:`archive_stubs`, :func:`integrity_problems` for copies nobody writes) work on a
database file through their own connection, so a backup runs beside a live server
without opening a second store on it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hippograph.graph import sqlite_reads as reads
from hippograph.graph import sqlite_writes as writes
from hippograph.graph.journal import (
    JournalEntry,
    JournalMismatch,
    access_payload,
    changes_payload,
    forget_payload,
    run_payload,
    write_payload,
)
from hippograph.graph.model import Association, AssociationType, Memory
from hippograph.graph.sqlite_files import (
    StoreState,
    archive_stubs,
    delete_journal,
    integrity_problems,
    journal_rows,
    last_journal_id,
    prune_journal,
    read_journal,
    read_state,
    snapshot,
    store_state,
)
from hippograph.graph.sqlite_schema import create_schema, namespace_token
from hippograph.graph.store import (
    AccessRecord,
    ChangeBatch,
    EdgeColumns,
    NodeColumns,
    RunRecord,
    WriteBatch,
    WriteResult,
)

# JournalEntry, JournalMismatch, StoreState and the file functions live in
# hippograph.graph.journal and hippograph.graph.sqlite_files; they are named here too
# because callers take them from the store's module.
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
            create_schema(self._db, journal=journal)
        self._tokens: dict[str, str] = {}

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

    def write(self, namespace: str, batch: WriteBatch) -> WriteResult:
        now = time.time()
        with self._tx():
            result = writes.write(self._db, namespace, batch, now)
            if self.journal:
                payload = write_payload(batch, now, result)
                self._journal(namespace, result.generation, "write", payload)
        return result

    def forget(self, namespace: str, memory_id: str) -> tuple[int, int] | None:
        with self._tx():
            forgotten = writes.forget(self._db, namespace, memory_id)
            if forgotten is not None and self.journal:
                payload = forget_payload(memory_id, forgotten[0])
                self._journal(namespace, forgotten[1], "forget", payload)
            return forgotten

    def apply_changes(self, namespace: str, changes: ChangeBatch) -> int:
        now = time.time()
        with self._tx():
            generation, kept = writes.apply_changes(self._db, namespace, changes, now)
            if self.journal:
                payload = changes_payload(changes, now, kept)
                self._journal(namespace, generation, "apply_changes", payload)
            return generation

    def record_run(self, namespace: str, run: RunRecord) -> None:
        with self._tx():
            writes.record_run(self._db, namespace, run)
            if self.journal:
                generation = self._db.execute(
                    "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
                ).fetchone()
                payload = run_payload(run)
                self._journal(namespace, int(generation[0]) if generation else 0, "run", payload)

    def record_access(
        self,
        namespace: str,
        accesses: Sequence[AccessRecord],
        strengthened: Sequence[tuple[int, int, int, float, float]],
    ) -> int:
        if not accesses and not strengthened:
            return self.generation(namespace)
        with self._tx():
            generation = writes.record_access(self._db, namespace, accesses, strengthened)
            if self.journal:
                payload = access_payload(accesses, strengthened)
                self._journal(namespace, generation, "record_access", payload)
            return generation

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
                last = last_journal_id(db)
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
            result = writes.write(self._db, namespace, op.batch, op.now)
            if {node: result.seqs[node] for node in result.new_nodes} != op.created:
                raise JournalMismatch(
                    f"journal entry {entry.id} created nodes with other seqs than it recorded"
                )
            return result.generation
        if op.forget is not None:
            memory_id, seq = op.forget
            forgotten = writes.forget(self._db, namespace, memory_id)
            if forgotten is None or forgotten[0] != seq:
                raise JournalMismatch(
                    f"journal entry {entry.id} forgets {memory_id!r} (seq {seq}), which this "
                    "database does not hold under that seq"
                )
            return forgotten[1]
        if op.changes is not None:
            writes.fill_stored_vectors(self._db, namespace, op.changes.memories, op.stored_vectors)
            return writes.apply_changes(self._db, namespace, op.changes, op.now)[0]
        if op.run is not None:
            writes.record_run(self._db, namespace, op.run)
            row = self._db.execute(
                "SELECT generation FROM namespaces WHERE namespace = ?", (namespace,)
            ).fetchone()
            return int(row[0]) if row else 0
        return writes.record_access(self._db, namespace, op.accesses, op.strengthened)

    def journal_entries(self, *, after: int = 0) -> Iterator[JournalEntry]:
        """This store's journal entries with id > ``after``, in id order."""
        with self._read() as db:
            yield from journal_rows(db, after)

    def prune_journal(self, through: int) -> int:
        """Delete journal entries with id <= ``through`` (covered by a full backup); the
        number deleted. Ids are never reused."""
        with self._tx() as db:
            return delete_journal(db, through)

    def state(self) -> StoreState:
        """Identity, generations and journal position, as one consistent read."""
        with self._read() as db:
            db.execute("BEGIN")
            try:
                return store_state(db)
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

    def namespaces(self) -> list[str]:
        with self._read() as db:
            return reads.namespaces(db)

    def generation(self, namespace: str) -> int:
        with self._read() as db:
            return reads.generation(db, namespace)

    def resolve_aliases(self, namespace: str, ids: Sequence[str]) -> dict[str, str]:
        with self._read() as db:
            return reads.resolve_aliases(db, namespace, ids)

    def runs(self, namespace: str, limit: int = 20) -> list[RunRecord]:
        with self._read() as db:
            return reads.runs(db, namespace, limit)

    def seqs_of(self, namespace: str, ids: Sequence[str]) -> dict[str, int]:
        with self._read() as db:
            return reads.seqs_of(db, namespace, ids)

    def node_ids(self, namespace: str, seqs: Sequence[int]) -> dict[int, str]:
        with self._read() as db:
            return reads.node_ids(db, namespace, seqs)

    def get(self, namespace: str, ids: Sequence[str], *, embeddings: bool = False) -> list[Memory]:
        with self._read() as db:
            return reads.get(db, namespace, ids, embeddings=embeddings)

    def by_content_hash(self, namespace: str, hashes: Sequence[str]) -> list[Memory]:
        with self._read() as db:
            return reads.by_content_hash(db, namespace, hashes)

    def get_by_seq(
        self, namespace: str, seqs: Sequence[int], *, embeddings: bool = False
    ) -> dict[int, Memory]:
        with self._read() as db:
            return reads.get_by_seq(db, namespace, seqs, embeddings=embeddings)

    def recalled(
        self, namespace: str, seqs: Sequence[int], named: Sequence[int]
    ) -> tuple[dict[int, Memory], dict[int, str]]:
        return self.get_by_seq(namespace, seqs), self.node_ids(namespace, named)

    def last_in_session(self, namespace: str, session_id: str) -> tuple[str, int] | None:
        with self._read() as db:
            return reads.last_in_session(db, namespace, session_id)

    def associations(
        self,
        namespace: str,
        node_id: str,
        types: Sequence[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[Association]:
        with self._read() as db:
            return reads.associations(db, namespace, node_id, types, limit)

    def search_text(self, namespace: str, query: str, limit: int) -> list[tuple[int, float]]:
        token = self._tokens.get(namespace) or namespace_token(namespace)
        self._tokens[namespace] = token
        with self._read() as db:
            return reads.search_text(db, token, query, limit)

    def load_nodes(self, namespace: str) -> NodeColumns:
        with self._read() as db:
            return reads.load_nodes(db, namespace)

    def load_edges(self, namespace: str) -> EdgeColumns:
        with self._read() as db:
            return reads.load_edges(db, namespace)

    def iter_embeddings(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return reads.iter_embeddings(self._read, namespace, min_seq=min_seq, chunk=chunk)

    def iter_passages(
        self, namespace: str, *, min_seq: int = 0, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return reads.iter_passages(self._read, namespace, min_seq=min_seq, chunk=chunk)

    def iter_contents(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[tuple[np.ndarray, list[str]]]:
        return reads.iter_contents(self._read, namespace, chunk=chunk)

    def iter_memories(
        self, namespace: str, *, embeddings: bool = False, chunk: int = 10_000
    ) -> Iterator[list[Memory]]:
        return reads.iter_memories(self._read, namespace, embeddings=embeddings, chunk=chunk)

    def entities(self, namespace: str) -> dict[str, str]:
        with self._read() as db:
            return reads.entities(db, namespace)

    def iter_associations(
        self, namespace: str, *, chunk: int = 50_000
    ) -> Iterator[list[Association]]:
        # By ranges of source nodes: the primary key (src, dst, type) serves each range.
        return reads.iter_associations(self._read, namespace, chunk=chunk)

    def stats(self, namespace: str) -> dict[str, dict[str, int]]:
        with self._read() as db:
            return reads.stats(db, namespace)
