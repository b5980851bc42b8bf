"""bench locomo on a tiny conversation in LoCoMo's format (the real file is not needed):
parsing, evidence ids, every method of the same run, and recall@k bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hippograph.api.bench.locomo import KS, _recall_at, load_locomo, run_locomo
from hippograph.embeddings import HashingEncoder

SAMPLE = [
    {
        "sample_id": "tiny",
        "conversation": {
            "speaker_a": "Ana",
            "speaker_b": "Ben",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {
                    "speaker": "Ana",
                    "dia_id": "D1:1",
                    "text": "I adopted a kitten named Pixel.",
                },
                {"speaker": "Ben", "dia_id": "D1:2", "text": "Lovely! What does Pixel eat?"},
                {"speaker": "Ana", "dia_id": "D1:3", "text": "Mostly salmon, she is picky."},
            ],
            "session_2_date_time": "10:00 am on 20 June, 2023",
            "session_2": [
                {"speaker": "Ben", "dia_id": "D2:1", "text": "I started violin lessons in Lisbon."},
                {
                    "speaker": "Ana",
                    "dia_id": "D2:2",
                    "text": "Pixel knocked my violin case over",
                    "blip_caption": "a cat next to a violin case",
                },
            ],
        },
        "qa": [
            {"question": "What is the name of Ana's kitten?", "evidence": ["D1:1"], "category": 4},
            {"question": "What does Pixel eat?", "evidence": ["D1:3; D1:2"], "category": 1},
            {
                "question": "Where are violin lessons?",
                "evidence": ["D2:1", "D9:9"],
                "category": 2,
            },
            {"question": "Nothing to find here", "evidence": ["D7:1"], "category": 3},
        ],
    }
]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "locomo.json"
    path.write_text(json.dumps(SAMPLE))
    return path


def test_turns_carry_speaker_caption_session_time_and_order(sample: Path) -> None:
    (conv,) = load_locomo(sample)
    assert [t.id for t in conv.turns] == ["D1:1", "D1:2", "D1:3", "D2:1", "D2:2"]
    assert conv.turns[0].content == "Ana: I adopted a kitten named Pixel."
    assert conv.turns[4].content.endswith("[photo: a cat next to a violin case]")
    assert conv.turns[0].session_id == "session_1"
    first, second = conv.turns[0].occurred_at, conv.turns[1].occurred_at
    assert first is not None and second is not None and second > first  # type: ignore[operator]
    assert conv.last_session_at is not None and conv.last_session_at.month == 6


def test_evidence_ids_are_split_and_unknown_ones_skipped(sample: Path) -> None:
    (conv,) = load_locomo(sample)
    evidence = {q.text: q.evidence for q in conv.questions}
    assert evidence["What does Pixel eat?"] == ["D1:3", "D1:2"]
    assert evidence["Where are violin lessons?"] == ["D2:1"]
    assert "Nothing to find here" not in evidence  # no evidence turn: not a question


def test_recall_at_k_is_the_fraction_of_evidence_in_the_top_k() -> None:
    assert _recall_at(["a", "b", "c"], ["b", "z"], 2) == 0.5
    assert _recall_at(["a", "b", "c"], ["c"], 2) == 0.0


def test_every_method_runs_in_the_same_run_and_reports_every_k(
    sample: Path, tmp_path: Path
) -> None:
    report = run_locomo(sample, encoder=HashingEncoder(dim=64), workdir=tmp_path)
    assert report["questions"] == 3 and report["memories"] == 5
    methods = ("hippograph", "dense", "dense+passages", "bm25", "ppr")
    assert set(methods) <= report.keys()
    for method in methods:
        for k in KS:
            row = report[method][f"recall@{k}"]
            assert 0.0 <= row["overall"] <= 100.0
            assert set(row) == {"overall", "1", "2", "4"}
        assert report[method]["median_ms"] > 0
    # five memories: at k = 25 every method that returns anything finds all evidence
    assert report["hippograph"]["recall@25"]["overall"] == 100.0
    assert report["bm25"]["recall@5"]["4"] == 100.0  # "kitten" is a rare word of D1:1
