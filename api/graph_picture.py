"""The picture of a piece of the memory graph, drawn in the browser by cytoscape.js.

This module owns how memories, entities and associations look, and the self-contained
HTML page that shows them (``GET /graph`` of :mod:`hippograph.api.graph_page`, and the
notebooks, which show the same page in an ``<iframe>``):

* :func:`visualization` turns them into a :class:`GraphPicture`, cytoscape.js elements:
  memories coloured by tier and sized by importance, captioned with their content
  shortened; entities sand, square-ish, captioned with their name; associations coloured
  by type, as wide as their weight and labelled ``TYPE weight`` (the colours of the Neo4j
  Browser style in ``graph/browser/hippograph.grass``); the focus ringed and bold;
* :meth:`GraphPicture.html` is the page: a note and a *fit* button above the picture, a
  legend below it (tiers, entities, the focus, association types, width = weight), a
  tooltip with each element's properties, and the picture laid out by force (``cose``,
  captions counted in the nodes' sizes) and fitted to its frame, never zoomed past 1.6x
  (so a depth-1 picture is not drawn with giant nodes).

The page loads nothing, not even from this server: cytoscape.js (MIT, vendored pinned
and checksummed in ``api/static/cytoscape/`` by ``tools/vendor_cytoscape.py``, about
440 kB), the page's script and its CSS (``api/static/graph/``) are inlined. Its
Content-Security-Policy (:data:`PAGE_CSP`) allows exactly those two scripts, by hash,
and connects nowhere. The data reaches the page as an inert JSON block with ``<``, ``>``
and ``&`` escaped, and the script writes text only through ``textContent``, so a
memory's content cannot become markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from hippograph.graph import Association, AssociationType, Memory, Tier

__all__ = [
    "CAPTION_CHARS",
    "ENTITY_COLOUR",
    "TIER_COLOURS",
    "TYPE_COLOURS",
    "GraphPicture",
    "page_csp",
    "visualization",
]

CAPTION_CHARS = 40
#: The content a tooltip shows, at most: it bounds the page's size (limit=500 nodes).
TOOLTIP_CHARS = 280

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
    AssociationType.SUPERSEDES: "#5B6BD5",
}

_STATIC = Path(__file__).resolve().parent / "static"
_RENDERER = _STATIC / "cytoscape" / "cytoscape.min.js"
_SCRIPT = _STATIC / "graph" / "page.js"
_STYLE = _STATIC / "graph" / "page.css"
# Inside a <script> block only "</script" and "<!--" matter; escaping all three keeps
# the JSON valid and inert anywhere.
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(slots=True)
class GraphPicture:
    """cytoscape.js elements (``{"data": {...}}`` each) and the words around them."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    title: str = "hippograph"
    note: str = ""

    def wire(self) -> dict[str, Any]:
        """What the page receives: each node's data, and each edge as ``[source index,
        target index, type, weight, explicit]`` with one colour per type (an edge in
        cytoscape's own form is five times larger; the page expands them and draws each
        ``1 + 5 x weight`` wide, labelled ``TYPE weight``)."""
        index = {n["data"]["id"]: i for i, n in enumerate(self.nodes)}
        edges = [e["data"] for e in self.edges]
        return {
            "nodes": [n["data"] for n in self.nodes],
            "edges": [
                [index[e["source"]], index[e["target"]], e["type"], e["weight"], int(e["explicit"])]
                for e in edges
            ],
            "colours": {e["type"]: e["colour"] for e in edges},
        }

    def html(self) -> str:
        """The self-contained page (send it with :func:`page_csp`)."""
        data = json.dumps(self.wire(), ensure_ascii=False, separators=(",", ":"))
        renderer, script, style = _assets()
        return "\n".join(
            (
                "<!doctype html>",
                '<html lang="en">',
                "<head>",
                '<meta charset="utf-8">',
                '<meta name="viewport" content="width=device-width, initial-scale=1">',
                f"<title>{html.escape(self.title)}</title>",
                f"<style>{style}</style>",
                "</head>",
                "<body>",
                f'<div id="bar"><div id="hippograph-note">{html.escape(self.note)}</div>'
                '<button id="fit" type="button" title="fit the picture to the window">'
                "fit</button></div>",
                '<div id="graph"></div>',
                self._legend(),
                '<div id="tip" hidden></div>',
                '<script type="application/json" id="hippograph-data">'
                f"{data.translate(_JSON_ESCAPES)}</script>",
                f"<script>{renderer}</script>",
                f"<script>{script}</script>",
                "</body>",
                "</html>",
                "",
            )
        )

    def iframe(self, height: int = 600) -> str:
        """The page in an ``<iframe srcdoc>``, for a notebook's HTML output."""
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #C9CDD4" '
            'sandbox="allow-scripts"></iframe>'
        )

    def _repr_html_(self) -> str:  # Jupyter's rich display
        return self.iframe()

    def _legend(self) -> str:
        def item(css: str, style: str, label: str) -> str:
            return f'<li><span class="{css}" style="{style}"></span>{html.escape(label)}</li>'

        tiers = {n["data"].get("tier") for n in self.nodes}
        nodes = [
            item("dot", f"background:{colour}", tier.value)
            for tier, colour in TIER_COLOURS.items()
            if tier.value in tiers
        ]
        if any(n["data"]["kind"] == "entity" for n in self.nodes):
            nodes.append(item("dot entity", f"background:{ENTITY_COLOUR}", "entity"))
        if any(n["data"].get("focus") for n in self.nodes):
            nodes.append(item("dot focus", "", "focus"))
        types = {e["data"]["type"] for e in self.edges}
        edges = [
            item("bar", f"background:{colour}", kind.value)
            for kind, colour in TYPE_COLOURS.items()
            if kind.value in types
        ]
        hint = (
            "line width = association weight (0 to 1; dashed: explicit link); "
            "node size = importance; hover or tap for details"
        )
        return (
            f'<div id="legend"><ul>{"".join(nodes)}</ul><ul>{"".join(edges)}</ul>'
            f'<div class="hint">{html.escape(hint)}</div></div>'
        )


