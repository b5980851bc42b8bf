"""The ``hippograph`` command line: a thin layer over the same ``MemoryGraph`` calls the
GraphQL API makes. This module builds the argument parser and runs one command, turning
its errors into exit codes; what each command does is in :mod:`hippograph.api.commands`.

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
import sys
import traceback
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from hippograph.api.commands import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    Command,
    UsageError,
    run_backup,
    run_bench,
    run_check,
    run_export,
    run_forget,
    run_get,
    run_import,
    run_lifecycle,
    run_recall,
    run_remember,
    run_restore,
    run_serve,
    run_stats,
    run_update,
)
from hippograph.api.settings import Settings
from hippograph.embeddings import ModelIntegrityError
from hippograph.graph import BadInput, HippographError, MemoryKind, transfer

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]

PROG = "hippograph"
# (subcommand, module, function adding its arguments, function running it, help)
_BENCHMARKS = (
    (
        "latency",
        "hippograph.api.bench.latency",
        "add_latency_arguments",
        "run_latency_command",
        "recall latency",
    ),
    (
        "locomo",
        "hippograph.api.bench.locomo",
        "add_locomo_arguments",
        "run_locomo_command",
        "LoCoMo accuracy",
    ),
    (
        "serve",
        "hippograph.api.bench.serve",
        "add_serve_arguments",
        "run_serve_command",
        "GraphQL end to end",
    ),
    (
        "encode",
        "hippograph.api.bench.encode",
        "add_encode_arguments",
        "run_encode_command",
        "the model on mixed calls: one pass against passes grouped by length",
    ),
    (
        "crash",
        "hippograph.api.bench.crash",
        "add_crash_arguments",
        "run_crash_command",
        "SIGKILL the server, an import and an archive run; nothing acknowledged lost",
    ),
    (
        "load",
        "hippograph.api.bench.load",
        "add_load_arguments",
        "run_load_command",
        "concurrent clients against a served namespace: throughput, p50/p99, errors",
    ),
    (
        "vectors",
        "hippograph.api.bench.vectors",
        "add_vectors_arguments",
        "run_vectors_command",
        "FAISS (exact, HNSW) against Neo4j's vector index on the same vectors",
    ),
    (
        "ingest",
        "hippograph.api.bench.ingest",
        "add_ingest_arguments",
        "run_ingest_command",
        "memories/s through remember_many with the real model, SQLite and Neo4j",
    ),
    (
        "lifecycle",
        "hippograph.api.bench.lifecycle",
        "add_lifecycle_arguments",
        "run_lifecycle_command",
        "months of use, then the lifecycle jobs",
    ),
    (
        "assistant",
        "hippograph.api.bench.assistant",
        "add_assistant_arguments",
        "run_assistant_command",
        "months of a personal assistant's use, lifecycle on schedule, then fact questions",
    ),
    (
        "supersession",
        "hippograph.api.bench.supersession",
        "add_supersession_arguments",
        "run_supersession_command",
        "how often the automatic supersession rule fires on LoCoMo dev pairs",
    ),
)


# -- presenting engine errors ----------------------------------------------------------


def _describe(exc: BadInput, prefix: str = "input.") -> str:
    """``field: message`` with the engine's field path made relative to one memory."""
    message = str(exc).removeprefix(f"{exc.field}: ")
    return f"{transfer.jsonl_field(exc.field.removeprefix(prefix))}: {message}"


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
    p.add_argument(
        "--supersedes",
        action="append",
        default=[],
        metavar="ID",
        help="a stored memory this one replaces (repeatable)",
    )
    p.add_argument(
        "--force-new",
        action="store_true",
        help="store it even when the same content is stored (default: return that one)",
    )
    p.add_argument("text", metavar="TEXT", help="what to remember")
    p.set_defaults(run=run_remember)

    p = sub.add_parser(
        "update",
        parents=[common],
        help="change a memory; new content makes a new version that supersedes it",
        description="With --content, stores a new version (re-embedded, re-associated) "
        "that SUPERSEDES the memory, which stays stored but is no longer valid; prints the "
        "new version's id. Without it, --kind, --importance and --metadata change in place.",
    )
    _add_namespace(p)
    p.add_argument("--content", metavar="TEXT", help="the new content")
    p.add_argument("--kind", help=f"one of {kinds}")
    p.add_argument("--importance", type=float, help="0 to 1")
    p.add_argument("--metadata", metavar="JSON", help="a JSON object (replaces the old one)")
    p.add_argument("--occurred-at", metavar="ISO", help="when the change happened (new content)")
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=run_update)

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
    p.set_defaults(run=run_import)

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
    p.set_defaults(run=run_export)

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
    p.set_defaults(run=run_backup)

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
    p.set_defaults(run=run_restore)

    p = sub.add_parser("recall", parents=[common], help="the memories most worth recalling")
    _add_namespace(p)
    p.add_argument("-k", type=int, default=10, help="how many memories (default 10)")
    p.add_argument("--session", help="the current session (context)")
    p.add_argument("--at", metavar="ISO", help="the time of the question (default now)")
    p.add_argument("--since", metavar="ISO", help="time window of interest: from")
    p.add_argument("--until", metavar="ISO", help="time window of interest: to")
    p.add_argument(
        "--hard-window",
        action="store_true",
        help="make --since/--until a filter: nothing outside the window comes back",
    )
    p.add_argument(
        "--as-of",
        metavar="ISO",
        help="answer as of this time: what had happened and was valid then",
    )
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
    p.set_defaults(run=run_recall)

    p = sub.add_parser("get", parents=[common], help="one memory and its associations")
    _add_namespace(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=run_get)

    p = sub.add_parser("forget", parents=[common], help="delete a memory and its associations")
    _add_namespace(p)
    p.add_argument("id", metavar="ID")
    p.set_defaults(run=run_forget)

    p = sub.add_parser("stats", parents=[common], help="counts of a namespace")
    _add_namespace(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_stats)

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
    p.set_defaults(run=run_lifecycle)

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
    p.set_defaults(run=run_check)

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the GraphQL service (POST /graphql, /healthz, /readyz, /metrics)",
        description="Serve GraphQL over HTTP until SIGTERM or SIGINT, then flush and close "
        "the graph. Without HIPPOGRAPH_API_KEYS the server is open: keep it on 127.0.0.1.",
    )
    p.add_argument("--host", help="address to bind (env HIPPOGRAPH_HOST; 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (env HIPPOGRAPH_PORT; 8000)")
    p.set_defaults(run=run_serve)

    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="benchmarks: latency, locomo, serve, encode, lifecycle, crash, load, vectors, ingest, "
        "assistant, supersession",
    )
    benchmarks = bench.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module, add_arguments, run, help_ in _BENCHMARKS:
        p = benchmarks.add_parser(name, parents=[common], help=help_)
        p.set_defaults(run=partial(run_bench, module=module, function=run))
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
    except (UsageError, transfer.BadFile) as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    except BadInput as exc:
        _error(_describe(exc))
        return EXIT_BAD_INPUT
    except (HippographError, ModelIntegrityError) as exc:
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
