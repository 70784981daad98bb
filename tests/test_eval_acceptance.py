"""Acceptance: the metrics agree with an independent implementation on real RouterBench data."""

from __future__ import annotations

import pytest

from trouter.data.loaders import load_dataset
from trouter.eval.metrics import aiq, gap_recovered, oracle_curve, zero_aiq


@pytest.fixture(scope="module")
def routerbench_test(shared_data):
    split = load_dataset("routerbench_subset", shared_data).own_split()
    assert split is not None
    return split.test


def test_routerbench_subset_zero_and_oracle_aiq_match_the_reference(routerbench_test):
    # Its own test files, all three tasks pooled, missing scores as 0 (RoutingDataset.scores).
    test = routerbench_test
    assert test.n_queries == 953 and test.n_models == 11
    S, C = test.scores, test.costs
    a_zero = zero_aiq(S, C)
    a_oracle = aiq(oracle_curve(S, C), S, C)
    assert a_zero == pytest.approx(0.818, abs=0.003)
    assert a_oracle == pytest.approx(0.973, abs=0.003)
    assert gap_recovered(a_oracle, a_zero, a_oracle) == 1.0
