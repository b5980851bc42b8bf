"""Supersession: whether a new memory restates an old one with a changed value.

When an agent remembers "The dentist appointment moved to November 19 at 10am" while
"Dentist appointment with Dr. Patel on November 12 at 3pm" is stored, the new memory
*supersedes* the old one, which stops being true. This module decides that from the two
texts alone, with rules (no model), because it runs on a few candidate pairs at every
write. The caller picks the candidates (memories of the namespace that share an entity
with the new one and are close in embedding space); this module only judges a pair.

The rule
--------
Each text is read into *value slots*, *entities*, *content words*, a *polarity* and
*update cues*:

* **Value slots** are dates ("November 12", "12 May", "2024-11-12", "Tuesday", "the
  12th"), times ("3pm", "15:00", "noon") and numbers ("$1,450", "555-0142", "4th",
  "three"). A slot *changed* when the old text has a value of that kind the new one lacks
  and the new one has a value of that kind the old one lacks. A value only in the new
  text is an addition, not a change.
* **Entities** come from :func:`hippograph.graph.entities.extract_entities`. One found
  in both texts anchors the subject. A name or place *changed* when exactly one entity of
  the old text is replaced by exactly one of the new ("Berlin" by "Munich"). The first
  word of a sentence is too often a common word ("Dentist appointment ...") to count as
  a replaced name, so an unshared entity there is read as a content word. A name that
  starts the other ("Mel", "Melanie") is the same person, and one spoken to ("Hey
  Mel", "What about you, Mel?") is ignored: chat changes its addressee all the time.
* **Content words** are the remaining words, stemmed, without stopwords, update cues,
  frequency words ("usually") and relative times ("last month"). The new text must add
  none: a follow-up that adds information ("... with my neighbor Greg") restates nothing.
  The old text may hold at most :data:`MAX_DROPPED` words the new one leaves out. The one
  exception is a cued change of dates, times or numbers, which people word afresh ("Maya
  got a new phone number, it's ... now"): up to :data:`MAX_ADDED` words added and
  :data:`MAX_DROPPED_CUED` left out. The
  two must share an entity or a content word, and a content word unless the new text
  carries an update cue ("Anna moved to Munich" shares only "Anna"). A word owned
  through a possessive ("Maria's *husband*") must be in both: it names another subject.
* **Polarity**: a negation ("not", "n't", "never", "no longer", "anymore") in one text
  and not the other is a change of its own ("I love sushi" / "I don't like sushi
  anymore"); a few preference verbs count as one ("love", "like", "enjoy", "adore").
  Chat is full of idioms that flip without restating anything ("See ya!" / "I don't
  see why not!", "Keep going!" / "Never give up!"), so a flip also needs the word the
  negation applies to (the first content word after it) in both texts, and no word of
  the old text left out.
* **Update cues** ("moved", "rescheduled", "now", "instead", "actually", "new", ...):
  an event recurs ("Had coffee with Tom on Monday", "... on Friday"), so when either
  memory is an ``"event"`` the new text must carry a cue the old one lacks, or flip the
  polarity. For facts and skills a changed value is enough.

A pair supersedes when these hold and exactly one kind of change is found: a polarity
flip alone, a replaced entity alone, or changed dates, times and numbers (together, as
in a rescheduled appointment). Precision comes first: a false supersession hides a true
memory, while a missed one leaves two memories where one would do.

Example
-------
>>> found = supersedes(
...     "Dentist appointment with Dr. Patel on November 12 at 3pm",
...     "The dentist appointment moved to November 19 at 10am",
... )
>>> found.explain()
'date changed: November 12 -> November 19'
>>> supersedes("Had coffee with Tom on Monday", "Had coffee with Tom on Friday") is None
True
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from hippograph.graph.entities import extract_entities
from hippograph.graph.text import analyze

__all__ = ["MAX_ADDED", "MAX_DROPPED", "MAX_DROPPED_CUED", "REASONS", "Supersession", "supersedes"]

REASONS = ("date", "time", "number", "place", "name", "negation")
MAX_DROPPED = 2  # content words (or names) of the old text the new one may leave out
# A cued change of dates, times or numbers ("Actually, the dentist appointment moved to
# February 25 at 8am") is how people restate an appointment or a number, in their own
# words: then the new text may add up to MAX_ADDED content words and leave out up to
# MAX_DROPPED_CUED of the old one's.
MAX_ADDED = 3
MAX_DROPPED_CUED = 4


@dataclass(frozen=True, slots=True)
class Supersession:
    """Why a new memory supersedes an old one.

    ``reason`` is one of :data:`REASONS`; ``old`` and ``new`` are the changed values as
    written. For ``"negation"``, ``old`` is empty and ``new`` is the new text's negation
    ("don't"), or empty when the new text dropped the old one's negation.
    """

    reason: str
    old: str
    new: str

    def explain(self) -> str:
        """One line for a person.

        >>> Supersession("place", "Berlin", "Munich").explain()
        'place changed: Berlin -> Munich'
        >>> Supersession("negation", "", "no longer").explain()
        'negated: no longer'
        """
        if self.reason == "negation":
            return f"negated: {self.new}" if self.new else "negation dropped"
        return f"{self.reason} changed: {self.old} -> {self.new}"


# -- reading one text ------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"  # noqa: E501
_WEEKDAY = r"(?i:(?:mon|tues?|wed(?:nes)?|thu(?:rs)?|fri|satur|sun)day)s?"
_ORDINAL = r"(?:st|nd|rd|th)"
_NUMBER_WORDS = {
    word: str(number)
    for number, word in enumerate(
        "one two three four five six seven eight nine ten eleven twelve".split(), start=1
    )
}
_STREET = r"(?:Street|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Boulevard|Blvd|Way|Place|Court)"

# (kind, pattern); applied in order, each match masked before the next pattern runs.
_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b(\d{4})-(\d\d)-(\d\d)\b")),
    ("date", re.compile(rf"\b({_MONTH})\s+(\d{{1,2}}){_ORDINAL}?\b(?:,?\s+\d{{4}}\b)?")),
    ("date", re.compile(rf"\b(\d{{1,2}}){_ORDINAL}?\s+(?:of\s+)?({_MONTH})(?:,?\s+\d{{4}}\b)?")),
    ("date", re.compile(rf"\b({_MONTH})\s+(\d{{4}})\b")),
    ("date", re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/\d{2,4})?\b")),
    # "on the 12th", "the 15th instead": an ordinal not followed by a noun ("4th floor")
    ("date", re.compile(rf"\bthe\s+(\d{{1,2}}){_ORDINAL}\b(?!\s+(?!of\b|at\b|instead\b)[a-z])")),
    ("date", re.compile(rf"\b{_WEEKDAY}\b")),
    ("date", re.compile(rf"(?<![.!?:]\s)(?<!^)\b({_MONTH})(?!\w)")),
    ("time", re.compile(r"\b(\d{1,2})(?::(\d\d))?\s*([ap])\.?m\b\.?", re.IGNORECASE)),
    ("time", re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")),
    ("time", re.compile(r"\b(noon|midday|midnight)\b", re.IGNORECASE)),
    ("number", re.compile(r"[$€£]?\b\d+(?:[.,]\d+)*(?:-\d+)*(?:" + _ORDINAL + r")?\b%?")),
    ("number", re.compile(r"\b(?i:" + "|".join(_NUMBER_WORDS) + r")\b")),
)
_HOUSE_NUMBER = re.compile(rf"\b\d+[A-Za-z]?\s+(?=(?:[A-Z]\w+\s+){{1,3}}{_STREET}\b)")
_NEGATION = re.compile(r"\b(?:not|never|no\s+longer|any\s?more|cannot|\w+n['’]t)\b", re.IGNORECASE)
_CUE = re.compile(
    r"\b(?:moved|moving|moves|resched\w*|chang(?:ed|ing|es)|now|nowadays|these\s+days|no\s+longer"
    r"|any\s?more|instead|actually|updated?|updates|postponed|pushed\s+(?:back|out)"
    r"|brought\s+forward|switched|switching|new|renamed|went\s+(?:up|down)|raised|increased"
    r"|decreased|dropped|delayed|cancell?ed|turns\s+out|turned\s+out|after\s+all|correction"
    r"|rather\s+than|got\s+promoted|promoted)\b",
    re.IGNORECASE,
)
_FILLER = re.compile(
    r"\b(?:usually|occasionally|sometimes|often|always|normally|generally|every|each"
    r"|today|tonight|tomorrow|yesterday|(?:last|next|this)\s+(?:week|month|year|weekend)"
    r"|mornings?|afternoons?|evenings?|nights?)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[.,;:!?()\n-]")
_SCOPE_WORDS = 4  # a negation applies to the first content word among the next four
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]*)*")
_POSSESSIVE = re.compile(r"['’]s?$")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n])[\s,|]*$")
# A replaced entity is a place after these words (not after "to": "renamed the dog to Rex").
_LOCATIVE = frozenset("in at from near into inside outside".split())
_SKIPPED = frozenset("the a an |".split())  # between a locative and its place
_GREETINGS = frozenset("hey hi hello thanks thank bye wow dear congrats congratulations".split())
# Stems read as one word: a preference, or where someone lives.
_SYNONYMS = {"love": "like", "enjoi": "like", "ador": "like", "fan": "like"}
_SYNONYMS |= {"address": "live", "resid": "live"}
_HONORIFICS = frozenset("mr mrs ms mx dr prof".split())  # "Dr. Patel" is Patel
_TRAILING_HONORIFIC = re.compile(rf"\b(?:{'|'.join(_HONORIFICS)})\.?\s*$", re.IGNORECASE)
_BREAK = " | "  # what a removed span becomes: it ends a run of capitalised words


def _normalise(kind: str, match: re.Match[str]) -> str:
    """A value's comparable form: "nov 12th" and "November 12" are one date."""
    text = match.group().casefold().rstrip(".")
    if kind == "date":
        groups = [g for g in match.groups() if g]
        months = [str(_MONTHS[g.casefold()[:3]]) for g in groups if not g.isdigit()]
        days = [str(int(g)) for g in groups if g.isdigit()]
        if text.startswith(("the ", "on ")) or (not months and len(days) == 1):
            return f"day {days[0]}"
        if months or days:
            return "-".join(months + days)
        return re.sub(r"s$", "", text)  # a weekday
    if kind == "time":
        if text in ("noon", "midday"):
            return "12:00"
        if text == "midnight":
            return "0:00"
        hour, minute = int(match.group(1)), int(match.group(2) or 0)
        if len(match.groups()) == 3:  # am / pm
            hour = hour % 12 + (12 if match.group(3).casefold() == "p" else 0)
        return f"{hour}:{minute:02d}"
    text = _NUMBER_WORDS.get(text, text)
    return re.sub(r"^[$€£]|(?<=\d)(?:st|nd|rd|th)$|,", "", text)


