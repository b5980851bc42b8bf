"""Tests for VectorIndex: exactness, HNSW conversion, logical removal, persistence."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import faiss
import numpy as np
import pytest

from hippograph.embeddings import VectorIndex

DIM = 32


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(
    ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


def filled(
    n: int, *, threshold: int = 100_000, seed: int = 0, id_offset: int = 1000
) -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    # Offset ids so a bug that returns FAISS row positions instead of ids cannot pass.
    vectors = unit_vectors(n, seed=seed)
    ids = np.arange(n, dtype=np.int64) * 3 + id_offset
    index = VectorIndex(DIM, hnsw_threshold=threshold)
    index.add(ids, vectors)
    return index, ids, vectors


# ---------------------------------------------------------------------------- exact search


def test_exact_search_matches_numpy_brute_force() -> None:
    index, ids, vectors = filled(2000)
    assert index.kind == "exact"
    for query in unit_vectors(20, seed=1):
        got_ids, got_scores = index.search(query, 10)
        want_ids, want_scores = brute_force(ids, vectors, query, 10)
        np.testing.assert_array_equal(got_ids, want_ids)
        np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
        assert np.all(np.diff(got_scores) <= 0)


def test_batch_query_returns_rows_equal_to_single_queries() -> None:
    index, _, _ = filled(500)
    queries = unit_vectors(5, seed=2)
    batch_ids, batch_scores = index.search(queries, 7)
    assert batch_ids.shape == batch_scores.shape == (5, 7)
    for row, query in enumerate(queries):
        single_ids, single_scores = index.search(query, 7)
        np.testing.assert_array_equal(batch_ids[row], single_ids)
        np.testing.assert_allclose(batch_scores[row], single_scores)


def test_single_query_drops_padding_when_k_exceeds_live_count() -> None:
    index, ids, _ = filled(5)
    got_ids, got_scores = index.search(unit_vectors(1, seed=3)[0], 20)
    assert sorted(got_ids.tolist()) == sorted(ids.tolist())
    assert len(got_scores) == 5
    assert np.isfinite(got_scores).all()


def test_batch_query_pads_with_minus_one_and_neg_inf() -> None:
    index, _, _ = filled(3)
    got_ids, got_scores = index.search(unit_vectors(2, seed=4), 5)
    assert (got_ids[:, 3:] == -1).all()
    assert np.isneginf(got_scores[:, 3:]).all()
    assert (got_ids[:, :3] >= 0).all()


def test_search_on_empty_index_returns_nothing() -> None:
    index = VectorIndex(DIM)
    got_ids, got_scores = index.search(unit_vectors(1)[0], 5)
    assert got_ids.shape == (0,)
    assert got_scores.shape == (0,)
    assert index.max_id == -1


# ---------------------------------------------------------------------------- HNSW


def test_crossing_threshold_converts_to_hnsw_with_good_recall() -> None:
    n = 2000
    vectors = unit_vectors(n)
    ids = np.arange(n, dtype=np.int64) + 10
    index = VectorIndex(DIM, hnsw_threshold=200)
    index.add(ids[:150], vectors[:150])
    assert index.kind == "exact"
    index.add(ids[150:200], vectors[150:200])
    assert index.kind == "hnsw"
    assert index.ntotal == 200
    index.add(ids[200:], vectors[200:])
    assert index.kind == "hnsw"

    recalls = []
    for query in unit_vectors(100, seed=5):
        got, _ = index.search(query, 10)
        want, _ = brute_force(ids, vectors, query, 10)
        recalls.append(len(set(got.tolist()) & set(want.tolist())) / 10)
    assert np.mean(recalls) >= 0.9


def test_conversion_keeps_every_vector_findable_by_its_own_id() -> None:
    index, ids, vectors = filled(300, threshold=200)
    assert index.kind == "hnsw"
    got, scores = index.search(vectors[:50], 1)
    np.testing.assert_array_equal(got[:, 0], ids[:50])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_build_picks_hnsw_directly_and_reports_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hippograph.embeddings.index.ADD_CHUNK", 100)
    vectors = unit_vectors(450)
    ids = np.arange(450, dtype=np.int64) + 7
    seen: list[int] = []
    index = VectorIndex.build(DIM, ids, vectors, progress=seen.append, hnsw_threshold=200)
    assert index.kind == "hnsw"
    assert seen == [100, 200, 300, 400, 450]
    assert index.live_count == 450
    assert index.max_id == 456
    got, _ = index.search(vectors[3], 1)
    assert got.tolist() == [10]


def test_build_below_threshold_is_exact() -> None:
    vectors = unit_vectors(100)
    index = VectorIndex.build(DIM, np.arange(100), vectors, hnsw_threshold=200)
    assert index.kind == "exact"
    assert index.ntotal == 100


# ---------------------------------------------------------------------------- removal


@pytest.mark.parametrize("threshold", [100_000, 200], ids=["exact", "hnsw"])
def test_removed_ids_never_return_even_when_nearest(threshold: int) -> None:
    index, ids, vectors = filled(3000, threshold=threshold)
    query = unit_vectors(1, seed=9)[0]
    # Removing the 1500 nearest exceeds the first-round oversampling, forcing the
    # widen-and-retry path.
    nearest, _ = brute_force(ids, vectors, query, 1500)
    index.remove(nearest)
    dead = set(nearest.tolist())

    got, _ = index.search(query, 10)
    assert len(got) == 10
    assert not dead & set(got.tolist())

    batch, _ = index.search(np.stack([query, vectors[0]]), 10)
    assert not dead & set(batch.ravel().tolist())
    if threshold == 100_000:
        live = ~np.isin(ids, nearest)
        want, _ = brute_force(ids[live], vectors[live], query, 10)
        np.testing.assert_array_equal(got, want)


def test_removing_everything_leaves_searches_empty() -> None:
    index, ids, vectors = filled(50)
    index.remove(ids)
    got, _ = index.search(vectors[0], 5)
    assert got.size == 0
    assert index.live_count == 0
    assert index.ntotal == 50


def test_search_returns_the_few_survivors_when_almost_everything_is_removed() -> None:
    index, ids, vectors = filled(2000)
    index.remove(ids[3:])
    got, _ = index.search(vectors[1000], 10)
    assert sorted(got.tolist()) == sorted(ids[:3].tolist())


def test_remove_updates_counts_and_membership() -> None:
    index, ids, _ = filled(20)
    index.remove(ids[:5])
    assert index.dead_count == 5
    assert index.live_count == 15
    assert index.ntotal == 20
    assert int(ids[0]) not in index
    assert int(ids[5]) in index
    assert np.int64(ids[5]) in index
    np.testing.assert_array_equal(index.live_ids(), ids[5:])


def test_remove_of_unknown_or_already_removed_id_raises_and_changes_nothing() -> None:
    index, ids, _ = filled(10)
    index.remove(ids[:1])
    with pytest.raises(KeyError):
        index.remove(ids[:1])
    with pytest.raises(KeyError):
        index.remove(np.array([ids[2], 999_999]))
    assert index.dead_count == 1
    assert int(ids[2]) in index


def test_exclude_callback_filters_candidates() -> None:
    index, ids, vectors = filled(500)
    query = vectors[0]
    banned = set(brute_force(ids, vectors, query, 30)[0].tolist()[::2])
    calls: list[np.ndarray] = []

    def exclude(candidates: np.ndarray) -> np.ndarray:
        calls.append(candidates)
        return np.isin(candidates, list(banned))

    got, _ = index.search(query, 10, exclude=exclude)
    assert len(got) == 10
    assert not banned & set(got.tolist())
    assert calls and all(c.dtype == np.int64 for c in calls)
    live = ~np.isin(ids, list(banned))
    np.testing.assert_array_equal(got, brute_force(ids[live], vectors[live], query, 10)[0])


def test_exclude_callback_returning_wrong_shape_raises() -> None:
    index, _, vectors = filled(50)
    with pytest.raises(ValueError, match="exclude"):
        index.search(vectors[0], 5, exclude=lambda c: np.zeros(1, dtype=bool))


def test_needs_compaction_follows_dead_ratio() -> None:
    index, ids, _ = filled(100)
    assert not index.needs_compaction()
    index.remove(ids[:9])
    assert not index.needs_compaction(0.1)
    index.remove(ids[9:10])
    assert index.needs_compaction(0.1)
    assert not index.needs_compaction(0.5)


def test_compact_drops_dead_and_keeps_live_results() -> None:
    index, ids, _ = filled(1000)
    index.remove(ids[::3])
    queries = unit_vectors(10, seed=11)
    before = index.search(queries, 10)
    index.compact()
    after = index.search(queries, 10)
    assert index.dead_count == 0
    assert index.ntotal == index.live_count == len(ids) - len(ids[::3])
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], atol=1e-6)
    with pytest.raises(KeyError):
        index.reconstruct(ids[:1])


def test_compact_below_threshold_turns_hnsw_back_into_exact() -> None:
    index, ids, _ = filled(300, threshold=200)
    assert index.kind == "hnsw"
    index.remove(ids[:150])
    index.compact()
    assert index.kind == "exact"
    assert index.ntotal == 150


def test_removed_id_can_be_re_added_only_after_compaction() -> None:
    index, ids, vectors = filled(10)
    index.remove(ids[:1])
    with pytest.raises(ValueError, match="compact"):
        index.add(ids[:1], vectors[1:2])
    index.compact()
    index.add(ids[:1], vectors[1:2])
    np.testing.assert_allclose(index.reconstruct(ids[:1]), vectors[1:2])


def test_max_id_survives_removal_and_compaction() -> None:
    index, ids, _ = filled(10)
    top = int(ids.max())
    index.remove(np.array([top]))
    index.compact()
    assert index.max_id == top


# ---------------------------------------------------------------------------- validation


def test_adding_an_existing_id_raises() -> None:
    index, ids, vectors = filled(10)
    with pytest.raises(ValueError, match="already"):
        index.add(ids[3:4], vectors[3:4])
    assert index.ntotal == 10


def test_duplicate_ids_within_one_add_or_build_raise() -> None:
    vectors = unit_vectors(2)
    index = VectorIndex(DIM)
    with pytest.raises(ValueError, match="duplicate"):
        index.add(np.array([5, 5]), vectors)
    assert index.ntotal == 0
    with pytest.raises(ValueError, match="duplicate"):
        VectorIndex.build(DIM, np.array([5, 5]), vectors)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        (np.array([1]), np.ones(DIM, dtype=np.float32) / np.sqrt(DIM), "shape"),
        (np.array([1]), unit_vectors(1, dim=DIM + 1), "shape"),
        (np.array([[1]]), unit_vectors(1), "1-D"),
        (np.array([1, 2]), unit_vectors(1), "2 ids but 1 vectors"),
        (np.array([1.0]), unit_vectors(1), "integer"),
        (np.array([-1]), unit_vectors(1), "non-negative"),
        (np.array([1]), unit_vectors(1) * 2, "L2-normalised"),
        (np.array([1]), np.full((1, DIM), np.nan, dtype=np.float32), "NaN"),
        (np.array([1]), np.ones((1, DIM), dtype=np.int64), "float"),
    ],
    ids=[
        "1d-vectors",
        "wrong-dim",
        "2d-ids",
        "count-mismatch",
        "float-ids",
        "negative-id",
        "not-unit",
        "nan",
        "int-vectors",
    ],
)
def test_bad_add_input_raises_value_error(
    ids: np.ndarray, vectors: np.ndarray, message: str
) -> None:
    index = VectorIndex(DIM)
    with pytest.raises(ValueError, match=message):
        index.add(ids, vectors)
    assert index.ntotal == 0


def test_bad_query_shape_or_k_raises_value_error() -> None:
    index, _, _ = filled(10)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones(DIM + 1, dtype=np.float32), 3)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.ones((1, 1, DIM), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="k must"):
        index.search(unit_vectors(1)[0], -1)


# ---------------------------------------------------------------------------- reconstruct


@pytest.mark.parametrize("threshold", [100_000, 200], ids=["exact", "hnsw"])
def test_reconstruct_returns_stored_vectors_and_rejects_dead_ids(threshold: int) -> None:
    index, ids, vectors = filled(300, threshold=threshold)
    pick = np.array([5, 0, 299, 17])
    np.testing.assert_array_equal(index.reconstruct(ids[pick]), vectors[pick])
    index.remove(ids[[17]])
    with pytest.raises(KeyError):
        index.reconstruct(ids[[5, 17]])
    with pytest.raises(KeyError):
        index.reconstruct(np.array([2]))


# ---------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("threshold", [100_000, 200], ids=["exact", "hnsw"])
def test_save_load_round_trip_preserves_results_and_meta(tmp_path: Path, threshold: int) -> None:
    index, ids, _ = filled(600, threshold=threshold)
    index.remove(ids[:40])
    meta = {"model": "all-MiniLM-L6-v2", "seq": 1234, "nested": {"a": [1, 2]}}
    path = tmp_path / "vectors.faiss"
    index.save(path, meta)

    loaded, loaded_meta = VectorIndex.load(path)
    assert loaded_meta == meta
    assert loaded.kind == index.kind
    assert loaded.dim == DIM
    assert loaded.max_id == index.max_id
    assert loaded.dead_count == 40
    assert loaded.params == index.params
    queries = unit_vectors(20, seed=13)
    want = index.search(queries, 10)
    got = loaded.search(queries, 10)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert int(ids[0]) not in loaded
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.faiss", "vectors.json"]


def _arrays(index: VectorIndex) -> dict[str, int]:
    """Where FAISS keeps the index's arrays now (addresses of their data)."""
    raw = index._index
    inner = faiss.downcast_index(raw.index)
    flat = faiss.downcast_index(inner.storage) if index.kind == "hnsw" else inner
    found = {"codes": int(flat.codes.data()), "ids": int(raw.id_map.data())}
    if index.kind == "hnsw":
        found["links"] = int(inner.hnsw.neighbors.data())
    return found


