"""``GET /graph``: a picture of one memory's neighbourhood, drawn by neo4j-viz.

This module owns the page a person opens to *look* at the memory graph:

* :func:`neighbourhood` walks the associations out from a focus node (a memory id or an
  ``entity:<key>``), breadth first and strongest edge first, up to ``depth`` hops and at
  most ``limit`` nodes, through the same store calls as ``Query.associations``;
* :func:`visualization` turns memories, entities and associations into a neo4j-viz
  :class:`~neo4j_viz.VisualizationGraph`: memories coloured by tier and sized by
  importance, entities sand, associations coloured by type and as wide as their weight
  (the colours of the Neo4j Browser style in ``graph/browser/hippograph.grass``);
  notebooks use it for whole namespaces;
* :func:`graph_routes` gives the Starlette route the app mounts.

The page is neo4j-viz's own standalone HTML: its JavaScript and CSS are inlined (about
4.4 MB), so it loads nothing from anywhere, not even from this server, and works with no
network. Its Content-Security-Policy allows only its own inline scripts, by hash, and
connects nowhere. The graph's text reaches the page as an inert JSON block with ``<``
escaped by neo4j-viz, so a memory's content cannot become markup.

Query parameters: ``namespace`` (required), ``focus`` (required), ``depth`` (1 to 3,
default 2), ``limit`` (1 to 500 nodes, default 150; beyond it the picture is cut and
says so). Authentication is the API's: with ``HIPPOGRAPH_API_KEYS`` set the request needs
``Authorization: Bearer <key>`` (401 without), and the key must hold the namespace (403,
before anything is looked up). Bad parameters get 400 naming the parameter, an unknown
focus 404; errors have the API's error shape (``errors[0].extensions.code``,
``requestId``, ``field``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from hippograph.api.auth import Forbidden, Unauthenticated
from hippograph.api.schema import RequestRecord
from hippograph.graph import Association, AssociationType, BadInput, HippographError, Memory, Tier
from hippograph.graph.model import ENTITY_PREFIX
from neo4j_viz import Node, Relationship, VisualizationGraph
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from hippograph.api.app import AppState
    from hippograph.graph import MemoryGraph

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_LIMIT",
    "ENTITY_COLOUR",
    "GRAPH_PATH",
    "MAX_DEPTH",
    "MAX_LIMIT",
    "TIER_COLOURS",
    "TYPE_COLOURS",
    "FocusNotFound",
    "Neighbourhood",
    "graph_page_html",
    "graph_routes",
    "neighbourhood",
    "note",
    "visualization",
]

GRAPH_PATH = "/graph"
DEFAULT_DEPTH = 2
MAX_DEPTH = 3
DEFAULT_LIMIT = 150
MAX_LIMIT = 500
CAPTION_CHARS = 40

#: Memory colours by tier, as in the Neo4j Browser style (graph/browser/hippograph.grass).
TIER_COLOURS: dict[Tier, str] = {
    Tier.WORKING: "#F79767",
    Tier.EPISODIC: "#4C8EDA",
    Tier.SEMANTIC: "#57A773",
    Tier.ARCHIVED: "#C9CDD4",
}
ENTITY_COLOUR = "#E3D5BD"
#: Association colours by type, as in the Browser style.
TYPE_COLOURS: dict[AssociationType, str] = {
    AssociationType.SIMILAR_TO: "#57C7E3",
    AssociationType.FOLLOWS: "#D7A013",
    AssociationType.MENTIONS: "#B8A07E",
    AssociationType.PART_OF: "#3E8A59",
    AssociationType.DERIVED_FROM: "#8E6CC0",
    AssociationType.CAUSES: "#E0662B",
    AssociationType.CONTRADICTS: "#D43F4A",
    AssociationType.RELATED_TO: "#8A909A",
}


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


# -- the picture ----------------------------------------------------------------------


def _caption(text: str, limit: int = CAPTION_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def visualization(
    memories: Sequence[Memory],
    entities: Mapping[str, str],
    associations: Sequence[Association],
    *,
    focus: str | None = None,
    hops: Mapping[str, int] | None = None,
) -> VisualizationGraph:
    """A neo4j-viz graph of memories (coloured by tier, radius 6 + 24 x importance),
    entities (sand, radius 16: zoomed out, the viewer writes no caption on smaller
    nodes) and associations (coloured by type, width 1 + 4 x weight), with a legend of
    the tiers and types present. Node and relationship properties carry the data
    (content, tier, kind, importance, session, time; type, weight) for the viewer's
    tooltips and search. Associations whose ends are not both given are left out."""
    # model_validate rather than keyword construction: neo4j-viz's pydantic models give
    # mypy (without the pydantic plugin) a constructor that wants every optional field.
    nodes: list[Node] = []
    for memory in memories:
        properties: dict[str, Any] = {
            "id": memory.id,
            "content": memory.content,
            "tier": memory.tier.value,
            "kind": memory.kind.value,
            "importance": round(memory.importance, 3),
            "session": memory.session_id,
            "occurred_at": memory.when.isoformat(),
            "access_count": memory.access_count,
        }
        if hops is not None and memory.id in hops:
            properties["hops"] = hops[memory.id]
        size = 6.0 + 24.0 * memory.importance + (6.0 if memory.id == focus else 0.0)
        nodes.append(
            Node.model_validate(
                {
                    "id": memory.id,
                    "caption": _caption(memory.content),
                    "color": TIER_COLOURS[memory.tier],
                    "size": size,
                    "properties": properties,
                }
            )
        )
    for entity_id, label in entities.items():
        properties = {"id": entity_id, "label": label, "kind": "entity"}
        if hops is not None and entity_id in hops:
            properties["hops"] = hops[entity_id]
        nodes.append(
            Node.model_validate(
                {
                    "id": entity_id,
                    "caption": _caption(label),
                    "color": ENTITY_COLOUR,
                    "size": 16.0 + (6.0 if entity_id == focus else 0.0),
                    "properties": properties,
                }
            )
        )
    present = {n.id for n in nodes}
    relationships = [
        Relationship.model_validate(
            {
                "id": f"{a.source}|{a.type.value}|{a.target}",
                "source": a.source,
                "target": a.target,
                "caption": a.type.value,
                "color": TYPE_COLOURS[a.type],
                "width": 1.0 + 4.0 * max(0.0, min(a.weight, 1.0)),
                "properties": {
                    "type": a.type.value,
                    "weight": round(a.weight, 4),
                    "explicit": a.explicit,
                },
            }
        )
        for a in associations
        if a.source in present and a.target in present
    ]
    picture = VisualizationGraph(nodes=nodes, relationships=relationships)
    legend_nodes: dict[Any, Any] = {
        t.value: colour for t, colour in TIER_COLOURS.items() if any(m.tier is t for m in memories)
    }
    if entities:
        legend_nodes["entity"] = ENTITY_COLOUR
    legend_types: dict[Any, Any] = {
        t.value: colour
        for t, colour in TYPE_COLOURS.items()
        if any(r.properties["type"] == t.value for r in relationships)
    }
    picture.set_legend(nodes=legend_nodes, relationships=legend_types)
    return picture


_TITLE = re.compile(r"<title>.*?</title>", re.DOTALL | re.IGNORECASE)

_NOTE_STYLE = (
    "position:fixed;left:52px;top:8px;z-index:10;max-width:60%;padding:6px 10px;"
    "font:13px/1.4 system-ui,sans-serif;color:#2A2C34;background:rgba(255,255,255,.9);"
    "border:1px solid #C9CDD4;border-radius:6px"
)


class _InlineScripts(HTMLParser):
    """The text of every inline script a browser would run (JSON data blocks are inert
    and are skipped). An HTML parser, not a pattern: the page's comments mention
    ``<script>`` tags too."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            kind = (dict(attrs).get("type") or "").lower()
            runs = not dict(attrs).get("src") and "json" not in kind
            self._current = [] if runs else None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def _inline_script_hashes(page: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) of the page's inline scripts."""
    parser = _InlineScripts()
    parser.feed(page)
    parser.close()
    return [
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in parser.scripts
    ]


