"""Archive: planning regions of cold memories into files and stubs, the atomic file
writes, a crash between the files and the commit, rehydration and archive search."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hippograph.graph import MemoryGraph
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    BadInput,
    Memory,
    MemoryKind,
    Tier,
    from_epoch,
)
from hippograph.graph.store import ChangeBatch
from hippograph.lifecycle.archive import (
    ArchiveCorrupt,
    ArchiveRef,
    archive_ref,
    caption,
    file_name,
    plan,
    read_archive,
    recall_archived,
    rehydrate,
    search,
    stubs,
    write_files,
)
from hippograph.lifecycle.archived_recall import recall_with_archive
from hippograph.lifecycle.check import check
from hippograph.lifecycle.model import DAY, LifecycleConfig, Plan, Snapshot
from hippograph.lifecycle.runner import run_jobs

NOW = 1_750_000_000.0
NS = "agent"
RELATED, SIMILAR, FOLLOWS = (
    AssociationType.RELATED_TO,
    AssociationType.SIMILAR_TO,
    AssociationType.FOLLOWS,
)
CONFIG = LifecycleConfig()

# -- plan on hand-built snapshots ------------------------------------------------------------


def _cold_graph(snapshot_builder: Any) -> Snapshot:
    """a-b-c archived and linked (one region), d archived alone, e hot and linked to c,
    f an archived concept linked to a, g a stub already; a and d mention one entity."""
    b = snapshot_builder(NOW, namespace=NS)
    for name in "abcd":
        b.memory(name, f"cold memory {name}", tier=Tier.ARCHIVED, metadata={"topic": name})
    b.memory("e", "hot memory e", tier=Tier.WORKING)
    b.memory("f", "concept f", tier=Tier.ARCHIVED, kind=MemoryKind.CONCEPT)
    stub_ref = {"file": "0" * 20 + ".jsonl.gz", "sha256": "0" * 64}
    b.memory("g", "stub g", tier=Tier.ARCHIVED, vector=None, metadata={"archive": stub_ref})
    b.edge("a", "b", RELATED, 0.9)
    b.edge("b", "a", SIMILAR, 0.7)
    b.edge("b", "c", SIMILAR, 0.6)
    b.edge("c", "e", FOLLOWS, 0.8)  # boundary
    b.edge("a", "f", AssociationType.PART_OF, 1.0)  # boundary: concepts are never archived
    b.edge("d", "g", RELATED, 0.5)  # boundary: a stub is not a candidate
    x = b.entity("paris", "Paris")
    b.edge("a", x, AssociationType.MENTIONS, 0.6)
    b.edge("d", x, AssociationType.MENTIONS, 0.6)
    return b.build()


def _by_name(result: Plan) -> dict[str, bytes]:
    return dict(result.files)


def test_regions_are_components_of_archived_memories(snapshot_builder: Any) -> None:
    result = plan(_cold_graph(snapshot_builder), CONFIG, NOW)
    abc, d = file_name("abc"), file_name("d")
    assert sorted(_by_name(result)) == sorted([abc, d])
    files = _by_name(result)
    assert result.counts == {
        "regions": 2,
        "memories": 4,
        "edges": 3,
        "bytes": len(files[abc]) + len(files[d]),
    }
    stubs = {m.id: m for m in result.changes.memories}
    assert sorted(stubs) == ["a", "b", "c", "d"]
    assert stubs["a"].metadata == {
        "archive": {
            "file": abc,
            "sha256": hashlib.sha256(files[abc]).hexdigest(),
            "at": from_epoch(NOW).isoformat(),  # when it was archived
        }
    }
    assert stubs["d"].metadata["archive"]["file"] == d
    # only the internal edges go; c->e, a->f, d->g and the MENTIONS edges stay
    assert sorted(result.changes.removed_edges) == sorted(
        [("a", "b", RELATED), ("b", "a", SIMILAR), ("b", "c", SIMILAR)]
    )
    assert not (result.changes.edges or result.changes.removed_memories)
    assert not (result.changes.new_memories or result.changes.aliases)


def test_a_stub_keeps_a_caption_and_its_numbers_but_no_vectors(snapshot_builder: Any) -> None:
    b = snapshot_builder(NOW, namespace=NS)
    long_text = "word " * 40
    b.memory(
        "a",
        long_text,
        tier=Tier.ARCHIVED,
        access_count=7,
        importance=0.3,
        accessed_days_ago=90,
        metadata={"source": "chat"},
    )
    original = b.memories[0]
    original.passages = np.eye(2, dtype=np.float32)
    original.context_embedding = np.array([0.0, 1.0], np.float32)
    stub = plan(b.build(), CONFIG, NOW).changes.memories[0]
    assert stub.content == ("word " * 16).strip() + "…"
    assert len(stub.content) == 80
    assert stub.embedding is None and stub.passages is None and stub.context_embedding is None
    assert set(stub.metadata) == {"archive"}
    assert archive_ref(stub) == ArchiveRef(
        stub.metadata["archive"]["file"], stub.metadata["archive"]["sha256"]
    )
    for name in (
        "id",
        "kind",
        "tier",
        "created_at",
        "occurred_at",
        "last_accessed_at",
        "access_count",
        "importance",
        "content_hash",
    ):
        assert getattr(stub, name) == getattr(original, name), name


def test_the_file_holds_full_records_and_internal_edges(snapshot_builder: Any) -> None:
    snapshot = _cold_graph(snapshot_builder)
    result = plan(snapshot, CONFIG, NOW)
    name = file_name("abc")
    lines = gzip.decompress(_by_name(result)[name]).decode().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "hippograph-archive" and header["dim"] == 2
    assert [json.loads(line)["record"] for line in lines[1:]] == ["memory"] * 3 + [
        "association"
    ] * 3
    content = read_archive(_by_name(result)[name], NS)
    originals = {m.id: m for m in snapshot.memories}
    assert sorted(content.memories) == ["a", "b", "c"]
    for memory_id, record in content.memories.items():
        original = originals[memory_id]
        assert record.content == original.content
        assert record.metadata == original.metadata
        assert record.embedding is not None and original.embedding is not None
        np.testing.assert_array_equal(record.embedding, original.embedding)
    assert sorted((e.source, e.target, e.type, e.weight) for e in content.associations) == [
        ("a", "b", RELATED, 0.9),
        ("b", "a", SIMILAR, 0.7),
        ("b", "c", SIMILAR, 0.6),
    ]


def test_min_region_skips_small_regions(snapshot_builder: Any) -> None:
    result = plan(_cold_graph(snapshot_builder), LifecycleConfig(min_region=2), NOW)
    assert [name for name, _ in result.files] == [file_name("abc")]
    assert result.counts["memories"] == 3
    result = plan(_cold_graph(snapshot_builder), LifecycleConfig(min_region=4), NOW)
    assert result.empty and result.files == [] and result.counts["regions"] == 0


def test_the_bytes_depend_on_the_state_only(snapshot_builder: Any) -> None:
    snapshot = _cold_graph(snapshot_builder)
    first = plan(snapshot, CONFIG, NOW)
    later = plan(snapshot, CONFIG, NOW + 30 * DAY)
    shuffled = Snapshot(
        snapshot.namespace,
        list(reversed(snapshot.memories)),
        list(reversed(snapshot.associations)),
        snapshot.entities,
    )
    assert first.files == later.files == plan(shuffled, CONFIG, NOW).files
    # a changed member changes the bytes, not the name
    snapshot.memories[0].access_count += 1
    changed = plan(snapshot, CONFIG, NOW)
    assert [n for n, _ in changed.files] == [n for n, _ in first.files]
    assert changed.files != first.files


def test_planning_after_apply_is_empty(snapshot_builder: Any, apply_plan: Any) -> None:
    snapshot = _cold_graph(snapshot_builder)
    after = apply_plan(snapshot, plan(snapshot, CONFIG, NOW).changes)
    again = plan(after, CONFIG, NOW)
    assert again.empty and again.files == []


def test_only_archived_non_concept_memories_with_vectors_are_candidates(
    snapshot_builder: Any,
) -> None:
    b = snapshot_builder(NOW, namespace=NS)
    b.memory("w", tier=Tier.WORKING)
    b.memory("e", tier=Tier.EPISODIC)
    b.memory("s", tier=Tier.SEMANTIC)
    b.memory("c", tier=Tier.ARCHIVED, kind=MemoryKind.CONCEPT)
    b.memory("stub", tier=Tier.ARCHIVED, vector=None)
    assert plan(b.build(), CONFIG, NOW).empty


def test_other_compressions_are_refused(snapshot_builder: Any) -> None:
    with pytest.raises(BadInput, match="compression"):
        plan(_cold_graph(snapshot_builder), LifecycleConfig(compression="zstd"), NOW)


def test_caption_and_file_name() -> None:
    assert caption("  a\n b  ") == "a b"
    assert caption("x" * 81) == "x" * 80 + "…"
    assert file_name(["b", "a"]) == file_name(["a", "b"])
    assert file_name(["a", "b"]).endswith(".jsonl.gz") and len(file_name(["a"])) == 29


def test_write_files_writes_whole_files_and_no_temporaries(
    snapshot_builder: Any, tmp_path: Path
) -> None:
    result = plan(_cold_graph(snapshot_builder), CONFIG, NOW)
    directory = tmp_path / "archive"
    write_files(result, directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted(_by_name(result))
    for name, data in result.files:
        assert (directory / name).read_bytes() == data
    write_files(result, directory)  # again: same files, nothing left over
    assert sorted(p.name for p in directory.iterdir()) == sorted(_by_name(result))
    with pytest.raises(BadInput):
        write_files(Plan("archive", files=[("../escape.jsonl.gz", b"")]), directory)


# -- end to end through a MemoryGraph --------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TEXTS = {
    "a1": "alpine lake swimming trip with cold water",
    "a2": "bought new hiking boots for the alpine trail",
    "a3": "mountain hut dinner of lentil soup",
    "h1": "planning the quarterly budget review",
}


def _seed(graph: MemoryGraph) -> None:
    """a1-a2-a3 archived and linked (one region); h1 hot, linked both ways to the region;
    a1 mentions an entity. a1 has sentence passages and a2 a context vector."""
    enc = graph.encoder
    memories = []
    for memory_id, text in TEXTS.items():
        memories.append(
            Memory(
                id=memory_id,
                namespace=NS,
                content=text,
                tier=Tier.WORKING if memory_id == "h1" else Tier.ARCHIVED,
                created_at=T0,
                access_count=2,
                importance=0.2,
                metadata={"origin": memory_id},
                embedding=enc.encode_one(text),
            )
        )
    memories[0].passages = enc.encode(["alpine lake swimming", "trip with cold water"])
    memories[1].context_embedding = enc.encode_one("alpine lake and boots")
    edges = [
        Association("a1", "a2", RELATED, 0.9, created_at=T0),
        Association("a2", "a3", SIMILAR, 0.7, created_at=T0),
        Association("h1", "a1", RELATED, 0.5, created_at=T0),
        Association("a3", "h1", FOLLOWS, 0.8, created_at=T0),
        Association("a1", ENTITY_PREFIX + "alps", AssociationType.MENTIONS, 0.6, created_at=T0),
    ]
    graph.restore(NS, memories, {"alps": "Alps"}, edges)


def _run(graph: MemoryGraph, *, apply: bool = True) -> Plan:
    result = plan(Snapshot.read(graph.store, NS), CONFIG, NOW)
    write_files(result, graph.archive_dir(NS))
    if apply and not result.empty:
        graph.apply_changes(NS, result.changes)
    return result


def _edges(graph: MemoryGraph) -> set[tuple[str, str, str]]:
    return {
        (e.source, e.target, e.type.value)
        for chunk in graph.store.iter_associations(NS)
        for e in chunk
    }


def _seq(graph: MemoryGraph, memory_id: str) -> int:
    return graph.store.seqs_of(NS, [memory_id])[memory_id]


def test_archiving_a_region_leaves_stubs_and_boundary_edges(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    assert {_seq(graph, i) for i in ("a1", "a2", "a3")} <= set(graph.indexed(NS).tolist())
    result = _run(graph)
    assert result.counts["regions"] == 1 and result.counts["memories"] == 3
    assert result.counts["edges"] == 2

    name = file_name(["a1", "a2", "a3"])
    path = graph.archive_dir(NS) / name
    stub = graph.get(NS, "a1")
    assert stub is not None and stub.tier == Tier.ARCHIVED
    assert stub.content == TEXTS["a1"]  # short texts are their own caption
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert {k: v for k, v in stub.metadata["archive"].items() if k != "at"} == {
        "file": name,
        "sha256": digest,
    }
    assert set(stub.metadata) == {"archive"}
    for memory in graph.store.get(NS, ["a1", "a2", "a3"], embeddings=True):
        assert memory.embedding is None and memory.passages is None
        assert memory.context_embedding is None
    # the index no longer returns them; the hot memory is still there
    indexed = set(graph.indexed(NS).tolist())
    assert indexed == {_seq(graph, "h1")}
    assert [i for i, _ in graph.nearest(NS, graph.encoder.encode_one(TEXTS["a2"]), k=5)] == ["h1"]
    # internal edges gone, boundary edges (memory and entity) kept: nothing dangles
    assert _edges(graph) == {
        ("h1", "a1", "RELATED_TO"),
        ("a3", "h1", "FOLLOWS"),
        ("a1", "entity:alps", "MENTIONS"),
    }
    assert check(graph, NS).clean


def test_archiving_twice_is_archiving_once(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    _run(graph)
    files = {p.name: p.read_bytes() for p in graph.archive_dir(NS).iterdir()}
    edges = _edges(graph)
    again = _run(graph)
    assert again.empty and again.files == [] and again.counts["memories"] == 0
    assert {p.name: p.read_bytes() for p in graph.archive_dir(NS).iterdir()} == files
    assert _edges(graph) == edges


def test_a_crash_between_the_files_and_the_commit_is_rerun_to_the_same_end(
    make_graph: Any, tmp_path: Path
) -> None:
    graph = make_graph()
    _seed(graph)
    crashed = _run(graph, apply=False)  # files written, the store never committed
    graph.close()
    graph = make_graph()
    untouched = graph.get(NS, "a1")
    assert untouched is not None and untouched.content == TEXTS["a1"]
    assert untouched.tier == Tier.ARCHIVED and not untouched.metadata.get("archive")
    report = check(graph, NS)
    assert report.orphan_files == [name for name, _ in crashed.files]
    rerun = plan(Snapshot.read(graph.store, NS), CONFIG, NOW)
    assert rerun.files == crashed.files  # same names, same bytes: same checksums
    write_files(rerun, graph.archive_dir(NS))
    graph.apply_changes(NS, rerun.changes)
    assert check(graph, NS).clean
    assert plan(Snapshot.read(graph.store, NS), CONFIG, NOW).empty
    assert rehydrate(graph, NS, ["a1"]) == ["a1"]  # the file the crash left is the good one


def test_rehydrate_brings_back_the_full_record_and_its_edges(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    before = {m.id: m for m in graph.store.get(NS, list(TEXTS), embeddings=True)}
    _run(graph)
    directory = graph.archive_dir(NS)
    assert rehydrate(graph, NS, ["a1", "h1", "a1", "missing"]) == ["a1"]
    back = graph.store.get(NS, ["a1"], embeddings=True)[0]
    original = before["a1"]
    assert back.tier == Tier.WORKING
    assert (back.content, back.metadata, back.access_count, back.importance) == (
        original.content,
        original.metadata,
        original.access_count,
        original.importance,
    )
    assert back.embedding is not None and back.passages is not None
    np.testing.assert_array_equal(back.embedding, original.embedding)
    np.testing.assert_array_equal(back.passages, original.passages)
    assert _seq(graph, "a1") in set(graph.indexed(NS).tolist())
    assert graph.nearest(NS, graph.encoder.encode_one(TEXTS["a1"]), k=1)[0][0] == "a1"
    # its internal edge to the stub a2 is back; a2-a3 stays in the file
    assert ("a1", "a2", "RELATED_TO") in _edges(graph)
    assert ("a2", "a3", "SIMILAR_TO") not in _edges(graph)
    # a2 and a3 are still stubs of the file, so it stays
    assert (directory / file_name(["a1", "a2", "a3"])).exists()
    assert check(graph, NS).clean
    # the rest: the context vector comes back, the file goes, nothing is orphaned
    assert rehydrate(graph, NS, ["a3", "a2"]) == ["a3", "a2"]
    a2 = graph.store.get(NS, ["a2"], embeddings=True)[0]
    assert a2.context_embedding is not None
    np.testing.assert_array_equal(a2.context_embedding, before["a2"].context_embedding)
    assert ("a2", "a3", "SIMILAR_TO") in _edges(graph)
    assert list(directory.iterdir()) == []
    assert check(graph, NS).clean
    assert rehydrate(graph, NS, ["a1", "a2"]) == []  # not stubs any more


def test_rehydrate_skips_edges_to_forgotten_memories(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    _run(graph)
    assert graph.forget(NS, "a2")
    assert rehydrate(graph, NS, ["a1", "a3"]) == ["a1", "a3"]
    assert not any("a2" in (s, t) for s, t, _ in _edges(graph))
    assert list(graph.archive_dir(NS).iterdir()) == []  # no stub refers to it any more
    assert check(graph, NS).clean


def test_search_finds_archived_memories_and_recall_archived_brings_them_back(
    make_graph: Any,
) -> None:
    graph = make_graph()
    _seed(graph)
    _run(graph)
    hits = search(graph, NS, graph.encoder.encode_one(TEXTS["a2"]), k=2)
    assert hits[0][0] == "a2" and hits[0][1] == pytest.approx(1.0, abs=1e-6)
    assert len(hits) == 2 and hits[1][1] <= hits[0][1]
    assert all(i != "h1" for i, _ in search(graph, NS, graph.encoder.encode_one("budget"), k=5))
    assert recall_archived(graph, NS, TEXTS["a2"], k=1) == ["a2"]
    found = [r.memory.id for r in graph.recall(NS, TEXTS["a2"], k=3)]
    assert found[0] == "a2"
    # a2 is hot now: the archive search no longer offers it
    assert "a2" not in [i for i, _ in search(graph, NS, graph.encoder.encode_one("boots"), k=5)]
    with pytest.raises(BadInput):
        search(graph, NS, np.zeros(64, np.float32), k=1)


def test_recall_with_archive_refuses_bad_inputs_before_anything_leaves_the_archive(
    make_graph: Any,
) -> None:
    """The one entry point of the CLI and GraphQL: a bad k, hops or query is refused
    with every stub still a stub; a good one rehydrates, then recalls."""
    graph = make_graph()
    _seed(graph)
    _run(graph)
    stubs_before = stubs(graph, NS)
    for bad in ({"k": 0}, {"k": 10_000}, {"hops": -1}, {"tiers": ["nowhere"]}):
        with pytest.raises(BadInput):
            recall_with_archive(graph, NS, TEXTS["a2"], **bad)
    with pytest.raises(BadInput):
        recall_with_archive(graph, NS, "   ")
    assert stubs(graph, NS) == stubs_before
    found = recall_with_archive(graph, NS, TEXTS["a2"], k=1, tiers=[Tier.ARCHIVED], learn=False)
    assert [r.memory.id for r in found] == ["a2"]
    assert found[0].memory.tier == Tier.WORKING


def test_a_corrupt_file_is_refused_and_reported(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    _run(graph)
    path = graph.archive_dir(NS) / file_name(["a1", "a2", "a3"])
    data = bytearray(path.read_bytes())
    data[-12] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveCorrupt, match="checksum mismatch") as caught:
        rehydrate(graph, NS, ["a1"])
    assert caught.value.problem == "checksum mismatch"
    stub = graph.get(NS, "a1")
    assert stub is not None and archive_ref(stub) is not None  # nothing changed
    assert search(graph, NS, graph.encoder.encode_one(TEXTS["a1"]), k=3) == []
    report = check(graph, NS, repair=True, orphan_grace=0)
    assert [(p.id, p.problem) for p in report.broken_stubs] == [
        ("a1", "checksum mismatch"),
        ("a2", "checksum mismatch"),
        ("a3", "checksum mismatch"),
    ]
    assert path.exists() and graph.get(NS, "a1") is not None  # reported, not deleted
    path.unlink()
    with pytest.raises(ArchiveCorrupt, match="missing file"):
        rehydrate(graph, NS, ["a2"])
    assert {p.problem for p in check(graph, NS).broken_stubs} == {"missing file"}


def test_rehydrate_refuses_a_file_without_the_stubs_record(make_graph: Any) -> None:
    graph = make_graph()
    _seed(graph)
    _run(graph)
    path = graph.archive_dir(NS) / file_name(["a1", "a2", "a3"])
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    kept = [line for line in lines if '"id":"a3"' not in line]
    data = gzip.compress("".join(kept).encode(), mtime=0)
    path.write_bytes(data)
    # the stubs' checksum now points at the edited bytes, as if they had been archived so
    digest = hashlib.sha256(data).hexdigest()
    stubs = graph.store.get(NS, ["a1", "a2", "a3"], embeddings=True)
    for stub in stubs:
        stub.metadata = {"archive": {"file": path.name, "sha256": digest}}
    graph.apply_changes(NS, ChangeBatch(memories=stubs))
    with pytest.raises(ArchiveCorrupt, match="record missing"):
        rehydrate(graph, NS, ["a1", "a3"])
    assert archive_ref(graph.store.get(NS, ["a1"])[0]) is not None
    assert [(p.id, p.problem) for p in check(graph, NS).broken_stubs] == [("a3", "record missing")]


def test_recall_survives_stubs_that_match_the_query_lexically(make_graph: Any) -> None:
    """A stub keeps its caption in the full-text index but has no vector: recall must
    neither fail on it nor return it. Recall limited to the hot tiers leaves the archive
    alone; default recall brings the matching archived memories back whole (rehydrated
    through the archive index) rather than their stubs."""
    graph = make_graph()
    _seed(graph)
    _run(graph)
    hot = [Tier.WORKING, Tier.EPISODIC, Tier.SEMANTIC]
    found = [r.memory.id for r in graph.recall(NS, "alpine trail and mountain hut", k=3, tiers=hot)]
    assert not {"a1", "a2", "a3"} & set(found)
    assert all(archive_ref(m) is not None for m in graph.store.get(NS, ["a1", "a2", "a3"]))
    default = graph.recall(NS, "alpine trail and mountain hut", k=3)
    back = [r for r in default if r.memory.id in {"a1", "a2", "a3"}]
    assert back, "default recall consults the archive"
    for r in back:
        assert archive_ref(r.memory) is None and r.memory.tier == Tier.WORKING
        assert not r.memory.content.endswith("…")  # the whole content, not the caption


def test_the_runner_writes_the_files_then_commits_and_a_dry_run_changes_nothing(
    make_graph: Any,
) -> None:
    graph = make_graph()
    _seed(graph)
    dry = run_jobs(graph, NS, ["archive"], now=NOW, dry_run=True)
    assert dry.jobs[0].counts["memories"] == 3
    assert list(graph.archive_dir(NS).iterdir()) == []
    assert archive_ref(graph.store.get(NS, ["a1"])[0]) is None
    done = run_jobs(graph, NS, ["archive"], now=NOW)
    assert done.jobs[0].counts["memories"] == 3
    assert [p.name for p in graph.archive_dir(NS).iterdir()] == [file_name(["a1", "a2", "a3"])]
    assert check(graph, NS).clean
    assert run_jobs(graph, NS, ["archive"], now=NOW).jobs[0].counts["memories"] == 0


def test_writing_files_clears_temporary_files_a_killed_run_left(tmp_path: Path) -> None:
    from hippograph.lifecycle.archive import write_files
    from hippograph.lifecycle.model import Plan

    left = tmp_path / ".abc.jsonl.gz.999999.tmp"
    left.write_bytes(b"half")
    name = "0" * 20 + ".jsonl.gz"
    write_files(Plan(job="archive", files=[(name, b"data")]), tmp_path)
    assert not left.exists()
    assert (tmp_path / name).read_bytes() == b"data"
