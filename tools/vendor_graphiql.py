#!/usr/bin/env python3
"""Vendor the offline GraphiQL page's assets into ``api/static/graphiql/``.

Maintainer tool, run by hand when the pinned versions change (``make vendor-graphiql``);
the normal build and the tests never need npm. Through ``tools/vendor_npm.py`` it
installs the pinned npm packages into a temporary directory, copies the few minified
files the page loads plus the packages' licence texts, and writes ``VERSIONS.txt`` with
each file's package, sha256 and licence. The tests check the vendored files against
those hashes.

Why graphiql 4.1.2: it is the newest release that still ships a self-contained UMD
bundle (``graphiql.min.js`` with graphql-js, CodeMirror 5 and the doc-explorer/history
plugins inside, fonts inlined as data: URIs in ``graphiql.min.css``) that works from
plain ``<script>`` tags with the ``React``/``ReactDOM`` globals. graphiql 5 is ESM-only
on Monaco with web workers (its ready-made worker setup imports from esm.sh), which
needs a bundler or an import map plus many files. React 18.3.1 is the newest React with
UMD builds (React 19 dropped them) and is within graphiql 4's peer range.

Usage: ``python tools/vendor_graphiql.py`` to (re)write the files, or
``python tools/vendor_graphiql.py --check`` to re-fetch and report any difference
(exit status 1) without writing.
"""

from __future__ import annotations

import sys

from vendor_npm import REPO, Asset, Bundle, main

BUNDLE = Bundle(
    tool="vendor_graphiql.py",
    dest=REPO / "api" / "static" / "graphiql",
    packages={
        "graphiql": "4.1.2",
        "react": "18.3.1",
        "react-dom": "18.3.1",
    },
    assets=(
        Asset("react", "umd/react.production.min.js", "react.production.min.js"),
        Asset("react-dom", "umd/react-dom.production.min.js", "react-dom.production.min.js"),
        Asset("graphiql", "graphiql.min.js", "graphiql.min.js"),
        Asset("graphiql", "graphiql.min.css", "graphiql.min.css"),
        Asset("react", "LICENSE", "LICENSE.react.txt"),
        Asset("react-dom", "LICENSE", "LICENSE.react-dom.txt"),
        Asset("graphiql", "LICENSE", "LICENSE.graphiql.txt"),
    ),
)

if __name__ == "__main__":
    sys.exit(main(BUNDLE, __doc__.splitlines()[0] if __doc__ else None))
