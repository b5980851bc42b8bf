"""Vendor pinned files of npm packages into ``api/static/<folder>/``: the machinery
shared by ``tools/vendor_graphiql.py`` and ``tools/vendor_cytoscape.py``.

Maintainer tooling, run by hand when a pinned version changes; the normal build and the
tests never need npm. A :class:`Bundle` names the pinned packages, the files to copy and
the folder they go to. :func:`main` installs the packages into a temporary directory with
``npm install --no-save`` (never globally, never into the repository), refuses any file
that would load something from another origin at run time, copies the files and writes
``VERSIONS.txt`` with each file's package, sha256 and licence (the tests check the
vendored files against those hashes). ``--check`` re-fetches and reports any difference
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

__all__ = ["REPO", "Asset", "Bundle", "main", "sha256"]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Asset:
    package: str
    source: str  # path inside the installed package
    name: str  # file name under the bundle's folder


@dataclass(frozen=True)
class Bundle:
    tool: str  # the script that vendors it, named in VERSIONS.txt
    dest: Path  # e.g. REPO / "api" / "static" / "graphiql"
    packages: dict[str, str]  # npm name -> pinned version
    assets: tuple[Asset, ...]


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


def npm_install(bundle: Bundle, workdir: Path) -> Path:
    """Install the pinned packages into ``workdir/node_modules``; return that folder."""
    (workdir / "package.json").write_text('{"private": true}\n')
    specs = [f"{name}@{version}" for name, version in bundle.packages.items()]
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
    for name, version in bundle.packages.items():
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


def build(bundle: Bundle, modules: Path, out: Path) -> None:
    """Copy the assets into ``out`` and write ``out/VERSIONS.txt``."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Vendored by tools/{bundle.tool}; do not edit by hand.",
        "# " + " ".join(f"{name}@{version}" for name, version in bundle.packages.items()),
        "# file  package@version  sha256  license",
    ]
    for asset in bundle.assets:
        target = out / asset.name
        shutil.copyfile(modules / asset.package / asset.source, target)
        check_offline(target)
        spec = f"{asset.package}@{bundle.packages[asset.package]}"
        lines.append(
            f"{asset.name}  {spec}  {sha256(target)}  {license_of(modules, asset.package)}"
        )
    (out / "VERSIONS.txt").write_text("\n".join(lines) + "\n")


def main(bundle: Bundle, description: str | None, argv: list[str] | None = None) -> int:
    """Vendor ``bundle`` (or, with ``--check``, compare it with a fresh vendoring)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--check", action="store_true", help="compare with a fresh vendoring, write nothing"
    )
    args = parser.parse_args(argv)
    dest = bundle.dest
    if shutil.which("npm") is None:
        print(f"npm is needed to vendor {dest.name} (the build itself does not need it)")
        return 2
    with tempfile.TemporaryDirectory(prefix=f"vendor-{dest.name}-") as tmp:
        modules = npm_install(bundle, Path(tmp))
        fresh = Path(tmp) / "out"
        build(bundle, modules, fresh)
        names = sorted(p.name for p in fresh.iterdir())
        if args.check:
            existing = sorted(p.name for p in dest.iterdir()) if dest.is_dir() else []
            _, mismatch, errors = filecmp.cmpfiles(fresh, dest, names, shallow=False)
            extra = sorted(set(existing) - set(names))
            if mismatch or errors or extra:
                print(f"differs: {mismatch + errors}; unexpected: {extra}")
                return 1
            print(f"{dest.relative_to(REPO)} matches the pinned packages")
            return 0
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(fresh, dest)
    total = sum(p.stat().st_size for p in dest.iterdir())
    print(f"wrote {len(names)} files, {total / 1e6:.2f} MB, to {dest.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit("run tools/vendor_graphiql.py or tools/vendor_cytoscape.py")