def _csp(page: str) -> str:
    scripts = " ".join(_inline_script_hashes(page)) or "'none'"
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {scripts}",
            "style-src 'unsafe-inline'",
            "font-src data:",
            "img-src data: blob:",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        )
    )


def note(found: Neighbourhood) -> str:
    """One line saying what the picture shows (and where it was cut)."""
    text = (
        f"{found.namespace} · {found.size} nodes, {len(found.associations)} associations "
        f"within {found.depth} hops of {found.focus}"
    )
    if found.asked is not None:
        text += f" ({found.asked} was merged into it)"
    if found.truncated:
        text += f" · cut at limit={found.limit} nodes: raise limit (at most {MAX_LIMIT}) "
        text += "or lower depth to see more"
    return text


def graph_page_html(found: Neighbourhood) -> str:
    """The standalone page: neo4j-viz's HTML with a title and a one-line note."""
    picture = visualization(
        found.memories, found.entities, found.associations, focus=found.focus, hops=found.hops
    )
    page: str = picture.render(
        height="100vh",
        theme="light",
        max_allowed_nodes=MAX_LIMIT + 1,
        on_dangling="none",
    ).data
    title = html.escape(f"hippograph · {found.namespace} · {found.focus}")
    page = _TITLE.sub(lambda _: f"<title>{title}</title>", page, count=1)
    banner = f'<div id="hippograph-note" style="{_NOTE_STYLE}">{html.escape(note(found))}</div>'
    return page.replace("<body>", f"<body>\n    {banner}", 1)


# -- the route ------------------------------------------------------------------------


def _error(
    status: int,
    code: str,
    message: str,
    record: RequestRecord,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The API's error shape (as for requests rejected before GraphQL runs)."""
    record.codes.append(code)
    extensions: dict[str, Any] = {"code": code, "requestId": record.request_id}
    if field is not None:
        extensions["field"] = field
    body = {"data": None, "errors": [{"message": message, "extensions": extensions}]}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


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
            return _error(401, exc.code, str(exc), record, headers={"WWW-Authenticate": "Bearer"})
        record.principal = principal.name
        try:
            namespace = _text_parameter(request, "namespace")
            record.namespaces.add(namespace[:128])
            try:
                principal.require(namespace)  # before any lookup: nothing leaks
            except Forbidden as exc:
                return _error(403, exc.code, str(exc), record, field="namespace")
            focus = _text_parameter(request, "focus")
            depth = _int_parameter(request, "depth", DEFAULT_DEPTH, MAX_DEPTH)
            limit = _int_parameter(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        except BadInput as exc:
            return _error(400, exc.code, str(exc), record, field=exc.field)
        service = state.service
        if service is None or state.stopping:
            return _error(503, "INTERNAL", "the service is starting or stopping; retry", record)
        graph = service.graph

        def draw() -> str:
            found = neighbourhood(graph, namespace, focus, depth=depth, limit=limit)
            return graph_page_html(found)

        try:
            page = await service.run(draw)
        except BadInput as exc:
            return _error(400, exc.code, str(exc), record, field=exc.field)
        except FocusNotFound as exc:
            return _error(404, exc.code, str(exc), record, field="focus")
        headers = {
            "content-security-policy": _csp(page),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-store",
        }
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    return [Route(GRAPH_PATH, graph_page, methods=["GET"], name="graph-page")]
