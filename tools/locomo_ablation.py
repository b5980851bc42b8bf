"""The ablation table of docs/retrieval.md: ``hippograph bench locomo``'s hippograph
method with one part of the default method changed at a time, on the same file, in one
process. The conversations are ingested once with the default configuration; each
variant changes recall only (removing an association type is done by zeroing its
spreading gain, which is the same as not building it).

    .venv/bin/python tools/locomo_ablation.py --data locomo-dev.json [--only NAME ...]

Prints a markdown table: recall@10 overall and per category, and the median recall
latency. Ingest takes about two minutes on a 2-core machine, each variant ~20 s.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from hippograph.api.bench.locomo import (
    CATEGORIES,
    Conversation,
    Retriever,
    dense_retriever,
    hippograph_retriever,
    run_locomo,
)
from hippograph.graph import GraphConfig, MemoryGraph
from hippograph.graph.activation import ActivationParams
from hippograph.graph.scoring import ScoreWeights

BASE = GraphConfig()
ACT = ActivationParams()


def gains(**changes: float) -> ActivationParams:
    multipliers = list(ACT.type_multipliers)
    for name, value in changes.items():
        multipliers[["similar", "follows", "mentions"].index(name)] = value
    return replace(ACT, type_multipliers=tuple(multipliers))


VARIANTS: dict[str, GraphConfig] = {
    "default": BASE,
    "no context passages": replace(BASE, context_passages=False),
    "no passages at all": replace(BASE, passages=False),
    "context weight 0.5": replace(BASE, context_weight=0.5),
    "no sentence passages": replace(BASE, passage_weight=0.0),
    "passage weight 0.5": replace(BASE, passage_weight=0.5),
    "no spreading (hops 0)": replace(BASE, activation=replace(ACT, hops=0)),
    "hops 1": replace(BASE, activation=replace(ACT, hops=1)),
    "hops 3": replace(BASE, activation=replace(ACT, hops=3)),
    "no BM25 in seeds": replace(BASE, lexical_weight=0.0),
    "no FOLLOWS spreading": replace(BASE, activation=gains(follows=0.0)),
    "no MENTIONS spreading": replace(BASE, activation=gains(mentions=0.0)),
    "no SIMILAR_TO spreading": replace(BASE, activation=gains(similar=0.0)),
    "SIMILAR_TO gain 1": replace(BASE, activation=gains(similar=1.0)),
    "no fan-in normalisation": replace(BASE, activation=replace(ACT, fanin_exponent=0.0)),
    "no recency": replace(BASE, weights=replace(ScoreWeights(), recency=0.0)),
    "no informativeness": replace(BASE, weights=replace(ScoreWeights(), informativeness=0.0)),
    "similarity weight 0.5": replace(BASE, weights=replace(ScoreWeights(), similarity=0.5)),
    "dense seeds 50": replace(BASE, dense_seeds=50),
}


def variant(config: GraphConfig) -> Retriever:
    """hippograph's retriever answering with ``config`` (recall-time fields only)."""

    def retrieve(
        graph: MemoryGraph,
        namespace: str,
        conv: Conversation,
        query: str,
        vector: np.ndarray,
        k: int,
    ) -> list[str]:
        saved = graph.config
        graph.config = config
        try:
            return hippograph_retriever(graph, namespace, conv, query, vector, k)
        finally:
            graph.config = saved

    return retrieve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    args = parser.parse_args()
    import faiss

    from hippograph.embeddings import Encoder

    faiss.omp_set_num_threads(1)
    methods: dict[str, Retriever] = {
        name: variant(config)
        for name, config in VARIANTS.items()
        if not args.only or name in args.only
    }
    methods["dense baseline (whole turns)"] = dense_retriever
    report = run_locomo(args.data, encoder=Encoder(), config=BASE, methods=methods)
    cats = [str(c) for c in CATEGORIES]
    print(f"{report['questions']} questions, {report['memories']} turns")
    print("| variant | overall | " + " | ".join(CATEGORIES.values()) + " | median ms |")
    print("|---" * (len(cats) + 3) + "|")
    for name in methods:
        row = report[name]["recall@10"]
        print(
            f"| {name} | {row['overall']:.1f} | "
            + " | ".join(f"{row.get(c, float('nan')):.1f}" for c in cats)
            + f" | {report[name]['median_ms']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
