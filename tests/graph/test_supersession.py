"""The rule-based supersession detector: precision and recall on hand-written pairs
(``fixtures/updates.jsonl``, written before the rule), and the behaviours it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hippograph.graph.supersession import REASONS, Supersession, supersedes

FIXTURE = Path(__file__).parent / "fixtures" / "updates.jsonl"


def _pairs() -> list[dict[str, object]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line]


def test_fixture_is_balanced_and_well_formed() -> None:
    pairs = _pairs()
    positives = [p for p in pairs if p["supersedes"]]
    assert len(pairs) >= 60
    assert 0.4 <= len(positives) / len(pairs) <= 0.6
    for pair in pairs:
        assert {"old", "new", "old_kind", "new_kind", "supersedes", "reason"} <= pair.keys()
        assert pair["old_kind"] in ("event", "fact", "skill", "concept")


def test_precision_and_recall_on_the_fixture() -> None:
    found = {True: 0, False: 0}  # flagged pairs, by whether the fixture says they supersede
    missed = 0
    reasons_agree = 0
    for pair in _pairs():
        result = supersedes(
            str(pair["old"]),
            str(pair["new"]),
            old_kind=str(pair["old_kind"]),
            new_kind=str(pair["new_kind"]),
        )
        expected = bool(pair["supersedes"])
        if result is not None:
            found[expected] += 1
            reasons_agree += expected and result.reason == pair["reason"]
        elif expected:
            missed += 1
    precision = found[True] / max(found[True] + found[False], 1)
    recall = found[True] / (found[True] + missed)
    print(
        f"\nsupersession fixture: precision {precision:.3f}, recall {recall:.3f} "
        f"({found[True]} true, {found[False]} false, {missed} missed; "
        f"reason agrees on {reasons_agree} of {found[True]})"
    )
    assert precision >= 0.95
    assert recall >= 0.8


def test_date_change_with_an_update_cue_supersedes() -> None:
    found = supersedes(
        "Dentist appointment with Dr. Patel on November 12 at 3pm",
        "The dentist appointment moved to November 19 at 10am",
    )
    assert found == Supersession("date", "November 12", "November 19")
    assert found.explain() == "date changed: November 12 -> November 19"


def test_recurring_event_without_a_cue_does_not_supersede() -> None:
    assert supersedes("Had coffee with Tom on Monday", "Had coffee with Tom on Friday") is None


def test_the_same_change_as_a_fact_needs_no_cue() -> None:
    found = supersedes(
        "Leo's soccer practice is at 5pm on Tuesdays",
        "Leo's soccer practice is at 6pm on Tuesdays",
        old_kind="fact",
        new_kind="fact",
    )
    assert found == Supersession("time", "5pm", "6pm")


def test_negation_supersedes() -> None:
    found = supersedes("I love sushi", "I don't like sushi anymore", old_kind="fact")
    assert found is not None
    assert (found.reason, found.old) == ("negation", "")
    dropped = supersedes("I never drink alcohol", "I drink alcohol occasionally now")
    assert dropped is not None and dropped.explain() == "negation dropped"


def test_place_change_of_the_same_person_supersedes() -> None:
    found = supersedes("My sister Anna lives in Berlin", "Anna moved to Munich last month")
    assert found == Supersession("place", "Berlin", "Munich")


def test_different_subjects_do_not_supersede() -> None:
    assert supersedes("Anna lives in Berlin", "Paul lives in Munich", old_kind="fact") is None
    assert supersedes("Maria works at Stripe", "Maria's husband works at Google") is None
    assert supersedes("Maria's husband works at Google", "Maria now works at Stripe") is None


def test_a_change_of_addressee_is_not_a_change_of_name() -> None:
    facts = {"old_kind": "fact", "new_kind": "fact"}
    assert (
        supersedes("Caroline: Thanks, Melanie!", "Caroline: Thanks so much, Mel!", **facts) is None
    )
    assert supersedes("Nate: Wow, Jo, so cool!", "Nate: Wow Joanna, so cool!", **facts) is None
    assert supersedes("Maria: I'm sorry about Max.", "Maria: Hey John, I'm sorry.", **facts) is None


def test_an_addition_does_not_supersede() -> None:
    assert (
        supersedes(
            "I usually run 5 km on Sundays",
            "I usually run 5 km on Sundays with my neighbor Greg",
            old_kind="fact",
            new_kind="fact",
        )
        is None
    )


@pytest.mark.parametrize("kind", ["event", "fact"])
def test_identical_text_does_not_supersede(kind: str) -> None:
    text = "Anna moved to Munich last month"
    assert supersedes(text, text, old_kind=kind, new_kind=kind) is None
    assert supersedes(text, f"  {text} ", old_kind=kind, new_kind=kind) is None
    assert supersedes("", text) is None


def test_reasons_are_the_documented_ones() -> None:
    for pair in _pairs():
        result = supersedes(
            str(pair["old"]),
            str(pair["new"]),
            old_kind=str(pair["old_kind"]),
            new_kind=str(pair["new_kind"]),
        )
        assert result is None or result.reason in REASONS
