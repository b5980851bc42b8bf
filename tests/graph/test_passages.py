"""Passages: a memory's sentences and its context (the memory before it in its session,
read with it) get vectors of their own, so recall finds a long memory by the one
sentence that matters and a reply by what it answers. Split rules, the stored vectors,
recall's similarity, and their life across forget, reopen, crash and rebuild; over real
SQLite files and FAISS indexes with the deterministic hashing encoder."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from hippograph.embeddings import HashingEncoder
from hippograph.graph import (
    AssociationType,
    GraphConfig,
    MemoryGraph,
    MemoryInput,
    RecallContext,
    SQLiteStore,
)
from hippograph.graph.model import CONTEXT_POSITION, PASSAGE_BITS
from hippograph.graph.sqlite_schema import SCHEMA, SCHEMA_VERSION
from hippograph.graph.text import passages

NS = "agent"
# after every memory a test writes (a memory from after the question scores no recency)
RECALL_AT = datetime.now(UTC) + timedelta(days=1)
MakeGraph = Callable[..., MemoryGraph]
LONG = (
    "Jon: I finally opened the dance studio downtown. "
    "The quarterly paperwork for the landlord took ages to sort out. "
    "My accountant says the tax filing deadline moved again."
)


def edges_of(
    graph: MemoryGraph, memory_id: str, type_: AssociationType
) -> set[tuple[str, str, float]]:
    return {
        (a.source, a.target, round(a.weight, 6)) for a in graph.neighbors(NS, memory_id, [type_])
    }


# -- splitting -------------------------------------------------------------------------


def test_sentences_become_passages_that_keep_the_speaker_label() -> None:
    assert passages(LONG) == [
        "Jon: I finally opened the dance studio downtown.",
        "Jon: The quarterly paperwork for the landlord took ages to sort out.",
        "Jon: My accountant says the tax filing deadline moved again.",
    ]


def test_a_single_sentence_or_a_short_tail_is_no_split() -> None:
    assert passages("Jon: I finally opened the dance studio downtown.") == []
    assert passages("I finally opened the dance studio downtown. Yay!") == []
    # the short piece joins its neighbour rather than standing alone
    assert passages("Thanks! I finally opened the dance studio. It took two years of work.") == [
        "Thanks! I finally opened the dance studio.",
        "It took two years of work.",
    ]


def test_line_breaks_split_and_a_long_text_is_grouped_to_the_limit() -> None:
    assert passages("first line of the note here\nsecond line of the note here") == [
        "first line of the note here",
        "second line of the note here",
    ]
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    grouped = passages(text, max_passages=8)
    assert len(grouped) == 8
    assert " ".join(grouped) == text  # nothing lost, order kept


def test_a_label_is_only_a_short_name_before_a_colon() -> None:
    text = "Here is a sentence far too long to be a label: it goes on. And a second sentence."
    assert passages(text) == [
        "Here is a sentence far too long to be a label: it goes on.",
        "And a second sentence.",
    ]
    note = "Remember this: the meeting moved to Friday. Bring the slides and the budget."
    assert passages(note) == [
        "Remember this: the meeting moved to Friday.",
        "Remember this: Bring the slides and the budget.",
    ]


# -- storage ---------------------------------------------------------------------------


# about the SQLite file: a database file of schema version 1 is upgraded in place
@pytest.mark.sqlite_only
def test_a_version_1_database_gains_the_passage_columns_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    v1 = SCHEMA.replace("    passages         BLOB,\n", "").replace(
        "    context          BLOB,\n", ""
    )
    db = sqlite3.connect(path)
    db.executescript(v1)
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO nodes (namespace, label, id, content, kind, tier, created_at, "
        "occurred_at, importance) VALUES ('agent', 'memory', 'old', 'kept', 'event', "
        "'episodic', 0, 0, 0.5)"
    )
    db.commit()
    db.close()
    store = SQLiteStore(path)
    try:
        assert [m.content for m in store.get("agent", ["old"])] == ["kept"]
        assert list(store.iter_passages("agent")) == []
    finally:
        store.close()
    db = sqlite3.connect(path)
    columns = {row[1] for row in db.execute("PRAGMA table_info(nodes)")}
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert {"passages", "context"} <= columns
    assert version == (str(SCHEMA_VERSION),)


# -- recall ----------------------------------------------------------------------------


def cosine(encoder: HashingEncoder, a: str, b: str) -> float:
    va, vb = encoder.encode([a, b])
    return float(va @ vb)


def test_a_long_memory_is_found_by_its_best_sentence(
    make_graph: MakeGraph, hash_encoder: HashingEncoder, tmp_path: Path
) -> None:
    query = "dance studio downtown opened"
    best = "Jon: I finally opened the dance studio downtown."
    for enabled in (True, False):
        # a namespace per setting: on Neo4j every graph opened here shares one database
        ns = f"{NS}-{enabled}"
        g = make_graph(tmp_path / str(enabled), config=GraphConfig(passages=enabled))
        g.remember(ns, LONG, id="long")
        g.remember(ns, "Gina: my online clothing store had a sale", id="other")
        found = {r.memory.id: r for r in g.recall(ns, query, learn=False)}
        whole = cosine(hash_encoder, query, LONG)
        want = max(whole, cosine(hash_encoder, query, best)) if enabled else whole
        assert found["long"].parts["similarity"] == pytest.approx(want, abs=1e-5)
        if enabled:
            assert want > whole + 0.05  # the sentence is the better match
    g = make_graph(tmp_path / "stored")
    g.remember(NS, LONG, id="long")
    ns = g.namespace(NS)
    seq = g.store.seqs_of(NS, ["long"])["long"]
    assert ns.passages.live_ids().tolist() == [(seq << PASSAGE_BITS) + i for i in range(3)]


def test_a_reply_is_found_through_what_it_answers(
    make_graph: MakeGraph, hash_encoder: HashingEncoder, tmp_path: Path
) -> None:
    question = "Caroline: did you adopt the beagle puppy from the shelter?"
    reply = "Melanie: yes, last week!"
    query = "beagle puppy shelter adoption"
    assert cosine(hash_encoder, query, reply) <= 0.0  # precondition: no shared words
    for enabled in (True, False):
        config = GraphConfig(context_passages=enabled)
        ns = f"{NS}-{enabled}"  # a namespace per setting: one Neo4j database for all
        g = make_graph(tmp_path / str(enabled), config=config)
        g.remember(ns, question, id="q", session_id="s")
        g.remember(ns, reply, id="r", session_id="s")
        found = {r.memory.id: r for r in g.recall(ns, query, learn=False, hops=0)}
        if not enabled:
            assert "r" not in found  # only the graph could bring it, and hops=0
            continue
        context = cosine(hash_encoder, query, f"{question}\n{reply}")
        own = max(cosine(hash_encoder, query, reply), 0.0)
        cw = g.config.context_weight
        assert found["r"].parts["similarity"] == pytest.approx(
            (1 - cw) * own + cw * context, abs=1e-5
        )
        assert found["r"].path == []  # a seed of its own, not reached over FOLLOWS


def test_nearest_ranks_by_the_same_similarity_without_lexical_or_graph(
    make_graph: MakeGraph, hash_encoder: HashingEncoder
) -> None:
    g = make_graph()
    g.remember(
        NS, "Caroline: did you adopt the beagle puppy from the shelter?", id="q", session_id="s"
    )
    g.remember(NS, "Melanie: yes, last week!", id="r", session_id="s")
    g.remember(NS, "Gina: my online clothing store had a sale", id="x")
    g.remember(NS, LONG, id="long")
    query = "beagle puppy shelter adoption"
    vector = hash_encoder.encode([query])[0]
    got = g.nearest(NS, vector, k=4)
    by_id = dict(got)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    assert got[0][0] == "q"
    assert by_id["r"] > by_id["x"]  # the reply, through the question it answers
    recalled = {r.memory.id: r.parts["similarity"] for r in g.recall(NS, query, learn=False)}
    assert recalled["r"] == pytest.approx(by_id["r"], abs=1e-5)
    reply, other = hash_encoder.encode(
        ["Melanie: yes, last week!", "Gina: my online clothing store had a sale"]
    )
    assert float(reply @ vector) <= float(other @ vector) + 1e-6  # not by its own vector


def test_the_context_of_a_batch_reads_the_previous_memory_in_the_batch_or_stored(
    make_graph: MakeGraph, hash_encoder: HashingEncoder
) -> None:
    g = make_graph()
    g.remember(NS, "first in the session", id="a", session_id="s")
    g.remember_many(
        NS,
        [
            MemoryInput("second in the session", id="b", session_id="s"),
            MemoryInput("no session at all", id="x"),
            MemoryInput("third in the session", id="c", session_id="s"),
            MemoryInput("opens another session", id="d", session_id="t"),
        ],
    )
    stored = {m.id: m for m in g.store.get(NS, ["a", "b", "c", "d", "x"], embeddings=True)}
    assert stored["a"].context_embedding is None
    assert stored["x"].context_embedding is None
    assert stored["d"].context_embedding is None
    for memory_id, text in (
        ("b", "first in the session\nsecond in the session"),
        ("c", "second in the session\nthird in the session"),
    ):
        got = stored[memory_id].context_embedding
        assert got is not None
        np.testing.assert_allclose(got, hash_encoder.encode([text])[0], atol=1e-6)


class _GatedEncoder:
    """The hashing encoder, except that encoding ``gate_on`` waits for ``release``."""

    def __init__(self, inner: HashingEncoder, gate_on: str) -> None:
        self.inner = inner
        self.gate_on = gate_on
        self.entered = threading.Event()
        self.release = threading.Event()
        self.dim = inner.dim
        self.name = inner.name

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.gate_on in texts:
            self.entered.set()
            assert self.release.wait(10)
        return self.inner.encode(texts)


def test_a_write_that_lands_first_in_the_session_becomes_the_context(
    make_graph: MakeGraph, hash_encoder: HashingEncoder
) -> None:
    encoder = _GatedEncoder(hash_encoder, "slow writer")
    g = make_graph(encoder=encoder)
    g.remember(NS, "opening line", id="a", session_id="s")
    slow = threading.Thread(target=lambda: g.remember(NS, "slow writer", id="slow", session_id="s"))
    slow.start()
    assert encoder.entered.wait(10)  # the slow writer embedded against "opening line"
    g.remember(NS, "fast writer", id="fast", session_id="s")
    encoder.release.set()
    slow.join(10)
    assert edges_of(g, "slow", AssociationType.FOLLOWS) == {
        ("fast", "slow", g.config.follows_weight)
    }
    got = g.store.get(NS, ["slow"], embeddings=True)[0].context_embedding
    want = hash_encoder.encode(["fast writer\nslow writer"])[0]
    assert got is not None
    np.testing.assert_allclose(got, want, atol=1e-6)


# -- life of the passage index -----------------------------------------------------------


def passage_owners(g: MemoryGraph) -> set[int]:
    return set((g.namespace(NS).passages.live_ids() >> PASSAGE_BITS).tolist())


def world(g: MemoryGraph) -> None:
    g.remember(NS, LONG, id="long", session_id="s")
    g.remember(NS, "Gina: That is great news. When is the opening party?", id="g1", session_id="s")
    g.remember(NS, "Jon: Next Friday at eight. Bring your dancing shoes!", id="j1", session_id="s")


def recalls(g: MemoryGraph) -> list[list[tuple[str, float]]]:
    # asked at one fixed time: recency moves with the clock, and reopening takes a while
    context = RecallContext(at=RECALL_AT)
    queries = ["tax filing deadline", "opening party Friday", "dancing shoes", "landlord"]
    return [
        [(r.memory.id, round(r.score, 6)) for r in g.recall(NS, q, context=context, learn=False)]
        for q in queries
    ]


def test_forget_drops_every_passage_of_the_memory_also_after_a_crash(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    g = make_graph()
    world(g)
    seqs = g.store.seqs_of(NS, ["long", "g1", "j1"])
    assert passage_owners(g) == set(seqs.values())
    assert (seqs["g1"] << PASSAGE_BITS) + CONTEXT_POSITION in g.namespace(NS).passages
    g.checkpoint()
    g.forget(NS, "g1")
    assert passage_owners(g) == {seqs["long"], seqs["j1"]}
    g.store.close()  # crash: the saved passage index still holds g1's vectors
    g = make_graph()
    assert passage_owners(g) == {seqs["long"], seqs["j1"]}
    assert "g1" not in [r.memory.id for r in g.recall(NS, "opening party", k=10, learn=False)]


def test_passages_come_back_the_same_after_reopen_crash_and_rebuild(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    g = make_graph()
    world(g)
    before = recalls(g)
    g.close()
    g = make_graph()
    assert recalls(g) == before
    # written after the last save, then a crash: caught up from the store
    g.remember(NS, "Gina: I will be there. I love the salsa classes!", id="g2", session_id="s")
    after = recalls(g)
    g.store.close()
    g = make_graph()
    assert recalls(g) == after
    g.close()
    for path in (tmp_path / "data" / "derived").glob("*.passages.*"):
        path.unlink()
    g = make_graph()
    assert recalls(g) == after
    g.close()
    shutil.rmtree(tmp_path / "data" / "derived")
    g = make_graph()
    g.rebuild(NS)
    assert recalls(g) == after