@pytest.mark.parametrize("threshold", [100_000, 200], ids=["exact", "hnsw"])
def test_a_loaded_index_has_room_so_new_vectors_copy_nothing(
    tmp_path: Path, threshold: int
) -> None:
    """The first add after a load used to copy every array of the index (the file
    leaves no spare room) while recall waited; load makes the room. Without it, the
    same add moves the arrays (the check below can tell)."""
    index, _, _ = filled(600, threshold=threshold)
    index.save(tmp_path / "v.faiss", {})
    queries = unit_vectors(10, seed=21)
    before = index.search(queries, 10)

    loaded, _ = VectorIndex.load(tmp_path / "v.faiss")
    where = _arrays(loaded)
    fresh = np.arange(10**6, 10**6 + 200, dtype=np.int64)
    new_vectors = unit_vectors(200, seed=22)
    loaded.add(fresh, new_vectors)
    assert _arrays(loaded) == where  # nothing moved
    found, _ = loaded.search(new_vectors, 1)
    np.testing.assert_array_equal(found.ravel(), fresh)
    loaded.remove(fresh)
    after = loaded.search(queries, 10)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1], rtol=1e-6)

    raw = faiss.read_index(str(tmp_path / "v.faiss"))  # as the file leaves it: no room
    address = int(raw.id_map.data())
    raw.add_with_ids(new_vectors[:1], fresh[:1])
    assert int(raw.id_map.data()) != address


