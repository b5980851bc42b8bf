"""``GraphConfig``: the engine's limits, association-building thresholds and recall
parameters, in one frozen dataclass (``hippograph.api.settings`` fills it from the
environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hippograph.graph.activation import ActivationParams
from hippograph.graph.scoring import ScoreWeights

__all__ = ["GraphConfig"]


@dataclass(frozen=True, slots=True)
class GraphConfig:
    """Limits, association-building thresholds and recall parameters.

    ``hippograph.api.settings`` fills this from the environment; everything else takes it as an
    argument.
    """

    # limits (bad input beyond them is rejected, naming the field and the limit)
    max_content_chars: int = 20_000
    max_batch: int = 1_000
    max_k: int = 100
    max_hops: int = 4
    max_links: int = 64
    max_metadata_bytes: int = 16_384
    max_id_chars: int = 256
    # association on write
    similar_k: int = 5
    similar_threshold: float = 0.55
    follows_weight: float = 0.8
    mention_weight: float = 0.6
    max_entities: int = 16
    # automatic supersession (graph.supersession): a new memory is checked against the
    # stored memories among its similar_k nearest at this cosine or above, and earlier
    # ones of its batch; 0 turns the check off. The rule decides, not the cosine: an
    # update in other words is often under 0.6 ("Spin moved to Mondays": 0.596)
    supersede_similarity: float = 0.5
    # passages: besides its whole vector, a memory of several sentences gets one vector
    # per sentence (graph.text.passages), and a memory that follows another in its
    # session gets a context vector (the two read together, a reply with what it
    # answers). A memory's similarity to a query is its whole vector's cosine, plus
    # ``passage_weight`` times what its best sentence adds, blended with its context
    # cosine at ``context_weight``. See docs/retrieval.md.
    passages: bool = True
    context_passages: bool = True
    max_passages: int = 16
    passage_min_chars: int = 20
    passage_seeds: int = 30
    passage_weight: float = 1.0
    context_weight: float = 0.3
    # recall
    dense_seeds: int = 30
    lexical_seeds: int = 30
    lexical_weight: float = 0.3
    context_text_weight: float = 0.5
    max_candidates: int = 300
    # default recall consults the archive index (graph.archived): archived memories at
    # least as similar as the weakest hot result, and never below this, come back
    archive_min_similarity: float = 0.35
    activation: ActivationParams = field(default_factory=ActivationParams)
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    recency_decay: float = 0.5
    recency_threshold: float = -6.0
    recency_noise: float = 1.0
    # recall side effects
    hebbian_rate: float = 0.1
    hebbian_max: float = 1.0
    hebbian_top: int = 5
    access_flush_every: int = 256
    access_flush_seconds: float = 5.0
    # derived structures. Exact search costs ~0.15 us per vector per query (8.9k: 1.2 ms,
    # 17k: 2.8 ms on one core, measured in bench lifecycle's hot set); HNSW stays at
    # 0.2-0.4 ms, so an index goes HNSW from 5k vectors.
    hnsw_threshold: int = 5_000
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 64
    delta_limit: int = 65_536
