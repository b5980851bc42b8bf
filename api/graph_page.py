"""``GET /graph``: a picture of one memory's neighbourhood.

This module owns the page a person opens to *look* at the memory graph:

* :func:`neighbourhood` walks the associations out from a focus node (a memory id or an
  ``entity:<key>``), breadth first and strongest edge first, up to ``depth`` hops and at
  most ``limit`` nodes, through the same store calls as ``Query.associations``;
* :func:`graph_page_html` draws it with :mod:`hippograph.api.graph_picture` (cytoscape.js,
  inlined: one self-contained page of about 0.5 MB that loads nothing and works with no
  network), with :func:`note` saying what it shows;
* :func:`graph_routes` gives the Starlette route the app mounts, over the app's
  :class:`~hippograph.api.state.AppState`.

Query parameters: ``namespace`` (required), ``focus`` (required), ``depth`` (1 to 3,
default 2), ``limit`` (1 to 500 nodes, default 150; beyond it the picture is cut and
says so). Authentication is the API's: with ``HIPPOGRAPH_API_KEYS`` set the request needs
``Authorization: Bearer <key>`` (401 without), and the key must hold the namespace (403,
before anything is looked up). Bad parameters get 400 naming the parameter, an unknown
focus 404; errors have the API's error shape (``errors[0].extensions.code``,
``requestId``, ``field``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hippograph.api.auth import Forbidden, Unauthenticated
from hippograph.api.graph_picture import page_csp, visualization
from hippograph.api.request import RequestRecord
from hippograph.api.state import AppState, error_response
from hippograph.graph import Association, BadInput, HippographError, Memory, MemoryGraph
from hippograph.graph.model import ENTITY_PREFIX

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_LIMIT",
    "GRAPH_PATH",
    "MAX_DEPTH",
    "MAX_LIMIT",
    "FocusNotFound",
    "Neighbourhood",
    "graph_page_html",
    "graph_routes",
    "neighbourhood",
    "note",
]

GRAPH_PATH = "/graph"
DEFAULT_DEPTH = 2
MAX_DEPTH = 3
DEFAULT_LIMIT = 150
MAX_LIMIT = 500


# -- the neighbourhood ----------------------------------------------------------------


@dataclass(slots=True)
class Neighbourhood:
    """The nodes within ``depth`` association hops of ``focus`` (at most ``limit``) and
    the associations among them. ``hops`` maps each node id to its distance from the
    focus; ``truncated`` says that more nodes were within reach than ``limit``;
    ``asked`` is the focus as asked, when a dedup merge answered it with its survivor."""

    namespace: str
    focus: str
    depth: int
    limit: int
    memories: list[Memory] = field(default_factory=list)
    entities: dict[str, str] = field(default_factory=dict)  # id -> label
    associations: list[Association] = field(default_factory=list)
    hops: dict[str, int] = field(default_factory=dict)
    truncated: bool = False
    asked: str | None = None

    @property
    def size(self) -> int:
        return len(self.hops)


class FocusNotFound(HippographError):
    """The focus is neither a memory nor an entity of the namespace (HTTP 404)."""

    code = "NOT_FOUND"


def _check_bounds(value: int, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(name, f"must be an integer from {low} to {high}")


def neighbourhood(
    graph: MemoryGraph,
    namespace: str,
    focus: str,
    *,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> Neighbourhood:
    """Walk out from ``focus`` breadth first over associations in both directions.

    Each node's associations are taken strongest first (``GraphStore.associations``),
    so when ``limit`` cuts the walk it keeps the nearest and most strongly associated
    nodes. Every kept node's associations are read once, and those whose other end
    was kept too are returned, so edges between two nodes of the outer ring are
    drawn as well.

    Raises ``BadInput`` (naming ``namespace``, ``depth`` or ``limit``) and
    :class:`FocusNotFound` when ``focus`` is neither a memory nor an entity there. A
    memory merged away by dedup is answered with the memory it was merged into.
    """
    _check_bounds(depth, "depth", 1, MAX_DEPTH)
    _check_bounds(limit, "limit", 1, MAX_LIMIT)
    asked: str | None = None
    if focus.startswith(ENTITY_PREFIX):
        graph.neighbors(namespace, focus, limit=1)  # BadInput for a malformed namespace
        if focus not in graph.store.seqs_of(namespace, [focus]):
            raise FocusNotFound(f"focus: no entity {focus!r} in namespace {namespace!r}")
    else:
        found = graph.get(namespace, focus)
        if found is None:
            raise FocusNotFound(f"focus: no memory {focus!r} in namespace {namespace!r}")
        if found.id != focus:
            asked, focus = focus, found.id
    result = Neighbourhood(namespace, focus, depth, limit, asked=asked)
    hops = result.hops
    hops[focus] = 0
    edges: dict[tuple[str, str, str], Association] = {}
    frontier = [focus]
    for distance in range(depth + 1):
        following: list[str] = []
        for node in frontier:
            # one more than can be kept is enough to know the picture was cut
            for edge in graph.neighbors(namespace, node, limit=min(limit + 1, 10_000)):
                other = edge.target if edge.source == node else edge.source
                if other not in hops:
                    if distance == depth:
                        continue
                    if len(hops) >= limit:
                        result.truncated = True
                        continue
                    hops[other] = distance + 1
                    following.append(other)
                edges[(edge.source, edge.target, edge.type.value)] = edge
        frontier = following
    result.associations = [
        e for _, e in sorted(edges.items()) if e.source in hops and e.target in hops
    ]
    memory_ids = [n for n in hops if not n.startswith(ENTITY_PREFIX)]
    result.memories = graph.store.get(namespace, memory_ids)
    entity_ids = [n for n in hops if n.startswith(ENTITY_PREFIX)]
    if entity_ids:
        labels = graph.store.entities(namespace)
        result.entities = {e: labels.get(e, e.removeprefix(ENTITY_PREFIX)) for e in entity_ids}
    return result


# -- the page -------------------------------------------------------------------------


def note(found: Neighbourhood) -> str:
    """One line saying what the picture shows (and where it was cut)."""
    text = (
        f"{found.namespace} · {found.size} nodes, {len(found.associations)} associations "
        f"within {found.depth} hop{'s' if found.depth > 1 else ''} of {found.focus}"
    )
    if found.asked is not None:
        text += f" ({found.asked} was merged into it)"
    if found.truncated:
        text += f" · cut at limit={found.limit} nodes: raise limit (at most {MAX_LIMIT}) "
        text += "or lower depth to see more"
    return text


def graph_page_html(found: Neighbourhood) -> str:
    """The page drawing ``found`` (send it with :func:`~hippograph.api.graph_picture.page_csp`)."""
    picture = visualization(
        found.memories,
        found.entities,
        found.associations,
        focus=found.focus,
        hops=found.hops,
        title=f"hippograph · {found.namespace} · {found.focus}",
        note=note(found),
    )
    return picture.html()


# -- the route ------------------------------------------------------------------------


def _int_parameter(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadInput(name, f"must be an integer from 1 to {high}, got {raw[:40]!r}") from None
    _check_bounds(value, name, 1, high)
    return value


def _text_parameter(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if value is None or not value.strip():
        raise BadInput(name, "is required (e.g. /graph?namespace=NS&focus=ID&depth=2)")
    return value


def graph_routes(state: AppState) -> list[BaseRoute]:
    """``GET /graph`` for the app whose shared state is ``state``."""

    async def graph_page(request: Request) -> Response:
        record: RequestRecord = request.scope["state"]["record"]
        record.operation = "graph"
        try:
            principal = state.authenticate(request)
        except Unauthenticated as exc:
            return error_response(
                401, exc.code, str(exc), record, headers={"WWW-Authenticate": "Bearer"}
            )
        record.principal = principal.name
        try:
            namespace = _text_parameter(request, "namespace")
            record.namespaces.add(namespace[:128])
            try:
                principal.require(namespace)  # before any lookup: nothing leaks
            except Forbidden as exc:
                return error_response(403, exc.code, str(exc), record, field="namespace")
            focus = _text_parameter(request, "focus")
            depth = _int_parameter(request, "depth", DEFAULT_DEPTH, MAX_DEPTH)
            limit = _int_parameter(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        except BadInput as exc:
            return error_response(400, exc.code, str(exc), record, field=exc.field)
        service = state.service
        if service is None or state.stopping:
            return error_response(
                503, "INTERNAL", "the service is starting or stopping; retry", record
            )
        graph = service.graph

        def draw() -> str:
            found = neighbourhood(graph, namespace, focus, depth=depth, limit=limit)
            return graph_page_html(found)

        try:
            page = await service.run(draw)
        except BadInput as exc:
            return error_response(400, exc.code, str(exc), record, field=exc.field)
        except FocusNotFound as exc:
            return error_response(404, exc.code, str(exc), record, field="focus")
        headers = {
            "content-security-policy": page_csp(),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        }
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    return [Route(GRAPH_PATH, graph_page, methods=["GET"], name="graph-page")]
