"""Cost-quality metrics of a router on a test set with true scores S[i, m] and costs C[i, m].

This is the one implementation of DESIGN.md's metrics; every number trouter reports comes from here.

- `lambda_grid`: 0 plus a log grid of trade-offs wide enough to go from the dearest to the
  cheapest choice, derived from the data's cost scale.
- `curve`: for each lam, the router picks m_i = argmax_m q[i, m] - lam * c[i, m] on its own
  estimates; the point is (mean_i C[i, m_i], mean_i S[i, m_i]) on the TRUE costs and scores.
- `upper_hull` / `aiq`: RouterBench's average improvement in quality: the non-decreasing upper
  convex hull of the curve's points plus every single-model point, averaged over the cost interval
  [cheapest, dearest single model's mean cost] (0 left of the hull's first point, flat right of
  its last).
- `zero_aiq`: the same over the single-model points only; `oracle_curve`: picks made with S and C.
- `gap_recovered`: (AIQ_router - AIQ_zero) / (AIQ_oracle - AIQ_zero).
- `scenario_reward`: w_q * score - w_c * cost_norm, with cost min-max normalised over every
  (query, model) cell of the test set.
- `two_model_summary`: RouteLLM's APGR and CPT(x%) for data with exactly two models.

The test set's sampling error of these numbers is in `trouter.eval.bootstrap`.

Missing scores count as 0: pass `RoutingDataset.scores`, which already does that.

>>> import numpy as np
>>> S = np.array([[1.0, 1.0], [0.0, 1.0]]); C = np.array([[1.0, 3.0], [1.0, 3.0]])
>>> round(zero_aiq(S, C), 3), round(aiq(oracle_curve(S, C), S, C), 3)
(0.75, 0.875)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trouter.tradeoff import PRESET_WEIGHTS, choose

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Scenario weightings (w_quality, w_cost) on min-max normalised cost, by trade-off preset name.
SCENARIOS: dict[str, tuple[float, float]] = dict(PRESET_WEIGHTS)
GRID_POINTS = 300


# ---------------------------------------------------------------------- curves
@dataclass(frozen=True)
class Curve:
    """Cost-quality points of one router on one test set, one per lam of the grid.

    `picks[k, i]` is the model index chosen for query i at `lams[k]`; `costs[k]` and `scores[k]`
    are the means of the TRUE cost and score of those picks.
    """

    lams: FloatArray
    costs: FloatArray
    scores: FloatArray
    picks: IntArray

    def points(self) -> FloatArray:
        """[k, 2] array of (mean cost, mean score)."""
        return np.column_stack([self.costs, self.scores])


def as_matrix(values: npt.ArrayLike, name: str) -> FloatArray:
    """`values` as a float [queries, models] matrix (a clear error for any other shape)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a [queries, models] matrix, got shape {arr.shape}")
    return arr


def lambda_grid(costs: npt.ArrayLike, n: int = GRID_POINTS) -> FloatArray:
    """0 plus `n` log-spaced lams from 1e-3 / c_max to 1e3 / c_min (quality points per dollar).

    c_max and c_min are the largest and the smallest positive cost cell. At the low end lam * cost
    is below a thousandth of a quality point for every model, so picks follow quality alone; at the
    high end a cost gap of a thousandth of the cheapest call outweighs a full quality point, so
    picks follow cost alone. Data without positive costs gets a fixed 1e-3 .. 1e9 grid.
    """
    c = np.asarray(costs, dtype=np.float64)
    positive = c[np.isfinite(c) & (c > 0)]
    if positive.size:
        lo, hi = 1e-3 / float(positive.max()), 1e3 / float(positive.min())
    else:
        lo, hi = 1e-3, 1e9
    return np.concatenate([[0.0], np.logspace(np.log10(lo), np.log10(hi), n)])


