"""What callers hand the engine, and every check of it: one place for the limits.

``MemoryInput`` (one memory to remember) and ``RecallContext`` (what the agent is doing
now) are the input types; the functions below check them against a
:class:`~hippograph.graph.config.GraphConfig` and raise ``BadInput`` (or ``NotFound``,
``DuplicateId``) naming the field and the limit. The engine calls each once per request;
the CLI and GraphQL layers only parse and pass through.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hippograph.graph.config import GraphConfig
from hippograph.graph.model import (
    ENTITY_PREFIX,
    AssociationType,
    BadInput,
    DuplicateId,
    Link,
    Memory,
    MemoryKind,
    NotFound,
    Tier,
    parse_time,
)
from hippograph.graph.store import GraphStore

__all__ = [
    "MemoryInput",
    "RecallContext",
    "check_association",
    "check_batch_size",
    "check_context",
    "check_namespace",
    "check_neighbors_limit",
    "check_query",
    "check_recall",
    "normalised",
    "prepare",
    "unit_number",
    "validate",
]

MAX_NAMESPACE_CHARS = 128
MAX_NEIGHBORS = 10_000


@dataclass(slots=True)
class MemoryInput:
    """What a caller gives to remember one memory.

    ``supersedes`` names stored memories this one replaces (a ``SUPERSEDES``
    association to each: they stop being valid when this one happened). Remembering is
    idempotent: without an ``id``, content already stored in the namespace (the same
    after whitespace is normalised) returns the stored memory and counts as a use,
    unless ``force_new``; with an ``id`` already stored, the same content returns it and
    other content is an error naming ``id``.
    """

    content: str
    id: str | None = None
    kind: MemoryKind | str = MemoryKind.EVENT
    session_id: str | None = None
    occurred_at: datetime | str | None = None
    importance: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)
    force_new: bool = False


@dataclass(slots=True)
class RecallContext:
    """What the agent is doing now: its session, extra text, the time of the question,
    entities in play, and an optional time window of interest.

    ``since``/``until`` (when the remembered things happened) add to the context part
    of the score; with ``hard_window`` they are a filter instead: nothing outside the
    window comes back, and the window's own memories are searched even when the
    nearest vectors lie outside it. ``as_of`` answers as of a past time: only what had
    happened by then, and what was valid then (a memory superseded later counts as
    valid; :mod:`hippograph.graph.validity`). ``at`` defaults to ``as_of``, else now.
    """

    session_id: str | None = None
    text: str | None = None
    at: datetime | None = None
    entities: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    hard_window: bool = False
    as_of: datetime | None = None


def check_namespace(namespace: str) -> None:
    """A namespace is non-empty text of at most 128 characters.

    >>> check_namespace("agent-1")
    >>> check_namespace(" ")
    Traceback (most recent call last):
    ...
    hippograph.graph.model.BadInput: namespace: must be a non-empty string
    """
    if not isinstance(namespace, str) or not namespace.strip():
        raise BadInput("namespace", "must be a non-empty string")
    if len(namespace) > MAX_NAMESPACE_CHARS:
        raise BadInput("namespace", f"must be at most {MAX_NAMESPACE_CHARS} characters")


def unit_number(value: Any, field_: str) -> float:
    """A number from 0 to 1 (not a bool, not NaN), or BadInput naming the field.

    >>> unit_number(1, "weight")
    1.0
    >>> unit_number(float("nan"), "weight")
    Traceback (most recent call last):
    ...
    hippograph.graph.model.BadInput: weight: must be a number from 0 to 1
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(field_, "must be a number from 0 to 1")
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise BadInput(field_, "must be a number from 0 to 1")
    return number


def check_query(config: GraphConfig, query: str) -> None:
    """Recall's query text: non-empty, within the content limit."""
    if not isinstance(query, str) or not query.strip():
        raise BadInput("query", "must be non-empty text")
    if len(query) > config.max_content_chars:
        raise BadInput("query", f"is longer than {config.max_content_chars} characters")


