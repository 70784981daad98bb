"""The paired bootstrap: resamples, AIQ on a resample, and the intervals built from them."""

from __future__ import annotations

import numpy as np
import pytest

from trouter.eval.bootstrap import (
    aiq_draws,
    bc_interval,
    gap_draws,
    resample_shares,
    standard_error,
)
from trouter.eval.metrics import aiq, curve, zero_aiq


def test_a_resample_that_keeps_every_query_once_scores_the_test_set_itself():
    rng = np.random.default_rng(3)
    S = (rng.random((60, 4)) < [0.3, 0.5, 0.7, 0.9]).astype(float)
    C = rng.random((60, 4)) * [1, 2, 4, 8]
    crv = curve(S + rng.normal(0, 0.5, S.shape), C, S, C)
    once = np.full((2, 60), 1 / 60)
    assert aiq_draws(crv, S, C, once) == pytest.approx([aiq(crv, S, C)] * 2)
    assert aiq_draws(None, S, C, once) == pytest.approx([zero_aiq(S, C)] * 2)


def test_resamples_draw_every_query_with_replacement_and_are_seeded():
    shares = np.vstack(list(resample_shares(50, 200, seed=7)))
    assert shares.shape == (200, 50)
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert np.allclose(shares * 50, np.round(shares * 50))  # whole draws of each query
    assert (shares == 0).any() and (shares > 1 / 50).any()
    # The same rows however they are cut into chunks; another seed, other rows.
    chunks = list(resample_shares(50, 200, seed=7, max_cells=50 * 30))
    assert len(chunks) == 7 and np.array_equal(shares, np.vstack(chunks))
    assert not np.array_equal(shares, np.vstack(list(resample_shares(50, 200, seed=8))))


def test_gap_draws_and_their_standard_error():
    gaps = gap_draws(
        np.array([0.6, 0.7, 0.5]), np.array([0.5, 0.5, 0.5]), np.array([1.0, 0.9, 0.5])
    )
    assert gaps[:2] == pytest.approx([0.2, 0.5]) and np.isnan(gaps[2])  # no gap to recover
    assert standard_error(gaps) == pytest.approx(np.std([0.2, 0.5], ddof=1))
    assert np.isnan(standard_error(np.array([np.nan, 0.3])))


def test_the_bias_corrected_interval_follows_the_estimate_not_the_draws_centre():
    draws = np.random.default_rng(0).normal(0.0, 1.0, 4000)
    centred = bc_interval(draws, 0.0)
    assert centred == pytest.approx((-1.96, 1.96), abs=0.1)  # unbiased: plain percentiles
    # Draws that sit above the estimate (an upper hull gains from noise): the interval moves
    # down with it, so it still holds the estimate.
    low, high = bc_interval(draws + 0.5, 0.0)
    assert low < 0.0 < high and high < centred[1]
    assert bc_interval(np.zeros(50), 0.0) == (0.0, 0.0)  # the same picks on every resample
    assert all(np.isnan(bc_interval(np.array([np.nan]), 0.0)))
