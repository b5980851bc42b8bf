"""``hippograph bench locomo``: retrieval quality on LoCoMo conversations.

Each conversation becomes its own namespace; every dialogue turn is a memory
("speaker: text [photo: caption]", its session's date as ``occurred_at``, the speaker
in metadata). Each question is then asked as of the last session's date and scored by
recall@k: the fraction of its evidence turns found in the top k, averaged over
questions, overall and per category (1 multi-hop, 2 temporal, 3 open-domain,
4 single-hop, 5 adversarial). Baselines run in the same process on the same memories:
``dense`` is the same model's FAISS top-k over whole turns (plain vector search),
``dense+passages`` ranks by recall's own similarity (whole, sentence and context
vectors) with no lexical match and no graph, ``bm25`` is BM25 alone (the
``bm25s`` library), ``ppr`` is a HippoRAG-style personalized PageRank over the same graph
from the same seeds.

Recall runs with learning off, so questions cannot leak into each other through
Hebbian updates or access counts.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.embeddings import TextEncoder
from hippograph.graph import GraphConfig, MemoryGraph, MemoryInput, RecallContext

__all__ = [
    "Conversation",
    "Question",
    "add_locomo_arguments",
    "load_locomo",
    "run_locomo",
    "run_locomo_command",
]

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
KS = (5, 10, 25)
_SESSION_KEY = re.compile(r"^session_(\d+)$")


@dataclass(slots=True)
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass(slots=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: list[MemoryInput] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    last_session_at: datetime | None = None


def _session_time(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023" as a UTC datetime."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turn_text(turn: dict[str, Any]) -> str:
    text = f"{turn['speaker']}: {turn['text']}"
    if turn.get("blip_caption"):
        text += f" [photo: {turn['blip_caption']}]"
    return text


def load_locomo(path: Path) -> list[Conversation]:
    """Parse a LoCoMo JSON file (a list of conversations)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    conversations: list[Conversation] = []
    for sample in data:
        conv = sample["conversation"]
        result = Conversation(
            sample_id=str(sample.get("sample_id", len(conversations))),
            speakers=(conv["speaker_a"], conv["speaker_b"]),
        )
        sessions = sorted(
            int(m.group(1)) for key in conv if (m := _SESSION_KEY.match(key)) and conv[key]
        )
        for number in sessions:
            start = _session_time(conv[f"session_{number}_date_time"])
            result.last_session_at = start
            for position, turn in enumerate(conv[f"session_{number}"]):
                result.turns.append(
                    MemoryInput(
                        content=turn_text(turn),
                        id=turn["dia_id"],
                        session_id=f"session_{number}",
                        # turns of a session keep their order a few seconds apart
                        occurred_at=start + timedelta(seconds=10 * position),
                        metadata={"speaker": turn["speaker"], "dia_id": turn["dia_id"]},
                    )
                )
        known = {t.id for t in result.turns}
        for qa in sample.get("qa", []):
            evidence = [
                e for item in qa.get("evidence", []) for e in re.split(r"[;\s]+", item) if e
            ]
            evidence = [e for e in dict.fromkeys(evidence) if e in known]
            if evidence:
                result.questions.append(
                    Question(
                        text=str(qa["question"]), category=int(qa["category"]), evidence=evidence
                    )
                )
        conversations.append(result)
    return conversations


Retriever = Callable[[MemoryGraph, str, Conversation, str, np.ndarray, int], list[str]]


def hippograph_retriever(
    graph: MemoryGraph, namespace: str, conv: Conversation, query: str, vector: np.ndarray, k: int
) -> list[str]:
    context = RecallContext(at=conv.last_session_at)
    found = graph.recall_vector(namespace, query, vector, k=k, context=context, learn=False)
    return [r.memory.id for r in found]


def dense_retriever(
    graph: MemoryGraph, namespace: str, conv: Conversation, query: str, vector: np.ndarray, k: int
) -> list[str]:
    seqs, _ = graph.namespace(namespace).index.search(vector, k)
    names = graph.store.node_ids(namespace, seqs.tolist())
    return [names[int(s)] for s in seqs.tolist() if int(s) in names]


