"""Running lifecycle jobs on a namespace: plan from a fresh snapshot, write archive
files first when there are any, apply the plan in one store transaction, record the run.

Every run, dry or not, is recorded in the store (``GraphStore.record_run``) with its
counts, and ``MemoryGraph.stats`` shows the latest ones. Jobs run in the order given,
each planning from the state the previous one left. A dry run reads the namespace once
and carries that snapshot through the jobs, applying each plan to it in memory
(:meth:`~lifecycle.model.Snapshot.apply`): each job plans from the state the previous
one *would* leave, so a dry run reports what a real run at the same ``now`` would.
"""

from __future__ import annotations

import importlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hippograph.graph import MemoryGraph
from hippograph.graph.model import BadInput, StaleChanges
from hippograph.graph.store import RunRecord
from hippograph.lifecycle.model import JOBS, LifecycleConfig, Plan, Snapshot
from hippograph.lifecycle.stale import Basis, Reach, stale_changes

__all__ = ["JobReport", "LifecycleReport", "parse_jobs", "run_jobs"]

# The decay anchor: run records keep the (possibly simulated) time a decay ran as of,
# so the next run decays only the interval since then.
AS_OF = "as_of"
# A plan the service wrote across (see lifecycle.stale) is made again from a fresh
# snapshot, at most this many times in all; then the job is skipped until its next run.
# Its run record counts the stale changes met (STALE) and the skip (SKIPPED).
ATTEMPTS = 3
STALE = "stale"
SKIPPED = "skipped"


@dataclass(slots=True)
class JobReport:
    job: str
    run_id: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "seconds": round(self.seconds, 4),
            "counts": dict(self.counts),
        }


@dataclass(slots=True)
class LifecycleReport:
    namespace: str
    dry_run: bool
    jobs: list[JobReport] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "dry_run": self.dry_run,
            "jobs": [j.as_dict() for j in self.jobs],
        }


def parse_jobs(value: str | Sequence[str] | None) -> list[str]:
    """Job names from ``"decay,tiering"`` or a list; all of them for None or empty.
    Raises ``BadInput`` naming ``jobs`` for an unknown one."""
    if value is None:
        return list(JOBS)
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [n.strip().lower() for n in names if n and n.strip()]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        raise BadInput("jobs", f"unknown job {unknown[0]!r}; one of {', '.join(JOBS)}")
    return names or list(JOBS)


def _last_decay(graph: MemoryGraph, namespace: str) -> float | None:
    for run in graph.store.runs(namespace, limit=50):
        if run.job == "decay" and not run.dry_run and AS_OF in run.counts:
            return float(run.counts[AS_OF])
    return None


def _plan_from(
    graph: MemoryGraph,
    namespace: str,
    job: str,
    snapshot: Snapshot,
    config: LifecycleConfig,
    now: float,
) -> Plan:
    """The job's plan from ``snapshot``; decay's ``since`` is the last real decay."""
    module = importlib.import_module(f"hippograph.lifecycle.{job}")
    if job == "decay":
        plan: Plan = module.plan(snapshot, config, now, since=_last_decay(graph, namespace))
    else:
        plan = module.plan(snapshot, config, now)
    return plan


def _plan(
    graph: MemoryGraph, namespace: str, job: str, config: LifecycleConfig, now: float
) -> tuple[Plan, Basis]:
    """The job's plan, and the basis read just before its snapshot (the service keeps
    writing meanwhile: see lifecycle.stale)."""
    basis = Basis.read(graph.store, namespace)
    snapshot = Snapshot.read(graph.store, namespace)
    return _plan_from(graph, namespace, job, snapshot, config, now), basis


def _apply(graph: MemoryGraph, namespace: str, plan: Plan, basis: Basis) -> None:
    """Write the plan's archive files, then apply its changes unless the store moved
    past them (``StaleChanges``; the files this attempt added are removed again)."""
    from hippograph.lifecycle import archive

    directory = graph.archive_dir(namespace) if plan.files else None
    fresh: list[str] = []
    if directory is not None:
        fresh = [name for name, _ in plan.files if not (directory / name).exists()]
        archive.write_files(plan, directory)
    reach = Reach.of(graph.store, namespace, plan.changes)
    try:
        graph.apply_changes(
            namespace,
            plan.changes,
            stale=lambda: stale_changes(graph.store, namespace, basis, reach),
        )
    except StaleChanges:
        if directory is not None:
            for name in fresh:
                archive.remove_file(directory, name)
        raise
    if plan.files:  # the new stubs into the archive index, so recall still finds them
        graph.archive.indexed(namespace, [name for name, _ in plan.files])


def run_jobs(
    graph: MemoryGraph,
    namespace: str,
    jobs: Sequence[str] | str | None = None,
    *,
    config: LifecycleConfig | None = None,
    now: float | None = None,
    dry_run: bool = False,
) -> LifecycleReport:
    """Run ``jobs`` (default: all, in :data:`~lifecycle.model.JOBS` order) once on a
    namespace. ``now`` (epoch seconds, default the clock) is the time the jobs judge
    age and idleness by; simulations pass their own. With ``dry_run`` nothing changes
    but the run records: each report says what the job would change, planned from the
    state the jobs before it would leave (the same counts as a real run at ``now``)."""
    names = parse_jobs(jobs)
    config = config or LifecycleConfig()
    graph.checkpoint()  # pending recall side effects into the store before planning
    report = LifecycleReport(namespace=namespace, dry_run=dry_run)
    # a dry run's state: read once, then what the jobs so far would have left
    simulated = Snapshot.read(graph.store, namespace) if dry_run else None
    for job in names:
        started, clock = datetime.now(UTC), time.perf_counter()
        at = time.time() if now is None else now  # within [started, finished]
        stale, skipped = 0, False
        if simulated is not None:
            plan = _plan_from(graph, namespace, job, simulated, config, at)
            simulated = simulated.apply(plan.changes)
        else:
            for _ in range(ATTEMPTS):
                plan, basis = _plan(graph, namespace, job, config, at)
                if plan.empty:
                    break
                try:
                    _apply(graph, namespace, plan, basis)
                    break
                except StaleChanges as exc:  # the service wrote where the plan reaches
                    stale += exc.stale
            else:
                skipped = True
        counts = {} if skipped else dict(plan.counts)
        if stale:
            counts[STALE] = stale
        if skipped:
            counts[SKIPPED] = 1  # nothing applied: the next run plans afresh
        elif job == "decay":
            counts[AS_OF] = math.ceil(at)  # never before `at`: a re-run at `at` decays nothing
        seconds = time.perf_counter() - clock
        finished = datetime.now(UTC)
        record = RunRecord(uuid.uuid4().hex, job, started, finished, dry_run, counts)
        graph.store.record_run(namespace, record)
        report.jobs.append(JobReport(job, record.id, dry_run, started, finished, seconds, counts))
    return report
