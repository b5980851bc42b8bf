"""The offline GraphiQL page (``hippograph.api.graphiql``) and its vendored assets.

Always: the page names no external URL; the vendored files match ``VERSIONS.txt`` and
load nothing remote; a real uvicorn server on a loopback port serves the page to
browsers (and still answers GraphQL on the same path) and every asset the page names.

With Chromium installed (``make browser``), a headless Chromium driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: no websocket client, no downloads)
loads the page, checks the editor rendered with the ``?query=`` prefilled, types an
``Authorization`` header in the headers editor, runs the query with the run button, and
checks the result pane and the server's record of the request; every request the page
made stayed on the test server's origin, with no console error or CSP violation. It
saves a screenshot (also to ``$GRAPHIQL_SCREENSHOT`` if set) and checks it is not blank.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.types import Info

from hippograph.api.graphiql import (
    ASSETS,
    STATIC_PATH,
    graphiql_html,
    graphiql_routes,
    static_dir,
    wants_html,
)
from tests.browser import DevTools, find_chromium

STATIC = static_dir()
PINNED = {"graphiql": "4.1.2", "react": "18.3.1", "react-dom": "18.3.1"}


# --- the page's references ----------------------------------------------------------


class _Refs(HTMLParser):
    """Every src/href in a page, and its script and stylesheet references."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if values.get(name) is not None:
                self.urls.append(str(values[name]))
        if tag == "script" and values.get("src"):
            self.assets.append(str(values["src"]))
        if tag == "link" and values.get("rel") == "stylesheet" and values.get("href"):
            self.assets.append(str(values["href"]))


