"""The journal's records: what one committed write transaction of the SQLite store
holds, and the codec of its payload.

A :class:`JournalEntry` is one row of the ``journal`` table; its payload holds
everything the transaction was given (zlib-compressed JSON in the record codec's shapes,
the clock reading it used, and the raw float32 vectors). ``*_payload`` build a payload
for each operation, :meth:`JournalEntry.operation` decodes one back into the
:class:`Operation` the store replays.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np

from hippograph.graph.model import Association, AssociationType, Memory, MemoryKind, Tier
from hippograph.graph.records import association_record, memory_record, read_time
from hippograph.graph.store import AccessRecord, ChangeBatch, RunRecord, WriteBatch, WriteResult

__all__ = [
    "STORED",
    "JournalEntry",
    "JournalMismatch",
    "Operation",
    "VectorSection",
    "access_payload",
    "changes_payload",
    "forget_payload",
    "memory_entry",
    "run_payload",
    "write_payload",
]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One committed write transaction, as the journal holds it."""

    id: int
    namespace: str
    generation: int  # the namespace's generation after it
    at: float  # wall time (epoch seconds) just before its commit
    op: str  # write, forget, record_access, apply_changes, run
    payload: bytes  # what the transaction was given (see pack)

    def row(self) -> tuple[int, str, int, float, str, bytes]:
        """(id, namespace, generation, at, op, payload): the journal table's columns."""
        return (self.id, self.namespace, self.generation, self.at, self.op, self.payload)

    def operation(self) -> Operation:
        """The payload decoded into the operation's arguments; ``ValueError`` naming
        the entry when it does not decompress, parse or hold what its operation needs
        (so a backup check finds a bad entry without applying it)."""
        try:
            obj, vectors = _unpack(self.payload)
            return _decode_operation(self.op, obj, vectors, self.namespace)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"journal entry {self.id} ({self.op}): {exc!r}") from None


class JournalMismatch(ValueError):
    """Journal entries that do not belong on the database they are replayed onto."""


@dataclass(slots=True)
class Operation:
    """A journal entry's payload decoded into the arguments its operation was given
    (exactly one of ``batch``, ``forget``, ``changes``, ``run``, or the accesses)."""

    now: float = 0.0
    batch: WriteBatch | None = None
    created: dict[str, int] = field(default_factory=dict)  # write: new node id -> seq
    forget: tuple[str, int] | None = None  # (memory id, its seq)
    changes: ChangeBatch | None = None
    run: RunRecord | None = None
    # apply_changes: replaced memories that kept their vectors (not in the payload)
    stored_vectors: set[str] = field(default_factory=set)
    accesses: list[AccessRecord] = field(default_factory=list)
    strengthened: list[tuple[int, int, int, float, float]] = field(default_factory=list)


# A payload: magic, the length of the zlib-compressed JSON, that JSON, then the raw
# little-endian float32 vectors the JSON refers to as [offset, count] (in floats).
# Vectors stay out of the compressed part: float32 noise does not compress (zlib ran at
# ~20 MB/s on them here for a 7% gain), and as base64 JSON text they would be a third
# larger. Everything else is in the record codec's shapes (hippograph.graph.records).
_PAYLOAD_MAGIC = b"HGJ1"
STORED = "stored"  # a vector the database already holds (see memory_entry)
_HEADER = struct.Struct(">4sI")


