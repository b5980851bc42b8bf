"""Score parts: ACT-R base-level activation (Petrov's approximation), retrieval
probability, recency/frequency, and the weighted blend."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import hippograph.graph.scoring
from hippograph.graph.scoring import (
    PART_NAMES,
    ScoreWeights,
    base_level_activation,
    blend,
    informativeness,
    recency_score,
    retrieval_probability,
)

HOUR = 3_600.0
DAY = 86_400.0


def exact_base_level(ages: np.ndarray, decay: float = 0.5) -> float:
    """ACT-R's base-level equation itself: ``ln sum_j t_j ** -d``."""
    return float(np.log(np.sum(ages ** (-decay))))


def approx_base_level(ages: np.ndarray, decay: float = 0.5) -> float:
    return float(
        base_level_activation(
            np.array([ages.max()]), np.array([ages.min()]), np.array([len(ages)]), decay=decay
        )[0]
    )


# Petrov's hybrid keeps the most recent presentation exact and replaces the other n - 1
# by the mean of t^-d over [t_1, L], as if they were spread evenly over the whole span.
# Evenly spaced presentations sit at the right ends of that span's n - 1 slices, and
# t^-d falls, so the approximation can only over-estimate; over the grid below the
# largest gap is 0.12 nats (worst for few presentations soon after the last one). We
# allow 0.15: with the recall noise s = 1 that moves the retrieval probability by at
# most 0.15 / 4 < 0.04, while a wrong formula (a lost n - 1, a sign, the wrong power)
# is off by far more than that.
TOLERANCE = 0.15


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 30, 100])
@pytest.mark.parametrize("last", [1.0, 60.0, HOUR])
@pytest.mark.parametrize("span", [60.0, HOUR, DAY, 30 * DAY])
def test_base_level_matches_the_exact_act_r_sum_for_evenly_spaced_presentations(
    n: int, last: float, span: float
) -> None:
    ages = np.linspace(last, last + span, n) if n > 1 else np.array([last])
    exact = exact_base_level(ages)
    approx = approx_base_level(ages)
    assert approx == pytest.approx(exact, abs=TOLERANCE)
    assert approx >= exact - 1e-9  # it never under-estimates (see above)
    if n == 1:
        assert approx == pytest.approx(exact, abs=1e-12)  # one presentation is exact


@pytest.mark.parametrize("decay", [0.2, 0.5, 0.8])
def test_base_level_of_one_presentation_is_minus_d_log_t(decay: float) -> None:
    b = base_level_activation(np.array([HOUR]), np.array([HOUR]), np.array([1]), decay=decay)
    assert b[0] == pytest.approx(-decay * np.log(HOUR))


def test_more_presentations_give_higher_base_level() -> None:
    counts = np.arange(1, 20)
    b = base_level_activation(np.full(19, DAY), np.full(19, HOUR), counts)
    assert np.all(np.diff(b) > 0)


def test_more_recent_presentations_give_higher_base_level() -> None:
    since_last = np.array([10.0, 60.0, HOUR, DAY])
    b = base_level_activation(np.full(4, 7 * DAY), since_last, np.full(4, 5))
    assert np.all(np.diff(b) < 0)
    # an older first presentation (same last one, same count) spreads the older
    # presentations further back: lower
    ages = np.array([HOUR, DAY, 30 * DAY])
    b = base_level_activation(ages, np.full(3, 60.0), np.full(3, 5))
    assert np.all(np.diff(b) < 0)


def test_base_level_clamps_tiny_ages_and_rejects_a_decay_outside_zero_one() -> None:
    b = base_level_activation(np.array([0.0, -5.0]), np.array([0.0, -5.0]), np.array([1, 0]))
    assert np.all(np.isfinite(b))
    assert b.tolist() == pytest.approx([0.0, 0.0])  # clamped to one second: ln 1
    for decay in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="decay"):
            base_level_activation(np.array([HOUR]), np.array([HOUR]), np.array([1]), decay=decay)


def test_retrieval_probability_is_one_half_at_the_threshold_and_rises_with_activation() -> None:
    b = np.linspace(-10.0, 5.0, 61)
    p = retrieval_probability(b, threshold=-2.0, noise=0.5)
    assert retrieval_probability(np.array([-2.0]), threshold=-2.0, noise=0.5)[0] == 0.5
    assert np.all(np.diff(p) > 0)
    assert np.all((p >= 0.0) & (p <= 1.0))
    # less noise makes the step sharper around the threshold
    sharp = retrieval_probability(np.array([-1.0, -3.0]), threshold=-2.0, noise=0.1)
    soft = retrieval_probability(np.array([-1.0, -3.0]), threshold=-2.0, noise=1.0)
    assert sharp[0] > soft[0] > 0.5 > soft[1] > sharp[1]


def test_recency_is_zero_for_memories_that_occur_after_now() -> None:
    now = 1_000_000.0
    s = recency_score(
        now,
        np.array([now + 1.0, now + DAY, now - HOUR]),
        np.array([np.nan, now - 10.0, np.nan]),  # an access cannot make it have happened
        np.array([0, 3, 0]),
    )
    assert s[0] == 0.0
    assert s[1] == 0.0
    assert s[2] > 0.0


def test_recency_is_higher_for_recent_memories() -> None:
    now = 1_000_000.0
    occurred = now - np.array([60.0, HOUR, DAY, 30 * DAY])
    s = recency_score(now, occurred, np.full(4, np.nan), np.zeros(4, int))
    assert np.all(np.diff(s) < 0)
    assert np.all((s > 0.0) & (s < 1.0))


def test_recency_rises_with_access_count_and_with_a_recent_access() -> None:
    now = 1_000_000.0
    occurred = np.full(4, now - 30 * DAY)
    s = recency_score(now, occurred, np.full(4, now - HOUR), np.array([0, 1, 5, 50]))
    assert np.all(np.diff(s) > 0)
    never, just_now = recency_score(
        now, np.full(2, now - 30 * DAY), np.array([np.nan, now - 60.0]), np.array([1, 1])
    )
    assert just_now > never


def test_recency_counts_an_access_after_now_as_if_at_now() -> None:
    now = 1_000_000.0
    occurred = np.full(2, now - DAY)
    later, at_now = recency_score(now, occurred, np.array([now + DAY, now]), np.array([2, 2]))
    assert later == pytest.approx(at_now)


def test_blend_is_the_weighted_sum_of_the_parts() -> None:
    rng = np.random.default_rng(3)
    names = PART_NAMES
    parts = {name: rng.uniform(0, 1, 7) for name in names}
    weights = ScoreWeights(
        similarity=0.7,
        activation=0.3,
        recency=0.05,
        importance=0.2,
        context=1.5,
        informativeness=0.4,
    )
    want = sum(getattr(weights, name) * parts[name] for name in names)
    np.testing.assert_allclose(blend(parts, weights), want, rtol=1e-12)
    # each part only counts through its own weight
    for name in names:
        only = ScoreWeights(**{n: float(n == name) for n in names})
        np.testing.assert_allclose(blend(parts, only), parts[name], rtol=1e-12)


def test_informativeness_is_half_at_the_mean_length_and_grows_with_length() -> None:
    length = np.array([0.0, 1.0, 5.0, 10.0, 40.0])
    score = informativeness(length, 10.0)
    assert score[3] == pytest.approx(0.5)
    assert np.all(np.diff(score) > 0)
    assert np.all((score >= 0.0) & (score < 1.0))
    assert informativeness(length, 0.0).tolist() == [0.0] * 5


def test_module_doctests_pass() -> None:
    result = doctest.testmod(hippograph.graph.scoring, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4
    assert result.failed == 0