def curve_from_picks(
    picks: npt.ArrayLike, lams: npt.ArrayLike, S: FloatArray, C: FloatArray
) -> Curve:
    """Score the picks [k, n] (model index per query, per lam) on the true S and C."""
    p = np.asarray(picks, dtype=np.intp)
    rows = np.arange(S.shape[0])[None, :]
    return Curve(
        lams=np.asarray(lams, dtype=np.float64),
        costs=C[rows, p].mean(axis=1),
        scores=S[rows, p].mean(axis=1),
        picks=p,
    )


def curve(
    quality: npt.ArrayLike,
    cost: npt.ArrayLike,
    S: npt.ArrayLike,
    C: npt.ArrayLike,
    lams: npt.ArrayLike | None = None,
) -> Curve:
    """The lam-sweep curve of a router whose estimates are `quality`, `cost` [n, m].

    Picks use the estimates (the same rule as `Estimates.choose`); points use the true S and C.
    `lams` defaults to `lambda_grid(C)`.
    """
    S_, C_ = as_matrix(S, "S"), as_matrix(C, "C")
    q, c = as_matrix(quality, "quality"), as_matrix(cost, "cost")
    if q.shape != S_.shape or c.shape != S_.shape or C_.shape != S_.shape:
        raise ValueError(
            f"estimates {q.shape}/{c.shape} and truth {S_.shape}/{C_.shape} must have one shape"
        )
    grid = lambda_grid(C_) if lams is None else np.asarray(lams, dtype=np.float64)
    picks = (
        np.stack([choose(q, c, float(lam)) for lam in grid])
        if len(grid)
        else np.zeros((0, len(q)), np.intp)
    )
    return curve_from_picks(picks, grid, S_, C_)


def oracle_curve(S: npt.ArrayLike, C: npt.ArrayLike, lams: npt.ArrayLike | None = None) -> Curve:
    """The curve of a router that knows the true scores and costs: the best any router can do."""
    return curve(S, C, S, C, lams)


def single_model_points(S: npt.ArrayLike, C: npt.ArrayLike) -> FloatArray:
    """[m, 2] array of (mean cost, mean score) of always picking model m."""
    S_, C_ = as_matrix(S, "S"), as_matrix(C, "C")
    return np.column_stack([C_.mean(axis=0), S_.mean(axis=0)])


# ---------------------------------------------------------------------- hull and AIQ
def upper_hull(points: npt.ArrayLike) -> FloatArray:
    """The non-decreasing upper convex hull of (cost, score) points, as [h, 2] sorted by cost.

    It runs from the cheapest point (the best-scoring one among equally cheap points) to the
    best-scoring point (the cheapest among equally good ones); every point of the input lies on
    or below it. Points dearer than the best-scoring one are dominated and dropped.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        raise ValueError("the hull of no points is undefined")
    # Cheapest first; among equal costs the best score first, so it alone survives.
    pts = pts[np.lexsort((-pts[:, 1], pts[:, 0]))]
    best = pts[:, 1].max()
    top = pts[pts[:, 1] >= best][:, 0].min()
    pts = pts[pts[:, 0] <= top]
    # Plain floats: this loop runs once per bootstrap resample, and numpy scalars are slow here.
    hull: list[tuple[float, float]] = []
    for x, y in pts.tolist():
        if hull and x == hull[-1][0]:
            continue  # same cost, lower or equal score
        # Pop while the last hull point is on or below the chord from its predecessor to (x, y).
        while len(hull) >= 2:
            (ox, oy), (ax, ay) = hull[-2], hull[-1]
            if (ax - ox) * (y - oy) - (ay - oy) * (x - ox) < 0:
                break
            hull.pop()
        hull.append((x, y))
    out = np.asarray(hull)
    # The chain ends at the best-scoring point, so it is concave and non-decreasing; the running
    # maximum only guards against float noise.
    out[:, 1] = np.maximum.accumulate(out[:, 1])
    return out


def hull_value(hull: FloatArray, cost: npt.ArrayLike) -> FloatArray:
    """The hull as a function of cost: 0 left of its first point, flat right of its last."""
    x = np.asarray(cost, dtype=np.float64)
    inside = np.interp(x, hull[:, 0], hull[:, 1])
    return np.where(x < hull[0, 0], 0.0, inside)


def area_under_hull(hull: FloatArray, c_lo: float, c_hi: float) -> float:
    """Mean of the hull over [c_lo, c_hi] (its value at c_lo if the interval is a point)."""
    if c_hi <= c_lo:
        return float(hull_value(hull, c_lo))
    # Left of the hull's first point the hull is 0 and adds nothing to the integral.
    start = max(c_lo, float(hull[0, 0]))
    if start >= c_hi:
        return 0.0
    knots = hull[:, 0][(hull[:, 0] > start) & (hull[:, 0] < c_hi)]
    xs = np.concatenate([[start], knots, [c_hi]])
    area = np.trapezoid(np.interp(xs, hull[:, 0], hull[:, 1]), xs)
    return float(area / (c_hi - c_lo))


def cost_interval(S: npt.ArrayLike, C: npt.ArrayLike) -> tuple[float, float]:
    """[cheapest, dearest] single model's mean cost: the interval AIQ averages over."""
    singles = single_model_points(S, C)
    return float(singles[:, 0].min()), float(singles[:, 0].max())


