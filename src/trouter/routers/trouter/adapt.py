"""Adapting a fitted TRouter to outcomes observed on live traffic (feedback).

A router trained on one set of queries (synthetic, or another team's benchmark) meets traffic on
which the models do better or worse than it learnt: the shift is often in the outcomes per task
type, not in the queries (RESULTS-trouter.md: llmrouter_9models). Given logged queries with the
scores some models earned on them, `fit_adaptation` learns a logit shift of each model's quality
per task type:

    quality'_m = sigmoid(logit(quality_m) + q(t|x) . B_m)

a logistic regression per model on the queries' task-type probabilities, with the current
estimate's logit as a fixed offset and a Gaussian prior on each shift (no intercept: a task type
moves only as far as the feedback it holds, weighted by q(t|x), asks), fitted on the queries that
model was scored on only (feedback is often partial: a gateway sees the routed model's answer
only). Two ways of choosing the prior's precision compete:

- shared: one precision for all models, chosen by K-fold cross-validation on the feedback (Brier
  score of the held-out scores);
- per model: each model's own precision, or no shift at all, whichever its feedback's (Laplace)
  evidence favours, so one model's real shift does not let the others fit noise.

The one with the larger cross-validated gain is made, and only if that gain is clearly above
noise (`MIN_Z` standard errors, the scores of one query counted as one piece of evidence) and
not negligible (at least `MIN_RELATIVE_GAIN` of the estimates' own Brier score on the feedback);
otherwise nothing changes. A model with fewer than `MIN_SCORES` scores is never corrected. On
validation folds without a shift (benchmarks/RESULTS-trouter.md) weaker rules moved estimates on
noise and routed worse, most of all on routed feedback, where a model is only scored on the
queries the router already sent it, and on small rounds of feedback. Corrections compose: a
second `adapt` with new feedback adds its own. Feedback that changed nothing can be passed again
with the next round, so small rounds add up; `trouter adapt --db` does, with the bar raised as
the pooled feedback grows (`sequential_z`): looking again and again at growing data acts on
noise more often than one look does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from trouter.errors import DataError
from trouter.routers.trouter.network import NumpyOps

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset

FloatMatrix = npt.NDArray[np.float64]

#: Prior precisions tried, strongest first: 1 / the prior variance of a task type's logit shift,
#: roughly four times the number of feedback scores the router's estimate counts as. The weakest
#: allows shifts of a few logits, no more: feedback routed by the router itself is biased.
ADAPT_GRID = (100.0, 30.0, 10.0, 3.0, 1.0, 0.3)
FOLDS = 5
#: Fewer observed scores than this for a model: its estimates are left as they are. With 10, a
#: few models' 11-22 scores (one random model scored per query) passed the gate by chance and
#: moved them by up to 2.4 logits, and the gap recovered fell from 0.18 to 0.005.
MIN_SCORES = 30
#: A correction is made only if its cross-validated gain is at least this many standard errors:
#: on validation folds without any shift, weaker rules moved estimates and routed worse.
MIN_Z = 2.0
#: A correction is kept only if its cross-validated Brier gain is also at least this fraction of
#: the Brier score of the estimates as they are, on the same feedback scores: significance alone
#: grows with the feedback, so a large round made a correction of a real but negligible effect
#: (a gain of 4e-6 at 2.3 standard errors: 0.002% of the Brier score). On the validation folds of
#: benchmarks/trouter_feedback.py (--protocol validation, MiniLM; every model's, the routed
#: model's or a random model's score) the 22 corrections that cleared `MIN_Z` with the made-up
#: shift (--shift) gained 0.75% to 6.4% of the Brier score; the smallest (routellm_evals, every
#: model's score) is one of the cuts RESULTS-trouter.md shows gaining at least +0.06 of gap
#: recovered each. A 1% floor would have dropped it; 0.5% keeps them all. Without a shift nothing
#: cleared `MIN_Z` there. With pass / fail scores (Brier about 0.2) 0.5% is a gain of 0.001: a
#: bias of 0.03 on every estimate removed, or of 0.1 on a tenth of them.
MIN_RELATIVE_GAIN = 0.005

__all__ = [
    "ADAPT_GRID",
    "MIN_RELATIVE_GAIN",
    "MIN_SCORES",
    "MIN_Z",
    "Adaptation",
    "evidence_shift",
    "feedback_scores",
    "fit_adaptation",
    "fit_shift",
    "is_look",
    "sequential_z",
]


def sequential_z(min_z: float, sizes: Sequence[int]) -> float:
    """The standard errors a correction needs at the latest of several looks at feedback that
    keeps growing because the earlier looks changed nothing. `sizes` is the feedback's size
    (queries) at each look, first to latest; one look needs `min_z` itself.

    The false-alarm rate a of one look at `min_z` is spent by information, not by the count of
    looks: by the look at n queries at most a * (2 - n_1 / n) is spent (n_1: the first look's
    size). So however many looks there are, the chance that one of them acts on noise stays
    within 2a; a look after the feedback doubled may spend up to a / 2, and a look at no new
    feedback spends nothing (no gain clears it). For min_z=2 and rounds of equal size: 2.0,
    2.28, 2.67, 2.89, 3.05, ..., 4.3 at the 52nd; a bar that rose with every look (the rule
    before this one) needed 8.5 there, however much feedback had arrived.
    """
    from scipy.stats import norm

    n = np.asarray(sizes, dtype=np.float64)
    if not len(n) or n[0] <= 0 or np.any(np.diff(n) < 0):
        raise ValueError(f"sizes must be positive and never shrink, got {list(sizes)}")
    if len(n) == 1:
        return min_z
    rate = norm.sf(min_z) * n[0] * (1 / n[-2] - 1 / n[-1])
    return float(norm.isf(rate)) if rate > 0 else math.inf


def is_look(check: dict[str, object]) -> bool:
    """Whether an adaptation (its `check` record) looked at its feedback in the sense
    `sequential_z` counts: some model had the `MIN_SCORES` scores a correction needs. A read
    that could not have acted spends none of the false-alarm budget."""
    scores = check.get("scores")
    return isinstance(scores, list) and max(scores, default=0) >= MIN_SCORES


@dataclass(frozen=True)
class Adaptation:
    """A logit shift per task type and model, `coef` [T, M]; `check` says what was decided."""

    coef: FloatMatrix
    check: dict[str, object]

    def apply(self, quality: FloatMatrix, types: FloatMatrix) -> FloatMatrix:
        """`quality` [n, M] corrected, given the queries' task-type probabilities [n, T]; the
        models without a correction keep their estimates exactly."""
        out = quality.copy()
        m = np.any(self.coef != 0, axis=0)
        out[:, m] = _corrected(quality[:, m], types, self.coef[:, m])
        return out


def fit_adaptation(
    types: FloatMatrix,
    quality: FloatMatrix,
    scores: FloatMatrix,
    seed: int,
    min_z: float = MIN_Z,
    *,
    min_gain: float = MIN_RELATIVE_GAIN,
) -> Adaptation:
    """The correction of `quality` [n, M] that the observed `scores` [n, M] (NaN: not scored)
    ask for, on inputs `types` [n, T], if its cross-validated gain is `min_z` standard errors
    above zero and at least `min_gain` of the estimates' Brier score on these scores. Models
    with too few scores get zero weights."""
    n, m = quality.shape
    coef = np.zeros((types.shape[1], m))
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    seen = ~np.isnan(scores)
    told = [j for j in range(m) if seen[:, j].sum() >= MIN_SCORES]
    check: dict[str, object] = {
        "queries": n,
        "scores": seen.sum(axis=0).tolist(),
        "min_z": min_z,
        "min_gain": min_gain,
    }
    if not told:
        return Adaptation(coef, {**check, "alpha": None, "models": []})
    rows = {j: seen[:, j] for j in told}
    parts = [(types[r], quality[r, j], scores[r, j], folds[r]) for j, r in rows.items()]
    shared = np.vstack([_cv_errors(*part) for part in parts])
    own = np.concatenate([_cv_errors_per_model(*part) for part in parts])
    query_of_row = np.concatenate([np.flatnonzero(r) for r in rows.values()])
    alpha, gain = _choose(shared, own, query_of_row, min_z, min_gain)
    check.update(alpha=alpha, cv_gain=gain)
    for j, (x, base, y, _) in zip(told, parts, strict=True):
        if alpha == "per model":
            coef[:, j] = evidence_shift(x, NumpyOps.logit(base), y)
        elif alpha is not None:
            coef[:, j] = fit_shift(x, NumpyOps.logit(base), y, float(alpha))
    check["models"] = [j for j in told if np.any(coef[:, j] != 0)]
    return Adaptation(coef, check)


def _choose(
    shared: FloatMatrix,
    own: FloatMatrix,
    query_of_row: npt.NDArray[np.intp],
    min_z: float,
    min_gain: float = MIN_RELATIVE_GAIN,
) -> tuple[float | str | None, dict[str, float]]:
    """(the shared prior precision with the largest cross-validated gain in squared error over the
    estimates as they are, or "per model" if the per-model precisions gain more, if that gain is
    at least `min_z` standard errors and `min_gain` of the estimates' own Brier score; else
    None), with the gain, its standard error, that Brier score and the floor it sets.
    `shared` [rows, 1 + len(ADAPT_GRID)] is `_cv_errors`' table, `own` [rows]
    `_cv_errors_per_model`'s errors, `query_of_row` the query each row scores."""
    gains = shared[:, :1] - np.column_stack([shared[:, 1:], own])
    mean = gains.mean(axis=0)
    k = int(np.argmax(mean))
    se = _clustered_se(gains[:, k], query_of_row)
    baseline = float(shared[:, 0].mean())
    verdict = {
        "brier_gain": float(mean[k]),
        "standard_error": se,
        "baseline_brier": baseline,
        "floor": min_gain * baseline,
    }
    if not (mean[k] > min_z * se and mean[k] > 0 and mean[k] >= verdict["floor"]):
        return None, verdict
    return (ADAPT_GRID[k] if k < len(ADAPT_GRID) else "per model"), verdict


