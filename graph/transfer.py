"""Moving a namespace between stores: a JSON-lines export that carries everything.

``hippograph export`` writes one header line, then every memory (all fields, its whole
vector, sentence passages and context vector as base64 float32), every entity, and
every association (all properties); ``hippograph import`` of such a file writes them
back exactly, through whichever store the service runs on, so a user can start on
SQLite and move to Neo4j. Store-assigned seqs are not carried: the target store
assigns its own, in the exported order.

The file is checked whole before anything is written, and the write is one atomic
store transaction: a bad file changes nothing.

:func:`import_jsonl` reads the other file ``hippograph import`` takes: one memory to
*remember* per line (content, and optionally id, session_id, kind, occurred_at,
importance, metadata, links), embedded and associated as ``remember_many`` would. The
whole file is checked first (a bad line raises :class:`BadFile` naming its number and
field, nothing written), then written in batches in file order; an import that stopped
has written whole batches, and ``resume=True`` finishes it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hippograph.graph.inputs import MemoryInput
from hippograph.graph.model import (
    ENTITY_PREFIX,
    Association,
    AssociationType,
    BadInput,
    DuplicateId,
    HippographError,
    Link,
    Memory,
    ModelMismatch,
)
from hippograph.graph.records import (
    association_record,
    checked_field,
    memory_record,
    read_association,
    read_memory,
)

if TYPE_CHECKING:
    from hippograph.graph.memory import MemoryGraph

__all__ = [
    "FORMAT",
    "VERSION",
    "BadFile",
    "Export",
    "ImportStopped",
    "export_namespace",
    "import_jsonl",
    "import_namespace",
    "is_export",
    "jsonl_field",
    "read_export",
]

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
            line(memory_record(memory))
        counts["memories"] += len(chunk)
    for entity_id, label in store.entities(namespace).items():
        line({"record": "entity", "id": entity_id, "label": label})
        counts["entities"] += 1
    for edges in store.iter_associations(namespace):
        for edge in edges:
            line(association_record(edge))
        counts["associations"] += len(edges)
    return counts


# -- reading -------------------------------------------------------------------------------


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
            memory = read_memory(obj, where, namespace, dim)
            if memory.id in ids:
                raise BadInput(f"{where}.id", f"memory {memory.id!r} appears twice")
            ids.add(memory.id)
            export.memories.append(memory)
        elif kind == "entity":
            entity_id = checked_field(obj, "id", str, where)
            if not entity_id.startswith(ENTITY_PREFIX) or entity_id == ENTITY_PREFIX:
                raise BadInput(f"{where}.id", f"must start with {ENTITY_PREFIX!r}")
            export.entities[entity_id[len(ENTITY_PREFIX) :]] = checked_field(
                obj, "label", str, where
            )
        elif kind == "association":
            export.associations.append(read_association(obj, where))
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


# -- JSONL of memories to remember ---------------------------------------------------------

# Keys a JSONL memory may carry (the MemoryInput fields, in the file's snake_case).
_JSONL_FIELDS = (
    "content",
    "id",
    "session_id",
    "kind",
    "occurred_at",
    "importance",
    "metadata",
    "links",
)
_LINK_FIELDS = ("target", "type", "weight")


class BadFile(BadInput):
    """A JSONL file to import cannot be read or breaks a rule; nothing was written.

    ``line`` is the number of the line at fault (0: the file as a whole) and ``field``
    the field of that line in the file's spelling (``""``: the line as a whole).
    """

    def __init__(self, line: int, field: str, message: str, *, path: str = "") -> None:
        where = f"line {line}" if line else path
        HippographError.__init__(self, f"{where}: " + (f"{field}: " if field else "") + message)
        self.line = line
        self.field = field


class ImportStopped(HippographError):
    """A checked file failed while being written (a concurrent writer, a file edited
    meanwhile): the batches before ``line`` are written, ``written`` memories in all;
    ``resume=True`` finishes the import. ``code`` is the cause's."""

    def __init__(self, line: int, written: int, cause: HippographError) -> None:
        super().__init__(
            f"import stopped at the batch starting on line {line}, after {written} "
            f"memories were written: {cause}"
        )
        self.line = line
        self.written = written
        self.code = cause.code


