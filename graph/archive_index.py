"""The archive's search index: a compact file that finds archived memories by vector.

Archived memories leave the hot vector index; their whole-memory vectors stay searchable
here so recall can still reach them (the caller rehydrates the hits). This module owns
that one file: its layout, how it is searched, changed, saved and checked.

Design (faiss 1.15.1, 384-d unit vectors, 2 cores)
--------------------------------------------------
* **One index type at every size**: ``IndexIVFScalarQuantizer``, 8-bit codes with one
  fixed range for every component (``QT_8bit_uniform``), inner product, *not* encoding
  residuals. Below ``ivf_threshold`` (16,384) it has a single list, i.e. a flat scan;
  above, ``round(4·√n)`` lists from spherical k-means, searched with ``nprobe`` 24.
  A one-list IVF scans as fast as ``IndexScalarQuantizer`` on one thread (5k vectors
  0.31 ms, 10k 0.57 ms, 20k 1.2 ms a query), while ``IndexScalarQuantizer`` spreads one
  query over both OpenMP threads and took 8 ms at 5k on the shared machine. The
  threshold is where a flat scan passes about 1 ms.
* **Fixed range ±min(1, 8/√d)** (±0.408 at 384-d), so codes never need retraining and
  a code means the same thing in every list and every layout: a relayout moves codes
  verbatim. A unit vector's component has standard deviation 1/√d; MiniLM's largest
  component over 4,000 sentences was 0.27, and larger ones are clamped. Rank quality,
  recall@10 against exact float search, flat scan: ±1 (the whole possible range) 0.976
  on real MiniLM vectors and 0.938 on 2,000 Gaussian clusters; ±0.4 0.992 and 0.974; a
  range trained per dimension 0.994 and 0.973 (fp16: 0.9996 at twice the size).
* **Memory-mapped**: ``read_index(path, IO_FLAG_MMAP_IFC)`` maps the codes and ids of
  an ``ArrayInvertedLists`` (and the flat coarse quantizer) in faiss 1.15 (checked: no
  anonymous memory grows on open; pages come from the page cache as searches touch
  them). Mapped vectors are views that faiss cannot grow (it aborts the process), so a
  mapped index is never changed: adds go to an in-RAM index with the same lists,
  removals and replacements to a sorted tombstone array filtered out by an
  ``IDSelector``, and :meth:`ArchiveIndex.save` writes the merged index and maps it.
  faiss without ``IO_FLAG_MMAP_IFC`` (< 1.11) reads the file into RAM instead.
* **Retraining**: the lists are re-clustered when a save (or an add to a never-saved
  index) finds the archive 4× larger than at the last clustering (wanted lists ≥ 2×
  the current), or below half the threshold again. k-means runs on ≤ 32 decoded codes
  per list, 10 iterations; every code is decoded, assigned and moved. Between such
  saves, a save only copies codes. Figures below on clustered vectors.
* **File**: faiss's serialisation followed by a 24-byte trailer (magic, format, crc32
  and length of the faiss part), written with :func:`hippograph.files.atomic_write`.
  Open checks the trailer and crc (≈ 2 GB/s) before faiss parses anything, so a
  truncated or damaged file raises :class:`ArchiveIndexCorrupt`: rebuild from the
  archive files.

Measured with ``pytest -m bench -s tests/graph/test_archive_index.py`` on the shared
2-core machine while other work kept its load at 3–8 (so times are pessimistic, tails
very much so), on clustered vectors with MiniLM-like statistics (50 super-topics, 2,000
topics, 40,000 sub-topics, a shared mean direction; mean pairwise cosine 0.10, nearest
neighbour 0.55 — MiniLM on code comments: 0.08, 0.59). Search: k=20, one query at a
time, from the mapped file; recall@10 against exact float search (the 8-bit codes
alone cap it near 0.97):

=========  =====  =======  ======  ========  ==============  ========================
n          lists  build    file    resident  search p50      recall@10, nprobe 16/24/32
=========  =====  =======  ======  ========  ==============  ========================
100,000    1,265  23 s     41 MB   2.9 MB    0.29 ms         0.941 / 0.965 / 0.969
1,000,000  4,000  286 s    398 MB  15 MB     1.4–2.0 ms      0.969 / 0.972 / 0.975
=========  =====  =======  ======  ========  ==============  ========================

At 1M, nprobe 24 cost 1.95 ms of CPU a query at p50 and 2.4 ms at p99 under load 8
(nprobe 16: 1.35 / 1.9 ms); an exploratory run at load 2–3 took 1.37 ms wall (nprobe
16: 0.88 ms). Build is one ``add`` of every vector: k-means on 128k decoded codes, then
assigning all 1M to 4,000 lists (a 3-TFLOP product; 53 s and 89 s in the exploratory
run). That is the price of each 4× growth, paid inside the save that re-clusters. A
save without re-clustering copies codes and rewrites the file (5.6 s at 1M) and holds
the merged index in RAM meanwhile (392 bytes a vector). Open checks the crc and reads
the ids: 0.6 s at 1M. Resident is mostly the sorted ids kept for membership tests (8
bytes a vector) and a copy of the centroids for adds; anonymous RSS grew 22 MB on
opening the 1M file in a fresh process.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from hippograph.files import atomic_write
from hippograph.graph.model import BadInput, HippographError

__all__ = ["IVF_THRESHOLD", "NPROBE", "ArchiveIndex", "ArchiveIndexCorrupt"]

IVF_THRESHOLD = 16_384  # vectors; at or above, the index is clustered into lists
NPROBE = 24  # lists searched a query (recall@10 0.965 at 100k and at 1M)
RANGE_SIGMAS = 8.0  # the code range is ±RANGE_SIGMAS/√d, at most ±1
KMEANS_ITERATIONS = 10
KMEANS_POINTS_PER_LIST = 32
KMEANS_SEED = 1234
RELAYOUT_CHUNK = 65_536  # codes decoded at a time when moving them to new lists
FORMAT = 1

_MAGIC = b"HGARCHIX"
_TRAILER = struct.Struct("<8sIIQ")  # magic, format, crc32 of the faiss part, its length
_READ_CHUNK = 1 << 20
_LIST_OVERHEAD = 160  # bytes of bookkeeping a list costs in RAM (two vector headers)
_MMAP_FLAG: int | None = getattr(faiss, "IO_FLAG_MMAP_IFC", None)
_EMPTY_IDS = np.empty(0, dtype=np.int64)


class ArchiveIndexCorrupt(HippographError):
    """The archive index file is damaged or is not an archive index of this dimension.

    Nothing was loaded; rebuild the index from the archive files."""

    code = "ARCHIVE_INDEX_CORRUPT"


class ArchiveIndex:
    """A compact on-disk search index over archived memories' whole vectors.

    Ids are memory seqs (non-negative int64); vectors are normalised on the way in, and
    scores are approximate cosines (8-bit codes: within about 0.002). The caller
    serialises calls.

    >>> import tempfile
    >>> index = ArchiveIndex.open(Path(tempfile.mkdtemp()) / "archive.index", dim=4)
    >>> index.add(np.array([7, 9]), np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))
    >>> seqs, cosines = index.search(np.array([0.9, 0.1, 0, 0], dtype=np.float32), k=1)
    >>> seqs.tolist(), len(index)
    ([7], 2)
    >>> index.save()
    >>> ArchiveIndex.open(index.path, dim=4).search(np.eye(4)[1], k=5)[0].tolist()
    [9, 7]
    """

    def __init__(
        self, path: Path, dim: int, *, ivf_threshold: int = IVF_THRESHOLD, nprobe: int = NPROBE
    ) -> None:
        self.path = Path(path)
        self._dim = _positive_int(dim, "dim")
        self._ivf_threshold = _positive_int(ivf_threshold, "ivf_threshold")
        self._nprobe = _positive_int(nprobe, "nprobe")
        self._range = min(1.0, RANGE_SIGMAS / math.sqrt(self._dim))
        self._main: Any = None  # the saved index (mapped when faiss can); never changed
        self._main_ids = _EMPTY_IDS  # sorted ids in _main, dead ones included
        self._dead = _EMPTY_IDS  # sorted ids in _main removed or replaced since the save
        self._skip_dead: Any = None  # IDSelector leaving out _dead, built when needed
        self._fresh = self._empty_ivf(np.zeros((1, self._dim), dtype=np.float32))
        self._fresh_ids = _EMPTY_IDS  # sorted ids in _fresh (none of them live in _main)
        self._mapped = False
        self._unsaved = True

    @classmethod
    def open(
        cls, path: Path, dim: int, *, ivf_threshold: int = IVF_THRESHOLD, nprobe: int = NPROBE
    ) -> ArchiveIndex:
        """The index saved at ``path``, or an empty one when there is no file.

        ``ivf_threshold``: size from which the vectors are clustered into lists;
        ``nprobe``: lists searched a query. ArchiveIndexCorrupt if the file is damaged
        or holds another dimension."""
        index = cls(path, dim, ivf_threshold=ivf_threshold, nprobe=nprobe)
        if index.path.exists():
            _check_file(index.path)
            index._adopt(*index._read(index.path))
            index._unsaved = False
        return index

    def __len__(self) -> int:
        return int(self._main_ids.size - self._dead.size + self._fresh.ntotal)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def lists(self) -> int:
        """How many inverted lists the vectors are clustered into (1: a flat scan)."""
        return int(self._fresh.nlist)

    @property
    def mapped(self) -> bool:
        """Whether the saved part is searched from the memory-mapped file."""
        return self._mapped

    @property
    def resident_bytes(self) -> int:
        """Bytes the index holds in RAM, not counting pages of the mapped file."""
        total = self._main_ids.nbytes + self._dead.nbytes + self._fresh_ids.nbytes
        total += _ivf_bytes(self._fresh, mapped=False)
        if self._main is not None:
            total += _ivf_bytes(self._main, mapped=self._mapped)
        return int(total)

    @property
    def file_bytes(self) -> int:
        """Size of the saved file (0 before the first save)."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def add(self, seqs: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Index ``vectors`` (float, (n, dim)) under ``seqs``; an id already present is
        replaced. Everything is checked before anything changes (BadInput)."""
        ids = _as_seqs(seqs)
        x = _as_unit_rows(vectors, ids.size, self._dim, "vectors")
        if np.unique(ids).size != ids.size:
            raise BadInput("seqs", "must not repeat an id within one call")
        if ids.size == 0:
            return
        self._forget(ids)
        self._fresh.add_with_ids(x, ids)
        self._fresh_ids = np.union1d(self._fresh_ids, ids)
        self._unsaved = True
        if self._main is None:  # all in RAM: re-cluster now, not at the next save
            wanted = self._wanted_lists()
            if wanted != self._fresh.nlist:
                self._fresh = self._relayout(wanted)

    def remove(self, seqs: np.ndarray | list[int]) -> int:
        """Drop ``seqs`` from the index; returns how many were present."""
        ids = np.unique(_as_seqs(seqs))
        removed = self._forget(ids)
        self._unsaved = self._unsaved or removed > 0
        return removed

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(seqs int64, approximate cosines float32) of the ``k`` nearest, best first
        (ties by seq); fewer when the index holds fewer."""
        query_arr = np.asarray(q)
        if query_arr.ndim == 2 and query_arr.shape[0] == 1:
            query_arr = query_arr[0]
        if query_arr.shape != (self._dim,):
            raise BadInput("q", f"must have shape ({self._dim},), got {query_arr.shape}")
        query = _as_unit_rows(query_arr.reshape(1, self._dim), 1, self._dim, "q")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise BadInput("k", f"must be an integer >= 1, got {k!r}")
        found_ids, found_sims = [_EMPTY_IDS], [np.empty(0, dtype=np.float32)]
        for part, selector in ((self._main, self._dead_filter()), (self._fresh, None)):
            if part is None or part.ntotal == 0:
                continue
            params = faiss.SearchParametersIVF()
            params.nprobe = min(self._nprobe, int(part.nlist))
            if selector is not None:
                params.sel = selector
            sims, ids = part.search(query, min(int(k), int(part.ntotal)), params=params)
            hit = ids[0] >= 0
            found_ids.append(ids[0][hit])
            found_sims.append(sims[0][hit])
        seqs = np.concatenate(found_ids).astype(np.int64, copy=False)
        sims = np.concatenate(found_sims).astype(np.float32, copy=False)
        best = np.lexsort((seqs, -sims))[: int(k)]
        return seqs[best], sims[best]

    def save(self) -> None:
        """Write the index to its file atomically (temp file, fsync, rename, fsync of
        the directory), re-clustering first if the archive has grown or shrunk 4×
        since; afterwards searches use the memory-mapped file. Nothing to do when
        nothing changed since the last save."""
        if not self._unsaved and self.path.exists():
            return
        merged = self._relayout(self._wanted_lists())
        _write_file(self.path, merged)
        if _MMAP_FLAG is None:
            self._adopt(merged, np.sort(np.concatenate([_EMPTY_IDS, *_list_ids(merged)])))
        else:
            del merged
            self._adopt(*self._read(self.path))
        self._unsaved = False

    # internals

    def _empty_ivf(self, centroids: np.ndarray) -> Any:
        """An empty IVF over ``centroids`` with the fixed code range."""
        quantizer = faiss.IndexFlatIP(self._dim)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self._dim,
            len(centroids),
            faiss.ScalarQuantizer.QT_8bit_uniform,
            faiss.METRIC_INNER_PRODUCT,
            False,  # encode the vectors, not residuals: codes do not depend on the list
        )
        bounds = np.full((2, self._dim), self._range, dtype=np.float32)
        bounds[1] *= -1
        ivf.sq.train(bounds)
        ivf.is_trained = True
        return ivf

    def _adopt(self, saved: Any, ids: np.ndarray) -> None:
        """Make ``saved`` (holding the sorted ``ids``) the saved part, nothing pending."""
        self._main = saved
        self._main_ids = ids
        self._dead, self._skip_dead = _EMPTY_IDS, None
        self._fresh = self._empty_ivf(_centroids(saved))
        self._fresh_ids = _EMPTY_IDS

    def _read(self, path: Path) -> tuple[Any, np.ndarray]:
        """The faiss index in ``path`` (mapped when faiss can) and its ids; checked to
        be ours."""
        flags = _MMAP_FLAG if _MMAP_FLAG is not None else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise ArchiveIndexCorrupt(f"archive index {path} is unreadable: {exc}") from exc
        self._mapped = _MMAP_FLAG is not None
        if not isinstance(index, faiss.IndexIVFScalarQuantizer):
            raise ArchiveIndexCorrupt(f"{path} holds a {type(index).__name__}")
        if int(index.d) != self._dim:
            raise ArchiveIndexCorrupt(f"{path} holds {index.d}-d vectors, expected {self._dim}")
        bounds = faiss.vector_to_array(index.sq.trained)
        if (
            index.metric_type != faiss.METRIC_INNER_PRODUCT
            or index.by_residual
            or index.sq.qtype != faiss.ScalarQuantizer.QT_8bit_uniform
            or not np.allclose(bounds, [-self._range, 2 * self._range])
        ):
            raise ArchiveIndexCorrupt(f"{path} was built with other quantizer settings")
        ids = np.sort(np.concatenate([_EMPTY_IDS, *_list_ids(index)]))
        if ids.size != index.ntotal or (ids.size and int(ids[0]) < 0):
            raise ArchiveIndexCorrupt(f"{path} lists do not match its size")
        if (ids[1:] == ids[:-1]).any():
            raise ArchiveIndexCorrupt(f"{path} holds an id twice")
        return index, ids

    def _forget(self, ids: np.ndarray) -> int:
        """Tombstone ``ids`` in the saved part and delete them from the fresh part;
        how many were live."""
        in_main = _members(self._main_ids, ids) & ~_members(self._dead, ids)
        in_fresh = _members(self._fresh_ids, ids)
        if in_main.any():
            self._dead = np.union1d(self._dead, ids[in_main])
            self._skip_dead = None
        if in_fresh.any():
            self._fresh.remove_ids(faiss.IDSelectorBatch(ids[in_fresh]))
            self._fresh_ids = np.setdiff1d(self._fresh_ids, ids[in_fresh], assume_unique=True)
        return int(in_main.sum() + in_fresh.sum())

    def _dead_filter(self) -> Any:
        if self._dead.size == 0:
            return None
        if self._skip_dead is None:
            self._skip_dead = faiss.IDSelectorNot(faiss.IDSelectorBatch(self._dead))
        return self._skip_dead

    def _wanted_lists(self) -> int:
        """Lists the index should have for its size: 1 below the threshold, else
        4·√n re-clustered only when n moved 4× from the last clustering."""
        n, current = len(self), int(self._fresh.nlist)
        floor = self._ivf_threshold if current == 1 else self._ivf_threshold // 2
        if n < max(floor, 8):
            return 1
        target = min(round(4 * math.sqrt(n)), n // 4)
        if current == 1 or target >= 2 * current or 4 * target <= current:
            return target
        return current

    def _live(self) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        """(ids, codes, list) of every live vector, list by list, saved part first."""
        code_size = int(self._fresh.code_size)
        for part, dead in ((self._main, self._dead), (self._fresh, _EMPTY_IDS)):
            if part is None:
                continue
            invlists = part.invlists
            for list_no in range(int(part.nlist)):
                size = int(invlists.list_size(list_no))
                if size == 0:
                    continue
                all_ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
                all_codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * code_size)
                all_codes = all_codes.reshape(size, code_size)
                for start in range(0, size, RELAYOUT_CHUNK):  # bounded copies of big lists
                    ids = all_ids[start : start + RELAYOUT_CHUNK].copy()
                    codes = all_codes[start : start + RELAYOUT_CHUNK].copy()
                    if dead.size:
                        keep = ~_members(dead, ids)
                        ids, codes = ids[keep], codes[keep]
                    if ids.size:
                        yield ids, codes, list_no

    def _relayout(self, lists: int) -> Any:
        """A new in-RAM index holding every live vector in ``lists`` lists: codes copied
        into the same lists when the layout is kept, else clustered and reassigned."""
        if lists == self._fresh.nlist:
            target = self._empty_ivf(_centroids(self._fresh))
            for ids, codes, list_no in self._live():
                _append(target, list_no, ids, codes)
            return target
        target = self._empty_ivf(self._cluster(lists))
        batch: list[tuple[np.ndarray, np.ndarray]] = []
        pending = 0
        for ids, codes, _ in self._live():
            batch.append((ids, codes))
            pending += ids.size
            if pending >= RELAYOUT_CHUNK:
                _assign(target, batch)
                batch, pending = [], 0
        _assign(target, batch)
        return target

    def _cluster(self, lists: int) -> np.ndarray:
        """Centroids of ``lists`` lists from k-means over a sample of decoded codes."""
        if lists == 1:
            return np.zeros((1, self._dim), dtype=np.float32)
        n = len(self)
        rng = np.random.default_rng(KMEANS_SEED)
        size = min(n, KMEANS_POINTS_PER_LIST * lists)
        chosen = np.sort(rng.choice(n, size=size, replace=False))
        picked, offset = [], 0
        for _, codes, _ in self._live():
            lo, hi = np.searchsorted(chosen, [offset, offset + len(codes)])
            picked.append(codes[chosen[lo:hi] - offset])
            offset += len(codes)
        sample = self._fresh.sq.decode(np.concatenate(picked))
        kmeans = faiss.Kmeans(
            self._dim,
            lists,
            niter=KMEANS_ITERATIONS,
            spherical=True,
            seed=KMEANS_SEED,
            min_points_per_centroid=1,
            max_points_per_centroid=max(1, size // lists + 1),
        )
        kmeans.train(sample)
        return np.asarray(kmeans.centroids, dtype=np.float32)


def _append(target: Any, list_no: int, ids: np.ndarray, codes: np.ndarray) -> None:
    """Add encoded vectors to one list of ``target`` as they are."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    target.invlists.add_entries(list_no, ids.size, faiss.swig_ptr(ids), faiss.swig_ptr(codes))
    target.ntotal += ids.size


def _assign(target: Any, batch: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Put encoded vectors into the lists of ``target`` whose centroids are nearest."""
    if not batch:
        return
    ids = np.concatenate([b[0] for b in batch])
    codes = np.concatenate([b[1] for b in batch])
    _, nearest = target.quantizer.search(target.sq.decode(codes), 1)
    lists = nearest[:, 0]
    order = np.argsort(lists, kind="stable")
    bounds = np.flatnonzero(np.diff(lists[order])) + 1
    for group in np.split(order, bounds):
        _append(target, int(lists[group[0]]), ids[group], codes[group])


def _centroids(index: Any) -> np.ndarray:
    return np.asarray(index.quantizer.reconstruct_n(0, int(index.nlist)), dtype=np.float32)


def _list_ids(index: Any) -> Iterator[np.ndarray]:
    invlists = index.invlists
    for list_no in range(int(index.nlist)):
        size = int(invlists.list_size(list_no))
        if size:
            yield faiss.rev_swig_ptr(invlists.get_ids(list_no), size).copy()


def _ivf_bytes(index: Any, *, mapped: bool) -> int:
    lists = int(index.nlist)
    if mapped:  # codes, ids and centroids live in the mapped file
        return lists * _LIST_OVERHEAD
    vectors = int(index.ntotal) * (int(index.code_size) + 8)
    return vectors + lists * (_LIST_OVERHEAD + 4 * int(index.d))


def _members(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in the sorted array ``sorted_ids``."""
    if sorted_ids.size == 0 or ids.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return np.asarray(sorted_ids[at] == ids)


def _write_file(path: Path, index: Any) -> None:
    """faiss's serialisation of ``index`` followed by the trailer, atomically."""

    def write(fh: BinaryIO) -> None:
        crc, length = 0, 0

        def sink(chunk: bytes) -> int:
            nonlocal crc, length
            crc = zlib.crc32(chunk, crc)
            length += len(chunk)
            fh.write(chunk)
            return len(chunk)

        # The callback classes exist at runtime but are missing from faiss's stubs.
        writer = faiss.PyCallbackIOWriter(sink)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        del writer  # flushes its buffer into sink
        fh.write(_TRAILER.pack(_MAGIC, FORMAT, crc, length))

    atomic_write(path, write)


def _check_file(path: Path) -> None:
    """ArchiveIndexCorrupt unless ``path`` ends in a trailer matching its contents."""
    size = path.stat().st_size
    if size < _TRAILER.size:
        raise ArchiveIndexCorrupt(f"archive index {path} is too short ({size} bytes)")
    with path.open("rb") as fh:
        fh.seek(size - _TRAILER.size)
        magic, fmt, crc, length = _TRAILER.unpack(fh.read(_TRAILER.size))
        if magic != _MAGIC:
            raise ArchiveIndexCorrupt(f"{path} is not an archive index (or is truncated)")
        if fmt != FORMAT:
            raise ArchiveIndexCorrupt(f"{path} has format {fmt}, this code reads {FORMAT}")
        if length != size - _TRAILER.size:
            raise ArchiveIndexCorrupt(f"{path} is {size} bytes, its trailer says {length}")
        fh.seek(0)
        actual, left = 0, length
        while left:
            chunk = fh.read(min(_READ_CHUNK, left))
            if not chunk:
                break
            actual = zlib.crc32(chunk, actual)
            left -= len(chunk)
    if left or actual != crc:
        raise ArchiveIndexCorrupt(f"{path} is damaged (checksum differs)")


def _positive_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BadInput(field, f"must be an integer >= 1, got {value!r}")
    return int(value)


def _as_seqs(seqs: np.ndarray | list[int]) -> np.ndarray:
    """``seqs`` as a 1-d int64 array of non-negative ids (BadInput naming ``seqs``)."""
    arr = np.asarray(seqs)
    if arr.ndim != 1:
        raise BadInput("seqs", f"must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return _EMPTY_IDS
    if arr.dtype.kind not in "iu":
        raise BadInput("seqs", f"must be integers, got {arr.dtype}")
    if arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
        raise BadInput("seqs", "must fit in int64")
    ids = arr.astype(np.int64)
    if int(ids.min()) < 0:
        raise BadInput("seqs", "must be non-negative")
    return ids


def _as_unit_rows(values: np.ndarray, rows: int, dim: int, field: str) -> np.ndarray:
    """``values`` as (rows, dim) finite, non-zero float32 rows scaled to unit length."""
    arr = np.asarray(values)
    if arr.shape != (rows, dim):
        raise BadInput(field, f"must have shape ({rows}, {dim}), got {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise BadInput(field, f"must be numbers, got {arr.dtype}")
    x = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(x).all():
        raise BadInput(field, "must be finite")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if rows and not norms.all():
        raise BadInput(field, "must not contain a zero vector")
    return np.ascontiguousarray(x / np.where(norms == 0, 1, norms), dtype=np.float32)
