"""``hippograph bench supersession``: how often the supersession rule fires on real chat.

:func:`hippograph.graph.supersession.supersedes` must almost never call a memory
superseded when it is not, because a superseded memory is hidden. Chat turns are the
hard case: people restate, repeat and revisit without updating anything. This bench
takes the LoCoMo dev conversations (``../shared/data/locomo/locomo-dev.json`` beside the
repository, read by :func:`hippograph.api.bench.locomo.load_locomo`), embeds every turn
with the real encoder, and forms the candidate pairs the write path would: within one
conversation, an earlier turn and a later one that share an extracted entity and whose
vectors have cosine >= ``--min-cosine``. It samples ``--pairs`` of them (seeded), runs
the rule on each, and prints every flagged pair, so a person can judge them, with the
flagged rate. The hand-written fixture's precision and recall are printed too.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.api.bench.locomo import load_locomo
from hippograph.embeddings import Encoder, TextEncoder
from hippograph.graph.entities import extract_entities
from hippograph.graph.supersession import supersedes

__all__ = [
    "add_supersession_arguments",
    "candidate_pairs",
    "fixture_scores",
    "run_supersession",
    "run_supersession_command",
]

REPO = Path(__file__).resolve().parents[2]
LOCOMO_DEV = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
FIXTURE = REPO / "tests" / "graph" / "fixtures" / "updates.jsonl"


def candidate_pairs(
    texts: list[str], vectors: np.ndarray, *, min_cosine: float
) -> list[tuple[int, int, float]]:
    """``(earlier, later, cosine)`` for the turns of one conversation that share an
    extracted entity and whose unit vectors have cosine >= ``min_cosine``."""
    keys = [{e.key for e in extract_entities(text)} for text in texts]
    similar = np.triu(vectors @ vectors.T, k=1)
    pairs = []
    for i, j in zip(*np.nonzero(similar >= min_cosine), strict=True):
        if keys[i] & keys[j]:
            pairs.append((int(i), int(j), float(similar[i, j])))
    return pairs


def fixture_scores(path: Path) -> dict[str, float]:
    """Precision and recall of the rule on a fixture of labelled pairs (JSON lines of
    ``old``, ``new``, ``old_kind``, ``new_kind``, ``supersedes``)."""
    true_found = false_found = missed = 0
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in lines:
        pair = json.loads(line)
        found = supersedes(
            pair["old"], pair["new"], old_kind=pair["old_kind"], new_kind=pair["new_kind"]
        )
        if found is not None:
            true_found += bool(pair["supersedes"])
            false_found += not pair["supersedes"]
        elif pair["supersedes"]:
            missed += 1
    return {
        "precision": round(true_found / max(true_found + false_found, 1), 3),
        "recall": round(true_found / max(true_found + missed, 1), 3),
        "pairs": len(lines),
    }


def run_supersession(
    data: Path,
    *,
    encoder: TextEncoder,
    pairs: int = 1000,
    min_cosine: float = 0.6,
    kind: str = "event",
    seed: int = 0,
) -> dict[str, Any]:
    """Candidates from every conversation in ``data``, a seeded sample of ``pairs`` of
    them, and the rule's verdict on each (both memories of ``kind``)."""
    candidates: list[tuple[str, str, float]] = []
    turns = 0
    for conversation in load_locomo(data):
        texts = [turn.content for turn in conversation.turns]
        turns += len(texts)
        vectors = np.asarray(encoder.encode(texts), dtype=np.float32)
        found = candidate_pairs(texts, vectors, min_cosine=min_cosine)
        candidates += [(texts[i], texts[j], cosine) for i, j, cosine in found]
    sample = random.Random(seed).sample(candidates, min(pairs, len(candidates)))
    flagged = []
    started = time.perf_counter()
    for old, new, cosine in sample:
        result = supersedes(old, new, old_kind=kind, new_kind=kind)
        if result is not None:
            flagged.append(
                {"old": old, "new": new, "cosine": round(cosine, 3), "why": result.explain()}
            )
    elapsed = time.perf_counter() - started
    return {
        "turns": turns,
        "candidates": len(candidates),
        "sampled": len(sample),
        "flagged": len(flagged),
        "flagged_rate": round(len(flagged) / max(len(sample), 1), 4),
        "us_per_pair": round(1e6 * elapsed / max(len(sample), 1), 1),
        "flagged_pairs": flagged,
    }


def add_supersession_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", type=Path, default=LOCOMO_DEV, help=f"LoCoMo JSON file ({LOCOMO_DEV})"
    )
    parser.add_argument("--pairs", type=int, default=1000, help="candidate pairs to sample")
    parser.add_argument(
        "--min-cosine", type=float, default=0.6, help="a candidate's least cosine (0.6)"
    )
    parser.add_argument(
        "--kind",
        choices=("event", "fact", "skill", "concept"),
        default="event",
        help="the kind both memories of a pair are given (event: an update cue is needed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_supersession_command(args: argparse.Namespace, settings: Any = None) -> int:
    """Run the bench; a missing LoCoMo file is a skip (exit 0) with a message saying why."""
    if FIXTURE.is_file():
        scores = fixture_scores(FIXTURE)
        print(
            f"fixture {FIXTURE.name}: {scores['pairs']:.0f} pairs, precision "
            f"{scores['precision']:.3f}, recall {scores['recall']:.3f}"
        )
    if not args.data.is_file():
        print(
            f"bench supersession: skipped, no LoCoMo file at {args.data} (give --data)",
            file=sys.stderr,
        )
        return 0
    if settings is not None:
        from hippograph.api.settings import make_encoder

        encoder = make_encoder(settings)
    else:
        encoder = Encoder()
    report = run_supersession(
        args.data,
        encoder=encoder,
        pairs=args.pairs,
        min_cosine=args.min_cosine,
        kind=args.kind,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"LoCoMo {args.data.name}: {report['turns']} turns, {report['candidates']} candidate "
        f"pairs (shared entity, cosine >= {args.min_cosine}); sampled {report['sampled']}, "
        f"flagged {report['flagged']} ({100 * report['flagged_rate']:.2f}%) as kind "
        f"{args.kind!r}, {report['us_per_pair']} us per pair"
    )
    for number, pair in enumerate(report["flagged_pairs"], start=1):
        print(f"\n{number}. {pair['why']} (cosine {pair['cosine']})")
        print(f"   old: {pair['old']}")
        print(f"   new: {pair['new']}")
    return 0
