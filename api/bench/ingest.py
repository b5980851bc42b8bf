"""``hippograph bench ingest``: batched remembers with the real model, per store.

Agents' notes (short sentences in sessions, as ``hippograph.api.bench.synthetic``'s vocabulary makes
them) go through :meth:`graph.MemoryGraph.remember_many` in batches, as an import or a
busy agent would send them: each batch is embedded (the memories and their session
context passages) by the encoder, associated (similar memories, the session's previous
one, entities) and written in one transaction. Reported per store, in one process: the
memories per second end to end, and as the baseline the encoder alone on the same texts
(the model's share of the time, whatever the store).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.api.bench.common import BenchStore, add_store_argument, bench_stores, parse_count
from hippograph.embeddings import TextEncoder
from hippograph.graph import GraphConfig, MemoryGraph
from hippograph.graph.memory import MemoryInput

__all__ = ["add_ingest_arguments", "run_ingest", "run_ingest_command"]

NAMESPACE = "bench-ingest"
SESSION = 20  # notes per session
WORDS = (8, 16)  # words per note (inclusive)
WARMUP = 32  # notes embedded before timing, so the model is loaded and warm


def notes(count: int, seed: int = 0) -> list[MemoryInput]:
    """``count`` notes: a few pseudo-words each, ``SESSION`` to a session."""
    rng = np.random.default_rng([seed, 11])
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    vocabulary = [
        "".join(rng.choice(syllables, size=int(rng.integers(2, 4)))) for _ in range(2_000)
    ]
    out: list[MemoryInput] = []
    for i in range(count):
        words = rng.choice(vocabulary, size=int(rng.integers(WORDS[0], WORDS[1] + 1)))
        out.append(
            MemoryInput(
                content=" ".join(words).capitalize() + ".",
                id=f"n{i:07d}",
                session_id=f"s{i // SESSION:06d}",
            )
        )
    return out


def run_ingest(
    memories: int,
    *,
    batch: int = 100,
    encoder: TextEncoder,
    stores: list[BenchStore],
    config: GraphConfig | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Remember ``memories`` notes in batches of ``batch`` into each store (a fresh data
    directory each, namespace ``bench-ingest``); the report (see module doc)."""
    if memories < 1 or batch < 1:
        raise ValueError(f"memories and batch must be positive, got {memories}, {batch}")
    items = notes(memories, seed)
    encoder.encode([n.content for n in notes(WARMUP, seed + 1)])
    t0 = time.perf_counter()
    for start in range(0, memories, batch):
        encoder.encode([n.content for n in items[start : start + batch]])
    encode_s = time.perf_counter() - t0
    report: dict[str, Any] = {
        "memories": memories,
        "batch": batch,
        "encoder": encoder.name,
        "encode_only_per_s": round(memories / encode_s, 1),
        "stores": {},
    }
    for store in stores:
        base = Path(tempfile.mkdtemp(prefix=f"hippograph-bench-ingest-{store.name}-"))
        try:
            graph = MemoryGraph(base, encoder=encoder, config=config, store=store.open(base))
            try:
                if graph.store.generation(NAMESPACE):
                    raise ValueError(
                        f"the {store.name} store already holds namespace {NAMESPACE!r}: "
                        "give an empty database"
                    )
                took: list[float] = []
                t0 = time.perf_counter()
                for start in range(0, memories, batch):
                    t1 = time.perf_counter()
                    graph.remember_many(NAMESPACE, items[start : start + batch])
                    took.append(time.perf_counter() - t1)
                total_s = time.perf_counter() - t0
                stored = sum(graph.stats(NAMESPACE)["tiers"].values())
            finally:
                graph.close()
        finally:
            shutil.rmtree(base, ignore_errors=True)
        per_batch = np.asarray(took) * 1e3
        report["stores"][store.name] = {
            "seconds": round(total_s, 2),
            "per_s": round(memories / total_s, 1),
            "stored": int(stored),
            "batch_ms": {
                "p50": round(float(np.percentile(per_batch, 50)), 1),
                "p99": round(float(np.percentile(per_batch, 99)), 1),
            },
        }
    return report


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench ingest``."""
    parser.add_argument(
        "--memories", type=parse_count, default=5_000, metavar="N", help="notes (default 5000)"
    )
    parser.add_argument(
        "--batch", type=int, default=100, metavar="B", help="notes per remember_many (100)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the notes (0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_store_argument(parser)


def run_ingest_command(args: argparse.Namespace, settings: Any) -> int:
    from hippograph.api.settings import make_encoder

    try:
        stores = bench_stores(args.store, settings)
    except ValueError as exc:
        print(f"hippograph: {exc}", file=sys.stderr)
        return 2
    if args.batch > settings.max_batch:
        print(f"hippograph: --batch: at most {settings.max_batch}", file=sys.stderr)
        return 2
    result = run_ingest(
        args.memories,
        batch=args.batch,
        encoder=make_encoder(settings),
        stores=stores,
        config=settings.graph_config(),
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['memories']:,} notes in batches of {result['batch']} ({result['encoder']}); "
        f"the encoder alone: {result['encode_only_per_s']:,.1f} notes/s"
    )
    for name, figures in result["stores"].items():
        print(
            f"  {name:<7} {figures['per_s']:>8,.1f} memories/s  ({figures['seconds']:g} s; "
            f"batch p50 {figures['batch_ms']['p50']:g} ms, p99 {figures['batch_ms']['p99']:g} ms)"
        )
    return 0
