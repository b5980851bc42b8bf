"""Health check of a namespace: the store, its vector index and its archive agree.

:func:`check` verifies, for one namespace,

- **store <-> index**: the seqs the vector index can return (``graph.indexed``) are
  exactly the seqs of the live memories with an embedding. A memory with an embedding
  the index lacks is unsearchable (``not_indexed``); a seq the index holds that is not
  such a memory (forgotten, merged away, or stubbed by the archive) is searchable
  though it must not be (``stale_indexed``);
- **dangling edges**: every edge end (``store.load_edges``) is a node of the namespace
  (``store.load_nodes``);
- **archive integrity**: every stub's file exists, has the sha256 the stub recorded and
  holds the stub's record (``broken_stubs``);
- **orphan archive files**: files in the namespace's archive directory no stub refers
  to (an archive run that crashed before its commit, a rehydration that crashed before
  deleting its file), and leftover temporary files of an interrupted write.

With ``repair=True`` it rebuilds the derived index and view from the store when they
disagree with it, deletes orphan files older than ``orphan_grace`` seconds (younger
ones may belong to an archive run between writing its files and committing its stubs),
then checks again and returns that report with ``repaired`` counts. Stubs whose file is
missing or corrupt are reported, never deleted: their content exists nowhere else.
Dangling edges are reported, not repaired: an edge is removed through the store
protocol by the ids of its ends, and a missing end has none (both stores also enforce
edge ends themselves, so one means a damaged store).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hippograph.graph.model import AssociationType
from hippograph.lifecycle.archive import (
    SUFFIX,
    ArchiveCorrupt,
    ArchiveRef,
    archive_ref,
    load_archive,
    remove_file,
)

if TYPE_CHECKING:
    from hippograph.graph.memory import MemoryGraph

__all__ = ["CheckReport", "StubProblem", "check"]

_TEMPORARY = re.compile(r"^\..+\.tmp$")


@dataclass(frozen=True, slots=True)
class StubProblem:
    """A stub that cannot be rehydrated: its id, its file, and what is wrong
    (``missing file``, ``checksum mismatch``, ``unreadable`` or ``record missing``)."""

    id: str
    file: str
    problem: str


@dataclass(slots=True)
class CheckReport:
    """What :func:`check` found in a namespace (and, after a repair, what it repaired)."""

    namespace: str
    memories: int = 0  # live memories, stubs included
    embedded: int = 0  # memories with an embedding: these must be searchable
    indexed: int = 0  # seqs the vector index can return
    edges: int = 0
    stubs: int = 0
    archive_files: int = 0
    not_indexed: list[str] = field(default_factory=list)  # memory ids
    stale_indexed: list[int] = field(default_factory=list)  # seqs
    dangling_edges: list[tuple[int, int, str]] = field(default_factory=list)  # seqs, type
    broken_stubs: list[StubProblem] = field(default_factory=list)
    orphan_files: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """No problem of any kind."""
        return not (
            self.not_indexed
            or self.stale_indexed
            or self.dangling_edges
            or self.broken_stubs
            or self.orphan_files
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (CLI ``--json``, GraphQL), with ``clean``."""
        out = asdict(self)
        out["dangling_edges"] = [list(e) for e in self.dangling_edges]
        out["clean"] = self.clean
        return out


def _type_name(code: int) -> str:
    try:
        return AssociationType.from_code(code).value
    except IndexError:
        return f"unknown({code})"


def _inspect(graph: MemoryGraph, namespace: str) -> tuple[CheckReport, dict[str, float]]:
    """The report of a namespace, and the orphan file names with their modification
    times (for the repair's grace period)."""
    store = graph.store
    report = CheckReport(namespace=namespace)
    # stubs first, files second: a file written between the two reads looks orphaned,
    # never the reverse (a referenced file looking absent)
    stub_refs: dict[str, ArchiveRef] = {}
    for chunk in store.iter_memories(namespace, embeddings=False):
        for memory in chunk:
            ref = archive_ref(memory)
            if ref is not None:
                stub_refs[memory.id] = ref
    chunks = [seqs for seqs, _ in store.iter_embeddings(namespace)]
    embedded = np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
    nodes = store.load_nodes(namespace)
    indexed = np.asarray(graph.indexed(namespace), dtype=np.int64)
    report.memories = int(np.count_nonzero(nodes.is_memory))
    report.embedded = len(embedded)
    report.indexed = len(indexed)

    # store <-> index
    missing = np.setdiff1d(embedded, indexed)
    if len(missing):
        names = store.node_ids(namespace, missing.tolist())
        report.not_indexed = sorted(names.get(int(s), f"#{int(s)}") for s in missing)
    report.stale_indexed = np.setdiff1d(indexed, embedded).tolist()

    # dangling edges
    edges = store.load_edges(namespace)
    report.edges = len(edges.src)
    loose = ~np.isin(edges.src, nodes.seq) | ~np.isin(edges.dst, nodes.seq)
    report.dangling_edges = [
        (int(s), int(d), _type_name(int(t)))
        for s, d, t in zip(edges.src[loose], edges.dst[loose], edges.type[loose], strict=True)
    ]

    # archive integrity: a memory with metadata like a stub's but with an embedding is
    # not a stub (its metadata is the caller's)
    if stub_refs:
        seqs = store.seqs_of(namespace, list(stub_refs))
        vectors = set(embedded.tolist())
        stub_refs = {i: ref for i, ref in stub_refs.items() if seqs.get(i) not in vectors}
    report.stubs = len(stub_refs)
    by_ref: dict[ArchiveRef, list[str]] = {}
    for memory_id, ref in stub_refs.items():
        by_ref.setdefault(ref, []).append(memory_id)
    directory = graph.archive_dir(namespace)
    for ref, members in sorted(by_ref.items(), key=lambda x: (x[0].file, x[0].sha256)):
        try:
            content = load_archive(directory, ref, namespace)
        except ArchiveCorrupt as exc:
            report.broken_stubs += [StubProblem(i, ref.file, exc.problem) for i in sorted(members)]
            continue
        report.broken_stubs += [
            StubProblem(i, ref.file, "record missing")
            for i in sorted(members)
            if i not in content.memories
        ]

    # orphan files
    referenced = {ref.file for ref in by_ref}
    orphans: dict[str, float] = {}
    for path in sorted(directory.iterdir()):
        archive_file = path.name.endswith(SUFFIX) and not path.name.startswith(".")
        report.archive_files += archive_file
        if (archive_file and path.name not in referenced) or _TEMPORARY.match(path.name):
            orphans[path.name] = path.stat().st_mtime
    report.orphan_files = sorted(orphans)
    return report, orphans


def check(
    graph: MemoryGraph, namespace: str, *, repair: bool = False, orphan_grace: float = 600.0
) -> CheckReport:
    """Check ``namespace`` (see the module docstring); with ``repair``, repair what can
    be repaired and return the report of a second check, whose ``repaired`` says what
    was done: ``index`` (index disagreements fixed by a rebuild) and ``orphan_files``
    (files deleted)."""
    report, orphans = _inspect(graph, namespace)
    if not repair:
        return report
    repaired = {"index": 0, "orphan_files": 0}
    if report.not_indexed or report.stale_indexed:
        graph.rebuild(namespace)
        repaired["index"] = len(report.not_indexed) + len(report.stale_indexed)
    directory = graph.archive_dir(namespace)
    cutoff = time.time() - orphan_grace
    for name, mtime in orphans.items():
        if mtime <= cutoff and remove_file(directory, name):
            repaired["orphan_files"] += 1
    after, _ = _inspect(graph, namespace)
    after.repaired = repaired
    return after
