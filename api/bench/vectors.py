"""``hippograph bench vectors``: FAISS against Neo4j's native vector index, in one run.

The same unit vectors (dimension 384, clustered as ``bench latency``'s memories: cluster
centres plus noise) and the same queries go to

- FAISS as the product uses it (:class:`embeddings.VectorIndex`): exact (``IndexFlatIP``)
  and HNSW (the index a namespace switches to at ``hnsw_threshold``), in process;
- Neo4j 5's vector index over the memories' ``embedding`` property (the memories written
  through the ``GraphStore`` protocol, as ``remember`` stores them), queried with
  ``db.index.vector.queryNodes`` over Bolt with the driver, as hippograph would call it.

Reported: build time of each index, p50/p99 latency of k=10 queries, and recall@10
agreement with exact search. The product keeps no vector index in Neo4j (FAISS serves
seeding, see README "Vector search: FAISS or Neo4j's vector index"), so the Cypher for it
lives here, not among the store's statements; the index is dropped when the bench ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import faiss
import numpy as np

from hippograph.api.bench.common import WARMUP, ms_summary, parse_count
from hippograph.api.bench.synthetic import DIM, SPREAD, Synthetic, unit
from hippograph.embeddings import VectorIndex
from hippograph.graph import Memory, MemoryKind
from hippograph.graph.store import GraphStore, WriteBatch

__all__ = ["add_vectors_arguments", "run_vectors", "run_vectors_command"]

NAMESPACE = "bench-vectors"
K = 10
WRITE_BATCH = 5_000
INDEX_NAME = "hippograph_bench_vectors"
# The bench's own Cypher (the product issues none of it). Index names and options cannot
# be parameters in CREATE VECTOR INDEX.
CREATE_INDEX = (
    f"CREATE VECTOR INDEX {INDEX_NAME} IF NOT EXISTS FOR (m:Memory) ON m.embedding "
    f"OPTIONS {{indexConfig: {{`vector.dimensions`: {DIM}, "
    "`vector.similarity_function`: 'cosine'}}"
)
AWAIT_INDEX = "CALL db.awaitIndex($name, $seconds)"
QUERY_INDEX = (
    "CALL db.index.vector.queryNodes($name, $k, $vector) YIELD node, score "
    "WHERE node.namespace = $namespace RETURN node.id AS id, score"
)
DROP_INDEX = f"DROP INDEX {INDEX_NAME} IF EXISTS"
# The index covers every memory of the database, whatever its namespace; a query's
# namespace filter applies after the top k, so other namespaces' vectors cost recall.
INDEXED = "MATCH (m:Memory) WHERE m.embedding IS NOT NULL RETURN count(m) AS count"


def _vectors(synth: Synthetic) -> np.ndarray:
    """One unit vector per memory: its cluster's centre plus noise (``bench latency``)."""
    rng = np.random.default_rng([synth.seed, 11])
    noise = unit(rng.standard_normal((synth.n, synth.dim), dtype=np.float32))
    out: np.ndarray = unit(synth.centres[synth.cluster_of] + SPREAD * noise).astype(np.float32)
    return out


def _memory_id(i: int) -> str:
    return f"v{i:07d}"


def _recall(found: list[np.ndarray], exact: np.ndarray) -> float:
    return float(
        np.mean([len(np.intersect1d(f, e)) / len(e) for f, e in zip(found, exact, strict=True)])
    )


def _time_faiss(index: VectorIndex, queries: np.ndarray) -> tuple[list[int], list[np.ndarray]]:
    for q in queries[:WARMUP]:
        index.search(q, K)
    took: list[int] = []
    found: list[np.ndarray] = []
    for q in queries[WARMUP:]:
        t0 = time.perf_counter_ns()
        ids, _ = index.search(q, K)
        took.append(time.perf_counter_ns() - t0)
        found.append(ids)
    return took, found


