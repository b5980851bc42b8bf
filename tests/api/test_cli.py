"""The ``hippograph`` CLI, run in-process through ``main`` and as real processes.

Every command runs with the hashing encoder (``HIPPOGRAPH_ENCODER=hashing``) except one
end-to-end test over the real model. Bad input must exit 2 with one line naming the
field (and the line of a file), and must leave the namespace's stats unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import hippograph.api.settings
from hippograph.api.cli import main
from hippograph.api.settings import STORE_VARIABLES, Settings
from hippograph.embeddings import HashingEncoder
from hippograph.graph import AssociationType, GraphConfig, MemoryGraph
from tests.stores import store_env

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


CLI = Callable[..., Run]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No HIPPOGRAPH_* setting and no Neo4j variable leaks in from the machine running
    the tests: the store is the SQLite file unless a test asks for ``store_kind``."""
    for name in list(os.environ):
        if name.startswith("HIPPOGRAPH_") or name in STORE_VARIABLES:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(
    store_kind: str,  # first: a Neo4j test empties the database before clean_env runs
    clean_env: pytest.MonkeyPatch,
    data_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> CLI:
    """Run ``hippograph --data-dir <tmp> ARGS...`` in-process with the hashing encoder,
    on each store (the Neo4j variables set for ``[neo4j]``)."""
    clean_env.setenv("HIPPOGRAPH_ENCODER", "hashing")
    for name, value in store_env(store_kind).items():
        clean_env.setenv(name, value)

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(["--data-dir", str(data_dir), *args])
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def stats(cli: CLI, namespace: str = "ns") -> dict[str, Any]:
    result = cli("stats", "-n", namespace, "--json")
    assert result.code == 0, result.err
    stats_: dict[str, Any] = result.json()
    return stats_


def remember(cli: CLI, text: str, *options: str, namespace: str = "ns") -> str:
    result = cli("remember", "-n", namespace, *options, text)
    assert result.code == 0, result.err
    return result.out.strip()


def recall_ids(cli: CLI, query: str, *options: str, namespace: str = "ns") -> list[str]:
    result = cli("recall", "-n", namespace, "--json", *options, query)
    assert result.code == 0, result.err
    return [r["id"] for r in result.json()]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def assert_one_line_error(result: Run, *fragments: str) -> None:
    assert result.code == 2, (result.code, result.err)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("hippograph")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0]


# -- remember, get, recall -------------------------------------------------------------


def test_remember_prints_the_new_id_and_get_returns_the_memory(cli: CLI) -> None:
    memory_id = remember(
        cli,
        "Alice moved to Paris in May",
        "--session",
        "s1",
        "--kind",
        "fact",
        "--importance",
        "0.9",
        "--occurred-at",
        "2024-05-01T10:00:00Z",
    )
    assert memory_id and " " not in memory_id

    got = cli("get", "-n", "ns", memory_id, "--json")
    assert got.code == 0, got.err
    record = got.json()
    assert record["id"] == memory_id
    assert record["content"] == "Alice moved to Paris in May"
    assert record["kind"] == "fact"
    assert record["session_id"] == "s1"
    assert record["importance"] == 0.9
    assert record["occurred_at"].startswith("2024-05-01T10:00:00")


def test_remember_with_a_chosen_id_prints_that_id(cli: CLI) -> None:
    assert remember(cli, "Bob plays the cello", "--id", "bob-cello") == "bob-cello"
    assert cli("get", "-n", "ns", "bob-cello").code == 0


def test_recall_json_lists_recollections_with_score_parts_and_path(cli: CLI) -> None:
    violin = remember(cli, "Alice plays the violin in an orchestra", "--session", "s")
    remember(cli, "The budget meeting moved to Thursday", "--session", "s")
    remember(cli, "Bob repaired his bicycle", "--session", "s")

    result = cli("recall", "-n", "ns", "--json", "-k", "3", "violin orchestra")

    assert result.code == 0, result.err
    found = result.json()
    assert isinstance(found, list) and 1 <= len(found) <= 3
    assert found[0]["id"] == violin
    for item in found:
        assert set(item) == {
            "id",
            "content",
            "score",
            "parts",
            "path",
            "superseded_by",
            "invalid_at",
        }
        assert set(item["parts"]) == {
            "similarity",
            "activation",
            "recency",
            "importance",
            "context",
            "informativeness",
            "validity",
        }
        assert all(isinstance(v, float | int) for v in item["parts"].values())
        for step in item["path"]:
            assert set(step) == {"from", "type", "weight"}
            assert step["type"] in {t.value for t in AssociationType}
    scores = [item["score"] for item in found]
    assert scores == sorted(scores, reverse=True)