class VectorSection:
    """The raw vector part of a payload being built."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.floats = 0

    def add(self, vector: np.ndarray | None) -> list[int] | None:
        if vector is None:
            return None
        data = np.ascontiguousarray(vector, dtype="<f4").tobytes()
        ref = [self.floats, len(data) // 4]
        self.parts.append(data)
        self.floats += len(data) // 4
        return ref


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _pack(payload: dict[str, Any], vectors: VectorSection | None = None) -> bytes:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    packed = zlib.compress(text.encode("utf-8"), 1)
    raw = b"".join(vectors.parts) if vectors is not None else b""
    return _HEADER.pack(_PAYLOAD_MAGIC, len(packed)) + packed + raw


def _unpack(blob: bytes) -> tuple[dict[str, Any], bytes]:
    if len(blob) < _HEADER.size:
        raise ValueError("payload too short")
    magic, size = _HEADER.unpack_from(blob)
    if magic != _PAYLOAD_MAGIC or _HEADER.size + size > len(blob):
        raise ValueError("not a journal payload")
    try:
        text = zlib.decompress(blob[_HEADER.size : _HEADER.size + size]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"payload does not decompress ({exc})") from None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("payload is not a JSON object")
    return value, blob[_HEADER.size + size :]


def memory_entry(m: Memory, vectors: VectorSection, *, stored: bool = False) -> dict[str, Any]:
    """The record codec's memory record (:func:`~hippograph.graph.records.memory_record`),
    with its vectors as references into the payload's vector section instead of base64,
    or, with ``stored``, as ``"stored"``: a replaced memory that kept the vectors the
    database holds (a tiering run moves thousands of memories and changes no vector)."""
    if stored:
        return memory_record(m, _stored)
    return memory_record(m, vectors.add)


def _stored(vector: np.ndarray | None) -> str:
    return STORED


def write_payload(batch: WriteBatch, now: float, result: WriteResult) -> bytes:
    vectors = VectorSection()
    payload = {
        "now": now,
        "memories": [memory_entry(m, vectors) for m in batch.memories],
        "entities": batch.entities,
        "edges": [association_record(a) for a in batch.edges],
        # checked on replay: the same seqs, or the copy is not the one this followed
        "new": {node: result.seqs[node] for node in result.new_nodes},
    }
    return _pack(payload, vectors)


def changes_payload(changes: ChangeBatch, now: float, kept: set[str]) -> bytes:
    vectors = VectorSection()
    payload = {
        "now": now,
        "new_memories": [memory_entry(m, vectors) for m in changes.new_memories],
        "memories": [memory_entry(m, vectors, stored=m.id in kept) for m in changes.memories],
        "edges": [association_record(a) for a in changes.edges],
        "removed_edges": [[s, d, t.value] for s, d, t in changes.removed_edges],
        "removed_memories": list(changes.removed_memories),
        "aliases": changes.aliases,
    }
    return _pack(payload, vectors)


def access_payload(
    accesses: Sequence[AccessRecord], strengthened: Sequence[tuple[int, int, int, float, float]]
) -> bytes:
    # By seq: a replay onto the copy this journal follows assigns the same seqs.
    return _pack(
        {
            "accesses": [
                [int(a.seq), float(a.at), a.tier.value if a.tier else None, int(a.count)]
                for a in accesses
            ],
            "strengthened": [
                [int(src), int(dst), int(t), float(w), float(at)]
                for src, dst, t, w, at in strengthened
            ],
        }
    )


def run_payload(run: RunRecord) -> bytes:
    return _pack(
        {
            "id": run.id,
            "job": run.job,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat(),
            "dry_run": run.dry_run,
            "counts": run.counts,
        }
    )


def forget_payload(memory_id: str, seq: int) -> bytes:
    return _pack({"id": memory_id, "seq": seq})


def _decode_operation(op: str, obj: dict[str, Any], vectors: bytes, namespace: str) -> Operation:
    def memory(record: dict[str, Any]) -> Memory:
        return _decode_memory(record, namespace, vectors)

    if op == "write":
        return Operation(
            now=float(obj["now"]),
            batch=WriteBatch(
                memories=[memory(m) for m in obj["memories"]],
                entities={str(k): str(v) for k, v in obj["entities"].items()},
                edges=[_decode_association(a) for a in obj["edges"]],
            ),
            created={str(k): int(v) for k, v in obj["new"].items()},
        )
    if op == "forget":
        return Operation(forget=(str(obj["id"]), int(obj["seq"])))
    if op == "record_access":
        return Operation(
            accesses=[
                AccessRecord(seq=int(s), at=float(at), tier=Tier(t) if t else None, count=int(c))
                for s, at, t, c in obj["accesses"]
            ],
            strengthened=[
                (int(src), int(dst), int(t), float(w), float(at))
                for src, dst, t, w, at in obj["strengthened"]
            ],
        )
    if op == "apply_changes":
        return Operation(
            now=float(obj["now"]),
            stored_vectors={str(m["id"]) for m in obj["memories"] if m["embedding"] == STORED},
            changes=ChangeBatch(
                new_memories=[memory(m) for m in obj["new_memories"]],
                memories=[memory(m) for m in obj["memories"]],
                edges=[_decode_association(a) for a in obj["edges"]],
                removed_edges=[(s, d, AssociationType(t)) for s, d, t in obj["removed_edges"]],
                removed_memories=[str(i) for i in obj["removed_memories"]],
                aliases={str(k): str(v) for k, v in obj["aliases"].items()},
            ),
        )
    if op == "run":
        started = read_time(obj["started_at"], "started_at")
        finished = read_time(obj["finished_at"], "finished_at")
        assert started is not None and finished is not None
        run = RunRecord(
            id=str(obj["id"]),
            job=str(obj["job"]),
            started_at=started,
            finished_at=finished,
            dry_run=bool(obj["dry_run"]),
            counts=dict(obj["counts"]),
        )
        return Operation(run=run)
    raise ValueError(f"unknown operation {op!r}")


def _decode_vector(ref: list[int] | str | None, vectors: bytes) -> np.ndarray | None:
    if ref is None or ref == STORED:
        return None
    offset, count = int(ref[0]), int(ref[1])
    if offset < 0 or count <= 0 or (offset + count) * 4 > len(vectors):
        raise ValueError(f"vector [{offset}, {count}] lies outside the payload")
    return np.frombuffer(vectors, dtype="<f4", count=count, offset=offset * 4).astype(np.float32)


def _decode_memory(obj: dict[str, Any], namespace: str, vectors: bytes) -> Memory:
    """A memory record of the journal back to the ``Memory`` the store was given:
    unlike an import, vectors may be absent (an archive stub has none) and nothing is
    re-validated: it was checked when it was written."""
    embedding = _decode_vector(obj["embedding"], vectors)
    passages = _decode_vector(obj["passages"], vectors)
    if passages is not None:
        if embedding is None or len(passages) % len(embedding):
            raise ValueError(f"memory {obj['id']!r}: passages do not fit its embedding")
        passages = passages.reshape(-1, len(embedding))
    created = read_time(obj["created_at"], "created_at")
    occurred = read_time(obj["occurred_at"], "occurred_at")
    assert created is not None
    return Memory(
        id=str(obj["id"]),
        namespace=namespace,
        content=str(obj["content"]),
        kind=MemoryKind(obj["kind"]),
        tier=Tier(obj["tier"]),
        session_id=obj["session_id"],
        created_at=created,
        occurred_at=occurred,
        last_accessed_at=read_time(obj["last_accessed_at"], "last_accessed_at", optional=True),
        access_count=int(obj["access_count"]),
        importance=obj["importance"],
        content_hash=str(obj["content_hash"]),
        metadata=dict(obj["metadata"]),
        embedding=embedding,
        passages=passages,
        context_embedding=_decode_vector(obj["context_embedding"], vectors),
    )


def _decode_association(obj: dict[str, Any]) -> Association:
    # A missing created_at stays missing: the store stamps it with the entry's "now".
    created = read_time(obj["created_at"], "created_at", optional=True)
    return Association(
        source=str(obj["source"]),
        target=str(obj["target"]),
        type=AssociationType(obj["type"]),
        weight=obj["weight"],
        created_at=cast(datetime, created),
        last_activated_at=read_time(obj["last_activated_at"], "last_activated_at", optional=True),
        activation_count=int(obj["activation_count"]),
        explicit=bool(obj["explicit"]),
    )
