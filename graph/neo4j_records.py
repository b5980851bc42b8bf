"""Memories and associations as the Neo4j store sends and receives them.

Built on the record codec (:mod:`hippograph.graph.records`): a memory's node map is its
:func:`~hippograph.graph.records.memory_record` with what Neo4j keeps differently.
Vectors are float lists (Neo4j ``LIST<FLOAT>``, which the FAISS indexes read back
without decoding); times are ISO 8601 strings with the offset they were given, turned
into ``DATETIME`` values by ``datetime()`` in the statement (the codec's text is UTC);
metadata is a JSON string (a node property cannot hold a map). The node map also
carries what only the Browser uses: ``caption``, ``passage_count`` and, for an archived
stub, ``archived_at`` and ``archive_run``.

Reading does not use the codec's readers: they take base64 vectors and check every
field as untrusted input, where a store read gets native lists, optional embeddings and
values the store itself wrote.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import numpy as np

from hippograph.graph.model import Association, AssociationType, Memory, MemoryKind, Tier
from hippograph.graph.neo4j_statements import CAPTION_CHARS
from hippograph.graph.records import memory_record

__all__ = [
    "association_from_record",
    "caption",
    "edge_row",
    "memory_from_map",
    "memory_row",
    "native_time",
    "time_param",
]

_SPACE = re.compile(r"\s+")


def caption(content: str) -> str:
    """The first :data:`CAPTION_CHARS` characters of ``content``, whitespace collapsed."""
    text = _SPACE.sub(" ", content).strip()
    return text if len(text) <= CAPTION_CHARS else text[: CAPTION_CHARS - 1] + "…"


def native_time(value: Any) -> datetime | None:
    """A driver temporal value, or the ISO string of one (reads return ``toString``),
    or None, as an aware Python datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    native = value.to_native() if hasattr(value, "to_native") else value
    assert isinstance(native, datetime)
    return native


class _Floats(list[float]):
    """A vector parameter. The driver formats every statement's parameters for its debug
    log even when nothing logs (``Bolt5x5.run``); the default repr of a 384-float list
    cost more than sending it."""

    def __repr__(self) -> str:
        return f"<{len(self)} floats>"


def _vector(value: np.ndarray | None) -> list[float] | None:
    return None if value is None else _Floats(np.asarray(value, np.float32).ravel().tolist())


def time_param(value: datetime | None) -> str | None:
    """A parameter time: ISO 8601, made a DATETIME by ``datetime()`` in the statement."""
    return None if value is None else value.isoformat()


def _archived(memory: Memory) -> tuple[datetime | None, str | None]:
    """(archived_at, archive file) of an archived stub, for Browser queries; the
    lifecycle's archive job writes them into the stub's metadata."""
    ref = memory.metadata.get("archive") if memory.embedding is None else None
    if not isinstance(ref, dict):
        return None, None
    at, file = ref.get("at"), ref.get("file")
    try:
        when = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    return when, file if isinstance(file, str) else None


def memory_row(memory: Memory, seq: int) -> dict[str, Any]:
    """The node properties of ``memory`` (``SET m = row``), but for ``namespace``."""
    row = memory_record(memory, vector=_vector)
    del row["record"]
    archived_at, archive_run = _archived(memory)
    row.update(
        seq=seq,
        caption=caption(memory.content),
        created_at=time_param(memory.created_at),
        occurred_at=time_param(memory.when),
        last_accessed_at=time_param(memory.last_accessed_at),
        access_count=int(memory.access_count),
        importance=float(memory.importance),
        metadata=json.dumps(memory.metadata, ensure_ascii=False, sort_keys=True),
        passage_count=0 if memory.passages is None else len(memory.passages),
        archived_at=time_param(archived_at),
        archive_run=archive_run,
    )
    return row


def edge_row(edge: Association, src: int, dst: int, now: datetime) -> dict[str, Any]:
    """The parameter row of an edge from node ``src`` to ``dst`` (seqs); ``now`` is
    its creation time when it has none."""
    return {
        "src": src,
        "dst": dst,
        "weight": float(edge.weight),
        "created_at": time_param(edge.created_at or now),
        "explicit": bool(edge.explicit),
        "last_activated_at": time_param(edge.last_activated_at),
        "activation_count": int(edge.activation_count),
    }


def memory_from_map(m: dict[str, Any]) -> Memory:
    """The memory a read statement's memory map holds (vectors only if it has them)."""
    created = native_time(m["created_at"])
    assert created is not None
    memory = Memory(
        id=m["id"],
        namespace=m["namespace"],
        content=m["content"],
        kind=MemoryKind(m["kind"]),
        tier=Tier(m["tier"]),
        session_id=m["session_id"],
        created_at=created,
        occurred_at=native_time(m["occurred_at"]),
        last_accessed_at=native_time(m["last_accessed_at"]),
        access_count=int(m["access_count"]),
        importance=float(m["importance"]),
        content_hash=m["content_hash"] or "",
        metadata=json.loads(m["metadata"]) if m["metadata"] else {},
    )
    if m.get("embedding") is not None:
        memory.embedding = np.array(m["embedding"], dtype=np.float32)
        if m.get("passages") is not None:
            memory.passages = np.array(m["passages"], dtype=np.float32).reshape(
                -1, len(memory.embedding)
            )
        if m.get("context_embedding") is not None:
            memory.context_embedding = np.array(m["context_embedding"], dtype=np.float32)
    return memory


def association_from_record(r: Any) -> Association:
    """The association a read statement's record of edge fields holds."""
    created = native_time(r["created_at"])
    assert created is not None
    return Association(
        source=r["source"],
        target=r["target"],
        type=AssociationType(r["type"]),
        weight=float(r["weight"]),
        created_at=created,
        last_activated_at=native_time(r["last_activated_at"]),
        activation_count=int(r["activation_count"] or 0),
        explicit=bool(r["explicit"]),
    )
