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

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.embeddings import TextEncoder
from hippograph.graph.config import GraphConfig
from hippograph.graph.inputs import (
    MemoryInput,
    RecallContext,
    check_association,
    check_batch_size,
    check_namespace,
    check_neighbors_limit,
    check_query,
    check_recall,
    prepare,
    validate,
)
from hippograph.graph.learning import AccessWriter
from hippograph.graph.model import Association, AssociationType, Link, Memory, Tier
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
        self.namespaces = Namespaces(self.data_dir, self.store, encoder, self.config)
        # Recall side effects (access counts, Hebbian weights) are written back by a
        # background thread, so no recall waits for a store commit (an fsync).
        self.access = AccessWriter(self.namespaces)
        self.writer = Writer(self.namespaces, flush=self.access.flush)
        self.recaller = Recall(self.namespaces, self.access)
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
        prepare(self.config, namespace, item, field, datetime.now(UTC))

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
        return validate(self.config, self.store, namespace, items, datetime.now(UTC), field=field)

    def remember(self, namespace: str, content: str | MemoryInput, **fields: Any) -> Memory:
        """Store one memory and build its associations; returns it as stored."""
        item = content if isinstance(content, MemoryInput) else MemoryInput(content, **fields)
        return self.remember_many(namespace, [item])[0]

    def remember_many(self, namespace: str, items: Sequence[MemoryInput]) -> list[Memory]:
        """Store memories atomically: all of them, or (on any bad input) none.

        The write is acknowledged (durable) when this returns.
        """
        check_namespace(namespace)
        check_batch_size(self.config, len(items))
        prepared = validate(self.config, self.store, namespace, items, datetime.now(UTC))
        self.writer.remember(namespace, prepared)
        return [memory for memory, _ in prepared]

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
        allowed = check_recall(self.config, k, tiers, hops)
        context = context or RecallContext()
        q = self.recaller.query_vector(query, context, timings)
        ns = self.namespaces.get(namespace)
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
        ns = self.namespaces.get(namespace)
        return self.recaller.run(
            ns,
            query,
            np.asarray(vector, dtype=np.float32),
            k=k,
            allowed=allowed,
            context=context or RecallContext(),
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