def aiq(curve_or_points: Curve | npt.ArrayLike, S: npt.ArrayLike, C: npt.ArrayLike) -> float:
    """AIQ of a curve (or of extra (cost, score) points) together with the single-model points."""
    extra = curve_or_points.points() if isinstance(curve_or_points, Curve) else curve_or_points
    return aiq_of_points(np.asarray(extra, dtype=np.float64), single_model_points(S, C))


def aiq_of_points(extra: FloatArray, singles: FloatArray) -> float:
    """AIQ of extra (cost, score) points [k, 2] beside the single-model points [m, 2]."""
    pts = np.vstack([extra.reshape(-1, 2), singles])
    c_lo, c_hi = float(singles[:, 0].min()), float(singles[:, 0].max())
    return area_under_hull(upper_hull(pts), c_lo, c_hi)


def zero_aiq(S: npt.ArrayLike, C: npt.ArrayLike) -> float:
    """AIQ of the zero router: the hull of the single-model points alone."""
    return aiq(np.zeros((0, 2)), S, C)


def gap_recovered(aiq_router: float, aiq_zero: float, aiq_oracle: float) -> float:
    """Share of the zero-to-oracle AIQ gap a router closes (NaN when there is no gap)."""
    gap = aiq_oracle - aiq_zero
    if not gap > 1e-12:
        return float("nan")
    return (aiq_router - aiq_zero) / gap


# ---------------------------------------------------------------------- scenario rewards
def normalised_costs(C: npt.ArrayLike) -> FloatArray:
    """Cost min-max normalised over every (query, model) cell of C (all 0 if C is constant)."""
    C_ = as_matrix(C, "C")
    lo, hi = float(C_.min()), float(C_.max())
    return (C_ - lo) / (hi - lo) if hi > lo else np.zeros_like(C_)


def scenario_reward(
    picks: npt.ArrayLike, S: npt.ArrayLike, C: npt.ArrayLike, weights: tuple[float, float]
) -> float:
    """Mean over queries of w_q * S[i, m_i] - w_c * cost_norm[i, m_i] for picks m_i."""
    S_ = as_matrix(S, "S")
    p = np.asarray(picks, dtype=np.intp)
    rows = np.arange(S_.shape[0])
    w_q, w_c = weights
    return float((w_q * S_[rows, p] - w_c * normalised_costs(C)[rows, p]).mean())


def best_reward_on_curve(
    crv: Curve, S: npt.ArrayLike, C: npt.ArrayLike, weights: tuple[float, float]
) -> float:
    """The highest scenario reward any lam of the curve reaches (an upper view, not a deployable one)."""
    S_ = as_matrix(S, "S")
    w_q, w_c = weights
    norm = normalised_costs(C)
    rows = np.arange(S_.shape[0])[None, :]
    rewards = (w_q * S_[rows, crv.picks] - w_c * norm[rows, crv.picks]).mean(axis=1)
    return float(rewards.max())