def test_recall_k_limits_the_number_of_memories(cli: CLI) -> None:
    for i in range(5):
        remember(cli, f"note {i} about gardening tomatoes")
    assert len(recall_ids(cli, "gardening tomatoes", "-k", "2")) == 2


def test_recall_without_json_prints_a_ranked_table(cli: CLI) -> None:
    remember(cli, "Alice plays the [bold]violin[/bold]", "--id", "alice-violin")
    remember(cli, "Bob repaired his bicycle", "--id", "bob-bike")

    result = cli("recall", "-n", "ns", "violin")

    assert result.code == 0, result.err
    assert "rank" in result.out and "score" in result.out and "path" in result.out
    assert "alice-violin" in result.out
    # memory text is data, never rich markup
    assert "[bold]violin[/bold]" in result.out
    first_row = next(line for line in result.out.splitlines() if "alice-violin" in line)
    assert "1" in first_row.split("alice-violin")[0]


def test_recall_of_an_empty_namespace_returns_nothing(cli: CLI) -> None:
    assert recall_ids(cli, "anything at all") == []


def test_stats_counts_what_was_remembered(cli: CLI) -> None:
    remember(cli, "Alice plays the violin", "--kind", "skill")
    remember(cli, "Bob repaired his bicycle")

    counts = stats(cli)
    assert counts["memories"] == 2
    assert counts["kinds"]["skill"] == 1
    assert counts["kinds"]["event"] == 1

    text = cli("stats", "-n", "ns")
    assert text.code == 0
    assert "memories: 2" in text.out


