"""Backups of a SQLite data directory taken beside a live server, checked without
restoring, and restored to the latest or an earlier point in time.

A backup directory (``DEST``) holds one history: a *full* backup, then any number of
*incremental* ones, described by ``DEST/manifest.json``::

    DEST/manifest.json              the history: every backup, every file's sha256 and size
    DEST/00000-full/hippograph.db   the store, copied with SQLite's online backup API
    DEST/00000-full/derived/...     FAISS indexes and views (optional, see below)
    DEST/00000-full/archive/...     the lifecycle archive files
    DEST/00001-incremental/journal.jsonl.gz   journal entries after the previous backup
    DEST/00001-incremental/archive/...        archive files new since then

How it stays consistent while the server writes:

- The database copy is one SQLite snapshot (``hippograph.graph.sqlite_store.snapshot``): every
  transaction committed before it, none after. The server keeps reading and writing.
- The derived files are copied *before* the snapshot, so they never reflect a write the
  copy lacks; they are tagged with the generation they reflect and the service catches
  them up (or rebuilds them) from the store, which is why they are optional.
- Archive files are written before the stubs that name them commit and deleted after
  the stubs are gone, so they are copied both before and after the snapshot: every file
  a stub of the copy names was there at one of the two moments.
- An incremental backup is the store's journal entries after the last one saved
  (``hippograph.graph.sqlite_store.read_journal``): ids are assigned in commit order without gaps,
  and each entry records the namespace generation it produced, so a gap (writes made
  with journaling off, entries pruned too early) is found and refused, never skipped.
- ``manifest.json`` is replaced atomically after a backup's files are durable: a
  backup that dies half-way leaves only a ``.partial`` directory the next one removes.
  ``DEST/.lock`` keeps two backups from writing into one history at once.

Restoring copies the full backup's database into an empty directory and replays the
incrementals' entries in order through the store's own write code, stopping after the
last entry at or before the requested time (compared to the microsecond, the precision
of the ISO-8601 times given and printed). Every entry's time is read just before its
commit, so every write acknowledged at or before that time is restored and none that
began after it; a write in flight at that very moment may land on either side.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hippograph.api.settings import LOCK_FILE, lock_data_dir
from hippograph.graph.model import HippographError, Memory
from hippograph.graph.sqlite_store import (
    JournalEntry,
    JournalMismatch,
    SQLiteStore,
    StoreState,
    _namespace_token,
    archive_stubs,
    integrity_problems,
    prune_journal,
    read_journal,
    read_state,
    snapshot,
)
from hippograph.lifecycle.archive import SUFFIX as ARCHIVE_SUFFIX
from hippograph.lifecycle.archive import archive_ref

__all__ = [
    "BackupCorrupt",
    "BackupRefused",
    "RestoreReport",
    "VerifyReport",
    "full_backup",
    "incremental_backup",
    "restore",
    "verify",
]

FORMAT = "hippograph-backup"
JOURNAL_FORMAT = "hippograph-journal"
VERSION = 1
MANIFEST = "manifest.json"
LOCK = ".lock"
DATABASE = "hippograph.db"
JOURNAL_FILE = "journal.jsonl.gz"
DERIVED_NOTE = (
    "derived files (FAISS indexes and namespace views) are optional: each is tagged with "
    "the store generation it reflects and is caught up or rebuilt from the store when "
    "missing or stale; a restore copies them only when it ends exactly at this backup"
)
_CHUNK = 1 << 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BackupRefused(HippographError):
    """The backup or restore cannot be done as asked (a non-empty target, a history
    that does not follow, a time before the full backup); nothing was changed."""

    code = "BAD_INPUT"


class BackupCorrupt(HippographError):
    """The backup fails its check; ``problems`` says what is wrong."""

    code = "BACKUP_CORRUPT"

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


# -- files ---------------------------------------------------------------------------------


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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path) -> dict[str, Any]:
    """Copy one file durably; the sha256 and size of the bytes written (read once, so
    a file replaced meanwhile is copied and hashed as one version)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return {"sha256": digest.hexdigest(), "size": size}


def _digest(path: Path) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(directory) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(directory))


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


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None