@dataclass(slots=True)
class _Entity:
    label: str
    initial: bool  # first word of a sentence: maybe a common word
    place: bool  # after "in", "at", "from", ... or a street
    addressed: bool  # "Hey Mel", "Thanks, Jo": who is spoken to, not spoken of


@dataclass(slots=True)
class _Reading:
    """What one text says, for comparing it with another."""

    # kind: [(normalised value, value as written)]
    values: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    entities: dict[str, _Entity] = field(default_factory=dict)  # key: entity
    entity_words: dict[str, set[str]] = field(default_factory=dict)  # key: folded words
    words: list[tuple[str, str]] = field(default_factory=list)  # (folded, no "'s"; stem)
    possessed: set[str] = field(default_factory=set)  # stems owned through a possessive
    negation: str = ""
    negated: set[str] = field(default_factory=set)  # stems a negation applies to
    cues: set[str] = field(default_factory=set)


def _remove(pattern: re.Pattern[str], text: str, found: Callable[[re.Match[str]], None]) -> str:
    def replace(match: re.Match[str]) -> str:
        found(match)
        return _BREAK

    return pattern.sub(replace, text)


def _place_entity(masked: str, label: str) -> _Entity:
    """Where ``label`` first stands in ``masked``: at a sentence start, after a locative,
    or set off by commas as the one spoken to ("What about you, Mel?")."""
    at = max(masked.find(label), 0)
    before = _TRAILING_HONORIFIC.sub("", masked[:at])
    previous = [w for w in before.casefold().split() if w not in _SKIPPED][-1:] or [""]
    following = masked[at + len(label) :].lstrip()[:1]
    set_off = before.rstrip().endswith(",") and following != "" and following in "!?,"
    return _Entity(
        label=label,
        initial=_SENTENCE_END.search(before) is not None,
        place=previous[0] in _LOCATIVE or re.search(rf"\b{_STREET}$", label) is not None,
        addressed=set_off or previous[0].strip(",!") in _GREETINGS,
    )


