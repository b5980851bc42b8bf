"""``GET /graph`` over real HTTP (uvicorn on a loopback port, the hashing encoder): the
page carries the neighbourhood's data, captions and legend, loads nothing from elsewhere
and stays under 1 MB, bad parameters are named, keys are checked before anything is
looked up, the vendored cytoscape.js matches its checksums, and headless Chromium draws
every node inside the window at depth 1 and 3."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from hippograph.api.app import create_app
from hippograph.api.graph_page import neighbourhood, note
from hippograph.api.graph_picture import (
    ENTITY_COLOUR,
    TIER_COLOURS,
    TYPE_COLOURS,
    page_csp,
    visualization,
)
from hippograph.api.settings import Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import (
    Association,
    AssociationType,
    Link,
    Memory,
    MemoryGraph,
    MemoryInput,
    Tier,
)
from hippograph.lifecycle import run_jobs
from tests.browser import DevTools, find_chromium
from tests.serving import serving

ADMIN = "admin-key-0123456789abcdef"
ALICE = "alice-key-0123456789abcdef"
BOB = "bob-key-0123456789abcdef"
KEYS = f"{ADMIN}=*; {ALICE}=ns-alice; {BOB}=ns-bob"
NS = "ns-alice"
# A chain of one session, m0 - m1 - m2 - m3 - m4 (FOLLOWS), words shared by none, so
# hops are counted along the chain; m4 also CAUSES m0's neighbour x1 in a second session.
CHAIN = [
    "walked along the quiet harbour before sunrise",
    "bought warm bread from a tiny bakery",
    "fixed a squeaky bicycle chain with oil",
    "planted tomatoes beside the greenhouse wall",
    "answered letters about the library fundraiser",
]


# -- a server -----------------------------------------------------------------------------


def _graph(data_dir: Path, settings: Settings) -> MemoryGraph:
    graph = MemoryGraph(data_dir, encoder=HashingEncoder(dim=256), config=settings.graph_config())
    graph.remember_many(
        NS,
        [MemoryInput(text, id=f"m{i}", session_id="chain") for i, text in enumerate(CHAIN)],
    )
    graph.remember_many(
        NS,
        [
            MemoryInput("Caroline met Melanie at the pottery class", id="c0", session_id="c"),
            MemoryInput("Melanie glazed a blue vase", id="c1", importance=0.9, session_id="d"),
        ],
    )
    graph.remember(NS, MemoryInput("a note about the harbour walk", id="x1", links=[Link("m0")]))
    graph.remember("ns-bob", MemoryInput("bob's own memory", id="b0"))
    return graph


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("graph-page")
    settings = Settings(
        data_dir=data_dir,
        encoder="hashing",
        api_keys=KEYS,
        similar_threshold=0.99,  # only FOLLOWS, MENTIONS and explicit links
        lifecycle_interval_s=0,
    )
    with serving(create_app(settings, graph=_graph(data_dir, settings)), ready_timeout=60) as base:
        yield base


def get(base: str, query: str, key: str | None = ALICE) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{base}/graph?{query}", headers=headers, timeout=60)


class _Page(HTMLParser):
    """The data block, the scripts, the title, the note, the legend's text and every
    external reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.blocks: list[str] = []
        self.scripts: list[str] = []
        self.title = ""
        self.note = ""
        self.legend = ""
        self._in: str | None = None
        self._legend_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attr in ("src", "href"):
            if named.get(attr):
                self.refs.append(f"{tag} {attr}={named[attr]}")
        if self._legend_depth:
            self._legend_depth += tag != "span"
        if tag == "script" and named.get("id") == "hippograph-data":
            self._in = "data"
            self.blocks.append("")
        elif tag == "script":
            self._in = "script"
            self.scripts.append("")
        elif tag == "div" and named.get("id") == "legend":
            self._legend_depth = 1
        elif tag == "title":
            self._in = "title"
        elif tag == "div" and named.get("id") == "hippograph-note":
            self._in = "note"

    def handle_data(self, data: str) -> None:
        if self._legend_depth:
            self.legend += data + " "
        if self._in == "data":
            self.blocks[-1] += data
        elif self._in == "script":
            self.scripts[-1] += data
        elif self._in == "title":
            self.title += data
        elif self._in == "note":
            self.note += data

    def handle_endtag(self, tag: str) -> None:
        self._in = None
        if self._legend_depth and tag != "span":
            self._legend_depth -= 1


