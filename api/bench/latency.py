"""``hippograph bench latency``: recall latency on a synthetic namespace of N memories.

This module owns the latency benchmark and nothing else: a deterministic generator of a
synthetic namespace (clustered random unit vectors, ~10 associations per memory, topical
full-text content), written straight to the store in batches and turned into the derived
structures with :meth:`graph.MemoryGraph.rebuild`; then, on that one graph, it measures

* recall end to end (:meth:`~graph.MemoryGraph.recall_vector`: the query embedding is not
  timed), and where its time goes (index seed, full-text seed, vector reconstruct,
  activation, scoring, paths, fetch, learning), from a second pass in which the engine's
  calls are wrapped with timers (restored afterwards);
* the seed searches alone: FAISS (:class:`embeddings.VectorIndex`), FTS5 BM25, and an
  exact numpy brute force over every vector (which also gives the index's recall@k);
* spreading activation alone over the CSR arrays, and the same spread with the
  networkx reference implementation from the same seeds (they must agree);
* the time to reopen the data directory in a fresh process, as a restart would, and the
  store's **cold start**: a fresh process over an empty derived directory, which must
  rebuild the view and the vector indexes from the store, timed to its first recall
  (and the same with the derived files in place: warm reopen);
* build time per stage and memory use.

The namespace lives in the store ``--store`` names: ``sqlite`` (the file in the data
directory, the default), ``neo4j`` (the server ``NEO4J_URI`` points at, through the same
``GraphStore`` batches), or ``both``: SQLite first, then Neo4j, in one run, each report
beside the other.

:func:`run_latency` is the core and knows nothing of settings; :func:`add_latency_arguments`
and :func:`run_latency_command` are the thin CLI layer ``hippograph.api.cli`` wires up. A data
directory given with ``--data-dir-bench`` is kept, and reused by a later run with the same
``--memories`` and ``--seed`` (the build is then skipped and its recorded timings reported).

The measuring is :mod:`hippograph.api.bench.latency_measure`'s (with the probes of
:mod:`hippograph.api.bench.latency_probes`), the namespace
:mod:`hippograph.api.bench.synthetic`'s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import faiss
from rich.console import Console
from rich.table import Table

from hippograph.api.bench.common import (
    SQLITE,
    BenchStore,
    Reporter,
    add_store_argument,
    bench_stores,
    parse_count,
)
from hippograph.api.bench.latency_measure import BenchError, measure_latency
from hippograph.graph import GraphConfig

__all__ = [
    "BenchError",
    "add_latency_arguments",
    "run_latency",
    "run_latency_command",
]


def run_latency(
    memories: int,
    *,
    queries: int = 200,
    seed: int = 0,
    workdir: Path | None = None,
    config: GraphConfig | None = None,
    progress: bool = True,
    store: BenchStore = SQLITE,
) -> dict[str, Any]:
    """Build (or reuse) a synthetic namespace of ``memories`` memories and measure recall.

    Parameters
    ----------
    memories:
        Memories in the namespace (at least 50).
    queries:
        Timed queries per measurement (each loop first runs a few untimed ones).
    seed:
        Seed of the synthetic data and the queries.
    workdir:
        The data directory to build in, kept afterwards and reused by a later run with
        the same ``memories`` and ``seed``; a temporary directory (deleted) when None.
    config:
        Engine parameters; ``GraphConfig()`` when None.
    progress:
        Show progress bars on stderr.
    store:
        The store holding the namespace (SQLite in the data directory by default).

    Returns
    -------
    dict
        JSON-ready report; times in ms unless the key ends in ``_s``.

    Raises
    ------
    BenchError
        When the array and networkx activations disagree (its ``result`` has the report).
    """
    if isinstance(memories, bool) or not isinstance(memories, int) or memories < 50:
        raise ValueError(f"memories must be an integer >= 50, got {memories!r}")
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
        raise ValueError(f"queries must be a positive integer, got {queries!r}")
    cfg = config or GraphConfig()
    temporary = workdir is None
    data_dir = Path(tempfile.mkdtemp(prefix="hippograph-bench-")) if workdir is None else workdir
    try:
        with Reporter(progress) as reporter:
            return measure_latency(memories, queries, seed, data_dir, cfg, reporter, store)
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


# -- the command ---------------------------------------------------------------------------


def add_latency_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench latency``."""
    parser.add_argument(
        "--memories",
        type=parse_count,
        required=True,
        metavar="N",
        help="memories in the synthetic namespace (e.g. 100000, 100k, 1M; at least 50)",
    )
    parser.add_argument(
        "--queries", type=parse_count, default=200, metavar="Q", help="timed queries (default 200)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--data-dir-bench",
        type=Path,
        default=None,
        metavar="DIR",
        help="build the namespace here and keep it (reused by a later run with the same "
        "--memories and --seed); default: a temporary directory, deleted afterwards",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of data and queries (0)")
    add_store_argument(parser)


def run_latency_command(args: argparse.Namespace, settings: Any) -> int:
    """Run the benchmark from parsed arguments; engine parameters come from
    ``settings.graph_config()`` (``hippograph.api.settings.Settings``) when it has one."""
    get_config = getattr(settings, "graph_config", None)
    config = get_config() if callable(get_config) else GraphConfig()
    faiss.omp_set_num_threads(getattr(settings, "faiss_threads", 1))
    if args.memories < 50:
        print("hippograph: --memories: must be at least 50", file=sys.stderr)
        return 2
    try:
        stores = bench_stores(getattr(args, "store", "sqlite"), settings)
    except ValueError as exc:
        print(f"hippograph: {exc}", file=sys.stderr)
        return 2
    failure: BenchError | None = None
    results: dict[str, dict[str, Any]] = {}
    for store in stores:
        workdir = args.data_dir_bench
        if workdir is not None and len(stores) > 1:
            workdir = workdir / store.name
        try:
            results[store.name] = run_latency(
                args.memories,
                queries=args.queries,
                seed=args.seed,
                workdir=workdir,
                config=config,
                progress=True,
                store=store,
            )
        except BenchError as exc:
            failure, results[store.name] = exc, exc.result
        except ValueError as exc:
            print(f"hippograph: bench latency: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[stores[0].name], indent=2))
    else:
        for result in results.values():
            _print_table(result)
    if failure is not None:
        print(f"hippograph: bench latency: {failure}", file=sys.stderr)
        return 1
    return 0


def _print_table(r: dict[str, Any]) -> None:
    console = Console()
    targets, met = r["targets"], r["targets_met"]

    def mark(key: str) -> str:
        return "[green]yes[/]" if met[key] else "[red]NO[/]"

    table = Table(
        title=f"recall latency ({r.get('store', 'sqlite')}): {r['memories']:,} memories, "
        f"{r['nodes']:,} nodes, "
        f"{r['edges']:,} associations, {r['index_kind']} index, {r['queries']} queries"
    )
    for column, justify in (("measure", "left"), ("p50", "right"), ("p99", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    rec = r["recall_ms"]
    table.add_row(
        "recall (ms, no embedding)",
        f"{rec['p50']:.3f}",
        f"{rec['p99']:.3f}",
        f"{targets['recall_p50_ms']:g} / {targets['recall_p99_ms']:g}",
        f"{mark('recall_p50_ms')} / {mark('recall_p99_ms')}",
    )
    for key, label in (
        ("index_seed", "  index seed"),
        ("lexical_seed", "  lexical (BM25) seed"),
        ("reconstruct", "  vector reconstruct"),
        ("activation", "  activation"),
        ("scoring", "  scoring"),
        ("paths", "  paths"),
        ("fetch", "  fetch"),
        ("learn", "  learning"),
        ("learn_flush", "  learning: flush to store"),
        ("other", "  other"),
    ):
        part = r["recall_breakdown_ms"][key]
        table.add_row(label, f"{part['p50']:.3f}", f"{part['p99']:.3f}", "", "")
    act, ref = r["activation_ms"], r["networkx_activation_ms"]
    table.add_row("activation alone (ms)", f"{act['p50']:.3f}", f"{act['p99']:.3f}", "", "")
    table.add_row(
        "networkx activation (ms)",
        f"{ref['p50']:.3f}",
        f"{ref['p99']:.3f}",
        f">= {targets['activation_speedup']:g}x",
        f"{r['activation_speedup_p50']:g}x {mark('activation_speedup')}",
    )
    for key, label in (
        ("index_seed_ms", f"index seed alone (ms, k={r['seed_k']})"),
        ("index_seed_one_thread_ms", "  same, FAISS on 1 thread (ms)"),
        ("lexical_seed_ms", "in-memory BM25 seed alone (ms)"),
        ("fts_seed_ms", "store FTS5 seed alone, not used by recall (ms)"),
        ("brute_force_seed_ms", "brute-force seed (ms)"),
    ):
        table.add_row(label, f"{r[key]['p50']:.3f}", f"{r[key]['p99']:.3f}", "", "")
    table.add_row(
        "reopen data dir (s)",
        f"{r['load_s']:.2f}",
        "",
        f"<= {targets['load_s']:g}",
        mark("load_s"),
    )
    table.add_row(
        "cold start: no derived files, to first recall (s)",
        f"{r['cold_start_s']:.2f}",
        "",
        f"<= {targets['load_s']:g}",
        mark("cold_start_s"),
    )
    table.add_row("warm reopen, to first recall (s)", f"{r['warm_reopen_s']:.2f}", "", "", "")
    console.print(table)
    cold = r["cold_start_breakdown_s"]
    console.print(
        f"cold start (s): open store {cold['open_store']:g}, rebuild view and indexes "
        f"{cold['rebuild_namespace']:g}, first recall {cold['first_recall']:g}"
    )
    build = ", ".join(f"{k} {v:g}" for k, v in r["build_s"].items())
    console.print(f"build (s): {build}" + (" (reused data dir)" if r["reused_data_dir"] else ""))
    console.print(
        f"index recall@{r['seed_k']} vs brute force {r['index_recall_at_k']:.3f}; "
        f"activation agreement max |diff| {r['activation_agreement_max_abs_diff']:.2e}; "
        f"networkx graph built in {r['networkx_build_s']:g} s"
    )
    console.print(
        f"RSS {r['rss_mb']:,.0f} MB (peak {r['peak_rss_mb']:,.0f}, after load "
        f"{r['rss_after_load_mb']:,.0f}; a freshly loaded process "
        f"{r['loaded_process_rss_mb']:,.0f}); data dir {r['data_dir_mb']:,.0f} MB"
    )
