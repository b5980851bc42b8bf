"""A SQLite store's database file, worked on beside whoever has it open.

These functions open a connection of their own (never a store: a live server may hold
that), so a backup runs beside the server: :func:`snapshot`, :func:`read_journal` and
:func:`prune_journal` on the live file; :func:`read_state`, :func:`archive_stubs` and
:func:`integrity_problems` on copies nobody writes, read immutable so they neither lock
nor add a byte. :func:`store_state`, :func:`journal_rows`, :func:`last_journal_id` and
:func:`delete_journal` work on a connection the caller holds (the store's own, too).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippograph.graph.journal import JournalEntry

__all__ = [
    "StoreState",
    "archive_stubs",
    "delete_journal",
    "integrity_problems",
    "journal_rows",
    "last_journal_id",
    "prune_journal",
    "read_journal",
    "read_state",
    "snapshot",
    "store_state",
]


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


def _connect_file(path: Path) -> sqlite3.Connection:
    """A plain connection of our own (not a store: the server may hold that)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


def last_journal_id(db: sqlite3.Connection) -> int:
    """The last journal id ever assigned in the database (0: none)."""
    # sqlite_sequence keeps the last id even after the rows are pruned: ids never repeat.
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'journal'").fetchone()
    return int(row[0]) if row else 0


def journal_rows(db: sqlite3.Connection, after: int, chunk: int = 256) -> Iterator[JournalEntry]:
    """The journal entries with id > ``after``, in id order, read by chunks."""
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


def delete_journal(db: sqlite3.Connection, through: int) -> int:
    """Delete the journal rows with id <= ``through``; the number deleted."""
    return db.execute("DELETE FROM journal WHERE id <= ?", (int(through),)).rowcount


def store_state(db: sqlite3.Connection) -> StoreState:
    """The :class:`StoreState` as ``db`` (in one read transaction, if it must be
    consistent) sees it; a database of an older schema reads with defaults."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
    generations: dict[str, int] = {}
    if "namespaces" in tables:
        rows = db.execute("SELECT namespace, generation FROM namespaces ORDER BY namespace")
        generations = {r[0]: int(r[1]) for r in rows}
    has_journal = "journal" in tables
    last, last_at, first = 0, None, None
    if has_journal:
        last = last_journal_id(db)
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
            return store_state(dst)
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
        state = store_state(db)
        entries = journal_rows(db, after) if state.has_journal else iter(())
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
            deleted = delete_journal(db, through)
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
        return store_state(db)


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
