"""The head-level verdict proven by simulation with a known truth, and its parts by hand.

Every simulated table draws per-image scores from reporting/simulation.py: each training shifts a
head's score on every image (the spread between trainings), each training has its own per-image
noise, images differ in difficulty. The seeds are fixed, so the tests are deterministic; the
bounds leave room for sampling noise around the nominal rates (300+ tables per case).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssformer_repro.reporting import statistics as st
from ssformer_repro.reporting.simulation import Truth, calibrate, expected_components, simulate

TABLES = 300


@pytest.mark.parametrize(
    ("seeds", "backbones", "truth", "images"),
    [
        (1, 1, Truth(training_sd=1.5, noise_sd=3.0), 100),
        (2, 1, Truth(training_sd=0.5, noise_sd=6.0), 60),
        (3, 1, Truth(training_sd=1.5, noise_sd=3.0), 100),
        (5, 1, Truth(training_sd=3.0, noise_sd=2.0), 200),
        (1, 3, Truth(training_sd=1.5, noise_sd=3.0), 100),
        (2, 3, Truth(training_sd=1.0, noise_sd=4.0), 100),
        (3, 3, Truth(training_sd=1.5, noise_sd=3.0), 100),
        (5, 3, Truth(training_sd=0.5, noise_sd=6.0), 60),
    ],
)
def test_equal_heads_are_rarely_called_different(
    seeds: int, backbones: int, truth: Truth, images: int
) -> None:
    """The situation the report was in: the heads are equal, trainings differ by 0.5-3 points."""
    rng = np.random.default_rng(seeds * 10 + backbones)
    rates = calibrate(truth, seeds, images, TABLES, rng, backbones)
    assert rates.winner <= 0.08
    if seeds == 1:
        assert rates.winner == 0  # one training per head: no head-level verdict at all


@pytest.mark.parametrize(
    ("seeds", "truth", "images"),
    [
        (3, Truth(difference=1.0, training_sd=1.5, noise_sd=3.0), 100),
        (3, Truth(difference=-2.0, training_sd=3.0, noise_sd=6.0, pair_sd=3.0), 60),
        (5, Truth(difference=0.5, training_sd=0.5, noise_sd=2.0), 200),
        (5, Truth(difference=0.0, training_sd=1.0, noise_sd=4.0, pair_sd=2.0), 100),
    ],
)
def test_the_interval_covers_the_true_difference(seeds: int, truth: Truth, images: int) -> None:
    rates = calibrate(truth, seeds, images, TABLES, np.random.default_rng(seeds + images))
    assert 0.90 <= rates.covered <= 0.98


def test_a_three_point_difference_is_found_with_three_seeds() -> None:
    truth = Truth(difference=3.0, training_sd=0.5, noise_sd=3.0)
    rates = calibrate(truth, 3, 100, TABLES, np.random.default_rng(7))
    assert rates.right_winner >= 0.80


def test_equal_heads_with_steady_trainings_are_found_equivalent() -> None:
    """Small spread between trainings (0.3 points), 5 seeds, 200 images: the heads are shown
    equivalent within 1 point. (At a spread of 0.5 the difference of two 5-seed means has a
    standard error of 0.32 points on its own, too wide for +-1 in 80 % of tables.)"""
    truth = Truth(training_sd=0.3, noise_sd=3.0)
    rates = calibrate(truth, 5, 200, TABLES, np.random.default_rng(8))
    assert rates.equivalent >= 0.80


@pytest.mark.parametrize(
    "truth",
    [Truth(difference=1.0, training_sd=1.0), Truth(difference=2.0, training_sd=1.5, noise_sd=5)],
)
def test_the_planned_number_of_seeds_gives_the_planned_power(truth: Truth) -> None:
    """Plan from the true spreads, then from a measured pilot table: a new simulation with the
    planned seeds finds the difference in at least 75 % of tables (the plan aims at 80 %)."""
    rng = np.random.default_rng(9)
    planned = st.plan(expected_components(truth, 3, 100), truth.difference, 0.05)
    assert planned.trainings is not None and planned.trainings > 3
    assert calibrate(truth, planned.trainings, 100, TABLES, rng).right_winner >= 0.75
    pilot = st.components(simulate(truth, 5, 100, rng))
    from_pilot = st.plan(pilot, truth.difference, 0.05)
    assert from_pilot.trainings is not None
    assert calibrate(truth, from_pilot.trainings, 100, TABLES, rng).right_winner >= 0.75


def test_a_difference_too_small_for_fifty_seeds_says_so() -> None:
    parts = expected_components(Truth(training_sd=1.5), 3, 100)
    assert st.plan(parts, 0.2, 0.05 / 6).trainings is None  # "more than 50 seeds"
    assert st.plan(parts, 0.2, 0.05 / 6).image_factor is None  # more images cannot help


def test_one_seed_plans_use_the_assumed_spread_and_say_so() -> None:
    parts = st.components(simulate(Truth(), 1, 100, np.random.default_rng(1)))
    assert st.head_test(parts) is None
    plan = st.plan(parts, 1.0, 0.05, assumed_spread=1.5)
    assert plan.assumed_spread and plan.trainings is not None
    assumed = st.plan(parts, 1.0, 0.05, assumed_spread=3.0)
    assert assumed.trainings is None or assumed.trainings > plan.trainings
    assert st.plan(parts, 1.0, 0.05).trainings is None  # no assumption, no answer


# --- the parts, by hand ---------------------------------------------------------------------


def test_components_of_a_hand_made_table() -> None:
    """Head A: two trainings at +1 and -1 around its per-image means (1, 3); head B all 0.
    A's training means are 3 and 1 (variance 2), with no residual noise; the per-image
    differences (1, 3) vary by 2, weighted by the sum of squared weights 1/2: 1."""
    a = np.array([[2.0, 4.0], [0.0, 2.0]])  # image means 1 and 3; trainings +1, -1
    b = np.array([[0.0, 0.0], [0.0, 0.0]])
    parts = st.components(st.PairedScores.of([a], [b]))
    assert parts.difference == pytest.approx(2.0)
    assert parts.training == pytest.approx((2.0, 0.0))
    assert parts.noise == pytest.approx((0.0, 0.0))
    assert parts.pair == pytest.approx((1.0,))
    variance = st.head_variance(parts)
    assert variance.value == pytest.approx(2 / 2 + 0 + 1.0)  # A's trainings, B's, the images
    # Satterthwaite: 2^2 / (1^2 / 1 + 1^2 / 1)
    assert variance.df == pytest.approx(2.0)


def test_satterthwaite_of_two_equal_parts_adds_their_degrees_of_freedom() -> None:
    assert st.Variance.of([(1.0, 4), (1.0, 4)]).df == pytest.approx(8.0)
    assert st.Variance.of([(1.0, 4), (0.0, 4)]).df == pytest.approx(4.0)


def test_holm_against_a_hand_computed_case() -> None:
    # sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> max 0.06
    assert st.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert st.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_holm_levels_step_down_then_stop() -> None:
    # 0.005 < 0.05/4 rejected; 0.01 < 0.05/3 rejected; 0.03 >= 0.05/2 stops: it and 0.04 at 0.025
    assert st.holm_levels([0.01, 0.04, 0.03, 0.005], 0.05) == pytest.approx(
        [0.05 / 3, 0.025, 0.025, 0.0125]
    )


def test_an_interval_at_its_holm_level_excludes_zero_exactly_when_holm_rejects() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        tests = [st.Test.of(d, st.Variance(1.0, 6)) for d in rng.normal(0, 3, 6)]
        p = [t.p for t in tests]
        for test, level, adjusted in zip(tests, st.holm_levels(p, 0.05), st.holm(p), strict=True):
            low, high = test.interval(level)
            assert (low > 0 or high < 0) == (adjusted < 0.05)


@pytest.mark.parametrize(
    ("low", "high", "said"),
    [
        (0.2, 1.5, st.A_BETTER),
        (-2.0, -0.1, st.B_BETTER),
        (-0.6, 0.8, st.EQUIVALENT),
        (-1.5, 0.4, st.INCONCLUSIVE),
        (0.3, 0.6, st.A_BETTER),  # better, if by less than the margin
    ],
)
def test_outcomes_read_the_interval(low: float, high: float, said: str) -> None:
    assert st.outcome(low, high, margin=1.0) == said


def test_equivalence_p_is_the_larger_one_sided_p() -> None:
    test = st.Test.of(0.2, st.Variance(0.25, 1e6))  # se 0.5, normal
    # (0.2 + 1) / 0.5 = 2.4 and (0.2 - 1) / 0.5 = -1.6: p = max(sf(2.4), cdf(-1.6)) = 0.0548
    assert test.equivalence_p(1.0) == pytest.approx(0.05480, abs=1e-4)


def test_probability_a_beats_b_counts_pairs_of_trainings() -> None:
    a = np.array([[3.0], [1.0]])  # training means 3 and 1
    b = np.array([[2.0], [0.0], [2.0]])  # 2, 0, 2: A wins 3 of 6 pairs with 3, 1 of ... 3 + 1
    scores = st.PairedScores.of([a], [b])
    estimate, low, high = st.probability_a_beats_b(scores, 500, np.random.default_rng(0), 0.05)
    assert estimate == pytest.approx(4 / 6)
    assert 0 <= low <= estimate <= high <= 1
    one = st.PairedScores.of([a[:1]], [b])
    assert np.isnan(st.probability_a_beats_b(one, 100, np.random.default_rng(0), 0.05)[0])


def test_paired_scores_must_share_their_images() -> None:
    with pytest.raises(ValueError, match="same images"):
        st.PairedScores.of([np.zeros((2, 5))], [np.zeros((2, 4))])
    with pytest.raises(ValueError, match="same backbones"):
        st.PairedScores.of([np.zeros((2, 5))], [])


def test_the_simulation_frame_round_trips_through_the_table_shape() -> None:
    from ssformer_repro.reporting.simulation import scores_frame

    frame = scores_frame(simulate(Truth(), 2, 10, np.random.default_rng(0), backbones=2))
    assert len(frame) == 2 * 2 * 2 * 10
    assert set(frame.columns) >= {"dataset", "backbone", "head", "seed", "id", "dice", "test_set"}
    assert isinstance(frame, pd.DataFrame)
