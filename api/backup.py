"""Backups of a SQLite data directory taken beside a live server. They are checked and
restored by :mod:`hippograph.api.restore`; the directory's format is in
:mod:`hippograph.api.backup_files`.

A backup directory (``DEST``) holds one history: a *full* backup, then any number of
*incremental* ones, described by ``DEST/manifest.json``::

    DEST/manifest.json              the history: every backup, every file's sha256 and size
    DEST/00000-full/hippograph.db   the store, copied with SQLite's online backup API
    DEST/00000-full/derived/...     FAISS indexes and views (optional, see below)
    DEST/00000-full/archive/...     the lifecycle archive files
    DEST/00001-incremental/journal.jsonl.gz   journal entries after the previous backup
    DEST/00001-incremental/archive/...        archive files new since then

How it stays consistent while the server writes:

- The database copy is one SQLite snapshot (``hippograph.graph.sqlite_files.snapshot``): every
  transaction committed before it, none after. The server keeps reading and writing.
- The derived files are copied *before* the snapshot, so they never reflect a write the
  copy lacks; they are tagged with the generation they reflect and the service catches
  them up (or rebuilds them) from the store, which is why they are optional.
- Archive files are written before the stubs that name them commit and deleted after
  the stubs are gone, so they are copied both before and after the snapshot: every file
  a stub of the copy names was there at one of the two moments.
- An incremental backup is the store's journal entries after the last one saved
  (``hippograph.graph.sqlite_files.read_journal``): ids are assigned in commit order without gaps,
  and each entry records the namespace generation it produced, so a gap (writes made
  with journaling off, entries pruned too early) is found and refused, never skipped.
- ``manifest.json`` is replaced atomically after a backup's files are durable: a
  backup that dies half-way leaves only a ``.partial`` directory the next one removes.
  ``DEST/.lock`` keeps two backups from writing into one history at once.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hippograph.api.backup_files import (
    DATABASE,
    DERIVED_NOTE,
    FORMAT,
    JOURNAL_FILE,
    JOURNAL_FORMAT,
    LOCK,
    MANIFEST,
    VERSION,
    BackupRefused,
    archive_index,
    copy_file,
    digest,
    fsync_tree,
    iso_time,
    journal_line,
    last_id,
    load_manifest,
    needed_archive,
    write_manifest,
)
from hippograph.files import fsync_dir
from hippograph.graph.journal import JournalEntry
from hippograph.graph.sqlite_files import StoreState, prune_journal, read_journal, snapshot
from hippograph.lifecycle.archive import SUFFIX as ARCHIVE_SUFFIX

__all__ = ["full_backup", "incremental_backup"]


# -- what a backup copies ------------------------------------------------------------------


@contextmanager
def _writing(dest: Path) -> Iterator[None]:
    """Hold ``DEST/.lock`` while a backup writes there: two backups into one history
    at once (an overlapping cron run) would each remove the other's partial files."""
    fd = os.open(dest / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupRefused(f"another backup is writing to {dest}; try again later") from None
        yield
    finally:
        os.close(fd)


def _temporary(name: str) -> bool:
    """Files the service writes and renames (``.name.tmp``): never part of a backup."""
    return name.startswith(".") or name.endswith(".tmp")


def _derived_files(data_dir: Path) -> list[Path]:
    directory = data_dir / "derived"
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not _temporary(p.name))


def _archive_files(data_dir: Path) -> list[tuple[str, str, Path]]:
    """(namespace directory, file name, path) of every archive file."""
    found = []
    root = data_dir / "archive"
    if root.is_dir():
        for directory in sorted(p for p in root.iterdir() if p.is_dir()):
            for path in sorted(directory.iterdir()):
                archived = path.is_file() and path.name.endswith(ARCHIVE_SUFFIX)
                if archived and not _temporary(path.name):
                    found.append((directory.name, path.name, path))
    return found


class _ArchiveCopier:
    """Copies archive files into a backup once per content: ``known`` holds the
    (namespace directory, name, sha256) already in the history. Archive files are
    replaced by rename, never rewritten in place, so a file whose inode, size and
    mtime were seen is the version seen."""

    def __init__(self, target: Path, known: set[tuple[str, str, str]]) -> None:
        self.target = target
        self.known = set(known)
        self.files: dict[str, dict[str, Any]] = {}
        self._seen: set[tuple[int, int, int]] = set()

    def copy_from(self, data_dir: Path) -> None:
        for token, name, path in _archive_files(data_dir):
            try:
                stat = path.stat()
                version = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
                if version in self._seen:
                    continue
                self._seen.add(version)
                if (token, name, digest(path)["sha256"]) in self.known:
                    continue
                relative = f"archive/{token}/{name}"
                if relative in self.files:  # another version of the same file name
                    relative = f"archive/{token}/{name}.{len(self.files)}"
                record = copy_file(path, self.target / relative)
            except FileNotFoundError:  # removed since listed (a rehydration)
                continue
            self.known.add((token, name, record["sha256"]))
            self.files[relative] = {**record, "role": "archive", "dir": token, "name": name}


