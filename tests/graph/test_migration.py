"""Moving a namespace between the two stores, both ways, with the CLI a user would run:
``hippograph export`` on one store, ``hippograph import`` on the other. The copy answers
every recall exactly as the original (ids, order, score and each score part, paths),
and exporting the copy gives the same file (apart from the header's ``exported_at``;
seqs are store-assigned and not in the file). Then the copy goes back to a store of the
first kind, with the same checks.

The hashing encoder is enough: the claim is identity, not recall quality.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hippograph.api.cli import main
from hippograph.api.settings import STORE_VARIABLES
from hippograph.embeddings import HashingEncoder
from hippograph.graph import AssociationType, MemoryGraph, MemoryInput, RecallContext
from hippograph.graph.model import Link
from tests.stores import neo4j_marks, open_store, store_env, wipe_neo4j

NS = "agent"
QUERIES = [
    "Where did Caroline go hiking?",
    "pottery class on Tuesdays",
    "Melanie's kids and their cat",
    "the rain in the Alps",
    "goats",
]
AT = datetime(2024, 6, 1, tzinfo=UTC)  # one time for every recall: recency follows the clock

Export = Callable[[str, Path, str, Path], None]


def _populate(graph: MemoryGraph) -> None:
    """Sessions, entities, explicit links, passages, a forgotten memory, and recalls
    that change access counts, last access times and association weights."""
    graph.remember_many(
        NS,
        [
            MemoryInput(
                "Caroline: I went hiking in the Alps with Melanie last week. It rained. "
                "We still made it to the hut before dark.",
                id="c1",
                session_id="s1",
                occurred_at="2023-05-08T13:56:00Z",
                importance=0.9,
                metadata={"speaker": "Caroline", "tags": ["trip", "ü"]},
            ),
            MemoryInput(
                "Melanie: Wow, that sounds amazing! Did you see any goats?",
                id="m1",
                session_id="s1",
            ),
            MemoryInput(
                "Caroline: I signed up for a pottery class on Tuesdays.",
                session_id="s2",
                kind="fact",
                links=[Link("c1", AssociationType.CAUSES, 0.4)],
            ),
        ],
    )
    graph.remember(NS, "Melanie: My kids adopted a cat called Oliver.", session_id="s2")
    graph.remember(NS, "Gina: the Alps trip photos are online now.", id="g1", session_id="s3")
    graph.remember(NS, "Something to forget", id="gone")
    graph.forget(NS, "gone")
    graph.associate(NS, "m1", "c1", "RELATED_TO", 0.3)
    graph.associate(NS, "g1", "c1", AssociationType.SIMILAR_TO, 0.7)
    for query in QUERIES[:3]:
        graph.recall(NS, query, k=3, context=RecallContext(session_id="s2"))
    graph.recall(NS, "hiking photos", k=2)
    graph.checkpoint()


def _recalls(graph: MemoryGraph, namespace: str) -> list[list[tuple[Any, ...]]]:
    """Every query, with and without a session, as (id, score, parts, path)."""
    return [
        [
            (r.memory.id, r.score, r.parts, r.path)
            for r in graph.recall(namespace, query, k=10, context=context, learn=False)
        ]
        for query in QUERIES
        for context in (RecallContext(at=AT), RecallContext(at=AT, session_id="s2"))
    ]


def _open(kind: str, data_dir: Path) -> MemoryGraph:
    return MemoryGraph(data_dir, encoder=HashingEncoder(), store=open_store(kind, data_dir))


def _records(path: Path) -> tuple[dict[str, Any], list[str]]:
    """The header without what differs between any two exports, and the record lines."""
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    fields = json.loads(header)
    del fields["exported_at"], fields["namespace"]
    return fields, lines


@pytest.fixture
def hippograph(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Export:
    """``hippograph(kind, data_dir, *args)``: the CLI in-process on the store of ``kind``
    with the hashing encoder (no other setting from the environment); fails the test on
    a non-zero exit."""
    wipe_neo4j()  # before the variables naming the server are hidden

    def run(kind: str, data_dir: Path, *args: str | Path) -> None:
        with monkeypatch.context() as env:
            for name in list(os.environ):
                if name.startswith("HIPPOGRAPH_") or name in STORE_VARIABLES:
                    env.delenv(name)
            env.setenv("HIPPOGRAPH_ENCODER", "hashing")
            for name, value in store_env(kind).items():
                env.setenv(name, value)
            capsys.readouterr()
            code = main(["--data-dir", str(data_dir), *map(str, args)])
            out, err = capsys.readouterr()
        assert code == 0, f"hippograph {' '.join(map(str, args))} on {kind}: {err or out}"

    return run  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("sqlite", "neo4j", id="sqlite-to-neo4j-and-back", marks=neo4j_marks()),
        pytest.param("neo4j", "sqlite", id="neo4j-to-sqlite-and-back", marks=neo4j_marks()),
    ],
)
def test_a_namespace_moved_between_the_stores_recalls_and_exports_identically(
    first: str, second: str, hippograph: Export, tmp_path: Path
) -> None:
    source = _open(first, tmp_path / "source")
    _populate(source)
    stored = source.store.iter_memories(NS)
    memories = [m for chunk in stored for m in chunk]
    assert any(m.access_count > 0 for m in memories)  # the recalls left their trace
    assert any(
        m.passages is not None and len(m.passages) > 1
        for m in source.store.get(NS, [m.id for m in memories], embeddings=True)
    )
    assert source.store.entities(NS)
    want = _recalls(source, NS)
    assert all(want) and any(len(r[3]) > 0 for found in want for r in found)  # graph paths
    source.close()

    hippograph(first, tmp_path / "source", "export", "-n", NS, tmp_path / "first.jsonl")
    hippograph(second, tmp_path / "copy", "import", "-n", NS, tmp_path / "first.jsonl")
    copy = _open(second, tmp_path / "copy")
    assert _recalls(copy, NS) == want
    copy.close()
    hippograph(second, tmp_path / "copy", "export", "-n", NS, tmp_path / "second.jsonl")
    header, lines = _records(tmp_path / "first.jsonl")
    assert len(lines) > 10
    copied_header, copied = _records(tmp_path / "second.jsonl")
    assert copied_header == header
    # the same records; memories in the same order (import assigns seqs in file order),
    # a source's edges by target seq, which the import assigned anew (entities after
    # every memory), so only their order may differ
    assert sorted(copied) == sorted(lines)
    assert [line for line in copied if '"record":"memory"' in line] == [
        line for line in lines if '"record":"memory"' in line
    ]

    # and back to a store of the first kind (a namespace of its own: on Neo4j the source
    # is still there)
    hippograph(first, tmp_path / "back", "import", "-n", "back", tmp_path / "second.jsonl")
    back = _open(first, tmp_path / "back")
    assert _recalls(back, "back") == want
    back.close()
    hippograph(first, tmp_path / "back", "export", "-n", "back", tmp_path / "third.jsonl")
    # both copies got their seqs from an import of the same file: the files are equal
    assert _records(tmp_path / "third.jsonl") == (header, copied)
