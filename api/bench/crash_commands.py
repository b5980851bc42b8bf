"""``hippograph bench crash``, the commands: ``hippograph import`` (of a JSONL file and of
an export) and ``hippograph lifecycle run --jobs tiering,archive`` killed midway, each on
a fresh data directory, then what they left checked (whole batches in file order, an
export all or nothing, ``--resume`` finishing the import, a second archive run finishing
the job; ``check`` clean). See :mod:`hippograph.api.bench.crash`.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from hippograph.api.bench.crash_server import WORDS, namespace_of
from hippograph.api.bench.processes import (
    check_report,
    hippograph,
    hippograph_command,
    hippograph_env,
    kill_process,
)
from hippograph.api.settings import STORE_VARIABLES

__all__ = ["KILL_ATTEMPTS", "crash_archive", "crash_import", "present_ids", "write_jsonl"]

KILL_ATTEMPTS = 3  # runs of a command until one is killed before it ends


# -- an import -------------------------------------------------------------------------


def write_jsonl(path: Path, count: int, *, old: bool = False, prefix: str = "i") -> list[str]:
    """A JSONL file of ``count`` memories with ids ``{prefix}0..``, sessions of 20; with
    ``old``, from two years ago and unimportant (cold: tiering archives them). Returns
    the ids in file order."""
    rng = random.Random(count)
    ids = []
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            memory_id = f"{prefix}{n}"
            ids.append(memory_id)
            record: dict[str, Any] = {
                "id": memory_id,
                "content": " ".join(rng.choice(WORDS) for _ in range(10)) + f" ({memory_id})",
                "session_id": f"s{n // 20}",
            }
            if old:
                record["occurred_at"] = f"2023-{1 + n % 12:02d}-{1 + n % 28:02d}T12:00:00+00:00"
                record["importance"] = 0.1
            out.write(json.dumps(record) + "\n")
    return ids


def present_ids(
    data_dir: Path, namespace: str, ids: Sequence[str], store: Mapping[str, str] | None = None
) -> set[str]:
    """Which of ``ids`` the store of ``data_dir`` (or ``store``, see :func:`hippograph_env`)
    holds, opened in this process."""
    from hippograph.api.settings import Settings, open_store

    # every store variable given (None when absent), so none is read from this process
    chosen: dict[str, Any] = {name: (store or {}).get(name) for name in STORE_VARIABLES}
    settings = Settings(data_dir=data_dir, encoder="hashing", **chosen)
    store_ = open_store(settings)
    try:
        found = store_.seqs_of(namespace, list(ids)) if store_.namespaces() else {}
        return set(found) & set(ids)
    finally:
        store_.close()


def _killed_midway(
    command: Callable[[Path], Sequence[str]],
    fresh: Callable[[], Path],
    window: tuple[float, float],
    rng: random.Random,
    *,
    store: Mapping[str, str] | None = None,
    **settings: str,
) -> tuple[bool, str, float, int, Path]:
    """Run ``hippograph COMMAND`` (``command(data_dir)``) on the data directory
    ``fresh()`` prepares and SIGKILL it at a moment drawn from ``window`` (seconds). A
    run that ends before its kill tests nothing but says how long the command really
    takes here: up to KILL_ATTEMPTS runs, each on a fresh directory, with the next moment
    drawn from before that end. (whether the last run was killed, its stderr, its delay,
    the runs made, its data directory)"""
    low, high = window
    for attempt in range(1, KILL_ATTEMPTS + 1):
        delay = rng.uniform(low, high)
        data_dir = fresh()
        with tempfile.TemporaryFile() as err:
            started = time.monotonic()
            process = subprocess.Popen(
                [*hippograph_command(), *command(data_dir)],
                env=hippograph_env(data_dir, store=store, **settings),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=delay)
            ended = time.monotonic() - started
            killed = kill_process(process)
            err.seek(0)
            text = err.read().decode(errors="replace")
        if killed or attempt == KILL_ATTEMPTS:
            return killed, text, delay, attempt, data_dir
        low, high = min(low, 0.9 * ended), 0.9 * ended
    raise AssertionError("unreachable")


def _fresh(
    data_dir: Path,
    copy_of: Path | None = None,
    *,
    store: Mapping[str, str] | None = None,
    seed: Path | None = None,
) -> Path:
    """A data directory as new: ``data_dir`` emptied, or made a copy of ``copy_of``.
    On Neo4j, where emptying the directory leaves its namespace in the database, a new
    directory beside it (so a new namespace), with ``seed`` (a JSONL file) imported
    instead of the copy."""
    if store:
        n = 0
        while data_dir.with_name(f"{data_dir.name}-{n}").exists():
            n += 1
        data_dir = data_dir.with_name(f"{data_dir.name}-{n}")
        data_dir.mkdir(parents=True)
        if seed is not None:
            _timed(data_dir, "import", "-n", namespace_of(data_dir, store), str(seed), store=store)
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    if copy_of is not None:
        shutil.copytree(copy_of, data_dir)
    return data_dir


def _timed(
    data_dir: Path, *args: str, store: Mapping[str, str] | None = None, **settings: str
) -> float:
    """Seconds ``hippograph ARGS`` takes on ``data_dir`` (and ``store``), run to
    completion; raises if it fails."""
    started = time.monotonic()
    done = hippograph(data_dir, *args, store=store, **settings)
    if done.returncode != 0:
        raise RuntimeError(f"hippograph {' '.join(args)} failed: {done.stderr.strip()}")
    return time.monotonic() - started


def crash_import(
    workdir: Path,
    kills: int,
    *,
    seed: int = 0,
    memories: int = 2_500,
    max_batch: int = 1_000,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Kill ``hippograph import`` of a ``memories``-line JSONL file ``kills`` times, each
    into a fresh data directory (on ``store``: Neo4j's variables, or None for the SQLite
    file; see :func:`namespace_of`), alternately of the file itself and of an ``export``
    of it, at a random moment between the time a command takes to open the store and the
    time a whole import takes (a tenth more). A JSONL import must leave
    whole batches of ``max_batch`` in file order, and the same import with ``--resume``
    must then finish it as an uninterrupted one would (the same memories and
    associations); an export import all or nothing; ``check`` clean every time."""
    rng = random.Random(seed)
    source = workdir / "import.jsonl"
    ids = write_jsonl(source, memories)
    exported = workdir / "export.jsonl"
    batch = str(max_batch)

    def ns(data_dir: Path) -> str:
        return namespace_of(data_dir, store)

    whole_jsonl = _fresh(workdir / "whole-jsonl", store=store)
    whole_export = _fresh(workdir / "whole-export", store=store)
    took = {
        "jsonl": _timed(
            whole_jsonl, "import", "-n", ns(whole_jsonl), str(source), store=store, max_batch=batch
        )
    }
    _timed(whole_jsonl, "export", "-n", ns(whole_jsonl), str(exported), store=store)
    whole_counts = _stats_counts(whole_jsonl, store)
    took["export"] = _timed(
        whole_export, "import", "-n", ns(whole_export), str(exported), store=store
    )
    # a kill before the command opened the store tests nothing: start after that
    startup = _timed(whole_export, "stats", "-n", ns(whole_export), store=store)
    report: dict[str, Any] = {
        "kills": 0,
        "whole_s": {k: round(v, 2) for k, v in took.items()},
        "startup_s": round(startup, 2),
        "runs": [],
        "problems": [],
        "checks": [],
    }
    for n in range(kills):
        kind = "export" if n % 2 else "jsonl"
        file = exported if kind == "export" else source
        killed, err, delay, attempts, data_dir = _killed_midway(
            partial(_import_command, file=file, store=store),
            partial(_fresh, workdir / f"import-{n}", store=store),
            (min(startup, took[kind]), 1.1 * took[kind]),
            rng,
            store=store,
            max_batch=batch,
        )
        check = check_report(data_dir, ns(data_dir), store)
        check["when"] = f"import {n}"
        report["checks"].append(check)
        present = present_ids(data_dir, ns(data_dir), ids, store)
        count = len(present)
        prefix = set(ids[:count]) == present
        if kind == "export":
            whole = count in (0, len(ids))
        else:
            whole = count % max_batch == 0 or count == len(ids)
        run = {
            "file": kind,
            "delay_s": round(delay, 3),
            "attempts": attempts,
            "killed": killed,
            "present": count,
        }
        problem: dict[str, Any] = {}
        if not (prefix and whole):
            problem.update(prefix=prefix, whole_batches=whole, err=err)
        if kind == "jsonl":
            # the same import again with --resume finishes it: every line once, as an
            # uninterrupted import leaves the namespace
            done = hippograph(
                data_dir,
                "import",
                "-n",
                ns(data_dir),
                str(source),
                "--resume",
                store=store,
                max_batch=batch,
            )
            resumed = _stats_counts(data_dir, store)
            run["resumed"] = done.returncode == 0 and resumed == whole_counts
            if not run["resumed"]:
                problem.update(resume_err=done.stderr.strip()[-300:], resumed=resumed)
            check = check_report(data_dir, ns(data_dir), store)
            check["when"] = f"import {n}, resumed"
            report["checks"].append(check)
        report["runs"].append(run)
        report["kills"] += killed
        if problem:
            report["problems"].append({**run, **problem})
    report["check_clean"] = all(c["exit"] == 0 and c["clean"] for c in report["checks"])
    return report


