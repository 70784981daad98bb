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
only). One prior precision for all models is chosen by K-fold cross-validation on the feedback
(Brier score of the held-out scores), and the correction is made only if its gain there is
clearly above noise (`MIN_Z` standard errors): on validation folds without a shift
(benchmarks/RESULTS-trouter.md), a per-model choice or a weaker rule moved estimates on noise and
routed worse, most of all on routed feedback, where a model is only scored on the queries the
router already sent it. Corrections compose: a second `adapt` with new feedback adds its own.
"""

from __future__ import annotations

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
#: Fewer observed scores than this for a model: its estimates are left as they are.
MIN_SCORES = 10
#: A correction is made only if its cross-validated gain is at least this many standard errors:
#: on validation folds without any shift, weaker rules moved estimates and routed worse.
MIN_Z = 2.0

__all__ = [
    "ADAPT_GRID",
    "MIN_SCORES",
    "MIN_Z",
    "Adaptation",
    "feedback_scores",
    "fit_adaptation",
    "fit_shift",
]


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
        out[:, m] = NumpyOps.sigmoid(NumpyOps.logit(quality[:, m]) + types @ self.coef[:, m])
        return out


def fit_adaptation(
    types: FloatMatrix,
    quality: FloatMatrix,
    scores: FloatMatrix,
    seed: int,
    min_z: float = MIN_Z,
) -> Adaptation:
    """The correction of `quality` [n, M] that the observed `scores` [n, M] (NaN: not scored)
    ask for, on inputs `types` [n, T], if its cross-validated gain is `min_z` standard errors
    above zero. Models with too few scores get zero weights."""
    n, m = quality.shape
    coef = np.zeros((types.shape[1], m))
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    seen = ~np.isnan(scores)
    told = [j for j in range(m) if seen[:, j].sum() >= MIN_SCORES]
    check: dict[str, object] = {"queries": n, "scores": seen.sum(axis=0).tolist()}
    if not told:
        return Adaptation(coef, {**check, "alpha": None, "models": []})
    rows = {j: seen[:, j] for j in told}
    errors = [_cv_errors(types[r], quality[r, j], scores[r, j], folds[r]) for j, r in rows.items()]
    alpha, gain = _choose(np.vstack(errors), min_z)
    check.update(alpha=alpha, models=told if alpha is not None else [], cv_gain=gain)
    if alpha is not None:
        for j, r in rows.items():
            coef[:, j] = fit_shift(types[r], NumpyOps.logit(quality[r, j]), scores[r, j], alpha)
    return Adaptation(coef, check)


def _choose(errors: FloatMatrix, min_z: float) -> tuple[float | None, dict[str, float]]:
    """(the prior precision with the largest cross-validated gain in squared error over the
    estimates as they are, if that gain is at least `min_z` standard errors, else None;
    the gain and its standard error)."""
    gain = errors[:, :1] - errors[:, 1:]  # per score, per prior precision
    mean = gain.mean(axis=0)
    k = int(np.argmax(mean))
    se = float(gain[:, k].std() / np.sqrt(len(gain)))
    verdict = {"brier_gain": float(mean[k]), "standard_error": se}
    return (ADAPT_GRID[k] if mean[k] > min_z * se and mean[k] > 0 else None), verdict


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
            corrected = NumpyOps.sigmoid(NumpyOps.logit(base[held]) + x[held] @ w)
            out[held, 1 + i] = (corrected - y[held]) ** 2
    return out


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
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * alpha * w @ w)
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
