#!/usr/bin/env python3
"""Fail when a runtime dependency of ``hippograph`` is GPL or AGPL licensed.

hippograph is Apache-2.0; what it needs to run must not be under a strong copyleft
licence. This computes the runtime closure of the installed ``hippograph`` distribution,
its ``Requires-Dist`` without extras (markers evaluated for this interpreter), then
recursively each dependency's own (with the extras a requirement names), prints one row
per package (name, version, licence, where the licence was read, verdict) and exits 1
naming every package that is:

* ``GPL``/``AGPL`` (SPDX ``GPL-*``/``AGPL-*``, the classifiers "GNU General Public
  License" and "GNU Affero General Public License", or a free-text licence saying so).
  ``LGPL`` and ``MPL`` (weak, file- or library-level copyleft) are allowed. An SPDX
  ``OR`` expression passes when one alternative is not GPL/AGPL; several licence
  classifiers are not taken as a choice (one GPL among them fails);
* ``unknown``: no licence found in the metadata (``License-Expression``, then
  ``License ::`` classifiers, then a short ``License`` field). Unknown fails too, since
  it may hide a GPL; a package read by hand is listed in :data:`REVIEWED` with the
  licence found and where, which passes it;
* missing: required here but not installed (the closure cannot be checked).

Licences that are neither (e.g. NVIDIA's proprietary CUDA wheels, were a CUDA torch
installed) are printed with the verdict ``other`` and do not fail the check: they are
not copyleft, and the table shows them for a person to judge.

Usage: ``python tools/check_licences.py [--root hippograph] [--path DIR ...]``
(``--path`` reads distributions from those directories instead of ``sys.path``; the
tests use it with fake metadata). ``make licences`` runs it as part of ``make test``.
Standard library and ``packaging`` only (``packaging`` comes with pip's toolchain).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import Distribution, distributions
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["REVIEWED", "Row", "check", "closure", "licence_of", "main", "verdict"]

#: Packages whose metadata names no licence, read by hand: name -> (licence, where).
REVIEWED: dict[str, tuple[str, str]] = {
    # torch's Linux wheel requires it: NVIDIA's meta-package, metadata only (no files of
    # its own); the nvidia-* packages it pulls in are checked one by one.
    "cuda-toolkit": (
        "NVIDIA meta-package, installs no files",
        "its dist-info (METADATA, RECORD) and developer.nvidia.com/cuda-toolkit",
    ),
}

GPL = re.compile(
    r"(?<![L\w-])A?GPL|GNU (?:Affero )?General Public Licen[cs]e|\bAffero\b", re.IGNORECASE
)
PERMISSIVE = re.compile(
    r"\b(?:MIT|BSD|0BSD|ISC|Apache|PSF|Python|Zlib|CC0|Unlicense|BSL-1\.0|MPL|Mozilla|"
    r"LGPL|Lesser General Public|Historical Permission|HPND|CNRI|MIT-CMU|Public Domain)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Row:
    name: str
    version: str
    licence: str
    source: str  # expression, classifier, field, reviewed, none, missing
    verdict: str  # ok, other, GPL, unknown, missing


def _index(path: Sequence[str] | None) -> dict[str, Distribution]:
    found: dict[str, Distribution] = {}
    dists = distributions(path=list(path)) if path is not None else distributions()
    for dist in dists:
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)  # first on the path wins
    return found


def closure(root: str, index: dict[str, Distribution]) -> tuple[dict[str, Distribution], list[str]]:
    """The distributions ``root`` needs at run time (itself included, without its
    extras), and the names required but not installed."""
    environment: dict[str, Any] = dict(default_environment())
    needed: dict[str, Distribution] = {}
    missing: list[str] = []
    todo: list[tuple[str, frozenset[str]]] = [(canonicalize_name(root), frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = index.get(name)
        if dist is None:
            missing.append(name)
            continue
        needed[name] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            wanted = marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return needed, sorted(set(missing))


def licence_of(dist: Distribution) -> tuple[str, str]:
    """The licence the metadata states and where it was read."""
    metadata = dist.metadata
    name = canonicalize_name(metadata["Name"] or "")
    expression = (metadata["License-Expression"] or "").strip()
    if expression:
        return expression, "expression"
    classifiers = [
        c.split(" :: ")[-1]
        for c in metadata.get_all("Classifier") or []
        if c.startswith("License :: ") and c.count(" :: ") >= 2
    ]
    if classifiers:
        return "; ".join(classifiers), "classifier"
    text = " ".join((metadata["License"] or "").split())
    if text and text.upper() != "UNKNOWN":
        # some packages put the whole licence text here: its first words name it
        return (text if len(text) <= 60 else text[:57] + "..."), "field"
    if name in REVIEWED:
        return REVIEWED[name][0], "reviewed"
    return "", "none"


def verdict(licence: str) -> str:
    """``GPL``, ``ok``, ``other`` or ``unknown`` for a licence as :func:`licence_of`
    states it."""
    if not licence:
        return "unknown"
    alternatives = re.split(r"\s+OR\s+", licence) if " OR " in licence else [licence]
    if all(GPL.search(a) for a in alternatives):
        return "GPL"
    return "ok" if any(PERMISSIVE.search(a) for a in alternatives) else "other"


def check(root: str = "hippograph", path: Sequence[str] | None = None) -> list[Row]:
    """One row per package of ``root``'s runtime closure, sorted by name."""
    needed, missing = closure(root, _index(path))
    rows = []
    for name, dist in needed.items():
        licence, source = licence_of(dist)
        rows.append(Row(name, dist.version, licence, source, verdict(licence)))
    rows += [Row(name, "-", "", "missing", "missing") for name in missing]
    return sorted(rows, key=lambda r: r.name)


def _table(rows: Iterable[Row]) -> str:
    lines = [("package", "version", "licence", "from", "verdict")]
    lines += [(r.name, r.version, r.licence or "-", r.source, r.verdict) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:4], widths, strict=True))
        + "  "
        + line[4]
        for line in lines
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", default="hippograph", help="the distribution to check")
    parser.add_argument(
        "--path", action="append", help="read distributions from this directory (repeatable)"
    )
    args = parser.parse_args(argv)
    rows = check(args.root, args.path)
    print(_table(rows))
    failing = [r for r in rows if r.verdict in ("GPL", "unknown", "missing")]
    others = [r.name for r in rows if r.verdict == "other"]
    print(f"\n{len(rows)} runtime packages of {args.root}")
    if others:
        print(f"neither permissive nor copyleft, for a person to judge: {', '.join(others)}")
    if failing:
        for row in failing:
            why = {
                "GPL": f"is licensed {row.licence} (GPL/AGPL)",
                "unknown": "states no licence (read it and add it to REVIEWED)",
                "missing": "is required but not installed",
            }[row.verdict]
            print(f"FAIL: {row.name} {why}")
        return 1
    print("no GPL or AGPL licence among them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
