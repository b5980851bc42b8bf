"""The in-memory view of one namespace: node columns plus CSR adjacency, kept current
on every write and never rebuilt per query.

Nodes are numbered ``0..n-1`` in store ``seq`` order (seqs only grow, so appending keeps
the order and ``np.searchsorted`` maps seq -> index). Adjacency is two CSR layers over
that numbering, like a two-level LSM tree: a large compacted *base* and a small *delta*
holding edges written since. A write appends to the delta and rebuilds only the delta
(bounded size); when the delta outgrows ``delta_limit`` it is merged into the base.
Weights change in place (Hebbian strengthening); forgetting a node clears its ``alive``
bit, and compaction drops the dead node's edges.

The view is derived: :meth:`NamespaceView.from_store` rebuilds it from the store, and
:meth:`save`/:meth:`load` persist it with the store generation it reflects so a restart
need not rebuild.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hippograph.graph.activation import CSR, REVERSE, Workspace, csr_from_edges, frontier_edges
from hippograph.graph.lexical import LexicalIndex
from hippograph.graph.model import AssociationType
from hippograph.graph.store import GraphStore

__all__ = ["NamespaceView"]

_FORMAT = 3  # 3: nine association types (SUPERSEDES), REVERSE = 9
_MENTIONS = AssociationType.MENTIONS.code


def _grow(array: np.ndarray, extra: np.ndarray) -> np.ndarray:
    return np.concatenate([array, extra.astype(array.dtype, copy=False)])


@dataclass
class NamespaceView:
    seq: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    is_memory: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    occurred_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    last_accessed_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    access_count: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    importance: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    tier: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    session: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    sessions: list[str] = field(default_factory=list)
    base: CSR = field(default_factory=CSR.empty)
    delta_limit: int = 65_536
    _delta_rows: list[tuple[int, int, int, float]] = field(default_factory=list)
    # position of each association (i, j, type) in _delta_rows, so a weight update is a
    # lookup rather than a scan of the delta (Hebbian updates run on the recall path)
    _delta_at: dict[tuple[int, int, int], int] = field(default_factory=dict)
    delta: CSR = field(default_factory=CSR.empty)
    degree: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    lexical: LexicalIndex = field(default_factory=LexicalIndex)
    workspace: Workspace = field(default_factory=Workspace)  # scratch for activation
    _session_codes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._session_codes = {s: i for i, s in enumerate(self.sessions)}

    # -- size and lookups -------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return len(self.seq)

    @property
    def n_memories(self) -> int:
        return int(np.count_nonzero(self.alive & self.is_memory))

    @property
    def n_edges(self) -> int:
        """Associations held (each stored once per direction, counted once)."""
        live = sum(int(np.count_nonzero(layer.weights > 0)) for layer in self.layers)
        return live // 2

    @property
    def layers(self) -> tuple[CSR, ...]:
        return (self.base, self.delta) if self._delta_rows else (self.base,)

    def index_of(self, seqs: np.ndarray | list[int]) -> np.ndarray:
        """Node index of each seq, -1 where the seq is not a live node of this view."""
        seqs = np.asarray(seqs, dtype=np.int64)
        if self.n_nodes == 0:
            return np.full(len(seqs), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.seq, seqs), self.n_nodes - 1)
        found = (self.seq[pos] == seqs) & self.alive[pos]
        return np.where(found, pos, -1).astype(np.int64)

    def session_code(self, session_id: str | None, *, create: bool = False) -> int:
        if session_id is None:
            return -1
        code = self._session_codes.get(session_id)
        if code is None:
            if not create:
                return -2  # a session no node has: matches nothing, not even "no session"
            code = len(self.sessions)
            self.sessions.append(session_id)
            self._session_codes[session_id] = code
        return code

    # -- writes -----------------------------------------------------------------------

    def add_nodes(
        self,
        seqs: np.ndarray,
        *,
        is_memory: np.ndarray,
        occurred_at: np.ndarray,
        importance: np.ndarray,
        tier: np.ndarray,
        sessions: list[str | None],
        contents: list[str | None] | None = None,
        last_accessed_at: np.ndarray | None = None,
        access_count: np.ndarray | None = None,
    ) -> None:
        """Append nodes (seqs above every present one); never accessed unless
        ``last_accessed_at`` and ``access_count`` say otherwise (restored memories)."""
        seqs = np.asarray(seqs, dtype=np.int64)
        if len(seqs) == 0:
            return
        if self.n_nodes and seqs.min() <= self.seq[-1]:
            raise ValueError("node seqs must be added in increasing order")
        k = len(seqs)
        self.seq = _grow(self.seq, seqs)
        self.is_memory = _grow(self.is_memory, np.asarray(is_memory, bool))
        self.alive = _grow(self.alive, np.ones(k, bool))
        self.occurred_at = _grow(self.occurred_at, np.asarray(occurred_at, np.float64))
        if last_accessed_at is None:
            last_accessed_at = np.full(k, np.nan)
        if access_count is None:
            access_count = np.zeros(k, np.int32)
        self.last_accessed_at = _grow(
            self.last_accessed_at, np.asarray(last_accessed_at, np.float64)
        )
        self.access_count = _grow(self.access_count, np.asarray(access_count, np.int32))
        self.importance = _grow(self.importance, np.asarray(importance, np.float32))
        self.tier = _grow(self.tier, np.asarray(tier, np.int8))
        codes = [self.session_code(s, create=True) for s in sessions]
        self.session = _grow(self.session, np.asarray(codes, np.int32))
        self.degree = _grow(self.degree, np.zeros(k, np.int64))
        first = self.n_nodes - k
        for offset, text in enumerate(contents or []):
            if text is not None:
                self.lexical.add(first + offset, text)

    def add_edges(self, edges: list[tuple[int, int, int, float]]) -> None:
        """Add or update edges given as (source seq, target seq, type code, weight)."""
        if not edges:
            return
        fresh: list[tuple[int, int, int, float]] = []
        table = np.array([e[:2] for e in edges], dtype=np.int64)
        ends = self.index_of(table.ravel()).reshape(-1, 2)
        for (i, j), (_, _, t, w) in zip(ends.tolist(), edges, strict=True):
            if i < 0 or j < 0:
                continue
            if not self.set_weight(i, j, t, w):
                fresh.append((i, j, t, float(w)))
        if fresh:
            for row in fresh:
                self._delta_at[row[:3]] = len(self._delta_rows)
                self._delta_rows.append(row)
            for i, j, _, _ in fresh:
                self.degree[i] += 1
                self.degree[j] += 1
            if len(self._delta_rows) > self.delta_limit:
                self.compact()
            else:
                self._rebuild_delta()

    def set_weight(self, i: int, j: int, type_code: int, weight: float) -> bool:
        """Set the weight of the association i -> j of a type (both of its stored
        entries); False when there is no such association."""
        hit = False
        for layer in self.layers:
            for row, other, code in ((i, j, type_code), (j, i, type_code + REVERSE)):
                if row >= layer.n_nodes:
                    continue
                lo, hi = layer.indptr[row], layer.indptr[row + 1]
                match = np.flatnonzero(
                    (layer.indices[lo:hi] == other) & (layer.types[lo:hi] == code)
                )
                if len(match):
                    layer.weights[lo + match] = weight
                    hit = True
        at = self._delta_at.get((i, j, type_code)) if hit else None
        if at is not None:
            self._delta_rows[at] = (i, j, type_code, float(weight))
        return hit

    def remove_node(self, seq: int) -> None:
        """Forget a node: it and its edges stop carrying anything at once (degrees of
        its neighbours drop too), and compaction later drops them for good."""
        idx = int(self.index_of([seq])[0])
        if idx < 0:
            return
        self.alive[idx] = False
        self.lexical.remove(idx)
        for layer in self.layers:
            if idx >= layer.n_nodes:
                continue
            lo, hi = layer.indptr[idx], layer.indptr[idx + 1]
            live = layer.weights[lo:hi] > 0
            neighbours = layer.indices[lo:hi][live].astype(np.int64)
            np.subtract.at(self.degree, neighbours, 1)
            layer.weights[lo:hi] = 0.0
            # the mirror entries, in each neighbour's row
            for j in np.unique(neighbours).tolist():
                a, b = layer.indptr[j], layer.indptr[j + 1]
                layer.weights[a:b][layer.indices[a:b] == idx] = 0.0
        self.degree[idx] = 0
        self._delta_rows = [
            (a, b, t, 0.0 if idx in (a, b) else w) for a, b, t, w in self._delta_rows
        ]

    def touch(self, nodes: np.ndarray, at: float, tier: np.ndarray | None = None) -> None:
        """Record an access (recall returned these nodes at time ``at``)."""
        prior = self.last_accessed_at[nodes]
        self.last_accessed_at[nodes] = np.where(np.isnan(prior), at, np.maximum(prior, at))
        self.access_count[nodes] += 1
        if tier is not None:
            self.tier[nodes] = tier

    def compact(self) -> None:
        """Merge the delta into the base and drop edges of dead nodes (O(edges))."""
        n = self.n_nodes
        rows = np.repeat(np.arange(self.base.n_nodes), np.diff(self.base.indptr))
        src = [rows]
        dst = [self.base.indices.astype(np.int64)]
        weights = [self.base.weights]
        types = [self.base.types]
        if self._delta_rows:
            d = np.array(self._delta_rows, dtype=np.float64)
            a, b = d[:, 0].astype(np.int64), d[:, 1].astype(np.int64)
            src += [a, b]
            dst += [b, a]
            weights += [d[:, 3].astype(np.float32)] * 2
            types += [d[:, 2].astype(np.int8), d[:, 2].astype(np.int8) + REVERSE]
        s, t = np.concatenate(src), np.concatenate(dst)
        w, ty = np.concatenate(weights), np.concatenate(types)
        keep = self.alive[s] & self.alive[t] & (w > 0)
        self.base = csr_from_edges(n, s[keep], t[keep], w[keep], ty[keep], symmetric=False)
        self._delta_rows = []
        self._delta_at = {}
        self.delta = CSR.empty(n)
        self.degree = self.base.degree(n).astype(np.int64)

    def _rebuild_delta(self) -> None:
        d = np.array(self._delta_rows, dtype=np.float64)
        self.delta = csr_from_edges(
            self.n_nodes,
            d[:, 0].astype(np.int64),
            d[:, 1].astype(np.int64),
            d[:, 3].astype(np.float32),
            d[:, 2].astype(np.int8),
        )

    # -- queries over the adjacency -----------------------------------------------------

    def edges_among(self, nodes: np.ndarray) -> list[tuple[int, int, int, float]]:
        """Associations (i, j, type, weight) with both ends in ``nodes``."""
        nodes = np.asarray(nodes, dtype=np.int64)
        found: dict[tuple[int, int, int], float] = {}
        for layer in self.layers:
            positions, slots = frontier_edges(layer, nodes)
            keep = (
                np.isin(layer.indices[positions], nodes)
                & (layer.types[positions] < REVERSE)
                & (layer.weights[positions] > 0)
            )
            for pos, slot in zip(positions[keep].tolist(), slots[keep].tolist(), strict=True):
                key = (int(nodes[slot]), int(layer.indices[pos]), int(layer.types[pos]))
                found[key] = float(layer.weights[pos])
        return [(i, j, t, w) for (i, j, t), w in found.items()]

    def mentions(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot, entity index) pairs: which entity nodes each of ``nodes`` mentions."""
        return self.typed_neighbours(nodes, _MENTIONS)

    def typed_neighbours(self, nodes: np.ndarray, type_code: int) -> tuple[np.ndarray, np.ndarray]:
        """(slot, node index) pairs: the live associations of type code ``type_code``
        in the rows of ``nodes`` (``code + REVERSE`` for the ones pointing at them)."""
        slots_out, found_out = [], []
        for layer in self.layers:
            positions, slots = frontier_edges(layer, np.asarray(nodes, dtype=np.int64))
            keep = (layer.types[positions] == type_code) & (layer.weights[positions] > 0)
            slots_out.append(slots[keep])
            found_out.append(layer.indices[positions[keep]].astype(np.int64))
        return np.concatenate(slots_out), np.concatenate(found_out)

    # -- building and persistence --------------------------------------------------------

    @classmethod
    def from_store(
        cls, store: GraphStore, namespace: str, *, delta_limit: int = 65_536
    ) -> NamespaceView:
        nodes = store.load_nodes(namespace)
        sessions = sorted({s for s in nodes.session if s is not None})
        codes = {s: i for i, s in enumerate(sessions)}
        view = cls(
            seq=nodes.seq,
            is_memory=nodes.is_memory,
            alive=np.ones(len(nodes.seq), bool),
            occurred_at=nodes.occurred_at,
            last_accessed_at=nodes.last_accessed_at,
            access_count=nodes.access_count,
            importance=nodes.importance,
            tier=nodes.tier,
            session=np.array([codes.get(s, -1) if s else -1 for s in nodes.session], np.int32),
            sessions=sessions,
            delta_limit=delta_limit,
        )
        edges = store.load_edges(namespace)
        src, dst = view.index_of(edges.src), view.index_of(edges.dst)
        keep = (src >= 0) & (dst >= 0)
        view.base = csr_from_edges(
            view.n_nodes, src[keep], dst[keep], edges.weight[keep], edges.type[keep]
        )
        view.delta = CSR.empty(view.n_nodes)
        view.degree = view.base.degree(view.n_nodes).astype(np.int64)
        for seqs, texts in store.iter_contents(namespace):
            for node, text in zip(view.index_of(seqs).tolist(), texts, strict=True):
                if node >= 0:
                    view.lexical.add(node, text)
        view.lexical.compact()
        return view

    def save(self, path: Path, generation: int) -> None:
        """Write the view to ``path`` (an ``.npz``) atomically, tagged with the store
        generation it reflects."""
        if self._delta_rows or not self.alive.all() or self.base.n_nodes != self.n_nodes:
            self.compact()
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"format": _FORMAT, "generation": generation, "sessions": self.sessions}
        arrays: dict[str, np.ndarray] = {
            "meta": np.array(json.dumps(meta)),
            "seq": self.seq,
            "is_memory": self.is_memory,
            "alive": self.alive,
            "occurred_at": self.occurred_at,
            "last_accessed_at": self.last_accessed_at,
            "access_count": self.access_count,
            "importance": self.importance,
            "tier": self.tier,
            "session": self.session,
            "indptr": self.base.indptr,
            "indices": self.base.indices,
            "weights": self.base.weights,
            "types": self.base.types,
            **self.lexical.arrays(),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, allow_pickle=False, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, *, delta_limit: int = 65_536) -> tuple[NamespaceView, int]:
        """Read a saved view; returns it with the generation it reflects."""
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError(f"{path.name}: unknown view format {meta.get('format')}")
            base = CSR(
                indptr=data["indptr"],
                indices=data["indices"],
                weights=data["weights"],
                types=data["types"],
            )
            view = cls(
                seq=data["seq"],
                is_memory=data["is_memory"],
                alive=data["alive"],
                occurred_at=data["occurred_at"],
                last_accessed_at=data["last_accessed_at"],
                access_count=data["access_count"],
                importance=data["importance"],
                tier=data["tier"],
                session=data["session"],
                sessions=list(meta["sessions"]),
                base=base,
                delta_limit=delta_limit,
                lexical=LexicalIndex.from_arrays(data),
            )
        if base.n_nodes != view.n_nodes:
            raise ValueError(f"{path.name}: adjacency covers {base.n_nodes} of {view.n_nodes}")
        view.delta = CSR.empty(view.n_nodes)
        view.degree = base.degree(view.n_nodes).astype(np.int64)
        return view, int(meta["generation"])