def _clustered_se(gains: FloatMatrix, cluster: npt.NDArray[np.intp]) -> float:
    """The standard error of the mean of `gains`, rows of one cluster (query) counted together:
    one query's scores from several models share its difficulty, so they are not independent
    pieces of evidence."""
    labels, inverse = np.unique(cluster, return_inverse=True)
    if len(labels) < 2:
        return float("inf")
    n, mean = len(gains), float(gains.mean())
    sums = np.bincount(inverse, weights=gains)
    counts = np.bincount(inverse)
    q = len(labels)
    return float(np.sqrt(q / (q - 1) * np.sum((sums - counts * mean) ** 2)) / n)


def _cv_errors(
    x: FloatMatrix, base: FloatMatrix, y: FloatMatrix, folds: npt.NDArray[np.intp]
) -> FloatMatrix:
    """Squared errors [rows, 1 + len(ADAPT_GRID)]: of the estimates as they are, then of each
    penalty's correction fitted on the other folds."""
    out = np.empty((len(y), 1 + len(ADAPT_GRID)))
    out[:, 0] = (base - y) ** 2
    for k in np.unique(folds):
        fit, held = folds != k, folds == k
        offset = NumpyOps.logit(base[fit])
        w = None
        for i, alpha in enumerate(ADAPT_GRID):  # strongest first, each warm-started
            w = fit_shift(x[fit], offset, y[fit], alpha, start=w)
            out[held, 1 + i] = (_corrected(base[held], x[held], w) - y[held]) ** 2
    return out