def jsonl_field(name: str) -> str:
    """An engine field path (GraphQL's spelling) in the spelling of JSONL keys.

    >>> jsonl_field("inputs[0].occurredAt")
    'inputs[0].occurred_at'
    """
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _bad_line(line: int, exc: BadInput, prefix: str) -> BadFile:
    message = str(exc).removeprefix(f"{exc.field}: ")
    return BadFile(line, jsonl_field(exc.field.removeprefix(prefix)), message)


def _memory_input(text: str) -> MemoryInput:
    """One JSONL line as a MemoryInput. Only the JSON shape is checked here (an object,
    known keys, link objects); the values are the engine's to judge."""
    try:
        obj = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for key in obj:
        if key not in _JSONL_FIELDS:
            raise BadInput(key, f"unknown field; expected {', '.join(_JSONL_FIELDS)}")
    if "content" not in obj:
        raise BadInput("content", "is required")
    # null means "not given" for the optional fields
    given = {k: v for k, v in obj.items() if v is not None or k == "content"}
    given["links"] = _links(given.get("links", []))
    return MemoryInput(**given)


def _links(value: Any) -> list[Link]:
    if not isinstance(value, list):
        raise BadInput("links", "must be a list of {target, type, weight} objects")
    links: list[Link] = []
    types = ", ".join(t.value for t in AssociationType)
    for j, raw in enumerate(value):
        where = f"links[{j}]"
        if not isinstance(raw, dict):
            raise BadInput(where, "must be an object with target, type, weight")
        for key in raw:
            if key not in _LINK_FIELDS:
                raise BadInput(f"{where}.{key}", "unknown field; expected target, type, weight")
        target = raw.get("target")
        if not isinstance(target, str) or not target.strip():
            raise BadInput(f"{where}.target", "must be the id of a memory")
        kind = raw.get("type", AssociationType.RELATED_TO.value)
        try:
            kind = AssociationType(kind)
        except ValueError:
            raise BadInput(
                f"{where}.type", f"unknown association type {kind!r}; one of {types}"
            ) from None
        weight = raw.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise BadInput(f"{where}.weight", "must be a number from 0 to 1")
        links.append(Link(target=target, type=kind, weight=float(weight)))
    return links


Source = str | os.PathLike[str] | Iterable[str]


