"""The ``hippograph`` command line: a thin layer over the same ``MemoryGraph`` calls the
GraphQL API makes.

Exit codes: 0 success; 2 bad input (arguments, settings, a file to import), reported in
one line on stderr with nothing written; 1 anything else (a memory that is not there,
an unexpected error — with its traceback only under ``--debug`` or
``HIPPOGRAPH_DEBUG=1``).

Examples::

    hippograph remember -n agent "Alice moved to Paris in May"
    hippograph import -n agent memories.jsonl
    hippograph recall -n agent --json "where does Alice live?"
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from hippograph.api.settings import Settings, hold_data_dir, open_graph
from hippograph.embeddings import ModelIntegrityError
from hippograph.graph import (
    AssociationType,
    BadInput,
    HippographError,
    Link,
    Memory,
    MemoryGraph,
    MemoryInput,
    MemoryKind,
    NotFound,
    RecallContext,
    Recollection,
    transfer,
)
from hippograph.graph.model import parse_time
from pydantic import ValidationError

__all__ = ["main"]

PROG = "hippograph"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

# Keys a JSONL memory may carry (the MemoryInput fields, in the file's snake_case).
_JSONL_FIELDS = (
    "content",
    "id",
    "session_id",
    "kind",
    "occurred_at",
    "importance",
    "metadata",
    "links",
)
_LINK_FIELDS = ("target", "type", "weight")
# (subcommand, module, function adding its arguments, function running it, help)
_BENCHMARKS = (
    (
        "latency",
        "hippograph.api.bench",
        "add_latency_arguments",
        "run_latency_command",
        "recall latency",
    ),
    (
        "locomo",
        "hippograph.api.locomo",
        "add_locomo_arguments",
        "run_locomo_command",
        "LoCoMo accuracy",
    ),
    (
        "serve",
        "hippograph.api.bench_serve",
        "add_serve_arguments",
        "run_serve_command",
        "GraphQL end to end",
    ),
    (
        "encode",
        "hippograph.api.bench_encode",
        "add_encode_arguments",
        "run_encode_command",
        "the model on mixed calls: one pass against passes grouped by length",
    ),
    (
        "crash",
        "hippograph.api.bench_crash",
        "add_crash_arguments",
        "run_crash_command",
        "SIGKILL the server, an import and an archive run; nothing acknowledged lost",
    ),
    (
        "load",
        "hippograph.api.bench_load",
        "add_load_arguments",
        "run_load_command",
        "concurrent clients against a served namespace: throughput, p50/p99, errors",
    ),
    (
        "vectors",
        "hippograph.api.bench_vectors",
        "add_vectors_arguments",
        "run_vectors_command",
        "FAISS (exact, HNSW) against Neo4j's vector index on the same vectors",
    ),
    (
        "ingest",
        "hippograph.api.bench_ingest",
        "add_ingest_arguments",
        "run_ingest_command",
        "memories/s through remember_many with the real model, SQLite and Neo4j",
    ),
    (
        "lifecycle",
        "hippograph.api.bench_lifecycle",
        "add_lifecycle_arguments",
        "run_lifecycle_command",
        "months of use, then the lifecycle jobs",
    ),
)

Command = Callable[[argparse.Namespace, Settings], int]


class UsageError(Exception):
    """Bad input found by the CLI itself (arguments, files): exit 2, nothing written."""


class CommandFailed(Exception):
    """The command could not do what was asked (not a bug): exit 1, one line."""


# -- presenting engine errors ----------------------------------------------------------


def _snake(name: str) -> str:
    """GraphQL-style field names from the engine (``occurredAt``) in the CLI's spelling."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _describe(exc: BadInput, prefix: str = "input.") -> str:
    """``field: message`` with the engine's field path made relative to one memory."""
    message = str(exc).removeprefix(f"{exc.field}: ")
    return f"{_snake(exc.field.removeprefix(prefix))}: {message}"


