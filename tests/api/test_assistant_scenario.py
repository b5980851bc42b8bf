"""Memory that stays right: a new user's personal-assistant memory over real HTTP.

The scenario of the issue, replayed through GraphQL on a real uvicorn server (loopback,
httpx) with the real embedding model, once per store. A new user imports 31 memories
(people, pets, appointments, preferences, routines) with one ``rememberMany``, dated
5 to 8 weeks back and never recalled yet; among them a dentist appointment and, later,
its rescheduling. Then 17 questions, phrased as the user would ask them, are asked with
``recall(k: 3, learn: false)`` (asking must not change idleness), before any lifecycle
run, after ``runLifecycle`` now, and after ``runLifecycle`` 45 days later (a month and
a half without use: by then the event memories are idle and archived). Each question
counts as answered when its memory is in the top 3.

Checked at every stage: no fewer questions answered than before the lifecycle, at least
15 of 17 before it, the rescheduled appointment first for "when is my dentist
appointment?" with the original below it and superseded by it, and each dry run
predicting its real run's counts exactly. There the rescheduling names the appointment
it replaces (``supersedes``); the same import into a second namespace leaves it unnamed,
and the automatic rule must link the two just as well. No assertion is about timing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hippograph.api.app import create_app
from hippograph.api.settings import STORE_VARIABLES, Settings
from tests.serving import serving
from tests.stores import store_settings, wipe_neo4j

# What a new user tells a personal assistant, in the order it happened: the first 8
# weeks before now, the last 5 (spread evenly between). Most are left at the default kind
# (EVENT) and importance, as a user who does not think about kinds would leave them.
MEMORIES = {
    "partner-job": "My partner Sam works as a nurse at St. Mary's, mostly on night shifts.",
    "partner-allergy": "Sam is severely allergic to peanuts, so we keep none in the house.",
    "sister-home": "My sister Priya lives in Lisbon with her husband Tomás.",
    "sister-birthday": "Priya's birthday is on June 3rd, she likes handmade gifts.",
    "colleague-sql": "Marco from the data team is the person to ask about SQL.",
    "manager-1on1": "My manager Helen Park and I have a one-on-one every Thursday at 11am.",
    "colleague-bread": "Jonas, who sits next to me, brings homemade sourdough on Fridays.",
    "dog-name": "Our dog is a beagle called Biscuit; she turned four this spring.",
    "dog-vet": "Biscuit's vet is Dr. Alvarez at the Riverside Animal Clinic.",
    "cat-pills": "Our cat Miso takes half a thyroid pill twice a day with food.",
    "dog-booster": "Biscuit is due for her rabies booster in April.",
    "dentist": "Dentist appointment with Dr. Okafor on March 12 at 3pm.",
    "car-service": "Car service booked at the garage on Mill Road; drop the keys off before 8am.",
    "eye-exam": "Annual eye exam at Specsavers next month, they will text a reminder.",
    "haircut": "Haircut with Lina at Studio Nine every six weeks.",
    "coffee": "I take my coffee black with no sugar and switch to decaf after 2pm.",
    "diet": "I'm vegetarian, though I still eat fish now and then.",
    "flights": "I prefer window seats on planes and avoid early morning departures.",
    "date-night": "Osteria Luca on Elm Street is our favourite place for date nights.",
    "phone": "I hate phone calls; texting or email works much better for me.",
    "running": "I go running along the canal on Tuesday and Saturday mornings.",
    "meal-plan": "Every Sunday evening I plan the week's meals and order the groceries online.",
    "plants": "I water the balcony plants every other day; the tomatoes need more.",
    "rent": "Rent is 1,450 euros, paid by standing order on the 1st of each month.",
    "dinner-priya": "Dinner at Priya's: she told us she is expecting a baby in August.",
    "drill": "Lent my drill to our neighbour Greg, he still has to give it back.",
    "gym": "The PureGym membership renews on the 15th; cancel before then if unused.",
    "rescheduled": "The dentist rescheduled my appointment to March 19 at 10am.",
    "kyoto": "Sam and I booked a trip to Kyoto for the first two weeks of October.",
    "wifi": "The wifi password is on a sticker under the TV stand.",
    "book-club": "Book club meets at Ana's flat on the last Wednesday of the month.",
}
KINDS = dict.fromkeys(
    ["partner-job", "partner-allergy", "sister-home", "dog-name", "coffee", "diet", "rent"], "FACT"
)
IMPORTANCE = {"partner-allergy": 0.9, "cat-pills": 0.8}
ORIGINAL, RESCHEDULED = "dentist", "rescheduled"
DENTIST_QUESTION = "when is my dentist appointment?"

# (question as the user asks it, the memory that answers it)
QUESTIONS: list[tuple[str, str]] = [
    (DENTIST_QUESTION, RESCHEDULED),
    ("what is my partner allergic to?", "partner-allergy"),
    ("which city does my sister live in?", "sister-home"),
    ("who can help me with a database query at work?", "colleague-sql"),
    ("what's our dog called?", "dog-name"),
    ("which vet do we take the dog to?", "dog-vet"),
    ("how often does the cat get her medicine?", "cat-pills"),
    ("how do I like my coffee?", "coffee"),
    ("do I eat meat?", "diet"),
    ("what seat should I pick when booking a flight?", "flights"),
    ("where should we go for a romantic dinner?", "date-night"),
    ("which days do I go jogging?", "running"),
    ("when do I meet my boss each week?", "manager-1on1"),
    ("who has my drill?", "drill"),
    ("when is our holiday in Japan?", "kyoto"),
    ("when is Priya's baby due?", "dinner-priya"),
    ("how much is the rent and when is it paid?", "rent"),
]
ENOUGH = 15  # of 17 answered before any lifecycle run: the figure was 16

REMEMBER_MANY = """
mutation RememberMany($ns: String!, $inputs: [MemoryInput!]!) {
  rememberMany(namespace: $ns, inputs: $inputs) { id tier kind supersededBy }
}"""
RECALL = """
query Recall($ns: String!, $q: String!, $k: Int!, $context: RecallContext) {
  recall(namespace: $ns, query: $q, k: $k, context: $context, learn: false) {
    memory { id content tier kind supersededBy }
    score supersededBy
    parts { similarity activation recency importance context informativeness validity }
  }
}"""
RUN_LIFECYCLE = """
mutation Run($ns: String!, $dry: Boolean!, $at: DateTime) {
  runLifecycle(namespace: $ns, dryRun: $dry, at: $at) {
    dryRun jobs { job dryRun counts { name value } }
  }
}"""
MEMORY = """
query Memory($ns: String!, $id: ID!) {
  memory(namespace: $ns, id: $id) { id supersededBy invalidAt }
}"""
TIERS = """
query Tiers($ns: String!) { stats(namespace: $ns) { memories tiers { tier count } } }
"""


@dataclass
class Service:
    """The running server's GraphQL endpoint."""

    http: httpx.Client

    def data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