def test_loaded_index_keeps_accepting_adds_and_rejects_known_ids(tmp_path: Path) -> None:
    index, ids, vectors = filled(20)
    index.save(tmp_path / "v.faiss", {})
    loaded, _ = VectorIndex.load(tmp_path / "v.faiss")
    with pytest.raises(ValueError, match="already"):
        loaded.add(ids[:1], vectors[:1])
    loaded.add(np.array([5]), unit_vectors(1, seed=99))
    assert loaded.live_count == 21


def test_load_missing_files_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "absent.faiss")
    index, _, _ = filled(5)
    index.save(tmp_path / "v.faiss", {})
    (tmp_path / "v.json").unlink()
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "v.faiss")


def test_load_rejects_sidecar_from_another_save(tmp_path: Path) -> None:
    # Models a crash between the two replaces: a newer index next to an older sidecar with
    # the same ntotal (one id compacted away, one added). Only the recorded index hash can
    # tell them apart; trusting the old sidecar would misreport which ids are dead.
    index, ids, _ = filled(30)
    path = tmp_path / "v.faiss"
    index.remove(ids[:1])
    index.save(path, {"gen": 1})
    shutil.copy(tmp_path / "v.json", tmp_path / "old.json")
    index.compact()
    index.add(np.array([5]), unit_vectors(1, seed=42))
    index.save(path, {"gen": 2})
    shutil.copy(tmp_path / "old.json", tmp_path / "v.json")
    with pytest.raises(ValueError, match="does not match"):
        VectorIndex.load(path)


