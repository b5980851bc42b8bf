"""The backup directory's format, shared by taking backups (:mod:`hippograph.api.backup`)
and checking and restoring them (:mod:`hippograph.api.restore`): its names, the manifest,
durable file copies and digests, where archive files are kept, and the journal files of
incremental backups (gzip JSON lines: a header, one line per entry with its payload in
base64, an end line with the count)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hippograph.files import fsync_dir
from hippograph.graph.journal import JournalEntry
from hippograph.graph.model import HippographError, Memory
from hippograph.graph.sqlite_files import archive_stubs
from hippograph.graph.sqlite_schema import namespace_token
from hippograph.lifecycle.archive import archive_ref

__all__ = [
    "DATABASE",
    "DERIVED_NOTE",
    "FORMAT",
    "JOURNAL_FILE",
    "JOURNAL_FORMAT",
    "LOCK",
    "MANIFEST",
    "VERSION",
    "BackupCorrupt",
    "BackupRefused",
    "archive_index",
    "copy_file",
    "digest",
    "fsync_tree",
    "iso_time",
    "journal_line",
    "last_id",
    "load_manifest",
    "micros",
    "needed_archive",
    "read_journal_file",
    "write_manifest",
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


def copy_file(source: Path, target: Path) -> dict[str, Any]:
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


def digest(path: Path) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "size": size}


def fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(directory) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(directory))


def iso_time(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None


def micros(moment: datetime | float) -> int:
    """A time in whole microseconds since the epoch, rounded as ``datetime`` rounds:
    restores compare times at the precision an ISO-8601 time carries, so the time a
    backup prints for an entry, given back as ``--at``, includes that entry."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


# -- the manifest --------------------------------------------------------------------------


def load_manifest(dest: Path) -> dict[str, Any]:
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


def write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    tmp = dest / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=1, sort_keys=True)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest / MANIFEST)
    fsync_dir(dest)


def last_id(entry: dict[str, Any]) -> int:
    journal = entry["journal"]
    return int(journal["through"] if entry["kind"] == "full" else journal["last"])


def needed_archive(database: Path) -> set[tuple[str, str, str]]:
    """(namespace directory, file, sha256) of every archive file a stub of the
    database names."""
    needed = set()
    for namespace, memory_id, metadata in archive_stubs(database):
        ref = archive_ref(Memory(id=memory_id, namespace=namespace, content="", metadata=metadata))
        if ref is not None:
            needed.add((namespace_token(namespace), ref.file, ref.sha256))
    return needed


def archive_index(dest: Path, manifest: dict[str, Any]) -> dict[tuple[str, str, str], Path]:
    index: dict[tuple[str, str, str], Path] = {}
    for entry in manifest["backups"]:
        for relative, record in entry["files"].items():
            if record.get("role") == "archive":
                key = (record["dir"], record["name"], record["sha256"])
                index.setdefault(key, dest / entry["dir"] / relative)
    return index


# -- journal files -------------------------------------------------------------------------


def journal_line(entry: JournalEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "namespace": entry.namespace,
        "generation": entry.generation,
        "at": entry.at,
        "op": entry.op,
        "payload": base64.b64encode(entry.payload).decode("ascii"),
    }


def read_journal_file(path: Path, *, store_id: str | None = None) -> Iterator[JournalEntry]:
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
