"""``MemoryGraph``: remember, associate, recall, forget — the engine behind the CLI,
the GraphQL API and notebooks.

A thin facade over the parts of the engine, each in its own module:

- :mod:`~hippograph.graph.inputs`: what callers give, and every check of it;
- :mod:`~hippograph.graph.namespace`: each namespace's derived state (view, indexes),
  loaded, caught up, saved and rebuilt;
- :mod:`~hippograph.graph.write`: group commit, embedding, applying writes;
- :mod:`~hippograph.graph.associate`: the associations a new memory gets (pure);
- :mod:`~hippograph.graph.recall`: seed, spread, score, explain;
- :mod:`~hippograph.graph.learning`: recall's side effects, written back in the background.

The store is the source of truth. A write is acknowledged once the store commits it; the
derived structures are then updated in memory and saved at :meth:`MemoryGraph.checkpoint`
and :meth:`MemoryGraph.close`. After a crash they are caught up from the store on open,
so nothing acknowledged is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.embeddings import TextEncoder
from hippograph.graph.archived import Archive
from hippograph.graph.config import GraphConfig
from hippograph.graph.inputs import (
    MemoryInput,
    RecallContext,
    check_association,
    check_batch_size,
    check_context,
    check_namespace,
    check_neighbors_limit,
    check_query,
    check_recall,
    normalised,
    prepare,
    validate,
)
from hippograph.graph.learning import AccessWriter
from hippograph.graph.model import (
    Association,
    AssociationType,
    BadInput,
    Link,
    Memory,
    MemoryKind,
    NotFound,
    Tier,
)
from hippograph.graph.namespace import Namespace, Namespaces
from hippograph.graph.recall import PathStep, Recall, Recollection
from hippograph.graph.sqlite_store import SQLiteStore
from hippograph.graph.store import ChangeBatch, GraphStore, WriteBatch
from hippograph.graph.write import Writer

__all__ = [
    "GraphConfig",
    "MemoryGraph",
    "MemoryInput",
    "PathStep",
    "RecallContext",
    "Recollection",
]


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
    clock:
        The time new memories are stored at (``created_at``); defaults to the UTC wall
        clock. Simulations of months of use (``bench assistant``) pass their own.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        encoder: TextEncoder,
        config: GraphConfig | None = None,
        store: GraphStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.encoder = encoder
        self.config = config or GraphConfig()
        self.store: GraphStore = store or SQLiteStore(self.data_dir / "hippograph.db")
        self.namespaces = Namespaces(self.data_dir, self.store, encoder, self.config)
        # Recall side effects (access counts, Hebbian weights) are written back by a
        # background thread, so no recall waits for a store commit (an fsync).
        self.access = AccessWriter(self.namespaces)
        self.writer = Writer(self.namespaces, flush=self.access.flush)
        self.recaller = Recall(self.namespaces, self.access)
        self.archive = Archive(self.namespaces, self.apply_changes)
        self._closed = False

    # -- lifecycle of the object -----------------------------------------------------

    def __enter__(self) -> MemoryGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self.access.stop()
        self.checkpoint()
        self.store.close()
        self._closed = True

    def checkpoint(self) -> None:
        """Flush recall side effects to the store and save the derived structures."""
        for ns in self.namespaces.loaded():
            with ns.write_lock:
                self.access.flush(ns)
                with ns.lock:
                    if ns.dirty or ns.index_dirty:
                        self.namespaces.save(ns)
        self.archive.save()

    def namespace(self, name: str) -> Namespace:
        """The derived state of a namespace, loaded (or rebuilt) on first use."""
        return self.namespaces.get(name)

    def rebuild(
        self, namespace: str, *, progress: Callable[[str, int], None] | None = None
    ) -> None:
        """Rebuild a namespace's derived structures from the store and save them.

        For bulk loads that wrote to the store directly, and for repair. The index is
        bulk-built (straight to HNSW when large); ``progress(stage, count)`` reports
        each stage as it completes.
        """
        check_namespace(namespace)
        self.namespaces.rebuild(namespace, flush=self.access.flush, progress=progress)

    # -- writes ----------------------------------------------------------------------

    def check_input(self, namespace: str, item: MemoryInput, field: str = "input") -> None:
        """Check one input's own fields as :meth:`remember` would, writing nothing and
        looking nothing up (streaming importers check ids and links across the file)."""
        check_namespace(namespace)
        prepare(self.config, namespace, item, field, self.clock())

    def validate(
        self, namespace: str, items: Sequence[MemoryInput], *, field: str = "inputs"
    ) -> list[tuple[Memory, list[Link]]]:
        """Check a batch exactly as :meth:`remember_many` would, writing nothing.

        Every field is checked; ids must be unique in the batch and new to the
        namespace; each link must name a stored memory or one earlier in the batch.
        Raises ``BadInput`` (``DuplicateId`` for an existing id) or ``NotFound``, naming
        the item's field. Returns the prepared memories and links.
        """
        check_namespace(namespace)
        return validate(self.config, self.store, namespace, items, self.clock(), field=field)

    def remember(self, namespace: str, content: str | MemoryInput, **fields: Any) -> Memory:
        """Store one memory and build its associations; returns it as stored."""
        item = content if isinstance(content, MemoryInput) else MemoryInput(content, **fields)
        return self.remember_many(namespace, [item])[0]

    def remember_many(self, namespace: str, items: Sequence[MemoryInput]) -> list[Memory]:
        """Store memories atomically: all of them, or (on any bad input) none.

        The write is acknowledged (durable) when this returns. Content already stored
        returns the stored memory and counts as a use (see :class:`MemoryInput`).
        """
        check_namespace(namespace)
        check_batch_size(self.config, len(items))
        now = self.clock()
        repeats: dict[int, Memory] = {}
        prepared = validate(self.config, self.store, namespace, items, now, existing=repeats)
        fresh = [item for i, item in enumerate(prepared) if i not in repeats]
        if fresh:
            self.writer.remember(namespace, fresh)
        new_ids = {memory.id for memory, _ in fresh}
        used = [m for m in repeats.values() if m.id not in new_ids]
        if used:  # remembering stored content again counts as a use of it
            self.access.touch(self.namespaces.get(namespace), [m.id for m in used], now)
        return [repeats.get(i, memory) for i, (memory, _) in enumerate(prepared)]

    def update(
        self,
        namespace: str,
        memory_id: str,
        *,
        content: str | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        kind: str | None = None,
        occurred_at: datetime | str | None = None,
    ) -> Memory:
        """Change a memory; returns its new state.

        New content makes a new version: a new memory (re-embedded, re-associated, in
        the old one's session) that ``SUPERSEDES`` the old one, which stays stored and
        reachable but is no longer valid from the new one's ``occurred_at`` (default:
        now). The fields not given are the old version's. Without new content,
        ``metadata``, ``importance`` and ``kind`` change in place. Raises ``NotFound``
        for an unknown id and ``BadInput`` (nothing changed) for a bad field, or for a
        memory that is itself superseded (update its current version) or archived.
        """
        check_namespace(namespace)
        old = (
            self.store.get(namespace, [memory_id], embeddings=True)
            if isinstance(memory_id, str)
            else []
        )
        if not old:
            raise NotFound(f"id: memory {memory_id!r} does not exist in namespace {namespace!r}")
        current = old[0]
        if current.embedding is None:
            raise BadInput("id", f"memory {memory_id!r} is archived: recall it before updating it")
        newer = self.store.associations(namespace, memory_id, [AssociationType.SUPERSEDES], 100)
        by = sorted({e.source for e in newer if e.target == memory_id})
        if by:
            raise BadInput(
                "id",
                f"memory {memory_id!r} is superseded by {', '.join(map(repr, by))}: "
                "update the current version",
            )
        item = MemoryInput(
            content=current.content if content is None else content,
            kind=current.kind if kind is None else kind,
            session_id=current.session_id,
            occurred_at=occurred_at,
            importance=current.importance if importance is None else importance,
            metadata=dict(current.metadata) if metadata is None else metadata,
            supersedes=[memory_id],
            force_new=True,
        )
        changed, _ = prepare(self.config, namespace, item, "input", self.clock())
        if content is None or normalised(content) == normalised(current.content):
            if occurred_at is not None:
                raise BadInput("input.occurredAt", "only a new version (new content) takes one")
            replaced = replace(
                current,
                kind=changed.kind,
                importance=changed.importance,
                metadata=changed.metadata,
                tier=Tier.SEMANTIC if changed.kind == MemoryKind.CONCEPT else current.tier,
            )
            self.apply_changes(namespace, ChangeBatch(memories=[replaced]))
            return self.store.get(namespace, [memory_id])[0]
        return self.remember_many(namespace, [item])[0]

    def superseded(self, namespace: str, memory_id: str) -> tuple[datetime | None, list[str]]:
        """When ``memory_id`` stopped being valid (the earliest ``occurred_at`` of the
        memories that supersede it; None while valid) and their ids."""
        check_namespace(namespace)
        edges = self.store.associations(namespace, memory_id, [AssociationType.SUPERSEDES], 1000)
        newer = self.store.get(
            namespace, sorted({e.source for e in edges if e.target == memory_id})
        )
        if not newer:
            return None, []
        return min(m.when for m in newer), [m.id for m in newer]

    def associate(
        self,
        namespace: str,
        source: str,
        target: str,
        type: AssociationType | str = AssociationType.RELATED_TO,
        weight: float = 1.0,
    ) -> Association:
        """Create or update an explicit association between two memories."""
        check_namespace(namespace)
        kind, weight = check_association(source, target, type, weight)
        edge = Association(source, target, kind, weight, explicit=True)
        return self.writer.associate(namespace, edge)

    def restore(
        self,
        namespace: str,
        memories: Sequence[Memory],
        entities: dict[str, str],
        associations: Sequence[Association],
    ) -> None:
        """Write memories exactly as given (ids, times, tiers, counts, vectors) with
        their entities (key -> label) and associations, in one atomic store write,
        building no associations of its own: the import side of
        ``hippograph.graph.transfer``. Every memory needs its embedding; ids must be new
        to the namespace."""
        check_namespace(namespace)
        self.writer.restore(
            namespace,
            WriteBatch(memories=list(memories), entities=dict(entities), edges=list(associations)),
        )

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
        check_namespace(namespace)
        return self.writer.apply_changes(namespace, changes, stale)

    def forget(self, namespace: str, memory_id: str) -> bool:
        """Delete a memory and its associations; it never comes back from recall."""
        check_namespace(namespace)
        return self.writer.forget(namespace, memory_id)

    def archive_dir(self, namespace: str) -> Path:
        """Where a namespace's archive files live (created on demand)."""
        check_namespace(namespace)
        return self.namespaces.archive_dir(namespace)

    def indexed(self, namespace: str) -> np.ndarray:
        """Sorted seqs of the memories the namespace's vector index can return."""
        ns = self.namespaces.get(namespace)
        with ns.lock:
            return ns.index.live_ids()

    # -- reads -----------------------------------------------------------------------

    def get(self, namespace: str, memory_id: str) -> Memory | None:
        check_namespace(namespace)
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
        check_namespace(namespace)
        check_neighbors_limit(limit)
        return self.store.associations(namespace, memory_id, types, limit)

    def stats(self, namespace: str) -> dict[str, Any]:
        check_namespace(namespace)
        ns = self.namespaces.get(namespace)
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
        check_namespace(namespace)
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

        Seeds come from the vector index and the in-memory BM25 index, fused;
        activation spreads from them over the association graph; candidates are scored
        from their parts. With ``learn``, the access is recorded and edges among the
        top results are strengthened (Hebbian). A ``timings`` dict receives seconds
        per stage: ``embed``, ``seed``, ``activate``, ``score``, ``fetch``, ``learn``.
        """
        check_namespace(namespace)
        check_query(self.config, query)
        check_recall(self.config, k, tiers, hops)
        context = context or RecallContext()
        check_context(context)
        q = self.recaller.query_vector(query, context, timings)
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
        check_namespace(namespace)
        allowed = check_recall(self.config, k, tiers, hops)
        context = context or RecallContext()
        check_context(context)
        ns = self.namespaces.get(namespace)
        q = np.asarray(vector, dtype=np.float32)
        if tiers is None and self.recaller.has_archived(ns):
            # default recall reaches into the archive, by the rule of graph.archived
            started = time.perf_counter()
            self.archive.consult(
                namespace,
                q,
                k,
                self.recaller.hot_similarities(ns, q, k),
                lexical=self.recaller.archived_lexical(ns, query, k),
            )
            if timings is not None:
                timings["archive"] = time.perf_counter() - started
        return self.recaller.run(
            ns,
            query,
            q,
            k=k,
            allowed=allowed,
            context=context,
            hops=hops,
            learn=learn,
            timings=timings,
        )

    def nearest(self, namespace: str, vector: np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """(memory id, similarity) of the memories most similar to a query vector, by the
        similarity recall uses (whole, sentence and context vectors), best first: no
        lexical match, no graph. The vector-only baseline of ``bench locomo``."""
        check_namespace(namespace)
        ns = self.namespaces.get(namespace)
        return self.recaller.nearest(ns, np.asarray(vector, dtype=np.float32), k)

    def seeds(
        self, namespace: str, query: str, vector: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The seeds recall would spread from: (node indices of the namespace's view,
        energies). For baselines that rank the same graph another way."""
        check_namespace(namespace)
        ns = self.namespaces.get(namespace)
        with ns.lock:
            nodes, energy, _ = self.recaller.seed(ns, query, np.asarray(vector, dtype=np.float32))
        return nodes, energy
