"""Lifecycle jobs that keep a months-old memory graph small and relevant: decay of
association weights, tiering, dedup, consolidation into concepts, and archiving of
cold regions to compressed files (with rehydration on recall), plus the schedule that
runs them in the server and the health check.

Each job plans from a snapshot of the namespace (a pure function) and applies its plan
in one store transaction; see :mod:`hippograph.lifecycle.model`.
"""

from hippograph.lifecycle.archive import ArchiveCorrupt, recall_archived, rehydrate, search
from hippograph.lifecycle.check import CheckReport, check
from hippograph.lifecycle.model import JOBS, LifecycleConfig, Plan, Snapshot
from hippograph.lifecycle.runner import JobReport, LifecycleReport, parse_jobs, run_jobs
from hippograph.lifecycle.scheduler import LifecycleSchedule

__all__ = [
    "JOBS",
    "ArchiveCorrupt",
    "CheckReport",
    "JobReport",
    "LifecycleConfig",
    "LifecycleReport",
    "LifecycleSchedule",
    "Plan",
    "Snapshot",
    "check",
    "parse_jobs",
    "recall_archived",
    "rehydrate",
    "run_jobs",
    "search",
]