def _read(text: str) -> _Reading:
    reading = _Reading()
    masked = _HOUSE_NUMBER.sub(_BREAK, text)
    for kind, pattern in _VALUE_PATTERNS:

        def add_value(match: re.Match[str], kind: str = kind) -> None:
            value = (_normalise(kind, match), " ".join(match.group().split()))
            reading.values.setdefault(kind, []).append(value)

        masked = _remove(pattern, masked, add_value)

    def add_negation(match: re.Match[str]) -> None:
        reading.negation = reading.negation or match.group()
        scope = _CLAUSE_END.split(match.string[match.end() :], maxsplit=1)[0]
        for word in _WORD.findall(scope)[:_SCOPE_WORDS]:
            stems = analyze(word)
            if stems and not _CUE.fullmatch(word):
                reading.negated.add(_SYNONYMS.get(stems[0], stems[0]))
                break

    def add_cue(match: re.Match[str]) -> None:
        reading.cues.add(" ".join(match.group().casefold().split()))

    masked = _remove(_NEGATION, masked, add_negation)
    masked = _remove(_CUE, masked, add_cue)
    masked = _remove(_FILLER, masked, lambda _: None)
    addressed: set[str] = set()
    for entity in extract_entities(masked):
        found = _place_entity(masked, entity.label)
        if found.addressed:
            addressed |= set(entity.key.split())
        else:
            reading.entities[entity.key] = found
            reading.entity_words[entity.key] = set(entity.key.split())
    owner = False  # the previous word was a possessive: this one is owned
    for match in _WORD.finditer(masked):
        word = match.group()
        stems = analyze(word)
        if stems and stems[0] not in _HONORIFICS and word.casefold() not in addressed:
            stem = _SYNONYMS.get(stems[0], stems[0])
            reading.words.append((_POSSESSIVE.sub("", word.casefold()), stem))
            if owner and not word[:1].isupper():
                reading.possessed.add(stem)
        owner = bool(_POSSESSIVE.search(word)) and word[:1].isupper()
    return reading


