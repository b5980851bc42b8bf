"""The memory graph's vocabulary: memories, associations, tiers, kinds, and the errors
every caller sees.

Times are timezone-aware UTC ``datetime`` values at the edges of the package and float
epoch seconds inside (stores, arrays); :func:`to_epoch` and :func:`from_epoch` convert.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np

__all__ = [
    "ENTITY_PREFIX",
    "Association",
    "AssociationType",
    "BadInput",
    "DuplicateId",
    "HippographError",
    "Link",
    "Memory",
    "MemoryKind",
    "ModelMismatch",
    "NotFound",
    "StoreUnavailable",
    "Tier",
    "content_hash",
    "from_epoch",
    "parse_time",
    "to_epoch",
]

# Entity nodes share the association graph with memories; their ids carry this prefix
# so an edge target is unambiguous, and memory ids may not start with it.
ENTITY_PREFIX = "entity:"
# Passage vectors (a memory's sentences, and its context passage: the memory read after
# the one before it in its session) are keyed (seq << PASSAGE_BITS) | position; the
# context passage takes the last position, sentences the ones from 0.
PASSAGE_BITS = 6
CONTEXT_POSITION = (1 << PASSAGE_BITS) - 1
MAX_PASSAGES = CONTEXT_POSITION


def passage_ids(seq: int, sentences: int, context: bool) -> list[int]:
    """Passage-index ids of a memory with ``sentences`` sentence vectors and, with
    ``context``, a context vector."""
    first = seq << PASSAGE_BITS
    ids = list(range(first, first + sentences))
    if context:
        ids.append(first + CONTEXT_POSITION)
    return ids


class Tier(StrEnum):
    WORKING = "working"
    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    ARCHIVED = "archived"


class MemoryKind(StrEnum):
    EVENT = "event"
    FACT = "fact"
    SKILL = "skill"
    CONCEPT = "concept"


class AssociationType(StrEnum):
    SIMILAR_TO = "SIMILAR_TO"
    FOLLOWS = "FOLLOWS"
    MENTIONS = "MENTIONS"
    PART_OF = "PART_OF"
    DERIVED_FROM = "DERIVED_FROM"
    CAUSES = "CAUSES"
    CONTRADICTS = "CONTRADICTS"
    RELATED_TO = "RELATED_TO"
    # new -> old: the source restates the target with a changed value, so the target is
    # no longer valid from the source's occurred_at on (graph.validity)
    SUPERSEDES = "SUPERSEDES"

    @property
    def code(self) -> int:
        """Small integer used in the CSR arrays (stable: the declaration order)."""
        return _TYPE_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> AssociationType:
        return _TYPES_BY_CODE[code]


_TYPES_BY_CODE = list(AssociationType)
_TYPE_CODES = {t: i for i, t in enumerate(_TYPES_BY_CODE)}


class HippographError(Exception):
    """Base of the errors a caller can act on; ``code`` is machine-readable."""

    code = "INTERNAL"


class BadInput(HippographError, ValueError):
    """An input broke a rule; ``field`` names it. Nothing was changed."""

    code = "BAD_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(HippographError, KeyError):
    code = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError quotes its argument; we want the sentence
        return str(self.args[0]) if self.args else "not found"


class DuplicateId(BadInput):
    """A caller-chosen memory id already exists in the namespace."""


class StaleChanges(HippographError):
    """Changes planned from an earlier read of the store touch what was written since
    (a memory recalled, an association set, an edge added to a memory the plan
    removes). Nothing was applied; plan again from a fresh read."""

    code = "STALE_CHANGES"

    def __init__(self, stale: int) -> None:
        super().__init__(
            f"{stale} planned changes touch what was written after their snapshot; nothing applied"
        )
        self.stale = stale


class StoreUnavailable(HippographError):
    """The store cannot be reached or refuses the credentials (Neo4j)."""

    code = "STORE_UNAVAILABLE"


class ModelMismatch(HippographError):
    """The stored embeddings come from another model than the graph's encoder."""

    code = "MODEL_MISMATCH"


def to_epoch(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def from_epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def parse_time(value: str | datetime, field: str = "time") -> datetime:
    """Parse an ISO-8601 date or datetime; naive values are taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            raise BadInput(field, f"not an ISO-8601 date or datetime: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_SPACE = re.compile(r"\s+")


def content_hash(content: str) -> str:
    """Hash of the normalised text (NFKC, casefolded, whitespace collapsed), for dedup."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFKC", content).casefold()).strip()
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Memory:
    """A node of the memory graph.

    ``occurred_at`` is when the remembered thing happened (defaults to ``created_at``,
    when it was stored); recency is measured from it, so replayed history behaves as it
    did live.
    """

    id: str
    namespace: str
    content: str
    kind: MemoryKind = MemoryKind.EVENT
    tier: Tier = Tier.WORKING
    session_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    occurred_at: datetime | None = None
    last_accessed_at: datetime | None = None
    access_count: int = 0
    importance: float = 0.5
    content_hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    # one row per passage (sentence) of a long memory; None when it is one passage
    passages: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the vector of the previous memory of its session and this one, read together
    context_embedding: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.occurred_at is None:
            self.occurred_at = self.created_at
        if not self.content_hash:
            self.content_hash = content_hash(self.content)

    @property
    def when(self) -> datetime:
        """When it happened (``occurred_at``, never None after construction)."""
        assert self.occurred_at is not None
        return self.occurred_at


@dataclass(slots=True)
class Association:
    """A directed, typed, weighted edge; one per (source, target, type).

    ``explicit`` marks edges a caller asked for (they decay slower in lifecycle).
    Targets of ``MENTIONS`` are entity ids (``entity:<key>``).
    """

    source: str
    target: str
    type: AssociationType
    weight: float
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_activated_at: datetime | None = None
    activation_count: int = 0
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class Link:
    """An explicit association a caller gives with a memory: this memory -> target."""

    target: str
    type: AssociationType = AssociationType.RELATED_TO
    weight: float = 1.0
