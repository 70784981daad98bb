"""The test set's sampling error of a router's AIQ and gap recovered: a paired bootstrap.

A test split of a few hundred queries moves a gap recovered by several hundredths, so a
benchmark that says which router is better must say how sure it is. Each resample draws the
test queries with replacement (as weights, `resample_shares`); a router's picks stay as made and
its AIQ is recomputed on the resample (`aiq_draws`), with the single models and the cost
interval taken on the resample too. Every router of a fold is scored on the same resamples, so
differences between routers are paired. `gap_draws` turns AIQ draws into gaps, `standard_error`
gives their spread, and `bc_interval` the bias-corrected percentile interval of an estimate
(AIQ is an upper hull, which noise lifts on every resample).

The picks are not remade, so none of this includes the spread over training seeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from trouter.eval.metrics import Curve, FloatArray, aiq_of_points, as_matrix

#: Resamples of the test queries behind every standard error and interval trouter reports.
DRAWS = 1000
#: Fewer resamples than this (bar 0, none) cannot place the ends of a 95% interval: one
#: resample gave a zero-width "interval" and a verdict.
MIN_DRAWS = 100


def resample_shares(
    n: int, draws: int, seed: int | Sequence[int], max_cells: int = 4_000_000
) -> Iterator[FloatArray]:
    """Bootstrap resamples of n queries, in chunks of rows [k, n] of at most `max_cells` cells
    (a large test set does not hold every resample in memory at once): row b is each query's
    share of resample b, n draws with replacement. The rows are the same however they are cut.

    Scoring every router on the same rows makes the comparison paired: a hard resample is hard
    for all of them, so differences between routers vary far less than their gaps do.
    """
    rng = np.random.default_rng(seed)
    step = max(1, max_cells // max(n, 1))
    for start in range(0, draws, step):
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=min(step, draws - start)) / n


def aiq_draws(
    crv: Curve | None, S: npt.ArrayLike, C: npt.ArrayLike, shares: FloatArray
) -> FloatArray:
    """AIQ on each resample of `shares` ([draws, n]); `crv` None is the zero router.

    The picks stay as the router made them; a resample only reweights the queries, so the points,
    the single models and the cost interval are all taken on the resample.
    """
    S_, C_ = as_matrix(S, "S"), as_matrix(C, "C")
    single_costs, single_scores = shares @ C_, shares @ S_
    if crv is None:
        costs = scores = np.zeros((len(shares), 0))
    else:
        picks = np.unique(crv.picks, axis=0)  # many lams pick alike; their points coincide
        rows = np.arange(S_.shape[0])[None, :]
        costs, scores = shares @ C_[rows, picks].T, shares @ S_[rows, picks].T
    return np.array(
        [
            aiq_of_points(
                np.column_stack([costs[b], scores[b]]),
                np.column_stack([single_costs[b], single_scores[b]]),
            )
            for b in range(len(shares))
        ]
    )


def gap_draws(router: FloatArray, zero: FloatArray, oracle: FloatArray) -> FloatArray:
    """Gap recovered per resample (NaN where a resample has no zero-to-oracle gap)."""
    span = oracle - zero
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 1e-12, (router - zero) / span, np.nan)


def standard_error(draws: FloatArray) -> float:
    """The bootstrap standard error: the spread of the draws (NaN draws ignored)."""
    finite = draws[np.isfinite(draws)]
    return float(finite.std(ddof=1)) if finite.size > 1 else float("nan")


def bc_interval(draws: FloatArray, estimate: float, level: float = 0.95) -> tuple[float, float]:
    """The bias-corrected percentile interval (Efron's BC) of an estimate from its draws.

    AIQ is an upper hull, so a curve with many points gains from noise on every resample more
    than one with few: the draws sit above the estimate, and plain percentiles would miss it.
    BC shifts the percentiles by how far the estimate sits inside its draws. Draws that are all
    equal (two routers with the same picks) give that value twice.
    """
    finite = draws[np.isfinite(draws)]
    if not finite.size:
        return float("nan"), float("nan")
    if np.all(finite == finite[0]):
        return float(finite[0]), float(finite[0])
    below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / finite.size
    normal = NormalDist()
    z0 = normal.inv_cdf(min(max(below, 0.5 / finite.size), 1 - 0.5 / finite.size))
    z = normal.inv_cdf(0.5 + level / 2)
    lo, hi = np.percentile(finite, [100 * normal.cdf(2 * z0 - z), 100 * normal.cdf(2 * z0 + z)])
    return float(lo), float(hi)
