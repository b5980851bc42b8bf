"""An offline GraphiQL page, served from the hippograph package itself.

This module owns the GraphiQL page and its assets: ``graphiql_html`` renders the page,
``GraphiQLPage`` serves it, and ``graphiql_routes`` gives the Starlette routes the app
mounts. The assets (GraphiQL 4.1.2's UMD bundle and stylesheet, React 18.3.1 and
ReactDOM 18.3.1, their licences and ``VERSIONS.txt``) are vendored into
``api/static/graphiql/`` by ``tools/vendor_graphiql.py`` and ship as package data, so
the page works with no internet: it names no external URL, and its
Content-Security-Policy lets the browser load scripts, styles and data from this origin
only (fonts and icons are data: URIs inside the stylesheet).

Mount ``graphiql_routes()`` *before* the GraphQL endpoint::

    app = Starlette(routes=[*graphiql_routes(), Route("/graphql", graphql_app)])

The page route matches only ``GET``/``HEAD`` requests to the endpoint path whose
``Accept`` header asks for ``text/html`` (a browser's navigation); every other request
to that path (POSTs, GETs from API clients, websockets) falls through to the GraphQL
endpoint. The page's fetcher POSTs JSON to the same-origin endpoint and sends the
headers typed into GraphiQL's headers editor (e.g. ``Authorization``) with each request.
``?query=``, ``?variables=`` and ``?operationName=`` prefill the editors and are kept in
the address bar as they are edited, so a link shares a query; headers are never put in
the URL nor persisted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import re
from importlib import resources
from pathlib import Path

from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

__all__ = [
    "ASSETS",
    "STATIC_PATH",
    "GraphiQLPage",
    "GraphiQLRoute",
    "graphiql_html",
    "graphiql_routes",
    "static_dir",
    "wants_html",
]

#: URL prefix the vendored assets are served under.
STATIC_PATH = "/static/graphiql"

#: The vendored files the page loads, in load order (scripts after the stylesheet).
ASSETS: tuple[str, ...] = (
    "graphiql.min.css",
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
)

_SAFE_PATH = re.compile(r"/(?!/)[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")

_SCRIPT = """\
(function () {
  "use strict";
  var endpoint = new URL(%(endpoint)s, window.location.href).href;
  var params = new URLSearchParams(window.location.search);
  function remember(key, value) {
    var url = new URL(window.location.href);
    if (value) {
      url.searchParams.set(key, value);
    } else {
      url.searchParams.delete(key);
    }
    window.history.replaceState(null, "", url.href);
  }
  var props = {
    fetcher: GraphiQL.createFetcher({ url: endpoint }),
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    onEditQuery: function (value) { remember("query", value); },
    onEditVariables: function (value) { remember("variables", value); },
    onEditOperationName: function (value) { remember("operationName", value); }
  };
  ["query", "variables", "operationName"].forEach(function (key) {
    var value = params.get(key);
    if (value !== null) {
      props[key] = value;
    }
  });
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, props)
  );
})();
"""

_PAGE = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="referrer" content="no-referrer">
    <title>%(title)s</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="%(static)s/graphiql.min.css?v=%(tag)s">
    <style>
      html, body { height: 100%%; margin: 0; overflow: hidden; }
      #graphiql { height: 100vh; }
    </style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <noscript>GraphiQL needs JavaScript.</noscript>
    <script src="%(static)s/react.production.min.js?v=%(tag)s"></script>
    <script src="%(static)s/react-dom.production.min.js?v=%(tag)s"></script>
    <script src="%(static)s/graphiql.min.js?v=%(tag)s"></script>
    <script>%(script)s</script>
  </body>
</html>
"""


def static_dir() -> Path:
    """The directory of the vendored assets inside the installed ``api`` package."""
    folder = resources.files("hippograph.api").joinpath("static", "graphiql")
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(
            f"GraphiQL assets not found at {folder}: the package must be installed from a "
            "directory or wheel with its package data (api/static/graphiql/*)"
        )
    return folder


