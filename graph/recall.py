"""Recall: seed -> spread -> score -> explain -> learn.

1. **Seed** from the nearest vectors (whole memories, and the owners of the nearest
   sentence and context passages, re-ranked by recall's similarity) and the best BM25
   matches of the in-memory lexical index, fused into seed energies.
2. **Spread** activation from the seeds over the association graph
   (:func:`~hippograph.graph.activation.spread_activation`).
3. **Score** the strongest live candidates of the allowed tiers from their parts
   (similarity, activation, recency, importance, context, informativeness;
   :mod:`hippograph.graph.scoring`).
4. **Explain**: every result carries its parts and the path that brought it.
5. **Learn**: the access and Hebbian strengthening are handed to
   :class:`~hippograph.graph.learning.AccessWriter`.

:class:`Recall` reads the namespace's derived state under its lock; the only store call
on the way is one ``recalled`` fetch of the chosen memories and the path's node names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from hippograph.graph.activation import REVERSE, paths_to, spread_activation
from hippograph.graph.entities import extract_entities
from hippograph.graph.inputs import RecallContext
from hippograph.graph.learning import AccessWriter
from hippograph.graph.model import (
    CONTEXT_POSITION,
    ENTITY_PREFIX,
    PASSAGE_BITS,
    AssociationType,
    BadInput,
    Memory,
    Tier,
    from_epoch,
    to_epoch,
)
from hippograph.graph.namespace import Namespace, Namespaces
from hippograph.graph.scoring import PART_NAMES, blend, informativeness, recency_score
from hippograph.graph.validity import superseders, valid_at
from hippograph.graph.view import NamespaceView

__all__ = [
    "WINDOW_SCAN",
    "PathStep",
    "Recall",
    "Recollection",
    "StageClock",
    "first_invalid",
    "ranked_below",
]

TIERS = list(Tier)
ARCHIVED = TIERS.index(Tier.ARCHIVED)
_PART_OF_FROM = AssociationType.PART_OF.code + REVERSE  # a member's edge, in its concept's row
# A hard time window (or asOf) searches its own memories exactly when it holds at most
# this many, so the nearest memories inside the window seed recall even when the nearest
# ones overall lie outside it; a larger window relies on the usual seeds.
WINDOW_SCAN = 50_000


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
    # the memories that supersede this one (graph.validity), by id; empty when valid
    superseded_by: list[str] = field(default_factory=list)
    invalid_at: datetime | None = None  # the earliest of their occurred_at

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
            "superseded_by": list(self.superseded_by),
            "invalid_at": self.invalid_at.isoformat() if self.invalid_at else None,
        }


class StageClock:
    """Seconds since the previous mark, per stage, into an optional dict."""

    def __init__(self, into: dict[str, float] | None) -> None:
        self.into = into
        self.last = time.perf_counter()

    def mark(self, stage: str) -> None:
        if self.into is not None:
            now = time.perf_counter()
            self.into[stage] = now - self.last
            self.last = now


class Recall:
    """The recall pipeline over the namespaces' derived state."""

    def __init__(self, namespaces: Namespaces, access: AccessWriter) -> None:
        self.store = namespaces.store
        self.encoder = namespaces.encoder
        self.config = namespaces.config
        self.namespaces = namespaces
        self.access = access

    def query_vector(
        self, query: str, context: RecallContext, timings: dict[str, float] | None
    ) -> np.ndarray:
        """The query embedded, blended with the context text when there is one."""
        texts = [query] + ([context.text] if context.text else [])
        started = time.perf_counter()
        vectors = self.encoder.encode(texts)
        if timings is not None:
            timings["embed"] = time.perf_counter() - started
        q = vectors[0]
        if context.text:
            q = q + self.config.context_text_weight * vectors[1]
            q = q / max(float(np.linalg.norm(q)), 1e-12)
        return q

    def run(
        self,
        ns: Namespace,
        query: str,
        q: np.ndarray,
        *,
        k: int,
        allowed: set[Tier],
        context: RecallContext,
        hops: int | None,
        learn: bool,
        timings: dict[str, float] | None,
    ) -> list[Recollection]:
        """Recall on checked inputs: ``q`` the query vector, ``allowed`` the tiers."""
        cfg = self.config
        as_of = to_epoch(context.as_of) if context.as_of else None
        at = to_epoch(context.at) if context.at else as_of if as_of is not None else time.time()
        tier_ok = np.array([t in allowed for t in TIERS])
        clock = StageClock(timings)
        with ns.lock:
            view = ns.view
            if view.n_nodes == 0:
                return []
            window = self.window(view, context)
            # 1. seeds: nearest vectors and best BM25 matches, fused
            seed_nodes, seed_energy, cosine = self.seed(ns, query, q)
            if window is not None:
                inside = self.inside(view, window, tier_ok)
                seed_nodes, seed_energy, cosine = self.window_seeds(
                    ns, q, inside, (seed_nodes, seed_energy, cosine)
                )
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
            if window is not None:
                when = view.occurred_at[nodes]
                usable &= (when >= window[0]) & (when <= window[1])
            rows = np.flatnonzero(usable)
            if len(rows) == 0:
                return []
            if len(rows) > cfg.max_candidates:
                top = np.argpartition(-spread.energy[rows], cfg.max_candidates - 1)
                rows = rows[top[: cfg.max_candidates]]
            cand = nodes[rows]
            energy = spread.energy[rows]
            parts = self.score_parts(ns, cand, energy, (seed_nodes, cosine), q, at, context)
            parts["validity"] = valid_at(view, cand, at).astype(np.float64)
            score = ranked_below(view, cand, blend(parts, cfg.weights), parts["validity"])
            order = np.argsort(-score, kind="stable")[:k]
            chosen = cand[order]
            unknown = np.isnan(parts["similarity"][order])
            if unknown.any():
                parts["similarity"][order[unknown]] = np.clip(
                    self.similarity(ns, view.seq[chosen[unknown]], q), 0.0, 1.0
                )
            clock.mark("score")
            # 4. explain: parts and the path that brought each
            steps = paths_to(spread, chosen.tolist())
            sup_slots, sup_nodes = superseders(view, chosen)
            path_nodes = {s[0] for path in steps for s in path} | set(sup_nodes.tolist())
            seqs = view.seq[chosen]
            fetched, names = self.store.recalled(
                ns.name, seqs.tolist(), [int(view.seq[n]) for n in path_nodes]
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
                        superseded_by=[
                            names.get(int(view.seq[s]), str(view.seq[s]))
                            for s in sup_nodes[sup_slots == slot].tolist()
                        ],
                        invalid_at=first_invalid(view, sup_nodes[sup_slots == slot]),
                    )
                )
            clock.mark("fetch")
            # 5. record the access: recency and count, Hebbian strengthening, promotion
            if learn and results:
                self.access.learn(ns, chosen, at)
            clock.mark("learn")
        return results

    def window(self, view: NamespaceView, context: RecallContext) -> tuple[float, float] | None:
        """The hard bounds on when a recalled memory happened: the hard window's, and
        nothing after ``as_of``; None when there are none. Raises ``BadInput`` naming
        ``context.asOf`` for a time before the namespace's first memory."""
        lo, hi = -np.inf, np.inf
        if context.hard_window:
            lo = to_epoch(context.since) if context.since else -np.inf
            hi = to_epoch(context.until) if context.until else np.inf
        if context.as_of is not None:
            as_of = to_epoch(context.as_of)
            memories = view.is_memory & view.alive
            first = float(view.occurred_at[memories].min()) if memories.any() else np.inf
            if as_of < first:
                start = (
                    "has no memories"
                    if first == np.inf
                    else (f"begins at {from_epoch(first).isoformat()}")
                )
                raise BadInput(
                    "context.asOf",
                    f"{context.as_of.isoformat()} is before the namespace existed (it {start})",
                )
            hi = min(hi, as_of)
        return None if lo == -np.inf and hi == np.inf else (lo, hi)

    def inside(
        self, view: NamespaceView, window: tuple[float, float], tier_ok: np.ndarray
    ) -> np.ndarray:
        """Nodes of the live memories of the allowed tiers that happened in ``window``."""
        when = view.occurred_at
        mask = view.is_memory & view.alive & (when >= window[0]) & (when <= window[1])
        nodes = np.flatnonzero(mask)
        return nodes[tier_ok[view.tier[nodes]]]

    def window_seeds(
        self,
        ns: Namespace,
        q: np.ndarray,
        inside: np.ndarray,
        seeds: tuple[np.ndarray, np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The seeds with the ``dense_seeds`` memories inside a hard window nearest to
        the query added (an exact scan of the window, when it holds at most
        :data:`WINDOW_SCAN` memories)."""
        nodes, energy, cosine = seeds
        if len(inside) == 0 or len(inside) > WINDOW_SCAN:
            return seeds
        sims = np.clip(self.similarity(ns, ns.view.seq[inside], q), 0.0, 1.0)
        top = np.argsort(-sims, kind="stable")[: self.config.dense_seeds]
        extra, extra_cos = inside[top], sims[top]
        merged = np.union1d(nodes, extra)
        merged_energy = np.zeros(len(merged))
        merged_cos = np.zeros(len(merged))
        at = np.searchsorted(merged, nodes)
        merged_energy[at], merged_cos[at] = energy, cosine
        at = np.searchsorted(merged, extra)
        scale = max(float(cosine.max()) if len(cosine) else 0.0, float(extra_cos.max()), 1e-12)
        merged_energy[at] = np.maximum(merged_energy[at], extra_cos / scale)
        merged_cos[at] = extra_cos
        keep = merged_energy > 0
        return merged[keep], merged_energy[keep], merged_cos[keep]

    def seed(
        self, ns: Namespace, query: str, q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Seed nodes (sorted), their energy (max 1) and their similarity. Every seed
        gets both signals: its similarity (:meth:`similarity`) and its BM25 (0 when not
        a lexical match). The caller holds the namespace's lock."""
        cfg = self.config
        view = ns.view
        empty = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        dense_seqs, dense_sims = self.nearest_seqs(ns, q, cfg.dense_seeds, cfg.passage_seeds)
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
            cosine[unknown] = self.similarity(ns, view.seq[seed_nodes[unknown]], q)
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

    def nearest_seqs(
        self, ns: Namespace, q: np.ndarray, k: int, passage_k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` memories (seqs, similarity) nearest to ``q``: among the ``k``
        nearest by whole vector and the owners of the ``passage_k`` nearest passages,
        re-ranked by :meth:`similarity`. The caller holds the namespace's lock."""
        seqs, sims = ns.index.search(q, k)
        if not (self.uses_passages(ns) and self.config.passage_seeds):
            return seqs, sims
        passages, _ = ns.passages.search(q, passage_k)
        pool = np.union1d(seqs, passages >> PASSAGE_BITS)
        similarity = self.similarity(ns, pool, q)
        top = np.argsort(-similarity, kind="stable")[:k]
        return pool[top], similarity[top]

    def has_archived(self, ns: Namespace) -> bool:
        """Whether the namespace holds archived memories (stubs among them)."""
        with ns.lock:
            view = ns.view
            return bool(np.any((view.tier == ARCHIVED) & view.alive & view.is_memory))

    def hot_similarities(self, ns: Namespace, q: np.ndarray, k: int) -> list[float]:
        """Recall's similarity of the ``k`` hot memories nearest to ``q``, best first."""
        with ns.lock:
            _, sims = self.nearest_seqs(ns, q, k, max(k, self.config.passage_seeds))
        return [float(s) for s in sims[:k]]

    def archived_lexical(self, ns: Namespace, query: str, k: int) -> list[int]:
        """Seqs of the archived stubs among the ``k`` best BM25 matches of ``query`` (a
        stub keeps its caption in the lexical index, so a rare word still finds it)."""
        with ns.lock:
            view = ns.view
            nodes, _ = view.lexical.search(query, k)
            if not len(nodes):
                return []
            archived = (view.tier[nodes] == ARCHIVED) & view.alive[nodes] & view.is_memory[nodes]
            seqs = view.seq[nodes[archived]]
            return [int(s) for s in seqs[~ns.index.has(seqs)]]

    def uses_passages(self, ns: Namespace) -> bool:
        cfg = self.config
        weighted = cfg.passage_weight or cfg.context_weight
        return bool(cfg.passages and weighted and ns.passages.live_count)

    def similarity(self, ns: Namespace, seqs: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Similarity of live memories to the query vector: the cosine of the whole
        vector, plus ``passage_weight`` times what the best passage adds to it."""
        whole = np.zeros(len(seqs), np.float64)
        present = ns.index.has(seqs)  # archived stubs are nodes without vectors
        if present.all():
            whole = (ns.index.reconstruct(seqs) @ q).astype(np.float64)
        elif present.any():
            whole[present] = ns.index.reconstruct(seqs[present]) @ q
        if not self.uses_passages(ns):
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

    def nearest(self, ns: Namespace, q: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(memory id, similarity) of the ``k`` memories most similar to ``q`` by recall's
        similarity, best first: no lexical match, no graph."""
        with ns.lock:
            seqs, sims = self.nearest_seqs(ns, q, k, max(k, self.config.passage_seeds))
        names = self.store.node_ids(ns.name, seqs.tolist())
        return [
            (names[s], float(x)) for s, x in zip(seqs.tolist(), sims, strict=True) if s in names
        ]

    def score_parts(
        self,
        ns: Namespace,
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
                self.similarity(ns, view.seq[cand[~is_seed]], q), 0.0, 1.0
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


def ranked_below(
    view: NamespaceView, cand: np.ndarray, score: np.ndarray, validity: np.ndarray
) -> np.ndarray:
    """Scores with two orders imposed among the candidates, each candidate placed just
    below the lowest-scoring candidate it must follow:

    - a superseded memory (``validity`` 0) follows the candidates that supersede it: the
      valid version always ranks above the stale one it replaced (down a chain too);
    - a concept follows the candidates that are ``PART_OF`` it: a summary ranks below
      the specific memories it summarises that recall found (its centroid vector and its
      many members make it look relevant to every question about its topic, and it
      would crowd out the memory that answers).
    """
    pairs: list[tuple[int, int]] = []
    position = {int(node): i for i, node in enumerate(cand.tolist())}
    slots, found = superseders(view, cand)
    for slot, node in zip(slots.tolist(), found.tolist(), strict=True):
        if node in position and not validity[slot]:
            pairs.append((slot, position[node]))
    slots, found = view.typed_neighbours(cand, _PART_OF_FROM)
    for slot, node in zip(slots.tolist(), found.tolist(), strict=True):
        if node in position and node != int(cand[slot]):
            pairs.append((slot, position[node]))
    if not pairs:
        return score
    score = score.copy()
    for _ in range(len(pairs)):  # a chain of n settles in at most n passes
        moved = False
        for later, earlier in pairs:
            if score[later] >= score[earlier]:
                score[later] = score[earlier] - 1e-6
                moved = True
        if not moved:
            break
    return score


def first_invalid(view: NamespaceView, superseding: np.ndarray) -> datetime | None:
    """The earliest ``occurred_at`` among the memories superseding one (None: none)."""
    if len(superseding) == 0:
        return None
    return from_epoch(float(view.occurred_at[superseding].min()))