def passage_dense_retriever(
    graph: MemoryGraph, namespace: str, conv: Conversation, query: str, vector: np.ndarray, k: int
) -> list[str]:
    return [memory_id for memory_id, _ in graph.nearest(namespace, vector, k)]


class BM25Retriever:
    """BM25 alone, from a well-kept library (``bm25s``), over the same turn texts:
    English stopwords and the Porter stemmer, one index per conversation."""

    def __init__(self) -> None:
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        self._indexes: dict[str, tuple[Any, list[str]]] = {}

    def _index(self, namespace: str, conv: Conversation) -> tuple[Any, list[str]]:
        import bm25s

        if namespace not in self._indexes:
            retriever = bm25s.BM25()
            texts = [t.content for t in conv.turns]
            tokens = bm25s.tokenize(
                texts, stopwords="en", stemmer=self._stemmer, show_progress=False
            )
            retriever.index(tokens, show_progress=False)
            self._indexes[namespace] = (retriever, [str(t.id) for t in conv.turns])
        return self._indexes[namespace]

    def __call__(
        self,
        graph: MemoryGraph,
        namespace: str,
        conv: Conversation,
        query: str,
        vector: np.ndarray,
        k: int,
    ) -> list[str]:
        import bm25s

        retriever, ids = self._index(namespace, conv)
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        docs, scores = retriever.retrieve(tokens, k=min(k, len(ids)), show_progress=False)
        return [ids[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


class PersonalizedPageRankRetriever:
    """HippoRAG-style ranking: personalized PageRank over the same association graph
    (memories and entities, associations in both directions, weighted), personalised
    on the same fused seeds hippograph spreads from; memories ranked by their PPR mass.

    ``damping`` is the probability of following an edge (HippoRAG uses 0.5).
    """

    def __init__(self, damping: float = 0.5, iterations: int = 30) -> None:
        self.damping = damping
        self.iterations = iterations
        self._walks: dict[str, Any] = {}

    def _walk(self, graph: MemoryGraph, namespace: str) -> Any:
        import scipy.sparse as sp

        if namespace not in self._walks:
            view = graph.namespace(namespace).view
            n = view.n_nodes
            parts = []
            for layer in view.layers:
                m = layer.to_scipy().tocoo()
                parts.append(sp.coo_array((m.data, (m.row, m.col)), shape=(n, n)))
            adjacency = sum(parts[1:], parts[0]).tocsr()
            out = np.asarray(adjacency.sum(axis=1)).ravel()
            inverse = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0)
            # column-stochastic transition: walk[j, i] = weight(i -> j) / out(i)
            self._walks[namespace] = (sp.diags_array(inverse) @ adjacency).T.tocsr()
        return self._walks[namespace]

    def __call__(
        self,
        graph: MemoryGraph,
        namespace: str,
        conv: Conversation,
        query: str,
        vector: np.ndarray,
        k: int,
    ) -> list[str]:
        walk = self._walk(graph, namespace)
        seeds, energy = graph.seeds(namespace, query, vector)
        if len(seeds) == 0:
            return []
        view = graph.namespace(namespace).view
        restart = np.zeros(view.n_nodes)
        restart[seeds] = energy / energy.sum()
        rank = restart.copy()
        for _ in range(self.iterations):
            rank = (1.0 - self.damping) * restart + self.damping * (walk @ rank)
        rank[~(view.is_memory & view.alive)] = -1.0
        top = np.argsort(-rank)[:k]
        top = top[rank[top] > 0]
        names = graph.store.node_ids(namespace, view.seq[top].tolist())
        return [names[int(s)] for s in view.seq[top].tolist() if int(s) in names]


def default_methods() -> dict[str, Retriever]:
    """hippograph and, in the same run, its baselines."""
    return {
        "hippograph": hippograph_retriever,
        "dense": dense_retriever,
        "dense+passages": passage_dense_retriever,
        "bm25": BM25Retriever(),
        "ppr": PersonalizedPageRankRetriever(),
    }


def _recall_at(found: Sequence[str], evidence: Sequence[str], k: int) -> float:
    top = set(found[:k])
    return sum(e in top for e in evidence) / len(evidence)


def _table(per_question: list[tuple[int, dict[int, float]]]) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for k in KS:
        row = {"overall": 100 * statistics.fmean(r[k] for _, r in per_question)}
        for category in sorted({c for c, _ in per_question}):
            scores = [r[k] for c, r in per_question if c == category]
            row[str(category)] = 100 * statistics.fmean(scores)
        table[f"recall@{k}"] = {key: round(value, 2) for key, value in row.items()}
    return table


def run_locomo(
    data: Path,
    *,
    encoder: TextEncoder,
    config: GraphConfig | None = None,
    workdir: Path | None = None,
    limit_conversations: int | None = None,
    methods: dict[str, Retriever] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Ingest every conversation, ask every question with each method, score recall@k.

    Returns ``{method: {"recall@k": {"overall": x, "1": ...}, "median_ms": m}, ...,
    "questions": n, "memories": m}``.
    """
    methods = methods or default_methods()
    conversations = load_locomo(data)[:limit_conversations]
    results: dict[str, list[tuple[int, dict[int, float]]]] = {m: [] for m in methods}
    latency: dict[str, list[float]] = {m: [] for m in methods}
    depth = max(KS)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        graph = MemoryGraph(Path(tmp), encoder=encoder, config=config)
        try:
            ingest_s = 0.0
            for conv in conversations:
                namespace = f"locomo-{conv.sample_id}"
                started = time.perf_counter()
                by_session: dict[str | None, list[MemoryInput]] = {}
                for turn in conv.turns:
                    by_session.setdefault(turn.session_id, []).append(turn)
                for turns in by_session.values():
                    graph.remember_many(namespace, turns)
                ingest_s += time.perf_counter() - started
                if progress:
                    progress(
                        f"{conv.sample_id}: {len(conv.turns)} turns, "
                        f"{len(conv.questions)} questions"
                    )
                vectors = encoder.encode([q.text for q in conv.questions])
                for question, vector in zip(conv.questions, vectors, strict=True):
                    for name, retrieve in methods.items():
                        started = time.perf_counter()
                        found = retrieve(graph, namespace, conv, question.text, vector, depth)
                        latency[name].append(1000 * (time.perf_counter() - started))
                        results[name].append(
                            (
                                question.category,
                                {k: _recall_at(found, question.evidence, k) for k in KS},
                            )
                        )
        finally:
            graph.close()
    report: dict[str, Any] = {}
    for name in methods:
        report[name] = _table(results[name])
        report[name]["median_ms"] = round(statistics.median(latency[name]), 3)
    report["questions"] = len(results[next(iter(methods))])
    report["memories"] = sum(len(c.turns) for c in conversations)
    report["conversations"] = [c.sample_id for c in conversations]
    report["ingest_s"] = round(ingest_s, 2)
    return report


def add_locomo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="LoCoMo JSON file")
    parser.add_argument("--k", type=int, default=10, help="the k shown in the summary line")
    parser.add_argument("--conversations", type=int, default=None, help="only the first N")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_locomo_command(args: argparse.Namespace, settings: Any) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from hippograph.api.settings import make_encoder

    if not args.data.is_file():
        print(f"hippograph: --data: no such file: {args.data}", file=sys.stderr)
        return 2
    if args.k not in KS:
        print(f"hippograph: --k: must be one of {', '.join(map(str, KS))}", file=sys.stderr)
        return 2
    err = Console(stderr=True)
    report = run_locomo(
        args.data,
        encoder=make_encoder(settings),
        config=settings.graph_config(),
        limit_conversations=args.conversations,
        progress=lambda line: err.print(line),
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    out = Console()
    for k in KS:
        table = Table(title=f"LoCoMo recall@{k} ({report['questions']} questions)")
        table.add_column("method")
        columns = ["overall", *(str(c) for c in CATEGORIES)]
        for column in columns:
            label = column if column == "overall" else f"{column} {CATEGORIES[int(column)]}"
            table.add_column(label, justify="right")
        table.add_column("median ms", justify="right")
        for name, rows in report.items():
            if isinstance(rows, dict) and f"recall@{k}" in rows:
                row = rows[f"recall@{k}"]
                table.add_row(
                    name,
                    *(f"{row.get(c, float('nan')):.1f}" for c in columns),
                    f"{rows['median_ms']:.2f}",
                )
        out.print(table)
    return 0