@functools.cache
def _asset_tag() -> str:
    """A short cache-busting tag that changes whenever the assets are re-vendored."""
    versions = static_dir() / "VERSIONS.txt"
    return hashlib.sha256(versions.read_bytes()).hexdigest()[:12]


def _same_origin_path(value: str, what: str) -> str:
    if not _SAFE_PATH.fullmatch(value):
        raise ValueError(f"{what} must be a same-origin absolute path like '/graphql': {value!r}")
    return value


def _script(endpoint: str) -> str:
    # JSON is valid JavaScript; escaping <, > and & keeps it from closing the <script>.
    escapes = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
    return _SCRIPT % {"endpoint": json.dumps(endpoint).translate(escapes)}


def graphiql_html(
    endpoint: str = "/graphql",
    *,
    static: str = STATIC_PATH,
    title: str = "hippograph GraphiQL",
) -> str:
    """The GraphiQL page for ``endpoint`` (a same-origin path), loading assets from ``static``.

    The page references no external URL; its fetcher POSTs to ``endpoint`` on the page's
    own origin with the headers set in GraphiQL's headers editor.
    """
    endpoint = _same_origin_path(endpoint, "endpoint")
    static = _same_origin_path(static, "static").rstrip("/")
    return _PAGE % {
        "title": html.escape(title),
        "static": html.escape(static, quote=True),
        "tag": _asset_tag(),
        "script": _script(endpoint),
    }


def _csp(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'sha256-{digest}'",
            "style-src 'self' 'unsafe-inline'",
            "font-src 'self' data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        )
    )


class GraphiQLPage:
    """ASGI app (usable as a Starlette endpoint) answering with the GraphiQL page.

    The page is rendered once; the response carries a Content-Security-Policy that
    allows only same-origin scripts, styles and connections (plus the page's own inline
    script, by hash, and data: fonts and images).
    """

    def __init__(
        self,
        endpoint: str = "/graphql",
        *,
        static: str = STATIC_PATH,
        title: str = "hippograph GraphiQL",
    ) -> None:
        self.endpoint = endpoint
        self.body = graphiql_html(endpoint, static=static, title=title).encode()
        self.headers = {
            "content-type": "text/html; charset=utf-8",
            "content-security-policy": _csp(_script(endpoint)),
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cache-control": "no-cache",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = Response(self.body, headers=self.headers)
        await response(scope, receive, send)


def wants_html(scope: Scope) -> bool:
    """Whether an HTTP GET/HEAD request asks for HTML (``text/html`` in ``Accept``, q > 0)."""
    if scope.get("type") != "http" or scope.get("method") not in {"GET", "HEAD"}:
        return False
    accept = ",".join(
        value.decode("latin-1") for key, value in scope.get("headers", []) if key == b"accept"
    )
    for item in accept.split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        if media == "text/html":
            quality = next((p[2:] for p in params if p.startswith("q=")), "1")
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


class GraphiQLRoute(Route):
    """A route serving ``GraphiQLPage`` at ``path`` only to requests that want HTML.

    Any other request to ``path`` does not match, so the router goes on to the next
    route (the GraphQL endpoint): mount this one first.
    """

    def __init__(
        self,
        path: str = "/graphql",
        page: GraphiQLPage | None = None,
        *,
        name: str = "graphiql",
    ) -> None:
        super().__init__(
            path,
            page or GraphiQLPage(path),
            methods=["GET", "HEAD"],
            name=name,
            include_in_schema=False,
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.FULL and wants_html(scope):
            return match, child_scope
        return Match.NONE, {}


def graphiql_routes(endpoint: str = "/graphql") -> list[BaseRoute]:
    """The routes for the offline GraphiQL: the page at ``endpoint`` for browsers, and
    the vendored assets under ``/static/graphiql/``. Mount them before the GraphQL route.
    """
    return [
        GraphiQLRoute(endpoint, GraphiQLPage(endpoint)),
        Mount(STATIC_PATH, app=StaticFiles(directory=static_dir()), name="graphiql-static"),
    ]