def _database(data_dir: Path) -> Path:
    path = data_dir / DATABASE
    if not path.is_file():
        raise BackupRefused(f"no database at {path}: nothing to back up")
    return path


def _state_record(state: StoreState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in ("store_id", "schema_version", "generations")}


# -- backup --------------------------------------------------------------------------------


def full_backup(data_dir: Path, dest: Path, *, prune: bool = False) -> dict[str, Any]:
    """Take a full backup of ``data_dir`` into the empty (or new) directory ``dest``
    while a server may keep using it; the manifest entry written. With ``prune``, the
    journal entries the backup covers are then deleted from the live store."""
    data_dir, dest = Path(data_dir), Path(dest)
    database = _database(data_dir)
    # What a backup that died before its manifest leaves behind does not count.
    leftover = {LOCK, "00000-full.partial"}
    if dest.exists() and (not dest.is_dir() or any(p.name not in leftover for p in dest.iterdir())):
        raise BackupRefused(
            f"{dest} is not empty: a full backup starts a new history in an empty "
            "directory (use --incremental to extend the history it holds)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    name = "00000-full"
    staging = dest / f"{name}.partial"
    with _writing(dest):
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
            entry, state = _full_into(data_dir, database, dest, name, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        manifest = {"format": FORMAT, "version": VERSION, "store_id": state.store_id}
        manifest["backups"] = [entry]
        write_manifest(dest, manifest)
    if prune and state.journal_last:
        entry["pruned"] = prune_journal(database, through=state.journal_last)
    return entry


def _full_into(
    data_dir: Path, database: Path, dest: Path, name: str, staging: Path
) -> tuple[dict[str, Any], StoreState]:
    started = time.time()
    files: dict[str, dict[str, Any]] = {}
    # Derived first: they may lag the snapshot (caught up on open), never lead it.
    for path in _derived_files(data_dir):
        try:
            files[f"derived/{path.name}"] = {
                **copy_file(path, staging / "derived" / path.name),
                "role": "derived",
            }
        except FileNotFoundError:
            continue
    archive = _ArchiveCopier(staging, set())
    archive.copy_from(data_dir)
    snapshot_at = time.time()
    state = snapshot(database, staging / DATABASE)
    archive.copy_from(data_dir)
    files[DATABASE] = {**digest(staging / DATABASE), "role": "database"}
    files.update(archive.files)
    missing = sorted(needed_archive(staging / DATABASE) - archive.known)
    # The backup's point in time: its last journal entry, when the journal holds every
    # write; else (journaling off, or ever off) the moment of the snapshot.
    point = state.journal_last_at
    if point is None or not state.journaling or state.journal_breaks:
        point = snapshot_at if any(state.generations.values()) else None
    entry = {
        "kind": "full",
        "dir": name,
        "taken_at": iso_time(started),
        "finished_at": iso_time(time.time()),
        **_state_record(state),
        "point": point,
        "point_iso": iso_time(point),
        "journal": {
            "through": state.journal_last,
            "at": state.journal_last_at,
            "journaling": state.journaling,
            "breaks": state.journal_breaks,
        },
        "derived_optional": DERIVED_NOTE,
        "missing_archive": [list(m) for m in missing],
        "files": files,
    }
    fsync_tree(staging)
    staging.rename(dest / name)
    fsync_dir(dest)
    return entry, state


def incremental_backup(data_dir: Path, dest: Path) -> dict[str, Any] | None:
    """Add to the history in ``dest`` the journal entries written since its last
    backup, and the archive files new since then; the manifest entry written, or
    None when nothing was written since."""
    data_dir, dest = Path(data_dir), Path(dest)
    database = _database(data_dir)
    if not (dest / MANIFEST).is_file():
        raise BackupRefused(
            f"{dest} holds no full backup to extend: take one first (hippograph backup {dest})"
        )
    with _writing(dest):
        return _incremental_into(data_dir, database, dest)


def _incremental_into(data_dir: Path, database: Path, dest: Path) -> dict[str, Any] | None:
    manifest = load_manifest(dest)
    backups = manifest["backups"]
    previous = backups[-1]
    after = last_id(previous)
    name = f"{len(backups):05d}-incremental"
    for leftover in dest.glob("*.partial"):
        shutil.rmtree(leftover)
    staging = dest / f"{name}.partial"
    staging.mkdir()
    try:
        known = set(archive_index(dest, manifest))
        archive = _ArchiveCopier(staging, known)
        archive.copy_from(data_dir)
        started = time.time()
        with read_journal(database, after=after) as (state, entries):
            _check_follows(manifest, previous, state, after)
            if state.journal_last == after:
                shutil.rmtree(staging)
                return None
            summary = _write_journal(staging / JOURNAL_FILE, manifest, previous, state, entries)
        archive.copy_from(data_dir)
        files = {JOURNAL_FILE: {**digest(staging / JOURNAL_FILE), "role": "journal"}}
        files.update(archive.files)
        entry = {
            "kind": "incremental",
            "dir": name,
            "taken_at": iso_time(started),
            "finished_at": iso_time(time.time()),
            **_state_record(state),
            "point": summary["last_at"],
            "point_iso": iso_time(summary["last_at"]),
            "journal": {**summary, "breaks": state.journal_breaks},
            "files": files,
        }
        fsync_tree(staging)
        staging.rename(dest / name)
        fsync_dir(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["backups"] = [*backups, entry]
    write_manifest(dest, manifest)
    return entry


def _check_follows(
    manifest: dict[str, Any], previous: dict[str, Any], state: StoreState, after: int
) -> None:
    """Refuse unless the live store's journal continues the history in the manifest."""
    full = "take a full backup into a new directory"
    if state.store_id != manifest["store_id"]:
        raise BackupRefused(
            f"the store (id {state.store_id}) is not the one this history backs up "
            f"(id {manifest['store_id']}): it was replaced or restored since; {full}"
        )
    if not state.has_journal or not state.journaling:
        raise BackupRefused(
            "journaling is off (HIPPOGRAPH_JOURNAL=0), so an incremental backup cannot see "
            f"the writes; turn it on and {full}"
        )
    if state.journal_breaks != previous["journal"]["breaks"]:
        raise BackupRefused(
            "the store was opened with journaling off since the last backup, so writes may be "
            f"missing from its journal; {full}"
        )
    if state.journal_last < after:
        raise BackupRefused(
            f"the store's journal ends at {state.journal_last}, before this history's last "
            f"entry {after}; {full}"
        )
    first = state.journal_first
    if state.journal_last > after and (first is None or first > after + 1):
        pruned = f"{after + 1}..{(first or state.journal_last + 1) - 1}"
        raise BackupRefused(
            f"journal entries {pruned} were pruned before this history saved them; {full}"
        )


def _write_journal(
    path: Path,
    manifest: dict[str, Any],
    previous: dict[str, Any],
    state: StoreState,
    entries: Iterable[JournalEntry],
) -> dict[str, Any]:
    """Write entries to a gzip JSON-lines file (a header line, one line per entry with
    its payload in base64, an end line with the count), checking on the way that they
    follow the history: ids without gaps, every namespace's generation advancing by
    one per entry and ending at the store's. Raises ``BackupRefused`` otherwise."""
    after = last_id(previous)
    generations = dict(previous["generations"])
    first_at = last_at = None
    count, last = 0, after
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        header = {"format": JOURNAL_FORMAT, "version": VERSION, "store_id": manifest["store_id"]}
        out.write(json.dumps({**header, "after": after}) + "\n")
        for entry in entries:
            if entry.id != last + 1:
                raise BackupRefused(f"the journal skips from entry {last} to {entry.id}")
            _advance(generations, entry)
            out.write(json.dumps(journal_line(entry), separators=(",", ":")) + "\n")
            first_at = entry.at if first_at is None else first_at
            last_at, last, count = entry.at, entry.id, count + 1
        out.write(json.dumps({"end": True, "entries": count, "last": last}) + "\n")
    if last != state.journal_last:
        raise BackupRefused(f"the journal ends at {last}, the store says {state.journal_last}")
    live = {ns: g for ns, g in state.generations.items() if g}
    if {ns: g for ns, g in generations.items() if g} != live:
        raise BackupRefused(
            "the journal does not account for every write since the last backup (namespace "
            "generations differ: writes were made without journaling); take a full backup "
            "into a new directory"
        )
    return {
        "first": after + 1,
        "last": last,
        "entries": count,
        "first_at": first_at,
        "last_at": last_at,
    }


def _advance(generations: dict[str, int], entry: JournalEntry) -> None:
    """Every operation but a lifecycle run record bumps its namespace's generation by
    exactly one; anything else means a write is missing from the journal."""
    held = generations.get(entry.namespace, 0)
    expected = held if entry.op == "run" else held + 1
    if entry.generation != expected:
        raise BackupRefused(
            f"journal entry {entry.id} ({entry.op} in {entry.namespace!r}) has generation "
            f"{entry.generation}, {expected} expected: writes were made without journaling; "
            "take a full backup into a new directory"
        )
    generations[entry.namespace] = entry.generation