def test_save_after_logical_removal_only_changes_the_sidecar(tmp_path: Path) -> None:
    # Removal is logical, so the FAISS file is byte-identical and the old sidecar still
    # pairs with it: a crash between the replaces loads the previous, consistent snapshot.
    index, ids, _ = filled(30)
    path = tmp_path / "v.faiss"
    index.save(path, {"gen": 1})
    before = path.read_bytes()
    index.remove(ids[:1])
    index.save(path, {"gen": 2})
    assert path.read_bytes() == before
    loaded, meta = VectorIndex.load(path)
    assert meta == {"gen": 2}
    assert int(ids[0]) not in loaded


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("dim", DIM + 1, "dim"), ("ntotal", 31, "vectors"), ("kind", "hnsw", "sidecar says")],
)
def test_load_rejects_sidecar_inconsistent_with_index(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    index, _, _ = filled(30)
    path = tmp_path / "v.faiss"
    index.save(path, {})
    sidecar = tmp_path / "v.json"
    document = json.loads(sidecar.read_text())
    document[field] = value
    sidecar.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message):
        VectorIndex.load(path)


def test_load_rejects_unparseable_sidecar_and_corrupt_index(tmp_path: Path) -> None:
    index, _, _ = filled(30)
    path = tmp_path / "v.faiss"
    index.save(path, {})
    good_sidecar = (tmp_path / "v.json").read_text()
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        VectorIndex.load(path)
    (tmp_path / "v.json").write_text(good_sidecar)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError):
        VectorIndex.load(path)