def page_refs(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    return parser


def test_page_references_no_external_url() -> None:
    page = graphiql_html()
    refs = page_refs(page)
    assert refs.urls, "the page names its assets"
    for url in refs.urls:
        assert url.startswith(("/", "data:")) and not url.startswith("//"), url
    assert not re.search(r"(?:https?:)?//[A-Za-z0-9]", page), "no absolute URL in the page"
    assert [a.split("?")[0] for a in refs.assets] == [f"{STATIC_PATH}/{n}" for n in ASSETS]
    assert 'new URL("/graphql", window.location.href)' in page
    assert "GraphiQL.createFetcher" in page


def test_endpoint_must_be_a_same_origin_path() -> None:
    assert 'new URL("/api/graphql"' in graphiql_html("/api/graphql")
    for bad in ("https://example.org/graphql", "//example.org/graphql", "graphql", "/x</script>"):
        with pytest.raises(ValueError):
            graphiql_html(bad)


@pytest.mark.parametrize(
    ("method", "accept", "expected"),
    [
        ("GET", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("HEAD", "text/html", True),
        ("GET", "application/json", False),
        ("GET", "*/*", False),
        ("GET", "text/html;q=0", False),
        ("GET", None, False),
        ("POST", "text/html", False),
    ],
)
def test_wants_html(method: str, accept: str | None, expected: bool) -> None:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    assert wants_html({"type": "http", "method": method, "headers": headers}) is expected


# --- the vendored files -------------------------------------------------------------


@dataclass(frozen=True)
class Vendored:
    name: str
    spec: str
    sha256: str
    license: str


def vendored() -> list[Vendored]:
    lines = (STATIC / "VERSIONS.txt").read_text().splitlines()
    return [Vendored(*line.split()) for line in lines if line and not line.startswith("#")]


def test_vendored_files_match_versions_txt() -> None:
    entries = vendored()
    listed = {e.name for e in entries}
    present = {p.name for p in STATIC.iterdir()} - {"VERSIONS.txt"}
    assert listed == present, "VERSIONS.txt lists exactly the vendored files"
    assert set(ASSETS) <= listed
    for entry in entries:
        digest = hashlib.sha256((STATIC / entry.name).read_bytes()).hexdigest()
        assert digest == entry.sha256, f"{entry.name} differs from VERSIONS.txt"
        package, version = entry.spec.rsplit("@", 1)
        assert PINNED[package] == version
        assert entry.license == "MIT"
    total = sum(p.stat().st_size for p in STATIC.iterdir())
    assert total < 3_000_000, f"vendored assets are {total} bytes"


CDN = (
    r"//(?:[\w-]+\.)*(?:unpkg\.com|jsdelivr\.net|cdnjs\.cloudflare\.com|esm\.sh|"
    r"googleapis\.com|gstatic\.com)|importScripts\("
)


def test_vendored_assets_load_nothing_remote() -> None:
    css = (STATIC / "graphiql.min.css").read_text()
    assert not re.search(r"""(?:url\(\s*['"]?|@import\s*['"]?)(?:https?:)?//""", css)
    assert "url(data:font/woff2" in css, "fonts are inlined"
    for name in ASSETS:
        text = (STATIC / name).read_text(errors="replace")
        assert not re.search(CDN, text), name


# --- a real server --------------------------------------------------------------------


@dataclass
class Served:
    url: str
    posts: list[str] = field(default_factory=list)  # paths of POSTs to /graphql
    authorizations: list[str | None] = field(default_factory=list)  # seen by `hello`


def make_app(record: Served) -> Starlette:
    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self, info: Info) -> str:
            record.authorizations.append(info.context["request"].headers.get("authorization"))
            return "world"

    graphql = GraphQL(strawberry.Schema(query=Query), graphql_ide=None)
    return Starlette(routes=[*graphiql_routes(), Route("/graphql", Counted(graphql, record))])


@dataclass
class Counted:
    """ASGI wrapper recording the POSTs that reach the GraphQL app."""

    app: ASGIApp
    record: Served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.record.posts.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    record = Served(url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    config = uvicorn.Config(make_app(record), lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield record
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def get(url: str, accept: str = "*/*") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_page_and_every_asset_served(served: Served) -> None:
    status, headers, body = get(served.url + "/graphql", accept="text/html,*/*;q=0.8")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    page = body.decode()
    assert page == graphiql_html()
    assets = page_refs(page).assets
    assert len(assets) == len(ASSETS)
    types = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}
    for asset in assets:
        status, headers, body = get(served.url + asset)
        path = asset.split("?")[0]
        assert status == 200, asset
        assert headers["content-type"].split(";")[0] in types[Path(path).suffix], asset
        assert body == (STATIC / Path(path).name).read_bytes(), asset


def test_graphql_still_answers_on_the_same_path(served: Served) -> None:
    query = urllib.parse.quote("{hello}")
    status, _, body = get(f"{served.url}/graphql?query={query}", "application/json")
    assert (status, json.loads(body)) == (200, {"data": {"hello": "world"}})
    request = urllib.request.Request(
        served.url + "/graphql",
        data=json.dumps({"query": "{hello}"}).encode(),
        headers={"Content-Type": "application/json", "Accept": "text/html"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == {"data": {"hello": "world"}}


# --- a real browser -------------------------------------------------------------------


def png_summary(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours or, without PIL, distinct decoded byte values)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG"
    width, height = struct.unpack(">II", data[16:24])
    try:
        from PIL import Image
    except ImportError:
        chunks, offset = [], 8
        while offset < len(data):
            (length,) = struct.unpack(">I", data[offset : offset + 4])
            if data[offset + 4 : offset + 8] == b"IDAT":
                chunks.append(data[offset + 8 : offset + 8 + length])
            offset += length + 12
        return width, height, len(set(zlib.decompress(b"".join(chunks))))
    import io

    with Image.open(io.BytesIO(data)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        return width, height, (1 << 16) if colours is None else len(colours)


CODEMIRROR = "document.querySelector({!r}).CodeMirror"
QUERY_EDITOR = CODEMIRROR.format(".graphiql-query-editor .CodeMirror")
RESPONSE = CODEMIRROR.format(".graphiql-response .CodeMirror")
HEADERS_TAB = (
    "[...document.querySelectorAll('.graphiql-editor-tools button')]"
    ".find(b => b.textContent.trim() === 'Headers')"
)
HEADERS_EDITOR = (
    "[...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')]"
    ".find(e => !e.classList.contains('hidden')).querySelector('.CodeMirror').CodeMirror"
)


@pytest.mark.timeout(60)
def test_page_runs_a_query_in_headless_chromium(served: Served, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        reason = "chromium is not installed (`make browser` installs it): browser test skipped"
        print(reason)
        pytest.skip(reason)
    url = f"{served.url}/graphql?query=%7Bhello%7D"
    browser = DevTools(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        session = browser.open_page()
        for domain in ("Page", "Runtime", "Network", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        browser.call("Page.navigate", {"url": url}, session)

        # The editor renders, with the query from the URL.
        browser.wait_for(session, "!!document.querySelector('.graphiql-container .CodeMirror')")
        assert browser.evaluate(session, f"{QUERY_EDITOR}.getValue()") == "{hello}"
        assert browser.evaluate(session, "document.title") == "hippograph GraphiQL"

        # An Authorization header typed into the headers editor goes with the request.
        browser.evaluate(session, f"{HEADERS_TAB}.click()")
        browser.wait_for(session, f"{HEADERS_TAB}.className.includes('active')")
        browser.evaluate(
            session, f'{HEADERS_EDITOR}.setValue(\'{{"Authorization": "Bearer t0ken"}}\')'
        )
        posts_before = len(served.posts)
        browser.evaluate(session, "document.querySelector('.graphiql-execute-button').click()")
        result = browser.wait_for(
            session, f"{RESPONSE}.getValue().includes('world') && {RESPONSE}.getValue()"
        )
        assert json.loads(result) == {"data": {"hello": "world"}}
        assert len(served.posts) > posts_before and set(served.posts) == {"/graphql"}
        assert served.authorizations[-1] == "Bearer t0ken"

        shot = base64.b64decode(browser.call("Page.captureScreenshot", session=session)["data"])
        png = tmp_path / "graphiql.png"
        png.write_bytes(shot)
        if copy := os.environ.get("GRAPHIQL_SCREENSHOT"):
            shutil.copyfile(png, copy)
    finally:
        browser.close()

    width, height, distinct = png_summary(shot)
    assert (width, height) == (1280, 800)
    assert len(shot) > 10_000 and distinct > 32, "the screenshot is not a blank page"

    requested = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e["method"] == "Network.requestWillBeSent"
    ]
    assert any(u.endswith("graphiql.min.js?v=" + u.rsplit("=", 1)[-1]) for u in requested)
    offsite = [u for u in requested if not u.startswith((served.url + "/", "data:"))]
    assert not offsite, f"the page requested other origins: {offsite}"
    errors = [
        e["params"]
        for e in browser.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    assert not errors, f"console errors (CSP violations show here): {errors}"
