"""``hippograph bench encode``: the model's cost for what the service asks of it at once.

Under load the coalescing encoder (:mod:`hippograph.api.encoding`) hands the model one call holding
what concurrent requests asked: recall queries (a few words) and remembered notes with
their session context (longer). In one forward pass every text is padded to the longest;
:meth:`embeddings.Encoder.encode` splits such a call by token length first
(:func:`hippograph.embeddings.encoder.length_groups`). This benchmark times mixed calls both ways in
the same process, one pass (the baseline) and grouped, with the real model, and reports
the largest difference between the two results' vectors.

The texts are ``hippograph bench load``'s: queries of its synthetic namespace, and notes
of 4-8 of its words with the previous note as context.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any

import numpy as np

from hippograph.api.bench.load import synthetic_texts
from hippograph.embeddings import Encoder
from hippograph.embeddings.encoder import PASS_OVERHEAD_TOKENS, length_groups

__all__ = ["add_encode_arguments", "run_encode", "run_encode_command"]

# (recall queries, remembered notes with their context) in one coalesced call
MIXES = ((8, 0), (0, 1), (8, 1), (16, 2), (40, 5))
WORDS_PER_NOTE = (4, 8)


def _calls(
    mix: tuple[int, int], queries: list[str], words: list[str], rng: random.Random
) -> list[str]:
    """Texts of one coalesced call: ``mix`` queries and notes, each note with its context."""
    n_queries, n_notes = mix
    texts = rng.sample(queries, n_queries)
    for _ in range(n_notes):
        previous, note = (
            " ".join(rng.choices(words, k=rng.randint(*WORDS_PER_NOTE))) for _ in range(2)
        )
        texts += [note, f"{previous}\n{note}"]
    return texts


def run_encode(*, repeats: int = 20, seed: int = 0) -> dict[str, Any]:
    """Time each mix ``repeats`` times one pass and grouped, alternating; a JSON-ready
    report (medians in ms)."""
    encoder = Encoder()
    queries, words = synthetic_texts(2_000, seed)
    rng = random.Random(seed)
    encoder.encode(["warm up the model"])
    rows = []
    for mix in MIXES:
        timings: dict[bool, list[float]] = {False: [], True: []}
        largest = 0.0
        texts: list[str] = []
        for _ in range(repeats):
            texts = _calls(mix, queries, words, rng)
            results = {}
            for grouped in (False, True):
                started = time.perf_counter()
                results[grouped] = encoder.encode(texts, grouped=grouped)
                timings[grouped].append(1000.0 * (time.perf_counter() - started))
            largest = max(largest, float(np.abs(results[True] - results[False]).max()))
        passes = len(length_groups(encoder.token_counts(texts), PASS_OVERHEAD_TOKENS))  # last call
        one_pass = statistics.median(timings[False])
        grouped_ms = statistics.median(timings[True])
        rows.append(
            {
                "queries": mix[0],
                "notes_with_context": mix[1],
                "texts": mix[0] + 2 * mix[1],
                "passes": passes,
                "one_pass_ms": round(one_pass, 2),
                "grouped_ms": round(grouped_ms, 2),
                "speedup": round(one_pass / grouped_ms, 2),
                "max_abs_diff": largest,
            }
        )
    return {
        "model": encoder.name,
        "backend": encoder.backend,
        "repeats": repeats,
        "overhead_tokens": PASS_OVERHEAD_TOKENS,
        "mixes": rows,
    }


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``hippograph bench encode``."""
    parser.add_argument(
        "--repeats", type=int, default=20, metavar="N", help="calls of each mix, each way (20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the texts (0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_encode_command(args: argparse.Namespace, settings: Any) -> int:
    """Run the benchmark: 0, or 2 for bad arguments. ``settings`` is not used."""
    if args.repeats < 1:
        print("hippograph: --repeats: must be at least 1", file=sys.stderr)
        return 2
    report = run_encode(repeats=args.repeats, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['model']} ({report['backend']}), median of {report['repeats']} calls each way")
    print("queries  notes+context  passes   one pass    grouped  speedup  max |diff|")
    for row in report["mixes"]:
        print(
            f"{row['queries']:>7}  {row['notes_with_context']:>13}  {row['passes']:>6}  "
            f"{row['one_pass_ms']:>6.1f} ms  {row['grouped_ms']:>6.1f} ms  "
            f"{row['speedup']:>6.2f}x  {row['max_abs_diff']:.1e}"
        )
    return 0
