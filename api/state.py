"""What the routes of one app share: its :class:`AppState` (settings, keys, metrics and,
once started, the service) and the error answer for a request refused before GraphQL ran.

The routes (:mod:`hippograph.api.app`, :mod:`hippograph.api.graph_page`) and the
request middleware (:mod:`hippograph.api.request_scope`) take what they need from here,
so none of them imports another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hippograph.api.auth import OPEN, ApiKeys, Principal
from hippograph.api.metrics import ServiceMetrics
from hippograph.api.request import RequestRecord, Service
from hippograph.api.settings import Settings
from hippograph.graph.model import ModelMismatch

__all__ = ["WARM_UP_TEXT", "AppState", "error_response"]

WARM_UP_TEXT = "hippograph is warming up"

log = logging.getLogger("hippograph.server")


def error_response(
    status: int,
    code: str,
    message: str,
    record: RequestRecord,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A GraphQL-shaped error body (``errors[0].extensions``: ``code``, ``requestId`` and,
    when given, ``field``) for a request rejected before GraphQL ran."""
    record.codes.append(code)
    extensions: dict[str, Any] = {"code": code, "requestId": record.request_id}
    if field is not None:
        extensions["field"] = field
    body = {"data": None, "errors": [{"message": message, "extensions": extensions}]}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


@dataclass
class AppState:
    """What the routes share: settings, keys, metrics, and — once the lifespan has
    started — the service and whether recall can be served."""

    settings: Settings
    keys: ApiKeys | None
    metrics: ServiceMetrics
    service: Service | None = None
    ready: bool = False
    stopping: bool = False
    failure: str | None = None
    warm_up_seconds: float | None = field(default=None)

    def authenticate(self, request: Request) -> Principal:
        if self.keys is None:
            return OPEN
        return self.keys.authenticate(request.headers.get("authorization"))

    def warm_up(self, service: Service) -> None:
        """Load the model (a trivial embedding) and every namespace's index and view."""
        start = time.perf_counter()
        service.graph.encoder.encode([WARM_UP_TEXT])
        snapshot = _servable_stats(service, service.graph.store.namespaces())
        limit = self.settings.metrics_max_namespaces
        self.metrics.set_namespace_stats(dict(sorted(snapshot.items())[:limit]))
        self.warm_up_seconds = time.perf_counter() - start

    def namespace_stats(self, service: Service) -> dict[str, Any]:
        names = sorted(service.graph.store.namespaces())[: self.settings.metrics_max_namespaces]
        return _servable_stats(service, names)


def _servable_stats(service: Service, names: Iterable[str]) -> dict[str, Any]:
    """Stats of the namespaces in ``names`` this graph can serve. A namespace embedded by
    another model is left out (its calls answer MODEL_MISMATCH): it must not keep the
    service from becoming ready, nor /metrics from answering, for every other one."""
    stats: dict[str, Any] = {}
    for name in names:
        try:
            stats[name] = service.graph.stats(name)
        except ModelMismatch as exc:
            log.warning("namespace not served: %s", exc)
    return stats