def run_vectors(
    vectors: int,
    *,
    queries: int = 200,
    seed: int = 0,
    store: GraphStore,
    driver: Any,
    database: str | None = None,
    hnsw_m: int = 32,
    ef_construction: int = 80,
    ef_search: int = 64,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the three indexes over ``vectors`` vectors and measure them (module doc).

    ``store`` is the Neo4j store the vectors are written to (namespace ``bench-vectors``,
    which must be empty); ``driver`` a ``neo4j.Driver`` on the same database, for the
    vector index's Cypher. The index is dropped at the end; the memories stay.
    """
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < K:
        raise ValueError(f"vectors must be an integer >= {K}, got {vectors!r}")
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
        raise ValueError(f"queries must be a positive integer, got {queries!r}")
    say = log or (lambda _: None)
    if store.generation(NAMESPACE) > 0:
        raise ValueError(
            f"namespace {NAMESPACE!r} already holds memories in this store; run the bench "
            "on an empty database"
        )
    synth = Synthetic(vectors, seed, DIM)
    data = _vectors(synth)
    query_vectors = np.stack([v for _, v in synth.queries(WARMUP + queries)])
    ids = np.arange(vectors, dtype=np.int64)

    # exact search: the reference for recall
    t0 = time.perf_counter()
    exact = VectorIndex.build(DIM, ids, data, hnsw_threshold=vectors + 1)
    exact_build_s = time.perf_counter() - t0
    exact_ns, exact_found = _time_faiss(exact, query_vectors)
    reference = np.stack(exact_found)
    say(f"FAISS exact: built in {exact_build_s:.2f} s")

    t0 = time.perf_counter()
    hnsw = VectorIndex.build(
        DIM,
        ids,
        data,
        hnsw_threshold=1,
        hnsw_m=hnsw_m,
        ef_construction=ef_construction,
        ef_search=ef_search,
    )
    hnsw_build_s = time.perf_counter() - t0
    hnsw_ns, hnsw_found = _time_faiss(hnsw, query_vectors)
    say(f"FAISS HNSW: built in {hnsw_build_s:.2f} s")
    del exact, hnsw

    # Neo4j: the memories through the store, as remember() writes them, then the index
    t0 = time.perf_counter()
    for start in range(0, vectors, WRITE_BATCH):
        stop = min(start + WRITE_BATCH, vectors)
        batch = WriteBatch(
            memories=[
                Memory(
                    id=_memory_id(i),
                    namespace=NAMESPACE,
                    content=f"vector {i}",
                    kind=MemoryKind.EVENT,
                    embedding=data[i],
                )
                for i in range(start, stop)
            ]
        )
        store.write(NAMESPACE, batch)
        say(f"Neo4j: {stop:,} of {vectors:,} memories written")
    write_s = time.perf_counter() - t0

    import neo4j

    def run(cypher: str, *, read: bool = False, **params: Any) -> list[Any]:
        routing = neo4j.RoutingControl.READ if read else neo4j.RoutingControl.WRITE
        records, _, _ = driver.execute_query(cypher, params, routing_=routing, database_=database)
        return list(records)

    neo4j_ns: list[int] = []
    neo4j_found: list[np.ndarray] = []
    returned: list[int] = []
    try:
        t0 = time.perf_counter()
        run(CREATE_INDEX)
        run(AWAIT_INDEX, name=INDEX_NAME, seconds=24 * 3600)
        index_build_s = time.perf_counter() - t0
        indexed = int(run(INDEXED, read=True)[0]["count"])
        say(f"Neo4j vector index: built in {index_build_s:.2f} s")
        for n_done, q in enumerate(query_vectors):
            vector = q.astype(np.float64).tolist()
            t0n = time.perf_counter_ns()
            rows = run(
                QUERY_INDEX, read=True, name=INDEX_NAME, k=K, vector=vector, namespace=NAMESPACE
            )
            elapsed = time.perf_counter_ns() - t0n
            if n_done >= WARMUP:
                neo4j_ns.append(elapsed)
                neo4j_found.append(np.array([int(r["id"][1:]) for r in rows], np.int64))
                returned.append(len(rows))
    finally:
        run(DROP_INDEX)

    return {
        "vectors": vectors,
        "queries": queries,
        "dim": DIM,
        "k": K,
        "seed": seed,
        "faiss_threads": faiss.omp_get_max_threads(),
        "faiss_exact": {
            "build_s": round(exact_build_s, 3),
            "query_ms": ms_summary(exact_ns),
            "recall_at_k": 1.0,
        },
        "faiss_hnsw": {
            "build_s": round(hnsw_build_s, 3),
            "query_ms": ms_summary(hnsw_ns),
            "recall_at_k": round(_recall(hnsw_found, reference), 4),
            "params": {"m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search},
        },
        "neo4j_vector_index": {
            "build_s": round(index_build_s, 3),
            "store_write_s": round(write_s, 3),
            "query_ms": ms_summary(neo4j_ns),
            "recall_at_k": round(_recall(neo4j_found, reference), 4),
            "returned_mean": round(float(np.mean(returned)), 2),
            "indexed_memories": indexed,
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def add_vectors_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench vectors``."""
    parser.add_argument(
        "--vectors",
        type=parse_count,
        default=100_000,
        metavar="N",
        help="vectors (memories) to index (default 100k)",
    )
    parser.add_argument(
        "--queries", type=parse_count, default=200, metavar="Q", help="timed queries (default 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of vectors and queries (0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_vectors_command(args: argparse.Namespace, settings: Any) -> int:
    """Needs Neo4j (``NEO4J_URI`` and friends); writes namespace ``bench-vectors``."""
    if not settings.neo4j_uri:
        print(
            "hippograph: bench vectors: NEO4J_URI is not set; it compares FAISS with the "
            "vector index of the Neo4j server NEO4J_URI names",
            file=sys.stderr,
        )
        return 2
    import neo4j

    from hippograph.api.settings import open_store

    faiss.omp_set_num_threads(settings.faiss_threads)
    config = settings.graph_config()
    password = settings.neo4j_password
    auth = (
        (settings.neo4j_user, password.get_secret_value() if password else "")
        if settings.neo4j_user
        else None
    )
    store = open_store(settings)
    try:
        with neo4j.GraphDatabase.driver(settings.neo4j_uri, auth=auth) as driver:
            result = run_vectors(
                args.vectors,
                queries=args.queries,
                seed=args.seed,
                store=store,
                driver=driver,
                database=settings.neo4j_database,
                hnsw_m=config.hnsw_m,
                ef_construction=config.ef_construction,
                ef_search=config.ef_search,
                log=lambda line: print(line, file=sys.stderr, flush=True),
            )
    except ValueError as exc:
        print(f"hippograph: bench vectors: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['vectors']:,} unit vectors (dim {result['dim']}), {result['queries']} "
        f"queries, k={result['k']}; FAISS on {result['faiss_threads']} thread(s); "
        f"load average {result['load_average']}"
    )
    print(f"{'index':<28}{'build s':>10}{'p50 ms':>10}{'p99 ms':>10}{'recall@k':>10}")
    for key, label in (
        ("faiss_exact", "FAISS exact (IndexFlatIP)"),
        ("faiss_hnsw", "FAISS HNSW"),
        ("neo4j_vector_index", "Neo4j vector index (Bolt)"),
    ):
        r = result[key]
        print(
            f"{label:<28}{r['build_s']:>10.2f}{r['query_ms']['p50']:>10.3f}"
            f"{r['query_ms']['p99']:>10.3f}{r['recall_at_k']:>10.3f}"
        )
    written = result["neo4j_vector_index"]["store_write_s"]
    print(f"Neo4j: the memories were written through the store in {written:.1f} s")
    return 0
