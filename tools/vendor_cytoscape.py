#!/usr/bin/env python3
"""Vendor cytoscape.js, the renderer of ``GET /graph``, into ``api/static/cytoscape/``.

Maintainer tool, run by hand when the pinned version changes; the normal build and the
tests never need npm. Through ``tools/vendor_npm.py`` it installs the pinned npm package
into a temporary directory, copies its minified UMD build and its licence text, and
writes ``VERSIONS.txt`` with each file's package, sha256 and licence (MIT); the tests
check the vendored files against those hashes.

Why cytoscape.js: MIT licensed, no dependencies, one self-contained UMD file (about
440 kB) that draws on a canvas with captions, per-element styles and a built-in
force-directed layout (``cose``), and that the page can inline, so ``/graph`` stays one
response that loads nothing (the previous renderer, neo4j-viz, is GPL-3.0-only and its
page was 4.4 MB).

Usage: ``python tools/vendor_cytoscape.py`` to (re)write the files, or
``python tools/vendor_cytoscape.py --check`` to re-fetch and report any difference
(exit status 1) without writing.
"""

from __future__ import annotations

import sys

from vendor_npm import REPO, Asset, Bundle, main

BUNDLE = Bundle(
    tool="vendor_cytoscape.py",
    dest=REPO / "api" / "static" / "cytoscape",
    packages={"cytoscape": "3.35.0"},
    assets=(
        Asset("cytoscape", "dist/cytoscape.min.js", "cytoscape.min.js"),
        Asset("cytoscape", "LICENSE", "LICENSE.cytoscape.txt"),
    ),
)

if __name__ == "__main__":
    sys.exit(main(BUNDLE, __doc__.splitlines()[0] if __doc__ else None))
