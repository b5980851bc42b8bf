"""Spreading activation over compact adjacency arrays.

Pure functions: nothing here knows about stores, ids or time. The graph comes as one or
more CSR *layers* over the same node numbering (a large compacted base plus a small
layer of edges written since, see :mod:`hippograph.graph.view`), each edge carrying a weight and a
small-integer type.

The model is Collins & Loftus' spreading activation [1]_ made bounded, so that one
recall touches the frontier, never the whole graph:

* Seeds start with energy :math:`e_s`.
* At each hop, every frontier node :math:`i` sends to each neighbour :math:`j`

  .. math:: \\Delta_{ij} = e_i \\, w_{ij} \\, m_{t(ij)} \\, \\delta
            / (\\deg(i)^{\\phi} \\deg(j)^{\\psi})

  where :math:`w` is the edge weight, :math:`m_t` the multiplier of the edge type,
  :math:`\\delta` the per-hop decay, :math:`\\deg(i)^{\\phi}` the fan-out
  normalisation (an entity mentioned by thousands of memories spreads little, the way
  IDF damps common words) and :math:`\\deg(j)^{\\psi}` the fan-in normalisation (a
  node linked to everything does not soak up energy from all sides; with
  :math:`\\phi = \\psi = 1/2` this is the symmetric normalisation
  :math:`D^{-1/2} A D^{-1/2}` of spectral graph methods).
* Contributions below ``threshold`` are dropped; a node's activation is the sum of what
  it receives over all hops plus its seed energy; only the ``max_frontier`` strongest
  receivers of a hop spread on at the next hop.

Every reached node remembers the frontier node that gave it the most on the hop it was
first reached, so each answer can say which path brought it (a BFS tree: no cycles).

References
----------
.. [1] Collins, A. M. & Loftus, E. F. (1975). A spreading-activation theory of semantic
   processing. Psychological Review, 82(6), 407-428.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import networkx as nx
import numpy as np
import scipy.sparse as sp

from hippograph.graph.model import AssociationType

__all__ = [
    "CSR",
    "REVERSE",
    "Activation",
    "ActivationParams",
    "Workspace",
    "csr_from_edges",
    "frontier_edges",
    "path_to",
    "paths_to",
    "spread_activation",
    "spread_activation_networkx",
]


# A directed association is stored twice so activation can flow both ways: as
# ``type`` in its source's row and as ``type + REVERSE`` in its target's row. The offset
# keeps a -> b and b -> a (two associations) apart; activation treats both alike.
REVERSE = len(AssociationType)


@dataclass(slots=True)
class CSR:
    """Adjacency of ``n`` nodes: row ``i``'s edges are ``indptr[i]:indptr[i+1]``.

    ``weights`` may be updated in place (Hebbian strengthening, decay); a weight of 0
    is an edge that no longer carries anything.
    """

    indptr: np.ndarray  # int64, n + 1
    indices: np.ndarray  # int32 neighbour
    weights: np.ndarray  # float32
    types: np.ndarray  # int8: edge type, plus REVERSE for the entry stored against it

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        return len(self.indices)

    def degree(self, n: int | None = None) -> np.ndarray:
        """Out-degree per node, padded with zeros to ``n`` nodes."""
        deg = np.diff(self.indptr)
        if n is not None and n > len(deg):
            deg = np.concatenate([deg, np.zeros(n - len(deg), deg.dtype)])
        return deg

    def to_scipy(self) -> sp.csr_array:
        """The weights as a ``scipy.sparse.csr_array`` (duplicate pairs summed by users)."""
        n = self.n_nodes
        return sp.csr_array((self.weights, self.indices, self.indptr), shape=(n, n))

    @classmethod
    def empty(cls, n: int = 0) -> CSR:
        return cls(
            indptr=np.zeros(n + 1, np.int64),
            indices=np.zeros(0, np.int32),
            weights=np.zeros(0, np.float32),
            types=np.zeros(0, np.int8),
        )


def csr_from_edges(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray,
    types: np.ndarray,
    *,
    symmetric: bool = True,
) -> CSR:
    """Build a :class:`CSR` of ``n`` nodes from edge arrays.

    With ``symmetric`` (the default) each edge is stored in both directions, the
    reverse entry typed ``type + REVERSE``: activation flows against an association's
    direction too (a memory reaches the entity it mentions, and the entity reaches every
    memory mentioning it).

    Examples
    --------
    >>> g = csr_from_edges(3, np.array([0, 1]), np.array([1, 2]),
    ...                    np.array([0.5, 1.0]), np.array([0, 0]))
    >>> g.indptr.tolist(), g.indices.tolist(), g.types.tolist()
    ([0, 1, 3, 4], [1, 2, 0, 1], [0, 0, 9, 9])
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if symmetric:
        src, dst = np.concatenate([src, dst]), np.concatenate([dst, src])
        weights = np.concatenate([weights, weights])
        types = np.concatenate([types, np.asarray(types) + REVERSE])
    if len(src) and (src.max() >= n or dst.max() >= n or min(src.min(), dst.min()) < 0):
        raise ValueError(f"edge endpoints must lie in [0, {n})")
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return CSR(
        indptr=indptr,
        indices=dst[order].astype(np.int32),
        weights=np.asarray(weights, dtype=np.float32)[order],
        types=np.asarray(types, dtype=np.int8)[order],
    )