def _import_command(data_dir: Path, *, file: Path, store: Mapping[str, str] | None) -> list[str]:
    return ["import", "-n", namespace_of(data_dir, store), str(file)]


def _stats_counts(data_dir: Path, store: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Memories per tier and associations per type of the directory's namespace."""
    namespace = namespace_of(data_dir, store)
    done = hippograph(data_dir, "stats", "-n", namespace, "--json", store=store)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    stats = json.loads(done.stdout)
    return {"memories": stats.get("memories"), "associations": stats.get("associations")}


# -- a lifecycle archive run -----------------------------------------------------------


def _archive_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "archive").rglob("*") if p.is_file())


def crash_archive(
    workdir: Path,
    kills: int,
    *,
    seed: int = 0,
    memories: int = 1_500,
    store: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Kill ``hippograph lifecycle run --jobs tiering,archive`` ``kills`` times, each on
    a fresh copy of a data directory of ``memories`` old unimportant memories (on
    ``store``: Neo4j's variables, or None for the SQLite file; on Neo4j a fresh import
    into a namespace of its own), at a random moment between the store's opening and the
    end of a whole run; then run it again to completion. See the module docstring for
    what must hold; the end state must also be the one an uninterrupted run reaches (the
    same stubs and archive files)."""
    rng = random.Random(seed)
    old = workdir / "old.jsonl"
    ids = write_jsonl(old, memories, old=True, prefix="o")
    seeded = _fresh(workdir / "archive-seed", store=store)
    _timed(seeded, "import", "-n", namespace_of(seeded, store), str(old), store=store)

    # idleness counts from when hippograph stored a memory: the run judges as of 60 days
    # on, when the imported memories are cold (the same time for every run, so each
    # plans the same end state)
    at = (datetime.now(UTC) + timedelta(days=60)).isoformat()

    def run(data_dir: Path) -> list[str]:
        namespace = namespace_of(data_dir, store)
        return [
            "lifecycle",
            "run",
            "-n",
            namespace,
            "--jobs",
            "tiering,archive",
            "--at",
            at,
            "--json",
        ]

    def fresh(data_dir: Path) -> Path:
        return _fresh(data_dir, seeded, store=store, seed=old)

    reference = fresh(workdir / "archive-whole")
    took = _timed(reference, *run(reference), store=store)
    startup = _timed(seeded, "stats", "-n", namespace_of(seeded, store), store=store)
    expected = check_report(reference, namespace_of(reference, store), store)
    expected_files = _archive_files(reference)
    report: dict[str, Any] = {
        "kills": 0,
        "whole_s": round(took, 2),
        "startup_s": round(startup, 2),
        "stubs": expected.get("stubs", 0),
        "runs": [],
        "problems": [],
        "checks": [],
    }
    for n in range(kills):
        killed, err, delay, attempts, data_dir = _killed_midway(
            run,
            partial(fresh, workdir / f"archive-{n}"),
            (min(startup, took), 1.1 * took),
            rng,
            store=store,
        )
        namespace = namespace_of(data_dir, store)
        after_kill = check_report(data_dir, namespace, store)
        # after a kill only archive files written for a commit that never came may be
        # out of place; anything else is damage
        bad = [
            key
            for key in ("not_indexed", "stale_indexed", "dangling_edges", "broken_stubs")
            if after_kill.get(key)
        ]
        again = hippograph(data_dir, *run(data_dir), store=store)
        final = check_report(data_dir, namespace, store)
        final["when"] = f"archive {n}, after the second run"
        report["checks"].append(final)
        lost = len(ids) - len(present_ids(data_dir, namespace, ids, store))
        if after_kill.get("stubs"):
            landed = "after the commit"
        elif after_kill.get("orphan_files"):
            landed = "files written, before the commit"
        else:
            landed = "before any archive file"
        entry = {
            "delay_s": round(delay, 3),
            "attempts": attempts,
            "killed": killed,
            "landed": landed,
            "orphans_after_kill": after_kill.get("orphan_files", []),
            "lost": lost,
        }
        report["runs"].append(entry)
        report["kills"] += killed
        same = final.get("stubs") == expected.get("stubs") and (
            _archive_files(data_dir) == expected_files
        )
        if bad or again.returncode != 0 or lost or not final.get("clean") or not same:
            report["problems"].append(
                {
                    **entry,
                    "after_kill": {k: after_kill.get(k) for k in bad},
                    "second_run": again.returncode,
                    "second_run_err": again.stderr.strip()[-500:],
                    "final": {k: v for k, v in final.items() if v},
                    "same_as_uninterrupted": same,
                    "err": err[-500:],
                }
            )
    report["check_clean"] = all(c["exit"] == 0 and c["clean"] for c in report["checks"])
    return report