def preset_lambda_for_truth(C: npt.ArrayLike, weights: tuple[float, float]) -> float:
    """The lam under which picking by true S and C maximises the scenario reward exactly.

    reward = w_q * S - w_c * (C - c_min) / R is, up to the factor w_q and a constant,
    S - (w_c / w_q) / R * C, so lam = (w_c / w_q) / R with R the cost range of the cells; this is
    the same mapping a router's `Calibration` applies to its own predicted costs.
    """
    C_ = as_matrix(C, "C")
    span = float(C_.max() - C_.min())
    w_q, w_c = weights
    return (w_c / w_q) / (span if span > 0 else 1.0)


# ---------------------------------------------------------------------- two-model view (RouteLLM)
@dataclass(frozen=True)
class TwoModelSummary:
    """RouteLLM's view of routing between a strong and a weak model.

    `pgr[k]` is the performance gap recovered when the k queries the router most prefers to send
    to the strong model go there (k = 0..n). APGR is the area under PGR against the share of
    strong calls; CPT(x) is the smallest share of strong calls reaching PGR >= x (NaN: never).
    """

    strong: str
    weak: str
    strong_share: FloatArray
    pgr: FloatArray
    apgr: float
    cpt50: float
    cpt80: float


def _switch_order(q_gain: FloatArray, c_gain: FloatArray) -> IntArray:
    """Queries in the order they move to the strong model as lam falls from +inf to 0.

    Under utility q - lam * c the strong model wins query i once q_gain_i > lam * c_gain_i, i.e.
    for lam < q_gain_i / c_gain_i when the strong model costs more. A strong model that is no
    dearer and no worse wins at every lam; one that is dearer and no better never does.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(
            c_gain > 0,
            q_gain / np.where(c_gain > 0, c_gain, 1.0),
            np.where(q_gain > 0, np.inf, np.where(q_gain == 0, 0.0, -np.inf)),
        )
    return np.argsort(-threshold, kind="stable")


def cpt(strong_share: FloatArray, pgr: FloatArray, target: float) -> float:
    """Smallest share of strong-model calls whose PGR reaches `target` (NaN if none does)."""
    reached = np.flatnonzero(pgr >= target - 1e-12)
    return float(strong_share[reached[0]]) if reached.size else float("nan")


def two_model_summary(
    quality: npt.ArrayLike,
    cost: npt.ArrayLike,
    S: npt.ArrayLike,
    C: npt.ArrayLike,
    models: tuple[str, str] = ("model0", "model1"),
) -> TwoModelSummary:
    """APGR and CPT(50%) / CPT(80%) of a router's estimates on two-model data.

    The strong model is the one with the higher mean true score (the dearer one on a tie). Unlike
    RouteLLM's script, which samples about ten thresholds, PGR is computed at every share k / n,
    so APGR is exact for the router's ordering.
    """
    S_, C_ = as_matrix(S, "S"), as_matrix(C, "C")
    q, c = as_matrix(quality, "quality"), as_matrix(cost, "cost")
    if S_.shape[1] != 2:
        raise ValueError(f"APGR / CPT need exactly two models, got {S_.shape[1]}")
    means = S_.mean(axis=0)
    strong = 0 if (means[0], C_[:, 0].mean()) > (means[1], C_[:, 1].mean()) else 1
    weak = 1 - strong
    order = _switch_order(q[:, strong] - q[:, weak], c[:, strong] - c[:, weak])
    n = S_.shape[0]
    gain = S_[order, strong] - S_[order, weak]
    routed = means[weak] + np.concatenate([[0.0], np.cumsum(gain)]) / n
    span = means[strong] - means[weak]
    pgr = (routed - means[weak]) / span if span > 1e-12 else np.full(n + 1, np.nan)
    share = np.arange(n + 1) / n
    return TwoModelSummary(
        strong=models[strong],
        weak=models[weak],
        strong_share=share,
        pgr=pgr,
        apgr=float(np.trapezoid(pgr, share)) if span > 1e-12 else float("nan"),
        cpt50=cpt(share, pgr, 0.5),
        cpt80=cpt(share, pgr, 0.8),
    )
