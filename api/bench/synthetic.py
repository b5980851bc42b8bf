"""The synthetic namespace the benchmarks share: a deterministic plan of clusters,
sessions, words and entities (:class:`Synthetic`), and its memories and associations
written batch by batch as :class:`~hippograph.graph.store.WriteBatch` es.

Clustered random unit vectors (members of a topic cluster are its centre plus noise),
~10 associations per memory (FOLLOWS within a session, SIMILAR_TO within a cluster,
MENTIONS of entities with Zipf popularity) and topical full-text content: what
``hippograph bench latency`` measures recall on, and what ``bench load``, ``serve``,
``lifecycle``, ``vectors`` and ``encode`` build their data and texts from.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np

from hippograph.graph import Association, AssociationType, Memory, MemoryKind, Tier
from hippograph.graph.model import ENTITY_PREFIX
from hippograph.graph.store import WriteBatch

__all__ = ["DIM", "GENERATOR_VERSION", "NAMESPACE", "SPREAD", "Synthetic", "unit", "vocabulary"]

DIM = 384  # the production model's dimension (all-MiniLM-L6-v2)
NAMESPACE = "bench"
GENERATOR_VERSION = 2  # bump when the synthetic data changes: old data dirs are not reused
MANIFEST = "bench.json"
WARMUP = 5  # untimed queries before each timed loop
AGREEMENT_TOL = 1e-9  # max |array - networkx| activation allowed

# The synthetic namespace.
CLUSTER_SIZE = 100  # memories per topic cluster, on average
SPREAD = 0.75  # noise norm around a unit cluster centre: members' cosine ~ 1 / (1 + 0.75^2)
VOCABULARY = 5_000  # synthetic words; background words follow Zipf's law over them
COMMON_WORDS = 200  # the most frequent words are never topic words
TOPIC_WORDS = 8  # words of each cluster's topic
TOPICAL_SHARE = 0.5  # share of a memory's words drawn from its cluster's topic
WORDS = (8, 12)  # words per memory (inclusive)
QUERY_WORDS = 3  # topic words in a query's text
SESSION = (10, 30)  # memories per session (inclusive): ~20 consecutive memories
SESSION_CLUSTERS = 2  # topics a session moves between
SIMILAR = 5  # SIMILAR_TO edges to earlier memories of the same cluster
MENTIONS = (2, 3)  # MENTIONS edges per memory (inclusive)
# passages, as remember() makes them (graph.text.passages): a third of the memories are
# long enough for sentence vectors, and every memory that follows another in its session
# has a context vector (the two read together)
PASSAGE_SHARE = 1 / 3
PASSAGES_EACH = 3
PASSAGE_NOISE = 0.5
ENTITY_SHARE = 20  # one entity per this many memories
LOCAL_ENTITIES = 5  # entities owned by each cluster
GLOBAL_MENTION_SHARE = 0.5  # share of mentions drawn from the global (Zipf) popularity
ZIPF_OFFSET = 10.0  # Zipf-Mandelbrot offset of entity popularity: p(rank) ~ 1 / (rank + 10)
DAYS = 180  # occurred_at spans this many days, ending at build time
WORKING_DAYS = 7  # memories younger than this are in the working tier, older are episodic
FOLLOWS_WEIGHT = (0.7, 0.9)  # weights are jittered so no two activations tie by accident
MENTION_WEIGHT = (0.5, 0.7)


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return out


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """Pronounceable three-syllable pseudo-words: no stopwords, no stemming collisions."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    s = len(syllables)
    picks = rng.choice(s**3, size=size, replace=False)
    return [
        syllables[i // (s * s)] + syllables[(i // s) % s] + syllables[i % s] for i in picks.tolist()
    ]


class Synthetic:
    """Deterministic plan of the namespace: clusters, sessions, words, entities.

    Everything but the per-batch noise is drawn up front, so queries can be made again
    (for a reused data directory) without generating the memories.
    """

    def __init__(self, memories: int, seed: int, dim: int) -> None:
        n = memories
        rng = np.random.default_rng([seed, 0])
        self.n, self.seed, self.dim = n, seed, dim
        self.n_clusters = max(4, n // CLUSTER_SIZE)
        self.centres = unit(rng.standard_normal((self.n_clusters, dim), dtype=np.float32))
        self.vocab = vocabulary(rng, VOCABULARY)
        word_p = 1.0 / np.arange(1, VOCABULARY + 1)
        self.word_cdf = np.cumsum(word_p / word_p.sum())
        self.topics = rng.integers(COMMON_WORDS, VOCABULARY, size=(self.n_clusters, TOPIC_WORDS))
        lengths = rng.integers(SESSION[0], SESSION[1] + 1, size=n // SESSION[0] + 1)
        self.session_of = np.repeat(np.arange(len(lengths)), lengths)[:n]
        topics_of_session = rng.integers(0, self.n_clusters, size=(len(lengths), SESSION_CLUSTERS))
        pick = rng.integers(0, SESSION_CLUSTERS, size=n)
        self.cluster_of = topics_of_session[self.session_of, pick]
        self.n_entities = max(16, n // ENTITY_SHARE)
        entity_p = 1.0 / (np.arange(self.n_entities) + ZIPF_OFFSET)
        self.entity_cdf = np.cumsum(entity_p / entity_p.sum())
        self.importance = rng.uniform(0.2, 0.8, size=n)
        self.members: list[list[int]] = [[] for _ in range(self.n_clusters)]
        self.sampler = random.Random(seed)

    @staticmethod
    def memory_id(i: int) -> str:
        return f"m{i:07d}"

    @staticmethod
    def entity_key(e: int) -> str:
        return f"e{e:06d}"

    def batch(self, start: int, stop: int, vectors: np.ndarray, now: float) -> WriteBatch:
        """Memories ``start..stop`` with their associations; fills ``vectors[start:stop]``.

        Batches must be made in order: SIMILAR_TO picks among earlier memories.
        """
        rng = np.random.default_rng([self.seed, 1, start])
        m = stop - start
        clusters = self.cluster_of[start:stop]
        noise = unit(rng.standard_normal((m, self.dim), dtype=np.float32))
        vectors[start:stop] = unit(self.centres[clusters] + SPREAD * noise)
        split = rng.random(m) < PASSAGE_SHARE
        passage_noise = unit(rng.standard_normal((m, PASSAGES_EACH, self.dim), dtype=np.float32))
        sentence_vectors = unit(vectors[start:stop, None, :] + PASSAGE_NOISE * passage_noise)
        # content: topical words of the cluster mixed with Zipf-distributed background
        lengths = rng.integers(WORDS[0], WORDS[1] + 1, size=m)
        total = int(lengths.sum())
        owner = np.repeat(clusters, lengths)
        topical = self.topics[owner, rng.integers(0, TOPIC_WORDS, size=total)]
        background = np.searchsorted(self.word_cdf, rng.random(total))
        words = np.where(rng.random(total) < TOPICAL_SHARE, topical, background).tolist()
        ends = np.cumsum(lengths).tolist()
        # entities: half by global popularity (Zipf-Mandelbrot), half the cluster's own
        n_mentions = rng.integers(MENTIONS[0], MENTIONS[1] + 1, size=m)
        mention_total = int(n_mentions.sum())
        popular = np.minimum(
            np.searchsorted(self.entity_cdf, rng.random(mention_total)), self.n_entities - 1
        )
        local = (
            np.repeat(clusters, n_mentions) * LOCAL_ENTITIES
            + rng.integers(0, LOCAL_ENTITIES, size=mention_total)
        ) % self.n_entities
        entities = np.where(rng.random(mention_total) < GLOBAL_MENTION_SHARE, popular, local)
        mention_w = rng.uniform(*MENTION_WEIGHT, size=mention_total).tolist()
        mention_ends = np.cumsum(n_mentions).tolist()
        follows_w = rng.uniform(*FOLLOWS_WEIGHT, size=m).tolist()
        # SIMILAR_TO: earlier memories of the same cluster, weighted by cosine
        similar: list[list[int]] = []
        for i, c in zip(range(start, stop), clusters.tolist(), strict=True):
            earlier = self.members[c]
            similar.append(
                list(earlier) if len(earlier) <= SIMILAR else self.sampler.sample(earlier, SIMILAR)
            )
            earlier.append(i)
        pairs_a = np.repeat(np.arange(start, stop), [len(s) for s in similar])
        pairs_b = np.array([j for s in similar for j in s], dtype=np.int64)
        cosines = np.einsum("ij,ij->i", vectors[pairs_a], vectors[pairs_b]) if len(pairs_b) else []
        similar_w = np.clip(np.asarray(cosines, np.float64), 0.0, 1.0).tolist()

        batch = WriteBatch()
        span = DAYS * 86_400.0
        working_after = now - WORKING_DAYS * 86_400.0
        word_start, mention_start, pair = 0, 0, 0
        vocab, memory_id = self.vocab, self.memory_id
        follows, similar_to, mentions = (
            AssociationType.FOLLOWS,
            AssociationType.SIMILAR_TO,
            AssociationType.MENTIONS,
        )
        for row, i in enumerate(range(start, stop)):
            epoch = now - span * (1.0 - i / self.n)
            when = datetime.fromtimestamp(epoch, UTC)
            mid = memory_id(i)
            session = int(self.session_of[i])
            follows_previous = i > 0 and self.session_of[i - 1] == session
            batch.memories.append(
                Memory(
                    id=mid,
                    namespace=NAMESPACE,
                    content=" ".join([vocab[w] for w in words[word_start : ends[row]]]),
                    kind=MemoryKind.EVENT,
                    tier=Tier.WORKING if epoch >= working_after else Tier.EPISODIC,
                    session_id=f"s{session:07d}",
                    created_at=when,
                    occurred_at=when,
                    importance=float(self.importance[i]),
                    embedding=vectors[i],
                    passages=sentence_vectors[row] if split[row] else None,
                    context_embedding=unit(vectors[i - 1] + vectors[i])
                    if follows_previous
                    else None,
                )
            )
            word_start = ends[row]
            edges = batch.edges
            if follows_previous:
                edges.append(Association(memory_id(i - 1), mid, follows, follows_w[row], when))
            for j in similar[row]:
                edges.append(Association(mid, memory_id(j), similar_to, similar_w[pair], when))
                pair += 1
            named: set[int] = set()
            for slot in range(mention_start, mention_ends[row]):
                e = int(entities[slot])
                if e in named:
                    continue
                named.add(e)
                key = self.entity_key(e)
                batch.entities[key] = f"Entity {e}"
                target = ENTITY_PREFIX + key
                edges.append(Association(mid, target, mentions, mention_w[slot], when))
            mention_start = mention_ends[row]
        return batch

    def queries(self, count: int) -> list[tuple[str, np.ndarray]]:
        """``count`` (text, unit vector): a random memory's cluster centre plus noise, and a
        few of that cluster's topic words."""
        rng = np.random.default_rng([self.seed, 2])
        out: list[tuple[str, np.ndarray]] = []
        for i in rng.integers(0, self.n, size=count).tolist():
            c = int(self.cluster_of[i])
            noise = unit(rng.standard_normal(self.dim, dtype=np.float32))
            vector = unit(self.centres[c] + SPREAD * noise).astype(np.float32)
            words = rng.choice(self.topics[c], size=QUERY_WORDS, replace=False).tolist()
            out.append((" ".join(self.vocab[w] for w in words), vector))
        return out