def read_page(response: httpx.Response) -> tuple[_Page, dict[str, dict[str, Any]]]:
    """The page and its data: ``{"nodes": {id: data}, "edges": {"source|TYPE|target":
    data}}``, edges expanded from the page's compact form with their type's colour."""
    page = _Page()
    page.feed(response.text)
    blocks = [json.loads(b) for b in page.blocks if b.strip()]
    assert len(blocks) == 1, "one data block"
    wire = blocks[0]
    nodes = wire["nodes"]
    edges = {}
    for source, target, kind, weight, explicit in wire["edges"]:
        s, t = nodes[source]["id"], nodes[target]["id"]
        edges[f"{s}|{kind}|{t}"] = {
            "source": s,
            "target": t,
            "type": kind,
            "weight": weight,
            "explicit": bool(explicit),
            "colour": wire["colours"][kind],
        }
    return page, {"nodes": {n["id"]: n for n in nodes}, "edges": edges}


def node_ids(response: httpx.Response) -> set[str]:
    return set(read_page(response)[1]["nodes"])


# -- the page -----------------------------------------------------------------------------


def test_page_draws_the_neighbourhood_with_its_data(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=2")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page, data = read_page(response)
    nodes = data["nodes"]
    # two hops along the chain, and x1 one hop away through the explicit link
    assert set(nodes) == {"m0", "m1", "m2", "x1"}
    m0 = nodes["m0"]
    assert m0["content"] == CHAIN[0]
    assert m0["tier"] == "working" and m0["hops"] == 0
    assert m0["colour"].lower() == TIER_COLOURS[Tier.WORKING].lower()
    assert nodes["m2"]["hops"] == 2
    types = {(e["source"], e["target"], e["type"]) for e in data["edges"].values()}
    assert {frozenset(t[:2]) for t in types} == {
        frozenset({"m0", "m1"}),
        frozenset({"m1", "m2"}),
        frozenset({"m0", "x1"}),
    }
    colours = {e["type"]: e["colour"].lower() for e in data["edges"].values()}
    assert colours["FOLLOWS"] == TYPE_COLOURS[AssociationType.FOLLOWS].lower()
    assert colours["RELATED_TO"] == TYPE_COLOURS[AssociationType.RELATED_TO].lower()
    assert "m0" in page.title and NS in page.title
    assert "4 nodes" in page.note and "cut" not in page.note


def test_captions_focus_legend_and_weights_are_on_the_page(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=1")

    page, data = read_page(response)
    nodes = data["nodes"]
    # content shortened to a caption (40 characters at most)
    assert nodes["m0"]["label"] == CHAIN[0][:39].rstrip() + "…"
    assert nodes["x1"]["label"] == "a note about the harbour walk"
    assert [n for n, d in nodes.items() if d.get("focus")] == ["m0"]
    assert nodes["m0"]["size"] > nodes["m1"]["size"]  # same importance, the focus larger
    assert all(0.0 < edge["weight"] <= 1.0 for edge in data["edges"].values())
    explicit = [e for e in data["edges"].values() if e["explicit"]]
    assert [(e["source"], e["target"]) for e in explicit] == [("x1", "m0")]
    for words in ("working", "focus", "FOLLOWS", "RELATED_TO", "line width = association weight"):
        assert words in page.legend
    assert "archived" not in page.legend  # only what is drawn


def test_page_is_one_response_under_a_megabyte(server: str) -> None:
    for depth in (1, 2, 3):
        response = get(server, f"namespace={NS}&focus=m0&depth={depth}&limit=500")
        assert len(response.content) < 1_000_000, f"depth {depth}: {len(response.content)} bytes"


def test_a_full_picture_stays_under_a_megabyte() -> None:
    """limit=500 nodes with long contents and ten associations each."""
    memories = [Memory(id=f"{i:032x}", namespace=NS, content="word " * 400) for i in range(490)]
    entities = {f"entity:e{i}": f"Entity {i}" for i in range(10)}
    kinds = list(AssociationType)
    links = [
        Association(memories[i % 490].id, memories[(i * 7 + 1) % 490].id, kinds[i % 8], 0.123456)
        for i in range(5000)
    ]
    hops = {m.id: 1 for m in memories}
    page = visualization(memories, entities, links, focus=memories[0].id, hops=hops).html()

    assert len(page.encode()) < 1_000_000


def test_page_loads_nothing_from_elsewhere_and_runs_only_its_own_scripts(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=1")

    page, _ = read_page(response)
    assert page.refs == [], f"the page references other resources: {page.refs}"
    csp = response.headers["content-security-policy"]
    assert csp == page_csp()
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    scripts = next(d for d in csp.split("; ") if d.startswith("script-src "))
    hashes = [
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in page.scripts
    ]
    assert len(hashes) == 2 and scripts == "script-src " + " ".join(hashes)
    assert "cytoscape" in page.scripts[0][:2000]  # the renderer, with its licence header


def test_content_cannot_become_markup() -> None:
    hostile = "</script><script>alert(1)</script><!-- & <b>bold</b>"
    memory = Memory(id="m<1>", namespace=NS, content=hostile)
    picture = visualization(
        [memory], {"entity:x": "<img src=x>"}, [], focus="m<1>", title="<t>", note="<n>"
    )
    text = picture.html()

    assert "alert(1)</script>" not in text and "<img src=x>" not in text
    page = _Page()
    page.feed(text)
    assert page.title == "<t>" and page.note == "<n>" and page.refs == []
    data = json.loads(page.blocks[0])
    assert data["nodes"][0]["content"] == hostile
    assert data["nodes"][1]["name"] == "<img src=x>"


def test_a_picture_without_hops_is_drawn_whole() -> None:
    memories = [Memory(id=f"m{i}", namespace=NS, content=f"memory {i}") for i in range(3)]
    links = [
        Association("m0", "m1", AssociationType.FOLLOWS, 0.5),
        Association("m1", "zz", AssociationType.FOLLOWS, 0.5),
    ]
    picture = visualization(memories, {}, links)

    assert [n["data"]["id"] for n in picture.nodes] == ["m0", "m1", "m2"]
    wire = picture.wire()
    assert wire["edges"] == [[0, 1, "FOLLOWS", 0.5, 0]]  # only an edge with both ends drawn
    assert wire["colours"] == {"FOLLOWS": TYPE_COLOURS[AssociationType.FOLLOWS]}
    assert all("hops" not in n["data"] and "focus" not in n["data"] for n in picture.nodes)
    assert picture.iframe(300).startswith('<iframe srcdoc="&lt;!doctype html&gt;')


def test_depth_counts_hops(server: str) -> None:
    one = node_ids(get(server, f"namespace={NS}&focus=m0&depth=1"))
    three = node_ids(get(server, f"namespace={NS}&focus=m0&depth=3"))
    assert one == {"m0", "m1", "x1"}
    assert three == {"m0", "m1", "m2", "m3", "x1"}


def test_an_entity_can_be_the_focus_and_entities_are_drawn(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=entity:melanie&depth=1")

    assert response.status_code == 200, response.text
    nodes = read_page(response)[1]["nodes"]
    assert {"entity:melanie", "c0", "c1"} <= set(nodes)
    melanie = nodes["entity:melanie"]
    assert melanie["name"] == "Melanie" and melanie["label"] == "Melanie"
    assert melanie["kind"] == "entity" and melanie["focus"] is True
    assert melanie["colour"].lower() == ENTITY_COLOUR.lower()
    # size follows importance: c1 (0.9) is drawn larger than c0 (0.5)
    assert nodes["c1"]["size"] > nodes["c0"]["size"]


def test_too_many_nodes_are_cut_at_the_limit_with_a_note(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=3&limit=2")

    assert response.status_code == 200
    page, data = read_page(response)
    assert len(data["nodes"]) == 2
    assert "cut at limit=2" in page.note


# -- the vendored renderer ----------------------------------------------------------------

STATIC = Path(__file__).resolve().parents[2] / "api" / "static" / "cytoscape"


def test_vendored_cytoscape_matches_versions_txt_and_is_mit() -> None:
    lines = (STATIC / "VERSIONS.txt").read_text().splitlines()
    entries = [line.split() for line in lines if line and not line.startswith("#")]
    assert {e[0] for e in entries} == {p.name for p in STATIC.iterdir()} - {"VERSIONS.txt"}
    assert {e[0] for e in entries} == {"cytoscape.min.js", "LICENSE.cytoscape.txt"}
    for name, spec, digest, licence in entries:
        assert spec == "cytoscape@3.35.0" and licence == "MIT"
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    assert (
        "Permission is hereby granted, free of charge"
        in (STATIC / "LICENSE.cytoscape.txt").read_text()
    )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("focus=m0", "namespace"),
        ("namespace=&focus=m0", "namespace"),
        (f"namespace={NS}", "focus"),
        (f"namespace={NS}&focus=m0&depth=0", "depth"),
        (f"namespace={NS}&focus=m0&depth=4", "depth"),
        (f"namespace={NS}&focus=m0&depth=two", "depth"),
        (f"namespace={NS}&focus=m0&limit=0", "limit"),
        (f"namespace={NS}&focus=m0&limit=501", "limit"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(server: str, query: str, field: str) -> None:
    response = get(server, query)

    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_INPUT"
    assert error["extensions"]["field"] == field
    assert error["message"].startswith(f"{field}: ")
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize("focus", ["nope", "entity:nobody"])
def test_an_unknown_focus_gets_404(server: str, focus: str) -> None:
    response = get(server, f"namespace={NS}&focus={focus}")

    assert response.status_code == 404, response.text
    error = response.json()["errors"][0]
    assert error["extensions"] == {
        "code": "NOT_FOUND",
        "requestId": response.headers["x-request-id"],
        "field": "focus",
    }
    assert repr(focus) in error["message"]


@pytest.mark.parametrize("key", [None, "not-a-configured-key"])
def test_without_a_valid_key_the_answer_is_401(server: str, key: str | None) -> None:
    response = get(server, f"namespace={NS}&focus=m0", key=key)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("focus", ["m0", "nope"])
def test_a_key_without_the_namespace_gets_403_before_any_lookup(server: str, focus: str) -> None:
    response = get(server, f"namespace={NS}&focus={focus}", key=BOB)

    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert focus not in error["message"]  # the same answer whether the focus exists or not
    assert get(server, "namespace=ns-bob&focus=b0", key=BOB).status_code == 200
    assert get(server, f"namespace={NS}&focus=m0", key=ADMIN).status_code == 200


def test_neighbourhood_answers_a_merged_id_with_its_survivor(tmp_path: Path) -> None:
    with MemoryGraph(tmp_path, encoder=HashingEncoder(dim=64)) as graph:
        graph.remember_many(
            NS, [MemoryInput("the same words", id="a"), MemoryInput("the same words", id="b")]
        )
        run_jobs(graph, NS, ["dedup"])
        found = neighbourhood(graph, NS, "b", depth=1)

    assert (found.focus, found.asked) == ("a", "b")
    assert "b was merged into it" in note(found)


# -- a real browser -----------------------------------------------------------------------

# What cytoscape.js drew: its node count and every node's box in window pixels (its
# rendered bounding box, captions included), once the page says the layout is done.
DRAWN = """(() => {
  const cy = window.hippographGraph;
  if (!cy || document.body.dataset.ready !== 'true') return null;
  const box = document.getElementById('graph').getBoundingClientRect();
  return {
    nodes: cy.nodes().length,
    edges: cy.edges().length,
    labels: cy.edges().map(e => e.data('label')),
    zoom: cy.zoom(),
    window: [window.innerWidth, window.innerHeight],
    boxes: cy.nodes().map(n => {
      const b = n.renderedBoundingBox({includeLabels: true});
      return [n.id(), b.x1 + box.left, b.y1 + box.top, b.x2 + box.left, b.y2 + box.top];
    }),
  };
})()"""


def screenshot(
    chromium: str, url: str, out: Path, size: tuple[int, int] = (1000, 700)
) -> tuple[DevTools, dict[str, Any]]:
    """Open ``url``, wait (at most 60 s) until cytoscape.js has laid the picture out and
    drawn it, save a PNG of the window to ``out``; the browser and what was drawn."""
    browser = DevTools(
        chromium, out.parent / "profile", out.parent / "chromium.log", reply_timeout=30
    )
    try:
        session = browser.open_window(url, *size)
        drawn = browser.wait_for(session, DRAWN, timeout=60)
        time.sleep(0.5)  # the canvas paints on the next animation frame
        out.write_bytes(browser.screenshot(session))
    finally:
        browser.close()
    return browser, drawn


def drawn_pixels(png: bytes) -> int:
    """Pixels of the screenshot's middle (away from the legend, buttons and note) that
    differ clearly from the page's background (sampled at the middle's corner)."""
    from PIL import Image  # pillow comes with matplotlib (the test extras)

    with Image.open(io.BytesIO(png)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    height, width, _ = rgb.shape
    middle = rgb[height // 6 : height * 5 // 6, width // 5 : width * 4 // 5]
    distance = np.abs(middle - middle[0, 0]).max(axis=2)
    return int(np.count_nonzero(distance > 40))


@pytest.mark.timeout(240)
@pytest.mark.parametrize(("depth", "expected"), [(1, 3), (3, 5)])
def test_headless_chromium_draws_every_node_in_the_window(
    tmp_path: Path, depth: int, expected: int
) -> None:
    chromium = find_chromium()
    if chromium is None:
        reason = "chromium is not installed (`make browser` installs it): browser test skipped"
        print(reason)
        pytest.skip(reason)
    settings = Settings(data_dir=tmp_path / "data", encoder="hashing", lifecycle_interval_s=0)
    graph = _graph(tmp_path / "data", settings)
    shot = tmp_path / "graph.png"
    with serving(create_app(settings, graph=graph), ready_timeout=60) as base:
        url = f"{base}/graph?namespace={NS}&focus=m0&depth={depth}"
        browser, drawn = screenshot(chromium, url, shot)
    if copy := os.environ.get("GRAPH_SCREENSHOT"):
        shutil.copyfile(shot, copy.replace("{depth}", str(depth)))

    assert drawn["nodes"] == expected
    assert "FOLLOWS 0.80" in drawn["labels"]  # type and weight on the edges
    width, height = drawn["window"]
    for node, x1, y1, x2, y2 in drawn["boxes"]:  # fitted: every node and caption in view
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (node, x1, y1, x2, y2)
    assert 0.3 <= drawn["zoom"] <= 1.6, "fitted, and a small picture not blown up"
    ink = drawn_pixels(shot.read_bytes())
    assert ink >= 500, f"the canvas shows no nodes ({ink} pixels drawn)"
    offsite = [u for u in browser.requested_urls() if not u.startswith((base + "/graph?", "data:"))]
    assert not offsite, f"the page requested more than itself: {offsite}"
    problems = [
        e["params"]
        for e in browser.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    assert not problems, f"console errors (CSP violations show here): {problems}"
