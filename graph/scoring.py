"""Score parts of a recall candidate: recency/frequency, context, and their blend.

Each part is a number in [0, 1] so that weights (settings) mean what they say and an
answer can show why it ranked where it did.

Recency and frequency follow ACT-R's base-level learning [1]_: a memory presented
:math:`n` times, first :math:`L` seconds ago and last :math:`t_1` seconds ago, has
base-level activation (Petrov's hybrid approximation [2]_ of
:math:`\\ln \\sum_j t_j^{-d}`)

.. math::

    B = \\ln\\left( t_1^{-d} + \\frac{(n-1)\\,(L^{1-d} - t_1^{1-d})}{(1-d)(L-t_1)} \\right)

and ACT-R's retrieval probability :math:`P = 1 / (1 + e^{-(B-\\tau)/s})` maps it to
[0, 1]. Creation counts as the first presentation; every recall that returns the
memory is another.

References
----------
.. [1] Anderson, J. R. & Schooler, L. J. (1991). Reflections of the environment in
   memory. Psychological Science, 2(6), 396-408; Anderson, J. R. et al. (2004). An
   integrated theory of the mind. Psychological Review, 111(4), 1036-1060.
.. [2] Petrov, A. A. (2006). Computationally efficient approximation of the base-level
   learning equation in ACT-R. Proceedings of ICCM 2006, 391-392.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "PART_NAMES",
    "ScoreWeights",
    "base_level_activation",
    "blend",
    "informativeness",
    "recency_score",
    "retrieval_probability",
]


def base_level_activation(
    age: np.ndarray,
    since_last: np.ndarray,
    count: np.ndarray,
    *,
    decay: float = 0.5,
    min_age: float = 1.0,
) -> np.ndarray:
    """ACT-R base-level activation ``B`` (Petrov's hybrid approximation, k = 1).

    Parameters
    ----------
    age:
        Seconds since the first presentation (occurred_at), per memory.
    since_last:
        Seconds since the most recent presentation (last access, else occurred_at).
    count:
        Number of presentations, at least 1 (creation counts).
    decay:
        ACT-R's ``d`` (0.5 is the canonical value).
    min_age:
        Ages are clamped to at least this many seconds (no division by zero).

    Examples
    --------
    One presentation an hour ago: ``B = ln(3600 ** -0.5) = -4.094...``

    >>> float(base_level_activation(np.array([3600.0]), np.array([3600.0]), np.array([1]))[0])
    -4.0943...

    More presentations raise it:

    >>> b = base_level_activation(np.array([3600.0] * 2), np.array([60.0] * 2),
    ...                           np.array([1, 10]))
    >>> bool(b[1] > b[0])
    True
    """
    d = float(decay)
    if not 0.0 < d < 1.0:
        raise ValueError("decay must lie in (0, 1)")
    t1 = np.maximum(np.asarray(since_last, dtype=np.float64), min_age)
    life = np.maximum(np.asarray(age, dtype=np.float64), t1)
    n = np.maximum(np.asarray(count, dtype=np.float64), 1.0)
    recent = t1 ** (-d)
    span = life - t1
    spread = span > 1e-9
    # presentations spread over (t1, life]; all at t1 when the span is empty
    older = (n - 1.0) * recent
    np.divide(
        (n - 1.0) * (life ** (1 - d) - t1 ** (1 - d)),
        (1 - d) * span,
        out=older,
        where=spread,
    )
    return np.log(recent + older)


def retrieval_probability(activation: np.ndarray, *, threshold: float, noise: float) -> np.ndarray:
    """ACT-R retrieval probability ``1 / (1 + exp(-(B - tau) / s))`` in [0, 1].

    >>> float(retrieval_probability(np.array([-2.0]), threshold=-2.0, noise=0.5)[0])
    0.5
    """
    return 1.0 / (1.0 + np.exp(-(np.asarray(activation) - threshold) / noise))


def recency_score(
    now: float,
    occurred_at: np.ndarray,
    last_accessed_at: np.ndarray,
    access_count: np.ndarray,
    *,
    decay: float = 0.5,
    threshold: float = -5.0,
    noise: float = 0.5,
) -> np.ndarray:
    """Recency/frequency part: retrieval probability of the base-level activation at
    time ``now`` (epoch seconds). Memories that occurred after ``now`` score 0: as of
    ``now`` they had not happened yet.

    ``last_accessed_at`` is nan for never-recalled memories; accesses recorded after
    ``now`` (a replayed query in the past) count as if at ``now``.

    >>> s = recency_score(100_000.0, np.array([99_000.0, 10_000.0, 200_000.0]),
    ...                   np.array([np.nan, np.nan, np.nan]), np.array([0, 0, 0]))
    >>> bool(s[0] > s[1] > 0.0), float(s[2])
    (True, 0.0)
    """
    occurred = np.asarray(occurred_at, dtype=np.float64)
    last = np.asarray(last_accessed_at, dtype=np.float64)
    last = np.where(np.isnan(last), occurred, np.minimum(np.maximum(last, occurred), now))
    b = base_level_activation(now - occurred, now - last, np.asarray(access_count) + 1, decay=decay)
    p = retrieval_probability(b, threshold=threshold, noise=noise)
    return np.where(occurred > now, 0.0, p)


def informativeness(length: np.ndarray, mean_length: float) -> np.ndarray:
    """How much a memory says: ``n / (n + mean)`` for a memory of ``n`` analysed terms
    (non-stopwords, with repeats) in a namespace whose memories average ``mean``, in
    [0, 1). Half at the mean length, saturating like BM25's term frequency: a reaction
    ("Wow, congrats!") scores low, a turn that states something scores high, and
    beyond a few times the mean, length adds little.

    >>> informativeness(np.array([0.0, 2.0, 6.0, 18.0]), 6.0).tolist()
    [0.0, 0.25, 0.5, 0.75]
    """
    length = np.asarray(length, dtype=np.float64)
    if mean_length <= 0:
        return np.zeros(len(length))
    return length / (length + mean_length)


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How much each part counts in the final score (a weighted sum).

    Cosine similarity already enters through the seeds' activation (fused with BM25),
    so by default it is reported but not counted twice: on LoCoMo any weight on it
    lowered recall@10 (0.1 -> -0.8 points, 0.3 -> -2).

    ``informativeness`` (:func:`informativeness`) is a prior for memories that state
    something over short reactions, which a query's topic activates just as well ("Nice
    pottery!" next to "I signed up for a pottery class"). On LoCoMo dev, 0.4 raised
    recall@10 from 74.8 to 75.6 and multi-hop from 49.7 to 52.5; 0.3 and 0.5 gave
    75.4 / 51.7 and 75.1 / 52.6 (docs/retrieval.md).
    """

    similarity: float = 0.0
    activation: float = 1.0
    recency: float = 0.2
    importance: float = 0.2
    context: float = 0.4
    informativeness: float = 0.4
    # 1 for a memory still valid at the time of the question, 0 for one a newer memory
    # supersedes (graph.validity): the same for every memory of a namespace without
    # updates, so it moves nothing there
    validity: float = 1.0


# The parts of a recollection's score, in the order they are reported.
PART_NAMES = (
    "similarity",
    "activation",
    "recency",
    "importance",
    "context",
    "informativeness",
    "validity",
)


def blend(parts: dict[str, np.ndarray], weights: ScoreWeights) -> np.ndarray:
    """Weighted sum of the score parts (each an array over candidates).

    >>> w = ScoreWeights(similarity=1, activation=0, recency=0, importance=0, context=1,
    ...                  informativeness=0, validity=0)
    >>> blend({"similarity": np.array([0.5]), "activation": np.array([1.0]),
    ...        "recency": np.array([1.0]), "importance": np.array([1.0]),
    ...        "context": np.array([0.25]), "informativeness": np.array([1.0]),
    ...        "validity": np.array([1.0])}, w).tolist()
    [0.75]
    """
    total = np.zeros(len(parts["activation"]))
    for name in PART_NAMES:
        weight = getattr(weights, name)
        if weight:  # a part that does not count is not computed into the sum (may be nan)
            total += weight * parts[name]
    return total
