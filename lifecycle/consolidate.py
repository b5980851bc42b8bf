"""Consolidate: communities of the association graph become ``concept`` memories in the
``semantic`` tier, linked ``PART_OF`` from each member.

The graph
    Undirected and weighted over the namespace's memories, without concepts and stubs
    (archived memories whose content left for the archive); the weight of a pair is the
    sum of the weights of every edge between them, both directions and all types but
    ``PART_OF`` (so the concepts this job made never shape the next run's communities).
    Entity nodes are left out: ``MENTIONS`` edges do not join memories directly.

Communities
    Louvain modularity communities (Blondel et al. 2008,
    :func:`networkx.algorithms.community.louvain_communities`) with ``config.resolution``
    and ``config.seed``, the graph built in seq order so that a run is reproducible.
    Those of at least ``min_community`` members become concepts.

A concept, built without a language model
    - ``content``: the top ``max_keywords`` keywords on one line, then the text of the
      most central member: the one with the largest weighted degree inside the community
      (ties: the earliest in seq order).
    - keywords: non-stopword, non-numeric words (:func:`hippograph.graph.text.query_terms`),
      counted once per member and merged by Porter stem (:func:`hippograph.graph.text.analyze`),
      scored by TF-IDF over members: :math:`\\mathrm{df}_C(w)\\,(\\ln\\frac{1+N}{1+\\mathrm{df}(w)}
      + 1)` with :math:`\\mathrm{df}_C` the number of members using the word,
      :math:`\\mathrm{df}` the number of graph memories using it and :math:`N` their
      count; ties alphabetical. A stem shows as its most frequent spelling among the
      members.
    - ``embedding``: the normalised centroid :math:`c / \\lVert c \\rVert`,
      :math:`c = \\frac{1}{|C|}\\sum_{m \\in C} e_m`; no passages, no context vector.
    - ``importance``: the highest of its members (a concept matters as much as the most
      important thing it summarises); ``occurred_at``: its latest member's.
    - ``metadata``: ``{"keywords": [...], "members": n, "central": id}``.
    - id: ``"concept-"`` + the first 16 hex digits of the SHA-1 of the sorted member ids
      (one per line), so re-planning the same state plans the same id.

Re-running updates rather than duplicates
    An existing concept's members are the sources of its ``PART_OF`` edges that are in
    the graph. Each community is matched to the existing concept whose members overlap it
    most, Jaccard :math:`|A \\cap B| / |A \\cup B| \\ge 0.5`, greedily from the highest
    overlap, each concept to at most one community. A matched concept keeps its id,
    ``created_at`` and access record; its content, embedding, importance, ``occurred_at``
    and metadata are rebuilt (written only when they differ), new members get
    ``PART_OF`` edges and departed members (in the graph, not in the community) lose
    theirs; the ``PART_OF`` edges of staying members are not rewritten (their weight is
    decay's). Members outside the graph (stubs) keep their edges. A concept no
    community matches is left alone, edges and all: it still says something true about
    the past, and deleting knowledge is not a clustering decision. An unchanged graph
    therefore plans nothing.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import replace
from typing import Any

import networkx as nx
import numpy as np

from hippograph.graph.model import (
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    Tier,
    content_hash,
    from_epoch,
    to_epoch,
)
from hippograph.graph.text import analyze, query_terms
from hippograph.lifecycle.model import LifecycleConfig, Plan, Snapshot

__all__ = ["MATCH_JACCARD", "association_graph", "concept_id", "keywords", "plan"]

MATCH_JACCARD = 0.5  # a community updates the concept whose members it overlaps this much
_MAX_TERMS = 10_000


def _eligible(memory: Memory) -> bool:
    # Archived memories (stubs, or about to become stubs: tiering runs first) are
    # left out, so concepts summarise the live memory and a run after archiving finds
    # the same communities as the run before it.
    return (
        memory.embedding is not None
        and memory.kind != MemoryKind.CONCEPT
        and memory.tier != Tier.ARCHIVED
    )


def association_graph(snapshot: Snapshot) -> nx.Graph:
    """The undirected weighted memory-to-memory graph communities are found in (see
    the module docstring), nodes and edges inserted in seq order."""
    position = {m.id: i for i, m in enumerate(snapshot.memories) if _eligible(m)}
    weights: dict[tuple[int, int], list[float]] = defaultdict(list)
    for edge in snapshot.associations:
        if edge.type == AssociationType.PART_OF or edge.weight <= 0.0:
            continue
        a, b = position.get(edge.source), position.get(edge.target)
        if a is None or b is None or a == b:
            continue
        weights[(min(a, b), max(a, b))].append(edge.weight)
    ids = [m.id for m in snapshot.memories if _eligible(m)]
    by_position = {i: memory_id for memory_id, i in position.items()}
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    for (a, b), ws in sorted(weights.items()):
        graph.add_edge(by_position[a], by_position[b], weight=math.fsum(sorted(ws)))
    return graph


def concept_id(member_ids: list[str], attempt: int = 0) -> str:
    """Deterministic id of a new concept over these members (``attempt`` > 0 when the
    first choice is taken).

    >>> concept_id(["b", "a"]) == concept_id(["a", "b"])
    True
    >>> concept_id(["a", "b"]).startswith("concept-"), len(concept_id(["a", "b"]))
    (True, 24)
    """
    text = "\n".join(sorted(member_ids)) + (f"\n#{attempt}" if attempt else "")
    return "concept-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _terms(text: str) -> dict[str, str]:
    """Stem -> first spelling of the keyword candidates of ``text``."""
    found: dict[str, str] = {}
    for word in query_terms(text, max_terms=_MAX_TERMS):
        if word.isdigit():
            continue
        stems = analyze(word)
        if len(stems) == 1:
            found.setdefault(stems[0], word)
    return found


def keywords(
    members: list[dict[str, str]], document_frequency: Counter[str], total: int, k: int
) -> list[str]:
    """Top ``k`` keywords of a community by TF-IDF (module docstring). ``members``: each
    member's stem -> spelling; ``document_frequency``: stem -> graph memories using it;
    ``total``: graph memories.

    >>> docs = [{"hike": "hiking"}, {"hike": "hike", "lake": "lake"}, {"hike": "hiking"}]
    >>> keywords(docs, Counter({"hike": 3, "lake": 1}), 10, 2)
    ['hiking', 'lake']
    """
    used: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for terms in members:
        for stem, word in terms.items():
            used[stem] += 1
            spellings[stem][word] += 1

    def score(stem: str) -> float:
        return used[stem] * (math.log((1 + total) / (1 + document_frequency[stem])) + 1.0)

    ranked = sorted(used, key=lambda stem: (-score(stem), stem))[:k]
    return [min(spellings[stem].items(), key=lambda s: (-s[1], s[0]))[0] for stem in ranked]


def _central(members: list[Memory], graph: nx.Graph) -> Memory:
    inside = {m.id for m in members}
    degree = {
        m.id: math.fsum(sorted(d["weight"] for n, d in graph.adj[m.id].items() if n in inside))
        for m in members
    }
    best = max(degree.values())
    return next(m for m in members if degree[m.id] == best)


def _centroid(members: list[Memory]) -> np.ndarray:
    vectors = np.stack([np.asarray(m.embedding, dtype=np.float64) for m in members])
    centroid = vectors.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    if norm == 0.0:  # opposite vectors cancel: fall back to the first member's
        centroid, norm = vectors[0], float(np.linalg.norm(vectors[0])) or 1.0
    return (centroid / norm).astype(np.float32)


def _same(existing: Memory, built: Memory) -> bool:
    """Whether writing ``built`` over ``existing`` would change nothing worth writing."""
    assert built.embedding is not None
    return (
        existing.content == built.content
        and existing.kind == built.kind
        and existing.tier == built.tier
        and existing.importance == built.importance
        and existing.metadata == built.metadata
        and abs(to_epoch(existing.when) - to_epoch(built.when)) < 1e-3
        and existing.embedding is not None
        and existing.embedding.shape == built.embedding.shape
        and bool(np.allclose(existing.embedding, built.embedding, rtol=0.0, atol=1e-6))
        and existing.passages is None
        and existing.context_embedding is None
    )


def plan(snapshot: Snapshot, config: LifecycleConfig, now: float) -> Plan:
    """Turn the communities of ``snapshot``'s association graph into concepts, as of
    ``now`` (epoch seconds: the creation time of new concepts and ``PART_OF`` edges).

    Returns
    -------
    Plan
        ``changes.new_memories``: new concepts; ``changes.memories``: matched concepts
        whose content changed; ``changes.edges``: new ``PART_OF`` edges (weight 1.0);
        ``changes.removed_edges``: ``PART_OF`` edges of departed members. ``counts``:
        ``communities`` (of at least ``min_community`` members), ``created``,
        ``updated`` (matched concepts with any change, edges included).
    """
    if config.min_community < 1:
        raise ValueError("min_community must be at least 1")
    result = Plan("consolidate")
    changes = result.changes
    counts = {"communities": 0, "created": 0, "updated": 0}
    result.counts = counts
    graph = association_graph(snapshot)
    if graph.number_of_nodes() == 0:
        return result
    position = {m.id: i for i, m in enumerate(snapshot.memories)}
    by_id = {m.id: m for m in snapshot.memories}
    found = nx.algorithms.community.louvain_communities(
        graph, weight="weight", resolution=config.resolution, seed=config.seed
    )
    communities = sorted(
        (sorted(c, key=position.__getitem__) for c in found if len(c) >= config.min_community),
        key=lambda c: position[c[0]],
    )
    counts["communities"] = len(communities)
    if not communities:
        return result

    # existing concepts and their members in the graph
    concepts = [m for m in snapshot.memories if m.kind == MemoryKind.CONCEPT]
    concept_ids = {c.id for c in concepts}
    members_of: dict[str, set[str]] = {c.id: set() for c in concepts}
    for edge in snapshot.associations:
        if (
            edge.type == AssociationType.PART_OF
            and edge.target in concept_ids
            and edge.source in graph
        ):
            members_of[edge.target].add(edge.source)
    pairs: list[tuple[float, int, int, str]] = []
    for i, community in enumerate(communities):
        wanted = set(community)
        for j, concept in enumerate(concepts):
            known = members_of[concept.id]
            union = len(wanted | known)
            overlap = len(wanted & known) / union if union else 0.0
            if overlap >= MATCH_JACCARD:
                pairs.append((-overlap, i, j, concept.id))
    matched: dict[int, str] = {}
    taken: set[str] = set()
    for _, i, _, cid in sorted(pairs):
        if i not in matched and cid not in taken:
            matched[i] = cid
            taken.add(cid)

    terms = {memory_id: _terms(by_id[memory_id].content) for memory_id in graph}
    frequency: Counter[str] = Counter(stem for t in terms.values() for stem in t)
    used_ids = set(by_id)
    created_at = from_epoch(now)
    for i, community in enumerate(communities):
        members = [by_id[memory_id] for memory_id in community]
        central = _central(members, graph)
        words = keywords([terms[m.id] for m in members], frequency, len(terms), config.max_keywords)
        content = f"{', '.join(words)}\n{central.content}" if words else central.content
        metadata: dict[str, Any] = {
            "keywords": words,
            "members": len(members),
            "central": central.id,
        }
        fields: dict[str, Any] = {
            "content": content,
            "content_hash": content_hash(content),
            "kind": MemoryKind.CONCEPT,
            "tier": Tier.SEMANTIC,
            "occurred_at": max(m.when for m in members),
            "importance": max(m.importance for m in members),
            "metadata": metadata,
            "embedding": _centroid(members),
            "passages": None,
            "context_embedding": None,
        }
        have: set[str] = set()  # members already linked PART_OF
        if i not in matched:
            attempt = 0
            cid = concept_id(community)
            while cid in used_ids:
                attempt += 1
                cid = concept_id(community, attempt)
            used_ids.add(cid)
            changes.new_memories.append(
                Memory(
                    id=cid,
                    namespace=snapshot.namespace,
                    session_id=None,
                    created_at=created_at,
                    **fields,
                )
            )
            counts["created"] += 1
        else:
            cid = matched[i]
            existing = by_id[cid]
            built = replace(existing, **fields)
            have = members_of[cid]
            changed = not _same(existing, built)
            if changed:
                changes.memories.append(built)
            departed = sorted(have - set(community), key=position.__getitem__)
            changes.removed_edges += [(m, cid, AssociationType.PART_OF) for m in departed]
            if changed or departed or set(community) - have:
                counts["updated"] += 1
        changes.edges += [
            Association(m, cid, AssociationType.PART_OF, 1.0, created_at=created_at)
            for m in community
            if m not in have
        ]
    return result
