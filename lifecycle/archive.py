"""Archive: connected regions of cold memories leave the hot store and the vector
index for compressed files in the data directory, and come back on demand.

Planning (pure)
---------------
The *candidates* are the memories of tier ``archived`` that still carry their embedding
(not stubbed yet), never of kind ``concept``. A *region* is a connected component of
the undirected graph whose nodes are the candidates and whose edges are the
associations with both ends among them; ``MENTIONS`` edges go to entity nodes, which
are never candidates, so a shared entity does not join two regions. Regions with fewer
than ``LifecycleConfig.min_region`` members stay as they are.

For a region :math:`R` the plan

- builds one file, named after its members (``sha256("\\n".join(sorted ids))[:20]``
  + ``.jsonl.gz``): a header line, then every member as a ``hippograph.graph.transfer`` export
  record (all fields, vectors as base64 float32), sorted by id, then the *internal*
  edges (both ends in :math:`R`), sorted; gzip with ``mtime=0``, so the same state
  gives the same bytes and the same checksum on every run;
- replaces each member by its *stub*: the first 80 characters of its content as a
  caption, no vectors (so the index drops it), and metadata holding only
  ``{"archive": {"file": name, "sha256": checksum}}`` (the original metadata is in the
  file; the stub stays small). Times, counts, importance, kind and tier are kept;
- removes the internal edges. *Boundary* edges (one end outside :math:`R`: other
  memories, concepts, entities) stay on the stub, so nothing dangles.

The runner writes ``Plan.files`` with :func:`write_files` (atomic: temporary file,
fsync, rename, fsync of the directory) *before* it applies the plan's changes.

Crash safety
------------
A crash after the files are written and before the store commit leaves files no stub
refers to. The store is unchanged, so a re-run plans the same regions and writes the
same bytes under the same names, and its commit makes them referenced. (If the state
changed meanwhile, the re-run writes other files and the old ones stay orphans, which
``hippograph check --repair`` deletes.) A crash in the middle of a write leaves only a
``.*.tmp`` file, never a half-written archive file.

Rehydration
-----------
:func:`rehydrate` brings stubs back: each stub's file is checked against the checksum the
stub recorded (:class:`ArchiveCorrupt` otherwise: nothing is changed), and one
``ChangeBatch`` puts back the full records in the ``working`` tier with their internal
edges to nodes that still exist. A file none of whose members is a stub of it any more
is deleted after the commit; a crash before the deletion leaves an orphan file for
``check`` to report and ``check --repair`` to delete. :func:`search` finds archived
memories by cosine similarity over the vectors in the files current stubs refer to, and
:func:`recall_archived` searches and rehydrates, so the next recall finds them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from hippograph.files import fsync_dir
from hippograph.graph.archived import (
    FORMAT,
    SUFFIX,
    VERSION,
    ArchiveContent,
    ArchiveCorrupt,
    ArchiveRef,
    archive_ref,
    check_name,
    edge_key,
    load_archive,
    read_archive,
    remove_file,
)
from hippograph.graph.model import (
    Association,
    BadInput,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
)
from hippograph.graph.records import (
    association_record,
    memory_record,
)
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle.model import LifecycleConfig, Plan, Snapshot

if TYPE_CHECKING:
    from hippograph.graph.memory import MemoryGraph

__all__ = [
    "FORMAT",
    "SUFFIX",
    "VERSION",
    "ArchiveContent",
    "ArchiveCorrupt",
    "ArchiveRef",
    "archive_ref",
    "caption",
    "file_name",
    "load_archive",
    "plan",
    "read_archive",
    "recall_archived",
    "rehydrate",
    "remove_file",
    "search",
    "stubs",
    "write_files",
]

logger = logging.getLogger(__name__)

CAPTION_CHARS = 80


def caption(content: str, limit: int = CAPTION_CHARS) -> str:
    """The stub's content: the text with whitespace collapsed, cut to ``limit``
    characters with an ellipsis.

    >>> caption("short  text")
    'short text'
    >>> caption("abcdef", limit=3)
    'abc…'
    """
    text = " ".join(content.split())
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def file_name(member_ids: Iterable[str]) -> str:
    """The archive file name of a region: the first 20 hex digits of the sha256 of its
    sorted member ids joined by newlines, and ``.jsonl.gz``."""
    joined = "\n".join(sorted(member_ids)).encode("utf-8")
    return hashlib.sha256(joined).hexdigest()[:20] + SUFFIX


def _line(obj: dict[str, Any]) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (text + "\n").encode("utf-8")


def _region_bytes(namespace: str, members: list[Memory], edges: list[Association]) -> bytes:
    """The gzip of a region's JSON lines: deterministic for the same members and edges
    (sorted records, sorted keys, gzip ``mtime=0``)."""
    dims = {len(m.embedding) for m in members if m.embedding is not None}
    if len(dims) != 1:
        raise BadInput("embedding", f"a region's memories have vectors of sizes {sorted(dims)}")
    header = {
        "record": "header",
        "format": FORMAT,
        "version": VERSION,
        "namespace": namespace,
        "dim": dims.pop(),
        "memories": len(members),
        "associations": len(edges),
    }
    lines = [_line(header)]
    lines += [_line(memory_record(m)) for m in sorted(members, key=lambda m: m.id)]
    lines += [_line(association_record(e)) for e in sorted(edges, key=edge_key)]
    return gzip.compress(b"".join(lines), compresslevel=6, mtime=0)


def plan(snapshot: Snapshot, config: LifecycleConfig, now: float) -> Plan:
    """Archive every region of cold memories of ``snapshot`` (see the module docstring).

    Coldness is decided by tiering (tier ``archived``), and the file bytes do not
    depend on the time of the run; ``now`` is only recorded on each stub
    (``metadata["archive"]["at"]``: when it was archived). ``Plan.files`` holds
    ``(file name, bytes)`` for the runner to write with :func:`write_files` before it
    applies the plan. Counts: ``regions``, ``memories`` (stubbed), ``edges`` (internal
    edges moved into files), ``bytes`` (compressed file bytes).

    Example: memories a, b, c archived, a-b associated, c alone, ``min_region=2``: one
    region {a, b}; a and b become stubs, the a-b edge moves into the file, c stays.
    """
    if config.compression != "gzip":
        raise BadInput("compression", f"archive compression {config.compression!r} is not gzip")
    by_id = {
        m.id: m
        for m in snapshot.memories
        if m.tier == Tier.ARCHIVED and m.kind != MemoryKind.CONCEPT and m.embedding is not None
    }
    result = Plan(job="archive", counts={"regions": 0, "memories": 0, "edges": 0, "bytes": 0})
    if not by_id:
        return result
    linked = nx.Graph()
    linked.add_nodes_from(by_id)
    internal: list[Association] = []
    for edge in snapshot.associations:
        if edge.source in by_id and edge.target in by_id:
            internal.append(edge)
            if edge.source != edge.target:
                linked.add_edge(edge.source, edge.target)
    region_of: dict[str, str] = {}
    regions: dict[str, list[str]] = {}
    for component in nx.connected_components(linked):
        if len(component) < config.min_region:
            continue
        name = file_name(component)
        regions[name] = sorted(component)
        region_of.update((member, name) for member in component)
    edges_of: dict[str, list[Association]] = {name: [] for name in regions}
    for edge in internal:
        region = region_of.get(edge.source)
        if region is not None:  # both ends are in one component, so in the same region
            edges_of[region].append(edge)
    changes = ChangeBatch()
    for name in sorted(regions):
        members = [by_id[i] for i in regions[name]]
        edges = sorted(edges_of[name], key=edge_key)
        data = _region_bytes(snapshot.namespace, members, edges)
        ref = {"file": name, "sha256": hashlib.sha256(data).hexdigest()}
        result.files.append((name, data))
        changes.memories += [
            replace(
                m,
                content=caption(m.content),
                embedding=None,
                passages=None,
                context_embedding=None,
                metadata={"archive": {**ref, "at": from_epoch(now).isoformat()}},
            )
            for m in members
        ]
        changes.removed_edges += [(e.source, e.target, e.type) for e in edges]
        result.counts["regions"] += 1
        result.counts["memories"] += len(members)
        result.counts["edges"] += len(edges)
        result.counts["bytes"] += len(data)
    result.changes = changes
    return result


# -- files ---------------------------------------------------------------------------------


def write_files(plan: Plan, directory: Path) -> None:
    """Write the plan's archive files into ``directory``, each atomically: to a
    temporary file, fsync, rename over the final name, then fsync the directory, so
    that every file is durable and whole before the runner commits the stubs."""
    if not plan.files:
        return
    directory.mkdir(parents=True, exist_ok=True)
    # A temporary file another process left is a write killed before its rename: the
    # data directory has one owner at a time (its lock), so nobody else is writing it.
    mine = f".{os.getpid()}.tmp"
    for leftover in directory.glob(".*.tmp"):
        if not leftover.name.endswith(mine):
            leftover.unlink(missing_ok=True)
    for name, data in plan.files:
        check_name(name)
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, directory / name)
    fsync_dir(directory)


# -- stubs, rehydration, search ------------------------------------------------------------


def stubs(graph: MemoryGraph, namespace: str) -> dict[ArchiveRef, list[str]]:
    """The namespace's stubs grouped by archive reference: ref -> stub ids (one scan of
    the namespace's memories, without vectors)."""
    return graph.archive.stubs(namespace)


