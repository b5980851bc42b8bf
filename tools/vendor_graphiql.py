#!/usr/bin/env python3
"""Vendor the offline GraphiQL page's assets into ``api/static/graphiql/``.

Maintainer tool, run by hand when the pinned versions change (``make vendor-graphiql``);
the normal build and the tests never need npm. It installs the pinned npm packages into a
temporary directory with ``npm install --no-save`` (never globally, never into the
repository), copies the few minified files the page loads plus the packages' licence
texts, and writes ``VERSIONS.txt`` with each file's package, sha256 and licence. The
tests check the vendored files against those hashes.

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

import argparse
import filecmp
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEST = REPO / "api" / "static" / "graphiql"

PACKAGES: dict[str, str] = {
    "graphiql": "4.1.2",
    "react": "18.3.1",
    "react-dom": "18.3.1",
}


@dataclass(frozen=True)
class Asset:
    package: str
    source: str  # path inside the installed package
    name: str  # file name under api/static/graphiql/


ASSETS: tuple[Asset, ...] = (
    Asset("react", "umd/react.production.min.js", "react.production.min.js"),
    Asset("react-dom", "umd/react-dom.production.min.js", "react-dom.production.min.js"),
    Asset("graphiql", "graphiql.min.js", "graphiql.min.js"),
    Asset("graphiql", "graphiql.min.css", "graphiql.min.css"),
    Asset("react", "LICENSE", "LICENSE.react.txt"),
    Asset("react-dom", "LICENSE", "LICENSE.react-dom.txt"),
    Asset("graphiql", "LICENSE", "LICENSE.graphiql.txt"),
)

# Anything that would make the browser fetch from elsewhere at run time: absolute URLs
# in CSS url()/@import, and script/stylesheet/font loading helpers pointing at a CDN.
CSS_REMOTE = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"]?)(?:https?:)?//""", re.I)
JS_REMOTE = re.compile(
    r"""(?:importScripts\(|import\(|\.src\s*=|fetch\()\s*['"`](?:https?:)?//|"""
    r"""(?:unpkg\.com|jsdelivr\.net|cdnjs\.|esm\.sh|fonts\.googleapis|fonts\.gstatic)""",
    re.I,
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm_install(workdir: Path) -> Path:
    """Install the pinned packages into ``workdir/node_modules``; return that folder."""
    (workdir / "package.json").write_text('{"private": true}\n')
    specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
    subprocess.run(
        [
            "npm",
            "install",
            "--no-save",
            "--no-package-lock",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            *specs,
        ],
        cwd=workdir,
        check=True,
    )
    modules = workdir / "node_modules"
    for name, version in PACKAGES.items():
        installed = json.loads((modules / name / "package.json").read_text())["version"]
        if installed != version:
            raise SystemExit(f"npm installed {name}@{installed}, wanted {version}")
    return modules


def license_of(modules: Path, package: str) -> str:
    return str(json.loads((modules / package / "package.json").read_text())["license"])


def check_offline(path: Path) -> None:
    """Refuse an asset that would load anything from another origin at run time."""
    if path.suffix not in {".js", ".css"}:
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    pattern = CSS_REMOTE if path.suffix == ".css" else JS_REMOTE
    hit = pattern.search(text)
    if hit:
        context = text[max(0, hit.start() - 60) : hit.end() + 60]
        raise SystemExit(f"{path.name} loads a remote resource: ...{context}...")


def build(modules: Path, out: Path) -> None:
    """Copy the assets into ``out`` and write ``out/VERSIONS.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Vendored by tools/vendor_graphiql.py; do not edit by hand.",
        "# " + " ".join(f"{name}@{version}" for name, version in PACKAGES.items()),
        "# file  package@version  sha256  license",
    ]
    for asset in ASSETS:
        target = out / asset.name
        shutil.copyfile(modules / asset.package / asset.source, target)
        check_offline(target)
        spec = f"{asset.package}@{PACKAGES[asset.package]}"
        lines.append(
            f"{asset.name}  {spec}  {sha256(target)}  {license_of(modules, asset.package)}"
        )
    (out / "VERSIONS.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="compare with a fresh vendoring, write nothing"
    )
    args = parser.parse_args(argv)
    if shutil.which("npm") is None:
        print("npm is needed to vendor GraphiQL (the build itself does not need it)")
        return 2
    with tempfile.TemporaryDirectory(prefix="vendor-graphiql-") as tmp:
        modules = npm_install(Path(tmp))
        fresh = Path(tmp) / "out"
        build(modules, fresh)
        names = sorted(p.name for p in fresh.iterdir())
        if args.check:
            existing = sorted(p.name for p in DEST.iterdir()) if DEST.is_dir() else []
            _, mismatch, errors = filecmp.cmpfiles(fresh, DEST, names, shallow=False)
            extra = sorted(set(existing) - set(names))
            if mismatch or errors or extra:
                print(f"differs: {mismatch + errors}; unexpected: {extra}")
                return 1
            print(f"{DEST.relative_to(REPO)} matches the pinned packages")
            return 0
        if DEST.exists():
            shutil.rmtree(DEST)
        shutil.copytree(fresh, DEST)
    total = sum(p.stat().st_size for p in DEST.iterdir())
    print(f"wrote {len(names)} files, {total / 1e6:.2f} MB, to {DEST.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