def _micros(moment: datetime | float) -> int:
    """A time in whole microseconds since the epoch, rounded as ``datetime`` rounds:
    restores compare times at the precision an ISO-8601 time carries, so the time a
    backup prints for an entry, given back as ``--at``, includes that entry."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


# -- the manifest --------------------------------------------------------------------------


def _load_manifest(dest: Path) -> dict[str, Any]:
    path = dest / MANIFEST
    if not path.is_file():
        raise BackupRefused(f"{dest} holds no backup (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupCorrupt(f"{path}: unreadable ({exc})", [f"{MANIFEST}: unreadable"]) from None
    problems = _manifest_problems(manifest)
    if problems:
        raise BackupCorrupt(f"{path}: {problems[0]}", problems)
    return manifest


def _manifest_problems(manifest: Any) -> list[str]:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [f"{MANIFEST}: not a hippograph backup manifest"]
    if manifest.get("version") != VERSION:
        return [f"{MANIFEST}: version {manifest.get('version')!r} is not {VERSION}"]
    backups = manifest.get("backups")
    if not isinstance(backups, list) or not backups:
        return [f"{MANIFEST}: lists no backups"]
    problems = []
    for i, entry in enumerate(backups):
        kind = "full" if i == 0 else "incremental"
        if not isinstance(entry, dict) or entry.get("kind") != kind:
            problems.append(f"{MANIFEST}: backup {i} must be {kind}")
        elif not isinstance(entry.get("files"), dict) or not isinstance(entry.get("dir"), str):
            problems.append(f"{MANIFEST}: backup {i} lacks its files")
        elif Path(entry["dir"]).name != entry["dir"] or entry["dir"] in {"", ".", ".."}:
            problems.append(f"{MANIFEST}: backup {i} names a directory outside the backup")
        elif any(not _inside(name) for name in entry["files"]):
            problems.append(f"{MANIFEST}: backup {i} names a file outside its directory")
    return problems


def _inside(relative: str) -> bool:
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    tmp = dest / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest / MANIFEST)
    _fsync_dir(dest)


def _last_id(entry: dict[str, Any]) -> int:
    journal = entry["journal"]
    return int(journal["through"] if entry["kind"] == "full" else journal["last"])


# -- archive files -------------------------------------------------------------------------


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
                if (token, name, _digest(path)["sha256"]) in self.known:
                    continue
                relative = f"archive/{token}/{name}"
                if relative in self.files:  # another version of the same file name
                    relative = f"archive/{token}/{name}.{len(self.files)}"
                record = _copy(path, self.target / relative)
            except FileNotFoundError:  # removed since listed (a rehydration)
                continue
            self.known.add((token, name, record["sha256"]))
            self.files[relative] = {**record, "role": "archive", "dir": token, "name": name}


def _needed_archive(database: Path) -> set[tuple[str, str, str]]:
    """(namespace directory, file, sha256) of every archive file a stub of the
    database names."""
    needed = set()
    for namespace, memory_id, metadata in archive_stubs(database):
        ref = archive_ref(Memory(id=memory_id, namespace=namespace, content="", metadata=metadata))
        if ref is not None:
            needed.add((_namespace_token(namespace), ref.file, ref.sha256))
    return needed


def _archive_index(dest: Path, manifest: dict[str, Any]) -> dict[tuple[str, str, str], Path]:
    index: dict[tuple[str, str, str], Path] = {}
    for entry in manifest["backups"]:
        for relative, record in entry["files"].items():
            if record.get("role") == "archive":
                key = (record["dir"], record["name"], record["sha256"])
                index.setdefault(key, dest / entry["dir"] / relative)
    return index


# -- backup --------------------------------------------------------------------------------


def _database(data_dir: Path) -> Path:
    path = data_dir / DATABASE
    if not path.is_file():
        raise BackupRefused(f"no database at {path}: nothing to back up")
    return path


def _state_record(state: StoreState) -> dict[str, Any]:
    return {
        "store_id": state.store_id,
        "schema_version": state.schema_version,
        "generations": state.generations,
    }


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
        _write_manifest(dest, manifest)
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
                **_copy(path, staging / "derived" / path.name),
                "role": "derived",
            }
        except FileNotFoundError:
            continue
    archive = _ArchiveCopier(staging, set())
    archive.copy_from(data_dir)
    snapshot_at = time.time()
    state = snapshot(database, staging / DATABASE)
    archive.copy_from(data_dir)
    files[DATABASE] = {**_digest(staging / DATABASE), "role": "database"}
    files.update(archive.files)
    missing = sorted(_needed_archive(staging / DATABASE) - archive.known)
    # The backup's point in time: its last journal entry, when the journal holds every
    # write; else (journaling off, or ever off) the moment of the snapshot.
    point = state.journal_last_at
    if point is None or not state.journaling or state.journal_breaks:
        point = snapshot_at if any(state.generations.values()) else None
    entry = {
        "kind": "full",
        "dir": name,
        "taken_at": _iso(started),
        "finished_at": _iso(time.time()),
        **_state_record(state),
        "point": point,
        "point_iso": _iso(point),
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
    _fsync_tree(staging)
    staging.rename(dest / name)
    _fsync_dir(dest)
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
    manifest = _load_manifest(dest)
    backups = manifest["backups"]
    previous = backups[-1]
    after = _last_id(previous)
    name = f"{len(backups):05d}-incremental"
    for leftover in dest.glob("*.partial"):
        shutil.rmtree(leftover)
    staging = dest / f"{name}.partial"
    staging.mkdir()
    try:
        known = set(_archive_index(dest, manifest))
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
        files = {JOURNAL_FILE: {**_digest(staging / JOURNAL_FILE), "role": "journal"}}
        files.update(archive.files)
        entry = {
            "kind": "incremental",
            "dir": name,
            "taken_at": _iso(started),
            "finished_at": _iso(time.time()),
            **_state_record(state),
            "point": summary["last_at"],
            "point_iso": _iso(summary["last_at"]),
            "journal": {**summary, "breaks": state.journal_breaks},
            "files": files,
        }
        _fsync_tree(staging)
        staging.rename(dest / name)
        _fsync_dir(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    manifest["backups"] = [*backups, entry]
    _write_manifest(dest, manifest)
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
    after = _last_id(previous)
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
            out.write(json.dumps(_entry_line(entry), separators=(",", ":")) + "\n")
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


def _entry_line(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "namespace": entry.namespace,
        "generation": entry.generation,
        "at": entry.at,
        "op": entry.op,
        "payload": base64.b64encode(entry.payload).decode("ascii"),
    }


def _read_journal_file(path: Path, *, store_id: str | None = None) -> Iterator[JournalEntry]:
    """Entries of a journal file; ``ValueError`` naming the line when it is damaged
    (including a missing end line: a truncated file)."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        header = json.loads(next(lines, "null"))
        if not isinstance(header, dict) or header.get("format") != JOURNAL_FORMAT:
            raise ValueError("line 1: not a hippograph journal file")
        if store_id is not None and header.get("store_id") != store_id:
            raise ValueError("line 1: the journal belongs to another store")
        for n, text in enumerate(lines, start=2):
            try:
                obj = json.loads(text)
                if obj.get("end"):
                    if obj.get("entries") != n - 2:
                        raise ValueError(f"says {obj.get('entries')} entries, holds {n - 2}")
                    return
                entry = JournalEntry(
                    int(obj["id"]),
                    str(obj["namespace"]),
                    int(obj["generation"]),
                    float(obj["at"]),
                    str(obj["op"]),
                    base64.b64decode(obj["payload"], validate=True),
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"line {n}: {exc}") from None
            yield entry
        raise ValueError("ends without its end line (truncated)")


