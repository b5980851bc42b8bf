"""``MemoryGraph``: remember, associate, recall, forget — the engine behind the CLI,
the GraphQL API and notebooks.

It composes the store (source of truth), and per namespace a FAISS index and a
:class:`~graph.view.NamespaceView` (both derived, persisted, rebuilt when stale). A
write is acknowledged once the store commits it; the derived structures are then
updated in memory and saved at :meth:`MemoryGraph.checkpoint` and :meth:`close`. After a
crash they are caught up from the store on open, so nothing acknowledged is lost.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from hippograph.embeddings import TextEncoder, VectorIndex
from hippograph.graph.activation import ActivationParams, paths_to, spread_activation
from hippograph.graph.entities import extract_entities
from hippograph.graph.model import (
    CONTEXT_POSITION,
    ENTITY_PREFIX,
    MAX_PASSAGES,
    PASSAGE_BITS,
    Association,
    AssociationType,
    BadInput,
    DuplicateId,
    Link,
    Memory,
    MemoryKind,
    ModelMismatch,
    NotFound,
    StaleChanges,
    StoreUnavailable,
    Tier,
    parse_time,
    passage_ids,
    to_epoch,
)
from hippograph.graph.scoring import PART_NAMES, ScoreWeights, blend, informativeness, recency_score
from hippograph.graph.sqlite_store import SQLiteStore, _namespace_token
from hippograph.graph.store import AccessRecord, ChangeBatch, GraphStore, WriteBatch, WriteResult
from hippograph.graph.text import passages as split_passages
from hippograph.graph.view import NamespaceView

__all__ = [
    "GraphConfig",
    "MemoryGraph",
    "MemoryInput",
    "PathStep",
    "RecallContext",
    "Recollection",
]

logger = logging.getLogger(__name__)

_TIERS = list(Tier)
_WORKING = _TIERS.index(Tier.WORKING)
_EPISODIC = _TIERS.index(Tier.EPISODIC)
_ARCHIVED = _TIERS.index(Tier.ARCHIVED)


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Limits, association-building thresholds and recall parameters.

    ``hippograph.api.settings`` fills this from the environment; everything else takes it as an
    argument.
    """

    # limits (bad input beyond them is rejected, naming the field and the limit)
    max_content_chars: int = 20_000
    max_batch: int = 1_000
    max_k: int = 100
    max_hops: int = 4
    max_links: int = 64
    max_metadata_bytes: int = 16_384
    max_id_chars: int = 256
    # association on write
    similar_k: int = 5
    similar_threshold: float = 0.55
    follows_weight: float = 0.8
    mention_weight: float = 0.6
    max_entities: int = 16
    # passages: besides its whole vector, a memory of several sentences gets one vector
    # per sentence (graph.text.passages), and a memory that follows another in its
    # session gets a context vector (the two read together, a reply with what it
    # answers). A memory's similarity to a query is its whole vector's cosine, plus
    # ``passage_weight`` times what its best sentence adds, blended with its context
    # cosine at ``context_weight``. See docs/retrieval.md.
    passages: bool = True
    context_passages: bool = True
    max_passages: int = 16
    passage_min_chars: int = 20
    passage_seeds: int = 30
    passage_weight: float = 1.0
    context_weight: float = 0.3
    # recall
    dense_seeds: int = 30
    lexical_seeds: int = 30
    lexical_weight: float = 0.3
    context_text_weight: float = 0.5
    max_candidates: int = 300
    activation: ActivationParams = field(default_factory=ActivationParams)
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    recency_decay: float = 0.5
    recency_threshold: float = -6.0
    recency_noise: float = 1.0
    # recall side effects
    hebbian_rate: float = 0.1
    hebbian_max: float = 1.0
    hebbian_top: int = 5
    access_flush_every: int = 256
    access_flush_seconds: float = 5.0
    # derived structures. Exact search costs ~0.15 us per vector per query (8.9k: 1.2 ms,
    # 17k: 2.8 ms on one core, measured in bench lifecycle's hot set); HNSW stays at
    # 0.2-0.4 ms, so an index goes HNSW from 5k vectors.
    hnsw_threshold: int = 5_000
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    delta_limit: int = 65_536


@dataclass(slots=True)
class MemoryInput:
    """What a caller gives to remember one memory."""

    content: str
    id: str | None = None
    kind: MemoryKind | str = MemoryKind.EVENT
    session_id: str | None = None
    occurred_at: datetime | str | None = None
    importance: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)


@dataclass(slots=True)
class RecallContext:
    """What the agent is doing now: its session, extra text, the time of the question,
    entities in play, and an optional time window of interest."""

    session_id: str | None = None
    text: str | None = None
    at: datetime | None = None
    entities: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class PathStep:
    """One hop of the path that brought a memory: from this node over this edge."""

    source: str
    type: AssociationType
    weight: float


@dataclass(slots=True)
class Recollection:
    memory: Memory
    score: float
    parts: dict[str, float]
    path: list[PathStep]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.memory.id,
            "content": self.memory.content,
            "score": round(self.score, 6),
            "parts": {k: round(v, 6) for k, v in self.parts.items()},
            "path": [
                {"from": s.source, "type": s.type.value, "weight": round(s.weight, 6)}
                for s in self.path
            ],
        }


