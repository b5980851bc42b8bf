"""Export and import: a namespace moves through a file into a store of the same kind
losslessly (compared field by field, vector by vector, edge by edge), and a bad file or a
file from another model changes nothing. Moving between SQLite and Neo4j:
``test_migration.py``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hippograph.embeddings import HashingEncoder
from hippograph.graph import AssociationType, MemoryGraph, MemoryInput, RecallContext
from hippograph.graph.model import BadInput, DuplicateId, Link, ModelMismatch
from hippograph.graph.transfer import BadFile, export_namespace, import_jsonl, import_namespace

MakeGraph = Callable[..., MemoryGraph]

QUERIES = ["Where did Caroline go hiking?", "pottery class", "Melanie's kids", "the cat"]


def _populate(graph: MemoryGraph, namespace: str) -> None:
    graph.remember_many(
        namespace,
        [
            MemoryInput(
                "Caroline: I went hiking in the Alps with Melanie last week. It rained.",
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
    graph.remember(namespace, "Melanie: My kids adopted a cat called Oliver.", session_id="s2")
    graph.remember(namespace, "Something to forget", id="gone")
    graph.forget(namespace, "gone")
    graph.associate(namespace, "m1", "c1", "RELATED_TO", 0.3)
    for query in QUERIES:  # access counts, last access, Hebbian weights
        graph.recall(namespace, query, k=3, context=RecallContext(session_id="s2"))
    graph.checkpoint()


def _memories(graph: MemoryGraph, namespace: str) -> list[dict[str, Any]]:
    found = []
    for chunk in graph.store.iter_memories(namespace, embeddings=True):
        for m in chunk:
            fields = {
                name: getattr(m, name)
                for name in (
                    "id",
                    "content",
                    "kind",
                    "tier",
                    "session_id",
                    "created_at",
                    "occurred_at",
                    "last_accessed_at",
                    "access_count",
                    "importance",
                    "content_hash",
                    "metadata",
                )
            }
            for name in ("embedding", "passages", "context_embedding"):
                value = getattr(m, name)
                fields[name] = None if value is None else (value.shape, value.tobytes())
            found.append(fields)
    return found


def _edges(graph: MemoryGraph, namespace: str) -> list[tuple[Any, ...]]:
    return sorted(
        (
            a.source,
            a.target,
            a.type.value,
            a.weight,
            a.created_at,
            a.last_activated_at,
            a.activation_count,
            a.explicit,
        )
        for chunk in graph.store.iter_associations(namespace)
        for a in chunk
    )


def _recall(graph: MemoryGraph, namespace: str) -> list[list[tuple[str, float]]]:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    return [
        [
            (r.memory.id, round(r.score, 9))
            for r in graph.recall(namespace, q, k=5, context=RecallContext(at=at), learn=False)
        ]
        for q in QUERIES
    ]


def _export(graph: MemoryGraph, namespace: str) -> str:
    out = io.StringIO()
    export_namespace(graph, namespace, out)
    return out.getvalue()


def test_store_to_file_to_store_keeps_every_field_vector_and_edge(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    source = make_graph(tmp_path / "a")
    _populate(source, "agent")
    text = _export(source, "agent")
    lines = text.splitlines()
    assert json.loads(lines[0])["format"] == "hippograph-export"
    assert sum('"record":"memory"' in line for line in lines) == 4

    target = make_graph(tmp_path / "b")
    counts = import_namespace(target, "moved", io.StringIO(text))
    assert counts["memories"] == 4 and counts["associations"] == len(_edges(source, "agent"))

    want = _memories(source, "agent")
    assert any(m["passages"] is not None for m in want)  # passages travel too
    assert any(m["context_embedding"] is not None for m in want)
    assert any(m["access_count"] > 0 and m["last_accessed_at"] for m in want)
    assert _memories(target, "moved") == want
    edges = _edges(source, "agent")
    assert any(e[5] is not None and e[6] > 0 for e in edges)  # strengthened by recall
    assert any(e[7] for e in edges)  # an explicit link
    assert _edges(target, "moved") == edges
    assert target.store.entities("moved") == source.store.entities("agent")
    source_stats, target_stats = source.stats("agent"), target.stats("moved")
    for key in ("tiers", "kinds", "associations", "entities", "index"):
        assert target_stats[key] == source_stats[key], key
    # the derived structures were built from the import: recall answers the same
    assert _recall(target, "moved") == _recall(source, "agent")
    # and so they are after a restart from disk
    target.close()
    reopened = make_graph(tmp_path / "b")
    assert _recall(reopened, "moved") == _recall(source, "agent")
    # exporting the copy gives the same records (header aside; edges in seq order)
    again = _export(reopened, "moved").splitlines()
    assert sorted(again[1:]) == sorted(lines[1:])


def test_a_bad_line_is_named_and_nothing_is_written(make_graph: MakeGraph, tmp_path: Path) -> None:
    source = make_graph(tmp_path / "a")
    _populate(source, "agent")
    lines = _export(source, "agent").splitlines()
    target = make_graph(tmp_path / "b")
    target.remember("moved", "already here", id="keep")
    before = target.stats("moved")

    broken = json.loads(lines[2])
    broken["importance"] = 7
    with pytest.raises(BadInput, match=r"line 3\.importance"):
        import_namespace(target, "moved", [*lines[:2], json.dumps(broken), *lines[3:]])
    short = json.loads(lines[1])
    short["embedding"] = short["embedding"][:16]
    with pytest.raises(BadInput, match=r"line 2\.embedding"):
        import_namespace(target, "moved", [lines[0], json.dumps(short), *lines[2:]])
    dangling = [line for line in lines if '"record":"association"' not in line]
    dangling.append(json.dumps({**json.loads(lines[-1]), "target": "nowhere"}))
    with pytest.raises(BadInput, match="'nowhere' is not a memory or entity"):
        import_namespace(target, "moved", dangling)
    with pytest.raises(BadInput, match="line 1"):
        import_namespace(target, "moved", lines[1:])
    assert target.stats("moved") == before


def test_an_export_of_another_model_or_existing_ids_changes_nothing(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    source = make_graph(tmp_path / "a")
    _populate(source, "agent")
    text = _export(source, "agent")
    other_model = make_graph(tmp_path / "b", encoder=HashingEncoder(dim=32))
    with pytest.raises(ModelMismatch, match="64-d"):
        import_namespace(other_model, "moved", io.StringIO(text))
    assert other_model.stats("moved")["tiers"] == {
        t: 0 for t in other_model.stats("moved")["tiers"]
    }
    before = source.stats("agent")
    with pytest.raises(DuplicateId):
        import_namespace(source, "agent", io.StringIO(text))
    after = source.stats("agent")
    assert {k: after[k] for k in ("tiers", "associations")} == {
        k: before[k] for k in ("tiers", "associations")
    }
    assert np.isfinite([m["importance"] for m in _memories(source, "agent")]).all()


# -- JSONL of memories to remember ---------------------------------------------------------


def test_import_jsonl_remembers_lines_in_order_and_resume_skips_what_is_stored(
    make_graph: MakeGraph, tmp_path: Path
) -> None:
    graph = make_graph()
    lines = [
        json.dumps({"id": "a", "content": "Alice moved to Paris", "session_id": "s"}),
        "",
        json.dumps({"id": "b", "content": "Bob keeps goats", "links": [{"target": "a"}]}),
        json.dumps({"id": "c", "content": "Carol paints", "kind": "fact", "importance": None}),
    ]
    graph.remember("ns", "Alice moved to Paris", id="a", session_id="s")  # a stopped run
    seen: list[tuple[int, int]] = []
    counts = import_jsonl(
        graph, "ns", lines, resume=True, batch_size=1, progress=lambda *p: seen.append(p)
    )
    assert counts["memories"] == 2 and counts["skipped"] == 1 and counts["links"] == 1
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert {m.id for m in graph.store.get("ns", ["a", "b", "c"])} == {"a", "b", "c"}
    path = tmp_path / "more.jsonl"
    path.write_text("\ufeff" + json.dumps({"content": "Dan sings"}) + "\n", encoding="utf-8")
    assert import_jsonl(graph, "ns", path)["memories"] == 1


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("[1]", "line 2: expected a JSON object, got list"),
        ('{"content": "x", "occurredAt": "2024"}', "line 2: occurred_at: unknown field"),
        ('{"content": "x", "importance": 2}', "line 2: importance: must be"),
        ('{"content": "x", "links": [{"target": "zz"}]}', "line 2: links[0].target: 'zz' is"),
        ('{"id": "a", "content": "x"}', "line 2: id: 'a' is already given on line 1"),
    ],
)
def test_import_jsonl_names_the_line_and_field_of_a_bad_line_and_writes_nothing(
    make_graph: MakeGraph, line: str, where: str
) -> None:
    graph = make_graph()
    with pytest.raises(BadFile) as caught:
        import_jsonl(graph, "ns", ['{"id": "a", "content": "first"}', line])
    assert str(caught.value).startswith(where) and caught.value.line == 2
    assert graph.stats("ns")["memories"] == 0
