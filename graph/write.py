"""The write path: group commit, embedding, and applying writes to the derived state.

A ``remember_many`` call is checked (:mod:`hippograph.graph.inputs`), embedded outside
any lock (memories, their sentence passages and their context passages in one encoder
call), then queued on its namespace. Whoever holds the namespace's write lock commits
the queue: as many calls as fit in one batch, associated (:mod:`hippograph.graph.associate`)
and written in one store transaction (one fsync), then applied to the view and the vector
indexes in memory. When the store refuses a group, each call is committed alone, so one
call's error is its own. Explicit associations, imports (``restore``), lifecycle changes
and forgetting take the same lock and the same apply step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from hippograph.graph.associate import associate_on_write
from hippograph.graph.model import (
    ENTITY_PREFIX,
    MAX_PASSAGES,
    Association,
    AssociationType,
    BadInput,
    Link,
    Memory,
    MemoryKind,
    NotFound,
    StaleChanges,
    StoreUnavailable,
    Tier,
    passage_ids,
    to_epoch,
)
from hippograph.graph.namespace import Namespace, Namespaces, Pending
from hippograph.graph.store import ChangeBatch, WriteBatch, WriteResult
from hippograph.graph.supersession import supersedes
from hippograph.graph.text import passages as split_passages
from hippograph.graph.validity import reaches
from hippograph.graph.view import NamespaceView

__all__ = ["Writer"]

TIERS = list(Tier)


class Writer:
    """Every write of the engine, one namespace lock at a time."""

    def __init__(self, namespaces: Namespaces, flush: Callable[[Namespace], None]) -> None:
        self.store = namespaces.store
        self.encoder = namespaces.encoder
        self.config = namespaces.config
        self.namespaces = namespaces
        self.flush = flush  # writes back pending recall side effects (write lock held)

    # -- remember --------------------------------------------------------------------

    def remember(self, namespace: str, prepared: list[tuple[Memory, list[Link]]]) -> None:
        """Store checked memories atomically; durable when this returns."""
        memories = [memory for memory, _ in prepared]
        ns = self.namespaces.get(namespace)
        # Embedding (the slow part) runs outside the write lock; the context passages
        # read the memory before each in its session, so a concurrent write to the same
        # session that lands first means re-embedding those (at commit).
        contexts = self.contexts(ns, memories, self.session_heads(ns, memories))
        pending = Pending(prepared, self.embed(memories, contexts), contexts)
        with ns.queue_lock:
            ns.queue.append(pending)
        with ns.write_lock:
            while not pending.done:  # committed by an earlier holder, or now by us
                self.commit_queued(ns)
        if pending.error is not None:
            raise pending.error

    def commit_queued(self, ns: Namespace) -> None:
        """Commit the calls waiting in the namespace's queue, oldest first, as many as
        fit in one batch (``max_batch`` memories), in one store transaction. When that
        fails, each is committed alone, so one call's error (a duplicate id, a link
        target forgotten meanwhile) is its own. The caller holds the write lock."""
        with ns.queue_lock:
            group: list[Pending] = []
            size = 0
            while ns.queue and (
                not group or size + len(ns.queue[0].prepared) <= self.config.max_batch
            ):
                group.append(ns.queue.pop(0))
                size += len(group[-1].prepared)
        try:
            try:
                if len(group) > 1 and self.commit(ns, group):
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
                    self.commit(ns, [pending], alone=True)
                except Exception as exc:  # the store refused it: nothing of it written
                    pending.error = exc
                pending.done = True
        finally:
            for pending in group:
                if not pending.done:  # the commit itself failed past the store's write
                    pending.error = RuntimeError("the write was interrupted; see the log")
                    pending.done = True

    def commit(self, ns: Namespace, group: list[Pending], *, alone: bool = False) -> bool:
        """Write ``group`` in one transaction and bring the derived state along; marks
        them done. False (nothing written) when the store refuses the batch, unless
        ``alone``, when its error is raised."""
        prepared = [item for pending in group for item in pending.prepared]
        memories = [memory for memory, _ in prepared]
        embedded = [text for pending in group for text in pending.contexts]
        heads = self.session_heads(ns, memories)
        now = self.contexts(ns, memories, heads)
        if now != embedded:  # the session moved on since the embedding
            changed = [i for i, (a, b) in enumerate(zip(now, embedded, strict=True)) if a != b]
            self.embed_contexts([memories[i] for i in changed], [now[i] for i in changed])
            offset = 0
            for pending in group:
                pending.contexts = now[offset : offset + len(pending.prepared)]
                offset += len(pending.prepared)
        vectors = np.concatenate([pending.vectors for pending in group])
        with ns.lock:
            stored = self.stored_neighbours(ns, vectors)
            batch = associate_on_write(self.config, prepared, vectors, stored, heads)
        batch.edges += self.supersessions(ns, prepared, vectors, stored)
        try:
            result = self.store.write(ns.name, batch)
        except StoreUnavailable:
            raise  # not this group's fault: alone, each would fail the same way
        except Exception:
            if alone:
                raise
            return False
        self.apply(ns, result.generation, lambda: self.apply_remember(ns, batch, result))
        for pending in group:
            pending.done = True
        return True

    def stored_neighbours(
        self, ns: Namespace, vectors: np.ndarray
    ) -> list[list[tuple[str, float]]]:
        """(id, similarity) of the ``similar_k`` stored memories nearest to each vector:
        one batched index search. The caller holds the namespace's lock."""
        if not ns.index.live_count:
            return [[] for _ in range(len(vectors))]
        ids, sims = ns.index.search(vectors, self.config.similar_k)
        ids = ids.reshape(len(vectors), -1)
        sims = sims.reshape(len(vectors), -1)
        wanted = sorted({int(q) for q in ids.ravel().tolist() if q >= 0})
        names = self.store.node_ids(ns.name, wanted) if wanted else {}
        return [
            [
                (names[q], float(sim))
                for q, sim in zip(row_ids, row_sims, strict=True)
                if q >= 0 and q in names
            ]
            for row_ids, row_sims in zip(ids.tolist(), sims.tolist(), strict=True)
        ]

    def supersessions(
        self,
        ns: Namespace,
        prepared: list[tuple[Memory, list[Link]]],
        vectors: np.ndarray,
        stored: list[list[tuple[str, float]]],
    ) -> list[Association]:
        """``SUPERSEDES`` associations from each new memory to the stored (or earlier
        in the batch) memories it restates with a changed value: candidates at
        ``supersede_similarity`` or above that happened no later than it, decided by the
        rule of :func:`hippograph.graph.supersession.supersedes`. Pairs the caller
        linked already are left to the caller's link."""
        threshold = self.config.supersede_similarity
        if threshold <= 0:
            return []
        memories = [memory for memory, _ in prepared]
        wanted = sorted({i for row in stored for i, sim in row if sim >= threshold})
        known = {m.id: m for m in self.store.get(ns.name, wanted)} if wanted else {}
        within = vectors @ vectors.T
        edges: list[Association] = []
        for i, (new, links) in enumerate(prepared):
            given = {link.target for link in links if link.type == AssociationType.SUPERSEDES}
            olds = [known[o] for o, sim in stored[i] if sim >= threshold and o in known]
            olds += [memories[j] for j in range(i) if within[i, j] >= threshold]
            for old in olds:
                if old.id in given or old.id == new.id or old.when > new.when:
                    continue
                if old.tier == Tier.ARCHIVED or old.kind == MemoryKind.CONCEPT:
                    continue
                found = supersedes(
                    old.content, new.content, old_kind=old.kind.value, new_kind=new.kind.value
                )
                if found is not None:
                    edges.append(Association(new.id, old.id, AssociationType.SUPERSEDES, 1.0))
        return edges

    def session_heads(self, ns: Namespace, memories: list[Memory]) -> dict[str, str]:
        """The stored memory each session of the batch continues from (its last)."""
        heads: dict[str, str] = {}
        for session in {m.session_id for m in memories if m.session_id is not None}:
            cached = ns.last_in_session.get(session) or self.store.last_in_session(ns.name, session)
            if cached is not None:
                heads[session] = cached[0]
        return heads

    def contexts(
        self, ns: Namespace, memories: list[Memory], heads: dict[str, str]
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

    def embed(self, memories: list[Memory], contexts: list[str | None]) -> np.ndarray:
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

    def embed_contexts(self, memories: list[Memory], contexts: list[str | None]) -> None:
        """Embed the context passages again (their predecessors changed)."""
        wanted = [(m, c) for m, c in zip(memories, contexts, strict=True) if c is not None]
        for memory in memories:
            memory.context_embedding = None
        if wanted:
            encoded = self.encoder.encode([c for _, c in wanted])
            for (memory, _), vector in zip(wanted, encoded, strict=True):
                memory.context_embedding = vector

    # -- applying committed writes ---------------------------------------------------

    def apply(self, ns: Namespace, generation: int, change: Callable[[], None]) -> None:
        """Apply a committed write to the in-memory structures and advance the
        generation, under the read lock (held only for the in-memory work)."""
        with ns.lock:
            change()
            self.namespaces.advance(ns, generation)

    def apply_remember(self, ns: Namespace, batch: WriteBatch, result: WriteResult) -> None:
        """New nodes and edges into the view, new vectors into the indexes."""
        by_id = {m.id: m for m in batch.memories}
        created = sorted(result.new_nodes, key=lambda i: result.seqs[i])
        nodes = [by_id.get(i) for i in created]
        ns.view.add_nodes(
            np.array([result.seqs[i] for i in created], np.int64),
            is_memory=np.array([m is not None for m in nodes]),
            occurred_at=np.array([to_epoch(m.when) if m else np.nan for m in nodes]),
            importance=np.array([m.importance if m else 0.0 for m in nodes], np.float32),
            tier=np.array([TIERS.index(m.tier) if m else -1 for m in nodes], np.int8),
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

    # -- other writes ----------------------------------------------------------------

    def associate(self, namespace: str, edge: Association) -> Association:
        """Create or update a checked explicit association between two stored memories."""
        ns = self.namespaces.get(namespace)
        with ns.write_lock:
            found = self.store.seqs_of(namespace, [edge.source, edge.target])
            for name, node in (("source", edge.source), ("target", edge.target)):
                if node not in found or node.startswith(ENTITY_PREFIX):
                    raise NotFound(f"{name}: memory {node!r} does not exist in {namespace!r}")
            if edge.type == AssociationType.SUPERSEDES:
                with ns.lock:
                    source, target = ns.view.index_of([found[edge.source], found[edge.target]])
                    cycle = (
                        source >= 0 and target >= 0 and reaches(ns.view, int(target), int(source))
                    )
                if cycle:
                    raise BadInput(
                        "target",
                        f"{edge.target!r} already supersedes {edge.source!r} (directly or down "
                        "a chain): this would make a cycle of supersession",
                    )
            result = self.store.write(namespace, WriteBatch(edges=[edge]))
            self.apply(ns, result.generation, lambda: ns.view.add_edges(result.edges))
        edge.weight = result.edges[0][3] if result.edges else edge.weight
        return edge

    def restore(self, namespace: str, batch: WriteBatch) -> None:
        """Write memories exactly as given, with their entities and associations, in one
        atomic store write (see ``MemoryGraph.restore``)."""
        memories = batch.memories
        if not memories and not batch.edges:
            return
        for i, memory in enumerate(memories):
            if memory.embedding is None or len(memory.embedding) != self.encoder.dim:
                raise BadInput(f"memories[{i}].embedding", f"must have {self.encoder.dim} values")
            memory.namespace = namespace
        ns = self.namespaces.get(namespace)
        with ns.write_lock:
            result = self.store.write(namespace, batch)
            if memories:
                self.apply(ns, result.generation, lambda: self.apply_remember(ns, batch, result))
            else:
                self.apply(ns, result.generation, lambda: ns.view.add_edges(result.edges))

    def apply_changes(
        self, namespace: str, changes: ChangeBatch, stale: Callable[[], int] | None
    ) -> int:
        """Lifecycle changes, atomically, with the derived state brought along (see
        ``MemoryGraph.apply_changes``); the new generation."""
        # Passages refine a memory's own vector; without it they would be orphans.
        changes.memories = [
            m if m.embedding is not None else replace(m, passages=None, context_embedding=None)
            for m in changes.memories
        ]
        ns = self.namespaces.get(namespace)
        with ns.write_lock:
            self.flush(ns)  # pending accesses are keyed by seqs that may move
            if stale is not None and (count := stale()):
                raise StaleChanges(count)
            generation = self.store.apply_changes(namespace, changes)
            view = NamespaceView.from_store(
                self.store, namespace, delta_limit=self.config.delta_limit
            )
            with ns.lock:
                ns.view = view
                self.namespaces.catch_up(namespace, ns.index, view)
                self.namespaces.catch_up(namespace, ns.passages, view, passages=True)
                ns.last_in_session.clear()
                ns.index_dirty = True
                self.namespaces.advance(ns, generation)
        return generation

    def forget(self, namespace: str, memory_id: str) -> bool:
        """Delete a memory and its associations; False when there was none."""
        ns = self.namespaces.get(namespace)
        with ns.write_lock:
            forgotten = self.store.forget(namespace, memory_id)
            if forgotten is None:
                return False
            seq, generation = forgotten
            self.apply(ns, generation, lambda: self.apply_forget(ns, seq))
        return True

    def apply_forget(self, ns: Namespace, seq: int) -> None:
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
