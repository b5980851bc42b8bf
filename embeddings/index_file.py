"""The file format of a :class:`~hippograph.embeddings.index.VectorIndex`.

An index is saved as two files, each written atomically (:mod:`hippograph.files`): the
FAISS index (``name.faiss``) and a JSON sidecar (``name.json``) holding the format
version, the caller's meta, the index kind, dimension, size, largest id, the logically
removed ids, the FAISS parameters, and the sha256 of the index file. The checksum ties
the pair together, so a crash between the two renames (or any pairing of files from
different saves) is detected on read instead of mixing two snapshots, e.g. an old
dead-id list applied to a compacted index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import faiss
import numpy as np

from hippograph.files import atomic_write

__all__ = ["FORMAT_VERSION", "SavedIndex", "read_index_file", "sidecar_path", "write_index_file"]

FORMAT_VERSION = 1
IO_CHUNK = 1 << 20


def sidecar_path(path: Path) -> Path:
    """The sidecar of an index file.

    >>> sidecar_path(Path("derived/n1.faiss")).as_posix()
    'derived/n1.json'
    """
    return Path(path).with_suffix(".json")


@dataclass(frozen=True)
class SavedIndex:
    """An index file read and checked against its sidecar."""

    raw: Any  # faiss.IndexIDMap2 over IndexFlatIP or IndexHNSWFlat
    sidecar: Path
    meta: dict[str, Any]
    kind: str
    dim: int
    ntotal: int
    max_id: int
    stored: set[int]
    dead: set[int]
    params: dict[str, int]


def write_index_file(path: Path, index: Any, document: dict[str, Any]) -> None:
    """Write the FAISS ``index`` to ``path``, then the sidecar ``document`` with the
    index file's sha256 added. Only the sidecar differs when ids were merely removed."""
    sidecar = sidecar_path(path)
    if sidecar == path:
        raise ValueError(f"index path {path} must not end in .json (used by the sidecar)")
    digest = hashlib.sha256()

    def write_index(fh: BinaryIO) -> None:
        def sink(chunk: bytes) -> int:
            digest.update(chunk)
            fh.write(chunk)
            return len(chunk)

        # The callback classes exist at runtime but are missing from faiss's stubs.
        writer = faiss.PyCallbackIOWriter(sink)  # type: ignore[attr-defined]
        faiss.write_index(index, writer)
        del writer

    # Serialise before touching disk so a non-JSON meta fails without side effects.
    json.dumps(document)
    atomic_write(path, write_index)
    payload = json.dumps({**document, "index_sha256": digest.hexdigest()}, indent=1)

    def write_sidecar(fh: BinaryIO) -> None:
        fh.write(payload.encode("utf-8"))

    atomic_write(sidecar, write_sidecar)


def read_index_file(path: Path) -> SavedIndex:
    """Read an index saved by :func:`write_index_file` and check the pair.

    FileNotFoundError if either file is missing; ValueError if they are corrupt or do
    not belong together, so the caller can rebuild from its own source of truth.
    """
    path = Path(path)
    sidecar = sidecar_path(path)
    for required in (path, sidecar):
        if not required.is_file():
            raise FileNotFoundError(f"vector index file {required} not found")
    try:
        document = json.loads(sidecar.read_text(encoding="utf-8"))
        fmt = document["format"]
        meta = document["meta"]
        kind = document["kind"]
        dim = int(document["dim"])
        ntotal = int(document["ntotal"])
        max_id = int(document["max_id"])
        dead_ids = [int(i) for i in document["dead_ids"]]
        params = {str(key): int(value) for key, value in document["params"].items()}
        expected_sha = str(document["index_sha256"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"vector index sidecar {sidecar} is unreadable: {exc!r}") from exc
    if fmt != FORMAT_VERSION:
        raise ValueError(f"{sidecar} has format {fmt!r}, this code reads {FORMAT_VERSION}")
    if kind not in ("exact", "hnsw"):
        raise ValueError(f"{sidecar} has unknown index kind {kind!r}")
    if not isinstance(meta, dict):
        raise ValueError(f"{sidecar} meta must be an object, got {type(meta).__name__}")

    digest = hashlib.sha256()
    with path.open("rb") as fh:

        def source(size: int) -> bytes:
            chunk = fh.read(size)
            digest.update(chunk)
            return chunk

        try:
            reader = faiss.PyCallbackIOReader(source, IO_CHUNK)  # type: ignore[attr-defined]
            raw = faiss.read_index(reader)
        except RuntimeError as exc:
            raise ValueError(f"vector index file {path} is unreadable: {exc}") from exc
        # FAISS stops at the end of its structure; hash any trailing bytes too.
        for chunk in iter(lambda: fh.read(IO_CHUNK), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected_sha:
        raise ValueError(
            f"vector index file {path} does not match its sidecar {sidecar} "
            "(sha256 differs: files from different saves, or corruption)"
        )
    if not isinstance(raw, faiss.IndexIDMap2):
        raise ValueError(f"{path} holds a {type(raw).__name__}, expected IndexIDMap2")
    inner = faiss.downcast_index(raw.index)
    actual_kind = (
        "hnsw"
        if isinstance(inner, faiss.IndexHNSWFlat)
        else "exact"
        if isinstance(inner, faiss.IndexFlatIP)
        else None
    )
    if actual_kind != kind:
        raise ValueError(f"{path} holds {type(inner).__name__}, sidecar says {kind!r}")
    if int(raw.d) != dim:
        raise ValueError(f"{path} has dim {raw.d}, sidecar says {dim}")
    if int(raw.ntotal) != ntotal:
        raise ValueError(f"{path} holds {raw.ntotal} vectors, sidecar says {ntotal}")
    stored_ids = faiss.vector_to_array(raw.id_map).astype(np.int64, copy=False)
    stored = set(stored_ids.tolist())
    if len(stored) != ntotal:
        raise ValueError(f"{path} contains duplicate ids")
    dead = set(dead_ids)
    if not dead <= stored:
        raise ValueError(f"{sidecar} lists dead ids that are not in {path}")
    if stored and max_id < int(stored_ids.max()):
        raise ValueError(f"{sidecar} max_id {max_id} is below stored id {stored_ids.max()}")
    return SavedIndex(
        raw=raw,
        sidecar=sidecar,
        meta=meta,
        kind=kind,
        dim=dim,
        ntotal=ntotal,
        max_id=max_id,
        stored=stored,
        dead=dead,
        params=params,
    )
