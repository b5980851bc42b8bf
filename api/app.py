"""The ASGI app and the ``hippograph serve`` process around it.

This module owns what happens to an HTTP request before and after the GraphQL schema
(:mod:`hippograph.api.schema`) sees it, and the life of the server:

* routes: ``POST /graphql`` (GraphQL over HTTP), ``GET /graphql`` for browsers and
  ``/static/graphiql/`` (the offline GraphiQL of :mod:`hippograph.api.graphiql`, when present),
  ``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus);
* every request passes through :class:`~hippograph.api.request_scope.RequestScope` (its
  id, a bounded body, one JSON log line and its latency metric); the routes share an
  :class:`~hippograph.api.state.AppState` and answer refusals with its error shape;
* ``GET /graph``: the picture of :mod:`hippograph.api.graph_page`, given the app's state;
* authentication: with ``HIPPOGRAPH_API_KEYS`` set, ``/graphql`` and ``/metrics`` need
  ``Authorization: Bearer <key>``; a missing or unknown key is answered ``401`` with a
  GraphQL-shaped body (``UNAUTHENTICATED``) before the document is even parsed. A valid
  key used on a namespace it does not hold gets a ``FORBIDDEN`` error for that field in
  an ordinary ``200`` GraphQL response (one document may touch several namespaces);
* start-up and shut-down (the lifespan): the graph opens, then the model loads and the
  namespaces' indexes load in the background — ``/healthz`` answers at once, ``/readyz``
  only once a trivial embedding has been computed; on SIGTERM/SIGINT in-flight requests
  finish (``HIPPOGRAPH_SHUTDOWN_GRACE_S``), then ``MemoryGraph.close`` checkpoints;
* the graph's encoder is wrapped once at start: concurrent requests share model calls
  (:class:`~api.encoding.CoalescingEncoder`); recall reports its stage timings itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import anyio
import anyio.to_thread
import strawberry
from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from hippograph.api.auth import ApiKeys, Unauthenticated
from hippograph.api.encoding import CoalescingEncoder
from hippograph.api.graph_page import graph_routes
from hippograph.api.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from hippograph.api.request_scope import RequestScope
from hippograph.api.schema import (
    RequestContext,
    RequestRecord,
    Service,
    build_schema,
    error_payload,
)
from hippograph.api.settings import Settings, open_graph
from hippograph.api.state import AppState, error_response
from hippograph.graph import MemoryGraph
from hippograph.graph.model import StoreUnavailable
from hippograph.lifecycle.runner import parse_jobs
from hippograph.lifecycle.scheduler import LifecycleSchedule

__all__ = ["GRAPHQL_PATH", "ConfigurationError", "JsonFormatter", "create_app", "serve"]

GRAPHQL_PATH = "/graphql"

log = logging.getLogger("hippograph.server")


class ConfigurationError(ValueError):
    """A setting the service cannot start with (e.g. a malformed HIPPOGRAPH_API_KEYS)."""


# -- logging --------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's ``fields``
    (``extra={"fields": {...}}``) and the traceback, if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for every logger (uvicorn's included)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# -- the GraphQL endpoint -------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _holds_surrogate(value: object) -> bool:
    """Whether a string anywhere in decoded JSON (keys too) holds a surrogate code point.
    Iterative: the value may be nested as deep as the JSON parser allows."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class GraphQLEndpoint(GraphQL[RequestContext, None]):
    """strawberry's ASGI view with this service's authentication, context and errors."""

    def __init__(self, schema: strawberry.Schema, state: AppState) -> None:
        super().__init__(
            schema,
            graphql_ide=None,  # the offline GraphiQL of api.graphiql serves browsers
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
        )
        self.state = state

    def decode_json(self, data: str | bytes) -> object:
        """The body as JSON, or a 400 ``BAD_INPUT``. strawberry answers 400 only for a
        ``json.JSONDecodeError``; these bodies were 500s (found by tests/reliability/
        test_fuzz.py): bytes that are not UTF-8 (``UnicodeDecodeError``), JSON nested
        past the parser's recursion limit (``RecursionError``), and a JSON string, number
        or null (strawberry calls ``.get`` on it). A string holding a lone surrogate (a
        ``"\\ud800"`` escape, or UTF-8-encoded surrogates, which ``json.loads`` lets
        through) is not text: it failed deep in the engine (INTERNAL) when encoded."""
        try:
            value = json.loads(data)
        except UnicodeDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON: not UTF-8") from None
        except RecursionError:
            raise HTTPException(
                400, "Unable to parse request body as JSON: nested too deeply"
            ) from None
        if not isinstance(value, dict | list):  # a list is a batch, which strawberry refuses
            raise HTTPException(400, 'expected a JSON object {"query": ..., "variables": ...}')
        if _holds_surrogate(value):
            raise HTTPException(400, "a string holds a lone surrogate (U+D800 to U+DFFF)")
        return value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        record: RequestRecord = scope["state"]["record"]
        response = await self._respond(request, record)
        await response(scope, receive, send)

    async def _respond(self, request: Request, record: RequestRecord) -> Response:
        if request.method != "POST":
            return error_response(
                405,
                "BAD_INPUT",
                'method: send GraphQL as POST with a JSON body {"query": ..., "variables": ...}',
                record,
                headers={"Allow": "POST"},
            )
        try:
            principal = self.state.authenticate(request)
        except Unauthenticated as exc:
            return error_response(
                401, exc.code, str(exc), record, headers={"WWW-Authenticate": "Bearer"}
            )
        record.principal = principal.name
        service = self.state.service
        if service is None or self.state.stopping:
            return error_response(
                503, "INTERNAL", "the service is starting or stopping; retry shortly", record
            )
        context = RequestContext(service=service, principal=principal, record=record)
        try:
            return await self.run(request, context=context)
        except HTTPException as exc:  # a body strawberry cannot read as GraphQL
            return error_response(exc.status_code, "BAD_INPUT", f"body: {exc.reason}", record)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        record: RequestRecord = request.scope["state"]["record"]
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            errors = [error_payload(error, record.request_id) for error in result.errors]
            record.codes.extend(e["extensions"]["code"] for e in errors)
            response["errors"] = errors  # type: ignore[typeddict-item]
        return response