def _texts(source: Source) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a file (UTF-8, a BOM allowed) or of lines."""
    if not isinstance(source, str | os.PathLike):
        for lineno, text in enumerate(source, start=1):
            yield lineno, text.removeprefix("\ufeff") if lineno == 1 else text
        return
    try:
        with Path(source).open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    yield lineno, raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError:
                    raise BadFile(lineno, "", "not UTF-8 text") from None
    except OSError as exc:
        raise BadFile(0, "", f"cannot read it ({exc.strerror})", path=str(source)) from None


def _read_jsonl(source: Source) -> Iterator[tuple[int, MemoryInput]]:
    """(line number, memory) for each non-blank line; a malformed line raises
    :class:`BadFile` naming its number."""
    for lineno, text in _texts(source):
        if not text.strip():
            continue
        try:
            yield lineno, _memory_input(text)
        except BadInput as exc:
            raise _bad_line(lineno, exc, "") from None
        except ValueError as exc:
            raise BadFile(lineno, "", str(exc)) from None


def _check_jsonl(
    graph: MemoryGraph, namespace: str, source: Source, *, resume: bool
) -> tuple[int, int, set[str]]:
    """Check every line as ``remember_many`` would, plus what only the whole file shows
    (ids unique across batches, links naming stored ids or earlier lines), so that a bad
    line is reported before anything is written. Returns (memories, explicit links, ids
    to skip): with ``resume``, the lines whose id is stored with the same content are
    skipped (an earlier run of this import wrote them)."""
    first_line: dict[str, int] = {}  # caller-chosen id -> the line giving it
    contents: dict[str, str] = {}  # with resume: id -> the content its line gives
    unresolved: list[tuple[int, str, str]] = []  # (line, field, target) not on earlier lines
    count = links = 0
    for lineno, item in _read_jsonl(source):
        try:
            graph.check_input(namespace, item, "memory")  # the engine's own rules
        except BadInput as exc:
            raise _bad_line(lineno, exc, "memory.") from None
        if resume:
            if item.id is None:
                raise BadFile(
                    lineno,
                    "id",
                    "--resume needs an id on every line, to know which lines an earlier run wrote",
                )
            contents[item.id] = item.content
        for j, link in enumerate(item.links):
            if link.target not in first_line:
                unresolved.append((lineno, f"links[{j}].target", link.target))
        if item.id is not None:
            if item.id in first_line:
                raise BadFile(
                    lineno, "id", f"{item.id!r} is already given on line {first_line[item.id]}"
                )
            first_line[item.id] = lineno
        count += 1
        links += len(item.links)
    stored = graph.store.seqs_of(namespace, [*first_line, *{t for _, _, t in unresolved}])
    done: set[str] = set()
    if resume:
        held = graph.store.get(namespace, [i for i in first_line if i in stored])
        done = {m.id for m in held if m.content == contents[m.id]}
    problems: list[tuple[int, str, str]] = [
        (
            lineno,
            "id",
            f"memory {memory_id!r} already exists in namespace {namespace!r}"
            + (" with other content" if resume else ""),
        )
        for memory_id, lineno in first_line.items()
        if memory_id in stored and memory_id not in done
    ]
    for lineno, field_, target in unresolved:
        if target not in stored:
            later = first_line.get(target)
            where = f" (line {later} gives it; a link may only name an earlier line)"
            problems.append(
                (
                    lineno,
                    field_,
                    f"{target!r} is neither stored in namespace {namespace!r} "
                    f"nor given on an earlier line{where if later else ''}",
                )
            )
    if problems:
        raise BadFile(*min(problems))
    return count, links, done


def _batches(
    lines: Iterator[tuple[int, MemoryInput]], size: int
) -> Iterator[tuple[int, list[MemoryInput]]]:
    """Consecutive runs of at most ``size`` memories, each with its first line number."""
    batch: list[MemoryInput] = []
    first = 0
    for lineno, item in lines:
        if not batch:
            first = lineno
        batch.append(item)
        if len(batch) >= size:
            yield first, batch
            batch = []
    if batch:
        yield first, batch


def import_jsonl(
    graph: MemoryGraph,
    namespace: str,
    lines_or_path: Source,
    *,
    resume: bool = False,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Remember the memories of a JSONL file, one per line, in file order.

    Parameters
    ----------
    lines_or_path:
        A path (``str`` or path-like; read twice, streaming) or the lines themselves
        (any other iterable of strings; kept in memory for the two passes).
    resume:
        Skip the lines whose id is already stored with the same content (an import that
        was stopped); every line must then give an id.
    batch_size:
        Memories per ``remember_many`` call (default: ``graph.config.max_batch``).
    progress:
        Called as ``progress(written, total)`` before the first batch and after each.

    Returns
    -------
    Counts: ``memories`` written, ``associations`` added (given and built),
    ``links`` given in the file, ``skipped`` lines already stored (with ``resume``).

    Raises :class:`BadFile` (line and field) before anything is written when a line is
    malformed or breaks a rule the engine or the whole file sets: unique ids, links
    naming stored ids or earlier lines. Raises :class:`ImportStopped` when a batch
    fails after the check (the batches before it are written).
    """
    source = lines_or_path
    if not isinstance(source, str | os.PathLike):
        source = list(source)
    before = graph.stats(namespace)  # also checks the namespace
    count, links, done = _check_jsonl(graph, namespace, source, resume=resume)
    total = count - len(done)
    if total:
        size = batch_size or graph.config.max_batch
        written = 0
        if progress is not None:
            progress(0, total)
        pending = ((n, item) for n, item in _read_jsonl(source) if item.id not in done)
        for first, batch in _batches(pending, size):
            try:
                graph.remember_many(namespace, batch)
            except HippographError as exc:
                # The file was checked; only a concurrent writer or an edited file gets here.
                raise ImportStopped(first, written, exc) from exc
            written += len(batch)
            if progress is not None:
                progress(written, total)
    after = graph.stats(namespace)
    added = sum(after["associations"].values()) - sum(before["associations"].values())
    return {"memories": total, "associations": added, "links": links, "skipped": len(done)}