@dataclass(frozen=True, slots=True)
class ActivationParams:
    """Bounds and gains of one spread. ``type_multipliers[t]`` scales edges of type t
    (``AssociationType.code`` order: SIMILAR_TO, FOLLOWS, MENTIONS, PART_OF,
    DERIVED_FROM, CAUSES, CONTRADICTS, RELATED_TO, SUPERSEDES).

    The defaults were measured on LoCoMo (see ``hippograph bench locomo``): no per-hop
    decay because the symmetric degree normalisation already attenuates, SIMILAR_TO
    damped (the seeds already come from vector similarity, and near-duplicate chit-chat
    forms dense clusters that soak up energy), MENTIONS boosted (entity bridges are the
    associations vector search cannot see).
    """

    hops: int = 2
    decay: float = 1.0
    fanout_exponent: float = 0.5
    fanin_exponent: float = 0.5
    threshold: float = 1e-3
    max_frontier: int = 64
    type_multipliers: tuple[float, ...] = (0.2, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)


@dataclass(slots=True)
class Workspace:
    """Reusable per-node scratch for :func:`spread_activation` (not thread-safe)."""

    reached: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def arrays(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.reached) < n:
            self.reached = np.zeros(max(n, 2 * len(self.reached)), bool)
            self.total = np.zeros(len(self.reached))
        return self.reached, self.total


@dataclass(slots=True)
class Activation:
    """Result of a spread: one row per reached node (seeds first)."""

    nodes: np.ndarray  # int64 node index
    energy: np.ndarray  # float64 total activation
    parent: np.ndarray  # int64 node that first brought it, -1 for seeds
    via_type: np.ndarray  # int8 edge type from parent, -1 for seeds
    via_weight: np.ndarray  # float32 edge weight from parent, nan for seeds
    hop: np.ndarray  # int16, 0 for seeds

    def as_dict(self) -> dict[int, float]:
        return dict(zip(self.nodes.tolist(), self.energy.tolist(), strict=True))


