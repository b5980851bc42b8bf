"""The record codec: memories and associations as plain JSON-able dicts, and back.

One shape for every place a memory or an association leaves the process as data: the
export file (:mod:`hippograph.graph.transfer`), the archive files
(:mod:`hippograph.lifecycle.archive`), the SQLite journal and the Neo4j node maps. Times
are ISO-8601 UTC strings, vectors base64 of little-endian float32 values.

Writing (:func:`memory_record`, :func:`association_record`) never fails; reading
(:func:`read_memory`, :func:`read_association`) checks every field and raises
``BadInput`` naming the record (``where``) and the field.

>>> from datetime import UTC, datetime
>>> record = memory_record(Memory(id="m", namespace="n", content="x",
...     created_at=datetime(2024, 1, 1, tzinfo=UTC), embedding=np.ones(2, np.float32)))
>>> record["created_at"], record["embedding"]
('2024-01-01T00:00:00+00:00', 'AACAPwAAgD8=')
>>> read_memory(record, "line 2", "n", 2).embedding
array([1., 1.], dtype=float32)
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    BadInput,
    Memory,
    MemoryKind,
    Tier,
    parse_time,
)

__all__ = [
    "association_record",
    "checked_field",
    "memory_record",
    "read_association",
    "read_memory",
    "read_time",
    "read_vector",
    "time_text",
    "vector_text",
]


# -- writing -------------------------------------------------------------------------------


def vector_text(value: np.ndarray | None) -> str | None:
    """A vector (or rows of vectors) as base64 of little-endian float32; None stays None."""
    if value is None:
        return None
    return base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode("ascii")


def time_text(value: datetime | None) -> str | None:
    """A time as an ISO-8601 UTC string; None stays None."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def memory_record(
    m: Memory, vector: Callable[[np.ndarray | None], Any] = vector_text
) -> dict[str, Any]:
    """Every field of a memory (not its namespace), its vectors as ``vector`` writes
    them (base64 text by default; the journal puts references to a binary section)."""
    passages = m.passages if m.passages is not None and len(m.passages) else None
    return {
        "record": "memory",
        "id": m.id,
        "content": m.content,
        "kind": m.kind.value,
        "tier": m.tier.value,
        "session_id": m.session_id,
        "created_at": time_text(m.created_at),
        "occurred_at": time_text(m.occurred_at),
        "last_accessed_at": time_text(m.last_accessed_at),
        "access_count": m.access_count,
        "importance": m.importance,
        "content_hash": m.content_hash,
        "metadata": m.metadata,
        "embedding": vector(m.embedding),
        "passages": vector(passages),
        "context_embedding": vector(m.context_embedding),
    }


def association_record(a: Association) -> dict[str, Any]:
    """Every property of an association."""
    return {
        "record": "association",
        "source": a.source,
        "target": a.target,
        "type": a.type.value,
        "weight": a.weight,
        "created_at": time_text(a.created_at),
        "last_activated_at": time_text(a.last_activated_at),
        "activation_count": a.activation_count,
        "explicit": a.explicit,
    }


# -- reading -------------------------------------------------------------------------------


def checked_field(
    obj: dict[str, Any], name: str, types: type | tuple[type, ...], where: str
) -> Any:
    """``obj[name]`` if it is one of ``types`` (a bool only where bool is named), else
    ``BadInput`` naming ``where.name``."""
    value = obj.get(name)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise BadInput(f"{where}.{name}", f"must be {_describe(types)}, got {value!r:.60}")
    return value


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _describe(types: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    names |= {dict: "an object", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in _tuple(types))


def read_vector(value: Any, where: str, dim: int, *, rows: bool = False) -> np.ndarray | None:
    """The float32 vector (with ``rows``, the rows of ``dim`` values) ``value`` encodes;
    None stays None."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        raise BadInput(where, "must be base64 of little-endian float32 values") from None
    vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if len(raw) % 4 or not len(vector) or len(vector) % dim or (not rows and len(vector) != dim):
        raise BadInput(where, f"must hold {'a multiple of ' if rows else ''}{dim} float32 values")
    if not np.isfinite(vector).all():
        raise BadInput(where, "holds NaN or infinite values")
    return vector.reshape(-1, dim) if rows else vector


def read_time(value: Any, where: str, *, optional: bool = False) -> datetime | None:
    """The time an ISO-8601 string gives; None only with ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadInput(where, f"must be an ISO-8601 time, got {value!r:.60}")
    return parse_time(value, where)


def read_memory(obj: dict[str, Any], where: str, namespace: str, dim: int) -> Memory:
    """The memory a :func:`memory_record` of ``dim``-d vectors holds, in ``namespace``."""
    memory_id = checked_field(obj, "id", str, where)
    if not memory_id or memory_id.startswith(ENTITY_PREFIX):
        raise BadInput(f"{where}.id", f"must be non-empty and not start with {ENTITY_PREFIX!r}")
    try:
        kind, tier = MemoryKind(str(obj.get("kind"))), Tier(str(obj.get("tier")))
    except ValueError as exc:
        raise BadInput(f"{where}.kind/tier", str(exc)) from None
    importance = checked_field(obj, "importance", (int, float), where)
    if not 0.0 <= importance <= 1.0:
        raise BadInput(f"{where}.importance", "must be from 0 to 1")
    access_count = checked_field(obj, "access_count", int, where)
    if access_count < 0:
        raise BadInput(f"{where}.access_count", "must be 0 or more")
    embedding = read_vector(obj.get("embedding"), f"{where}.embedding", dim)
    if embedding is None:
        raise BadInput(f"{where}.embedding", "is required")
    created = read_time(obj.get("created_at"), f"{where}.created_at")
    assert created is not None
    memory = Memory(
        id=memory_id,
        namespace=namespace,
        content=checked_field(obj, "content", str, where),
        kind=kind,
        tier=tier,
        session_id=checked_field(obj, "session_id", (str, type(None)), where),
        created_at=created,
        occurred_at=read_time(obj.get("occurred_at"), f"{where}.occurred_at"),
        last_accessed_at=read_time(
            obj.get("last_accessed_at"), f"{where}.last_accessed_at", optional=True
        ),
        access_count=access_count,
        importance=float(importance),
        content_hash=checked_field(obj, "content_hash", str, where),
        metadata=checked_field(obj, "metadata", dict, where),
        embedding=embedding,
        passages=read_vector(obj.get("passages"), f"{where}.passages", dim, rows=True),
        context_embedding=read_vector(
            obj.get("context_embedding"), f"{where}.context_embedding", dim
        ),
    )
    return memory


def read_association(obj: dict[str, Any], where: str) -> Association:
    """The association an :func:`association_record` holds."""
    try:
        type_ = AssociationType(str(obj.get("type")))
    except ValueError:
        raise BadInput(f"{where}.type", f"unknown association type {obj.get('type')!r}") from None
    weight = checked_field(obj, "weight", (int, float), where)
    if not 0.0 <= weight <= 1.0:
        raise BadInput(f"{where}.weight", "must be from 0 to 1")
    count = checked_field(obj, "activation_count", int, where)
    created = read_time(obj.get("created_at"), f"{where}.created_at")
    assert created is not None
    return Association(
        source=checked_field(obj, "source", str, where),
        target=checked_field(obj, "target", str, where),
        type=type_,
        weight=float(weight),
        created_at=created,
        last_activated_at=read_time(
            obj.get("last_activated_at"), f"{where}.last_activated_at", optional=True
        ),
        activation_count=count,
        explicit=checked_field(obj, "explicit", bool, where),
    )