class _StageClock:
    """Seconds since the previous mark, per stage, into an optional dict."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into
        self.last = time.perf_counter()

    def mark(self, stage: str) -> None:
        if self.into is not None:
            now = time.perf_counter()
            self.into[stage] = now - self.last
            self.last = now


@dataclass(eq=False)
class _Pending:
    """One remember_many call waiting for its commit (see ``MemoryGraph._commit_queued``):
    its prepared memories, their vectors, the context text each memory's context
    passage was embedded from, and, once ``done``, the error if it failed."""

    prepared: list[tuple[Memory, list[Link]]]
    vectors: np.ndarray
    contexts: list[str | None]
    done: bool = False
    error: Exception | None = None


@dataclass
class _Namespace:
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
    queue: list[_Pending] = field(default_factory=list)
    queue_lock: threading.Lock = field(default_factory=threading.Lock)
    pending_access: dict[int, AccessRecord] = field(default_factory=dict)
    pending_edges: dict[tuple[int, int, int], tuple[float, float]] = field(default_factory=dict)
    generation: int = 0  # the store generation this derived state reflects
    dirty: bool = False  # the view differs from its saved file
    index_dirty: bool = False  # the vector indexes differ from their saved files


class MemoryGraph:
    """Associative memory over a data directory.

    Parameters
    ----------
    data_dir:
        Holds the SQLite database and the derived files (index and view per namespace).
    encoder:
        Text -> unit vector (``embeddings.Encoder`` in production).
    config:
        Limits and parameters; see :class:`GraphConfig`.
    store:
        A ``GraphStore``; defaults to ``SQLiteStore(data_dir / "hippograph.db")``.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        encoder: TextEncoder,
        config: GraphConfig | None = None,
        store: GraphStore | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.encoder = encoder
        self.config = config or GraphConfig()
        self.store: GraphStore = store or SQLiteStore(self.data_dir / "hippograph.db")
        self._namespaces: dict[str, _Namespace] = {}
        self._open_lock = threading.Lock()
        self._closed = False
        # Recall side effects (access counts, Hebbian weights) are written back by a
        # background thread, so no recall waits for a store commit (an fsync).
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()

    # -- lifecycle of the object -----------------------------------------------------

    def __enter__(self) -> MemoryGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._stop.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        self.checkpoint()
        self.store.close()
        self._closed = True

    def checkpoint(self) -> None:
        """Flush recall side effects to the store and save the derived structures."""
        for ns in list(self._namespaces.values()):
            with ns.write_lock:
                self._flush_access(ns)
                with ns.lock:
                    if ns.dirty or ns.index_dirty:
                        self._save(ns)

    def _request_flush(self, now: bool = True) -> None:
        """Make sure the write-back thread runs; with ``now``, wake it at once."""
        if self._flusher is None:
            with self._open_lock:
                if self._flusher is None and not self._stop.is_set():
                    self._flusher = threading.Thread(
                        target=self._flush_loop, name="hippograph-access-flush", daemon=True
                    )
                    self._flusher.start()
        if now:
            self._wake.set()

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.config.access_flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            for ns in list(self._namespaces.values()):
                if ns.pending_access or ns.pending_edges:
                    try:
                        with ns.write_lock:
                            self._flush_access(ns)
                    except Exception:  # the next flush or checkpoint retries
                        logger.exception("writing back recall accesses of %r failed", ns.name)

    def _derived_path(self, namespace: str, suffix: str) -> Path:
        return self.data_dir / "derived" / f"{_namespace_token(namespace)}{suffix}"

    def _save(self, ns: _Namespace) -> None:
        """Save what changed, tagged with the generation it reflects. An index that did
        not change keeps its file (at 1M memories it is 1.8 GB); its older tag makes the
        next load check it against the store, which costs one cheap catch-up pass."""
        generation = ns.generation
        for index in (ns.index, ns.passages):
            if index.needs_compaction():
                index.compact()
                ns.index_dirty = True
        ns.view.save(self._derived_path(ns.name, ".view.npz"), generation)
        if ns.index_dirty:
            meta = {"generation": generation, "namespace": ns.name, "model": self.encoder.name}
            ns.index.save(self._derived_path(ns.name, ".faiss"), meta)
            ns.passages.save(self._derived_path(ns.name, ".passages.faiss"), meta)
        ns.dirty = ns.index_dirty = False

    def namespace(self, name: str) -> _Namespace:
        """The derived state of a namespace, loaded (or rebuilt) on first use."""
        ns = self._namespaces.get(name)
        if ns is not None:
            return ns
        with self._open_lock:
            ns = self._namespaces.get(name)
            if ns is None:
                ns = self._load(name)
                self._namespaces[name] = ns
        return ns

    def _load(self, name: str) -> _Namespace:
        cfg = self.config
        generation = self.store.generation(name)
        dirty = False
        try:
            view, saved = NamespaceView.load(
                self._derived_path(name, ".view.npz"), delta_limit=cfg.delta_limit
            )
            if saved != generation:
                raise ValueError("stale")
        except (FileNotFoundError, ValueError, KeyError, OSError):
            view = NamespaceView.from_store(self.store, name, delta_limit=cfg.delta_limit)
            dirty = generation > 0
        index, changed = self._load_index(name, ".faiss", view, generation)
        passages, changed_passages = self._load_index(name, ".passages.faiss", view, generation)
        return _Namespace(
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
        passages = suffix == ".passages.faiss"
        try:
            index, meta = VectorIndex.load(self._derived_path(name, suffix))
        except (FileNotFoundError, ValueError, OSError):
            index = self._index_from_store(name, passages=passages)
            return index, index.ntotal > 0
        if meta.get("model") != self.encoder.name:
            raise ModelMismatch(
                f"namespace {name!r} was embedded with {meta.get('model')!r}; this graph "
                f"encodes with {self.encoder.name!r}. Use the original model, or re-import "
                "the namespace (export, then import) to re-embed it."
            )
        if meta.get("generation") == generation:
            return index, False
        return index, self._catch_up(name, index, view, passages=passages)

    def _index_from_store(self, name: str, *, passages: bool = False) -> VectorIndex:
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

    def _advance(self, ns: _Namespace, generation: int) -> None:
        """Note that a write of ours took the store to ``generation``. If that skips a
        generation, another writer changed the namespace meanwhile: drop the derived
        state so the next use reloads it from the store (which catches it up)."""
        if generation == ns.generation + 1:
            ns.generation = generation
            ns.dirty = True
            return
        ns.dirty = ns.index_dirty = False
        with self._open_lock:
            if self._namespaces.get(ns.name) is ns:
                del self._namespaces[ns.name]

    def rebuild(
        self, namespace: str, *, progress: Callable[[str, int], None] | None = None
    ) -> None:
        """Rebuild a namespace's derived structures from the store and save them.

        For bulk loads that wrote to the store directly, and for repair. The index is
        bulk-built (straight to HNSW when large); ``progress(stage, count)`` reports
        each stage as it completes.
        """
        cfg = self.config
        self._check_namespace(namespace)
        with self._open_lock:
            old = self._namespaces.pop(namespace, None)
        if old is not None:
            with old.write_lock:
                self._flush_access(old)
        generation = self.store.generation(namespace)
        view = NamespaceView.from_store(self.store, namespace, delta_limit=cfg.delta_limit)
        if progress:
            progress("view", view.n_nodes)
        index = self._index_from_store(namespace)
        if progress:
            progress("index", index.ntotal)
        passages = self._index_from_store(namespace, passages=True)
        if progress:
            progress("passages", passages.ntotal)
        ns = _Namespace(
            name=namespace,
            view=view,
            index=index,
            passages=passages,
            generation=generation,
            index_dirty=True,
        )
        with ns.lock:
            self._save(ns)
        with self._open_lock:
            self._namespaces[namespace] = ns

    def _catch_up(
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

    # -- validation ------------------------------------------------------------------

    def _check_namespace(self, namespace: str) -> None:
        if not isinstance(namespace, str) or not namespace.strip():
            raise BadInput("namespace", "must be a non-empty string")
        if len(namespace) > 128:
            raise BadInput("namespace", "must be at most 128 characters")

    @staticmethod
    def _unit_number(value: Any, field_: str) -> float:
        """A number from 0 to 1 (not a bool, not NaN), or BadInput naming the field."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadInput(field_, "must be a number from 0 to 1")
        number = float(value)
        if math.isnan(number) or not 0.0 <= number <= 1.0:
            raise BadInput(field_, "must be a number from 0 to 1")
        return number

    def _prepare(
        self, namespace: str, item: MemoryInput, field_: str, now: datetime
    ) -> tuple[Memory, list[Link]]:
        """Check one input against every rule; the memory and its normalised links."""
        cfg = self.config
        content = item.content
        if not isinstance(content, str) or not content.strip():
            raise BadInput(f"{field_}.content", "must be non-empty text")
        if len(content) > cfg.max_content_chars:
            raise BadInput(
                f"{field_}.content",
                f"is {len(content)} characters; the limit is {cfg.max_content_chars}",
            )
        try:
            kind = MemoryKind(item.kind)
        except ValueError:
            allowed = ", ".join(k.value for k in MemoryKind)
            raise BadInput(
                f"{field_}.kind", f"unknown kind {item.kind!r}; one of {allowed}"
            ) from None
        importance = self._unit_number(item.importance, f"{field_}.importance")
        occurred = now
        if item.occurred_at is not None:
            occurred = parse_time(item.occurred_at, f"{field_}.occurredAt")
        memory_id = item.id if item.id is not None else uuid.uuid4().hex
        if not isinstance(memory_id, str) or not memory_id.strip():
            raise BadInput(f"{field_}.id", "must be a non-empty string")
        if len(memory_id) > cfg.max_id_chars:
            raise BadInput(f"{field_}.id", f"must be at most {cfg.max_id_chars} characters")
        if memory_id.startswith(ENTITY_PREFIX):
            raise BadInput(f"{field_}.id", f"must not start with {ENTITY_PREFIX!r} (reserved)")
        if item.session_id is not None and (
            not isinstance(item.session_id, str) or len(item.session_id) > cfg.max_id_chars
        ):
            raise BadInput(f"{field_}.sessionId", f"must be text of at most {cfg.max_id_chars}")
        metadata = item.metadata or {}
        if not isinstance(metadata, dict):
            raise BadInput(f"{field_}.metadata", "must be a JSON object")
        try:
            encoded = json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError):
            raise BadInput(f"{field_}.metadata", "must be JSON-serialisable, no NaN") from None
        if len(encoded.encode("utf-8")) > cfg.max_metadata_bytes:
            raise BadInput(f"{field_}.metadata", f"exceeds {cfg.max_metadata_bytes} bytes")
        if len(item.links) > cfg.max_links:
            raise BadInput(f"{field_}.links", f"at most {cfg.max_links} links per memory")
        links: list[Link] = []
        for j, link in enumerate(item.links):
            where = f"{field_}.links[{j}]"
            try:
                type_ = AssociationType(link.type)
            except ValueError:
                allowed = ", ".join(t.value for t in AssociationType if t.value != "MENTIONS")
                raise BadInput(
                    f"{where}.type", f"unknown type {link.type!r}; one of {allowed}"
                ) from None
            if type_ == AssociationType.MENTIONS:
                raise BadInput(f"{where}.type", "MENTIONS associations are built, not given")
            if not isinstance(link.target, str) or not link.target:
                raise BadInput(f"{where}.target", "must be a memory id")
            if link.target.startswith(ENTITY_PREFIX):
                raise NotFound(
                    f"{where}.target: memory {link.target!r} does not exist in {namespace!r}"
                )
            if link.target == memory_id:
                raise BadInput(f"{where}.target", "must differ from the memory's own id")
            weight = self._unit_number(link.weight, f"{where}.weight")
            links.append(Link(link.target, type_, weight))
        memory = Memory(
            id=memory_id,
            namespace=namespace,
            content=content,
            kind=kind,
            tier=Tier.SEMANTIC if kind == MemoryKind.CONCEPT else Tier.WORKING,
            session_id=item.session_id,
            created_at=now,
            occurred_at=occurred,
            importance=importance,
            metadata=metadata,
        )
        return memory, links

    def check_input(self, namespace: str, item: MemoryInput, field: str = "input") -> None:
        """Check one input's own fields as :meth:`remember` would, writing nothing and
        looking nothing up (streaming importers check ids and links across the file)."""
        self._check_namespace(namespace)
        self._prepare(namespace, item, field, datetime.now(UTC))

    def validate(
        self, namespace: str, items: Sequence[MemoryInput], *, field: str = "inputs"
    ) -> list[tuple[Memory, list[Link]]]:
        """Check a batch exactly as :meth:`remember_many` would, writing nothing.

        Every field is checked; ids must be unique in the batch and new to the
        namespace; each link must name a stored memory or one earlier in the batch.
        Raises ``BadInput`` (``DuplicateId`` for an existing id) or ``NotFound``, naming
        the item's field. Returns the prepared memories and links.
        """
        self._check_namespace(namespace)
        now = datetime.now(UTC)
        single = len(items) == 1 and field == "inputs"
        prepared = [
            self._prepare(namespace, item, "input" if single else f"{field}[{i}]", now)
            for i, item in enumerate(items)
        ]
        position: dict[str, int] = {}
        for i, (memory, _) in enumerate(prepared):
            if memory.id in position:
                raise BadInput(
                    f"{field}[{i}].id", f"memory id {memory.id!r} appears twice in the batch"
                )
            position[memory.id] = i
        stored = self.store.seqs_of(namespace, list(position))
        for memory_id in stored:
            where = "input" if single else f"{field}[{position[memory_id]}]"
            raise DuplicateId(
                f"{where}.id", f"memory {memory_id!r} already exists in namespace {namespace!r}"
            )
        outside = sorted({link.target for _, links in prepared for link in links} - set(position))
        found = self.store.seqs_of(namespace, outside) if outside else {}
        for i, (_, links) in enumerate(prepared):
            for j, link in enumerate(links):
                earlier = position.get(link.target, i) < i
                if not earlier and not (
                    link.target in found and not link.target.startswith(ENTITY_PREFIX)
                ):
                    where = "input" if single else f"{field}[{i}]"
                    raise NotFound(
                        f"{where}.links[{j}].target: memory {link.target!r} is neither stored "
                        f"in namespace {namespace!r} nor earlier in the batch"
                    )
        return prepared

    # -- writes ----------------------------------------------------------------------

    def remember(self, namespace: str, content: str | MemoryInput, **fields: Any) -> Memory:
        """Store one memory and build its associations; returns it as stored."""
        item = content if isinstance(content, MemoryInput) else MemoryInput(content, **fields)
        return self.remember_many(namespace, [item])[0]

    def remember_many(self, namespace: str, items: Sequence[MemoryInput]) -> list[Memory]:
        """Store memories atomically: all of them, or (on any bad input) none.

        The write is acknowledged (durable) when this returns.
        """
        self._check_namespace(namespace)
        cfg = self.config
        if not items:
            raise BadInput("inputs", "must contain at least one memory")
        if len(items) > cfg.max_batch:
            raise BadInput("inputs", f"has {len(items)} memories; the limit is {cfg.max_batch}")
        prepared = self.validate(namespace, items)
        memories = [memory for memory, _ in prepared]
        ns = self.namespace(namespace)
        # Embedding (the slow part) runs outside the write lock; the context passages
        # read the memory before each in its session, so a concurrent write to the same
        # session that lands first means re-embedding those (at commit).
        contexts = self._contexts(ns, memories, self._session_heads(ns, memories))
        pending = _Pending(prepared, self._embed(memories, contexts), contexts)
        with ns.queue_lock:
            ns.queue.append(pending)
        with ns.write_lock:
            while not pending.done:  # committed by an earlier holder, or now by us
                self._commit_queued(ns)
        if pending.error is not None:
            raise pending.error
        return memories

    def _commit_queued(self, ns: _Namespace) -> None:
        """Commit the calls waiting in the namespace's queue, oldest first, as many as
        fit in one batch (``max_batch`` memories), in one store transaction. When that
        fails, each is committed alone, so one call's error (a duplicate id, a link
        target forgotten meanwhile) is its own. The caller holds the write lock."""
        with ns.queue_lock:
            group: list[_Pending] = []
            size = 0
            while ns.queue and (
                not group or size + len(ns.queue[0].prepared) <= self.config.max_batch
            ):
                group.append(ns.queue.pop(0))
                size += len(group[-1].prepared)
        try:
            try:
                if len(group) > 1 and self._commit(ns, group):
                    return
            except StoreUnavailable as exc:
                # Committing each alone would wait out the store's retry time once per
                # call: every call in the group gets the error now.
                for pending in group:
                    pending.error = exc
                    pending.done = True
                return
            for pending in group:
                try:
                    self._commit(ns, [pending], alone=True)
                except Exception as exc:  # the store refused it: nothing of it written
                    pending.error = exc
                pending.done = True
        finally:
            for pending in group:
                if not pending.done:  # the commit itself failed past the store's write
                    pending.error = RuntimeError("the write was interrupted; see the log")
                    pending.done = True

    def _commit(self, ns: _Namespace, group: list[_Pending], *, alone: bool = False) -> bool:
        """Write ``group`` in one transaction and bring the derived state along; marks
        them done. False (nothing written) when the store refuses the batch, unless
        ``alone``, when its error is raised."""
        prepared = [item for pending in group for item in pending.prepared]
        memories = [memory for memory, _ in prepared]
        embedded = [text for pending in group for text in pending.contexts]
        now = self._contexts(ns, memories, self._session_heads(ns, memories))
        if now != embedded:  # the session moved on since the embedding
            changed = [i for i, (a, b) in enumerate(zip(now, embedded, strict=True)) if a != b]
            self._embed_contexts([memories[i] for i in changed], [now[i] for i in changed])
            offset = 0
            for pending in group:
                pending.contexts = now[offset : offset + len(pending.prepared)]
                offset += len(pending.prepared)
        vectors = np.concatenate([pending.vectors for pending in group])
        with ns.lock:
            batch = self._associate_on_write(ns, prepared, vectors)
        try:
            result = self.store.write(ns.name, batch)
        except StoreUnavailable:
            raise  # not this group's fault: alone, each would fail the same way
        except Exception:
            if alone:
                raise
            return False
        self._apply(ns, result.generation, lambda: self._apply_remember(ns, batch, result))
        for pending in group:
            pending.done = True
        return True

    def _session_heads(self, ns: _Namespace, memories: list[Memory]) -> dict[str, str]:
        """The stored memory each session of the batch continues from (its last)."""
        heads: dict[str, str] = {}
        for session in {m.session_id for m in memories if m.session_id is not None}:
            cached = ns.last_in_session.get(session) or self.store.last_in_session(ns.name, session)
            if cached is not None:
                heads[session] = cached[0]
        return heads

    def _contexts(
        self, ns: _Namespace, memories: list[Memory], heads: dict[str, str]
    ) -> list[str | None]:
        """Each memory's context passage: the memory before it in its session (earlier
        in the batch, or the session's stored head) and itself, read together."""
        if not (self.config.passages and self.config.context_passages):
            return [None] * len(memories)
        stored = {m.id: m.content for m in self.store.get(ns.name, list(heads.values()))}
        last = {session: stored.get(head) for session, head in heads.items()}
        texts: list[str | None] = []
        for memory in memories:
            previous = last.get(memory.session_id) if memory.session_id is not None else None
            texts.append(f"{previous}\n{memory.content}" if previous else None)
            if memory.session_id is not None:
                last[memory.session_id] = memory.content
        return texts

    def _embed(self, memories: list[Memory], contexts: list[str | None]) -> np.ndarray:
        """Embed memories, their sentence passages and their context passages in one
        encoder call; set ``embedding``, ``passages`` and ``context_embedding`` on each
        and return the memories' vectors."""
        cfg = self.config
        split = [
            split_passages(
                m.content,
                max_passages=min(cfg.max_passages, MAX_PASSAGES),
                min_chars=cfg.passage_min_chars,
            )
            if cfg.passages
            else []
            for m in memories
        ]
        texts = [m.content for m in memories] + [p for parts in split for p in parts]
        texts += [c for c in contexts if c is not None]
        encoded = self.encoder.encode(texts)
        start = len(memories)
        for memory, vector, parts in zip(memories, encoded[: len(memories)], split, strict=True):
            memory.embedding = vector
            if parts:
                memory.passages = encoded[start : start + len(parts)]
                start += len(parts)
        for memory, context in zip(memories, contexts, strict=True):
            if context is not None:
                memory.context_embedding = encoded[start]
                start += 1
        return encoded[: len(memories)]

    def _embed_contexts(self, memories: list[Memory], contexts: list[str | None]) -> None:
        """Embed the context passages again (their predecessors changed)."""
        wanted = [(m, c) for m, c in zip(memories, contexts, strict=True) if c is not None]
        for memory in memories:
            memory.context_embedding = None
        if wanted:
            encoded = self.encoder.encode([c for _, c in wanted])
            for (memory, _), vector in zip(wanted, encoded, strict=True):
                memory.context_embedding = vector

    def _apply(self, ns: _Namespace, generation: int, change: Callable[[], None]) -> None:
        """Apply a committed write to the in-memory structures and advance the
        generation, under the read lock (held only for the in-memory work)."""
        with ns.lock:
            change()
            self._advance(ns, generation)

    def _apply_remember(self, ns: _Namespace, batch: WriteBatch, result: WriteResult) -> None:
        """New nodes and edges into the view, new vectors into the index."""
        by_id = {m.id: m for m in batch.memories}
        created = sorted(result.new_nodes, key=lambda i: result.seqs[i])
        nodes = [by_id.get(i) for i in created]
        ns.view.add_nodes(
            np.array([result.seqs[i] for i in created], np.int64),
            is_memory=np.array([m is not None for m in nodes]),
            occurred_at=np.array([to_epoch(m.when) if m else np.nan for m in nodes]),
            importance=np.array([m.importance if m else 0.0 for m in nodes], np.float32),
            tier=np.array([_TIERS.index(m.tier) if m else -1 for m in nodes], np.int8),
            sessions=[m.session_id if m else None for m in nodes],
            contents=[m.content if m else None for m in nodes],
            last_accessed_at=np.array(
                [
                    to_epoch(m.last_accessed_at) if m and m.last_accessed_at else np.nan
                    for m in nodes
                ]
            ),
            access_count=np.array([m.access_count if m else 0 for m in nodes], np.int32),
        )
        ns.view.add_edges(result.edges)
        memories = batch.memories
        vectors = np.stack([m.embedding for m in memories])  # type: ignore[misc]
        ns.index.add(np.array([result.seqs[m.id] for m in memories], np.int64), vectors)
        ids: list[int] = []
        passage_vectors: list[np.ndarray] = []
        for memory in memories:
            sentences = [] if memory.passages is None else list(memory.passages)
            context = memory.context_embedding
            ids += passage_ids(result.seqs[memory.id], len(sentences), context is not None)
            passage_vectors += sentences if context is None else [*sentences, context]
        if ids:
            ns.passages.add(np.array(ids, np.int64), np.stack(passage_vectors))
        ns.index_dirty = True
        for memory in memories:
            if memory.session_id is not None:
                ns.last_in_session[memory.session_id] = (memory.id, result.seqs[memory.id])

    def _associate_on_write(
        self, ns: _Namespace, prepared: list[tuple[Memory, list[Link]]], vectors: np.ndarray
    ) -> WriteBatch:
        """The associations a batch of new memories gets: temporal, semantic, entity and
        explicit (see DESIGN.md, data model)."""
        cfg = self.config
        memories = [memory for memory, _ in prepared]
        batch = WriteBatch(memories=memories)
        # Similar memories already stored: one batched index search.
        stored_ids = np.full((len(memories), 0), -1, np.int64)
        stored_sims = np.zeros((len(memories), 0), np.float32)
        if ns.index.live_count:
            stored_ids, stored_sims = ns.index.search(vectors, cfg.similar_k)
            stored_ids = stored_ids.reshape(len(memories), -1)
            stored_sims = stored_sims.reshape(len(memories), -1)
        wanted = sorted({int(q) for q in stored_ids.ravel().tolist() if q >= 0})
        seq_to_id = self.store.node_ids(ns.name, wanted) if wanted else {}
        within = vectors @ vectors.T  # similar memories earlier in this batch
        last_session: dict[str, str] = {}
        for i, (memory, links) in enumerate(prepared):
            # temporal: FOLLOWS from the previous memory of the same session
            if memory.session_id is not None:
                previous = last_session.get(memory.session_id)
                if previous is None:
                    cached = ns.last_in_session.get(memory.session_id)
                    if cached is None:
                        cached = self.store.last_in_session(ns.name, memory.session_id)
                    previous = cached[0] if cached else None
                if previous is not None:
                    batch.edges.append(
                        Association(
                            previous, memory.id, AssociationType.FOLLOWS, cfg.follows_weight
                        )
                    )
                last_session[memory.session_id] = memory.id
            # semantic: SIMILAR_TO the nearest neighbours above the threshold
            neighbours = [
                (float(sim), seq_to_id[int(q)])
                for q, sim in zip(stored_ids[i].tolist(), stored_sims[i].tolist(), strict=True)
                if q >= 0 and sim >= cfg.similar_threshold and int(q) in seq_to_id
            ]
            neighbours += [
                (float(within[i, j]), memories[j].id)
                for j in range(i)
                if within[i, j] >= cfg.similar_threshold
            ]
            neighbours.sort(reverse=True)
            for sim, other in neighbours[: cfg.similar_k]:
                batch.edges.append(
                    Association(memory.id, other, AssociationType.SIMILAR_TO, min(sim, 1.0))
                )
            # entities: MENTIONS through entity nodes
            for entity in extract_entities(memory.content, max_entities=cfg.max_entities):
                batch.entities.setdefault(entity.key, entity.label)
                batch.edges.append(
                    Association(
                        memory.id,
                        ENTITY_PREFIX + entity.key,
                        AssociationType.MENTIONS,
                        cfg.mention_weight,
                    )
                )
            # explicit: the caller's links
            for link in links:
                batch.edges.append(
                    Association(memory.id, link.target, link.type, link.weight, explicit=True)
                )
        return batch

    def associate(
        self,
        namespace: str,
        source: str,
        target: str,
        type: AssociationType | str = AssociationType.RELATED_TO,
        weight: float = 1.0,
    ) -> Association:
        """Create or update an explicit association between two memories."""
        self._check_namespace(namespace)
        try:
            kind = AssociationType(type)
        except ValueError:
            raise BadInput("type", f"unknown association type {type!r}") from None
        if kind == AssociationType.MENTIONS:
            raise BadInput("type", "MENTIONS associations are built from content, not given")
        weight = self._unit_number(weight, "weight")
        if source == target:
            raise BadInput("target", "must differ from source")
        edge = Association(source, target, kind, weight, explicit=True)
        ns = self.namespace(namespace)
        with ns.write_lock:
            found = self.store.seqs_of(namespace, [source, target])
            for name, node in (("source", source), ("target", target)):
                if node not in found or node.startswith(ENTITY_PREFIX):
                    raise NotFound(f"{name}: memory {node!r} does not exist in {namespace!r}")
            result = self.store.write(namespace, WriteBatch(edges=[edge]))
            self._apply(ns, result.generation, lambda: ns.view.add_edges(result.edges))
        edge.weight = result.edges[0][3] if result.edges else edge.weight
        return edge

    def restore(
        self,
        namespace: str,
        memories: Sequence[Memory],
        entities: dict[str, str],
        associations: Sequence[Association],
    ) -> None:
        """Write memories exactly as given (ids, times, tiers, counts, vectors) with
        their entities (key -> label) and associations, in one atomic store write,
        building no associations of its own: the import side of ``hippograph.graph.transfer``.
        Every memory needs its embedding; ids must be new to the namespace."""
        self._check_namespace(namespace)
        if not memories and not associations:
            return
        for i, memory in enumerate(memories):
            if memory.embedding is None or len(memory.embedding) != self.encoder.dim:
                raise BadInput(f"memories[{i}].embedding", f"must have {self.encoder.dim} values")
            memory.namespace = namespace
        batch = WriteBatch(
            memories=list(memories), entities=dict(entities), edges=list(associations)
        )
        ns = self.namespace(namespace)
        with ns.write_lock:
            result = self.store.write(namespace, batch)
            if memories:
                self._apply(ns, result.generation, lambda: self._apply_remember(ns, batch, result))
            else:
                self._apply(ns, result.generation, lambda: ns.view.add_edges(result.edges))

    def apply_changes(
        self,
        namespace: str,
        changes: ChangeBatch,
        *,
        stale: Callable[[], int] | None = None,
    ) -> int:
        """Apply lifecycle changes atomically (``GraphStore.apply_changes``) and bring
        the derived structures along: the view is reloaded from the store and both
        vector indexes catch up by seq (a memory whose vectors changed has a new seq,
        so its old vectors leave the index and its new ones enter). A memory given
        without an embedding loses its passage vectors too. Returns the new
        generation.

        ``stale``, when given, runs once no other write can land (the namespace's
        writes wait, pending recall side effects are in the store) and counts the
        changes that the store has moved past since they were planned; any count
        above 0 raises :class:`StaleChanges` and nothing is applied."""
        self._check_namespace(namespace)
        # Passages refine a memory's own vector; without it they would be orphans.
        changes.memories = [
            m if m.embedding is not None else replace(m, passages=None, context_embedding=None)
            for m in changes.memories
        ]
        ns = self.namespace(namespace)
        with ns.write_lock:
            self._flush_access(ns)  # pending accesses are keyed by seqs that may move
            if stale is not None and (count := stale()):
                raise StaleChanges(count)
            generation = self.store.apply_changes(namespace, changes)
            view = NamespaceView.from_store(
                self.store, namespace, delta_limit=self.config.delta_limit
            )
            with ns.lock:
                ns.view = view
                self._catch_up(namespace, ns.index, view)
                self._catch_up(namespace, ns.passages, view, passages=True)
                ns.last_in_session.clear()
                ns.index_dirty = True
                self._advance(ns, generation)
        return generation

    def archive_dir(self, namespace: str) -> Path:
        """Where a namespace's archive files live (created on demand)."""
        self._check_namespace(namespace)
        path = self.data_dir / "archive" / _namespace_token(namespace)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def indexed(self, namespace: str) -> np.ndarray:
        """Sorted seqs of the memories the namespace's vector index can return."""
        ns = self.namespace(namespace)
        with ns.lock:
            return ns.index.live_ids()

    def forget(self, namespace: str, memory_id: str) -> bool:
        """Delete a memory and its associations; it never comes back from recall."""
        self._check_namespace(namespace)
        ns = self.namespace(namespace)
        with ns.write_lock:
            forgotten = self.store.forget(namespace, memory_id)
            if forgotten is None:
                return False
            seq, generation = forgotten
            self._apply(ns, generation, lambda: self._apply_forget(ns, seq))
        return True

    def _apply_forget(self, ns: _Namespace, seq: int) -> None:
        ns.view.remove_node(seq)
        if seq in ns.index:
            ns.index.remove(np.array([seq], np.int64))
            ns.index_dirty = True
        held = [p for p in passage_ids(seq, MAX_PASSAGES, True) if p in ns.passages]
        if held:
            ns.passages.remove(np.array(held, np.int64))
        ns.pending_access.pop(seq, None)
        ns.pending_edges = {
            key: value for key, value in ns.pending_edges.items() if seq not in key[:2]
        }
        ns.last_in_session = {s: v for s, v in ns.last_in_session.items() if v[1] != seq}

    # -- reads -----------------------------------------------------------------------

    def get(self, namespace: str, memory_id: str) -> Memory | None:
        self._check_namespace(namespace)
        found = self.store.get(namespace, [memory_id])
        if not found:  # merged into another memory by dedup: answer with the survivor
            survivor = self.store.resolve_aliases(namespace, [memory_id]).get(memory_id)
            found = self.store.get(namespace, [survivor]) if survivor else []
        return found[0] if found else None

    def neighbors(
        self,
        namespace: str,
        memory_id: str,
        types: Sequence[AssociationType] | None = None,
        limit: int = 100,
    ) -> list[Association]:
        self._check_namespace(namespace)
        if not 1 <= limit <= 10_000:
            raise BadInput("limit", "must be from 1 to 10000")
        return self.store.associations(namespace, memory_id, types, limit)

    def stats(self, namespace: str) -> dict[str, Any]:
        self._check_namespace(namespace)
        ns = self.namespace(namespace)
        counts: dict[str, Any] = dict(self.store.stats(namespace))
        with ns.lock:
            counts["index"] = {
                "kind": ns.index.kind,
                "vectors": int(ns.index.live_count),
                "dead": int(ns.index.dead_count),
                "passages": int(ns.passages.live_count),
            }
            counts["memories"] = int(sum(counts["tiers"].values()))
            counts["graph"] = {
                "nodes": int(np.count_nonzero(ns.view.alive)),
                "edges": ns.view.n_edges,
            }
        return counts

    def lifecycle_runs(self, namespace: str, limit: int = 10) -> list[dict[str, Any]]:
        """The namespace's latest lifecycle job runs, newest first (what ``stats`` in
        the CLI and GraphQL show; kept out of :meth:`stats`, which ``/metrics`` calls for
        every namespace on every scrape)."""
        self._check_namespace(namespace)
        return [
            {
                "id": r.id,
                "job": r.job,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat(),
                "dry_run": r.dry_run,
                "counts": r.counts,
            }
            for r in self.store.runs(namespace, limit=limit)
        ]

    def _check_recall(
        self, k: int, tiers: Sequence[Tier | str] | None, hops: int | None
    ) -> set[Tier]:
        """Validate recall bounds; the tiers to search (all but archived by default)."""
        cfg = self.config
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= cfg.max_k:
            raise BadInput("k", f"must be an integer from 1 to {cfg.max_k}")
        if hops is not None and (
            isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= cfg.max_hops
        ):
            raise BadInput("hops", f"must be an integer from 0 to {cfg.max_hops}")
        if not tiers:
            return set(Tier) - {Tier.ARCHIVED}
        allowed = set()
        for tier in tiers:
            try:
                allowed.add(Tier(tier))
            except ValueError:
                names = ", ".join(t.value for t in Tier)
                raise BadInput("tiers", f"unknown tier {tier!r}; one of {names}") from None
        return allowed

    def recall(
        self,
        namespace: str,
        query: str,
        *,
        k: int = 10,
        context: RecallContext | None = None,
        tiers: Sequence[Tier] | None = None,
        hops: int | None = None,
        learn: bool = True,
        timings: dict[str, float] | None = None,
    ) -> list[Recollection]:
        """The ``k`` memories most worth recalling for ``query`` in ``context``.

        Seeds come from the vector index and the store's full-text index, fused;
        activation spreads from them over the association graph; candidates are scored
        from their parts. With ``learn``, the access is recorded and edges among the
        top results are strengthened (Hebbian). A ``timings`` dict receives seconds
        per stage: ``embed``, ``seed``, ``activate``, ``score``, ``fetch``, ``learn``.
        """
        self._check_namespace(namespace)
        cfg = self.config
        if not isinstance(query, str) or not query.strip():
            raise BadInput("query", "must be non-empty text")
        if len(query) > cfg.max_content_chars:
            raise BadInput("query", f"is longer than {cfg.max_content_chars} characters")
        self._check_recall(k, tiers, hops)
        context = context or RecallContext()
        texts = [query] + ([context.text] if context.text else [])
        started = time.perf_counter()
        vectors = self.encoder.encode(texts)
        if timings is not None:
            timings["embed"] = time.perf_counter() - started
        q = vectors[0]
        if context.text:
            q = q + cfg.context_text_weight * vectors[1]
            q = q / max(float(np.linalg.norm(q)), 1e-12)
        return self.recall_vector(
            namespace,
            query,
            q,
            k=k,
            context=context,
            tiers=tiers,
            hops=hops,
            learn=learn,
            timings=timings,
        )

    def recall_vector(
        self,
        namespace: str,
        query: str,
        vector: np.ndarray,
        *,
        k: int = 10,
        context: RecallContext | None = None,
        tiers: Sequence[Tier] | None = None,
        hops: int | None = None,
        learn: bool = True,
        timings: dict[str, float] | None = None,
    ) -> list[Recollection]:
        """:meth:`recall` with the query already embedded (benchmarks, batch callers)."""
        self._check_namespace(namespace)
        cfg = self.config
        allowed = self._check_recall(k, tiers, hops)
        context = context or RecallContext()
        at = to_epoch(context.at) if context.at else time.time()
        tier_ok = np.array([t in allowed for t in _TIERS])
        ns = self.namespace(namespace)
        q = np.asarray(vector, dtype=np.float32)
        clock = _StageClock(timings)
        with ns.lock:
            view = ns.view
            if view.n_nodes == 0:
                return []
            # 1. seeds: nearest vectors and best BM25 matches, fused
            seed_nodes, seed_energy, cosine = self._seed(ns, query, q)
            if len(seed_nodes) == 0:
                return []
            clock.mark("seed")
            # 2. spread activation over the association graph
            params = cfg.activation if hops is None else replace(cfg.activation, hops=hops)
            spread = spread_activation(
                view.layers,
                seed_nodes,
                seed_energy,
                params,
                degree=view.degree,
                alive=view.alive,
                workspace=view.workspace,
            )
            clock.mark("activate")
            # 3. candidates: live memories of the allowed tiers, strongest first
            nodes = spread.nodes
            usable = view.is_memory[nodes] & view.alive[nodes] & tier_ok[view.tier[nodes]]
            rows = np.flatnonzero(usable)
            if len(rows) == 0:
                return []
            if len(rows) > cfg.max_candidates:
                top = np.argpartition(-spread.energy[rows], cfg.max_candidates - 1)
                rows = rows[top[: cfg.max_candidates]]
            cand = nodes[rows]
            energy = spread.energy[rows]
            parts = self._score_parts(ns, cand, energy, (seed_nodes, cosine), q, at, context)
            score = blend(parts, cfg.weights)
            order = np.argsort(-score, kind="stable")[:k]
            chosen = cand[order]
            unknown = np.isnan(parts["similarity"][order])
            if unknown.any():
                parts["similarity"][order[unknown]] = np.clip(
                    self._similarity(ns, view.seq[chosen[unknown]], q), 0.0, 1.0
                )
            clock.mark("score")
            # 4. explain: parts and the path that brought each
            steps = paths_to(spread, chosen.tolist())
            path_nodes = {s[0] for path in steps for s in path}
            seqs = view.seq[chosen]
            fetched, names = self.store.recalled(
                namespace, seqs.tolist(), [int(view.seq[n]) for n in path_nodes]
            )
            results: list[Recollection] = []
            for slot, (node, path) in enumerate(zip(chosen.tolist(), steps, strict=True)):
                memory = fetched.get(int(view.seq[node]))
                if memory is None:
                    continue
                results.append(
                    Recollection(
                        memory=memory,
                        score=float(score[order[slot]]),
                        parts={p: float(parts[p][order[slot]]) for p in PART_NAMES},
                        path=[
                            PathStep(
                                names.get(int(view.seq[src]), str(view.seq[src])),
                                AssociationType.from_code(t),
                                w,
                            )
                            for src, t, w in path
                        ],
                    )
                )
            clock.mark("fetch")
            # 5. record the access: recency and count, Hebbian strengthening, promotion
            if learn and results:
                self._learn(ns, chosen, at)
            clock.mark("learn")
        return results

    def _seed(
        self, ns: _Namespace, query: str, q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seed nodes (sorted), their energy (max 1) and their similarity. Every seed
        gets both signals: its similarity (:meth:`_similarity`) and its BM25 (0 when not
        a lexical match). The caller holds the namespace's lock."""
        cfg = self.config
        view = ns.view
        empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        dense_seqs, dense_sims = self._nearest(ns, q, cfg.dense_seeds, cfg.passage_seeds)
        dense_nodes = view.index_of(dense_seqs)
        found = dense_nodes >= 0
        dense_nodes, dense_sims = dense_nodes[found], dense_sims[found]
        lexical_nodes, bm25 = view.lexical.search(query, cfg.lexical_seeds)
        seed_nodes = np.union1d(dense_nodes, lexical_nodes)
        if len(seed_nodes) == 0:
            return empty
        cosine = np.full(len(seed_nodes), np.nan)
        cosine[np.searchsorted(seed_nodes, dense_nodes)] = dense_sims
        unknown = np.isnan(cosine)
        if unknown.any():
            cosine[unknown] = self._similarity(ns, view.seq[seed_nodes[unknown]], q)
        cosine = np.clip(cosine, 0.0, 1.0)
        lexical_part = np.zeros(len(seed_nodes))
        if len(bm25):
            lexical_part[np.searchsorted(seed_nodes, lexical_nodes)] = bm25 / bm25.max()
        seed_energy = cosine + cfg.lexical_weight * lexical_part
        keep = seed_energy > 0
        if not keep.any():
            return empty
        seed_energy = seed_energy[keep]
        return seed_nodes[keep], seed_energy / seed_energy.max(), cosine[keep]

    def _nearest(
        self, ns: _Namespace, q: np.ndarray, k: int, passage_k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` memories (seqs, similarity) nearest to ``q``: among the ``k``
        nearest by whole vector and the owners of the ``passage_k`` nearest passages,
        re-ranked by :meth:`_similarity`. The caller holds the namespace's lock."""
        seqs, sims = ns.index.search(q, k)
        if not (self._use_passages(ns) and self.config.passage_seeds):
            return seqs, sims
        passages, _ = ns.passages.search(q, passage_k)
        pool = np.union1d(seqs, passages >> PASSAGE_BITS)
        similarity = self._similarity(ns, pool, q)
        top = np.argsort(-similarity, kind="stable")[:k]
        return pool[top], similarity[top]

    def _use_passages(self, ns: _Namespace) -> bool:
        cfg = self.config
        weighted = cfg.passage_weight or cfg.context_weight
        return bool(cfg.passages and weighted and ns.passages.live_count)

    def _similarity(self, ns: _Namespace, seqs: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Similarity of live memories to the query vector: the cosine of the whole
        vector, plus ``passage_weight`` times what the best passage adds to it."""
        whole = np.zeros(len(seqs), np.float64)
        present = ns.index.has(seqs)  # archived stubs are nodes without vectors
        if present.all():
            whole = (ns.index.reconstruct(seqs) @ q).astype(np.float64)
        elif present.any():
            whole[present] = ns.index.reconstruct(seqs[present]) @ q
        if not self._use_passages(ns):
            return whole
        cfg = self.config
        held = ns.passages
        ids: list[int] = []
        slots: list[int] = []
        context_ids: list[int] = []
        context_slots: list[int] = []
        firsts = [seq << PASSAGE_BITS for seq in seqs.tolist()]
        for slot, (first, run) in enumerate(
            zip(firsts, held.runs(firsts, CONTEXT_POSITION), strict=True)
        ):
            ids.extend(range(first, first + run))
            slots.extend([slot] * run)
        if cfg.context_passages:
            last = np.array(firsts, np.int64) + CONTEXT_POSITION
            with_context = np.flatnonzero(held.has(last))
            context_ids = last[with_context].tolist()
            context_slots = with_context.tolist()
        similarity = whole
        if ids:
            best = whole.copy()
            np.maximum.at(best, np.array(slots), held.reconstruct(np.array(ids, np.int64)) @ q)
            similarity = whole + cfg.passage_weight * (best - whole)
        if context_ids and cfg.context_weight:
            context = held.reconstruct(np.array(context_ids, np.int64)) @ q
            rows = np.array(context_slots)
            keep = 1.0 - cfg.context_weight
            similarity[rows] = keep * similarity[rows] + cfg.context_weight * context
        return similarity

    def nearest(self, namespace: str, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """(memory id, similarity) of the memories most similar to a query vector, by the
        similarity recall uses (whole, sentence and context vectors), best first: no
        lexical match, no graph. The vector-only baseline of ``bench locomo``."""
        self._check_namespace(namespace)
        ns = self.namespace(namespace)
        with ns.lock:
            q = np.asarray(vector, dtype=np.float32)
            seqs, sims = self._nearest(ns, q, k, max(k, self.config.passage_seeds))
        names = self.store.node_ids(namespace, seqs.tolist())
        return [
            (names[s], float(x)) for s, x in zip(seqs.tolist(), sims, strict=True) if s in names
        ]

    def seeds(
        self, namespace: str, query: str, vector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The seeds recall would spread from: (node indices of the namespace's view,
        energies). For baselines that rank the same graph another way."""
        self._check_namespace(namespace)
        ns = self.namespace(namespace)
        with ns.lock:
            nodes, energy, _ = self._seed(ns, query, np.asarray(vector, dtype=np.float32))
        return nodes, energy

    def _score_parts(
        self,
        ns: _Namespace,
        cand: np.ndarray,
        energy: np.ndarray,
        known: tuple[np.ndarray, np.ndarray],
        q: np.ndarray,
        at: float,
        context: RecallContext,
    ) -> dict[str, np.ndarray]:
        """Score parts of the candidates; ``known`` holds (sorted seed nodes, cosine) so
        only candidates reached through the graph need their vectors."""
        cfg = self.config
        view = ns.view
        seed_nodes, seed_cosine = known
        similarity = np.full(len(cand), np.nan)
        pos = np.minimum(np.searchsorted(seed_nodes, cand), len(seed_nodes) - 1)
        is_seed = seed_nodes[pos] == cand
        similarity[is_seed] = seed_cosine[pos[is_seed]]
        # Graph-reached candidates need their vectors for the similarity part; when it
        # carries no weight only the chosen few get them (see recall_vector).
        if not is_seed.all() and cfg.weights.similarity:
            similarity[~is_seed] = np.clip(
                self._similarity(ns, view.seq[cand[~is_seed]], q), 0.0, 1.0
            )
        activation = energy / max(float(energy.max()), 1e-12)
        recency = recency_score(
            at,
            view.occurred_at[cand],
            view.last_accessed_at[cand],
            view.access_count[cand],
            decay=cfg.recency_decay,
            threshold=cfg.recency_threshold,
            noise=cfg.recency_noise,
        )
        signals: list[np.ndarray] = []
        if context.session_id is not None:
            code = view.session_code(context.session_id)
            signals.append((view.session[cand] == code).astype(np.float64))
        if context.entities:
            keys = [
                ENTITY_PREFIX + e.key
                for name in context.entities
                for e in extract_entities(name, max_entities=4) or []
            ] or [ENTITY_PREFIX + name.casefold().strip() for name in context.entities]
            wanted_seqs = list(self.store.seqs_of(ns.name, keys).values())
            wanted = view.index_of(np.array(wanted_seqs, np.int64))
            wanted = wanted[wanted >= 0]
            share = np.zeros(len(cand))
            if len(wanted):
                slots, entities = view.mentions(cand)
                hit = np.isin(entities, wanted)
                np.add.at(share, slots[hit], 1.0)
                share = np.minimum(share / len(wanted), 1.0)
            signals.append(share)
        if context.since is not None or context.until is not None:
            lo = to_epoch(context.since) if context.since else -np.inf
            hi = to_epoch(context.until) if context.until else np.inf
            when = view.occurred_at[cand]
            signals.append(((when >= lo) & (when <= hi)).astype(np.float64))
        context_part = np.mean(signals, axis=0) if signals else np.zeros(len(cand))
        return {
            "similarity": similarity,
            "activation": activation,
            "recency": recency,
            "importance": view.importance[cand].astype(np.float64),
            "context": context_part,
            "informativeness": informativeness(
                view.lexical.lengths(cand), view.lexical.mean_length
            ),
        }

    def _learn(self, ns: _Namespace, chosen: np.ndarray, at: float) -> None:
        cfg = self.config
        view = ns.view
        promote = np.where(view.tier[chosen] == _EPISODIC, _WORKING, view.tier[chosen])
        view.touch(chosen, at, promote.astype(np.int8))
        for node, tier in zip(chosen.tolist(), promote.tolist(), strict=True):
            seq = int(view.seq[node])
            held = ns.pending_access.get(seq)
            count = held.count + 1 if held else 1
            at_latest = max(held.at, at) if held else at
            ns.pending_access[seq] = AccessRecord(seq, at_latest, _TIERS[tier], count)
        if cfg.hebbian_rate > 0:
            top = chosen[: cfg.hebbian_top]
            for i, j, t, w in view.edges_among(top):
                strengthened = min(cfg.hebbian_max, w + cfg.hebbian_rate * (1.0 - w))
                if strengthened <= w:
                    continue
                view.set_weight(i, j, t, strengthened)
                ns.pending_edges[(int(view.seq[i]), int(view.seq[j]), t)] = (strengthened, at)
        ns.dirty = True
        self._request_flush(now=len(ns.pending_access) >= cfg.access_flush_every)

    def _flush_access(self, ns: _Namespace) -> None:
        """Write pending recall side effects to the store. The caller holds the
        namespace's write lock; recalls go on meanwhile (they add to fresh pending maps;
        on failure what was taken is put back for the next flush)."""
        with ns.lock:
            if not ns.pending_access and not ns.pending_edges:
                return
            accesses, ns.pending_access = ns.pending_access, {}
            edges, ns.pending_edges = ns.pending_edges, {}
        try:
            generation = self.store.record_access(
                ns.name,
                list(accesses.values()),
                [(s, d, t, w, at) for (s, d, t), (w, at) in edges.items()],
            )
        except BaseException:
            with ns.lock:
                for seq, record in accesses.items():
                    newer = ns.pending_access.get(seq)
                    if newer is not None:
                        record = AccessRecord(
                            seq, max(record.at, newer.at), newer.tier, record.count + newer.count
                        )
                    ns.pending_access[seq] = record
                for key, value in edges.items():
                    ns.pending_edges.setdefault(key, value)
            raise
        with ns.lock:
            self._advance(ns, generation)
