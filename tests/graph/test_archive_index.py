"""The archive's search index: nearest ids, removal and replacement before and after a
save, the file round trip (memory-mapped), damaged files, clustering into lists with the
recall it keeps, and input checks. Real files in ``tmp_path``; no timed assertions (the
figures in the module docstring come from ``pytest -m bench -s`` on this file)."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from hippograph.graph.archive_index import ArchiveIndex, ArchiveIndexCorrupt
from hippograph.graph.model import BadInput

DIM = 384
MMAP_AVAILABLE = hasattr(faiss, "IO_FLAG_MMAP_IFC")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def random_vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def clustered(n: int, queries: int, seed: int = 0, dim: int = DIM) -> tuple[np.ndarray, ...]:
    """Stored vectors and fresh queries shaped like sentence embeddings rather than
    random ones: a shared mean direction, 50 super-topics, 2,000 topics (Gaussian
    centres), 40,000 sub-topics, then noise, normalised. Mean pairwise cosine ≈ 0.10 and
    nearest-neighbour cosine ≈ 0.55 at n = 4,000 (all-MiniLM-L6-v2 on code comments:
    0.08 and 0.59)."""
    rng = np.random.default_rng(seed)

    def noise(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(dim))

    mean = unit(noise(dim))
    supers = unit(noise(50, dim))
    topics = unit(supers[rng.integers(0, 50, 2000)] * 3.0 + noise(2000, dim))
    subtopics = unit(topics[rng.integers(0, 2000, 40_000)] + noise(40_000, dim) * 0.6)

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), dtype=np.float32)
        for start in range(0, m, 100_000):
            size = min(100_000, m - start)
            x = noise(size, dim) * np.float32(0.8)
            x += subtopics[rng.integers(0, 40_000, size)]
            x += mean * np.float32(0.4)
            out[start : start + size] = unit(x)
        return out

    return draw(n), draw(queries)


def recall_at_10(index: ArchiveIndex, seqs: np.ndarray, x: np.ndarray, q: np.ndarray) -> float:
    """Mean share of the exact top 10 (float inner product) that the index returns."""
    _, exact = faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT)
    found = [set(index.search(row, 10)[0].tolist()) for row in q]
    shared = [len(set(seqs[e].tolist()) & f) for e, f in zip(exact, found, strict=True)]
    return float(np.mean(shared)) / 10


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "archive.index"


def test_a_stored_vector_finds_itself_first(path: Path) -> None:
    x = random_vectors(500)
    seqs = np.arange(1000, 1500, dtype=np.int64)
    index = ArchiveIndex.open(path, DIM)
    index.add(seqs, x)
    assert len(index) == 500
    for i in (0, 17, 499):
        found, cosines = index.search(x[i], k=5)
        assert found[0] == seqs[i]
        assert cosines[0] == pytest.approx(1.0, abs=0.01)
        assert list(cosines) == sorted(cosines, reverse=True)
        assert found.dtype == np.int64 and cosines.dtype == np.float32


def test_results_are_the_nearest_ids(path: Path) -> None:
    x, q = clustered(3000, queries=50, seed=1)
    seqs = np.arange(3000, dtype=np.int64) * 3 + 1
    index = ArchiveIndex.open(path, DIM)
    index.add(seqs, x)
    assert index.lists == 1  # below the threshold: a flat scan of 8-bit codes
    assert recall_at_10(index, seqs, x, q) >= 0.95


def test_at_most_k_results_and_fewer_when_the_index_holds_fewer(path: Path) -> None:
    index = ArchiveIndex.open(path, DIM)
    index.add([3, 4, 5], random_vectors(3))
    assert len(index.search(random_vectors(1, seed=9)[0], k=2)[0]) == 2
    assert sorted(index.search(random_vectors(1, seed=9)[0], k=10)[0].tolist()) == [3, 4, 5]


@pytest.mark.parametrize("saved", [False, True], ids=["unsaved", "saved"])
def test_remove_counts_the_present_ids_and_hides_them(path: Path, saved: bool) -> None:
    x = random_vectors(100)
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(100), x)
    if saved:
        index.save()
    assert index.remove([5, 6, 5000]) == 2
    assert index.remove(np.array([5])) == 0
    assert len(index) == 98
    assert 5 not in index.search(x[5], k=100)[0]
    index.save()
    reopened = ArchiveIndex.open(path, DIM)
    assert len(reopened) == 98
    assert 6 not in reopened.search(x[6], k=100)[0]


@pytest.mark.parametrize("saved", [False, True], ids=["unsaved", "saved"])
def test_re_adding_an_id_replaces_its_vector(path: Path, saved: bool) -> None:
    x = random_vectors(50)
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(50), x)
    if saved:
        index.save()
    replacement = random_vectors(1, seed=7)
    index.add([10], replacement)
    assert len(index) == 50
    assert index.search(x[10], k=1)[0][0] != 10
    found, cosines = index.search(replacement[0], k=50)
    assert found[0] == 10 and cosines[0] == pytest.approx(1.0, abs=0.01)
    assert list(found).count(10) == 1
    index.save()
    assert ArchiveIndex.open(path, DIM).search(replacement[0], k=1)[0][0] == 10


def test_save_and_open_give_the_same_results(path: Path) -> None:
    x, q = clustered(2000, queries=20, seed=2)
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(2000), x)
    before = [index.search(row, 20) for row in q]
    in_ram = index.resident_bytes
    assert index.file_bytes == 0
    index.save()
    reopened = ArchiveIndex.open(path, DIM)
    assert len(reopened) == 2000
    assert reopened.file_bytes == path.stat().st_size > 2000 * DIM
    for row, (seqs, cosines) in zip(q, before, strict=True):
        again = reopened.search(row, 20)
        np.testing.assert_array_equal(again[0], seqs)
        np.testing.assert_allclose(again[1], cosines, atol=1e-6)
    if MMAP_AVAILABLE:
        assert index.mapped and reopened.mapped
        assert reopened.resident_bytes < in_ram / 10  # the codes stay in the file


def test_without_mmap_support_the_file_is_read_into_ram(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hippograph.graph.archive_index._MMAP_FLAG", None)
    x = random_vectors(100)
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(100), x)
    index.save()
    index.remove([3])
    reopened = ArchiveIndex.open(path, DIM)
    assert not index.mapped and not reopened.mapped
    assert reopened.resident_bytes > 100 * DIM
    assert index.search(x[3], 1)[0][0] != 3 and reopened.search(x[3], 1)[0][0] == 3


def test_changes_after_a_save_are_merged_by_the_next(path: Path) -> None:
    x = random_vectors(300)
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(200), x[:200])
    index.save()
    index.add(np.arange(200, 300), x[200:])
    index.remove(np.arange(0, 50))
    index.save()
    reopened = ArchiveIndex.open(path, DIM)
    assert len(reopened) == 250
    assert reopened.search(x[250], 1)[0][0] == 250
    assert reopened.search(x[10], 1)[0][0] != 10


def test_an_unchanged_index_is_not_rewritten(path: Path) -> None:
    index = ArchiveIndex.open(path, DIM)
    index.add([1], random_vectors(1))
    index.save()
    stamp = path.stat().st_mtime_ns
    time.sleep(0.01)
    ArchiveIndex.open(path, DIM).save()
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("saved", [False, True], ids=["new", "saved-empty"])
def test_an_empty_index_searches_to_empty(path: Path, saved: bool) -> None:
    index = ArchiveIndex.open(path, DIM)
    if saved:
        index.save()
        index = ArchiveIndex.open(path, DIM)
    seqs, cosines = index.search(random_vectors(1)[0], k=10)
    assert seqs.size == 0 and cosines.size == 0
    assert seqs.dtype == np.int64 and cosines.dtype == np.float32
    assert len(index) == 0


def damage_truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def damage_flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def damage_garbage(data: bytes) -> bytes:
    return np.random.default_rng(0).bytes(len(data))


@pytest.mark.parametrize(
    "damage", [damage_truncate, damage_flip, damage_garbage, lambda d: b"", lambda d: d[:-3]]
)
def test_a_damaged_file_raises_corrupt(path: Path, damage) -> None:
    index = ArchiveIndex.open(path, DIM)
    index.add(np.arange(100), random_vectors(100))
    index.save()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ArchiveIndexCorrupt):
        ArchiveIndex.open(path, DIM)


def test_a_file_of_another_dimension_raises_corrupt(path: Path) -> None:
    index = ArchiveIndex.open(path, 16)
    index.add([1], random_vectors(1, dim=16))
    index.save()
    with pytest.raises(ArchiveIndexCorrupt, match="16-d"):
        ArchiveIndex.open(path, DIM)


def test_large_archives_are_clustered_and_keep_recall(path: Path) -> None:
    """With the threshold forced low: clustered on the add that crosses it, re-clustered
    by the save that finds the archive 4× larger, and recall@10 stays >= 0.9."""
    x, q = clustered(8000, queries=100, seed=3)
    seqs = np.arange(8000, dtype=np.int64) + 10**12
    index = ArchiveIndex.open(path, DIM, ivf_threshold=1000)
    index.add(seqs[:500], x[:500])
    assert index.lists == 1
    index.add(seqs[500:2000], x[500:2000])
    first = index.lists
    assert first > 1
    index.save()
    index.add(seqs[2000:], x[2000:])
    assert index.lists == first  # adds after a save use the saved lists until the next save
    assert recall_at_10(index, seqs, x, q) >= 0.9
    index.save()
    assert index.lists >= 2 * first
    reopened = ArchiveIndex.open(path, DIM, ivf_threshold=1000)
    assert len(reopened) == 8000 and reopened.lists == index.lists
    assert recall_at_10(reopened, seqs, x, q) >= 0.9
    assert reopened.search(x[1234], 1)[0][0] == seqs[1234]


def test_a_shrunken_archive_returns_to_one_list(path: Path) -> None:
    x = random_vectors(2000)
    index = ArchiveIndex.open(path, DIM, ivf_threshold=1000)
    index.add(np.arange(2000), x)
    assert index.lists > 1
    index.save()
    assert index.remove(np.arange(1700)) == 1700
    index.save()
    assert index.lists == 1 and len(index) == 300
    assert index.search(x[1999], 1)[0][0] == 1999


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ix: ix.add([1], np.ones((1, DIM - 1), np.float32)), "vectors"),
        (lambda ix: ix.add([1, 2], np.ones((1, DIM), np.float32)), "vectors"),
        (lambda ix: ix.add([1], np.full((1, DIM), np.nan, np.float32)), "vectors"),
        (lambda ix: ix.add([1], np.full((1, DIM), np.inf, np.float32)), "vectors"),
        (lambda ix: ix.add([1], np.zeros((1, DIM), np.float32)), "vectors"),
        (lambda ix: ix.add([-1], np.ones((1, DIM), np.float32)), "seqs"),
        (lambda ix: ix.add([1.5], np.ones((1, DIM), np.float32)), "seqs"),
        (lambda ix: ix.add([4, 4], np.ones((2, DIM), np.float32)), "seqs"),
        (lambda ix: ix.remove(["a"]), "seqs"),
        (lambda ix: ix.search(np.ones(DIM + 1, np.float32), 5), "q"),
        (lambda ix: ix.search(np.full(DIM, np.nan, np.float32), 5), "q"),
        (lambda ix: ix.search(np.ones(DIM, np.float32), 0), "k"),
        (lambda ix: ix.search(np.ones(DIM, np.float32), 2.5), "k"),
        (lambda ix: ix.search(np.ones(DIM, np.float32), True), "k"),
        (lambda ix: ArchiveIndex.open(ix.path, 0), "dim"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(path: Path, call, field: str) -> None:
    index = ArchiveIndex.open(path, DIM)
    index.add([7], random_vectors(1))
    with pytest.raises(BadInput) as caught:
        call(index)
    assert caught.value.field == field
    assert len(index) == 1 and index.search(random_vectors(1)[0], 1)[0].tolist() == [7]


def anon_rss() -> int:
    """Anonymous resident memory of this process (not file-backed pages), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.bench