# -- verify --------------------------------------------------------------------------------


@dataclass(slots=True)
class VerifyReport:
    """What checking a backup found."""

    backups: int = 0
    files: int = 0
    bytes: int = 0
    entries: int = 0
    since: str | None = None
    until: str | None = None
    problems: list[str] = field(default_factory=list)
    # problems that only cost the derived files (a restore rebuilds them)
    derived_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.derived_problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "backups": self.backups,
            "files": self.files,
            "bytes": self.bytes,
            "entries": self.entries,
            "since": self.since,
            "until": self.until,
            "problems": self.problems + self.derived_problems,
        }


def verify(dest: Path) -> VerifyReport:
    """Check a backup without restoring it: every file's size and sha256 against the
    manifest; the database opens, passes ``PRAGMA integrity_check`` and matches the
    manifest; every journal file decompresses and parses, every entry's payload
    decodes, and ids run without gaps from the full backup to the last incremental."""
    dest = Path(dest)
    report = VerifyReport()
    try:
        manifest = _load_manifest(dest)
    except (BackupRefused, BackupCorrupt) as exc:
        report.problems.extend(getattr(exc, "problems", None) or [str(exc)])
        return report
    report.backups = len(manifest["backups"])
    last = 0
    for entry in manifest["backups"]:
        where = dest / entry["dir"]
        for relative, record in sorted(entry["files"].items()):
            problem = _file_problem(where / relative, record)
            if problem:
                target = (
                    report.derived_problems if record.get("role") == "derived" else report.problems
                )
                target.append(f"{entry['dir']}/{relative}: {problem}")
            else:
                report.files += 1
                report.bytes += int(record["size"])
        if entry["kind"] == "full":
            report.problems.extend(_database_problems(where / DATABASE, entry))
            last = _last_id(entry)
            report.since = entry.get("point_iso")
        else:
            report.problems.extend(_journal_problems(where / JOURNAL_FILE, entry, manifest, last))
            report.entries += int(entry["journal"]["entries"])
            last = _last_id(entry)
        report.until = entry.get("point_iso") or report.until
    return report