def service(store_kind: str, tmp_path: Path) -> Iterator[Service]:
    """A server with the real model on ``store_kind``, configured only here (no
    HIPPOGRAPH_* or store variable leaks in) and with no scheduled lifecycle jobs."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HIPPOGRAPH_") or name in STORE_VARIABLES:
                mp.delenv(name)
        settings = Settings(
            data_dir=tmp_path / "data",
            encoder="minilm",
            lifecycle_interval_s=0,
            **store_settings(store_kind),
        )
        with serving(create_app(settings)) as base, httpx.Client(base_url=base, timeout=120) as h:
            yield Service(h)
    if store_kind == "neo4j":
        wipe_neo4j()  # its 384-dimensional namespaces would refuse hashing-encoder servers


def import_inputs(now: datetime, *, link: bool) -> list[dict[str, Any]]:
    """The 31 memories as one ``rememberMany``; the rescheduling names the appointment it
    replaces when ``link``."""
    inputs = []
    for i, (memory_id, content) in enumerate(MEMORIES.items()):
        weeks = 8 - 3 * i / (len(MEMORIES) - 1)
        item: dict[str, Any] = {
            "id": memory_id,
            "content": content,
            "occurredAt": (now - timedelta(weeks=weeks)).isoformat(),
        }
        if memory_id in KINDS:
            item["kind"] = KINDS[memory_id]
        if memory_id in IMPORTANCE:
            item["importance"] = IMPORTANCE[memory_id]
        if link and memory_id == RESCHEDULED:
            item["supersedes"] = [ORIGINAL]
        inputs.append(item)
    return inputs


@dataclass
class Stage:
    """The answers to the 17 questions at one point of the scenario."""

    name: str
    top: dict[str, list[dict[str, Any]]]  # question -> its top 3 recollections

    @property
    def answered(self) -> int:
        return sum(
            expected in [r["memory"]["id"] for r in self.top[question]]
            for question, expected in QUESTIONS
        )

    def failures(self) -> str:
        """Each unanswered question with its top 3 (id, tier, score, parts, content)."""
        lines = []
        for question, expected in QUESTIONS:
            top = self.top[question]
            if expected in [r["memory"]["id"] for r in top]:
                continue
            lines.append(f"  {self.name}: {question!r} wants {expected!r}, top 3:")
            lines += [f"    {describe(r)}" for r in top]
        return "\n".join(lines)


def describe(r: dict[str, Any]) -> str:
    memory, parts = r["memory"], r["parts"]
    shown = " ".join(f"{name[:4]}={value:.2f}" for name, value in parts.items())
    return (
        f"{memory['id']} [{memory['tier']}] score={r['score']:.3f} {shown} "
        f"supersededBy={r['supersededBy']} {memory['content']!r}"
    )


def ask(service: Service, ns: str, name: str, at: datetime | None) -> Stage:
    context = {"at": at.isoformat()} if at is not None else None
    top = {
        question: service.data(RECALL, {"ns": ns, "q": question, "k": 3, "context": context})[
            "recall"
        ]
        for question, _ in QUESTIONS
    }
    return Stage(name, top)


def dentist_ranking(service: Service, ns: str, at: datetime | None) -> list[dict[str, Any]]:
    """Everything recalled for the dentist question (k: all 31), to find the original
    however far below the rescheduling it ranks."""
    context = {"at": at.isoformat()} if at is not None else None
    variables = {"ns": ns, "q": DENTIST_QUESTION, "k": len(MEMORIES), "context": context}
    return service.data(RECALL, variables)["recall"]


def counts(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {job["job"]: {c["name"]: c["value"] for c in job["counts"]} for job in report["jobs"]}


def run_lifecycle(service: Service, ns: str, at: datetime) -> dict[str, dict[str, int]]:
    """A dry run, then the real run, both judged at ``at``: the real run's counts,
    once checked equal to the dry run's."""
    variables = {"ns": ns, "at": at.isoformat()}
    dry = service.data(RUN_LIFECYCLE, {**variables, "dry": True})["runLifecycle"]
    real = service.data(RUN_LIFECYCLE, {**variables, "dry": False})["runLifecycle"]
    assert dry["dryRun"] and not real["dryRun"]
    assert counts(dry) == counts(real), f"{ns} at {at}: the dry run predicted otherwise"
    return counts(real)


