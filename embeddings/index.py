"""Nearest-neighbour index over unit vectors keyed by int64 ids.

This module owns :class:`VectorIndex`: a FAISS inner-product (= cosine, for unit vectors)
index that is exact while small and converts itself to HNSW once it reaches a size
threshold, supports logical removal (FAISS HNSW cannot delete) with compaction, and persists
itself atomically as a FAISS index file plus a JSON sidecar.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from hippograph.embeddings.index_file import FORMAT_VERSION, read_index_file, write_index_file

IndexKind = Literal["exact", "hnsw"]

# Vectors are fed to FAISS in chunks of this many rows so a bulk build or rebuild never
# needs FAISS-side temporaries proportional to the whole data set.
ADD_CHUNK = 50_000
# Tolerance on |norm - 1|: inner product only equals cosine for unit vectors, and float32
# normalisation is accurate to ~1e-7, so anything beyond this is a caller bug.
UNIT_NORM_TOL = 1e-3
# Upper bound on the first-round oversampling for dead/excluded ids. Searching k + all dead
# ids is exact but with HNSW the cost grows with k, so very dead-heavy indexes start smaller
# and grow the fetch only when filtering actually left a query short.
MAX_INITIAL_OVERSAMPLE = 1024


def _as_ids(ids: object, what: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must have an integer dtype (int64), got {arr.dtype}")
    if arr.size and arr.min() < 0:
        # FAISS uses -1 as "no result"; negative ids would be indistinguishable from padding.
        raise ValueError(f"{what} must be non-negative, got min {int(arr.min())}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _check_vectors(vectors: object, dim: int, what: str = "vectors") -> np.ndarray:
    arr = np.asarray(vectors)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what} must have shape (n, {dim}), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what} must have a float dtype (float32), got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if out.size:
        if not np.isfinite(out).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        norms = np.linalg.norm(out, axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > UNIT_NORM_TOL)
        if bad.size:
            raise ValueError(
                f"{what} must be L2-normalised; row {int(bad[0])} has norm "
                f"{float(norms[bad[0]]):.6f} ({bad.size} rows off by more than {UNIT_NORM_TOL})"
            )
    return out


# Room made for new vectors when an index is read from a file (see VectorIndex.reserve):
# an eighth of its size, at least this many.
RESERVE_MIN = 4_096
RESERVE_FRACTION = 8


class VectorIndex:
    """FAISS inner-product index of unit vectors keyed by non-negative int64 ids.

    Exact (``IndexFlatIP``) below ``hnsw_threshold`` stored vectors, HNSW at or above it.
    ``remove`` is logical: the vector stays in FAISS but its id is never returned again
    until ``compact`` rebuilds without it. All public methods take one re-entrant lock, so
    the object can be shared by threads; searches are serialised with mutations because a
    conversion or compaction swaps the underlying FAISS index. A rebuild (conversion,
    ``compact``) briefly holds old and new index in memory and blocks other callers.
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
    ) -> None:
        for name, value in (
            ("dim", dim),
            ("hnsw_threshold", hnsw_threshold),
            ("hnsw_m", hnsw_m),
            ("ef_construction", ef_construction),
            ("ef_search", ef_search),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._dim = dim
        self._hnsw_threshold = hnsw_threshold
        self._hnsw_m = hnsw_m
        self._ef_construction = ef_construction
        self._ef_search = ef_search
        self._lock = threading.RLock()
        self._kind: IndexKind = "exact"
        self._index: Any = self._new_faiss_index("exact")
        # Every id physically in FAISS (live and dead): FAISS's own id map cannot be queried
        # from Python without copying it, and IndexIDMap2 silently corrupts on duplicates.
        self._stored: set[int] = set()
        self._dead: set[int] = set()
        self._max_id = -1

    # ------------------------------------------------------------------ introspection

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> IndexKind:
        with self._lock:
            return self._kind

    @property
    def ntotal(self) -> int:
        """Vectors physically stored, including logically removed ones."""
        with self._lock:
            return int(self._index.ntotal)

    @property
    def dead_count(self) -> int:
        with self._lock:
            return len(self._dead)

    @property
    def live_count(self) -> int:
        with self._lock:
            return len(self._stored) - len(self._dead)

    @property
    def max_id(self) -> int:
        """Largest id ever added (survives removal and compaction); -1 if none."""
        with self._lock:
            return self._max_id

    @property
    def params(self) -> dict[str, int]:
        return {
            "hnsw_threshold": self._hnsw_threshold,
            "hnsw_m": self._hnsw_m,
            "ef_construction": self._ef_construction,
            "ef_search": self._ef_search,
        }

    def __contains__(self, item: object) -> bool:
        if isinstance(item, bool) or not isinstance(item, int | np.integer):
            return False
        key = int(item)
        with self._lock:
            return key in self._stored and key not in self._dead

    def has(self, ids: np.ndarray) -> np.ndarray:
        """Whether each of ``ids`` is live (one lock for the lot)."""
        keys = np.asarray(ids, dtype=np.int64).tolist()
        with self._lock:
            stored, dead = self._stored, self._dead
            return np.fromiter(
                (k in stored and k not in dead for k in keys), dtype=bool, count=len(keys)
            )

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more vectors now, so that adding them copies nothing.

        FAISS keeps vectors, HNSW links and ids in arrays that grow by doubling, and an
        index read from a file has no spare room: the first add after a load copied the
        whole of it (0.1 s for 100k vectors, 0.2 s for their passages) while the
        namespace's lock held every recall. Growing an array and shrinking it back keeps
        the larger capacity (``std::vector``), so this does the copy here, once."""
        if extra <= 0:
            return
        with self._lock:
            raw = self._index
            inner: Any = faiss.downcast_index(raw.index)
            flat: Any = faiss.downcast_index(inner.storage) if self._kind == "hnsw" else inner
            arrays = [(flat.codes, flat.code_size), (raw.id_map, 1)]
            if self._kind == "hnsw":
                graph = inner.hnsw
                count = int(raw.ntotal)
                # links per vector: 2M at level 0, M more per level above (on average few)
                links = graph.neighbors.size() // count + 1 if count else graph.cum_nb_neighbors(1)
                arrays += [(graph.neighbors, links), (graph.levels, 1), (graph.offsets, 1)]
            for array, per_vector in arrays:
                size = array.size()
                array.resize(size + extra * per_vector)
                array.resize(size)

    def runs(self, firsts: Sequence[int], limit: int) -> list[int]:
        """For each id of ``firsts``, how many consecutive ids from it (at most
        ``limit``) are live: the passages of a memory are such a run (one lock for the
        lot).

        >>> index = VectorIndex(2)
        >>> index.add(np.array([8, 9, 10, 16]), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]])
        >>> index.runs([8, 16, 24], limit=2)
        [2, 1, 0]
        """
        counts = []
        with self._lock:
            stored, dead = self._stored, self._dead
            for first in firsts:
                n = 0
                while n < limit and first + n in stored and first + n not in dead:
                    n += 1
                counts.append(n)
        return counts

    def live_ids(self) -> np.ndarray:
        """Sorted int64 array of the ids that searches can return."""
        with self._lock:
            live = np.fromiter(self._stored - self._dead, dtype=np.int64)
        live.sort()
        return live

    def needs_compaction(self, ratio: float = 0.1) -> bool:
        """True when at least ``ratio`` of the stored vectors are logically removed."""
        with self._lock:
            total = int(self._index.ntotal)
            return bool(self._dead) and len(self._dead) >= ratio * total

    def __repr__(self) -> str:
        return (
            f"VectorIndex(dim={self._dim}, kind={self.kind!r}, live={self.live_count}, "
            f"dead={self.dead_count})"
        )

    # ------------------------------------------------------------------ construction

    def _kind_for(self, count: int) -> IndexKind:
        return "hnsw" if count >= self._hnsw_threshold else "exact"

    def _new_faiss_index(self, kind: IndexKind) -> Any:
        if kind == "exact":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
        hnsw = faiss.IndexHNSWFlat(self._dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self._ef_construction
        # Set on the index rather than via SearchParametersHNSW, whose efSearch defaults to 16.
        hnsw.hnsw.efSearch = self._ef_search
        return faiss.IndexIDMap2(hnsw)

    def _iter_live(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) chunks of the live stored vectors, in FAISS order."""
        ntotal = int(self._index.ntotal)
        if ntotal == 0:
            return
        all_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        inner = faiss.downcast_index(self._index.index)
        dead = np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))
        for start in range(0, ntotal, ADD_CHUNK):
            stop = min(start + ADD_CHUNK, ntotal)
            ids = all_ids[start:stop]
            vectors = inner.reconstruct_n(start, stop - start)
            if dead.size:
                keep = ~np.isin(ids, dead)
                ids, vectors = ids[keep], vectors[keep]
            if ids.size:
                yield ids, vectors

    def _rebuild(self, chunks: Iterable[tuple[np.ndarray, np.ndarray]], count: int) -> None:
        """Replace the FAISS index with one of the right kind for ``count`` holding ``chunks``."""
        kind = self._kind_for(count)
        index = self._new_faiss_index(kind)
        stored: set[int] = set()
        for ids, vectors in chunks:
            for start in range(0, len(ids), ADD_CHUNK):
                index.add_with_ids(
                    vectors[start : start + ADD_CHUNK], ids[start : start + ADD_CHUNK]
                )
            stored.update(ids.tolist())
        if int(index.ntotal) != count:
            raise RuntimeError(f"rebuild stored {index.ntotal} vectors, expected {count}")
        self._index, self._kind, self._stored, self._dead = index, kind, stored, set()

    @classmethod
    def build(
        cls,
        dim: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        progress: Callable[[int], None] | None = None,
        **params: int,
    ) -> VectorIndex:
        """Bulk-build an index, choosing exact or HNSW from ``len(ids)`` up front.

        ``vectors`` may be a memmap: it is validated and added ``ADD_CHUNK`` rows at a time,
        and ``progress`` is called with the running number of vectors added.
        """
        index = cls(dim, **params)
        ids = _as_ids(ids)
        if np.ndim(vectors) != 2 or np.shape(vectors)[0] != len(ids):
            raise ValueError(
                f"vectors must have shape ({len(ids)}, {dim}) to match ids, got {np.shape(vectors)}"
            )
        sorted_ids = np.sort(ids)
        dups = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if dups.size:
            raise ValueError(f"ids contain duplicates, e.g. {np.unique(dups)[:5].tolist()}")
        with index._lock:
            index._kind = index._kind_for(len(ids))
            index._index = index._new_faiss_index(index._kind)
            for start in range(0, len(ids), ADD_CHUNK):
                stop = min(start + ADD_CHUNK, len(ids))
                chunk = _check_vectors(vectors[start:stop], dim, f"vectors[{start}:{stop}]")
                index._index.add_with_ids(chunk, ids[start:stop])
                if progress is not None:
                    progress(stop)
            index._stored = set(ids.tolist())
            index._max_id = int(ids.max()) if ids.size else -1
        return index

    # ------------------------------------------------------------------ mutation

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add unit ``vectors`` (n, dim) under new ``ids`` (n,).

        Raises ValueError for bad shapes/dtypes/norms and for ids already stored, including
        removed-but-not-compacted ids (their old vector is still in FAISS under that id).
        """
        ids = _as_ids(ids)
        vectors = _check_vectors(vectors, self._dim)
        if len(ids) != len(vectors):
            raise ValueError(f"got {len(ids)} ids but {len(vectors)} vectors")
        if ids.size == 0:
            return
        id_list = ids.tolist()
        if len(set(id_list)) != len(id_list):
            raise ValueError("ids contain duplicates within the batch")
        with self._lock:
            clash = [i for i in id_list if i in self._stored]
            if clash:
                removed = [i for i in clash if i in self._dead]
                hint = " (removed but not compacted; call compact() first)" if removed else ""
                raise ValueError(f"ids already in the index{hint}: {clash[:5]}")
            live = len(self._stored) - len(self._dead)
            if self._kind == "exact" and int(self._index.ntotal) + len(ids) >= self._hnsw_threshold:
                # Converting means rebuilding anyway, so drop dead vectors at the same time;
                # the kind then follows the live count, exactly as compact() would choose.
                chunks = itertools.chain(self._iter_live(), [(ids, vectors)])
                self._rebuild(chunks, live + len(ids))
            else:
                self._index.add_with_ids(vectors, ids)
                self._stored.update(id_list)
            self._max_id = max(self._max_id, int(ids.max()))

    def remove(self, ids: np.ndarray) -> None:
        """Logically remove live ``ids``; KeyError (nothing removed) if any is not live."""
        ids = _as_ids(ids)
        id_list = ids.tolist()
        with self._lock:
            missing = [i for i in id_list if i not in self._stored or i in self._dead]
            if missing:
                raise KeyError(f"ids not live in the index: {missing[:5]}")
            self._dead.update(id_list)

    def compact(self) -> None:
        """Rebuild from live vectors only, clearing the dead set; kind follows the live count."""
        with self._lock:
            if not self._dead:
                return
            live = len(self._stored) - len(self._dead)
            # A generator, so only one chunk of the old vectors is copied out at a time.
            self._rebuild(self._iter_live(), live)

    # ------------------------------------------------------------------ queries

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors (n, dim) for live ``ids``; KeyError if any is unknown or removed."""
        ids = _as_ids(ids)
        with self._lock:
            missing = [i for i in ids.tolist() if i not in self._stored or i in self._dead]
            if missing:
                raise KeyError(f"ids not live in the index: {missing[:5]}")
            if ids.size == 0:
                return np.zeros((0, self._dim), dtype=np.float32)
            out: np.ndarray = self._index.reconstruct_batch(ids)
        return out

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        exclude: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` live ids by inner product, best first.

        ``query`` of shape (dim,) returns 1-D ``(ids, scores)`` with at most k entries.
        ``query`` of shape (m, dim) returns (m, k) arrays padded with id -1 / score -inf.
        ``exclude`` receives a 1-D int64 array of candidate ids and returns a boolean mask of
        the same length, True for ids to leave out (e.g. nodes the caller already has).
        Removed ids are never returned. Results are approximate once the index is HNSW.
        """
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ValueError(f"k must be a non-negative int, got {k!r}")
        k = int(k)
        q = np.asarray(query)
        single = q.ndim == 1
        if single:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self._dim:
            raise ValueError(
                f"query must have shape ({self._dim},) or (m, {self._dim}), got {q.shape}"
            )
        if q.size and not np.issubdtype(q.dtype, np.floating):
            raise ValueError(f"query must have a float dtype (float32), got {q.dtype}")
        q = np.ascontiguousarray(q, dtype=np.float32)
        if not np.isfinite(q).all():
            raise ValueError("query contains NaN or infinite values")

        m = q.shape[0]
        out_ids = np.full((m, k), -1, dtype=np.int64)
        out_scores = np.full((m, k), -np.inf, dtype=np.float32)
        with self._lock:
            ntotal = int(self._index.ntotal)
            if k and m and ntotal:
                self._search_into(q, k, exclude, out_ids, out_scores)
        if single:
            found = int(np.count_nonzero(out_ids[0] >= 0))
            return out_ids[0, :found], out_scores[0, :found]
        return out_ids, out_scores

    def _search_into(
        self,
        q: np.ndarray,
        k: int,
        exclude: Callable[[np.ndarray], np.ndarray] | None,
        out_ids: np.ndarray,
        out_scores: np.ndarray,
    ) -> None:
        ntotal = int(self._index.ntotal)
        dead = self._dead
        # k + #dead guarantees k live hits from an exact index when dead ids cluster at the
        # query; the cap keeps the first HNSW round cheap and the loop below covers the rest.
        extra = min(len(dead), max(MAX_INITIAL_OVERSAMPLE, 4 * k))
        if exclude is not None:
            extra += k
        fetch = min(ntotal, k + extra)
        # No query can get more hits than there are live vectors; stops a futile widening
        # to ntotal when k exceeds the live count.
        wanted = min(k, len(self._stored) - len(dead))
        pending = np.arange(q.shape[0])
        while pending.size:
            scores, labels = self._index.search(q[pending], fetch)
            candidates = labels[labels >= 0]
            excluded: set[int] = set()
            if exclude is not None and candidates.size:
                uniq = np.unique(candidates)
                if dead:
                    uniq = uniq[[i not in dead for i in uniq.tolist()]]
                if uniq.size:
                    mask = np.asarray(exclude(uniq))
                    if mask.shape != uniq.shape or mask.dtype != np.bool_:
                        raise ValueError(
                            f"exclude must return a bool array of shape {uniq.shape}, "
                            f"got {mask.dtype} {mask.shape}"
                        )
                    excluded = set(uniq[mask].tolist())
            still_pending = []
            for row, qi in enumerate(pending.tolist()):
                row_labels = labels[row]
                returned = int(np.count_nonzero(row_labels >= 0))
                keep = [
                    j
                    for j, label in enumerate(row_labels.tolist())
                    if label >= 0 and label not in dead and label not in excluded
                ]
                keep = keep[:k]
                out_ids[qi, : len(keep)] = row_labels[keep]
                out_scores[qi, : len(keep)] = scores[row, keep]
                # FAISS padding (returned < fetch) means nothing more is reachable for this
                # query, so a larger fetch could not fill the row either.
                if len(keep) < wanted and returned == fetch and fetch < ntotal:
                    still_pending.append(qi)
            pending = np.asarray(still_pending, dtype=np.int64)
            fetch = min(ntotal, fetch * 2)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write the FAISS index to ``path`` and its JSON sidecar, each atomically (see
        :func:`~hippograph.embeddings.index_file.write_index_file`)."""
        with self._lock:
            document = {
                "format": FORMAT_VERSION,
                "meta": meta,
                "kind": self._kind,
                "dim": self._dim,
                "ntotal": int(self._index.ntotal),
                "max_id": self._max_id,
                "dead_ids": sorted(self._dead),
                "params": self.params,
            }
            write_index_file(Path(path), self._index, document)

    @classmethod
    def load(cls, path: Path) -> tuple[VectorIndex, dict[str, Any]]:
        """Load an index saved by :meth:`save`; returns ``(index, meta)``.

        FileNotFoundError if either file is missing; ValueError if they are corrupt or do
        not belong together, so the caller can rebuild from its own source of truth.
        """
        saved = read_index_file(Path(path))
        try:
            index = cls(saved.dim, **saved.params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{saved.sidecar} has invalid index parameters: {exc}") from exc
        kind: IndexKind = "hnsw" if saved.kind == "hnsw" else "exact"
        if kind == "hnsw":
            # The sidecar's params are authoritative, so a tuned ef_search survives reloads.
            inner: Any = faiss.downcast_index(saved.raw.index)
            inner.hnsw.efSearch = index._ef_search
        index._index, index._kind = saved.raw, kind
        index._stored, index._dead, index._max_id = saved.stored, saved.dead, saved.max_id
        index.reserve(max(RESERVE_MIN, saved.ntotal // RESERVE_FRACTION))
        return index, saved.meta