# -- argument parsing ------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (raised, not printed + exit)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_namespace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", required=True, help="the tenant (agent or user) to act on"
    )


def build_parser(*, load_benchmarks: bool = True) -> argparse.ArgumentParser:
    """The argument parser. ``load_benchmarks`` imports the benchmark modules to learn
    their arguments; ``main`` does so only when the command line mentions ``bench``, so
    a slow or broken benchmark module never touches the other commands."""
    # Global options are accepted before or after the subcommand; SUPPRESS keeps a
    # subcommand's unset copy from overwriting the value given before it.
    common = _ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="directory of the database and derived files (env HIPPOGRAPH_DATA_DIR; ./data)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print tracebacks of unexpected errors (env HIPPOGRAPH_DEBUG=1)",
    )
    parser = _ArgumentParser(
        prog=PROG,
        description="Graph-centric associative memory for AI agents.",
        epilog="Settings come from HIPPOGRAPH_* environment variables "
        "(e.g. HIPPOGRAPH_ENCODER=hashing, HIPPOGRAPH_MAX_K=100).",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    kinds = ", ".join(k.value for k in MemoryKind)
    p = sub.add_parser("remember", parents=[common], help="store one memory; prints its id")
    _add_namespace(p)
    p.add_argument("--session", help="session id (memories of a session are linked in order)")
    p.add_argument("--kind", default=MemoryKind.EVENT.value, help=f"one of {kinds}")
    p.add_argument("--occurred-at", metavar="ISO", help="when it happened (ISO-8601)")
    p.add_argument("--importance", type=float, default=0.5, help="0 to 1 (default 0.5)")
    p.add_argument("--id", help="caller-chosen id, unique in the namespace")
    p.add_argument("text", metavar="TEXT", help="what to remember")
    p.set_defaults(run=_cmd_remember)

    p = sub.add_parser(
        "import",
        parents=[common],
        help="store memories from a JSONL file (all or nothing if any line is bad)",
        description="One JSON object per line: content, and optionally id, session_id, "
        "kind, occurred_at, importance, metadata, links ([{target, type, weight}] naming "
        "stored ids or ids of earlier lines). A file written by `export` is recreated "
        "exactly (ids, times, counts, vectors, associations). The whole file is checked "
        "before anything is written; it is written in batches, so an import that was "
        "stopped has written whole batches, and --resume finishes it.",
    )
    _add_namespace(p)
    p.add_argument("file", metavar="FILE.jsonl", type=Path)
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip the lines whose id is already stored with the same content (an import "
        "that was stopped); every line must give an id",
    )
    p.set_defaults(run=_cmd_import)

    p = sub.add_parser(
        "export",
        parents=[common],
        help="write a namespace to a JSONL file that import reads back exactly",
        description="Every memory (all fields and vectors), entity and association of the "
        "namespace, one JSON object per line after a header; `import` of the file into any "
        "store (SQLite or Neo4j) recreates them exactly. The file appears complete or not "
        "at all.",
    )
    _add_namespace(p)
    p.add_argument("file", metavar="FILE.jsonl", type=Path)
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="back up the data directory while the server runs; --verify checks a backup",
        description="A full backup (into an empty or new DEST) copies the store with SQLite's "
        "online backup API, the derived index files and the archive files, and writes "
        "DEST/manifest.json (sha256 and size of every file, generations, schema version). "
        "--incremental adds the store's journal entries written since DEST's last backup. "
        "--verify checks DEST without restoring it (exit 1 with what is wrong). SQLite only: "
        "for Neo4j use neo4j-admin database dump/backup, or export.",
    )
    p.add_argument("dest", metavar="DEST", type=Path, help="the backup directory")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--incremental", action="store_true", help="add what changed since DEST's last backup"
    )
    mode.add_argument("--verify", action="store_true", help="check DEST; change nothing")
    p.add_argument(
        "--prune-journal",
        action="store_true",
        help="after a full backup, delete the journal entries it covers from the store",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=_cmd_backup)

    p = sub.add_parser(
        "restore",
        parents=[common],
        help="restore a backup into an empty data directory, optionally as of a time",
        description="Copies SRC's full backup into the empty (or new) --data-dir and replays "
        "its incremental backups' journal entries; with --at, only those at or before that "
        "time (every write acknowledged by then, none after). Refuses a non-empty directory "
        "and a time before the full backup.",
    )
    p.add_argument("src", metavar="SRC", type=Path, help="the backup directory")
    p.add_argument("--at", metavar="ISO", help="restore the state as of this time (ISO-8601)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=_cmd_restore)

    p = sub.add_parser("recall", parents=[common], help="the memories most worth recalling")
    _add_namespace(p)
    p.add_argument("-k", type=int, default=10, help="how many memories (default 10)")
    p.add_argument("--session", help="the current session (context)")
    p.add_argument("--at", metavar="ISO", help="the time of the question (default now)")
    p.add_argument("--since", metavar="ISO", help="time window of interest: from")
    p.add_argument("--until", metavar="ISO", help="time window of interest: to")
    p.add_argument("--context", metavar="TEXT", help="what the agent is doing now")
    p.add_argument(
        "--entity", action="append", default=[], metavar="E", help="entity in play (repeatable)"
    )
    p.add_argument("--hops", type=int, help="spreading-activation hops (default from settings)")
    p.add_argument(
        "--no-learn",
        action="store_true",
        help="do not record the access nor strengthen associations",
    )
    p.add_argument(
        "--include-archived",
        action="store_true",
        help="also search the archive; what matches is rehydrated into the working tier",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("query", metavar="QUERY")
    p.set_defaults(run=_cmd_recall)

    p = sub.add_parser("get", parents=[common], help="one memory and its associations")
    _add_namespace(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=_cmd_get)

    p = sub.add_parser("forget", parents=[common], help="delete a memory and its associations")
    _add_namespace(p)
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=_cmd_forget)

    p = sub.add_parser("stats", parents=[common], help="counts of a namespace")
    _add_namespace(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_cmd_stats)

    lifecycle = sub.add_parser(
        "lifecycle", parents=[common], help="decay, tiering, dedup, concepts, archive"
    )
    lifecycle_sub = lifecycle.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = lifecycle_sub.add_parser(
        "run",
        parents=[common],
        help="run the lifecycle jobs once",
        description="Run the jobs (default all: decay, tiering, dedup, consolidate, archive) "
        "once on one namespace or on every namespace. Each job is idempotent and resumable; "
        "--dry-run reports what it would change and changes nothing.",
    )
    p.add_argument("-n", "--namespace", help="one namespace (default: every namespace)")
    p.add_argument("--jobs", help="comma-separated subset, e.g. decay,tiering")
    p.add_argument("--dry-run", action="store_true", help="report, change nothing")
    p.add_argument("--at", metavar="ISO", help="judge age as of this time (default now)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_cmd_lifecycle_run)

    p = sub.add_parser(
        "check",
        parents=[common],
        help="verify store, index and archive agree; --repair fixes what it can",
        description="Every live memory searchable, nothing forgotten, merged or archived "
        "searchable, no dangling edges, archive files present with matching checksums.",
    )
    p.add_argument("-n", "--namespace", help="one namespace (default: every namespace)")
    p.add_argument("--repair", action="store_true", help="repair what can be repaired")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=_cmd_check)

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the GraphQL service (POST /graphql, /healthz, /readyz, /metrics)",
        description="Serve GraphQL over HTTP until SIGTERM or SIGINT, then flush and close "
        "the graph. Without HIPPOGRAPH_API_KEYS the server is open: keep it on 127.0.0.1.",
    )
    p.add_argument("--host", help="address to bind (env HIPPOGRAPH_HOST; 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (env HIPPOGRAPH_PORT; 8000)")
    p.set_defaults(run=_cmd_serve)

    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="benchmarks: latency, locomo, serve, encode, lifecycle, crash, load, vectors, ingest",
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module, add_arguments, run, help_ in _BENCHMARKS:
        p = benchmarks.add_parser(name, parents=[common], help=help_)
        p.set_defaults(run=partial(_cmd_bench, module=module, function=run))
        if load_benchmarks:
            _add_benchmark_arguments(p, name, module, add_arguments)
    return parser


