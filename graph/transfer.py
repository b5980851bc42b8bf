"""Moving a namespace between stores: a JSON-lines export that carries everything.

``hippograph export`` writes one header line, then every memory (all fields, its whole
vector, sentence passages and context vector as base64 float32), every entity, and
every association (all properties); ``hippograph import`` of such a file writes them
back exactly, through whichever store the service runs on, so a user can start on
SQLite and move to Neo4j. Store-assigned seqs are not carried: the target store
assigns its own, in the exported order.

The file is checked whole before anything is written, and the write is one atomic
store transaction: a bad file changes nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    BadInput,
    DuplicateId,
    Memory,
    MemoryKind,
    ModelMismatch,
    Tier,
    parse_time,
)

if TYPE_CHECKING:
    from hippograph.graph.memory import MemoryGraph

__all__ = ["FORMAT", "VERSION", "Export", "export_namespace", "import_namespace", "read_export"]

FORMAT = "hippograph-export"
VERSION = 1


@dataclass(slots=True)
class Export:
    """The parsed content of an export file."""

    namespace: str
    model: str
    dim: int
    memories: list[Memory] = field(default_factory=list)
    entities: dict[str, str] = field(default_factory=dict)  # key (no prefix) -> label
    associations: list[Association] = field(default_factory=list)


# -- writing -------------------------------------------------------------------------------


def _vector(value: np.ndarray | None) -> str | None:
    if value is None:
        return None
    return base64.b64encode(np.ascontiguousarray(value, dtype="<f4").tobytes()).decode("ascii")


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _memory_record(m: Memory) -> dict[str, Any]:
    passages = m.passages if m.passages is not None and len(m.passages) else None
    return {
        "record": "memory",
        "id": m.id,
        "content": m.content,
        "kind": m.kind.value,
        "tier": m.tier.value,
        "session_id": m.session_id,
        "created_at": _time(m.created_at),
        "occurred_at": _time(m.occurred_at),
        "last_accessed_at": _time(m.last_accessed_at),
        "access_count": m.access_count,
        "importance": m.importance,
        "content_hash": m.content_hash,
        "metadata": m.metadata,
        "embedding": _vector(m.embedding),
        "passages": _vector(passages),
        "context_embedding": _vector(m.context_embedding),
    }


def _association_record(a: Association) -> dict[str, Any]:
    return {
        "record": "association",
        "source": a.source,
        "target": a.target,
        "type": a.type.value,
        "weight": a.weight,
        "created_at": _time(a.created_at),
        "last_activated_at": _time(a.last_activated_at),
        "activation_count": a.activation_count,
        "explicit": a.explicit,
    }


def export_namespace(graph: MemoryGraph, namespace: str, out: IO[str]) -> dict[str, int]:
    """Write ``namespace`` to ``out`` as export lines; counts of what was written."""
    graph.checkpoint()  # recall side effects (access counts, weights) into the store
    store = graph.store
    header = {
        "record": "header",
        "format": FORMAT,
        "version": VERSION,
        "namespace": namespace,
        "model": graph.encoder.name,
        "dim": graph.encoder.dim,
        "exported_at": datetime.now(UTC).isoformat(),
    }
    counts = {"memories": 0, "entities": 0, "associations": 0}

    def line(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")

    line(header)
    for chunk in store.iter_memories(namespace, embeddings=True):
        for memory in chunk:
            line(_memory_record(memory))
        counts["memories"] += len(chunk)
    for entity_id, label in store.entities(namespace).items():
        line({"record": "entity", "id": entity_id, "label": label})
        counts["entities"] += 1
    for edges in store.iter_associations(namespace):
        for edge in edges:
            line(_association_record(edge))
        counts["associations"] += len(edges)
    return counts


# -- reading -------------------------------------------------------------------------------


def _field(obj: dict[str, Any], name: str, types: type | tuple[type, ...], where: str) -> Any:
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


def _read_vector(value: Any, where: str, dim: int, *, rows: bool = False) -> np.ndarray | None:
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


def _read_time(value: Any, where: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadInput(where, f"must be an ISO-8601 time, got {value!r:.60}")
    return parse_time(value, where)


def _read_memory(obj: dict[str, Any], where: str, namespace: str, dim: int) -> Memory:
    memory_id = _field(obj, "id", str, where)
    if not memory_id or memory_id.startswith(ENTITY_PREFIX):
        raise BadInput(f"{where}.id", f"must be non-empty and not start with {ENTITY_PREFIX!r}")
    try:
        kind, tier = MemoryKind(str(obj.get("kind"))), Tier(str(obj.get("tier")))
    except ValueError as exc:
        raise BadInput(f"{where}.kind/tier", str(exc)) from None
    importance = _field(obj, "importance", (int, float), where)
    if not 0.0 <= importance <= 1.0:
        raise BadInput(f"{where}.importance", "must be from 0 to 1")
    access_count = _field(obj, "access_count", int, where)
    if access_count < 0:
        raise BadInput(f"{where}.access_count", "must be 0 or more")
    embedding = _read_vector(obj.get("embedding"), f"{where}.embedding", dim)
    if embedding is None:
        raise BadInput(f"{where}.embedding", "is required")
    created = _read_time(obj.get("created_at"), f"{where}.created_at")
    assert created is not None
    memory = Memory(
        id=memory_id,
        namespace=namespace,
        content=_field(obj, "content", str, where),
        kind=kind,
        tier=tier,
        session_id=_field(obj, "session_id", (str, type(None)), where),
        created_at=created,
        occurred_at=_read_time(obj.get("occurred_at"), f"{where}.occurred_at"),
        last_accessed_at=_read_time(
            obj.get("last_accessed_at"), f"{where}.last_accessed_at", optional=True
        ),
        access_count=access_count,
        importance=float(importance),
        content_hash=_field(obj, "content_hash", str, where),
        metadata=_field(obj, "metadata", dict, where),
        embedding=embedding,
        passages=_read_vector(obj.get("passages"), f"{where}.passages", dim, rows=True),
        context_embedding=_read_vector(
            obj.get("context_embedding"), f"{where}.context_embedding", dim
        ),
    )
    return memory


def _read_association(obj: dict[str, Any], where: str) -> Association:
    try:
        type_ = AssociationType(str(obj.get("type")))
    except ValueError:
        raise BadInput(f"{where}.type", f"unknown association type {obj.get('type')!r}") from None
    weight = _field(obj, "weight", (int, float), where)
    if not 0.0 <= weight <= 1.0:
        raise BadInput(f"{where}.weight", "must be from 0 to 1")
    count = _field(obj, "activation_count", int, where)
    created = _read_time(obj.get("created_at"), f"{where}.created_at")
    assert created is not None
    return Association(
        source=_field(obj, "source", str, where),
        target=_field(obj, "target", str, where),
        type=type_,
        weight=float(weight),
        created_at=created,
        last_activated_at=_read_time(
            obj.get("last_activated_at"), f"{where}.last_activated_at", optional=True
        ),
        activation_count=count,
        explicit=_field(obj, "explicit", bool, where),
    )


def is_export(first_line: str) -> bool:
    """Whether a file's first line is an export header."""
    try:
        obj = json.loads(first_line)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def read_export(lines: Iterable[str], namespace: str) -> Export:
    """Parse and check export lines (every record, and that associations join nodes of
    the file); raises ``BadInput`` naming the line and field."""
    numbered: Iterator[tuple[int, str]] = (
        (n, text) for n, text in enumerate(lines, start=1) if text.strip()
    )
    records = ((n, _json_object(text, n)) for n, text in numbered)
    first = next(records, None)
    if first is None or first[1].get("format") != FORMAT:
        raise BadInput("line 1", f"not a hippograph export (no {FORMAT!r} header)")
    header = first[1]
    if header.get("version") != VERSION:
        raise BadInput("line 1.version", f"version {header.get('version')!r} is not {VERSION}")
    dim = header.get("dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise BadInput("line 1.dim", "must be a positive integer")
    export = Export(namespace=namespace, model=str(header.get("model")), dim=dim)
    ids: set[str] = set()
    for n, obj in records:
        where = f"line {n}"
        kind = obj.get("record")
        if kind == "memory":
            memory = _read_memory(obj, where, namespace, dim)
            if memory.id in ids:
                raise BadInput(f"{where}.id", f"memory {memory.id!r} appears twice")
            ids.add(memory.id)
            export.memories.append(memory)
        elif kind == "entity":
            entity_id = _field(obj, "id", str, where)
            if not entity_id.startswith(ENTITY_PREFIX) or entity_id == ENTITY_PREFIX:
                raise BadInput(f"{where}.id", f"must start with {ENTITY_PREFIX!r}")
            export.entities[entity_id[len(ENTITY_PREFIX) :]] = _field(obj, "label", str, where)
        elif kind == "association":
            export.associations.append(_read_association(obj, where))
        else:
            raise BadInput(f"{where}.record", "must be memory, entity or association")
    nodes = ids | {ENTITY_PREFIX + key for key in export.entities}
    for i, edge in enumerate(export.associations):
        for end in (edge.source, edge.target):
            if end not in nodes:
                raise BadInput(
                    f"association {i + 1}", f"{end!r} is not a memory or entity of the file"
                )
    return export


def _json_object(text: str, n: int) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"line {n}", f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise BadInput(f"line {n}", "expected a JSON object")
    return obj


def import_namespace(graph: MemoryGraph, namespace: str, lines: Iterable[str]) -> dict[str, int]:
    """Write an export into ``namespace`` exactly as exported; counts of what was
    written. The whole file is checked first; the write is atomic."""
    export = read_export(lines, namespace)
    if export.model != graph.encoder.name or export.dim != graph.encoder.dim:
        raise ModelMismatch(
            f"the export's vectors come from {export.model} ({export.dim}-d); this service "
            f"encodes with {graph.encoder.name} ({graph.encoder.dim}-d)"
        )
    taken = graph.store.seqs_of(namespace, [m.id for m in export.memories])
    if taken:
        raise DuplicateId("id", f"memory {next(iter(taken))!r} already exists in {namespace!r}")
    graph.restore(namespace, export.memories, export.entities, export.associations)
    return {
        "memories": len(export.memories),
        "entities": len(export.entities),
        "associations": len(export.associations),
    }
