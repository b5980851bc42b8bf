"""Checking a backup history without restoring it (:func:`verify`), and restoring it
into an empty data directory, to its end or to an earlier point in time
(:func:`restore`).

Restoring copies the full backup's database into an empty directory and replays the
incrementals' entries in order through the store's own write code, stopping after the
last entry at or before the requested time (compared to the microsecond, the precision
of the ISO-8601 times given and printed). Every entry's time is read just before its
commit, so every write acknowledged at or before that time is restored and none that
began after it; a write in flight at that very moment may land on either side.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hippograph.api import backup_files
from hippograph.api.backup_files import DATABASE, JOURNAL_FILE, BackupCorrupt, BackupRefused
from hippograph.api.settings import LOCK_FILE, lock_data_dir
from hippograph.graph.journal import JournalEntry, JournalMismatch
from hippograph.graph.sqlite_files import integrity_problems, read_state
from hippograph.graph.sqlite_store import SQLiteStore

__all__ = ["RestoreReport", "VerifyReport", "restore", "verify"]


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
        record = asdict(self)
        record["problems"] = self.problems + record.pop("derived_problems")
        return {"ok": self.ok, **record}


def verify(dest: Path) -> VerifyReport:
    """Check a backup without restoring it: every file's size and sha256 against the
    manifest; the database opens, passes ``PRAGMA integrity_check`` and matches the
    manifest; every journal file decompresses and parses, every entry's payload
    decodes, and ids run without gaps from the full backup to the last incremental."""
    dest = Path(dest)
    report = VerifyReport()
    try:
        manifest = backup_files.load_manifest(dest)
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
            last = backup_files.last_id(entry)
            report.since = entry.get("point_iso")
        else:
            report.problems.extend(_journal_problems(where / JOURNAL_FILE, entry, manifest, last))
            report.entries += int(entry["journal"]["entries"])
            last = backup_files.last_id(entry)
        report.until = entry.get("point_iso") or report.until
    return report


def _file_problem(path: Path, record: dict[str, Any]) -> str | None:
    if not path.is_file():
        return "missing"
    found = backup_files.digest(path)
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
        for item in backup_files.read_journal_file(path, store_id=manifest["store_id"]):
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
    manifest = backup_files.load_manifest(src)
    checked = verify(src)
    if checked.problems:
        raise BackupCorrupt(
            f"the backup in {src} fails its check ({checked.problems[0]}"
            + (f", and {len(checked.problems) - 1} more" if len(checked.problems) > 1 else "")
            + "); see hippograph backup --verify",
            checked.problems,
        )
    full, *incrementals = manifest["backups"]
    until = backup_files.micros(at) if at is not None else None
    point = full.get("point")
    if until is not None and point is not None and until < backup_files.micros(point):
        raise BackupRefused(
            f"--at {at.isoformat() if at else ''} is before the full backup's point in time "
            f"({backup_files.iso_time(point)}): the backup holds no earlier state"
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
    backup_files.copy_file(src / full["dir"] / DATABASE, database)
    report = RestoreReport(
        data_dir=str(data_dir),
        restored_to=full.get("point_iso"),
        requested=backup_files.iso_time(until / 1e6) if until is not None else None,
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
                    if until is not None and backup_files.micros(item.at) > until:
                        stopped = True
                        return
                    report.restored_to = backup_files.iso_time(item.at)
                    yield item

            entries = backup_files.read_journal_file(src / entry["dir"] / JOURNAL_FILE)
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
    backup_files.fsync_tree(data_dir)
    if report.entries == 0 and not checked.derived_problems:
        for relative, record in full["files"].items():
            if record.get("role") == "derived":
                backup_files.copy_file(src / full["dir"] / relative, data_dir / relative)
                report.derived_files += 1
    index = backup_files.archive_index(src, manifest)
    for token, name, sha256 in sorted(backup_files.needed_archive(database)):
        source = index.get((token, name, sha256))
        if source is None:
            report.missing_archive.append(f"archive/{token}/{name}")
            continue
        backup_files.copy_file(source, data_dir / "archive" / token / name)
        report.archive_files += 1
    backup_files.fsync_tree(data_dir)
    return report