def _cv_errors_per_model(
    x: FloatMatrix, base: FloatMatrix, y: FloatMatrix, folds: npt.NDArray[np.intp]
) -> FloatMatrix:
    """Squared errors [rows] of `evidence_shift`'s correction fitted on the other folds (those of
    the estimates as they are are `_cv_errors`' first column)."""
    out = np.empty(len(y))
    for k in np.unique(folds):
        fit, held = folds != k, folds == k
        w = evidence_shift(x[fit], NumpyOps.logit(base[fit]), y[fit])
        out[held] = (_corrected(base[held], x[held], w) - y[held]) ** 2
    return out


def _corrected(base: FloatMatrix, x: FloatMatrix, w: FloatMatrix) -> FloatMatrix:
    """Estimates `base` with the logit shift `x @ w`."""
    return NumpyOps.sigmoid(NumpyOps.logit(base) + x @ w)


def evidence_shift(x: FloatMatrix, offset: FloatMatrix, y: FloatMatrix) -> FloatMatrix:
    """The shift w [T] under the prior precision in ADAPT_GRID, or none (zeros), with the largest
    Laplace-approximated evidence p(y | precision): a model whose feedback does not clearly ask
    for a shift gets none."""
    best, chosen = -_nll(offset, y), np.zeros(x.shape[1])
    w = None
    for alpha in ADAPT_GRID:  # strongest first, each warm-started
        w = fit_shift(x, offset, y, alpha, start=w)
        z = offset + x @ w
        p = NumpyOps.sigmoid(z)
        hessian = (x * (p * (1 - p))[:, None]).T @ x + alpha * np.eye(x.shape[1])
        evidence = (
            -_nll(z, y)
            - 0.5 * alpha * float(w @ w)
            + 0.5 * x.shape[1] * np.log(alpha)
            - 0.5 * np.linalg.slogdet(hessian)[1]
        )
        if evidence > best:
            best, chosen = evidence, w
    return chosen


