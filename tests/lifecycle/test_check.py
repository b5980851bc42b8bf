"""Health check: store <-> index consistency, dangling edges, archive integrity and
orphan archive files, and what ``repair`` fixes (and what it must leave alone)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from hippograph.graph import MemoryGraph
from hippograph.graph.model import AssociationType, Tier
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle.archive import file_name, plan, write_files
from hippograph.lifecycle.check import StubProblem, check
from hippograph.lifecycle.model import LifecycleConfig, Snapshot
from tests.stores import neo4j_session

NS = "agent"
TEXTS = [
    "the quarterly budget review is on friday",
    "alpine lake swimming trip with cold water",
    "bought new hiking boots for the alpine trail",
    "mountain hut dinner of lentil soup",
]


def _healthy(graph: MemoryGraph) -> list[str]:
    ids = [graph.remember(NS, text, session_id="s1").id for text in TEXTS]
    graph.associate(NS, ids[1], ids[2], AssociationType.RELATED_TO)
    return ids


def _archive(graph: MemoryGraph, ids: list[str]) -> str:
    """Archive ``ids`` (set archived, then run the archive job); the file name."""
    moved = graph.store.get(NS, ids, embeddings=True)
    for memory in moved:
        memory.tier = Tier.ARCHIVED
    graph.apply_changes(NS, ChangeBatch(memories=moved))
    result = plan(Snapshot.read(graph.store, NS), LifecycleConfig(min_region=1), 0.0)
    write_files(result, graph.archive_dir(NS))
    graph.apply_changes(NS, result.changes)
    return file_name(ids)


def _seq(graph: MemoryGraph, memory_id: str) -> int:
    return graph.store.seqs_of(NS, [memory_id])[memory_id]


def test_a_healthy_graph_is_clean(make_graph: Any) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    report = check(graph, NS)
    assert report.clean
    assert (report.memories, report.embedded, report.indexed) == (4, 4, 4)
    assert report.stubs == 0 and report.archive_files == 0 and report.edges > 0
    as_dict = json.loads(json.dumps(report.as_dict()))
    assert as_dict["clean"] is True and as_dict["not_indexed"] == []
    # with an archived region it is still clean; stubs are neither indexed nor expected
    _archive(graph, ids[1:3])
    report = check(graph, NS)
    assert report.clean, report
    assert (report.memories, report.embedded, report.indexed, report.stubs) == (4, 2, 2, 2)
    assert report.archive_files == 1


def test_repair_of_a_clean_graph_changes_nothing(make_graph: Any) -> None:
    graph = make_graph()
    _healthy(graph)
    generation = graph.store.generation(NS)
    report = check(graph, NS, repair=True)
    assert report.clean and report.repaired == {"index": 0, "orphan_files": 0}
    assert graph.store.generation(NS) == generation


def test_a_memory_missing_from_a_saved_index_is_found_and_repaired(
    make_graph: Any, tmp_path: Any
) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    # damage the derived index and save it at the current generation, as a bad write of
    # the index file would: reopening trusts it
    ns = graph.namespace(NS)
    ns.index.remove(np.array([_seq(graph, ids[0])], np.int64))
    ns.index_dirty = True
    graph.close()
    graph = make_graph()
    report = check(graph, NS)
    assert not report.clean and report.not_indexed == [ids[0]]
    assert report.indexed == 3 and report.stale_indexed == []
    repaired = check(graph, NS, repair=True)
    assert repaired.clean and repaired.repaired["index"] == 1
    assert _seq(graph, ids[0]) in set(graph.indexed(NS).tolist())
    assert graph.nearest(NS, graph.encoder.encode_one(TEXTS[0]), k=1)[0][0] == ids[0]


def test_a_stub_left_searchable_is_found_and_repaired(make_graph: Any) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    _archive(graph, ids[1:3])
    stub_seq = _seq(graph, ids[1])
    graph.namespace(NS).index.add(np.array([stub_seq], np.int64), graph.encoder.encode([TEXTS[1]]))
    report = check(graph, NS)
    assert report.stale_indexed == [stub_seq] and report.not_indexed == []
    repaired = check(graph, NS, repair=True)
    assert repaired.clean and repaired.repaired["index"] == 1
    assert stub_seq not in set(graph.indexed(NS).tolist())


def test_a_forgotten_memory_left_in_the_index_is_stale(make_graph: Any) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    seq = _seq(graph, ids[3])
    graph.forget(NS, ids[3])
    assert check(graph, NS).clean  # forget takes it out of the index
    index = graph.namespace(NS).index
    index.compact()  # forget only tombstoned it; the seq can be added again after this
    index.add(np.array([seq], np.int64), graph.encoder.encode([TEXTS[3]]))
    assert check(graph, NS).stale_indexed == [seq]
    assert check(graph, NS, repair=True).clean


def _write_dangling_edge(graph: MemoryGraph, store_kind: str, seq: int, dst: int) -> None:
    """An edge from node ``seq`` of NS to ``dst``, a seq no node of NS has, written past
    the store (which never writes one)."""
    if store_kind == "neo4j":
        # in Neo4j an edge always has two ends: the damage is an edge written by hand (in
        # Browser, say) to a node outside the namespace
        with neo4j_session() as session:
            session.run(
                "MATCH (m:Memory {namespace: $ns, seq: $seq}) "
                "CREATE (m)-[:RELATED_TO {weight: 0.5}]->(:Memory {namespace: 'elsewhere', "
                "id: 'x', seq: $dst})",
                ns=NS,
                seq=seq,
                dst=dst,
            ).consume()
        return
    # the SQLite store enforces edge ends with foreign keys; only a damaged file has an
    # edge to a node that does not exist (written here with the checks off)
    db = graph.store._db  # type: ignore[attr-defined]
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute(
        "INSERT INTO associations (namespace, src, dst, type, weight, created_at) "
        "VALUES (?, ?, ?, 'RELATED_TO', 0.5, 0)",
        (NS, seq, dst),
    )
    db.execute("PRAGMA foreign_keys = ON")


def test_dangling_edges_are_reported(make_graph: Any, store_kind: str) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    seq = _seq(graph, ids[0])
    _write_dangling_edge(graph, store_kind, seq, 999_999)
    report = check(graph, NS)
    assert report.dangling_edges == [(seq, 999_999, "RELATED_TO")]
    assert not report.clean
    # not repairable through the store protocol (a missing end has no id): still reported
    assert check(graph, NS, repair=True).dangling_edges == [(seq, 999_999, "RELATED_TO")]


def test_orphan_files_are_reported_and_old_ones_deleted(make_graph: Any) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    name = _archive(graph, ids[1:3])
    directory = graph.archive_dir(NS)
    stray = directory / ("f" * 20 + ".jsonl.gz")
    stray.write_bytes(b"left by a crash before the commit")
    leftover = directory / f".{stray.name}.123.tmp"
    leftover.write_bytes(b"left by a crash in the middle of a write")
    report = check(graph, NS)
    assert report.orphan_files == sorted([leftover.name, stray.name])
    assert report.archive_files == 2 and report.broken_stubs == []
    # young files may belong to an archive run about to commit: kept by default
    young = check(graph, NS, repair=True)
    assert young.repaired["orphan_files"] == 0 and stray.exists()
    old = time.time() - 3600
    os.utime(stray, (old, old))
    os.utime(leftover, (old, old))
    repaired = check(graph, NS, repair=True)
    assert repaired.clean and repaired.repaired["orphan_files"] == 2
    assert sorted(p.name for p in directory.iterdir()) == [name]


def test_broken_stubs_are_reported_never_deleted(make_graph: Any) -> None:
    graph = make_graph()
    ids = _healthy(graph)
    name = _archive(graph, ids[1:3])
    path = graph.archive_dir(NS) / name
    path.write_bytes(path.read_bytes()[:-5])
    report = check(graph, NS, repair=True, orphan_grace=0)
    assert report.broken_stubs == [
        StubProblem(i, name, "checksum mismatch") for i in sorted(ids[1:3])
    ]
    assert report.orphan_files == [] and path.exists()
    assert all(graph.get(NS, i) is not None for i in ids[1:3])
    path.unlink()
    report = check(graph, NS, repair=True, orphan_grace=0)
    assert {p.problem for p in report.broken_stubs} == {"missing file"}
    assert report.as_dict()["broken_stubs"][0]["problem"] == "missing file"


def test_caller_metadata_that_looks_like_a_stub_is_not_a_stub(make_graph: Any) -> None:
    graph = make_graph()
    fake = {"archive": {"file": "a" * 20 + ".jsonl.gz", "sha256": "b" * 64}}
    graph.remember(NS, "a memory whose caller used the archive key", metadata=fake)
    report = check(graph, NS)
    assert report.clean and report.stubs == 0