def test_archive_index_figures(tmp_path: Path) -> None:
    """Prints build time, file size, resident bytes, search p50/p99 (k=20, one query at
    a time, from the mapped file) and recall@10 against exact float search.
    Run: ``ARCHIVE_BENCH_N=100000,1000000 pytest -m bench -s tests/graph/test_archive_index.py``."""
    for n in [int(s) for s in os.environ.get("ARCHIVE_BENCH_N", "100000").split(",")]:
        x, q = clustered(n, queries=300, seed=11)
        seqs = np.arange(n, dtype=np.int64) * 5 + 3
        path = tmp_path / f"archive-{n}.index"
        began = time.perf_counter()
        index = ArchiveIndex.open(path, DIM)
        index.add(seqs, x)
        built = time.perf_counter() - began
        index.save()
        saved = time.perf_counter() - began - built
        del index
        gc.collect()
        rss = anon_rss()
        began = time.perf_counter()
        index = ArchiveIndex.open(path, DIM)
        opened = time.perf_counter() - began
        rss = anon_rss() - rss
        for row in q[:50]:  # warm the page cache
            index.search(row, 20)
        spent = []
        for row in q:
            began = time.perf_counter()
            index.search(row, 20)
            spent.append(time.perf_counter() - began)
        p50, p99 = np.percentile(np.array(spent) * 1e3, [50, 99])
        recalls = {
            nprobe: recall_at_10(ArchiveIndex.open(path, DIM, nprobe=nprobe), seqs, x, q)
            for nprobe in (16, 24, 32)
        }
        print(
            f"\nn={n:,} lists={index.lists} build {built:.1f} s save {saved:.1f} s "
            f"open {opened:.2f} s file {index.file_bytes / 1e6:.1f} MB resident "
            f"{index.resident_bytes / 1e6:.2f} MB (anon RSS after open +{rss / 1e6:.1f} MB) "
            f"mapped={index.mapped} search p50 {p50:.3f} ms p99 {p99:.3f} ms recall@10 "
            + " ".join(f"nprobe {p}: {r:.3f}" for p, r in recalls.items())
        )
        del x, q, index
        gc.collect()