def tiers(service: Service, ns: str) -> dict[str, int]:
    stats = service.data(TIERS, {"ns": ns})["stats"]
    return {t["tier"]: t["count"] for t in stats["tiers"]}


def check_dentist(ranking: list[dict[str, Any]], where: str) -> None:
    """The rescheduled appointment first, the original below it, superseded by it."""
    ids = [r["memory"]["id"] for r in ranking]
    shown = "\n".join(
        f"    {describe(r)}" for r in ranking if r in ranking[:3] or r["memory"]["id"] == ORIGINAL
    )
    assert ids and ids[0] == RESCHEDULED, f"{where}: the rescheduling is not first:\n{shown}"
    assert ORIGINAL in ids, f"{where}: the original appointment is not recalled:\n{shown}"
    original = ranking[ids.index(ORIGINAL)]
    assert original["supersededBy"] == [RESCHEDULED], f"{where}:\n{shown}"
    assert original["memory"]["supersededBy"] == [RESCHEDULED], f"{where}:\n{shown}"
    validity = (original["parts"]["validity"], ranking[0]["parts"]["validity"])
    assert validity == (0.0, 1.0), f"{where}:\n{shown}"


def imported(service: Service, ns: str, now: datetime, *, link: bool) -> dict[str, Any]:
    """Import the 31 memories into ``ns``; the original appointment as stored after it
    (rememberMany answers with each memory as it was written, before later ones)."""
    stored = service.data(REMEMBER_MANY, {"ns": ns, "inputs": import_inputs(now, link=link)})
    assert [m["id"] for m in stored["rememberMany"]] == list(MEMORIES)
    original: dict[str, Any] = service.data(MEMORY, {"ns": ns, "id": ORIGINAL})["memory"]
    original["supersededByInRememberMany"] = next(
        m["supersededBy"] for m in stored["rememberMany"] if m["id"] == ORIGINAL
    )
    return original


