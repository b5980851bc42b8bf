"""BM25 over one namespace's memories, held in memory and kept current on write.

The lexical seeds of recall come from here, not from the store's full-text index,
because that index cannot answer in bounded time: SQLite FTS5 ranks *every* document
matching any query term, with a B-tree lookup per match (about 2.5 us each); a typical
query matched 3,400 memories of a 1M-memory namespace and took 8-60 ms. Here a term's
postings are contiguous arrays and a query is a few vectorised numpy passes over them
(tens of nanoseconds per posting). The store stays the source of truth: this index is
derived, saved with the namespace's view and rebuilt from the stored text when stale.

Layout mirrors :mod:`hippograph.graph.view`: a compacted term-major CSR *base* (postings of term t
are ``docs[ptr[t]:ptr[t+1]]`` with their term frequencies) plus a small *delta* of
postings added since, merged when it grows past ``delta_limit``. Documents are node
indices of the view; a forgotten memory's length drops to 0 and its postings are
skipped until the next compaction drops them.

Scoring is Okapi BM25 [1]_ with FTS5's idf, ``ln((N - df + 0.5) / (df + 0.5))``, floored
at a small positive value as FTS5 does.

References
----------
.. [1] Robertson, S. & Zaragoza, H. (2009). The Probabilistic Relevance Framework:
   BM25 and Beyond. Foundations and Trends in Information Retrieval, 3(4), 333-389.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hippograph.graph.text import analyze

__all__ = ["LexicalIndex"]


@dataclass
class LexicalIndex:
    """Inverted index with BM25 ranking over node indices.

    Not thread-safe: a search uses a scratch buffer, so callers serialise access (the
    view is used under its namespace's lock).

    Examples
    --------
    >>> index = LexicalIndex()
    >>> index.add(0, "Caroline went to the support group")
    >>> index.add(1, "Melanie painted a sunrise")
    >>> index.add(2, "the group painted together")
    >>> nodes, scores = index.search("support groups", limit=2)
    >>> nodes.tolist()
    [0, 2]
    """

    k1: float = 1.2
    b: float = 0.75
    delta_limit: int = 200_000
    vocabulary: dict[str, int] = field(default_factory=dict)
    ptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    docs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    tfs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    doc_len: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _delta: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    _delta_size: int = 0
    _scratch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # (live documents, sum of their lengths), kept by add and remove: every search and
    # every recall's informativeness part needs them, and counting 100k lengths each
    # time was 6% of a loaded server's time
    _totals: tuple[int, float] | None = None

    def _live_totals(self) -> tuple[int, float]:
        if self._totals is None:
            self._totals = (
                int(np.count_nonzero(self.doc_len)),
                float(self.doc_len.sum(dtype=np.float64)),
            )
        return self._totals

    @property
    def n_docs(self) -> int:
        return self._live_totals()[0]

    @property
    def mean_length(self) -> float:
        """Mean length (analysed terms) of the live documents; 0 when there are none."""
        n, total = self._live_totals()
        return total / n if n else 0.0

    def lengths(self, nodes: np.ndarray) -> np.ndarray:
        """Length (analysed terms, with repeats) of each node's document; 0 for nodes
        without one (entities, forgotten memories).

        >>> index = LexicalIndex()
        >>> index.add(1, "Melanie painted a sunrise")
        >>> index.lengths(np.array([0, 1, 5])).tolist()
        [0.0, 3.0, 0.0]
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        inside = nodes < len(self.doc_len)
        found = np.zeros(len(nodes), np.float64)
        found[inside] = self.doc_len[nodes[inside]]
        return found

    def _term_id(self, term: str) -> int:
        tid = self.vocabulary.get(term)
        if tid is None:
            tid = len(self.vocabulary)
            self.vocabulary[term] = tid
        return tid

    def add(self, node: int, text: str) -> None:
        """Index ``text`` as document ``node`` (a node index not indexed before)."""
        counts = Counter(analyze(text))
        if node >= len(self.doc_len):
            grown = np.zeros(max(node + 1, 2 * len(self.doc_len)), np.float32)
            grown[: len(self.doc_len)] = self.doc_len
            self.doc_len = grown
        # an empty analysis (only stopwords) still counts as a one-token document
        length = max(sum(counts.values()), 1)
        n, total = self._live_totals()
        if self.doc_len[node] > 0:  # indexed again: its old length leaves the totals
            n, total = n - 1, total - float(self.doc_len[node])
        self.doc_len[node] = length
        self._totals = (n + 1, total + length)
        for term, tf in counts.items():
            self._delta.setdefault(self._term_id(term), []).append((node, tf))
        self._delta_size += len(counts)
        if self._delta_size > self.delta_limit:
            self.compact()

    def remove(self, node: int) -> None:
        """Forget document ``node``: it is never returned again."""
        if 0 <= node < len(self.doc_len) and self.doc_len[node] > 0:
            n, total = self._live_totals()
            self._totals = (n - 1, total - float(self.doc_len[node]))
            self.doc_len[node] = 0.0

    def compact(self) -> None:
        """Merge the delta into the base and drop postings of removed documents."""
        n_terms = len(self.vocabulary)
        base_terms = np.repeat(np.arange(len(self.ptr) - 1), np.diff(self.ptr))
        terms = [base_terms]
        docs = [self.docs.astype(np.int64)]
        tfs = [self.tfs]
        for tid, postings in self._delta.items():
            pairs = np.array(postings, dtype=np.int64)
            terms.append(np.full(len(pairs), tid, np.int64))
            docs.append(pairs[:, 0])
            tfs.append(pairs[:, 1].astype(np.float32))
        t, d, f = np.concatenate(terms), np.concatenate(docs), np.concatenate(tfs)
        live = np.zeros(len(d), bool)
        inside = d < len(self.doc_len)
        live[inside] = self.doc_len[d[inside]] > 0
        t, d, f = t[live], d[live], f[live]
        order = np.lexsort((d, t))
        self.ptr = np.zeros(n_terms + 1, np.int64)
        np.cumsum(np.bincount(t, minlength=n_terms), out=self.ptr[1:])
        self.docs = d[order].astype(np.int32)
        self.tfs = f[order]
        self._delta = {}
        self._delta_size = 0

    def _postings(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        docs = self.docs[self.ptr[tid] : self.ptr[tid + 1]] if tid < len(self.ptr) - 1 else None
        tfs = self.tfs[self.ptr[tid] : self.ptr[tid + 1]] if docs is not None else None
        extra = self._delta.get(tid)
        if extra:
            pairs = np.array(extra, dtype=np.int64)
            more_docs, more_tfs = pairs[:, 0], pairs[:, 1].astype(np.float32)
            if docs is None or tfs is None:
                return more_docs, more_tfs
            return np.concatenate([docs, more_docs]), np.concatenate([tfs, more_tfs])
        if docs is None or tfs is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return docs.astype(np.int64), tfs

    def search(self, text: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``limit`` best documents for ``text`` by BM25: (nodes, scores), best
        first, scores > 0."""
        lengths = self.doc_len
        n, total = self._live_totals()
        if n == 0 or limit <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        avgdl = total / n
        # Sum per document in a dense scratch array kept between queries (a fresh one
        # would page-fault on every touched page of a large namespace). A term's postings
        # name each document once, so ``acc[docs] += gain`` is exact.
        if len(self._scratch) < len(lengths):
            self._scratch = np.zeros(len(lengths))
        acc = self._scratch
        hits: list[np.ndarray] = []
        for term in dict.fromkeys(analyze(text)):
            tid = self.vocabulary.get(term)
            if tid is None:
                continue
            docs, tfs = self._postings(tid)
            dl = lengths[docs]
            live = dl > 0
            docs, tfs, dl = docs[live], tfs[live], dl[live]
            df = len(docs)
            if df == 0:
                continue
            idf = max(np.log((n - df + 0.5) / (df + 0.5)), 1e-6)
            norm = self.k1 * (1.0 - self.b + self.b * dl / avgdl)
            acc[docs] += idf * tfs * (self.k1 + 1.0) / (tfs + norm)
            hits.append(docs)
        if not hits:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        docs = np.concatenate(hits) if len(hits) > 1 else hits[0]
        totals = acc[docs]
        acc[docs] = 0.0  # leave the scratch clean for the next query
        # a document appears once per matching term: the best len(hits) * limit entries
        # hold at least ``limit`` distinct documents
        want = min(len(docs), limit * len(hits))
        if want < len(docs):
            top = np.argpartition(-totals, want - 1)[:want]
            docs, totals = docs[top], totals[top]
        unique, first = np.unique(docs, return_index=True)
        totals = totals[first]
        order = np.argsort(-totals, kind="stable")[:limit]
        return unique[order], totals[order]

    # -- persistence (the view saves these arrays with its own) -------------------------

    def arrays(self) -> dict[str, np.ndarray]:
        if self._delta:
            self.compact()
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        return {
            "lex_ptr": self.ptr,
            "lex_docs": self.docs,
            "lex_tfs": self.tfs,
            "lex_doc_len": self.doc_len,
            "lex_terms": np.array(terms, dtype=np.str_),
        }

    @classmethod
    def from_arrays(cls, data: Mapping[str, np.ndarray]) -> LexicalIndex:
        """The index saved by :meth:`arrays` (``data`` may be an open ``.npz``)."""
        terms = data["lex_terms"].tolist()
        return cls(
            vocabulary={t: i for i, t in enumerate(terms)},
            ptr=data["lex_ptr"],
            docs=data["lex_docs"],
            tfs=data["lex_tfs"],
            doc_len=data["lex_doc_len"].copy(),
        )
