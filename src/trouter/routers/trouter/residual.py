"""TRouter's linear residual: an L2 logistic regression on the query with the mixture as offset.

    quality = sigmoid(logit(mixture) + [x, f] . w_m + b_m)

The task-type mixture gives every query of a task type the same estimate; this residual adds the
within-type, per-query signal a per-model logistic regression on the embedding finds (the
`linear` baseline), as a correction of the mixture rather than a replacement. It is fitted after
the ensemble's mixture, on the ensemble's averaged mixture, by the `linear` baseline's own solver
(`trouter.routers.linear.fit_logistic`, with the mixture's logit as a fixed offset). The penalty is chosen on the validation part's Brier score from `ALPHA_GRID`; if no
penalty beats the mixture alone there, there is no residual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from trouter.routers.linear import ALPHA_GRID as LINEAR_GRID
from trouter.routers.linear import Design, fit_logistic
from trouter.routers.trouter.network import NumpyOps, forward

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset
    from trouter.routers.trouter.training import Part

FloatMatrix = npt.NDArray[np.float64]
Coefficients = tuple[FloatMatrix, FloatMatrix]
#: Penalties tried, strongest first: the `linear` baseline's grid plus two stronger ones, since a
#: correction of a fitted mixture usually needs less freedom than a model on its own.
ALPHA_GRID = (1e-1, 3e-2, *LINEAR_GRID)

__all__ = [
    "ALPHA_GRID",
    "choose_alpha",
    "ensemble_quality",
    "fit_residual",
    "residual_inputs",
    "residual_quality",
    "routes_better",
]


def residual_inputs(x: FloatMatrix, f: FloatMatrix) -> FloatMatrix:
    """The residual's inputs: the query embedding and its standardised log length."""
    return np.hstack([x, f])


def residual_quality(mixture: FloatMatrix, z: FloatMatrix, coef: Coefficients) -> FloatMatrix:
    """The mixture's quality corrected by the residual on inputs `z` = [x, f]."""
    out: FloatMatrix = NumpyOps.sigmoid(NumpyOps.logit(mixture) + z @ coef[0] + coef[1])
    return out


def choose_alpha(
    z_train: FloatMatrix,
    mixture_train: FloatMatrix,
    y_train: FloatMatrix,
    z_val: FloatMatrix,
    mixture_val: FloatMatrix,
    y_val: FloatMatrix,
) -> tuple[float | None, dict[str, Any], Coefficients | None]:
    """(the penalty with the lowest validation Brier, or None if the mixture alone is better;
    every candidate's error; the chosen fit on the training part)."""
    design = Design(z_train)
    offset = NumpyOps.logit(mixture_train)
    errors = {"none": float(np.mean((mixture_val - y_val) ** 2))}
    best: tuple[float | None, Coefficients | None] = (None, None)
    best_error = errors["none"]
    previous: Coefficients | None = None
    for alpha in ALPHA_GRID:  # strongest first, each fit warm-started from the previous
        previous = fit_logistic(design, y_train, alpha, start=previous, offset=offset)
        error = float(np.mean((residual_quality(mixture_val, z_val, previous) - y_val) ** 2))
        errors[str(alpha)] = error
        if error < best_error - 1e-9:
            best, best_error = (alpha, previous), error
    return best[0], errors, best[1]


def fit_residual(
    train: Part,
    val: Part,
    mixture_train: FloatMatrix,
    mixture_val: FloatMatrix,
    data: RoutingDataset,
    refit: tuple[Part, Callable[[], FloatMatrix]] | None = None,
) -> tuple[Coefficients | None, dict[str, Any]]:
    """(the residual's coefficients or None, what was decided) for a mixture fitted on `train`.

    Kept only if a penalty beats the mixture's validation Brier score and the corrected
    estimates also route better on `val` (AIQ with the true costs, so that only the quality
    estimates differ): a lower Brier score alone does not guarantee better routing. `data` is
    the validation part's dataset (true scores and costs). With `refit` (all the data, and the
    mixture refitted on it), the kept residual is refitted there with the chosen penalty.
    """
    z_train, z_val = residual_inputs(train.x, train.f), residual_inputs(val.x, val.f)
    alpha, errors, coef = choose_alpha(z_train, mixture_train, train.y, z_val, mixture_val, val.y)
    check: dict[str, Any] = {"kind": "linear", "alpha": alpha, "alpha_errors": errors}
    if alpha is None or coef is None:
        return None, {**check, "kept": False}
    check.update(routes_better(residual_quality(mixture_val, z_val, coef), mixture_val, data))
    if not check["kept"]:
        return None, check
    if refit is not None:
        full, mixture_full = refit
        z_full = residual_inputs(full.x, full.f)
        offset = NumpyOps.logit(mixture_full())
        coef = fit_logistic(Design(z_full), full.y, alpha, start=coef, offset=offset)
    return coef, check


def routes_better(
    with_residual: FloatMatrix, without: FloatMatrix, data: RoutingDataset
) -> dict[str, Any]:
    """Does the residual route better on a validation part? AIQ of both quality estimates, each
    with the true costs, so only the quality estimates differ: a lower Brier score alone does not
    guarantee better routing (a weak per-query signal reshuffles close calls between models)."""
    from trouter.eval import metrics

    S, C = np.asarray(data.scores), np.asarray(data.costs)
    with_, without_ = (
        metrics.aiq(metrics.curve(quality, C, S, C), S, C) for quality in (with_residual, without)
    )
    return {"val_aiq_with": with_, "val_aiq_without": without_, "kept": bool(with_ > without_)}


def ensemble_quality(
    fixed: dict[str, FloatMatrix], members: list[dict[str, FloatMatrix]], part: Part
) -> FloatMatrix:
    """The members' averaged quality on a part, each with its MLP residual if it has one."""
    outs = [
        forward({**fixed, **m}, part.x, part.f, NumpyOps, residual="R1" in m)[1] for m in members
    ]
    return np.asarray(np.mean(outs, axis=0))