def check_recall(
    config: GraphConfig, k: int, tiers: Sequence[Tier | str] | None, hops: int | None
) -> set[Tier]:
    """Validate recall bounds; the tiers to search (all but archived by default)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= config.max_k:
        raise BadInput("k", f"must be an integer from 1 to {config.max_k}")
    if hops is not None and (
        isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= config.max_hops
    ):
        raise BadInput("hops", f"must be an integer from 0 to {config.max_hops}")
    if not tiers:
        return set(Tier) - {Tier.ARCHIVED}
    allowed = set()
    for tier in tiers:
        try:
            allowed.add(Tier(tier))
        except ValueError:
            names = ", ".join(t.value for t in Tier)
            raise BadInput("tiers", f"unknown tier {tier!r}; one of {names}") from None
    return allowed


def check_context(context: RecallContext) -> None:
    """A recall context's time window: ``since`` not after ``until``; a hard window
    needs at least one end."""
    if context.since is not None and context.until is not None and context.since > context.until:
        raise BadInput(
            "context.since",
            f"{context.since.isoformat()} is after context.until ({context.until.isoformat()})",
        )
    if context.hard_window and context.since is None and context.until is None:
        raise BadInput("context.hardWindow", "needs context.since or context.until")


def check_neighbors_limit(limit: int) -> None:
    """How many associations ``neighbors`` lists: 1 to 10,000."""
    if not 1 <= limit <= MAX_NEIGHBORS:
        raise BadInput("limit", f"must be from 1 to {MAX_NEIGHBORS}")


def check_batch_size(config: GraphConfig, count: int) -> None:
    """A batch to remember holds from 1 to ``max_batch`` memories."""
    if not count:
        raise BadInput("inputs", "must contain at least one memory")
    if count > config.max_batch:
        raise BadInput("inputs", f"has {count} memories; the limit is {config.max_batch}")


def check_association(
    source: str, target: str, type: AssociationType | str, weight: float
) -> tuple[AssociationType, float]:
    """An explicit association's type (not MENTIONS, which is built) and weight."""
    try:
        kind = AssociationType(type)
    except ValueError:
        raise BadInput("type", f"unknown association type {type!r}") from None
    if kind == AssociationType.MENTIONS:
        raise BadInput("type", "MENTIONS associations are built from content, not given")
    checked = unit_number(weight, "weight")
    if source == target:
        raise BadInput("target", "must differ from source")
    return kind, checked


def _check_links(
    config: GraphConfig, namespace: str, memory_id: str, given: list[Link], field_: str
) -> list[Link]:
    if len(given) > config.max_links:
        raise BadInput(f"{field_}.links", f"at most {config.max_links} links per memory")
    links: list[Link] = []
    for j, link in enumerate(given):
        where = f"{field_}.links[{j}]"
        try:
            type_ = AssociationType(link.type)
        except ValueError:
            allowed = ", ".join(t.value for t in AssociationType if t.value != "MENTIONS")
            raise BadInput(
                f"{where}.type", f"unknown type {link.type!r}; one of {allowed}"
            ) from None
        if type_ == AssociationType.MENTIONS:
            raise BadInput(f"{where}.type", "MENTIONS associations are built, not given")
        if not isinstance(link.target, str) or not link.target:
            raise BadInput(f"{where}.target", "must be a memory id")
        if link.target.startswith(ENTITY_PREFIX):
            raise NotFound(
                f"{where}.target: memory {link.target!r} does not exist in {namespace!r}"
            )
        if link.target == memory_id:
            raise BadInput(f"{where}.target", "must differ from the memory's own id")
        weight = unit_number(link.weight, f"{where}.weight")
        links.append(Link(link.target, type_, weight))
    return links


