"""The in-memory BM25 index: scores by hand, stemming, forgetting, delta vs compacted,
persistence, and agreement with SQLite FTS5's own bm25 on the same corpus."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest

import hippograph.graph.lexical
from hippograph.graph.lexical import LexicalIndex
from hippograph.graph.text import analyze


def bm25(tf: float, df: int, n: int, dl: float, avgdl: float, k1: float = 1.2, b: float = 0.75):
    idf = max(math.log((n - df + 0.5) / (df + 0.5)), 1e-6)
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def build(texts: list[str], *, delta_limit: int = 200_000) -> LexicalIndex:
    index = LexicalIndex(delta_limit=delta_limit)
    for node, text in enumerate(texts):
        index.add(node, text)
    return index


CORPUS = [
    "violin lesson violin",  # 0: violin twice
    "garden hose",  # 1
    "violin concert tickets",  # 2
    "hose repair kit",  # 3
    "piano lesson",  # 4
]


def test_scores_are_okapi_bm25_computed_by_hand() -> None:
    index = build(CORPUS)
    nodes, scores = index.search("violin", limit=5)
    n, avgdl = 5, (3 + 2 + 3 + 3 + 2) / 5
    expected = {0: bm25(2, 2, n, 3, avgdl), 2: bm25(1, 2, n, 3, avgdl)}
    assert nodes.tolist() == [0, 2]
    assert scores.tolist() == pytest.approx([expected[0], expected[2]])


def test_scores_of_several_terms_add_up() -> None:
    index = build(CORPUS)
    nodes, scores = index.search("violin lesson", limit=5)
    n, avgdl = 5, 13 / 5
    both = bm25(2, 2, n, 3, avgdl) + bm25(1, 2, n, 3, avgdl)
    assert nodes[0] == 0
    assert scores[0] == pytest.approx(both)
    assert set(nodes.tolist()) == {0, 2, 4}


def test_stemming_matches_inflected_forms() -> None:
    index = build(["she paints sunrises", "he repaired the car"])
    assert index.search("painting a sunrise", limit=5)[0].tolist() == [0]
    assert analyze("Groups grouped") == ["group", "group"]


def test_stopword_only_and_unknown_queries_find_nothing() -> None:
    index = build(CORPUS)
    assert len(index.search("the and of", limit=5)[0]) == 0
    assert len(index.search("xylophone", limit=5)[0]) == 0
    assert len(LexicalIndex().search("violin", limit=5)[0]) == 0


def test_limit_keeps_the_best() -> None:
    index = build(CORPUS)
    nodes, scores = index.search("violin hose lesson", limit=2)
    assert len(nodes) == 2 and scores[0] >= scores[1]
    assert nodes[0] == 0  # violin twice plus lesson


def test_a_removed_document_never_comes_back_before_or_after_compaction() -> None:
    index = build(CORPUS)
    index.remove(0)
    assert 0 not in index.search("violin lesson", limit=5)[0].tolist()
    index.compact()
    assert 0 not in index.search("violin lesson", limit=5)[0].tolist()
    assert index.n_docs == 4


def test_delta_and_compacted_base_rank_alike() -> None:
    incremental = build(CORPUS, delta_limit=10**9)  # everything stays in the delta
    compacted = build(CORPUS)
    compacted.compact()
    tiny = build(CORPUS, delta_limit=2)  # compacts on almost every add
    for query in ("violin", "hose lesson", "piano violin repair"):
        a, sa = incremental.search(query, limit=5)
        for other in (compacted, tiny):
            b, sb = other.search(query, limit=5)
            assert a.tolist() == b.tolist()
            assert sa == pytest.approx(sb)


def test_live_totals_follow_adds_removes_and_reindexing() -> None:
    """n_docs and mean_length are kept as documents come and go; they must equal a
    count over the lengths at every step (a re-added node replaces its old length)."""
    rng = np.random.default_rng(7)
    words = ["harbour", "ferry", "violin", "tomato", "garden", "lisbon", "oslo", "the"]
    index = LexicalIndex()
    for step in range(400):
        node = int(rng.integers(0, 60))
        if rng.random() < 0.3:
            index.remove(node)
        else:
            index.add(node, " ".join(rng.choice(words, size=int(rng.integers(1, 9)))))
        lengths = index.doc_len
        live = int(np.count_nonzero(lengths))
        assert index.n_docs == live, step
        expected = float(lengths.sum(dtype=np.float64)) / live if live else 0.0
        assert index.mean_length == pytest.approx(expected), step
    assert index.n_docs > 0  # the walk left documents to count
    again = LexicalIndex.from_arrays(index.arrays())
    assert (again.n_docs, again.mean_length) == (index.n_docs, pytest.approx(index.mean_length))


def test_arrays_round_trip() -> None:
    index = build(CORPUS)
    index.remove(3)
    again = LexicalIndex.from_arrays(index.arrays())
    for query in ("violin lesson", "hose"):
        assert index.search(query, 5)[0].tolist() == again.search(query, 5)[0].tolist()
    again.add(5, "violin duet")
    assert 5 in again.search("violin", 10)[0].tolist()


def test_ranking_agrees_with_sqlite_fts5_bm25() -> None:
    # no stopwords in this corpus, so both sides see the same terms and lengths
    rng = np.random.default_rng(7)
    words = [f"word{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(200)]
    index = build(texts)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(content, tokenize='porter unicode61')")
    db.executemany("INSERT INTO t (rowid, content) VALUES (?, ?)", enumerate(texts))
    for query in ("word3", "word5 word17", "word1 word2 word30"):
        alternatives = " OR ".join(query.split())
        theirs = dict(db.execute("SELECT rowid, -bm25(t) FROM t WHERE t MATCH ?", (alternatives,)))
        nodes, scores = index.search(query, limit=len(texts))
        ours = dict(zip(nodes.tolist(), scores.tolist(), strict=True))
        assert ours.keys() == theirs.keys()
        for node, score in ours.items():
            assert score == pytest.approx(theirs[node], rel=1e-5)


def test_module_doctests_pass() -> None:
    import doctest

    assert doctest.testmod(hippograph.graph.lexical).failed == 0
