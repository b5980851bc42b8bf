"""``hippograph bench crash``: SIGKILL at random moments, then prove nothing acknowledged
was lost and nothing half-written is visible.

Three kinds of process are killed, each on real files in a scratch directory:

- **the service**: ``hippograph serve`` runs as a subprocess on a free loopback port;
  writer threads post ``remember``, ``rememberMany`` and ``associate`` and record each
  write the server acknowledged (HTTP 200 without errors) in a :class:`Ledger`, and
  each one it did not answer (in doubt); the server gets SIGKILL at a random moment and
  restarts on the same data directory. After every kill ``hippograph check`` must find
  store and index agreeing, and after every restart every acknowledged memory (with its
  exact content) and association must be there, an unanswered ``rememberMany`` batch
  must be there whole or not at all, and no memory may exist that no writer sent;
- **an import**: ``hippograph import`` of a JSONL file larger than one batch is killed;
  what it left must be whole batches in file order (each batch is one transaction; the
  import as a whole is not), and ``check`` clean. An import of an ``export`` file is
  one transaction: all or nothing;
- **a lifecycle archive run**: ``hippograph lifecycle run --jobs tiering,archive`` over
  old, unimportant memories is killed; ``check`` may then report archive files written
  before the commit (orphans) but nothing else, a second run must finish the job and
  leave ``check`` clean, and every memory must still be there (as itself or a stub).

Example::

    hippograph bench crash --kills 20 --json

The service is :mod:`hippograph.api.bench.crash_server`'s part, the import and the
archive run :mod:`hippograph.api.bench.crash_commands`'; this module runs them all and
is the command.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hippograph.api.bench.crash_commands import crash_archive, crash_import
from hippograph.api.bench.crash_server import crash_server

__all__ = ["add_crash_arguments", "run_crash", "run_crash_command"]


def run_crash(
    kills: int = 20,
    *,
    import_kills: int = 4,
    archive_kills: int = 4,
    seed: int | None = None,
    workdir: Path | None = None,
    keep: bool = False,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Every scenario in a scratch directory (and on ``store``: Neo4j's variables, each
    scenario in namespaces of its own there, or None for SQLite files); the combined
    report."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    base = Path(tempfile.mkdtemp(prefix="hippograph-bench-crash-", dir=workdir))
    started = time.monotonic()
    try:
        (base / "server").mkdir()
        (base / "import").mkdir()
        (base / "archive").mkdir()
        server = crash_server(base / "server", kills, seed=seed, store=store)
        imports = (
            crash_import(base / "import", import_kills, seed=seed, store=store)
            if import_kills
            else {}
        )
        archive = (
            crash_archive(base / "archive", archive_kills, seed=seed, store=store)
            if archive_kills
            else {}
        )
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    parts = [p for p in (server, imports, archive) if p]
    problems = sum(len(p["problems"]) for p in parts)
    return {
        "kills": sum(p["kills"] for p in parts),
        "acknowledged": server["acknowledged"],
        "lost": server["lost"],
        "check_clean": all(p["check_clean"] for p in parts),
        "problems": problems,
        "seed": seed,
        "store": "neo4j" if store else "sqlite",
        "seconds": round(time.monotonic() - started, 1),
        "server": {
            k: server[k]
            for k in (
                "kills",
                "kills_in_shutdown",
                "acknowledged_memories",
                "acknowledged_associations",
                "doubtful",
                "rejected",
                "problems",
                "stop_exit",
            )
        },
        "import": {k: v for k, v in imports.items() if k != "checks"} if imports else None,
        "archive": {k: v for k, v in archive.items() if k != "checks"} if archive else None,
        "workdir": str(base) if keep else None,
    }


def add_crash_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench crash``."""
    parser.add_argument(
        "--kills", type=int, default=20, metavar="N", help="SIGKILLs of the server (default 20)"
    )
    parser.add_argument(
        "--import-kills", type=int, default=4, metavar="N", help="SIGKILLs of an import (4)"
    )
    parser.add_argument(
        "--archive-kills",
        type=int,
        default=4,
        metavar="N",
        help="SIGKILLs of a lifecycle archive run (4)",
    )
    parser.add_argument("--seed", type=int, help="seed of delays and writes (default random)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch directory (its path is printed)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--store",
        choices=("sqlite", "neo4j"),
        help="the store to crash on: SQLite files in the scratch directory, or the Neo4j "
        "server of NEO4J_URI (namespaces of the run's own; default: neo4j when NEO4J_URI "
        "is set)",
    )


def _store_variables(settings: Any) -> dict[str, str]:
    """The Neo4j variables of ``settings`` (the CLI's), for the processes the bench runs."""
    password = settings.neo4j_password
    values = {
        "NEO4J_URI": settings.neo4j_uri,
        "NEO4J_USER": settings.neo4j_user,
        "NEO4J_PASSWORD": password.get_secret_value() if password is not None else None,
        "NEO4J_DATABASE": settings.neo4j_database,
        "HIPPOGRAPH_NEO4J_TRACE": str(settings.neo4j_trace) if settings.neo4j_trace else None,
    }
    return {name: value for name, value in values.items() if value}


def run_crash_command(args: argparse.Namespace, settings: Any) -> int:
    """``hippograph bench crash``: exit 0 when nothing was lost and every check was clean."""
    if min(args.kills, args.import_kills, args.archive_kills) < 0 or args.kills < 1:
        print("hippograph: --kills must be at least 1, the others at least 0", file=sys.stderr)
        return 2
    uri = getattr(settings, "neo4j_uri", None)
    kind = args.store or ("neo4j" if uri else "sqlite")
    if kind == "neo4j" and not uri:
        print(
            "hippograph: --store neo4j: NEO4J_URI is not set (and NEO4J_USER, "
            "NEO4J_PASSWORD for the server's credentials)",
            file=sys.stderr,
        )
        return 2
    result = run_crash(
        args.kills,
        import_kills=args.import_kills,
        archive_kills=args.archive_kills,
        seed=args.seed,
        keep=args.keep,
        store=_store_variables(settings) if kind == "neo4j" else None,
    )
    ok = result["lost"] == 0 and result["check_clean"] and result["problems"] == 0
    if args.json:
        print(json.dumps(result, indent=2))
        return 0 if ok else 1
    server = result["server"]
    print(
        f"{result['store']}: kills {result['kills']} (server {server['kills']}, import "
        f"{(result['import'] or {}).get('kills', 0)}, archive "
        f"{(result['archive'] or {}).get('kills', 0)}) in {result['seconds']} s, seed "
        f"{result['seed']}"
    )
    print(
        f"acknowledged {result['acknowledged']} ({server['acknowledged_memories']} memories, "
        f"{server['acknowledged_associations']} associations; {server['doubtful']} in doubt)"
    )
    print(
        f"lost {result['lost']}, problems {result['problems']}, "
        f"check {'clean' if result['check_clean'] else 'NOT CLEAN'}"
    )
    for name in ("import", "archive"):
        for problem in (result[name] or {}).get("problems", []):
            print(f"  {name}: {problem}")
    for problem in server["problems"]:
        print(f"  server: {problem}")
    if result["workdir"]:
        print(f"kept {result['workdir']}")
    return 0 if ok else 1