@cache
def _assets() -> tuple[str, str, str]:
    """The renderer, the page's script and its CSS, read once."""
    return (
        _RENDERER.read_text(encoding="utf-8"),
        _SCRIPT.read_text(encoding="utf-8"),
        _STYLE.read_text(encoding="utf-8"),
    )


def _script_hash(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@cache
def page_csp() -> str:
    """The Content-Security-Policy of every page :meth:`GraphPicture.html` writes: its
    two inline scripts by hash, inline styles (cytoscape.js sizes its canvases with
    them), images from ``data:``/``blob:`` only, no connections."""
    renderer, script, _ = _assets()
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {_script_hash(renderer)} {_script_hash(script)}",
            "style-src 'unsafe-inline'",
            "img-src data: blob:",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        )
    )


def visualization(
    memories: Sequence[Memory],
    entities: Mapping[str, str],
    associations: Sequence[Association],
    *,
    focus: str | None = None,
    hops: Mapping[str, int] | None = None,
    title: str = "hippograph",
    note: str = "",
) -> GraphPicture:
    """The picture of memories (coloured by tier, size 20 + 30 x importance, captioned
    with their content cut to :data:`CAPTION_CHARS`), entities (sand, size 24, captioned
    with their name) and associations (coloured by type, width 1 + 5 x weight, labelled
    with type and weight by the page). The focus is 10 larger and ringed. Each element's data also
    carries what its tooltip shows (content up to :data:`TOOLTIP_CHARS`, tier, kind,
    importance, session, time, hops; type, weight, explicit). Associations whose ends
    are not both given are left out.

    >>> from hippograph.graph import Memory
    >>> picture = visualization([Memory(id="m1", namespace="ns", content="a walk")], {}, [])
    >>> picture.nodes[0]["data"]["label"], picture.nodes[0]["data"]["colour"]
    ('a walk', '#F79767')
    """
    nodes: list[dict[str, Any]] = []
    for memory in memories:
        data: dict[str, Any] = {
            "id": memory.id,
            "label": _shorten(memory.content, CAPTION_CHARS),
            "content": _shorten(memory.content, TOOLTIP_CHARS),
            "tier": memory.tier.value,
            "kind": memory.kind.value,
            "importance": round(memory.importance, 3),
            "occurred_at": memory.when.isoformat(),
            "colour": TIER_COLOURS[memory.tier],
            "size": round(20.0 + 30.0 * memory.importance + (10.0 if memory.id == focus else 0), 2),
        }
        if memory.session_id is not None:
            data["session"] = memory.session_id
        nodes.append({"data": data})
    for entity_id, name in entities.items():
        data = {
            "id": entity_id,
            "label": _shorten(name, CAPTION_CHARS),
            "name": name,
            "kind": "entity",
            "colour": ENTITY_COLOUR,
            "size": 24.0 + (10.0 if entity_id == focus else 0.0),
        }
        nodes.append({"data": data})
    for node in nodes:
        data = node["data"]
        if hops is not None and data["id"] in hops:
            data["hops"] = hops[data["id"]]
        if data["id"] == focus:
            data["focus"] = True
    present = {n["data"]["id"] for n in nodes}
    edges = [
        {
            "data": {
                "source": a.source,
                "target": a.target,
                "type": a.type.value,
                "weight": round(a.weight, 4),
                "explicit": a.explicit,
                "colour": TYPE_COLOURS[a.type],
            }
        }
        for a in associations
        if a.source in present and a.target in present
    ]
    return GraphPicture(nodes=nodes, edges=edges, title=title, note=note)