# -- plain routes ---------------------------------------------------------------------


def _healthz(state: AppState) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return healthz


def _readyz(state: AppState) -> Callable[[Request], Awaitable[Response]]:
    async def readyz(request: Request) -> Response:
        if state.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        if state.failure is not None:
            return JSONResponse({"status": "failed", "reason": state.failure}, status_code=503)
        if not state.ready or state.service is None:
            return JSONResponse({"status": "starting"}, status_code=503)
        reason = await _store_problem(state.service, state.settings.ready_timeout_s)
        if reason is not None:
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready", "warm_up_s": state.warm_up_seconds})

    return readyz


async def _store_problem(service: Service, timeout: float) -> str | None:
    """Why the store cannot be used now (None when it answers its ping within
    ``timeout`` seconds). Not in the engine's worker pool: when the store is down those
    threads may all be waiting on it, and readiness must still answer."""
    try:
        with anyio.fail_after(timeout):
            await anyio.to_thread.run_sync(service.graph.store.ping, abandon_on_cancel=True)
    except StoreUnavailable as exc:
        return str(exc)
    except TimeoutError:
        return f"the store did not answer within {timeout:g} s (HIPPOGRAPH_READY_TIMEOUT_S)"
    return None


def _metrics(state: AppState) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        record: RequestRecord = request.scope["state"]["record"]
        try:
            principal = state.authenticate(request)
        except Unauthenticated as exc:
            return error_response(
                401, exc.code, str(exc), record, headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.everywhere:
            # the per-namespace gauges name every namespace: for keys holding all of them
            return error_response(
                403,
                "FORBIDDEN",
                "metrics: only a key for every namespace ('*') may read them",
                record,
            )
        record.principal = principal.name
        service = state.service
        if service is not None and state.ready and not state.stopping:
            try:
                snapshot = await service.run(lambda: state.namespace_stats(service))
            except StoreUnavailable as exc:  # the request metrics still count; keep the last
                log.warning("metrics: namespace counts not refreshed: %s", exc)
            else:
                state.metrics.set_namespace_stats(snapshot)
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def _graphiql_routes() -> list[BaseRoute]:
    """The offline GraphiQL routes, when :mod:`hippograph.api.graphiql` is installed."""
    try:
        from hippograph.api.graphiql import graphiql_routes
    except ImportError:
        log.info("hippograph.api.graphiql is not available: no GraphiQL page")
        return []
    return list(graphiql_routes(GRAPHQL_PATH))


# -- the app --------------------------------------------------------------------------


def create_app(settings: Settings, *, graph: MemoryGraph | None = None) -> Starlette:
    """The service as an ASGI app.

    The graph is opened from ``settings`` when the app starts (or ``graph`` is used, for
    embedding and tests); either way the app owns it from then on and closes it when it
    stops. Raises :class:`ConfigurationError` for settings it cannot serve with.
    """
    try:
        keys = ApiKeys.from_secret(settings.api_keys)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    state = AppState(settings=settings, keys=keys, metrics=ServiceMetrics())
    endpoint = GraphQLEndpoint(build_schema(settings), state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = (
            graph if graph is not None else await anyio.to_thread.run_sync(open_graph, settings)
        )
        # Concurrent requests share model calls (the engine's embed timing sees the wait).
        coalescing = CoalescingEncoder(opened.encoder)
        opened.encoder = coalescing
        service = Service(
            graph=opened,
            settings=settings,
            metrics=state.metrics,
            encoder=coalescing,
            limiter=anyio.CapacityLimiter(settings.worker_threads),
        )
        state.service = service
        log.info(
            "graph open",
            extra={"fields": {"data_dir": str(opened.data_dir), "encoder": coalescing.name}},
        )
        warm = asyncio.get_running_loop().create_task(_warm_up(state, service))
        schedule = None
        if settings.lifecycle_interval_s > 0:
            schedule = LifecycleSchedule(
                opened,
                config=settings.lifecycle_config(),
                jobs=parse_jobs(settings.lifecycle_jobs),
                interval_s=settings.lifecycle_interval_s,
            )
            schedule.start()
        try:
            yield
        finally:
            state.stopping = True
            state.metrics.ready.set(0)
            await warm  # a model half loaded cannot be interrupted; let it finish
            if schedule is not None:
                await anyio.to_thread.run_sync(schedule.stop)  # after the job in progress
            await _drain(service, settings.shutdown_grace_s)
            await anyio.to_thread.run_sync(opened.close)
            log.info("graph closed (checkpointed)")

    app = Starlette(
        routes=[
            *_graphiql_routes(),
            Route(GRAPHQL_PATH, endpoint, name="graphql"),
            *graph_routes(state),  # GET /graph
            Route("/healthz", _healthz(state), methods=["GET"]),
            Route("/readyz", _readyz(state), methods=["GET"]),
            Route("/metrics", _metrics(state), methods=["GET"]),
        ],
        middleware=[
            Middleware(
                RequestScope,
                metrics=state.metrics,
                max_body_bytes=settings.max_body_bytes,
                graphql_path=GRAPHQL_PATH,
            )
        ],
        lifespan=lifespan,
    )
    app.state.hippograph = state
    return app


async def _drain(service: Service, seconds: float) -> None:
    """Wait (at most ``seconds``) for engine calls still running in worker threads: a
    request whose client gave up, or one cut off by the graceful-shutdown timeout, keeps
    its thread until the engine returns, and the graph must not close under it."""
    deadline = time.monotonic() + seconds
    while service.limiter.borrowed_tokens and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if service.limiter.borrowed_tokens:
        log.warning(
            "closing the graph with %d engine calls still running", service.limiter.borrowed_tokens
        )


async def _warm_up(state: AppState, service: Service) -> None:
    try:
        await service.run(lambda: state.warm_up(service))
    except Exception as exc:
        state.failure = f"{type(exc).__name__}: {exc}"
        log.error("warm-up failed: recall cannot be served", exc_info=True)
        return
    state.ready = True
    state.metrics.ready.set(1)
    log.info("ready", extra={"fields": {"warm_up_s": round(state.warm_up_seconds or 0.0, 3)}})


# -- hippograph serve -----------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _announce(keys: ApiKeys | None, host: str, port: int) -> None:
    where = {"host": host, "port": port}
    if keys is None:
        if _is_loopback(host):
            log.warning(
                "HIPPOGRAPH_API_KEYS is unset: the server is open, without authentication, "
                "to every process on this machine; it listens on %s only",
                host,
                extra={"fields": where},
            )
        else:
            log.warning(
                "HIPPOGRAPH_API_KEYS is unset and the server binds to %s: anyone who can "
                "reach it can read, write and forget every namespace. Set "
                "HIPPOGRAPH_API_KEYS, or bind to 127.0.0.1",
                host,
                extra={"fields": where},
            )
        return
    log.info(
        "API keys configured (%d): every request needs 'Authorization: Bearer <key>'",
        len(keys),
        extra={"fields": where},
    )
    for name in keys.short_keys:
        log.warning("%s is shorter than 16 characters; use a long random key", name)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """Run the service until SIGTERM or SIGINT; returns the process exit code (0 after a
    clean shutdown, 1 if it could not start)."""
    import uvicorn

    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    app = create_app(settings)  # a bad setting fails here, before logging is set up
    configure_logging(settings.log_level)
    _announce(app.state.hippograph.keys, host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our JSON handler on the root logger
        access_log=False,  # RequestScope writes one line per request
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        server_header=False,
    )
    server = uvicorn.Server(config)
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    # uvicorn handles SIGTERM/SIGINT while it serves (graceful shutdown), then re-raises
    # the signal to the handler it found: this one, so the process exits 0, not killed.
    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        log.error("the server did not start")
        return 1
    names = [signal.Signals(s).name for s in received]
    log.info("stopped", extra={"fields": {"signals": names}})
    return 0