def ranked(ranking: list[dict[str, Any]]) -> str:
    ids = [r["memory"]["id"] for r in ranking]
    where = ids.index(ORIGINAL) + 1 if ORIGINAL in ids else None
    return f"top 3 {ids[:3]}, the original at rank {where} of {len(ids)}"


def test_a_new_users_memory_answers_as_well_after_lifecycle_and_stays_right(
    service: Service, store_kind: str
) -> None:
    now = datetime.now(UTC)
    report = [f"[{store_kind}]"]  # the figures, printed (shown by pytest -s or on failure)
    problems: list[str] = []  # what fails the check
    misses: list[str] = []  # every unanswered question with its top 3, to explain them

    # The whole scenario where the rescheduling names the appointment it replaces.
    ns = "assistant"
    original = imported(service, ns, now, link=True)
    report.append(f"{ns}: the original after import: {original}")
    stages = [ask(service, ns, "before lifecycle", None)]
    rankings = [dentist_ranking(service, ns, None)]
    for label, days in (("after lifecycle now", 0), ("after lifecycle at +45 days", 45)):
        at = datetime.now(UTC) + timedelta(days=days)
        ran = run_lifecycle(service, ns, at)
        report.append(f"{ns}: {label}: counts {ran}, tiers {tiers(service, ns)}")
        stages.append(ask(service, ns, label, at))
        rankings.append(dentist_ranking(service, ns, at))
    answered = " / ".join(str(stage.answered) for stage in stages)
    report.append(f"{ns}: answered {answered} of {len(QUESTIONS)}")
    before = stages[0].answered
    if before < ENOUGH:
        problems.append(f"{ns}: {before} of {len(QUESTIONS)} answered before lifecycle")
    for stage, ranking in zip(stages, rankings, strict=True):
        report.append(f"{ns}: dentist {stage.name}: {ranked(ranking)}")
        if stage.answered < before:
            problems.append(f"{ns}: {stage.name}: {stage.answered} answered, {before} before")
        if stage.failures():
            misses.append(stage.failures())
        try:
            check_dentist(ranking, f"{ns}, {stage.name}")
        except AssertionError as exc:
            problems.append(str(exc))

    # The same import with the rescheduling unlinked: the automatic rule must link it.
    # (Lifecycle keeps a SUPERSEDES edge whoever drew it: checked above, not again.)
    ns = "assistant-unlinked"
    original = imported(service, ns, now, link=False)
    report.append(f"{ns}: the original after import: {original}")
    if original["supersededBy"] != [RESCHEDULED]:
        problems.append(f"{ns}: the automatic rule did not link the rescheduling")
    ranking = dentist_ranking(service, ns, None)
    report.append(f"{ns}: dentist: {ranked(ranking)}")
    try:
        check_dentist(ranking, ns)
    except AssertionError as exc:
        problems.append(str(exc))

    print("\n".join(report))
    assert not problems, "\n".join([*problems, *report, *misses])
