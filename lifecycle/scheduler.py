"""The lifecycle schedule: the server runs the jobs on every namespace at a fixed
interval, in a background thread, so requests never wait for them.

Each job applies its changes in one store transaction under the namespace's write
lock for the commit only; recalls keep reading the previous derived state until the
new one is swapped in. Stopping waits for the job in progress (jobs are atomic, so
the wait is bounded by one job) and skips the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from hippograph.graph import MemoryGraph
from hippograph.lifecycle.model import LifecycleConfig
from hippograph.lifecycle.runner import LifecycleReport, run_jobs

__all__ = ["LifecycleSchedule"]

log = logging.getLogger("hippograph.lifecycle")


class LifecycleSchedule:
    """Run ``jobs`` on every namespace of ``graph`` every ``interval_s`` seconds.

    ``on_report`` is called with each namespace's report (metrics, tests).
    """

    def __init__(
        self,
        graph: MemoryGraph,
        *,
        config: LifecycleConfig,
        jobs: Sequence[str],
        interval_s: float,
        on_report: Callable[[LifecycleReport], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be above 0 (0 means: no schedule; do not start)")
        self.graph = graph
        self.config = config
        self.jobs = list(jobs)
        self.interval_s = interval_s
        self.on_report = on_report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="hippograph-lifecycle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the job in progress, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()

    def run_once(self) -> list[LifecycleReport]:
        """One pass over every namespace; a namespace whose run fails is logged and
        left for the next pass (its jobs are resumable)."""
        reports: list[LifecycleReport] = []
        for namespace in self.graph.store.namespaces():
            for job in self.jobs:
                if self._stop.is_set():
                    return reports
                try:
                    report = run_jobs(self.graph, namespace, [job], config=self.config)
                except Exception:
                    log.exception("lifecycle job %s failed on namespace %r", job, namespace)
                    break
                reports.append(report)
                if self.on_report is not None:
                    self.on_report(report)
        return reports