def _add_benchmark_arguments(
    parser: argparse.ArgumentParser, name: str, module: str, function: str
) -> None:
    try:
        add = getattr(importlib.import_module(module), function)
        add(parser)
    except Exception as exc:
        # main() lets this command through with arguments it was never told about, so
        # the handler can say what is missing instead of argparse rejecting them.
        parser.set_defaults(
            unavailable=f"bench {name} is unavailable: cannot load {module}.{function} "
            f"({type(exc).__name__}: {exc})"
        )


# -- commands --------------------------------------------------------------------------


def _cmd_remember(args: argparse.Namespace, settings: Settings) -> int:
    item = MemoryInput(
        content=args.text,
        id=args.id,
        kind=args.kind,
        session_id=args.session,
        occurred_at=args.occurred_at,
        importance=args.importance,
    )
    with open_graph(settings) as graph:
        memory = graph.remember(args.namespace, item)
    print(memory.id)
    return EXIT_OK


def _cmd_recall(args: argparse.Namespace, settings: Settings) -> int:
    context = RecallContext(
        session_id=args.session,
        text=args.context,
        at=_time(args.at, "at"),
        entities=list(args.entity),
        since=_time(args.since, "since"),
        until=_time(args.until, "until"),
    )
    with open_graph(settings) as graph:
        if args.include_archived:
            from hippograph.lifecycle.archive import recall_archived

            graph.stats(args.namespace)  # checks the namespace before touching files
            recall_archived(graph, args.namespace, args.query, args.k)
        found = graph.recall(
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


def _cmd_get(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    with open_graph(settings) as graph:
        gone = graph.forget(args.namespace, args.id)
    if not gone:
        raise NotFound(f"no memory {args.id!r} in namespace {args.namespace!r}")
    print(f"forgot {args.id}")
    return EXIT_OK


def _cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_lifecycle_run(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_check(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api.app import ConfigurationError, serve  # the web stack loads only for serve

    try:
        with hold_data_dir(settings):  # a directory in use: refused at once, exit 1
            return serve(settings, host=args.host, port=args.port)
    except ConfigurationError as exc:
        raise UsageError(f"bad setting: {exc}") from None


def _cmd_bench(args: argparse.Namespace, settings: Settings, *, module: str, function: str) -> int:
    unavailable = getattr(args, "unavailable", None)
    if unavailable:
        raise UsageError(unavailable)
    run = getattr(importlib.import_module(module), function)
    return int(run(args, settings))


# -- import ----------------------------------------------------------------------------


def _cmd_import(args: argparse.Namespace, settings: Settings) -> int:
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
    with open_graph(settings) as graph:
        before = graph.stats(args.namespace)  # also checks the namespace
        count, links, done = _check_file(graph, args.namespace, path, resume=args.resume)
        if count > len(done):
            _write_file(
                graph, args.namespace, path, count - len(done), graph.config.max_batch, done
            )
        after = graph.stats(args.namespace)
    added = sum(after["associations"].values()) - sum(before["associations"].values())
    skipped = f"; {len(done)} already stored, skipped" if args.resume else ""
    print(
        f"imported {count - len(done)} memories, {added} associations "
        f"({links} given as links) into namespace {args.namespace!r}{skipped}"
    )
    return EXIT_OK


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            return fh.readline().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
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


def _cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api import backup

    dest: Path = args.dest
    try:
        if args.verify:
            report = backup.verify(dest)
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
    except backup.BackupRefused as exc:
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


def _cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from hippograph.api import backup

    _sqlite_only(settings, "restore")
    at = parse_time(args.at, "at") if args.at else None
    try:
        report = backup.restore(args.src, Path(settings.data_dir), at=at)
    except backup.BackupRefused as exc:
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


def _read_jsonl(path: Path) -> Iterator[tuple[int, MemoryInput]]:
    """(line number, memory) for each non-blank line; a malformed line raises
    ``UsageError`` naming its number."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    with fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"line {lineno}: not UTF-8 text") from None
            if not text.strip():
                continue
            try:
                yield lineno, _memory_from_json(text)
            except BadInput as exc:
                raise UsageError(f"line {lineno}: {_describe(exc, prefix='')}") from None
            except ValueError as exc:
                raise UsageError(f"line {lineno}: {exc}") from None


def _memory_from_json(text: str) -> MemoryInput:
    """One JSONL line as a MemoryInput. Only the JSON shape is checked here (an object,
    known keys, link objects); the values are the engine's to judge."""
    try:
        obj = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in _JSONL_FIELDS:
            raise BadInput(key, f"unknown field; expected {', '.join(_JSONL_FIELDS)}")
    if "content" not in obj:
        raise BadInput("content", "is required")
    # null means "not given" for the optional fields
    given = {k: v for k, v in obj.items() if v is not None or k == "content"}
    given["links"] = _links_from_json(given.get("links", []))
    return MemoryInput(**given)


def _links_from_json(value: Any) -> list[Link]:
    if not isinstance(value, list):
        raise BadInput("links", "must be a list of {target, type, weight} objects")
    links: list[Link] = []
    types = ", ".join(t.value for t in AssociationType)
    for j, raw in enumerate(value):
        where = f"links[{j}]"
        if not isinstance(raw, dict):
            raise BadInput(where, "must be an object with target, type, weight")
        for key in raw:
            if key not in _LINK_FIELDS:
                raise BadInput(f"{where}.{key}", "unknown field; expected target, type, weight")
        target = raw.get("target")
        if not isinstance(target, str) or not target.strip():
            raise BadInput(f"{where}.target", "must be the id of a memory")
        kind = raw.get("type", AssociationType.RELATED_TO.value)
        try:
            kind = AssociationType(kind)
        except ValueError:
            raise BadInput(
                f"{where}.type", f"unknown association type {kind!r}; one of {types}"
            ) from None
        weight = raw.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise BadInput(f"{where}.weight", "must be a number from 0 to 1")
        links.append(Link(target=target, type=kind, weight=float(weight)))
    return links


def _check_file(
    graph: MemoryGraph, namespace: str, path: Path, *, resume: bool = False
) -> tuple[int, int, set[str]]:
    """Check every line as ``remember_many`` would, plus what only the whole file shows
    (ids unique across batches, links naming stored ids or earlier lines), so that a bad
    line is reported before anything is written. Returns (memories, explicit links, ids
    to skip): with ``resume``, the lines whose id is stored with the same content are
    skipped (an earlier run of this import wrote them)."""
    first_line: dict[str, int] = {}  # caller-chosen id -> the line giving it
    contents: dict[str, str] = {}  # with resume: id -> the content its line gives
    unresolved: list[tuple[int, str, str]] = []  # (line, field, target) not on earlier lines
    count = links = 0
    for lineno, item in _read_jsonl(path):
        try:
            graph.check_input(namespace, item, "memory")  # the engine's own rules
        except BadInput as exc:
            raise UsageError(f"line {lineno}: {_describe(exc, prefix='memory.')}") from None
        if resume:
            if item.id is None:
                raise UsageError(
                    f"line {lineno}: id: --resume needs an id on every line, to know "
                    "which lines an earlier run wrote"
                )
            contents[item.id] = item.content
        for j, link in enumerate(item.links):
            if link.target not in first_line:
                unresolved.append((lineno, f"links[{j}].target", link.target))
        if item.id is not None:
            if item.id in first_line:
                raise UsageError(
                    f"line {lineno}: id: {item.id!r} is already given on line {first_line[item.id]}"
                )
            first_line[item.id] = lineno
        count += 1
        links += len(item.links)
    stored = graph.store.seqs_of(namespace, [*first_line, *{t for _, _, t in unresolved}])
    done: set[str] = set()
    if resume:
        held = graph.store.get(namespace, [i for i in first_line if i in stored])
        done = {m.id for m in held if m.content == contents[m.id]}
    problems: list[tuple[int, str]] = [
        (
            lineno,
            f"id: memory {memory_id!r} already exists in namespace {namespace!r}"
            + (" with other content" if resume else ""),
        )
        for memory_id, lineno in first_line.items()
        if memory_id in stored and memory_id not in done
    ]
    for lineno, field, target in unresolved:
        if target not in stored:
            later = first_line.get(target)
            where = f" (line {later} gives it; a link may only name an earlier line)"
            problems.append(
                (
                    lineno,
                    f"{field}: {target!r} is neither stored in namespace {namespace!r} "
                    f"nor given on an earlier line{where if later else ''}",
                )
            )
    if problems:
        lineno, message = min(problems)
        raise UsageError(f"line {lineno}: {message}")
    return count, links, done


def _batches(
    lines: Iterator[tuple[int, MemoryInput]], size: int
) -> Iterator[tuple[int, list[MemoryInput]]]:
    """Consecutive runs of at most ``size`` memories, each with its first line number."""
    batch: list[MemoryInput] = []
    first = 0
    for lineno, item in lines:
        if not batch:
            first = lineno
        batch.append(item)
        if len(batch) >= size:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


def _write_file(
    graph: MemoryGraph, namespace: str, path: Path, total: int, size: int, skip: set[str]
) -> None:
    """Write the checked file in batches of ``size``, in file order (so links to earlier
    lines resolve), but for the lines whose id is in ``skip``, with a progress bar on
    stderr when it is a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    console = Console(stderr=True)
    written = 0
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("importing", total=total)
        lines = ((n, item) for n, item in _read_jsonl(path) if item.id not in skip)
        for first, batch in _batches(lines, size):
            try:
                graph.remember_many(namespace, batch)
            except HippographError as exc:
                # The file was checked; only a concurrent writer or an edited file gets here.
                raise CommandFailed(
                    f"import stopped at the batch starting on line {first}, after {written} "
                    f"memories were written: {exc}"
                ) from exc
            written += len(batch)
            progress.advance(task, len(batch))


# -- output ----------------------------------------------------------------------------


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


# -- entry point -----------------------------------------------------------------------


def _settings_problem(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        where = f"HIPPOGRAPH_{name.upper()}={error['input']!r}: " if name else ""
        problems.append(f"{where}{error['msg']}")
    return "bad setting: " + "; ".join(problems)


def _error(message: str) -> None:
    one_line = " ".join(message.split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 1 failed, 2 bad input)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(load_benchmarks="bench" in arguments)
        args, unknown = parser.parse_known_args(arguments)
        if unknown and not getattr(args, "unavailable", None):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except UsageError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        _error(_settings_problem(exc))
        return EXIT_BAD_INPUT
    debug = bool(getattr(args, "debug", False)) or settings.debug
    command: Command = args.run
    try:
        return command(args, settings)
    except UsageError as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except BadInput as exc:
        _error(_describe(exc))
        return EXIT_BAD_INPUT
    except (HippographError, CommandFailed, ModelIntegrityError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        hint = "" if debug else " (rerun with --debug for the traceback)"
        _error(f"unexpected {type(exc).__name__}: {exc}{hint}")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