def _check_supersedes(
    config: GraphConfig, namespace: str, memory_id: str, given: Any, field_: str
) -> list[Link]:
    if not isinstance(given, list | tuple):
        raise BadInput(f"{field_}.supersedes", "must be a list of memory ids")
    if len(given) > config.max_links:
        raise BadInput(f"{field_}.supersedes", f"at most {config.max_links} ids per memory")
    links: list[Link] = []
    for j, target in enumerate(given):
        where = f"{field_}.supersedes[{j}]"
        if not isinstance(target, str) or not target.strip():
            raise BadInput(where, "must be a memory id")
        if target.startswith(ENTITY_PREFIX):
            raise NotFound(f"{where}: memory {target!r} does not exist in {namespace!r}")
        if target == memory_id:
            raise BadInput(where, "a memory cannot supersede itself (a cycle of supersession)")
        if target in given[:j]:
            raise BadInput(where, f"names {target!r} twice")
        links.append(Link(target, AssociationType.SUPERSEDES, 1.0))
    return links


def normalised(content: str) -> str:
    r"""Content with runs of whitespace collapsed and the ends stripped: what idempotent
    remember compares.

    >>> normalised("  the  cat\n sat ")
    'the cat sat'
    """
    return " ".join(content.split())


def _same_content(stored: Memory, new: Memory) -> bool:
    if stored.content_hash != new.content_hash:
        return False
    # an archived stub keeps only a caption of its content; its hash stands for it
    return stored.tier == Tier.ARCHIVED or normalised(stored.content) == normalised(new.content)


def _check_metadata(config: GraphConfig, metadata: Any, field_: str) -> dict[str, Any]:
    metadata = metadata or {}
    if not isinstance(metadata, dict):
        raise BadInput(f"{field_}.metadata", "must be a JSON object")
    try:
        encoded = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError):
        raise BadInput(f"{field_}.metadata", "must be JSON-serialisable, no NaN") from None
    if len(encoded.encode("utf-8")) > config.max_metadata_bytes:
        raise BadInput(f"{field_}.metadata", f"exceeds {config.max_metadata_bytes} bytes")
    return metadata


def prepare(
    config: GraphConfig, namespace: str, item: MemoryInput, field_: str, now: datetime
) -> tuple[Memory, list[Link]]:
    """Check one input against every rule of its own fields; the memory and its
    normalised links (ids and link targets are checked against the store by
    :func:`validate`)."""
    content = item.content
    if not isinstance(content, str) or not content.strip():
        raise BadInput(f"{field_}.content", "must be non-empty text")
    if len(content) > config.max_content_chars:
        raise BadInput(
            f"{field_}.content",
            f"is {len(content)} characters; the limit is {config.max_content_chars}",
        )
    try:
        kind = MemoryKind(item.kind)
    except ValueError:
        allowed = ", ".join(k.value for k in MemoryKind)
        raise BadInput(f"{field_}.kind", f"unknown kind {item.kind!r}; one of {allowed}") from None
    importance = unit_number(item.importance, f"{field_}.importance")
    occurred = now
    if item.occurred_at is not None:
        occurred = parse_time(item.occurred_at, f"{field_}.occurredAt")
    memory_id = item.id if item.id is not None else uuid.uuid4().hex
    if not isinstance(memory_id, str) or not memory_id.strip():
        raise BadInput(f"{field_}.id", "must be a non-empty string")
    if len(memory_id) > config.max_id_chars:
        raise BadInput(f"{field_}.id", f"must be at most {config.max_id_chars} characters")
    if memory_id.startswith(ENTITY_PREFIX):
        raise BadInput(f"{field_}.id", f"must not start with {ENTITY_PREFIX!r} (reserved)")
    if item.session_id is not None and (
        not isinstance(item.session_id, str) or len(item.session_id) > config.max_id_chars
    ):
        raise BadInput(f"{field_}.sessionId", f"must be text of at most {config.max_id_chars}")
    metadata = _check_metadata(config, item.metadata, field_)
    links = _check_links(config, namespace, memory_id, item.links, field_)
    links += _check_supersedes(config, namespace, memory_id, item.supersedes, field_)
    memory = Memory(
        id=memory_id,
        namespace=namespace,
        content=content,
        kind=kind,
        tier=Tier.SEMANTIC if kind == MemoryKind.CONCEPT else Tier.WORKING,
        session_id=item.session_id,
        created_at=now,
        occurred_at=occurred,
        importance=importance,
        metadata=metadata,
    )
    return memory, links


