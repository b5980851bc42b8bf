"""The Browser style and a saved query, in the real Neo4j Browser (5.24, served by the
test server at ``NEO4J_HTTP_URL``/browser/) in headless Chromium: a namespace with every
tier, entities and explicit typed links is drawn with the tier colours and captions of
``graph/browser/hippograph.grass`` and relationships captioned with their weight.

``NEO4J_BROWSER_SCREENSHOT=<file>`` keeps the screenshot (``docs/neo4j-browser.png``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hippograph.embeddings import HashingEncoder
from hippograph.graph import AssociationType, Link, MemoryGraph, MemoryInput
from hippograph.graph.memory import GraphConfig
from hippograph.lifecycle import run_jobs
from hippograph.lifecycle.model import LifecycleConfig
from tests.browser import DevTools, find_chromium
from tests.stores import neo4j_marks, open_neo4j

pytestmark = [*neo4j_marks(), pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
BROWSER_DIR = ROOT / "graph" / "browser"
TIER_LABELS = {"Working", "Episodic", "Semantic", "Archived"}
# An old trip (archived by the jobs), a garden season 12 days ago (episodic, and one
# concept over it), and today's notes (working) with explicit typed links back.
TRIP = [
    "Alice booked the ferry to Lisbon for the harbour festival",
    "the ferry to Lisbon left late because of fog over the harbour",
    "Alice and Bruno walked the Lisbon harbour at night",
    "Bruno lost his camera on the Lisbon ferry",
    "the harbour festival in Lisbon ended with fireworks",
]
GARDEN = [
    "Alice planted tomatoes beside the greenhouse wall",
    "the greenhouse tomatoes need water every morning",
    "Bruno fixed the greenhouse door hinge for Alice",
    "slugs ate the young tomatoes in the greenhouse",
    "Alice put copper tape around the greenhouse beds against slugs",
    "the first ripe greenhouse tomatoes went into a salad",
]
TODAY = [
    MemoryInput(
        "Alice wants to try a slug trap made of beer instead of copper tape",
        id="today0",
        session_id="today",
        importance=0.8,
        links=[Link("garden4", AssociationType.CONTRADICTS, 0.7)],
    ),
    MemoryInput(
        "the slugs came back after the rain, the copper tape failed",
        id="today1",
        session_id="today",
        importance=0.9,
        links=[Link("garden3", AssociationType.DERIVED_FROM, 0.6)],
        supersedes=["garden4"],
    ),
    MemoryInput(
        "Bruno found his old camera photos of the Lisbon harbour",
        id="today2",
        session_id="today",
        importance=0.5,
        links=[Link("trip3", AssociationType.RELATED_TO, 0.4)],
    ),
]
FOCUS = "today1"


def fill(data_dir: Path, namespace: str) -> None:
    """Remember the three sessions and let the lifecycle jobs tier them: the trip ends up
    archived (stubs), the garden episodic with one concept (semantic), today working."""
    now = datetime.now(UTC)
    # The hashing encoder's cosines are low: a lower threshold gives the garden season
    # enough SIMILAR_TO edges for one community, and a low resolution keeps it whole.
    config = GraphConfig(similar_threshold=0.4)
    with MemoryGraph(
        data_dir, encoder=HashingEncoder(dim=256), config=config, store=open_neo4j()
    ) as graph:
        # stored when they happened (idleness counts from storing)
        graph.clock = lambda: now - timedelta(days=90)
        graph.remember_many(
            namespace,
            [
                MemoryInput(
                    text,
                    id=f"trip{i}",
                    session_id="lisbon",
                    occurred_at=(now - timedelta(days=90 - i / 10)).isoformat(),
                    importance=0.3,
                )
                for i, text in enumerate(TRIP)
            ],
        )
        graph.clock = lambda: now - timedelta(days=10)
        graph.remember_many(
            namespace,
            [
                MemoryInput(
                    text,
                    id=f"garden{i}",
                    session_id="garden",
                    occurred_at=(now - timedelta(days=12 - i / 5)).isoformat(),
                    importance=0.6,
                )
                for i, text in enumerate(GARDEN)
            ],
        )
        graph.clock = lambda: datetime.now(UTC)
        run_jobs(graph, namespace, config=LifecycleConfig(min_community=5, resolution=0.3))
        graph.remember_many(namespace, TODAY)
        graph.associate(namespace, "today1", "today0", AssociationType.CAUSES, 0.9)
        tiers = graph.stats(namespace)["tiers"]
    assert all(tiers[tier.lower()] for tier in TIER_LABELS), tiers


def grass_rules() -> dict[str, dict[str, str]]:
    """``selector -> {property: value}`` of the shipped style (values unquoted)."""
    text = (BROWSER_DIR / "hippograph.grass").read_text(encoding="utf-8")
    rules: dict[str, dict[str, str]] = {}
    # a body may hold braces inside quotes: caption: '{caption}'
    for selector, body in re.findall(r"([^{}]*)\{((?:[^{}'\"]|'[^']*'|\"[^\"]*\")*)\}", text):
        declarations = (d.split(":", 1) for d in body.split(";") if d.strip())
        rules[selector.strip()] = {k.strip(): v.strip().strip("'\"") for k, v in declarations}
    return rules


def saved_query(name: str) -> str:
    """The body of the query called ``name`` in queries.cypher, comments left out."""
    text = (BROWSER_DIR / "queries.cypher").read_text(encoding="utf-8")
    for block in text.split("// name: ")[1:]:
        title, _, body = block.partition("\n")
        if title.strip() == name:
            return "\n".join(x for x in body.splitlines() if not x.startswith("//")).strip()
    raise AssertionError(f"no saved query {name!r}")


class NeoBrowser:
    """Neo4j Browser in one headless Chromium page, driven as a person would: the
    connect form, then commands pasted into the editor and run with the Run button."""

    FRAMES = "document.querySelectorAll('[data-testid=frame]').length"
    # Monaco takes a paste event from its hidden textarea as typed text, without the
    # auto-closing of brackets and quotes that key-by-key typing would trigger.
    PASTE = (
        "(text => { const area = document.querySelector('#monaco-main-editor textarea');"
        " area.focus(); const data = new DataTransfer(); data.setData('text/plain', text);"
        " area.dispatchEvent(new ClipboardEvent('paste',"
        " {clipboardData: data, bubbles: true, cancelable: true})); })"
    )

    def __init__(self, devtools: DevTools, size: tuple[int, int]) -> None:
        self.devtools = devtools
        self.page = devtools.open_page()
        for domain in ("Page", "Runtime", "Network", "Log"):
            devtools.call(f"{domain}.enable", session=self.page)
        width, height = size
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        devtools.call("Emulation.setDeviceMetricsOverride", metrics, self.page)

    def js(self, expression: str) -> Any:
        return self.devtools.evaluate(self.page, expression)

    def wait(self, expression: str, timeout: float = 60) -> Any:
        return self.devtools.wait_for(self.page, expression, timeout)

    def connect(self, http_url: str, bolt_uri: str, user: str, password: str) -> None:
        # `dbms` fills the connect form's URL and user name; the password is typed.
        host = bolt_uri.split("://", 1)[1]
        url = f"{http_url}/browser/?dbms=bolt://{user}@{host}&preselectAuthMethod=NATIVE"
        self.devtools.call("Page.navigate", {"url": url}, self.page)
        self.wait("!!document.querySelector('[data-testid=password]')")
        self.js("document.querySelector('[data-testid=password]').focus()")
        self.devtools.call("Input.insertText", {"text": password}, self.page)
        self.js("document.querySelector('[data-testid=connect]').click()")
        self.wait("document.body.innerText.includes('You are connected as user')")

    def run(self, command: str, expect: str | None = None) -> None:
        """Run ``command`` from the editor; wait for its frame (and ``expect`` in it)."""
        before = self.js(self.FRAMES)
        self.js(f"{self.PASTE}({json.dumps(command)})")
        self.js("document.querySelector('[data-testid=editor-Run]').click()")
        self.wait(f"{self.FRAMES} > {before}", 30)
        if expect is not None:
            newest = "document.querySelector('[data-testid=frame]').innerText"
            self.wait(f"{newest}.includes({json.dumps(expect)})", 30)

    def screenshot(self, out: Path) -> None:
        shot = self.devtools.call("Page.captureScreenshot", {"format": "png"}, self.page)
        out.write_bytes(base64.b64decode(shot["data"]))


# What the visualisation drew: d3 keeps each node's and relationship's data on its
# SVG group (``__data__``), next to the circle, path and caption texts it rendered.
DRAWN = """(() => ({
  nodes: [...document.querySelectorAll('svg.neod3viz g.node')].map(g => ({
    elementId: g.__data__.elementId, labels: g.__data__.labels,
    caption: g.__data__.propertyMap.caption,
    fill: g.querySelector('circle.b-outline').getAttribute('fill'),
    r: Number(g.querySelector('circle.b-outline').getAttribute('r')),
    text: [...g.querySelectorAll('text.caption')].map(t => t.textContent.trim()).join(' '),
  })),
  relationships: [...document.querySelectorAll('svg.neod3viz g.relationship')].map(g => ({
    elementId: g.__data__.elementId, type: g.__data__.type,
    weight: g.__data__.propertyMap.weight,
    fill: g.querySelector('path.b-outline').getAttribute('fill'),
    text: g.querySelector('text').textContent.trim(),
  })),
}))()"""


def settled_count(browser: NeoBrowser, selector: str, timeout: float = 60) -> int:
    """The number of ``selector`` elements once it stops changing for a second."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        count = int(browser.js(f"document.querySelectorAll({json.dumps(selector)}).length"))
        if count != last:
            last, since = count, time.monotonic()
        elif count and time.monotonic() - since >= 1.0:
            return count
        time.sleep(0.2)
    raise AssertionError(f"{selector} did not settle (last count {last})")


