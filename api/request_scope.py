"""The outermost layer of every HTTP request: :class:`RequestScope`.

It gives each request an id (the ``X-Request-Id`` header, ``extensions.requestId`` of its
errors) and a :class:`~hippograph.api.schema.RequestRecord` the routes fill in, bounds
its body (``HIPPOGRAPH_MAX_BODY_BYTES``: ``413``), turns an unexpected exception into a
``500`` naming the id, and when the request ends writes its one JSON access-log line and
its metrics.
"""

from __future__ import annotations

import logging
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hippograph.api.metrics import ServiceMetrics
from hippograph.api.request import RequestRecord
from hippograph.api.state import error_response

__all__ = ["RequestScope"]

log = logging.getLogger("hippograph.server")
access_log = logging.getLogger("hippograph.access")


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class RequestScope:
    """Outermost layer of every HTTP request: gives it an id and a record, bounds its
    body, turns an unexpected exception into a ``500`` with the id (logged with its
    traceback), and when it ends writes its log line and its metrics."""

    def __init__(
        self, app: ASGIApp, *, metrics: ServiceMetrics, max_body_bytes: int, graphql_path: str
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.graphql_path = graphql_path  # its requests are timed by operation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        record = RequestRecord(request_id)
        is_graphql = scope["path"] == self.graphql_path and scope["method"] == "POST"
        if is_graphql:
            record.operation = "invalid"  # until the document is parsed and valid
        scope.setdefault("state", {})["record"] = record
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        try:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._bounded_body(scope, receive)
                if body is None:
                    limit = self.max_body_bytes
                    response = error_response(
                        413,
                        "LIMIT_EXCEEDED",
                        f"body: the request body is larger than {limit} bytes "
                        f"(HIPPOGRAPH_MAX_BODY_BYTES={limit})",
                        record,
                    )
                    await response(scope, receive, send_with_id)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_with_id)
        except _Disconnected:
            status = status or 499  # the client went away before sending its body
        except Exception:
            log.exception(
                "unexpected error in request %s",
                request_id,
                extra={"fields": {"request_id": request_id}},
            )
            if status == 0:
                response = error_response(
                    500,
                    "INTERNAL",
                    f"internal error; quote request id {request_id} to the operator",
                    record,
                )
                await response(scope, receive, send_with_id)
            else:
                record.codes.append("INTERNAL")
        finally:
            self._finish(scope, record, status, time.perf_counter() - started, is_graphql)

    async def _bounded_body(self, scope: Scope, receive: Receive) -> bytes | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > self.max_body_bytes:
                        return None
                except ValueError:
                    pass
        return await _read_body(receive, self.max_body_bytes)

    def _finish(
        self, scope: Scope, record: RequestRecord, status: int, seconds: float, is_graphql: bool
    ) -> None:
        outcome = "ok" if status < 400 and not record.codes else "error"
        if is_graphql:
            self.metrics.observe_request(record.operation, outcome, seconds)
        self.metrics.count_errors(record.codes)
        namespaces = sorted(record.namespaces)
        fields = {
            "request_id": record.request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "operation": record.operation,
            "namespace": ",".join(namespaces) if namespaces else None,
            "principal": record.principal,
            "latency_ms": round(seconds * 1000.0, 3),
            "outcome": outcome,
            "codes": sorted(set(record.codes)),
        }
        # Probes and scrapes every few seconds would drown the log: debug, unless failing.
        quiet = not is_graphql and status < 400
        access_log.log(
            logging.DEBUG if quiet else logging.INFO, "request", extra={"fields": fields}
        )