def validate(
    config: GraphConfig,
    store: GraphStore,
    namespace: str,
    items: Sequence[MemoryInput],
    now: datetime,
    *,
    field: str = "inputs",
    existing: dict[int, Memory] | None = None,
) -> list[tuple[Memory, list[Link]]]:
    """Check a batch as ``remember_many`` does, writing nothing.

    Every field is checked; ids must be unique in the batch; each link and each
    ``supersedes`` id must name a stored memory or one earlier in the batch. Raises
    ``BadInput`` (``DuplicateId`` for an id stored with other content) or ``NotFound``,
    naming the item's field. Returns the prepared memories and links, and fills
    ``existing`` (position -> memory) with the items that repeat a stored memory or an
    earlier one of the batch (see :class:`MemoryInput`): those are not to be written.
    """
    repeats: dict[int, Memory] = {} if existing is None else existing
    single = len(items) == 1 and field == "inputs"
    prepared = [
        prepare(config, namespace, item, "input" if single else f"{field}[{i}]", now)
        for i, item in enumerate(items)
    ]
    position: dict[str, int] = {}
    for i, (memory, _) in enumerate(prepared):
        if memory.id in position:
            raise BadInput(
                f"{field}[{i}].id", f"memory id {memory.id!r} appears twice in the batch"
            )
        position[memory.id] = i
    stored = store.seqs_of(namespace, list(position))
    by_id = {m.id: m for m in store.get(namespace, list(stored))} if stored else {}
    for memory_id in stored:
        i = position[memory_id]
        found = by_id.get(memory_id)
        if found is None or not _same_content(found, prepared[i][0]):
            where = "input" if single else f"{field}[{i}]"
            raise DuplicateId(
                f"{where}.id",
                f"memory {memory_id!r} already exists in namespace {namespace!r} "
                "with other content",
            )
        repeats[i] = found
    _find_repeats(store, namespace, items, prepared, repeats)
    outside = sorted({link.target for _, links in prepared for link in links} - set(position))
    found_seqs = store.seqs_of(namespace, outside) if outside else {}
    for i, (_, links) in enumerate(prepared):
        if i in repeats:
            continue  # stored already, with its links
        own = len(items[i].links)
        for j, link in enumerate(links):
            earlier = position.get(link.target, i) < i
            if not earlier and not (
                link.target in found_seqs and not link.target.startswith(ENTITY_PREFIX)
            ):
                where = "input" if single else f"{field}[{i}]"
                name = f"links[{j}].target" if j < own else f"supersedes[{j - own}]"
                raise NotFound(
                    f"{where}.{name}: memory {link.target!r} is neither stored "
                    f"in namespace {namespace!r} nor earlier in the batch"
                )
    return prepared


def _find_repeats(
    store: GraphStore,
    namespace: str,
    items: Sequence[MemoryInput],
    prepared: list[tuple[Memory, list[Link]]],
    repeats: dict[int, Memory],
) -> None:
    """Mark the items without an id (and without ``force_new``) whose content is stored
    already, or given earlier in the batch."""
    open_ = [
        i
        for i, item in enumerate(items)
        if item.id is None and not item.force_new and i not in repeats
    ]
    if not open_:
        return
    hashes = sorted({prepared[i][0].content_hash for i in open_})
    stored: dict[str, list[Memory]] = {}
    for memory in store.by_content_hash(namespace, hashes):
        stored.setdefault(memory.content_hash, []).append(memory)
    first_in_batch: dict[str, Memory] = {}
    for i in open_:
        memory = prepared[i][0]
        same = [m for m in stored.get(memory.content_hash, []) if _same_content(m, memory)]
        if same:
            repeats[i] = same[0]
            continue
        key = normalised(memory.content)
        if key in first_in_batch:
            repeats[i] = first_in_batch[key]
        else:
            first_in_batch[key] = memory