def _file_problem(path: Path, record: dict[str, Any]) -> str | None:
    if not path.is_file():
        return "missing"
    found = _digest(path)
    if found["size"] != record.get("size"):
        return f"size {found['size']}, the manifest says {record.get('size')}"
    if found["sha256"] != record.get("sha256"):
        return (
            f"sha256 {found['sha256'][:12]}…, the manifest says {str(record.get('sha256'))[:12]}…"
        )
    return None


def _database_problems(path: Path, entry: dict[str, Any]) -> list[str]:
    where = f"{entry['dir']}/{DATABASE}"
    if not path.is_file():
        return []  # reported as missing already
    problems = [f"{where}: {p}" for p in integrity_problems(path)]
    if problems:
        return problems
    state = read_state(path)
    if state.journal_last != entry["journal"]["through"]:
        problems.append(
            f"{where}: journal ends at {state.journal_last}, manifest says "
            f"{entry['journal']['through']}"
        )
    if state.generations != entry["generations"]:
        problems.append(f"{where}: namespace generations differ from the manifest's")
    return problems


def _journal_problems(
    path: Path, entry: dict[str, Any], manifest: dict[str, Any], after: int
) -> list[str]:
    where = f"{entry['dir']}/{JOURNAL_FILE}"
    journal = entry["journal"]
    if not path.is_file():
        return []  # reported as missing already
    if journal["first"] != after + 1:
        return [f"{where}: starts at entry {journal['first']}, the history before ends at {after}"]
    expected, previous_at, count = after + 1, float("-inf"), 0
    try:
        for item in _read_journal_file(path, store_id=manifest["store_id"]):
            if item.id != expected:
                return [f"{where}: entry {item.id} where {expected} should be (ids not contiguous)"]
            if item.at < previous_at:
                return [f"{where}: entry {item.id} is timed before the one before it"]
            item.operation()  # decodes the payload, raises ValueError naming the entry
            expected, previous_at, count = expected + 1, item.at, count + 1
    except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
        return [f"{where}: {exc}"]
    if count != journal["entries"] or expected - 1 != journal["last"]:
        return [
            f"{where}: holds entries {after + 1}..{expected - 1}, the manifest says "
            f"{journal['first']}..{journal['last']}"
        ]
    return []


# -- restore -------------------------------------------------------------------------------


