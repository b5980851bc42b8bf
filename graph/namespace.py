"""Namespace state: the derived structures of each namespace, and their life.

The store is the source of truth. Per namespace the engine keeps derived state in memory
(:class:`Namespace`): a :class:`~hippograph.graph.view.NamespaceView` (the association
graph as arrays) and two FAISS indexes (memories, passages), tagged with the store
generation they reflect. :class:`Namespaces` loads them from their saved files
(``derived/<token>.view.npz``, ``.faiss``, ``.passages.faiss``), catches a stale file up
from the store, rebuilds from the store when a file is missing or unreadable, saves them
at checkpoints, and drops them when another writer moved the store on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hippograph.embeddings import TextEncoder, VectorIndex
from hippograph.graph.config import GraphConfig
from hippograph.graph.model import PASSAGE_BITS, Link, Memory, ModelMismatch
from hippograph.graph.sqlite_schema import namespace_token
from hippograph.graph.store import AccessRecord, GraphStore
from hippograph.graph.view import NamespaceView

__all__ = ["Namespace", "Namespaces", "Pending", "namespace_token"]

VIEW = ".view.npz"
INDEX = ".faiss"
PASSAGES = ".passages.faiss"


@dataclass(eq=False)
class Pending:
    """One remember_many call waiting for its commit (see ``Writer.commit_queued``): its
    prepared memories, their vectors, the context text each memory's context passage was
    embedded from, and, once ``done``, the error if it failed."""

    prepared: list[tuple[Memory, list[Link]]]
    vectors: np.ndarray
    contexts: list[str | None]
    done: bool = False
    error: Exception | None = None


@dataclass(eq=False)
class Namespace:
    """Derived state of one namespace, guarded by its lock."""

    name: str
    view: NamespaceView
    index: VectorIndex
    passages: VectorIndex  # passage vectors, ids (seq << PASSAGE_BITS) | position
    # ``lock`` guards the in-memory structures (held briefly, by readers too);
    # ``write_lock`` orders this namespace's store writes and is held across a commit,
    # so recalls never wait for an fsync and generations advance one by one.
    lock: threading.RLock = field(default_factory=threading.RLock)
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    last_in_session: dict[str, tuple[str, int]] = field(default_factory=dict)
    # remember_many calls waiting for the write lock; whoever holds it commits them
    # together (group commit: one transaction, one fsync, one pass of the locks)
    queue: list[Pending] = field(default_factory=list)
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    pending_access: dict[int, AccessRecord] = field(default_factory=dict)
    pending_edges: dict[tuple[int, int, int], tuple[float, float]] = field(default_factory=dict)
    generation: int = 0  # the store generation this derived state reflects
    dirty: bool = False  # the view differs from its saved file
    index_dirty: bool = False  # the vector indexes differ from their saved files


class Namespaces:
    """The namespaces in use, each loaded (or rebuilt) on first use."""

    def __init__(
        self, data_dir: Path, store: GraphStore, encoder: TextEncoder, config: GraphConfig
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.encoder = encoder
        self.config = config
        self.open_lock = threading.Lock()
        self._loaded: dict[str, Namespace] = {}

    def loaded(self) -> list[Namespace]:
        """The namespaces loaded now (a copy: others may load meanwhile)."""
        return list(self._loaded.values())

    def get(self, name: str) -> Namespace:
        """The derived state of a namespace, loaded (or rebuilt) on first use."""
        ns = self._loaded.get(name)
        if ns is not None:
            return ns
        with self.open_lock:
            ns = self._loaded.get(name)
            if ns is None:
                ns = self._load(name)
                self._loaded[name] = ns
        return ns

    def derived_path(self, namespace: str, suffix: str) -> Path:
        return self.data_dir / "derived" / f"{namespace_token(namespace)}{suffix}"

    def archive_dir(self, namespace: str) -> Path:
        """Where a namespace's archive files live (created on demand)."""
        path = self.data_dir / "archive" / namespace_token(namespace)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save(self, ns: Namespace) -> None:
        """Save what changed, tagged with the generation it reflects. An index that did
        not change keeps its file (at 1M memories it is 1.8 GB); its older tag makes the
        next load check it against the store, which costs one cheap catch-up pass. The
        caller holds the namespace's lock."""
        generation = ns.generation
        for index in (ns.index, ns.passages):
            if index.needs_compaction():
                index.compact()
                ns.index_dirty = True
        ns.view.save(self.derived_path(ns.name, VIEW), generation)
        if ns.index_dirty:
            meta = {"generation": generation, "namespace": ns.name, "model": self.encoder.name}
            ns.index.save(self.derived_path(ns.name, INDEX), meta)
            ns.passages.save(self.derived_path(ns.name, PASSAGES), meta)
        ns.dirty = ns.index_dirty = False

    def advance(self, ns: Namespace, generation: int) -> None:
        """Note that a write of ours took the store to ``generation``. If that skips a
        generation, another writer changed the namespace meanwhile: drop the derived
        state so the next use reloads it from the store (which catches it up)."""
        if generation == ns.generation + 1:
            ns.generation = generation
            ns.dirty = True
            return
        ns.dirty = ns.index_dirty = False
        with self.open_lock:
            if self._loaded.get(ns.name) is ns:
                del self._loaded[ns.name]

    def rebuild(
        self,
        namespace: str,
        *,
        flush: Callable[[Namespace], None],
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        """Rebuild a namespace's derived structures from the store and save them;
        ``flush`` writes back the recall side effects of the state it replaces."""
        cfg = self.config
        with self.open_lock:
            old = self._loaded.pop(namespace, None)
        if old is not None:
            with old.write_lock:
                flush(old)
        generation = self.store.generation(namespace)
        view = NamespaceView.from_store(self.store, namespace, delta_limit=cfg.delta_limit)
        if progress:
            progress("view", view.n_nodes)
        index = self.index_from_store(namespace)
        if progress:
            progress("index", index.ntotal)
        passages = self.index_from_store(namespace, passages=True)
        if progress:
            progress("passages", passages.ntotal)
        ns = Namespace(
            name=namespace,
            view=view,
            index=index,
            passages=passages,
            generation=generation,
            index_dirty=True,
        )
        with ns.lock:
            self.save(ns)
        with self.open_lock:
            self._loaded[namespace] = ns

    def _load(self, name: str) -> Namespace:
        cfg = self.config
        generation = self.store.generation(name)
        dirty = False
        try:
            view, saved = NamespaceView.load(
                self.derived_path(name, VIEW), delta_limit=cfg.delta_limit
            )
            if saved != generation:
                raise ValueError("stale")
        except (FileNotFoundError, ValueError, KeyError, OSError):
            view = NamespaceView.from_store(self.store, name, delta_limit=cfg.delta_limit)
            dirty = generation > 0
        index, changed = self._load_index(name, INDEX, view, generation)
        passages, changed_passages = self._load_index(name, PASSAGES, view, generation)
        return Namespace(
            name=name,
            view=view,
            index=index,
            passages=passages,
            generation=generation,
            dirty=dirty,
            index_dirty=changed or changed_passages,
        )

    def _load_index(
        self, name: str, suffix: str, view: NamespaceView, generation: int
    ) -> tuple[VectorIndex, bool]:
        """A saved vector index (``.faiss``: memories, ``.passages.faiss``: passages),
        caught up with the store, or one built from the store's vectors; and whether it
        differs from its file."""
        passages = suffix == PASSAGES
        try:
            index, meta = VectorIndex.load(self.derived_path(name, suffix))
        except (FileNotFoundError, ValueError, OSError):
            index = self.index_from_store(name, passages=passages)
            return index, index.ntotal > 0
        if meta.get("model") != self.encoder.name:
            raise ModelMismatch(
                f"namespace {name!r} was embedded with {meta.get('model')!r}; this graph "
                f"encodes with {self.encoder.name!r}. Use the original model, or re-import "
                "the namespace (export, then import) to re-embed it."
            )
        if meta.get("generation") == generation:
            return index, False
        return index, self.catch_up(name, index, view, passages=passages)

    def index_from_store(self, name: str, *, passages: bool = False) -> VectorIndex:
        """Bulk-build a vector index from the vectors held by the store: the memories'
        (one each), or with ``passages`` their passages'."""
        cfg = self.config
        source = self.store.iter_passages if passages else self.store.iter_embeddings
        chunks = list(source(name))
        dims = {c[1].shape[1] for c in chunks}
        if dims - {self.encoder.dim}:
            raise ModelMismatch(
                f"namespace {name!r} holds {dims.pop()}-dimensional embeddings; this graph "
                f"encodes with {self.encoder.name!r} ({self.encoder.dim} dimensions). Use the "
                "original model, or re-import the namespace to re-embed it."
            )
        ids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        vectors = (
            np.concatenate([c[1] for c in chunks])
            if chunks
            else np.zeros((0, self.encoder.dim), np.float32)
        )
        return VectorIndex.build(
            self.encoder.dim,
            ids,
            vectors,
            hnsw_threshold=cfg.hnsw_threshold,
            hnsw_m=cfg.hnsw_m,
            ef_construction=cfg.ef_construction,
            ef_search=cfg.ef_search,
        )

    def catch_up(
        self, name: str, index: VectorIndex, view: NamespaceView, *, passages: bool = False
    ) -> bool:
        """Bring a saved index up to the store: add what was written after it was saved,
        drop what was forgotten since. True when it changed anything."""
        changed = False
        # passage ids are (seq << PASSAGE_BITS) | position, memory ids are seqs
        shift = PASSAGE_BITS if passages else 0
        source = self.store.iter_passages if passages else self.store.iter_embeddings
        for ids, vectors in source(name, min_seq=max(index.max_id, 0) >> shift):
            index.add(ids, vectors)
            changed = True
        held = index.live_ids()
        gone = held[view.index_of(held >> shift) < 0]
        if len(gone):
            index.remove(gone)
            changed = True
        return changed