def test_save_with_unserialisable_meta_writes_nothing(tmp_path: Path) -> None:
    index, _, _ = filled(5)
    with pytest.raises(TypeError):
        index.save(tmp_path / "v.faiss", {"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_save_overwrites_previous_files_atomically(tmp_path: Path) -> None:
    index, ids, _ = filled(10)
    path = tmp_path / "v.faiss"
    index.save(path, {"gen": 1})
    index.remove(ids[:2])
    index.save(path, {"gen": 2})
    loaded, meta = VectorIndex.load(path)
    assert meta == {"gen": 2}
    assert loaded.dead_count == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.faiss", "v.json"]


# ---------------------------------------------------------------------------- threads


def test_concurrent_searches_during_adds_and_conversion_never_fail() -> None:
    vectors = unit_vectors(1200)
    ids = np.arange(1200, dtype=np.int64)
    index = VectorIndex(DIM, hnsw_threshold=600)
    index.add(ids[:100], vectors[:100])
    index.remove(ids[:10])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        queries = unit_vectors(50, seed=seed)
        try:
            while not stop.is_set():
                for query in queries:
                    got, _ = index.search(query, 5)
                    assert len(got) == 5
                    assert not set(got.tolist()) & set(range(10))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for start in range(100, 1200, 50):
        index.add(ids[start : start + 50], vectors[start : start + 50])
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert index.kind == "hnsw"