@dataclass(slots=True)
class RestoreReport:
    """What a restore did."""

    data_dir: str
    restored_to: str | None  # the time of the last write restored (None: an empty store)
    requested: str | None
    history_ends: str | None
    full_backup: str
    incrementals: int = 0
    entries: int = 0
    derived_files: int = 0
    archive_files: int = 0
    missing_archive: list[str] = field(default_factory=list)
    generations: dict[str, int] = field(default_factory=dict)
    store_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def restore(src: Path, data_dir: Path, *, at: datetime | None = None) -> RestoreReport:
    """Restore the backup history in ``src`` into the empty (or new) directory
    ``data_dir``: the full backup's database, then the incrementals' journal entries
    in order, all of them or, with ``at``, those timed at or before it (every write
    acknowledged by then, none after). The result is a new store (its own id: a backup
    history of the source does not continue on it). Derived files are copied only when
    the restore ends exactly at the full backup; otherwise the service rebuilds them.
    Archive files are copied for every stub of the result."""
    src, data_dir = Path(src), Path(data_dir)
    _refuse_occupied(data_dir)
    manifest = _load_manifest(src)
    checked = verify(src)
    if checked.problems:
        raise BackupCorrupt(
            f"the backup in {src} fails its check ({checked.problems[0]}"
            + (f", and {len(checked.problems) - 1} more" if len(checked.problems) > 1 else "")
            + "); see hippograph backup --verify",
            checked.problems,
        )
    full, *incrementals = manifest["backups"]
    until = _micros(at) if at is not None else None
    point = full.get("point")
    if until is not None and point is not None and until < _micros(point):
        raise BackupRefused(
            f"--at {at.isoformat() if at else ''} is before the full backup's point in time "
            f"({_iso(point)}): the backup holds no earlier state"
        )
    created = not data_dir.exists()
    failed = False
    try:
        # the directory's lock for the whole restore: a server or import started on it
        # meanwhile is refused (DataDirInUse) instead of opening a half-restored store
        with lock_data_dir(data_dir):
            _refuse_occupied(data_dir)  # again, now that no one else can start on it
            try:
                return _restore_into(src, data_dir, manifest, full, incrementals, until, checked)
            except BaseException:
                failed = True
                for child in data_dir.iterdir():
                    if child.name == LOCK_FILE:
                        continue
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
                if created:
                    (data_dir / LOCK_FILE).unlink()  # while held: no one else has it
                raise
    finally:
        if failed and created:
            with contextlib.suppress(OSError):  # someone put something there meanwhile
                data_dir.rmdir()


def _occupied(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds anything but a (released or held) lock file."""
    return any(child.name != LOCK_FILE for child in data_dir.iterdir())


def _refuse_occupied(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or _occupied(data_dir)):
        raise BackupRefused(
            f"{data_dir} is not empty: restore only into an empty or new data directory "
            "(it never overwrites a store)"
        )


def _restore_into(
    src: Path,
    data_dir: Path,
    manifest: dict[str, Any],
    full: dict[str, Any],
    incrementals: list[dict[str, Any]],
    until: int | None,  # microseconds since the epoch
    checked: VerifyReport,
) -> RestoreReport:
    database = data_dir / DATABASE
    _copy(src / full["dir"] / DATABASE, database)
    report = RestoreReport(
        data_dir=str(data_dir),
        restored_to=full.get("point_iso"),
        requested=_iso(until / 1e6) if until is not None else None,
        history_ends=(incrementals[-1] if incrementals else full).get("point_iso"),
        full_backup=full["dir"],
    )
    store = SQLiteStore(database, synchronous="OFF")  # made durable below, at once
    try:
        for entry in incrementals:
            stopped = False

            def up_to_time(entries: Iterator[JournalEntry]) -> Iterator[JournalEntry]:
                nonlocal stopped
                for item in entries:
                    if until is not None and _micros(item.at) > until:
                        stopped = True
                        return
                    report.restored_to = _iso(item.at)
                    yield item

            entries = _read_journal_file(src / entry["dir"] / JOURNAL_FILE)
            try:
                applied = store.replay(up_to_time(entries))
            except JournalMismatch as exc:
                raise BackupCorrupt(f"{entry['dir']}: {exc}", [str(exc)]) from None
            report.entries += applied
            report.incrementals += applied > 0
            if stopped:
                break
        report.store_id = store.new_identity()
        report.generations = store.state().generations
    finally:
        store.close()
    _fsync_tree(data_dir)
    if report.entries == 0 and not checked.derived_problems:
        for relative, record in full["files"].items():
            if record.get("role") == "derived":
                _copy(src / full["dir"] / relative, data_dir / relative)
                report.derived_files += 1
    index = _archive_index(src, manifest)
    for token, name, sha256 in sorted(_needed_archive(database)):
        source = index.get((token, name, sha256))
        if source is None:
            report.missing_archive.append(f"archive/{token}/{name}")
            continue
        _copy(source, data_dir / "archive" / token / name)
        report.archive_files += 1
    _fsync_tree(data_dir)
    return report