def rehydrate(graph: MemoryGraph, namespace: str, ids: Sequence[str]) -> list[str]:
    """Bring the archived stubs among ``ids`` back into the hot tiers; their ids, in
    the order given (:meth:`hippograph.graph.archived.Archive.rehydrate`)."""
    return graph.archive.rehydrate(namespace, ids)


def search(
    graph: MemoryGraph, namespace: str, vector: np.ndarray, k: int = 10
) -> list[tuple[str, float]]:
    """(stub id, cosine) of the ``k`` archived memories whose archived vectors are
    nearest to ``vector``, best first (ties by id).

    Brute force over the whole-memory vectors of the records current stubs refer to:
    :math:`\\cos(q, v) = q \\cdot v / (\\lVert q \\rVert \\lVert v \\rVert)`. Only
    files some stub refers to are read; a file that is missing or fails its checksum
    is skipped with a warning (``check`` reports it; :func:`rehydrate` refuses it).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BadInput("k", "must be a positive integer")
    q = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(q))
    if not np.isfinite(q).all() or norm == 0.0:
        raise BadInput("vector", "must be a finite, non-zero vector")
    q = q / norm
    ids, matrix = graph.archive.archived_vectors(namespace, stubs(graph, namespace))
    if not ids:
        return []
    norms = np.linalg.norm(matrix, axis=1)
    scores = (matrix @ q) / np.maximum(norms, 1e-12)
    order = sorted(range(len(ids)), key=lambda i: (-float(scores[i]), ids[i]))[:k]
    return [(ids[i], float(scores[i])) for i in order]


def recall_archived(graph: MemoryGraph, namespace: str, query_text: str, k: int = 10) -> list[str]:
    """Search the archive for ``query_text`` and rehydrate the ``k`` best stubs; the
    rehydrated ids. A following ``graph.recall`` finds them in the hot tiers.
    :func:`hippograph.lifecycle.archived_recall.recall_with_archive` does both, with
    every recall input checked before anything moves (the CLI and GraphQL call it)."""
    if not isinstance(query_text, str) or not query_text.strip():
        raise BadInput("query", "must be non-empty text")
    hits = search(graph, namespace, graph.encoder.encode_one(query_text), k)
    return rehydrate(graph, namespace, [memory_id for memory_id, _ in hits])
