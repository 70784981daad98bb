"""Adapting a fitted TRouter to outcomes observed on live traffic (feedback).

A router trained on one set of queries (synthetic, or another team's benchmark) meets traffic on
which the models do better or worse than it learnt: the shift is often in the outcomes per task
type, not in the queries (RESULTS-trouter.md: llmrouter_9models). Given logged queries with the
scores some models earned on them, `fit_adaptation` learns a correction of each model's quality
per task type:

    quality' = sigmoid(logit(quality) + q(t|x) . B_m + b_m)

a logistic regression per model on the query's task-type probabilities, with the current
estimate's logit as a fixed offset and a Gaussian prior on each type's logit shift B_t (no
intercept: the shifts are the whole correction, and a type moves only as far as the feedback
queries it holds, weighted by q(t|x), ask for), on the queries that model was scored on only (feedback is often
partial: a gateway only sees the routed model's answer). The prior's precision is chosen by K-fold
cross-validation on the feedback itself (Brier score of the held-out scores); if none beats the
router as it is, that model gets no correction. Corrections compose: a second `adapt` with new
feedback adds its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trouter.routers.trouter.network import NumpyOps

FloatMatrix = npt.NDArray[np.float64]

#: Prior precisions tried, strongest first: 1 / the prior variance of a task type's logit shift,
#: roughly four times the number of feedback scores the router's estimate counts as. The weakest
#: allows shifts of a few logits, no more: feedback routed by the router itself is biased.
ADAPT_GRID = (100.0, 30.0, 10.0, 3.0, 1.0, 0.3)
FOLDS = 5
#: Fewer observed scores than this for a model: its estimates are left as they are.
MIN_SCORES = 10

__all__ = ["ADAPT_GRID", "Adaptation", "fit_adaptation", "fit_shift"]


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
    types: FloatMatrix, quality: FloatMatrix, scores: FloatMatrix, seed: int
) -> Adaptation:
    """The correction of `quality` [n, M] that the observed `scores` [n, M] (NaN: not scored)
    ask for, on inputs `types` [n, T]. Models with no useful correction get zero weights."""
    n, m = quality.shape
    coef = np.zeros((types.shape[1], m))
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    per_model: dict[str, object] = {}
    for j in range(m):
        seen = ~np.isnan(scores[:, j])
        if seen.sum() < MIN_SCORES:
            per_model[str(j)] = {"scores": int(seen.sum()), "alpha": None}
            continue
        x, base, y = types[seen], quality[seen, j], scores[seen, j]
        alpha, errors = _choose_alpha(x, base, y, folds[seen])
        per_model[str(j)] = {"scores": int(seen.sum()), "alpha": alpha, "errors": errors}
        if alpha is not None:
            coef[:, j] = fit_shift(x, NumpyOps.logit(base), y, alpha)
    return Adaptation(coef, {"queries": n, "models": per_model})


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


def _choose_alpha(
    x: FloatMatrix, base: FloatMatrix, y: FloatMatrix, folds: npt.NDArray[np.intp]
) -> tuple[float | None, dict[str, float]]:
    """(the penalty with the lowest cross-validated Brier score, or None if the estimates as
    they are score better; each candidate's error)."""
    errors = {"none": float(np.mean((base - y) ** 2))}
    totals = dict.fromkeys(ADAPT_GRID, 0.0)
    for k in np.unique(folds):
        fit, held = folds != k, folds == k
        offset = NumpyOps.logit(base[fit])
        w = None
        for alpha in ADAPT_GRID:  # strongest first, each warm-started from the previous
            w = fit_shift(x[fit], offset, y[fit], alpha, start=w)
            corrected = NumpyOps.sigmoid(NumpyOps.logit(base[held]) + x[held] @ w)
            totals[alpha] += float(np.sum((corrected - y[held]) ** 2))
    errors.update({str(a): t / len(y) for a, t in totals.items()})
    best = min(ADAPT_GRID, key=lambda a: totals[a])
    return (best if errors[str(best)] < errors["none"] - 1e-9 else None), errors