# --data-dir chooses the store only on SQLite: on Neo4j both directories share the database
@pytest.mark.sqlite_only
def test_global_options_are_accepted_after_the_subcommand(
    cli: CLI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere"
    assert main(["remember", "-n", "ns", "--data-dir", str(other), "kept elsewhere"]) == 0
    capsys.readouterr()
    assert main(["stats", "-n", "ns", "--json", "--data-dir", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["memories"] == 1
    assert stats(cli)["memories"] == 0  # the fixture's data dir was not touched


def test_namespaces_are_isolated(cli: CLI) -> None:
    remember(cli, "secret of tenant one about violins", namespace="one")
    assert recall_ids(cli, "violins", namespace="two") == []
    assert stats(cli, "two")["memories"] == 0


# -- forget ----------------------------------------------------------------------------


def test_forgotten_memory_never_comes_back_from_recall_or_get(cli: CLI) -> None:
    violin = remember(cli, "Alice plays the violin", "--session", "s")
    remember(cli, "Alice bought a new violin case", "--session", "s")
    remember(cli, "Bob repaired his bicycle", "--session", "s")
    assert violin in recall_ids(cli, "Alice violin")

    forgot = cli("forget", "-n", "ns", violin)
    assert forgot.code == 0, forgot.err

    for query in ("Alice violin", "Alice plays the violin", "violin case", "bicycle"):
        assert violin not in recall_ids(cli, query, "-k", "10")
    assert cli("get", "-n", "ns", violin).code == 1
    assert stats(cli)["memories"] == 2


def test_forget_of_an_absent_memory_exits_1_with_a_message(cli: CLI) -> None:
    result = cli("forget", "-n", "ns", "no-such-id")
    assert result.code == 1
    assert "no-such-id" in result.err and "Traceback" not in result.err


def test_get_of_an_absent_memory_exits_1_with_a_message(cli: CLI) -> None:
    result = cli("get", "-n", "ns", "no-such-id", "--json")
    assert result.code == 1
    assert result.out == ""
    assert "no memory 'no-such-id'" in result.err


# -- import ----------------------------------------------------------------------------


def test_import_stores_memories_with_links_to_earlier_lines_and_prints_counts(
    cli: CLI, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "memories.jsonl",
        [
            {"id": "a", "content": "Alice adopted a cat named Tom", "session_id": "s1"},
            {"id": "b", "content": "The vet said Tom is healthy", "kind": "fact"},
            {
                "id": "c",
                "content": "Alice bought fish for dinner",
                "occurred_at": "2024-05-02",
                "importance": 0.8,
                "metadata": {"source": "diary"},
                "links": [{"target": "a", "type": "DERIVED_FROM", "weight": 0.7}],
            },
            {"content": "Tom chased a mouse", "links": [{"target": "b", "type": "CAUSES"}]},
        ],
    )

    result = cli("import", "-n", "ns", str(path))

    assert result.code == 0, result.err
    assert "imported 4 memories" in result.out
    counts = stats(cli)
    assert counts["memories"] == 4
    assert counts["kinds"]["fact"] == 1
    assert counts["associations"]["DERIVED_FROM"] == 1
    assert counts["associations"]["CAUSES"] == 1
    printed = int(result.out.split("memories, ")[1].split(" associations")[0])
    assert printed == sum(counts["associations"].values())

    c = cli("get", "-n", "ns", "c", "--json").json()
    assert c["metadata"] == {"source": "diary"}
    assert c["occurred_at"].startswith("2024-05-02")
    link = next(e for e in c["associations"] if e["type"] == "DERIVED_FROM")
    assert (link["source"], link["target"], link["weight"], link["explicit"]) == (
        "c",
        "a",
        0.7,
        True,
    )


def test_import_writes_in_batches_of_max_batch_and_links_resolve_across_batches(
    cli: CLI, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("HIPPOGRAPH_MAX_BATCH", "2")
    sizes: list[int] = []
    original = MemoryGraph.remember_many

    def spy(self: MemoryGraph, namespace: str, items: Any) -> Any:
        sizes.append(len(items))
        return original(self, namespace, items)

    clean_env.setattr(MemoryGraph, "remember_many", spy)
    records: list[dict[str, Any]] = [{"id": f"m{i}", "content": f"note {i}"} for i in range(5)]
    records[4]["links"] = [{"target": "m0", "type": "RELATED_TO", "weight": 0.5}]
    path = write_jsonl(tmp_path / "five.jsonl", records)

    result = cli("import", "-n", "ns", str(path))

    assert result.code == 0, result.err
    assert sizes == [2, 2, 1]
    assert stats(cli)["memories"] == 5
    edges = cli("get", "-n", "ns", "m4", "--json").json()["associations"]
    assert {"source": "m4", "target": "m0", "type": "RELATED_TO"}.items() <= next(
        e for e in edges if e["type"] == "RELATED_TO"
    ).items()


def test_an_import_stopped_after_some_batches_is_finished_by_resume(
    cli: CLI, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stopped import left its first batches; the same import again refuses (the ids
    exist), with --resume it writes only the rest, and the namespace ends as one whole
    import leaves it. A line whose id is stored with other content is still refused, and
    --resume wants an id on every line."""
    clean_env.setenv("HIPPOGRAPH_MAX_BATCH", "2")
    records: list[dict[str, Any]] = [
        {"id": f"m{i}", "content": f"note {i} about the harbour ferry", "session_id": "s"}
        for i in range(5)
    ]
    records[4]["links"] = [{"target": "m0", "type": "RELATED_TO", "weight": 0.5}]
    path = write_jsonl(tmp_path / "five.jsonl", records)
    whole = write_jsonl(tmp_path / "whole.jsonl", records)
    assert cli("import", "-n", "reference", str(whole)).code == 0
    original = MemoryGraph.remember_many
    calls: list[int] = []

    def stopped_after_two_batches(self: MemoryGraph, namespace: str, items: Any) -> Any:
        calls.append(len(items))
        if len(calls) > 2:
            raise KeyboardInterrupt  # as if the process stopped here
        return original(self, namespace, items)

    clean_env.setattr(MemoryGraph, "remember_many", stopped_after_two_batches)
    stopped = cli("import", "-n", "ns", str(path))
    assert stopped.code == 130, stopped.err  # what hippograph exits with on Ctrl-C
    clean_env.setattr(MemoryGraph, "remember_many", original)
    assert stats(cli)["memories"] == 4  # two whole batches

    again = cli("import", "-n", "ns", str(path))
    assert again.code == 2 and "line 1: id: memory 'm0' already exists" in again.err

    result = cli("import", "-n", "ns", str(path), "--resume")
    assert result.code == 0, result.err
    assert "imported 1 memories" in result.out and "4 already stored, skipped" in result.out
    assert stats(cli) == stats(cli, "reference")
    assert cli("import", "-n", "ns", str(path), "--resume").out.startswith("imported 0 memories")

    records[2]["content"] = "note 2, edited since"
    edited = write_jsonl(tmp_path / "edited.jsonl", records)
    refused = cli("import", "-n", "ns", str(edited), "--resume")
    assert refused.code == 2 and "line 3: id: memory 'm2' already exists" in refused.err
    assert "with other content" in refused.err
    anonymous = write_jsonl(tmp_path / "anon.jsonl", [{"content": "no id here"}])
    refused = cli("import", "-n", "ns", str(anonymous), "--resume")
    assert refused.code == 2 and "line 1: id: --resume needs an id on every line" in refused.err
    exported = tmp_path / "ns.export.jsonl"
    assert cli("export", "-n", "ns", str(exported)).code == 0
    refused = cli("import", "-n", "copy", str(exported), "--resume")
    assert refused.code == 2 and "--resume: an export file is imported in one" in refused.err


def test_export_then_import_recreates_a_namespace_exactly(cli: CLI, tmp_path: Path) -> None:
    first = remember(
        cli, "Caroline went hiking in the Alps", "--session", "s", "--importance", "0.9"
    )
    remember(cli, "Melanie signed up for a pottery class", "--session", "s")
    recall_ids(cli, "hiking")  # access counts and Hebbian weights travel too
    path = tmp_path / "ns.jsonl"
    result = cli("export", "-n", "ns", str(path))
    assert result.code == 0, result.err
    assert "exported 2 memories" in result.out
    assert not path.with_name("ns.jsonl.partial").exists()
    result = cli("import", "-n", "copy", str(path))
    assert result.code == 0, result.err
    assert "imported 2 memories" in result.out and "from an export" in result.out
    original, copy = stats(cli, "ns"), stats(cli, "copy")
    for key in ("tiers", "kinds", "associations", "entities"):
        assert copy[key] == original[key], key
    got = cli("get", "-n", "copy", "--json", first)
    want = cli("get", "-n", "ns", "--json", first)
    assert got.code == want.code == 0
    assert {**got.json(), "namespace": None} == {**want.json(), "namespace": None}
    assert recall_ids(cli, "pottery", "--no-learn", namespace="copy") == recall_ids(
        cli, "pottery", "--no-learn"
    )
    # a second import of the same export would duplicate ids: refused, nothing written
    again = cli("import", "-n", "copy", str(path))
    assert again.code == 2 and "already exists" in again.err
    assert stats(cli, "copy")["tiers"] == copy["tiers"]


def test_lifecycle_run_archives_cold_memories_and_check_stays_clean(cli: CLI) -> None:
    old = set()
    for i in range(4):
        old.add(
            remember(
                cli,
                f"Old note {i} about the shed and its blue paint",
                "--session",
                "old",
                "--occurred-at",
                f"2020-01-0{i + 1}T10:00:00",
                "--importance",
                "0.2",
            )
        )
    remember(cli, "The password rotates monthly", "--importance", "0.95")
    # an old history just remembered is not idle: nothing to archive today
    today = cli("lifecycle", "run", "-n", "ns", "--dry-run", "--json")
    assert today.code == 0, today.err
    [report] = today.json()
    assert report["dry_run"] and report["jobs"][0]["job"] == "decay"
    archive_counts = {j["job"]: j["counts"] for j in report["jobs"]}["archive"]
    assert archive_counts["memories"] == 0
    # 60 days on, unused: the notes are cold (the important one is not archived by age)
    later = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    dry = cli("lifecycle", "run", "-n", "ns", "--dry-run", "--at", later, "--json")
    [planned] = dry.json()
    assert {j["job"]: j["counts"] for j in planned["jobs"]}["archive"]["memories"] == 4
    assert stats(cli)["tiers"]["archived"] == 0
    run = cli("lifecycle", "run", "-n", "ns", "--at", later)
    assert run.code == 0, run.err
    assert "archive" in run.out and "tiering" in run.out
    tiers = stats(cli)["tiers"]
    assert tiers["archived"] == 4 and tiers["episodic"] == 1
    plain = cli("stats", "-n", "ns")
    assert "lifecycle run:" in plain.out
    check = cli("check", "-n", "ns", "--json")
    assert check.code == 0, check.err
    assert check.json()[0]["clean"] is True
    back = recall_ids(cli, "shed blue paint", "--include-archived", "-k", "2")
    assert len(back) == 2 and set(back) <= old
    assert stats(cli)["tiers"]["archived"] == 2
    # default recall consults the archive index: the other two come back as well
    found = recall_ids(cli, "old note about the shed and its blue paint", "-k", "4", "--no-learn")
    assert old <= set(found)
    assert stats(cli)["tiers"]["archived"] == 0


def test_lifecycle_run_refuses_an_unknown_job_and_writes_nothing(cli: CLI) -> None:
    remember(cli, "something")
    result = cli("lifecycle", "run", "-n", "ns", "--jobs", "decay,shrink")
    assert result.code == 2 and "jobs: unknown job 'shrink'" in result.err
    assert stats(cli)["lifecycle_runs"] == []


def test_import_may_link_to_memories_already_stored(cli: CLI, tmp_path: Path) -> None:
    remember(cli, "Alice adopted a cat", "--id", "stored")
    path = write_jsonl(
        tmp_path / "m.jsonl",
        [{"content": "The cat is called Tom", "links": [{"target": "stored"}]}],
    )
    result = cli("import", "-n", "ns", str(path))
    assert result.code == 0, result.err
    assert stats(cli)["associations"]["RELATED_TO"] == 1


def test_import_of_a_bad_line_after_the_first_batch_writes_nothing(
    cli: CLI, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("HIPPOGRAPH_MAX_BATCH", "2")
    records: list[dict[str, Any]] = [{"content": f"good note {i}"} for i in range(5)]
    records.append({"content": "bad note", "kind": "evnt"})
    path = write_jsonl(tmp_path / "late-error.jsonl", records)
    before = stats(cli)

    result = cli("import", "-n", "ns", str(path))

    assert_one_line_error(result, "line 6: kind: unknown kind 'evnt'", "event, fact")
    assert stats(cli) == before
    assert stats(cli)["memories"] == 0


def test_import_skips_blank_lines_and_counts_line_numbers_from_one(
    cli: CLI, tmp_path: Path
) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text('{"content": "first"}\n\n   \n{"content": ""}\n', encoding="utf-8")
    result = cli("import", "-n", "ns", str(path))
    assert_one_line_error(result, "line 4: content: must be non-empty text")


BAD_LINES: list[tuple[str, list[str], str]] = [
    ("malformed-json", ['{"content": "ok"}', '{"content": "x",'], "line 2: malformed JSON"),
    ("not-an-object", ['["content", "x"]'], "line 1: expected a JSON object, got list"),
    ("unknown-field", ['{"contnet": "x"}'], "line 1: contnet: unknown field"),
    ("missing-content", ['{"kind": "fact"}'], "line 1: content: is required"),
    ("empty-content", ['{"content": "   "}'], "line 1: content: must be non-empty text"),
    (
        "unknown-kind",
        ['{"content": "a"}', '{"content": "b"}', '{"content": "c", "kind": "evnt"}'],
        "line 3: kind: unknown kind 'evnt'; one of event, fact, skill, concept",
    ),
    (
        "bad-date",
        ['{"content": "a"}', '{"content": "b", "occurred_at": "last tuesday"}'],
        "line 2: occurred_at: not an ISO-8601 date or datetime",
    ),
    ("importance", ['{"content": "a", "importance": 2}'], "line 1: importance: must be a number"),
    ("metadata", ['{"content": "a", "metadata": [1]}'], "line 1: metadata: must be a JSON object"),
    ("session", ['{"content": "a", "session_id": 7}'], "line 1: session_id: must be text"),
    ("reserved-id", ['{"content": "a", "id": "entity:x"}'], "line 1: id: must not start with"),
    (
        "duplicate-id",
        ['{"id": "a", "content": "x"}', '{"content": "y"}', '{"id": "a", "content": "z"}'],
        "line 3: id: 'a' is already given on line 1",
    ),
    (
        "existing-id",
        ['{"content": "x"}', '{"id": "seed", "content": "y"}'],
        "line 2: id: memory 'seed' already exists in namespace 'ns'",
    ),
    (
        "link-forward",
        ['{"content": "x", "links": [{"target": "b"}]}', '{"id": "b", "content": "y"}'],
        "line 1: links[0].target: 'b' is neither stored",
    ),
    (
        "link-unknown",
        ['{"id": "a", "content": "x"}', '{"content": "y", "links": [{"target": "ghost"}]}'],
        "line 2: links[0].target: 'ghost' is neither stored in namespace 'ns'",
    ),
    (
        "link-type",
        ['{"content": "y", "links": [{"target": "seed", "type": "LIKES"}]}'],
        "line 1: links[0].type: unknown association type 'LIKES'",
    ),
    (
        "link-mentions",
        ['{"content": "y", "links": [{"target": "seed", "type": "MENTIONS"}]}'],
        "line 1: links[0].type: MENTIONS associations are built",
    ),
    (
        "link-weight-range",
        ['{"content": "y", "links": [{"target": "seed", "weight": 1.5}]}'],
        "line 1: links[0].weight: must be a number from 0 to 1",
    ),
    (
        "link-weight-type",
        ['{"content": "y", "links": [{"target": "seed", "weight": "heavy"}]}'],
        "line 1: links[0].weight: must be a number from 0 to 1",
    ),
    ("links-not-list", ['{"content": "y", "links": "seed"}'], "line 1: links: must be a list"),
]


@pytest.mark.parametrize(
    ("lines", "message"),
    [(lines, msg) for _, lines, msg in BAD_LINES],
    ids=[b[0] for b in BAD_LINES],
)
def test_import_of_a_bad_line_exits_2_naming_line_and_field_and_writes_nothing(
    cli: CLI, tmp_path: Path, lines: list[str], message: str
) -> None:
    remember(cli, "an earlier memory", "--id", "seed")
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = stats(cli)

    result = cli("import", "-n", "ns", str(path))

    assert_one_line_error(result, message)
    assert stats(cli) == before


def test_import_of_a_line_that_is_not_utf8_exits_2_naming_the_line(
    cli: CLI, tmp_path: Path
) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"content": "ok"}\n{"content": "caf\xe9"}\n')
    before = stats(cli)
    assert_one_line_error(cli("import", "-n", "ns", str(path)), "line 2: not UTF-8")
    assert stats(cli) == before


def test_import_of_a_missing_file_exits_2_naming_the_file(cli: CLI, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    before = stats(cli)
    assert_one_line_error(cli("import", "-n", "ns", str(missing)), str(missing), "no such file")
    assert_one_line_error(cli("import", "-n", "ns", str(tmp_path)), str(tmp_path), "not a file")
    assert stats(cli) == before


def test_import_of_an_empty_file_imports_nothing(cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    result = cli("import", "-n", "ns", str(path))
    assert result.code == 0, result.err
    assert result.out.startswith("imported 0 memories, 0 associations")
    assert stats(cli)["memories"] == 0


# -- bad input to the other commands ---------------------------------------------------

BAD_ARGUMENTS: list[tuple[str, dict[str, str], list[str], list[str]]] = [
    ("empty-text", {}, ["remember", "-n", "ns", ""], ["content: must be non-empty text"]),
    ("blank-text", {}, ["remember", "-n", "ns", "  \n "], ["content: must be non-empty text"]),
    (
        "unknown-kind",
        {},
        ["remember", "-n", "ns", "--kind", "evnt", "x"],
        ["kind: unknown kind 'evnt'; one of event, fact, skill, concept"],
    ),
    (
        "bad-date",
        {},
        ["remember", "-n", "ns", "--occurred-at", "yesterday", "x"],
        ["occurred_at: not an ISO-8601 date or datetime: 'yesterday'"],
    ),
    (
        "importance-range",
        {},
        ["remember", "-n", "ns", "--importance", "1.5", "x"],
        ["importance: must be a number from 0 to 1"],
    ),
    (
        "importance-type",
        {},
        ["remember", "-n", "ns", "--importance", "high", "x"],
        ["--importance", "invalid float value"],
    ),
    ("reserved-id", {}, ["remember", "-n", "ns", "--id", "entity:x", "x"], ["id: must not"]),
    (
        "existing-id",
        {},
        ["remember", "-n", "ns", "--id", "seed", "x"],
        ["id: memory 'seed' already exists"],
    ),
    ("empty-namespace", {}, ["remember", "-n", "", "x"], ["namespace: must be a non-empty"]),
    (
        "content-limit",
        {"HIPPOGRAPH_MAX_CONTENT_CHARS": "10"},
        ["remember", "-n", "ns", "eleven char"],
        ["content: is 11 characters; the limit is 10"],
    ),
    ("k-zero", {}, ["recall", "-n", "ns", "-k", "0", "seed"], ["k: must be an integer from 1"]),
    ("k-above", {}, ["recall", "-n", "ns", "-k", "101", "seed"], ["k:", "to 100"]),
    (
        "k-limit-setting",
        {"HIPPOGRAPH_MAX_K": "5"},
        ["recall", "-n", "ns", "-k", "6", "seed"],
        ["k: must be an integer from 1 to 5"],
    ),
    ("k-type", {}, ["recall", "-n", "ns", "-k", "ten", "seed"], ["-k", "invalid int value"]),
    (
        "hops",
        {},
        ["recall", "-n", "ns", "--hops", "9", "seed"],
        ["hops: must be an integer from 0 to 4"],
    ),
    ("empty-query", {}, ["recall", "-n", "ns", " "], ["query: must be non-empty text"]),
    ("bad-at", {}, ["recall", "-n", "ns", "--at", "noon", "seed"], ["at: not an ISO-8601"]),
    ("bad-since", {}, ["recall", "-n", "ns", "--since", "x", "seed"], ["since: not an ISO-8601"]),
    ("no-namespace", {}, ["recall", "seed"], ["required", "--namespace"]),
    ("no-command", {}, [], ["required", "COMMAND"]),
    ("unknown-command", {}, ["memorize", "-n", "ns", "x"], ["invalid choice: 'memorize'"]),
    ("unknown-option", {}, ["stats", "-n", "ns", "--colour"], ["unrecognized arguments"]),
    ("bad-setting", {"HIPPOGRAPH_MAX_K": "0"}, ["stats", "-n", "ns"], ["HIPPOGRAPH_MAX_K='0'"]),
    (
        "bad-encoder",
        {"HIPPOGRAPH_ENCODER": "bert"},
        ["stats", "-n", "ns"],
        ["HIPPOGRAPH_ENCODER='bert'", "minilm"],
    ),
    (
        "hops-above-limit",
        {"HIPPOGRAPH_ACTIVATION_HOPS": "5"},
        ["stats", "-n", "ns"],
        ["activation_hops (5) must not exceed max_hops (4)"],
    ),
]


@pytest.mark.parametrize(
    ("env", "argv", "fragments"),
    [(env, argv, fragments) for _, env, argv, fragments in BAD_ARGUMENTS],
    ids=[b[0] for b in BAD_ARGUMENTS],
)
def test_bad_input_exits_2_with_one_message_naming_the_field_and_writes_nothing(
    cli: CLI,
    clean_env: pytest.MonkeyPatch,
    env: dict[str, str],
    argv: list[str],
    fragments: list[str],
) -> None:
    remember(cli, "an earlier memory", "--id", "seed")
    before = stats(cli)

    with clean_env.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        result = cli(*argv)

    assert_one_line_error(result, *fragments)
    assert stats(cli) == before


class StandInModel:
    """Looks like all-MiniLM-L6-v2 to the graph (name, 384-d), embeds by hashing."""

    name = "all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, *, backend: str) -> None:
        self.backend = backend
        self._hashing = HashingEncoder(dim=384)

    def encode(self, texts: Any) -> Any:
        return self._hashing.encode(texts)

    def encode_one(self, text: str) -> Any:
        return self._hashing.encode_one(text)


def test_commands_that_embed_nothing_never_load_the_model(
    cli: CLI, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HIPPOGRAPH_ENCODER", "minilm")
    clean_env.setattr(hippograph.api.settings, "Encoder", StandInModel)
    remember(cli, "stored through the model encoder", "--id", "seed")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    clean_env.setattr(hippograph.api.settings, "Encoder", refuse)
    assert cli("stats", "-n", "ns").code == 0
    assert cli("get", "-n", "ns", "seed").code == 0
    assert cli("forget", "-n", "ns", "seed").code == 0
    # rejected before anything is embedded
    assert_one_line_error(cli("recall", "-n", "ns", "-k", "0", "q"), "k:")
    assert_one_line_error(cli("remember", "-n", "ns", ""), "content:")


def test_the_model_is_loaded_when_text_is_embedded(cli: CLI, clean_env: pytest.MonkeyPatch) -> None:
    loaded: list[StandInModel] = []

    def load(*, backend: str) -> StandInModel:
        loaded.append(StandInModel(backend=backend))
        return loaded[-1]

    clean_env.setenv("HIPPOGRAPH_ENCODER", "minilm")
    clean_env.setattr(hippograph.api.settings, "Encoder", load)
    remember(cli, "Alice keeps bees")
    assert [m.backend for m in loaded] == ["onnx"]  # the default backend
    clean_env.setenv("HIPPOGRAPH_ENCODER_BACKEND", "torch")
    remember(cli, "Bob keeps goats")
    assert [m.backend for m in loaded] == ["onnx", "torch"]


# -- unexpected errors -----------------------------------------------------------------


@pytest.fixture
def broken_graph(store_kind: str, clean_env: pytest.MonkeyPatch) -> None:
    # store_kind first: a Neo4j test empties the database before clean_env runs
    def explode(settings: Settings) -> MemoryGraph:
        raise RuntimeError("disk on fire")

    clean_env.setattr("hippograph.api.commands.open_graph", explode)


@pytest.mark.usefixtures("broken_graph")
def test_unexpected_error_exits_1_with_one_line_and_no_traceback(cli: CLI) -> None:
    result = cli("stats", "-n", "ns")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert "RuntimeError: disk on fire" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in result.err


@pytest.mark.usefixtures("broken_graph")
def test_debug_flag_prints_the_traceback_of_an_unexpected_error(cli: CLI) -> None:
    result = cli("--debug", "stats", "-n", "ns")
    assert result.code == 1
    assert "Traceback" in result.err and "disk on fire" in result.err


@pytest.mark.usefixtures("broken_graph")
def test_debug_environment_variable_prints_the_traceback(
    cli: CLI, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HIPPOGRAPH_DEBUG", "1")
    result = cli("stats", "-n", "ns")
    assert result.code == 1
    assert "Traceback" in result.err


# -- bench wiring ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "module", "add", "run"),
    [
        ("latency", "hippograph.api.bench.latency", "add_latency_arguments", "run_latency_command"),
        ("locomo", "hippograph.api.bench.locomo", "add_locomo_arguments", "run_locomo_command"),
    ],
)
def test_bench_subcommands_run_their_modules_with_their_own_arguments(
    cli: CLI,
    clean_env: pytest.MonkeyPatch,
    data_dir: Path,
    name: str,
    module: str,
    add: str,
    run: str,
) -> None:
    calls: list[tuple[int, Path]] = []
    fake = types.ModuleType(module)

    def add_arguments(parser: Any) -> None:
        parser.add_argument("--rounds", type=int, required=True)

    def run_command(args: Any, settings: Settings) -> int:
        calls.append((args.rounds, settings.data_dir))
        return 0

    setattr(fake, add, add_arguments)
    setattr(fake, run, run_command)
    clean_env.setitem(sys.modules, module, fake)

    result = cli("bench", name, "--rounds", "7")

    assert result.code == 0, result.err
    assert calls == [(7, data_dir)]


def test_bench_without_its_module_exits_2_and_other_commands_still_work(
    cli: CLI, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setitem(sys.modules, "hippograph.api.bench.latency", None)  # importing it fails

    result = cli("bench", "latency", "--queries", "100")

    assert_one_line_error(result, "bench latency is unavailable", "hippograph.api.bench.latency")
    assert cli("stats", "-n", "ns").code == 0
    assert cli("remember", "-n", "ns", "still works").code == 0


def test_help_lists_every_command(cli: CLI) -> None:
    result = cli("--help")
    assert result.code == 0
    for command in ("remember", "import", "recall", "get", "forget", "stats", "bench"):
        assert command in result.out


# -- settings --------------------------------------------------------------------------


def test_settings_defaults_are_the_engine_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.graph_config() == GraphConfig()
    assert settings.data_dir == Path("data")
    assert settings.encoder == "minilm"
    assert settings.sqlite_synchronous == "FULL"


def test_settings_from_the_environment_reach_the_graph_config(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("HIPPOGRAPH_MAX_BATCH", "7")
    clean_env.setenv("HIPPOGRAPH_ACTIVATION_HOPS", "3")
    clean_env.setenv("HIPPOGRAPH_WEIGHT_CONTEXT", "0.75")
    clean_env.setenv("HIPPOGRAPH_ACTIVATION_TYPE_MULTIPLIERS", "[1, 2, 1, 1, 1, 1, 1, 0.5, 1]")

    config = Settings().graph_config()

    assert config.max_batch == 7
    assert config.activation.hops == 3
    assert config.weights.context == 0.75
    assert config.activation.type_multipliers == (1, 2, 1, 1, 1, 1, 1, 0.5, 1)
    assert config.max_k == GraphConfig().max_k


# -- real processes --------------------------------------------------------------------


@pytest.fixture
def process_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HIPPOGRAPH_") and k not in STORE_VARIABLES
    }
    env.update(
        HIPPOGRAPH_ENCODER="hashing",
        HIPPOGRAPH_DATA_DIR=str(tmp_path / "proc-data"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    yield env


def run_process(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_memories_persist_across_separate_processes(
    process_env: dict[str, str], store_kind: str
) -> None:
    process_env.update(store_env(store_kind))
    module = [sys.executable, "-m", "hippograph.api.cli"]
    first = run_process(
        [*module, "remember", "-n", "ns", "Alice keeps bees on the roof"], process_env
    )
    assert first.returncode == 0, first.stderr
    memory_id = first.stdout.strip()

    second = run_process([*module, "recall", "-n", "ns", "--json", "bees roof"], process_env)
    assert second.returncode == 0, second.stderr
    assert [r["id"] for r in json.loads(second.stdout)] == [memory_id]

    third = run_process([*module, "stats", "-n", "ns", "--json"], process_env)
    assert json.loads(third.stdout)["memories"] == 1


def test_console_script_reports_bad_input_with_exit_2_and_no_traceback(
    process_env: dict[str, str],
) -> None:
    script = Path(sys.executable).with_name("hippograph")
    assert script.is_file(), "the hippograph console script is not installed"

    result = run_process([str(script), "remember", "-n", "ns", "--kind", "evnt", "x"], process_env)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "hippograph: error: kind: unknown kind 'evnt'; one of event, fact, skill, concept"
    )


# -- the real model, end to end --------------------------------------------------------


def test_end_to_end_with_the_real_model_recalls_the_relevant_memory_first(
    clean_env: pytest.MonkeyPatch, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*args: str) -> tuple[int, str]:
        code = main(["--data-dir", str(data_dir), *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return code, out

    texts = [
        "The quarterly budget review moved to Thursday afternoon.",
        "Alice adopted a golden retriever puppy named Max last spring.",
        "Bob is learning to play the cello with a private teacher.",
    ]
    ids = [run("remember", "-n", "e2e", text)[1].strip() for text in texts]

    _, out = run("recall", "-n", "e2e", "--json", "-k", "3", "Which dog does she own?")

    found = json.loads(out)
    assert found[0]["id"] == ids[1]
    for item in found:
        assert set(item) == {
            "id",
            "content",
            "score",
            "parts",
            "path",
            "superseded_by",
            "invalid_at",
        }
        assert set(item["parts"]) == {
            "similarity",
            "activation",
            "recency",
            "importance",
            "context",
            "informativeness",
            "validity",
        }
    assert found[0]["content"] == texts[1]
    assert found[0]["parts"]["similarity"] > found[1]["parts"]["similarity"]