def _content(reading: _Reading, skip: set[str]) -> set[str]:
    """The stems of ``reading``'s words, without the words of the entities in ``skip``."""
    excluded = {w for key in skip for w in reading.entity_words.get(key, ())}
    return {stem for word, stem in reading.words if word not in excluded}


def _value_changes(old: _Reading, new: _Reading) -> list[Supersession]:
    changes = []
    for kind in ("date", "time", "number"):
        before, after = old.values.get(kind, []), new.values.get(kind, [])
        gone = [shown for norm, shown in before if norm not in {n for n, _ in after}]
        came = [shown for norm, shown in after if norm not in {n for n, _ in before}]
        if gone and came:
            changes.append(Supersession(kind, gone[0], came[0]))
    return changes


# -- judging a pair --------------------------------------------------------------------


def supersedes(
    old: str, new: str, *, old_kind: str = "event", new_kind: str = "event"
) -> Supersession | None:
    """Whether ``new`` restates ``old`` with a changed value (see the module docstring).

    Parameters
    ----------
    old, new:
        The stored memory's text and the new memory's text.
    old_kind, new_kind:
        Their kinds ("event", "fact", "skill", "concept"). When either is an event, the
        new text must carry an update cue ("moved", "now", "instead", ...) or a negation
        the old lacks, because events recur.

    Returns
    -------
    Supersession | None
        The change found, or None when ``new`` does not supersede ``old``. Pure and
        fast (a fraction of a millisecond): meant for a few candidate pairs per write.

    Examples
    --------
    >>> supersedes("My sister Anna lives in Berlin", "Anna moved to Munich last month")
    Supersession(reason='place', old='Berlin', new='Munich')
    >>> supersedes("I love sushi", "I don't like sushi anymore").reason
    'negation'
    >>> print(supersedes("Rent is $1,450 a month", "Rent is $1,600 a month"))
    None
    >>> supersedes("Rent is $1,450 a month", "Rent is $1,600 a month",
    ...            old_kind="fact", new_kind="fact").explain()
    'number changed: $1,450 -> $1,600'
    """
    if not old.strip() or not new.strip() or " ".join(old.split()) == " ".join(new.split()):
        return None
    before, after = _read(old), _read(new)
    shared = set(before.entities) & set(after.entities)
    gone = [k for k, e in before.entities.items() if k not in shared and not e.initial]
    came = [k for k, e in after.entities.items() if k not in shared and not e.initial]
    old_words = _content(before, shared | set(gone))
    new_words = _content(after, shared | set(came))
    if len(gone) == len(came) == 1 and (gone[0].startswith(came[0]) or came[0].startswith(gone[0])):
        gone = came = []  # "Mel" and "Melanie": one person
    swapped = len(gone) == 1 and len(came) == 1
    dropped = len(old_words - new_words) + (0 if swapped else len(gone))
    added = len(new_words - old_words)
    cued = bool(after.cues - before.cues)
    if came and not swapped:
        return None
    if added or dropped > MAX_DROPPED:
        # allowed only for a cued change of values, in the writer's own words
        restated = cued and not swapped and _value_changes(before, after)
        if not restated or added > MAX_ADDED or dropped > MAX_DROPPED_CUED:
            return None
    if not (shared or old_words & new_words) or not (old_words & new_words or cued):
        return None  # no common subject, or nothing said of it in both
    if (before.possessed | after.possessed) - (old_words & new_words):
        return None  # "Maria's husband" is not Maria
    flipped = bool(before.negation) != bool(after.negation)
    if "event" in (old_kind, new_kind) and not (flipped or cued):
        return None
    changes = _value_changes(before, after)
    if flipped:
        # The same words, one side negated: "See ya!" / "I don't see why not!" is no flip.
        negated = before.negated | after.negated
        if changes or swapped or dropped or not negated or negated - (old_words & new_words):
            return None
        return Supersession("negation", "", after.negation)
    if swapped:
        if changes:
            return None  # a different person and a different day: another event
        was, now = before.entities[gone[0]], after.entities[came[0]]
        reason = "place" if was.place or now.place else "name"
        return Supersession(reason, was.label, now.label)
    return changes[0] if changes else None
