"""The Neo4j store without a server: every statement it can issue passes Neo4j's own
Cypher front end, statements take exactly the parameters they declare, and the
conversions between memories and node properties lose nothing.

The store's behaviour against a live server is the contract suite
(``tests/graph/contract``, backend ``neo4j``), run when ``NEO4J_URI`` is set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from hippograph.graph import neo4j_connection, neo4j_statements
from hippograph.graph.model import (
    Association,
    AssociationType,
    Memory,
    MemoryKind,
    StoreUnavailable,
    Tier,
)
from hippograph.graph.neo4j_connection import checked_params
from hippograph.graph.neo4j_records import association_from_record, memory_from_map, memory_row
from hippograph.graph.neo4j_statements import (
    CAPTION_CHARS,
    IMPORTANCE_BANDS,
    LABELS,
    MERGE_EDGES,
    PROPERTY_KEYS,
    RELATIONSHIP_TYPES,
    ROW_KEYS,
    Statement,
)
from hippograph.graph.neo4j_store import Neo4jStore, statements
from tests.stores import neo4j_marks, neo4j_session, open_store

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / "tools" / "lint_cypher.py"
LINTER = ROOT / "tools" / "cypher-lint" / "node_modules" / "@neo4j-cypher" / "language-support"

needs_node = pytest.mark.skipif(
    shutil.which("node") is None,
    reason="node is not installed: Neo4j's Cypher front end runs under node",
)


def _lint_module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(LINT.parent))
    try:
        import lint_cypher

        return lint_cypher
    finally:
        sys.path.remove(str(LINT.parent))


@needs_node
def test_every_statement_passes_neo4j_cypher_front_end_with_zero_problems() -> None:
    assert LINTER.is_dir(), "the Cypher linter is not installed: run `make lint-cypher`"
    done = subprocess.run(
        [sys.executable, str(LINT), "--json"], capture_output=True, text=True, check=False
    )
    report = json.loads(done.stdout)
    problems = [f"{p['statement']}: {p['problem']}" for p in report["problems"]]
    assert problems == []
    assert done.returncode == 0
    names = set(report["names"])
    assert {s.name for s in statements()} <= names
    assert report["checked"] == len(names) >= len(statements())
    assert sum(n.startswith("browser: ") for n in names) >= 5  # the saved queries too


@needs_node
def test_the_linter_reports_each_kind_of_problem_with_the_statement_named() -> None:
    assert LINTER.is_dir(), "the Cypher linter is not installed: run `make lint-cypher`"
    lint = _lint_module()
    bad = [
        lint.Checked("typo_label", "MATCH (m:Memry) RETURN m", frozenset()),
        lint.Checked("typo_type", "MATCH ()-[r:SIMILAR]->() RETURN r", frozenset()),
        lint.Checked("typo_key", "MATCH (m:Memory) RETURN m.contnt", frozenset()),
        lint.Checked("undeclared", "MATCH (m:Memory {id: $id}) RETURN m", frozenset()),
        lint.Checked("unused", "MATCH (m:Memory) RETURN m", frozenset({"id"})),
        lint.Checked("syntax", "MATCH (m:Memory RETURN m", frozenset()),
        lint.Checked("procedure", "CALL db.index.fulltext.queryNode('x', 'y')", frozenset()),
        lint.Checked(
            "deprecated", "UNWIND [1] AS x CALL { WITH x RETURN x AS y } RETURN y", frozenset()
        ),
    ]
    reported = {name for name, _ in lint.lint(bad)}
    assert reported == {c.name for c in bad}
    good = [lint.Checked("fine", "MATCH (m:Memory {id: $id}) RETURN m.content", frozenset({"id"}))]
    assert lint.lint(good) == []


def test_statements_are_named_constants_declaring_exactly_the_parameters_they_use() -> None:
    found = statements()
    names = [s.name for s in found]
    assert len(names) == len(set(names)) > 40
    for s in found:
        used = set(re.findall(r"\$(\w+)", s.cypher))
        assert used == set(s.params), s.name
    assert set(MERGE_EDGES) == set(AssociationType)  # one per relationship type
    assert {t.value.capitalize() for t in Tier} <= set(LABELS)
    assert {"Memory", "Entity"} <= set(LABELS)


def test_no_statement_is_built_from_values_at_run_time() -> None:
    # The store runs statements only through its connection's helpers (a read or write
    # of one statement, a transaction of several), which check the parameters against
    # the declaration, and the parameterless readiness ping; nothing else in the Neo4j
    # modules calls run(), and nothing goes around them through execute_query.
    modules = sorted(Path(neo4j_connection.__file__).parent.glob("neo4j_*.py"))
    assert len(modules) >= 6
    source = "\n".join(path.read_text() for path in modules)
    runs = re.findall(r"\b(?:tx|session)\.run\(([^,)]*)", source)
    assert sorted(runs) == ["PING.cypher", "query", "statement.cypher", "statement.cypher"]
    assert source.count("Query(statement.cypher, timeout=self._tx_timeout)") == 1
    assert not neo4j_statements.PING.params
    assert "execute_query(" not in source
    statement = Statement("s", "RETURN $a", frozenset({"a"}))
    with pytest.raises(TypeError, match="takes \\['a'\\], got \\['b'\\]"):
        checked_params(statement, {"b": 1})
    assert checked_params(statement, {"a": 1}) == {"a": 1}


def test_statements_lists_every_statement_of_every_neo4j_module() -> None:
    # A statement constant (or a dict or tuple of them) in any graph/neo4j_*.py module
    # is one the linter checks and the suite must run: statements() must list it.
    import importlib

    listed = {id(s) for s in statements()}
    folder = Path(neo4j_connection.__file__).parent
    for path in sorted(folder.glob("neo4j_*.py")):
        module = importlib.import_module(f"hippograph.graph.{path.stem}")
        for name, value in vars(module).items():
            items = value.values() if isinstance(value, dict) else value
            found = [value] if isinstance(value, Statement) else []
            if isinstance(value, dict | tuple):
                found = [s for s in items if isinstance(s, Statement)]
            assert all(id(s) in listed for s in found), (path.name, name)


def test_memory_properties_round_trip_every_field_and_vector_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    original = Memory(
        id="m-1",
        namespace="ns",
        content="Zoë visited Łódź,\n  café ☕ — and then a much longer tail of text here",
        kind=MemoryKind.SKILL,
        tier=Tier.EPISODIC,
        session_id="s-α",
        created_at=datetime(2024, 3, 9, 17, 45, 12, 345678, tzinfo=UTC),
        occurred_at=datetime(
            2023, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))
        ),
        last_accessed_at=datetime(2024, 4, 1, tzinfo=UTC),
        access_count=7,
        importance=0.37,
        metadata={"nested": {"list": [1, 2.5, None, True, "ß"]}},
        embedding=rng.standard_normal(384).astype(np.float32),
        passages=rng.standard_normal((3, 384)).astype(np.float32),
        context_embedding=rng.standard_normal(384).astype(np.float32),
    )
    row = memory_row(original, seq=42)
    assert set(row) <= set(PROPERTY_KEYS)
    assert row["caption"] == "Zoë visited Łódź, café ☕ — and then a m…"
    assert len(row["caption"]) == CAPTION_CHARS
    # plain values only (vectors are a list subclass the store packs as float lists)
    assert all(isinstance(v, str | int | float | bool | list | None) for v in row.values())
    assert row["created_at"] == "2024-03-09T17:45:12.345678+00:00"  # datetime() in Cypher
    assert all(type(x) is float for x in row["embedding"])  # no numpy scalars to the driver
    back = memory_from_map({**row, "namespace": "ns"})
    for name in ("id", "content", "kind", "tier", "session_id", "created_at", "occurred_at"):
        assert getattr(back, name) == getattr(original, name), name
    for name in ("last_accessed_at", "access_count", "importance", "content_hash", "metadata"):
        assert getattr(back, name) == getattr(original, name), name
    for name in ("embedding", "passages", "context_embedding"):
        got, want = getattr(back, name), getattr(original, name)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes(), name
    single = memory_row(Memory(id="s", namespace="ns", content="one"), seq=1)
    assert single["passages"] is None and single["passage_count"] == 0


def test_row_keys_the_statements_read_are_declared() -> None:
    keys = set(PROPERTY_KEYS) | set(ROW_KEYS)
    for s in statements():
        for key in re.findall(r"\brow\.(\w+)", s.cypher):
            assert key in keys, (s.name, key)


def test_association_records_convert_with_every_property() -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    record = {
        "source": "a",
        "target": "entity:zoe",
        "type": "MENTIONS",
        "weight": 0.6,
        "created_at": created,
        "last_activated_at": None,
        "activation_count": 0,
        "explicit": False,
    }
    assert association_from_record(record) == Association(
        "a", "entity:zoe", AssociationType.MENTIONS, 0.6, created
    )


def test_an_unreachable_server_is_a_clear_error_naming_the_variables() -> None:
    # Port 9 (discard) on loopback: refused at once, no server needed.
    with pytest.raises(StoreUnavailable, match=r"(?s)NEO4J_URI.*Connection refused"):
        Neo4jStore("bolt://127.0.0.1:9")


def test_settings_choose_neo4j_when_neo4j_uri_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hippograph.api.settings import Settings, open_store
    from hippograph.graph import SQLiteStore

    monkeypatch.delenv("NEO4J_URI", raising=False)
    store = open_store(Settings(data_dir=tmp_path))
    assert isinstance(store, SQLiteStore)
    store.close()
    monkeypatch.setenv("NEO4J_URI", "bolt://127.0.0.1:9")
    monkeypatch.setenv("NEO4J_PASSWORD", "not-printed")
    with pytest.raises(StoreUnavailable, match=re.escape("bolt://127.0.0.1:9")) as raised:
        open_store(Settings(data_dir=tmp_path))
    assert "not-printed" not in str(raised.value)


@pytest.mark.parametrize("store_kind", [pytest.param("neo4j", marks=neo4j_marks())], indirect=True)
def test_memory_graph_remembers_and_recalls_over_neo4j(tmp_path: Path, store_kind: str) -> None:
    from hippograph.embeddings import HashingEncoder
    from hippograph.graph import MemoryGraph

    store = open_store(store_kind, tmp_path)
    namespace = f"live-{os.getpid()}-{datetime.now(UTC).timestamp():.0f}"
    with MemoryGraph(tmp_path, encoder=HashingEncoder(), store=store) as graph:
        graph.remember(namespace, "Alice adopted a grey cat named Pixel", session_id="s")
        graph.remember(namespace, "Pixel likes to sleep on the piano", session_id="s")
        found = graph.recall(namespace, "Alice's cat", k=2, learn=False)
        assert {r.memory.content for r in found} >= {"Alice adopted a grey cat named Pixel"}
        stats = graph.stats(namespace)
        assert stats["associations"]["FOLLOWS"] == 1


def test_the_browser_style_parses_as_browser_does_and_names_only_model_labels() -> None:
    # Browser's parseGrass: `selector { name: value; ... }`; text between rules would be
    # glued to the next selector, and a value holding a colon is dropped.
    text = (ROOT / "graph" / "browser" / "hippograph.grass").read_text(encoding="utf-8")
    rules = re.findall(r"([^{}]*)\{((?:[^{}'\"]|'[^']*'|\"[^\"]*\")*)\}", text)
    assert "".join(f"{s}{{{b}}}" for s, b in rules).split() == text.replace("\n", " ").split()
    selectors = {s.strip(): b for s, b in rules}
    assert {"node", "relationship"} <= set(selectors)
    for selector, body in selectors.items():
        kind, _, name = selector.partition(".")
        assert kind in {"node", "relationship"}, selector
        if name:
            model = LABELS if kind == "node" else RELATIONSHIP_TYPES
            assert name in model, selector
        for declaration in filter(str.strip, body.split(";")):
            assert declaration.count(":") == 1, (selector, declaration)
    for tier in Tier:
        assert "color" in selectors[f"node.{tier.value.capitalize()}"]
    for band, _ in IMPORTANCE_BANDS:
        assert "diameter" in selectors[f"node.{band}"]
    assert "{caption}" in selectors["node.Memory"]
    assert "{weight}" in selectors["relationship"]


def test_an_archived_stub_carries_when_and_where_for_the_browser_query() -> None:
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    stub = Memory(
        id="s",
        namespace="ns",
        content="stub",
        tier=Tier.ARCHIVED,
        metadata={"archive": {"file": "f.jsonl.gz", "sha256": "0" * 64, "at": at.isoformat()}},
    )
    row = memory_row(stub, seq=3)
    assert row["archived_at"] == at.isoformat() and row["archive_run"] == "f.jsonl.gz"
    live = memory_row(replace_embedding(stub), seq=4)
    assert live["archived_at"] is None and live["archive_run"] is None


def replace_embedding(memory: Memory) -> Memory:
    from dataclasses import replace

    return replace(memory, embedding=np.ones(4, np.float32) / 2)


@pytest.mark.parametrize("store_kind", [pytest.param("neo4j", marks=neo4j_marks())], indirect=True)
def test_relationships_drawn_by_hand_in_the_browser_are_not_associations(
    tmp_path: Path, store_kind: str
) -> None:
    """Someone exploring in Neo4j Browser draws relationships of their own: another type
    between two memories, one of hippograph's types without a weight, one to a node of
    their own. Loading the graph, listing associations, counting and exporting leave
    them out instead of failing, and recall still works."""
    import io

    from hippograph.embeddings import HashingEncoder
    from hippograph.graph import MemoryGraph
    from hippograph.graph.store import EdgeColumns
    from hippograph.graph.transfer import export_namespace
    from hippograph.lifecycle.check import check

    store = open_store(store_kind, tmp_path)
    with MemoryGraph(tmp_path, encoder=HashingEncoder(), store=store) as graph:
        graph.remember("ns", "Alice adopted a grey cat named Pixel", id="a", session_id="s")
        graph.remember("ns", "Pixel likes to sleep on the piano", id="b", session_id="s")
        before = store.load_edges("ns")
        stats = graph.stats("ns")["associations"]
        exported = io.StringIO()
        export_namespace(graph, "ns", exported)
        associations = store.associations("ns", "a")
        with neo4j_session() as session:
            session.run(
                "MATCH (a:Memory {namespace: 'ns', id: 'a'}), "
                "(b:Memory {namespace: 'ns', id: 'b'}) "
                "CREATE (a)-[:LIKES {since: 2020}]->(b), (b)-[:RELATED_TO]->(a), "
                "(a)-[:RELATED_TO {weight: 0.9}]->(:Note {namespace: 'ns', text: 'mine'})"
            ).consume()
        after = store.load_edges("ns")

        def triples(cols: EdgeColumns) -> list[tuple[int, int, int]]:
            ends = zip(cols.src.tolist(), cols.dst.tolist(), cols.type.tolist(), strict=True)
            return sorted(ends)

        assert triples(after) == triples(before)
        assert store.associations("ns", "a") == associations
        assert graph.stats("ns")["associations"] == stats
        again = io.StringIO()
        export_namespace(graph, "ns", again)
        # the same records (the header line carries the time of the export)
        assert again.getvalue().splitlines()[1:] == exported.getvalue().splitlines()[1:]
        graph.rebuild("ns")  # the view and indexes from the store, with the drawn ones there
        found = graph.recall("ns", "grey cat", k=2, learn=False)
        assert found and found[0].memory.id == "a"
        report = check(graph, "ns")
        assert report.clean and report.dangling_edges == [], report
