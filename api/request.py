"""What a GraphQL request carries: the service every request shares (graph, settings,
metrics, the bounded pool of worker threads), who is asking, and the record of what it
did; and :class:`LimitExceeded`, the error of a request larger than a setting allows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
import anyio.to_thread
import strawberry

from hippograph.api.auth import Principal
from hippograph.api.metrics import ServiceMetrics
from hippograph.api.settings import Settings
from hippograph.embeddings import TextEncoder
from hippograph.graph import (
    HippographError,
    MemoryGraph,
)

__all__ = ["Info", "LimitExceeded", "RequestContext", "RequestRecord", "Service"]

T = TypeVar("T")


class LimitExceeded(HippographError):
    """A request is larger than a configured limit allows. Nothing was changed."""

    code = "LIMIT_EXCEEDED"

    def __init__(self, field: str, message: str, *, limit: int, setting: str) -> None:
        super().__init__(f"{field}: {message}; the limit is {limit} (HIPPOGRAPH_{setting})")
        self.field = field
        self.limit = limit


@dataclass(slots=True)
class RequestRecord:
    """What one HTTP request did, filled in as it runs and logged when it ends."""

    request_id: str
    operation: str = "-"
    principal: str = "-"
    namespaces: set[str] = field(default_factory=set)
    codes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Service:
    """What every request shares: the graph, the settings, the metrics, and the bounded
    pool of threads that runs engine calls."""

    graph: MemoryGraph
    settings: Settings
    metrics: ServiceMetrics
    encoder: TextEncoder
    limiter: anyio.CapacityLimiter

    async def run(self, work: Callable[[], T]) -> T:
        """Run blocking engine work in the worker pool; the event loop stays free.

        The work runs to its end, and the caller waits for it, even when the caller is
        cancelled: graphql-core cancels the sibling fields of a field that failed (a
        native ``Task.cancel``, which anyio's shielding does not stop). Without this the
        answer went out while a sibling ``recall`` still ran (and learned) in a worker
        thread, its limiter token already returned, so neither ``WORKER_THREADS`` nor
        the shutdown drain counted it (found by tests/reliability/test_fuzz.py).
        """
        task = asyncio.ensure_future(anyio.to_thread.run_sync(work, limiter=self.limiter))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            while not task.done():
                try:
                    await asyncio.wait([task])
                except asyncio.CancelledError:
                    continue  # cancelled again: the thread still cannot be stopped
            if not task.cancelled():
                task.exception()  # retrieved (else asyncio logs it): the answer has its error
            raise


@dataclass(slots=True)
class RequestContext:
    """The GraphQL context of one request: the service, who is asking, and its record."""

    service: Service
    principal: Principal
    record: RequestRecord

    def use(self, namespace: str) -> str:
        """The namespace, once this request's key is allowed to use it (else FORBIDDEN,
        before anything is looked up, so nothing about the namespace leaks)."""
        self.record.namespaces.add(namespace[:128])
        self.principal.require(namespace)
        return namespace


Info = strawberry.Info[RequestContext, None]
