"""The archive as recall sees it: the files cold memories moved to, their stubs, the
compact index that finds them, and rehydration.

The archive job (:mod:`hippograph.lifecycle.archive`) moves a region of cold memories
into one compressed file of ``hippograph.graph.transfer`` records and leaves a *stub* of
each in the store (a caption, no vectors, ``metadata["archive"] = {"file", "sha256"}``).
Archiving is about cost, never about forgetting, so the archive stays searchable:

- **The archive index** (:class:`~hippograph.graph.archive_index.ArchiveIndex`, one per
  namespace, ``derived/<token>.archive.faiss``) holds an 8-bit copy of every archived
  memory's whole vector, keyed by the stub's seq. It is derived state: missing or
  damaged, it is rebuilt from the files the current stubs refer to. A hit whose seq is
  no longer a stub (rehydrated, forgotten) is dropped at search time, and removed.
- **Default recall consults it** (:meth:`Archive.consult`) when the namespace holds
  archived memories: the ``k`` hot memories nearest to the query (by recall's
  similarity) set the bar, and of the ``k`` archived memories nearest to it, those at
  least as similar as the weakest of them, and never below ``archive_min_similarity``
  (every one above that floor when the hot memories are fewer than ``k``), are
  rehydrated before the recall, which then ranks them with the rest: the archive is
  reached when the hot results are weak or too few. So are the stubs among the query's
  ``k`` best BM25 matches (a stub keeps its caption in the lexical index: a rare word,
  a name, still finds it). A caller who names the tiers to
  search decides alone: without ``archived`` nothing is consulted. It costs one search
  of the hot index and one of the archive index per recall.
- **Rehydration** (:meth:`Archive.rehydrate`) checks each file against the checksum
  its stubs recorded (:class:`ArchiveCorrupt` otherwise, nothing changed) and puts the
  full records back in the working tier with their internal edges, in one store
  transaction; a file none of whose members is a stub any more is deleted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hippograph.files import fsync_dir
from hippograph.graph.archive_index import ArchiveIndex, ArchiveIndexCorrupt
from hippograph.graph.model import (
    Association,
    BadInput,
    HippographError,
    Memory,
    ModelMismatch,
    Tier,
)
from hippograph.graph.namespace import Namespaces
from hippograph.graph.records import read_association, read_memory
from hippograph.graph.store import ChangeBatch

__all__ = [
    "FORMAT",
    "INDEX",
    "SUFFIX",
    "VERSION",
    "Archive",
    "ArchiveContent",
    "ArchiveCorrupt",
    "ArchiveRef",
    "archive_ref",
    "check_name",
    "edge_key",
    "load_archive",
    "read_archive",
    "remove_file",
]

logger = logging.getLogger(__name__)

FORMAT = "hippograph-archive"
VERSION = 1
SUFFIX = ".jsonl.gz"
INDEX = ".archive.faiss"  # the archive index's file in derived/
# What a file name written by the archive job looks like; anything else in a stub's
# metadata is not followed (a name from the store must never reach outside the archive
# directory).
FILE_NAME = re.compile(r"^[0-9a-f]{20}\.jsonl\.gz$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ARCHIVED = list(Tier).index(Tier.ARCHIVED)  # the view's tier code


class ArchiveCorrupt(HippographError):
    """An archive file is missing, differs from the checksum its stubs recorded, or does
    not hold what they need. ``problem`` is ``"missing file"``, ``"checksum mismatch"``,
    ``"unreadable"`` or ``"record missing"``."""

    code = "ARCHIVE_CORRUPT"

    def __init__(self, file: str, problem: str, detail: str = "") -> None:
        super().__init__(f"archive file {file!r}: {problem}" + (f" ({detail})" if detail else ""))
        self.file = file
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ArchiveRef:
    """Where a stub's full record is: its archive file and that file's sha256."""

    file: str
    sha256: str


@dataclass(slots=True)
class ArchiveContent:
    """The parsed content of an archive file."""

    namespace: str
    dim: int
    memories: dict[str, Memory] = field(default_factory=dict)  # id -> full record
    associations: list[Association] = field(default_factory=list)  # internal edges


def archive_ref(memory: Memory) -> ArchiveRef | None:
    """The archive reference of a stub, None for any other memory.

    A stub has no embedding and ``metadata["archive"] = {"file": ..., "sha256": ...}``
    with a file name of the form the archive job writes. A memory read without embeddings
    has ``embedding`` None too, so there the metadata alone decides.
    """
    if memory.embedding is not None:
        return None
    ref = memory.metadata.get("archive") if isinstance(memory.metadata, dict) else None
    if not isinstance(ref, dict):
        return None
    name, digest = ref.get("file"), ref.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str):
        return None
    if not FILE_NAME.match(name) or not _SHA256.match(digest):
        return None
    return ArchiveRef(name, digest)


def edge_key(edge: Association) -> tuple[str, str, str]:
    return (edge.source, edge.target, edge.type.value)


def check_name(name: str) -> None:
    if not FILE_NAME.match(name):
        raise BadInput("file", f"{name!r} is not an archive file name")


def remove_file(directory: Path, name: str) -> bool:
    """Delete an archive (or leftover temporary) file and make the deletion durable;
    False when it was not there."""
    try:
        (directory / name).unlink()
    except FileNotFoundError:
        return False
    fsync_dir(directory)
    return True


def read_archive(data: bytes, namespace: str, file: str = "archive") -> ArchiveContent:
    """Parse an archive file's bytes (already checked against its checksum); raises
    :class:`ArchiveCorrupt` (``"unreadable"``) naming the line and field at fault."""
    try:
        text = gzip.decompress(data).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise ArchiveCorrupt(file, "unreadable", str(exc)) from None
    lines = [line for line in text.split("\n") if line.strip()]
    try:
        objects = [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        raise ArchiveCorrupt(file, "unreadable", f"malformed JSON: {exc.msg}") from None
    if not objects or not isinstance(objects[0], dict) or objects[0].get("format") != FORMAT:
        raise ArchiveCorrupt(file, "unreadable", f"no {FORMAT!r} header")
    header = objects[0]
    dim = header.get("dim")
    if header.get("version") != VERSION or not isinstance(dim, int) or dim <= 0:
        raise ArchiveCorrupt(file, "unreadable", "unknown version or bad dim in the header")
    content = ArchiveContent(namespace=namespace, dim=dim)
    try:
        for n, obj in enumerate(objects[1:], start=2):
            where = f"line {n}"
            kind = obj.get("record") if isinstance(obj, dict) else None
            if kind == "memory":
                memory = read_memory(obj, where, namespace, dim)
                content.memories[memory.id] = memory
            elif kind == "association":
                content.associations.append(read_association(obj, where))
            else:
                raise BadInput(f"{where}.record", "must be memory or association")
    except BadInput as exc:
        raise ArchiveCorrupt(file, "unreadable", str(exc)) from None
    return content


def load_archive(directory: Path, ref: ArchiveRef, namespace: str) -> ArchiveContent:
    """Read, verify (sha256 against ``ref``) and parse an archive file; raises
    :class:`ArchiveCorrupt` when it is missing, altered or unreadable."""
    check_name(ref.file)
    try:
        data = (directory / ref.file).read_bytes()
    except FileNotFoundError:
        raise ArchiveCorrupt(ref.file, "missing file") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256:
        raise ArchiveCorrupt(
            ref.file, "checksum mismatch", f"sha256 {digest[:12]}…, stub expects {ref.sha256[:12]}…"
        )
    return read_archive(data, namespace, ref.file)


class Archive:
    """The archives of a graph's namespaces: stubs, the archive index, search,
    rehydration. ``apply`` is :meth:`MemoryGraph.apply_changes` (a rehydration is one
    atomic change of the store and of the derived state)."""

    def __init__(self, namespaces: Namespaces, apply: Callable[[str, ChangeBatch], int]) -> None:
        self.namespaces = namespaces
        self.store = namespaces.store
        self.encoder = namespaces.encoder
        self.config = namespaces.config
        self.apply = apply
        self._indexes: dict[str, ArchiveIndex] = {}
        self._lock = threading.Lock()  # the indexes: opened, searched, changed one at a time

    def directory(self, namespace: str) -> Path:
        return self.namespaces.archive_dir(namespace)

    # -- stubs -----------------------------------------------------------------------

    def stubs(self, namespace: str) -> dict[ArchiveRef, list[str]]:
        """The namespace's stubs grouped by archive reference: ref -> stub ids (one scan
        of the namespace's memories, without vectors)."""
        found: dict[ArchiveRef, list[str]] = {}
        for chunk in self.store.iter_memories(namespace, embeddings=False):
            for memory in chunk:
                ref = archive_ref(memory)
                if ref is not None:
                    found.setdefault(ref, []).append(memory.id)
        return found

    def archived_vectors(
        self, namespace: str, refs: dict[ArchiveRef, list[str]]
    ) -> tuple[list[str], np.ndarray]:
        """(stub ids, their archived whole vectors) for the stubs of ``refs``; a file
        that is missing or fails its checksum is skipped with a warning (``check``
        reports it; :meth:`rehydrate` refuses it)."""
        directory = self.directory(namespace)
        ids: list[str] = []
        rows: list[np.ndarray] = []
        for ref, members in sorted(refs.items(), key=lambda x: x[0].file):
            try:
                content = load_archive(directory, ref, namespace)
            except ArchiveCorrupt as exc:
                logger.warning("archive of %r skips a file: %s", namespace, exc)
                continue
            if content.dim != self.encoder.dim:
                logger.warning("archive of %r skips %r: %d-d", namespace, ref.file, content.dim)
                continue
            for memory_id in members:
                record = content.memories.get(memory_id)
                if record is not None and record.embedding is not None:
                    ids.append(memory_id)
                    rows.append(record.embedding)
        matrix = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, self.encoder.dim))
        return ids, matrix

    # -- the archive index -------------------------------------------------------------

    def index(self, namespace: str) -> ArchiveIndex:
        """The namespace's archive index, opened on first use; rebuilt from the files
        when its file is missing (and stubs exist) or damaged. The caller holds the
        lock."""
        index = self._indexes.get(namespace)
        if index is not None:
            return index
        path = self.namespaces.derived_path(namespace, INDEX)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            index = ArchiveIndex.open(path, self.encoder.dim)
        except ArchiveIndexCorrupt as exc:
            logger.warning("archive index of %r is damaged (%s): rebuilding it", namespace, exc)
            path.unlink(missing_ok=True)
            index = ArchiveIndex.open(path, self.encoder.dim)
        if not len(index) and not path.exists():
            refs = self.stubs(namespace)
            if refs:
                self._fill(namespace, index, refs)
                index.save()
        self._indexes[namespace] = index
        return index

    def _fill(self, namespace: str, index: ArchiveIndex, refs: dict[ArchiveRef, list[str]]) -> int:
        ids, vectors = self.archived_vectors(namespace, refs)
        if not ids:
            return 0
        seqs = self.store.seqs_of(namespace, ids)
        keep = [i for i, memory_id in enumerate(ids) if memory_id in seqs]
        index.add(np.array([seqs[ids[i]] for i in keep], np.int64), vectors[keep])
        return len(keep)

    def indexed(self, namespace: str, files: Sequence[str]) -> int:
        """Add the stubs of the archive files ``files`` (just written by the archive job
        and committed) to the archive index, and save it; how many were added."""
        refs = {ref: ids for ref, ids in self.stubs(namespace).items() if ref.file in set(files)}
        with self._lock:
            index = self.index(namespace)
            added = self._fill(namespace, index, refs)
            index.save()
        return added

    def save(self) -> None:
        """Save every open archive index (checkpoint and close)."""
        with self._lock:
            for index in self._indexes.values():
                index.save()

    def drop(self, namespace: str) -> None:
        """Forget the open index of a namespace (its file was removed or replaced)."""
        with self._lock:
            self._indexes.pop(namespace, None)

    # -- search, consult, rehydrate ----------------------------------------------------

    def search(self, namespace: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(stub seq, approximate cosine) of the ``k`` archived memories nearest to
        ``vector``, best first, from the archive index. Hits that are no longer stubs
        (the namespace's view says: not an archived memory without vectors) are dropped,
        and removed from the index: no store round trip on the recall path."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise BadInput("k", "must be a positive integer")
        q = np.asarray(vector, dtype=np.float32).ravel()
        norm = float(np.linalg.norm(q))
        if not np.isfinite(q).all() or norm == 0.0:
            raise BadInput("vector", "must be a finite, non-zero vector")
        with self._lock:
            index = self.index(namespace)
            if not len(index):
                return []
            seqs, sims = index.search(q / norm, k)
        if not len(seqs):
            return []
        ns = self.namespaces.get(namespace)
        with ns.lock:
            view = ns.view
            nodes = view.index_of(seqs)
            found = nodes >= 0
            stub = np.zeros(len(seqs), bool)
            stub[found] = (view.tier[nodes[found]] == _ARCHIVED) & view.is_memory[nodes[found]]
            stub &= ~ns.index.has(seqs)
        gone = seqs[~stub].tolist()
        if gone:
            with self._lock:
                index.remove(gone)
        return [
            (int(q_), float(x))
            for q_, x in zip(seqs[stub].tolist(), sims[stub].tolist(), strict=True)
        ]

    def consult(
        self,
        namespace: str,
        vector: np.ndarray,
        k: int,
        hot: Sequence[float],
        *,
        lexical: Sequence[int] = (),
    ) -> list[str]:
        """Rehydrate what a default recall should see from the archive; the ids brought
        back. ``hot`` holds the similarities of the ``k`` hot memories nearest to the
        query. Rule: of the ``k`` archived memories nearest to the query, those at least
        as similar as the weakest of ``hot``, and never below ``archive_min_similarity``
        (so, when ``hot`` holds fewer than ``k``, every one above that floor); and the
        stubs (``lexical``: seqs) among the query's ``k`` best BM25 matches."""
        floor = self.config.archive_min_similarity
        if len(hot) >= k:
            floor = max(floor, min(hot))
        seqs = [seq for seq, sim in self.search(namespace, vector, k) if sim >= floor]
        seqs += [seq for seq in lexical if seq not in seqs]
        if not seqs:
            return []
        named = self.store.node_ids(namespace, seqs)
        return self.rehydrate(namespace, [named[s] for s in seqs if s in named])

    def rehydrate(self, namespace: str, ids: Sequence[str]) -> list[str]:
        """Bring the archived stubs among ``ids`` back into the hot tiers; their ids, in
        the order given. Ids that are not stubs are ignored (see the module docstring)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        found = self.store.get(namespace, wanted, embeddings=True)
        refs = {m.id: ref for m in found if (ref := archive_ref(m)) is not None}
        if not refs:
            return []
        directory = self.directory(namespace)
        contents: dict[ArchiveRef, ArchiveContent] = {}
        for ref in sorted(set(refs.values()), key=lambda r: (r.file, r.sha256)):
            content = load_archive(directory, ref, namespace)
            if content.dim != self.encoder.dim:
                raise ModelMismatch(
                    f"archive file {ref.file!r} holds {content.dim}-dimensional vectors; this "
                    f"graph encodes with {self.encoder.name!r} ({self.encoder.dim} dimensions)"
                )
            contents[ref] = content
        back: list[Memory] = []
        for memory_id, ref in refs.items():
            record = contents[ref].memories.get(memory_id)
            if record is None:
                raise ArchiveCorrupt(ref.file, "record missing", f"no record of {memory_id!r}")
            back.append(replace(record, namespace=namespace, tier=Tier.WORKING))
        returning = set(refs)
        edges = {
            edge_key(e): e
            for content in contents.values()
            for e in content.associations
            if e.source in returning or e.target in returning
        }
        ends = sorted({end for e in edges.values() for end in (e.source, e.target)})
        old_seqs = self.store.seqs_of(namespace, sorted(returning))
        present = self.store.seqs_of(namespace, ends)
        changes = ChangeBatch(
            memories=back,
            edges=[
                e for _, e in sorted(edges.items()) if e.source in present and e.target in present
            ],
        )
        self.apply(namespace, changes)
        with self._lock:
            index = self._indexes.get(namespace)
            if index is not None:
                index.remove(list(old_seqs.values()))
        for ref, content in contents.items():
            members = self.store.get(namespace, sorted(content.memories))
            if not any(archive_ref(m) == ref for m in members):
                remove_file(directory, ref.file)
        return [i for i in wanted if i in returning]
