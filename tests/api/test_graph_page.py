"""``GET /graph`` over real HTTP (uvicorn on a loopback port, the hashing encoder): the
page carries the neighbourhood's data and loads nothing from elsewhere, bad parameters
are named, keys are checked before anything is looked up, and headless Chromium draws
nodes on the canvas."""

from __future__ import annotations

import base64
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
from hippograph.api.graph_page import ENTITY_COLOUR, TIER_COLOURS, TYPE_COLOURS, neighbourhood, note
from hippograph.api.settings import Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import AssociationType, Link, MemoryGraph, MemoryInput, Tier
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
    """The data block, the title, the note and every external reference of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.blocks: list[str] = []
        self.title = ""
        self.note = ""
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for attr in ("src", "href"):
            if named.get(attr):
                self.refs.append(f"{tag} {attr}={named[attr]}")
        if tag == "script" and named.get("id") == "neo4j-viz-data":
            self._in = "data"
            self.blocks.append("")
        elif tag == "title":
            self._in = "title"
        elif tag == "div" and named.get("id") == "hippograph-note":
            self._in = "note"

    def handle_data(self, data: str) -> None:
        if self._in == "data":
            self.blocks[-1] += data
        elif self._in == "title":
            self.title += data
        elif self._in == "note":
            self.note += data

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def read_page(response: httpx.Response) -> tuple[_Page, dict[str, Any]]:
    page = _Page()
    page.feed(response.text)
    data = [json.loads(b) for b in page.blocks if b.strip()]
    assert len(data) == 1, "one data block"
    return page, data[0]


# -- the page -----------------------------------------------------------------------------


def test_page_draws_the_neighbourhood_with_its_data(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=2")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page, data = read_page(response)
    nodes = {n["id"]: n for n in data["nodes"]}
    # two hops along the chain, and x1 one hop away through the explicit link
    assert set(nodes) == {"m0", "m1", "m2", "x1"}
    m0 = nodes["m0"]
    assert m0["properties"]["content"] == CHAIN[0]
    assert m0["properties"]["tier"] == "working" and m0["properties"]["hops"] == 0
    assert m0["color"].lower() == TIER_COLOURS[Tier.WORKING].lower()
    assert nodes["m2"]["properties"]["hops"] == 2
    types = {(r["from"], r["to"], r["properties"]["type"]) for r in data["relationships"]}
    assert {frozenset(t[:2]) for t in types} == {
        frozenset({"m0", "m1"}),
        frozenset({"m1", "m2"}),
        frozenset({"m0", "x1"}),
    }
    colours = {r["properties"]["type"]: r["color"].lower() for r in data["relationships"]}
    assert colours["FOLLOWS"] == TYPE_COLOURS[AssociationType.FOLLOWS].lower()
    assert colours["RELATED_TO"] == TYPE_COLOURS[AssociationType.RELATED_TO].lower()
    assert "m0" in page.title and NS in page.title
    assert "4 nodes" in page.note and "cut" not in page.note


def test_page_loads_nothing_from_elsewhere_and_runs_only_its_own_scripts(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=1")

    page, _ = read_page(response)
    assert page.refs == [], f"the page references other resources: {page.refs}"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    scripts = next(d for d in csp.split("; ") if d.startswith("script-src "))
    assert scripts.startswith("script-src 'sha256-") and "unsafe" not in scripts


def test_depth_counts_hops(server: str) -> None:
    one = {n["id"] for n in read_page(get(server, f"namespace={NS}&focus=m0&depth=1"))[1]["nodes"]}
    three = {
        n["id"] for n in read_page(get(server, f"namespace={NS}&focus=m0&depth=3"))[1]["nodes"]
    }
    assert one == {"m0", "m1", "x1"}
    assert three == {"m0", "m1", "m2", "m3", "x1"}


def test_an_entity_can_be_the_focus_and_entities_are_drawn(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=entity:melanie&depth=1")

    assert response.status_code == 200, response.text
    nodes = {n["id"]: n for n in read_page(response)[1]["nodes"]}
    assert {"entity:melanie", "c0", "c1"} <= set(nodes)
    assert nodes["entity:melanie"]["properties"]["label"] == "Melanie"
    assert nodes["entity:melanie"]["color"].lower() == ENTITY_COLOUR.lower()
    # size follows importance: c1 (0.9) is drawn larger than c0 (0.5)
    assert nodes["c1"]["size"] > nodes["c0"]["size"]


def test_too_many_nodes_are_cut_at_the_limit_with_a_note(server: str) -> None:
    response = get(server, f"namespace={NS}&focus=m0&depth=3&limit=2")

    assert response.status_code == 200
    page, data = read_page(response)
    assert len(data["nodes"]) == 2
    assert "cut at limit=2" in page.note


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


# Pixels a canvas has drawn (alpha > 0), summed over the page's canvases.
CANVAS_INK = """[...document.querySelectorAll('canvas')].reduce((total, c) => {
  const context = c.getContext('2d');
  if (!context || !c.width || !c.height) return total;
  const data = context.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
  return total + n;
}, 0)"""


def screenshot(chromium: str, url: str, out: Path, size: tuple[int, int] = (1000, 700)) -> DevTools:
    """Open ``url``, wait (at most 60 s) until the canvas has drawn something and one
    more second for the layout to settle, and save a PNG of the window to ``out``."""
    browser = DevTools(
        chromium, out.parent / "profile", out.parent / "chromium.log", reply_timeout=30
    )
    try:
        session = browser.open_page()
        for domain in ("Page", "Runtime", "Network", "Log"):
            browser.call(f"{domain}.enable", session=session)
        width, height = size
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session)
        browser.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + 60
        while not browser.evaluate(session, f"document.readyState === 'complete' && {CANVAS_INK}"):
            assert time.monotonic() < deadline, f"nothing drawn; log:\n{browser.log()}"
            time.sleep(0.25)
        time.sleep(1.0)
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session)["data"]
        out.write_bytes(base64.b64decode(shot))
    finally:
        browser.close()
    return browser


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


@pytest.mark.timeout(180)
def test_headless_chromium_draws_nodes_on_the_canvas(tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        reason = "chromium is not installed (`make browser` installs it): browser test skipped"
        print(reason)
        pytest.skip(reason)
    settings = Settings(data_dir=tmp_path / "data", encoder="hashing", lifecycle_interval_s=0)
    graph = _graph(tmp_path / "data", settings)
    shot = tmp_path / "graph.png"
    with serving(create_app(settings, graph=graph), ready_timeout=60) as base:
        browser = screenshot(chromium, f"{base}/graph?namespace={NS}&focus=m0&depth=3", shot)
    if copy := os.environ.get("GRAPH_SCREENSHOT"):
        shutil.copyfile(shot, copy)

    drawn = drawn_pixels(shot.read_bytes())
    assert drawn >= 500, f"the canvas shows no nodes ({drawn} pixels drawn)"
    requested = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e["method"] == "Network.requestWillBeSent"
    ]
    offsite = [u for u in requested if not u.startswith((base + "/graph?", "data:"))]
    assert not offsite, f"the page requested more than itself: {offsite}"
    problems = [
        e["params"]
        for e in browser.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    assert not problems, f"console errors (CSP violations show here): {problems}"