def query_element_ids(namespace: str) -> tuple[set[str], set[str]]:
    """The node and relationship element ids the saved query returns over Bolt."""
    import neo4j

    user, password = os.environ["NEO4J_USER"], os.environ.get("NEO4J_PASSWORD", "")
    nodes: set[str] = set()
    rels: set[str] = set()
    with (
        neo4j.GraphDatabase.driver(os.environ["NEO4J_URI"], auth=(user, password)) as driver,
        driver.session(database=os.environ.get("NEO4J_DATABASE")) as session,
    ):
        query = saved_query("Memory neighbourhood")
        for record in session.run(query, namespace=namespace, id=FOCUS):
            nodes.update(n.element_id for n in record["p"].nodes)
            rels.update(r.element_id for r in record["p"].relationships)
    return nodes, rels


def test_neo4j_browser_draws_the_style_and_a_saved_query(tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        reason = "chromium is not installed (`make browser` installs it): browser test skipped"
        print(reason)
        pytest.skip(reason)
    http_url = os.environ.get("NEO4J_HTTP_URL")
    if not http_url:
        pytest.skip("NEO4J_HTTP_URL is not set: run under tests/neo4j_server.py (`make test`)")
    namespace = f"browser-{uuid.uuid4().hex[:8]}"
    fill(tmp_path / "data", namespace)
    style = grass_rules()

    # Browser remembers connections in the profile: a fresh one makes it ask.
    profile = Path(tempfile.mkdtemp(dir=tmp_path))
    devtools = DevTools(chromium, profile, tmp_path / "chromium.log", reply_timeout=30)
    shot = tmp_path / "neo4j-browser.png"
    try:
        browser = NeoBrowser(devtools, (1400, 900))
        browser.connect(
            http_url,
            os.environ["NEO4J_URI"],
            os.environ["NEO4J_USER"],
            os.environ.get("NEO4J_PASSWORD", ""),
        )
        grass = (BROWSER_DIR / "hippograph.grass").read_text(encoding="utf-8")
        browser.run(f":style {grass}", expect="node.Memory")
        browser.run(f":param namespace => '{namespace}'", expect="Successfully set")
        browser.run(f":param id => '{FOCUS}'", expect="Successfully set")
        browser.run(saved_query("Memory neighbourhood"))
        settled_count(browser, "svg.neod3viz g.node")
        settled_count(browser, "svg.neod3viz g.relationship")
        drawn = browser.js(DRAWN)
        errors = browser.js(
            "[...document.querySelectorAll('[data-testid=cypherFrameErrorMessage]')]"
            ".map(e => e.innerText)"
        )
        # The picture: the result frame full screen, the layout settled, fit to the frame.
        browser.js("document.querySelector('[data-testid=frame] button[title=Fullscreen]').click()")
        time.sleep(5)
        browser.js("document.querySelector('button[aria-label=zoom-to-fit]').click()")
        time.sleep(1.5)
        browser.screenshot(shot)
    finally:
        devtools.close()
    if copy := os.environ.get("NEO4J_BROWSER_SCREENSHOT"):
        shutil.copyfile(shot, copy)

    assert not errors, errors
    want_nodes, want_rels = query_element_ids(namespace)
    assert want_nodes and {n["elementId"] for n in drawn["nodes"]} == want_nodes
    # Browser also draws the relationships among the result's nodes (its "connect result
    # nodes" setting): every returned one is drawn, and nothing outside those nodes.
    assert want_rels <= {r["elementId"] for r in drawn["relationships"]}

    tiers_drawn = set()
    for node in drawn["nodes"]:
        labels = set(node["labels"])
        if "Memory" in labels:
            (tier,) = labels & TIER_LABELS
            tiers_drawn.add(tier)
            assert node["fill"] == style[f"node.{tier}"]["color"], node
            (band,) = {label for label in labels if label.startswith("Importance")}
            assert node["r"] == int(style[f"node.{band}"]["diameter"].removesuffix("px")) / 2
        else:
            assert "Entity" in labels, node
            assert node["fill"] == style["node.Entity"]["color"], node
        # the caption property, wrapped over lines and cut (words skipped, the last one
        # cut mid-word) to fit the circle
        shown = node["text"].rstrip("…").split()
        assert shown and node["caption"].startswith(shown[0]), node
        assert all(word in node["caption"] for word in shown), node
    assert tiers_drawn == TIER_LABELS

    types_drawn = set()
    for rel in drawn["relationships"]:
        types_drawn.add(rel["type"])
        assert rel["fill"] == style[f"relationship.{rel['type']}"]["color"], rel
        # the weight, cut with an ellipsis when the edge is short
        assert rel["text"] and rel["weight"].startswith(rel["text"].rstrip("…")), rel
    assert {t.value for t in AssociationType} <= types_drawn
    explicit = {(r["type"], r["text"]) for r in drawn["relationships"]}
    assert {("CAUSES", "0.9"), ("CONTRADICTS", "0.7"), ("DERIVED_FROM", "0.6")} <= explicit