def frontier_edges(layer: CSR, frontier: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge positions of the frontier's rows in one layer, and each edge's frontier slot."""
    inside = frontier < layer.n_nodes
    slots = np.flatnonzero(inside)
    rows = frontier[inside]
    starts = layer.indptr[rows]
    counts = layer.indptr[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # positions = starts[k] + 0..counts[k]-1 for every row k, without a Python loop
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
    positions = offsets + np.arange(total)
    return positions, np.repeat(slots, counts)


def spread_activation(
    layers: Sequence[CSR],
    seeds: np.ndarray,
    energy: np.ndarray,
    params: ActivationParams,
    *,
    degree: np.ndarray | None = None,
    alive: np.ndarray | None = None,
    workspace: Workspace | None = None,
) -> Activation:
    """Spread activation from ``seeds`` over ``layers`` for ``params.hops`` hops.

    Parameters
    ----------
    layers:
        CSR adjacencies over the same node numbering; a node's neighbours are the union
        of its rows in every layer (a layer may cover fewer nodes than another).
    seeds, energy:
        Seed node indices and their starting energy (same length; duplicates summed).
    params:
        Hops, per-hop decay, fan-out exponent, threshold, frontier size, type gains.
    degree:
        Degree used for fan-out normalisation; defaults to the sum of the layers' row
        lengths. Pass it when it is kept up to date elsewhere.
    alive:
        Boolean mask; dead nodes (forgotten memories) neither receive nor pass energy.
    workspace:
        Per-node scratch arrays to reuse between calls (left clean on return); without
        one, fresh arrays are allocated, which on millions of nodes costs page faults.

    Returns
    -------
    Activation
        Every node that holds energy, with the edge that first brought it there.

    Examples
    --------
    A path 0 - 1 - 2 with unit weights, decay 0.5, no degree normalisation:

    >>> g = csr_from_edges(3, np.array([0, 1]), np.array([1, 2]),
    ...                    np.ones(2), np.zeros(2))
    >>> p = ActivationParams(hops=2, decay=0.5, fanout_exponent=0.0, fanin_exponent=0.0,
    ...                      threshold=0.0, type_multipliers=(1.0,) * 9)
    >>> a = spread_activation([g], np.array([0]), np.array([1.0]), p)
    >>> a.as_dict()
    {0: 1.25, 1: 0.5, 2: 0.25}

    Node 0 gets 0.25 back from node 1 on the second hop; node 2 is two hops away.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    energy = np.asarray(energy, dtype=np.float64)
    if seeds.shape != energy.shape or seeds.ndim != 1:
        raise ValueError("seeds and energy must be 1-D arrays of the same length")
    if params.hops < 0 or params.max_frontier < 1:
        raise ValueError("hops must be >= 0 and max_frontier >= 1")
    if len(params.type_multipliers) != REVERSE:
        raise ValueError(f"type_multipliers needs one gain per type ({REVERSE})")
    multipliers = _gains(params.type_multipliers)
    if degree is None:
        n = max((layer.n_nodes for layer in layers), default=0)
        degree = np.zeros(n, np.int64)
        for layer in layers:
            degree[: layer.n_nodes] += np.diff(layer.indptr)
    if alive is not None and len(seeds):
        keep = alive[seeds]
        seeds, energy = seeds[keep], energy[keep]
    order = np.argsort(seeds, kind="stable")
    seeds, energy = seeds[order], energy[order]
    if len(seeds) > 1 and not (seeds[1:] != seeds[:-1]).all():
        seeds, inverse = np.unique(seeds, return_inverse=True)
        energy = np.bincount(inverse, weights=energy, minlength=len(seeds))

    # Dense per-node scratch: which nodes were reached, and their total energy.
    if workspace is None:
        workspace = Workspace()
    reached, total = workspace.arrays(len(degree))
    reached[seeds] = True
    total[seeds] = energy

    # Per hop: who received how much, and for nodes reached the first time, from where.
    new_nodes = [seeds]
    new_parent = [np.full(len(seeds), -1, np.int64)]
    new_type = [np.full(len(seeds), -1, np.int8)]
    new_weight = [np.full(len(seeds), np.nan, np.float32)]
    new_hop = [np.zeros(len(seeds), np.int16)]
    frontier, push = seeds, energy
    for hop in range(1, params.hops + 1):
        if len(frontier) == 0:
            break
        if len(layers) == 1:
            positions, slot = frontier_edges(layers[0], frontier)
            targets = layers[0].indices[positions]
            weight = layers[0].weights[positions]
            etype = layers[0].types[positions]
        else:
            gathered = [(layer, *frontier_edges(layer, frontier)) for layer in layers]
            targets = np.concatenate([layer.indices[pos] for layer, pos, _ in gathered])
            slot = np.concatenate([s for _, _, s in gathered])
            weight = np.concatenate([layer.weights[pos] for layer, pos, _ in gathered])
            etype = np.concatenate([layer.types[pos] for layer, pos, _ in gathered])
        if len(targets) == 0:
            break
        norm = np.power(np.maximum(degree[frontier], 1), params.fanout_exponent)
        give = (push / norm)[slot] * weight * multipliers[etype] * params.decay
        if params.fanin_exponent:
            give /= np.power(np.maximum(degree[targets], 1), params.fanin_exponent)
        keep = give > params.threshold
        if alive is not None:
            keep &= alive[targets]
        if not keep.any():
            break
        # Sum what each target receives; remember its strongest giver: order by
        # contribution descending, then (stably) by target, so the first row of each
        # target's group is its best giver.
        kept = np.flatnonzero(keep)
        by_give = kept[np.argsort(-give[kept])]
        order = by_give[np.argsort(targets[by_give], kind="stable")]
        targets, give = targets[order], give[order]
        first = np.flatnonzero(np.concatenate(([True], targets[1:] != targets[:-1])))
        received = np.add.reduceat(give, first)
        receivers = targets[first].astype(np.int64)
        total[receivers] += received  # receivers are unique within a hop
        fresh = ~reached[receivers]
        if fresh.any():
            best = order[first[fresh]]
            new_nodes.append(receivers[fresh])
            new_parent.append(frontier[slot[best]])
            new_type.append(etype[best] % REVERSE)
            new_weight.append(weight[best])
            new_hop.append(np.full(len(best), hop, np.int16))
            reached[receivers[fresh]] = True
        if len(receivers) > params.max_frontier:
            top = np.argpartition(-received, params.max_frontier - 1)[: params.max_frontier]
            receivers, received = receivers[top], received[top]
        frontier, push = receivers, received

    nodes = np.concatenate(new_nodes)
    energies = total[nodes]
    reached[nodes] = False  # every node touched was reached: the workspace is clean again
    total[nodes] = 0.0
    return Activation(
        nodes=nodes,
        energy=energies,
        parent=np.concatenate(new_parent),
        via_type=np.concatenate(new_type),
        via_weight=np.concatenate(new_weight),
        hop=np.concatenate(new_hop),
    )


@lru_cache(maxsize=64)
def _gains(type_multipliers: tuple[float, ...]) -> np.ndarray:
    """Per-entry gains: the type's multiplier for both stored directions."""
    gains = np.tile(np.asarray(type_multipliers, dtype=np.float64), 2)
    gains.setflags(write=False)
    return gains


def path_to(activation: Activation, node: int) -> list[tuple[int, int, float]]:
    """Steps ``(from node, edge type, edge weight)`` from a seed to ``node``.

    Empty for a seed. Follows the parent links of :func:`spread_activation`; for many
    nodes use :func:`paths_to`, which indexes the activation once.

    >>> g = csr_from_edges(3, np.array([0, 1]), np.array([1, 2]), np.ones(2), np.zeros(2))
    >>> a = spread_activation([g], np.array([0]), np.array([1.0]),
    ...                       ActivationParams(fanout_exponent=0.0, fanin_exponent=0.0,
    ...                                        type_multipliers=(1.0,) * 9))
    >>> path_to(a, 2)
    [(0, 0, 1.0), (1, 0, 1.0)]
    """
    return paths_to(activation, [node])[0]


def paths_to(activation: Activation, nodes: Sequence[int]) -> list[list[tuple[int, int, float]]]:
    """:func:`path_to` for several nodes (one sort of the activation, then lookups)."""
    order = np.argsort(activation.nodes, kind="stable")
    ordered = activation.nodes[order]

    def position(node: int) -> int | None:
        at = int(np.searchsorted(ordered, node))
        return int(order[at]) if at < len(ordered) and ordered[at] == node else None

    result = []
    for node in nodes:
        steps: list[tuple[int, int, float]] = []
        current = position(int(node))
        while current is not None and activation.parent[current] >= 0:
            source = int(activation.parent[current])
            steps.append(
                (
                    source,
                    int(activation.via_type[current]),
                    float(activation.via_weight[current]),
                )
            )
            current = position(source)
            if len(steps) > len(ordered):  # parent links form a tree; never loop forever
                raise RuntimeError("activation parent links contain a cycle")
        steps.reverse()
        result.append(steps)
    return result


def spread_activation_networkx(
    graph: nx.Graph,
    seeds: Sequence[int],
    energy: Sequence[float],
    params: ActivationParams,
) -> dict[int, float]:
    """The same spread as :func:`spread_activation` over a networkx graph.

    The reference implementation: dict-of-dicts adjacency, one Python step per edge.
    Edges carry ``weight`` and ``type`` attributes; a ``MultiGraph`` holds parallel
    edges of different types. It exists to check the array version and to measure it
    against (``hippograph bench latency``).

    >>> g = nx.MultiGraph()
    >>> g.add_edge(0, 1, weight=1.0, type=0); g.add_edge(1, 2, weight=1.0, type=0)
    0
    0
    >>> p = ActivationParams(hops=2, decay=0.5, fanout_exponent=0.0, fanin_exponent=0.0,
    ...                      threshold=0.0, type_multipliers=(1.0,) * 9)
    >>> spread_activation_networkx(g, [0], [1.0], p)
    {0: 1.25, 1: 0.5, 2: 0.25}
    """
    total: dict[int, float] = {}
    for node, e in zip(seeds, energy, strict=True):
        total[node] = total.get(node, 0.0) + float(e)
    frontier = dict(total)
    for _ in range(params.hops):
        received: dict[int, float] = {}
        for node, push in frontier.items():
            norm = max(graph.degree(node), 1) ** params.fanout_exponent
            for _, neighbour, data in graph.edges(node, data=True):
                give = (
                    push / norm * data["weight"] * params.type_multipliers[data["type"] % REVERSE]
                ) * params.decay
                if params.fanin_exponent:
                    give /= max(graph.degree(neighbour), 1) ** params.fanin_exponent
                if give > params.threshold:
                    received[neighbour] = received.get(neighbour, 0.0) + give
        if not received:
            break
        for node, e in received.items():
            total[node] = total.get(node, 0.0) + e
        strongest = sorted(received.items(), key=lambda kv: -kv[1])[: params.max_frontier]
        frontier = dict(strongest)
    return total