def _nll(z: FloatMatrix, y: FloatMatrix) -> float:
    """Binary cross-entropy of logits `z` against scores `y`, summed."""
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def fit_shift(
    x: FloatMatrix,
    offset: FloatMatrix,
    y: FloatMatrix,
    alpha: float,
    start: FloatMatrix | None = None,
) -> FloatMatrix:
    """w [T] minimising sum BCE(sigmoid(offset + x w), y) + (alpha / 2) |w|^2 (L-BFGS)."""
    from scipy.optimize import minimize

    def loss_and_grad(w: FloatMatrix) -> tuple[float, FloatMatrix]:
        z = offset + x @ w
        value = _nll(z, y) + 0.5 * alpha * float(w @ w)
        return value, x.T @ (NumpyOps.sigmoid(z) - y) + alpha * w

    w0 = np.zeros(x.shape[1]) if start is None else start
    result = minimize(loss_and_grad, w0, jac=True, method="L-BFGS-B")
    return np.asarray(result.x, dtype=np.float64)


def feedback_scores(feedback: RoutingDataset, models: tuple[str, ...]) -> FloatMatrix:
    """The feedback's scores [n, len(models)] in `models`' order, NaN where none was recorded."""
    unknown = [m for m in feedback.models if m not in models]
    if unknown:
        raise DataError(
            f"{feedback.name}: feedback for models the router does not route to: "
            f"{', '.join(unknown)}; its pool is {', '.join(models)}"
        )
    raw = feedback.scores_raw
    scores = np.full((feedback.n_queries, len(models)), np.nan)
    for j, name in enumerate(feedback.models):
        scores[:, models.index(name)] = raw[:, j]
    if not np.any(~np.isnan(scores)):
        raise DataError(f"{feedback.name}: the feedback has no scores; nothing to adapt to")
    return scores
