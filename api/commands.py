"""What each ``hippograph`` command does: turn its parsed arguments into the same
``MemoryGraph``, transfer, lifecycle and backup calls the GraphQL API makes, and print
the result (a table or text, or JSON with ``--json``).

A handler takes ``(args, settings)`` and returns the exit code; bad input found here
raises :class:`UsageError` (exit 2), the engine's errors pass through (``BadInput``:
exit 2, any other ``HippographError``: exit 1). ``hippograph.api.cli`` parses the
arguments, runs the handler and turns its errors into one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from hippograph.api.settings import Settings, hold_data_dir, open_graph
from hippograph.graph import (
    Memory,
    MemoryGraph,
    MemoryInput,
    NotFound,
    RecallContext,
    Recollection,
    transfer,
)
from hippograph.graph.model import parse_time

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_OK",
    "Command",
    "UsageError",
    "run_backup",
    "run_bench",
    "run_check",
    "run_export",
    "run_forget",
    "run_get",
    "run_import",
    "run_lifecycle",
    "run_recall",
    "run_remember",
    "run_restore",
    "run_serve",
    "run_stats",
    "run_update",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

Command = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """Bad input found by the CLI itself (arguments, files): exit 2, nothing written."""


# -- memories --------------------------------------------------------------------------


def run_remember(args: argparse.Namespace, settings: Settings) -> int:
    item = MemoryInput(
        content=args.text,
        id=args.id,
        kind=args.kind,
        session_id=args.session,
        occurred_at=args.occurred_at,
        importance=args.importance,
        supersedes=list(args.supersedes),
        force_new=args.force_new,
    )
    with open_graph(settings) as graph:
        memory = graph.remember(args.namespace, item)
    print(memory.id)
    return EXIT_OK


def run_update(args: argparse.Namespace, settings: Settings) -> int:
    metadata = None
    if args.metadata is not None:
        try:
            metadata = json.loads(args.metadata)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--metadata: not JSON ({exc.msg})") from None
    with open_graph(settings) as graph:
        memory = graph.update(
            args.namespace,
            args.id,
            content=args.content,
            metadata=metadata,
            importance=args.importance,
            kind=args.kind,
            occurred_at=args.occurred_at,
        )
    print(memory.id)
    return EXIT_OK


def run_recall(args: argparse.Namespace, settings: Settings) -> int:
    context = RecallContext(
        session_id=args.session,
        text=args.context,
        at=_time(args.at, "at"),
        entities=list(args.entity),
        since=_time(args.since, "since"),
        until=_time(args.until, "until"),
        hard_window=args.hard_window,
        as_of=_time(args.as_of, "as-of"),
    )
    with open_graph(settings) as graph:
        recall: Callable[..., list[Recollection]] = graph.recall
        if args.include_archived:
            from hippograph.lifecycle.archived_recall import recall_with_archive

            recall = partial(recall_with_archive, graph)
        found = recall(
            args.namespace,
            args.query,
            k=args.k,
            context=context,
            hops=args.hops,
            learn=not args.no_learn,
        )
    if args.json:
        _print_json([r.as_dict() for r in found])
    else:
        _print_recollections(found)
    return EXIT_OK


def run_get(args: argparse.Namespace, settings: Settings) -> int:
    with open_graph(settings) as graph:
        memory = graph.get(args.namespace, args.id)
        if memory is None:
            raise NotFound(f"no memory {args.id!r} in namespace {args.namespace!r}")
        edges = graph.neighbors(args.namespace, args.id)
    record = _memory_dict(memory)
    record["associations"] = [
        {
            "source": e.source,
            "target": e.target,
            "type": e.type.value,
            "weight": round(e.weight, 6),
            "explicit": e.explicit,
        }
        for e in edges
    ]
    if args.json:
        _print_json(record)
        return EXIT_OK
    for key, value in record.items():
        if key != "associations":
            print(f"{key}: {json.dumps(value, ensure_ascii=False) if key == 'metadata' else value}")
    print(f"associations: {len(edges)}")
    for e in edges:
        print(f"  {e.source} -{e.type.value}-> {e.target}  {e.weight:.3f}")
    return EXIT_OK


def run_forget(args: argparse.Namespace, settings: Settings) -> int:
    with open_graph(settings) as graph:
        gone = graph.forget(args.namespace, args.id)
    if not gone:
        raise NotFound(f"no memory {args.id!r} in namespace {args.namespace!r}")
    print(f"forgot {args.id}")
    return EXIT_OK


def run_stats(args: argparse.Namespace, settings: Settings) -> int:
    with open_graph(settings) as graph:
        stats = graph.stats(args.namespace)
        stats["lifecycle_runs"] = graph.lifecycle_runs(args.namespace)
    if args.json:
        _print_json(stats)
        return EXIT_OK
    print(f"namespace: {args.namespace}")
    for key, value in stats.items():
        if key == "lifecycle_runs":
            for run in value:
                counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items())
                dry = " (dry run)" if run["dry_run"] else ""
                print(f"lifecycle run: {run['finished_at']} {run['job']}{dry}: {counts}")
        elif isinstance(value, dict):
            print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            print(f"{key}: {value}")
    return EXIT_OK


def _namespaces(graph: MemoryGraph, namespace: str | None) -> list[str]:
    if namespace is not None:
        graph.stats(namespace)  # checks it
        return [namespace]
    return graph.store.namespaces()


def run_lifecycle(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.lifecycle.runner import parse_jobs, run_jobs

    jobs = parse_jobs(args.jobs)
    at = parse_time(args.at, "at").timestamp() if args.at else None
    reports = []
    with open_graph(settings) as graph:
        for namespace in _namespaces(graph, args.namespace):
            reports.append(
                run_jobs(
                    graph,
                    namespace,
                    jobs,
                    config=settings.lifecycle_config(),
                    now=at,
                    dry_run=args.dry_run,
                )
            )
    if args.json:
        _print_json([r.as_dict() for r in reports])
        return EXIT_OK
    for report in reports:
        what = "would change (dry run)" if report.dry_run else "changed"
        print(f"namespace {report.namespace!r}: {what}")
        for job in report.jobs:
            counts = ", ".join(f"{k} {v}" for k, v in job.counts.items()) or "nothing"
            print(f"  {job.job:<12} {counts}  ({job.seconds:.2f} s)")
    return EXIT_OK


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.lifecycle.check import check

    reports = []
    with open_graph(settings) as graph:
        for namespace in _namespaces(graph, args.namespace):
            reports.append((namespace, check(graph, namespace, repair=args.repair)))
    clean = all(r.clean for _, r in reports)
    if args.json:
        _print_json([{"namespace": ns, **r.as_dict()} for ns, r in reports])
    else:
        for namespace, report in reports:
            print(f"namespace {namespace!r}: {'clean' if report.clean else 'PROBLEMS'}")
            for key, value in report.as_dict().items():
                if value and key not in {"clean", "namespace"}:
                    print(f"  {key}: {value}")
    return EXIT_OK if clean else EXIT_FAILED


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api.app import ConfigurationError, serve  # the web stack loads only for serve

    try:
        with hold_data_dir(settings):  # a directory in use: refused at once, exit 1
            return serve(settings, host=args.host, port=args.port)
    except ConfigurationError as exc:
        raise UsageError(f"bad setting: {exc}") from None


def run_bench(args: argparse.Namespace, settings: Settings, *, module: str, function: str) -> int:
    unavailable = getattr(args, "unavailable", None)
    if unavailable:
        raise UsageError(unavailable)
    run = getattr(importlib.import_module(module), function)
    return int(run(args, settings))


# -- import and export -----------------------------------------------------------------


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    if transfer.is_export(_first_line(path)):  # a blank first line is no header
        if args.resume:
            raise UsageError(
                "--resume: an export file is imported in one transaction (all or nothing), "
                "there is nothing to resume"
            )
        with open_graph(settings) as graph, path.open(encoding="utf-8-sig") as lines:
            counts = transfer.import_namespace(graph, args.namespace, lines)
        print(
            f"imported {counts['memories']} memories, {counts['entities']} entities, "
            f"{counts['associations']} associations from an export into namespace "
            f"{args.namespace!r}"
        )
        return EXIT_OK
    with open_graph(settings) as graph, _progress_bar("importing") as progress:
        counts = transfer.import_jsonl(
            graph, args.namespace, path, resume=args.resume, progress=progress
        )
    skipped = f"; {counts['skipped']} already stored, skipped" if args.resume else ""
    print(
        f"imported {counts['memories']} memories, {counts['associations']} associations "
        f"({counts['links']} given as links) into namespace {args.namespace!r}{skipped}"
    )
    return EXIT_OK


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return fh.readline().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    partial_path = path.with_name(path.name + ".partial")
    with open_graph(settings) as graph:
        graph.stats(args.namespace)  # checks the namespace
        try:
            with partial_path.open("w", encoding="utf-8") as out:
                counts = transfer.export_namespace(graph, args.namespace, out)
                out.flush()
                os.fsync(out.fileno())
            partial_path.replace(path)
        except OSError as exc:
            partial_path.unlink(missing_ok=True)
            raise UsageError(f"{path}: cannot write it ({exc.strerror})") from None
    print(
        f"exported {counts['memories']} memories, {counts['entities']} entities, "
        f"{counts['associations']} associations of namespace {args.namespace!r} to {path}"
    )
    return EXIT_OK


# -- backup and restore ----------------------------------------------------------------


def _sqlite_only(settings: Settings, command: str) -> None:
    if settings.neo4j_uri:
        raise UsageError(
            f"{command} covers the SQLite store; for Neo4j use neo4j-admin database "
            "dump/backup, or hippograph export for a portable copy"
        )


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api import backup, restore
    from hippograph.api.backup_files import BackupRefused

    dest: Path = args.dest
    try:
        if args.verify:
            report = restore.verify(dest)
            if args.json:
                _print_json(report.as_dict())
            elif report.ok:
                print(
                    f"backup {dest} is sound: {report.backups} backups, {report.files} files, "
                    f"{report.entries} journal entries, from {report.since} to {report.until}"
                )
            else:
                for problem in report.problems + report.derived_problems:
                    print(f"{dest}: {problem}", file=sys.stderr)
            return EXIT_OK if report.ok else EXIT_FAILED
        _sqlite_only(settings, "backup")
        data_dir = Path(settings.data_dir)
        if args.incremental:
            entry = backup.incremental_backup(data_dir, dest)
        else:
            entry = backup.full_backup(data_dir, dest, prune=args.prune_journal)
    except BackupRefused as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json({key: value for key, value in (entry or {}).items() if key != "files"})
    elif entry is None:
        print(f"nothing written since the last backup in {dest}")
    else:
        size = sum(int(f["size"]) for f in entry["files"].values())
        journal = entry["journal"]
        covered = (
            f"journal through entry {journal['through']}"
            if entry["kind"] == "full"
            else f"journal entries {journal['first']}..{journal['last']}"
        )
        print(
            f"{entry['kind']} backup {dest / entry['dir']}: {len(entry['files'])} files, "
            f"{size / 1e6:.1f} MB, {len(entry['generations'])} namespaces, {covered}, "
            f"as of {entry['point_iso']}"
            + (f"; pruned {entry['pruned']} journal entries" if entry.get("pruned") else "")
        )
        if entry.get("missing_archive"):
            print(
                f"warning: {len(entry['missing_archive'])} archive files named by stubs were "
                "not in the data directory (see hippograph check)",
                file=sys.stderr,
            )
    return EXIT_OK


def run_restore(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api import restore
    from hippograph.api.backup_files import BackupRefused

    _sqlite_only(settings, "restore")
    at = parse_time(args.at, "at") if args.at else None
    try:
        report = restore.restore(args.src, Path(settings.data_dir), at=at)
    except BackupRefused as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json(report.as_dict())
    else:
        print(
            f"restored {args.src} into {report.data_dir} as of {report.restored_to}: the full "
            f"backup and {report.entries} journal entries from {report.incrementals} "
            f"incremental backups; {report.archive_files} archive files, "
            + (
                f"{report.derived_files} derived files"
                if report.derived_files
                else "derived files rebuilt on first use"
            )
        )
        ends = parse_time(report.history_ends) if report.history_ends else None
        if at is not None and ends is not None and at > ends:
            print(
                f"note: the backup history ends at {report.history_ends}; "
                "later writes are not in it"
            )
        for name in report.missing_archive:
            print(f"warning: {name} is named by a stub but not in the backup", file=sys.stderr)
    return EXIT_OK


# -- output ----------------------------------------------------------------------------


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar on stderr when it is a
    terminal; the bar appears at the first call."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    task = progress.add_task(description, total=None)

    def advance(done: int, total: int) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        yield advance
    finally:
        progress.stop()


def _time(value: str | None, field: str) -> datetime | None:
    return None if value is None else parse_time(value, field)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _memory_dict(memory: Memory) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": memory.id,
        "namespace": memory.namespace,
        "content": memory.content,
        "kind": memory.kind.value,
        "tier": memory.tier.value,
        "session_id": memory.session_id,
        "created_at": iso(memory.created_at),
        "occurred_at": iso(memory.occurred_at),
        "last_accessed_at": iso(memory.last_accessed_at),
        "access_count": memory.access_count,
        "importance": memory.importance,
        "metadata": memory.metadata,
    }


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _print_recollections(found: Sequence[Recollection]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Memory text is data, never markup: "[bold]" in a memory must print as written.
    console = Console(markup=False, emoji=False, highlight=False)
    if not found:
        console.print("no memories recalled")
        return
    table = Table()
    table.add_column("rank", justify="right")
    table.add_column("score", justify="right")
    table.add_column("id", overflow="fold")  # ids are for copying: wrap, never cut short
    table.add_column("content")
    table.add_column("path")
    for rank, r in enumerate(found, start=1):
        steps = [f"{s.source} -{s.type.value}->" for s in r.path]
        table.add_row(
            str(rank),
            f"{r.score:.3f}",
            r.memory.id,
            _excerpt(r.memory.content),
            " ".join(steps) if steps else "seed",
        )
    console.print(table)
