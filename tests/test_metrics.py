"""The cost-quality metrics, pinned on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trouter.eval.metrics import (
    SCENARIOS,
    aiq,
    area_under_hull,
    best_reward_on_curve,
    cost_interval,
    curve,
    gap_recovered,
    hull_value,
    lambda_grid,
    normalised_costs,
    oracle_curve,
    preset_lambda_for_truth,
    scenario_reward,
    single_model_points,
    two_model_summary,
    upper_hull,
    zero_aiq,
)
from trouter.tradeoff import choose

# Three models whose mean (cost, score) are (1, 0.5), (2, 0.6), (3, 0.9): one query suffices.
S1 = np.array([[0.5, 0.6, 0.9]])
C1 = np.array([[1.0, 2.0, 3.0]])


def test_zero_router_aiq_is_the_mean_of_the_single_model_hull():
    # The middle model lies under the chord (1, .5)-(3, .9), whose mean over [1, 3] is 0.7.
    assert zero_aiq(S1, C1) == pytest.approx(0.7, abs=1e-12)


def test_aiq_of_a_hand_computed_case():
    # A router point (2, .8) lifts the hull: [(1,.5),(2,.8),(3,.9)], area 0.65 + 0.85 over width 2.
    assert aiq(np.array([[2.0, 0.8]]), S1, C1) == pytest.approx(0.75, abs=1e-12)
    # A point cheaper than every model, (0.5, .6), starts the hull left of c_lo = 1; the hull at
    # 1 is 0.6 + 0.2 * 0.5 / 1.5 = 2/3, so the area is (2/3 + .8) / 2 + (.8 + .9) / 2 = 19/12.
    points = np.array([[2.0, 0.8], [0.5, 0.6]])
    assert aiq(points, S1, C1) == pytest.approx(19 / 24, abs=1e-12)


def test_points_beyond_the_dearest_model_count_only_up_to_c_hi():
    S, C = np.array([[0.5, 0.6]]), np.array([[1.0, 3.0]])
    assert zero_aiq(S, C) == pytest.approx(0.55, abs=1e-12)
    # (5, 1.0) lifts the hull at c_hi = 3 from 0.6 to the chord's 0.75; beyond 3 is not averaged.
    assert aiq(np.array([[5.0, 1.0]]), S, C) == pytest.approx((0.5 + 0.75) / 2, abs=1e-12)
    # A dearer and worse point changes nothing.
    assert aiq(np.array([[4.0, 0.55]]), S, C) == pytest.approx(0.55, abs=1e-12)


def test_hull_is_zero_left_of_its_first_point_and_flat_right_of_its_last():
    hull = upper_hull([[1.0, 0.5], [3.0, 0.9]])
    assert hull_value(hull, [0.5, 1.0, 2.0, 3.0, 10.0]).tolist() == pytest.approx(
        [0.0, 0.5, 0.7, 0.9, 0.9]
    )
    # Averaged over [0, 3]: nothing on [0, 1), then 1.4 on [1, 3].
    assert area_under_hull(hull, 0.0, 3.0) == pytest.approx(1.4 / 3)


def test_hull_is_non_decreasing_concave_and_above_every_point():
    rng = np.random.default_rng(0)
    for _ in range(50):
        pts = rng.random((30, 2))
        hull = upper_hull(pts)
        assert np.all(np.diff(hull[:, 0]) > 0)
        assert np.all(np.diff(hull[:, 1]) >= 0)
        slopes = np.diff(hull[:, 1]) / np.diff(hull[:, 0])
        assert np.all(np.diff(slopes) <= 1e-9)
        # Every point lies on or under it (flat to the right of the best point).
        assert np.all(pts[:, 1] <= hull_value(hull, pts[:, 0]) + 1e-9)
        # Its vertices are input points: the cheapest point and the best point are on it.
        assert hull[0, 0] == pts[:, 0].min()
        assert hull[-1, 1] == pts[:, 1].max()


def test_hull_keeps_the_best_of_equally_cheap_points_and_the_cheapest_of_equally_good():
    hull = upper_hull([[1.0, 0.2], [1.0, 0.4], [2.0, 0.9], [3.0, 0.9]])
    assert hull.tolist() == [[1.0, 0.4], [2.0, 0.9]]


def test_gap_recovered_is_zero_for_the_zero_router_and_one_for_the_oracle():
    rng = np.random.default_rng(1)
    S = (rng.random((200, 4)) < [0.4, 0.6, 0.7, 0.85]).astype(float)
    C = rng.random((200, 4)) * [0.1, 0.5, 1.0, 3.0]
    a_zero = zero_aiq(S, C)
    a_oracle = aiq(oracle_curve(S, C), S, C)
    assert a_oracle > a_zero
    # A router that only ever reproduces single-model points recovers nothing.
    assert gap_recovered(aiq(single_model_points(S, C), S, C), a_zero, a_oracle) == 0.0
    assert gap_recovered(a_oracle, a_zero, a_oracle) == 1.0
    # A router estimating the true S and C exactly is the oracle.
    assert aiq(curve(S, C, S, C), S, C) == a_oracle
    assert np.isnan(gap_recovered(0.5, 0.7, 0.7))


def test_curve_scores_the_picks_on_true_outcomes_not_on_the_estimates():
    S = np.array([[1.0, 0.0], [0.0, 1.0]])
    C = np.array([[1.0, 2.0], [1.0, 2.0]])
    # Estimates that are confidently wrong: model 1 on query 0, model 0 on query 1.
    quality = np.array([[0.0, 1.0], [1.0, 0.0]])
    crv = curve(quality, C, S, C, lams=[0.0])
    assert crv.picks.tolist() == [[1, 0]]
    assert crv.costs.tolist() == [1.5] and crv.scores.tolist() == [0.0]


def test_lambda_grid_spans_quality_only_to_cost_only_picks():
    S = np.array([[0.2, 0.9], [0.5, 0.6]])
    C = np.array([[1e-4, 1e-2], [2e-4, 5e-3]])
    grid = lambda_grid(C, n=100)
    assert grid[0] == 0.0 and len(grid) == 101 and np.all(np.diff(grid) > 0)
    crv = oracle_curve(S, C, grid)
    assert crv.picks[0].tolist() == [1, 1]  # lam = 0: best score
    assert crv.picks[-1].tolist() == [0, 0]  # largest lam: cheapest
    assert cost_interval(S, C) == pytest.approx((1.5e-4, 7.5e-3))


def test_scenario_rewards_use_cost_min_max_normalised_over_every_test_cell():
    S = np.array([[1.0, 0.0], [0.0, 1.0]])
    C = np.array([[2.0, 4.0], [6.0, 10.0]])
    assert normalised_costs(C).tolist() == [[0.0, 0.25], [0.5, 1.0]]
    picks = np.array([0, 1])
    # Balanced: mean of 0.5*1 - 0.5*0 and 0.5*1 - 0.5*1.
    assert scenario_reward(picks, S, C, SCENARIOS["balanced"]) == pytest.approx(0.25)
    assert scenario_reward(picks, S, C, SCENARIOS["quality"]) == pytest.approx((0.8 + 0.6) / 2)
    assert scenario_reward(picks, S, C, SCENARIOS["cost"]) == pytest.approx((0.2 - 0.6) / 2)


def test_the_oracle_at_its_preset_lambda_earns_the_best_reward_per_query():
    rng = np.random.default_rng(2)
    S = rng.random((100, 3))
    C = rng.random((100, 3)) * [1.0, 2.0, 4.0]
    for weights in SCENARIOS.values():
        lam = preset_lambda_for_truth(C, weights)
        reward = scenario_reward(choose(S, C, lam), S, C, weights)
        per_query_best = (weights[0] * S - weights[1] * normalised_costs(C)).max(axis=1).mean()
        assert reward == pytest.approx(per_query_best)
        assert best_reward_on_curve(oracle_curve(S, C), S, C, weights) <= reward + 1e-12


def test_apgr_and_cpt_on_a_hand_case():
    # Model 0 weak and cheap, model 1 strong and dear; four queries.
    S = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    C = np.array([[1.0, 10.0]] * 4)
    # The weak model scores 0.5, the strong 0.75: a gap of 0.25, i.e. one query's worth.
    # A router ranking queries 0, 1 first for the strong model (quality gains .9, .8, .1, .0):
    quality = np.array([[0.1, 1.0], [0.1, 0.9], [0.5, 0.6], [0.5, 0.5]])
    summary = two_model_summary(quality, C, S, C, models=("weak", "strong"))
    assert (summary.strong, summary.weak) == ("strong", "weak")
    # Sending 0..4 queries to the strong model: scores .5, .75, 1.0, 1.0, .75 -> PGR 0, 1, 2, 2, 1.
    assert summary.pgr.tolist() == [0.0, 1.0, 2.0, 2.0, 1.0]
    # Trapezoid over shares 0, .25, .5, .75, 1: .25 * (0.5 + 1.5 + 2 + 1.5) = 1.375.
    assert summary.apgr == pytest.approx(1.375)
    assert summary.cpt50 == 0.25 and summary.cpt80 == 0.25
    # The reversed ranking sends the two queries the strong model loses or ties first.
    reverse = two_model_summary(-quality, C, S, C)
    assert reverse.pgr.tolist() == [0.0, -1.0, -1.0, 0.0, 1.0]
    assert reverse.cpt50 == 1.0 and reverse.cpt80 == 1.0
