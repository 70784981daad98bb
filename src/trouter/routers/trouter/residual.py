"""TRouter's linear residuals: L2 logistic regressions on the query with the mixture as offset.

    quality = sigmoid(logit(mixture) + [x, f] . w_m + b_m)

The task-type mixture gives every query of a task type the same estimate; this residual adds the
within-type, per-query signal a per-model logistic regression on the embedding finds (the
`linear` baseline), as a correction of the mixture rather than a replacement. It is fitted after
the ensemble's mixture, on the ensemble's averaged mixture, by the `linear` baseline's own solver
(`trouter.routers.linear.fit_logistic`, with the mixture's logit as a fixed offset). The penalty
is chosen on the validation part's Brier score from `ALPHA_GRID`; if no penalty beats the mixture
alone there, or the correction does not route better there, there is no residual.

The `question` view adds a second correction of the same kind, on top of the first and only for
the queries a question was cut from (see `views`): its inputs are the question's embedding
centred on its task types' mean question, so that it tells queries of one type apart and leaves
the type's level, and every other query, as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from trouter.routers.linear import ALPHA_GRID as LINEAR_GRID
from trouter.routers.linear import Design, fit_logistic
from trouter.routers.trouter.network import NumpyOps, forward
from trouter.routers.trouter.training import without_residual
from trouter.routers.trouter.views import has_question

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
    "Fitted",
    "Inputs",
    "Residuals",
    "Stage",
    "choose_alpha",
    "ensemble_forward",
    "fit_residual",
    "fit_residuals",
    "mixture_quality",
    "residual_inputs",
    "residual_quality",
    "routes_better",
    "types_and_quality",
]


def residual_inputs(x: FloatMatrix, f: FloatMatrix) -> FloatMatrix:
    """The residual's inputs: the query embedding and its standardised log length."""
    return np.hstack([x, f])


def residual_quality(mixture: FloatMatrix, z: FloatMatrix, coef: Coefficients) -> FloatMatrix:
    """The mixture's quality corrected by the residual on inputs `z` = [x, f]."""
    out: FloatMatrix = NumpyOps.sigmoid(NumpyOps.logit(mixture) + z @ coef[0] + coef[1])
    return out


@dataclass(frozen=True)
class Inputs:
    """What one linear correction is fitted on or applied to: `base` [n, M], the quality it
    corrects, on every query; `rows` [n], the queries it applies to; `z` [rows, e], its inputs on
    those rows; `y` [n, M], the true scores (for fitting)."""

    z: FloatMatrix
    base: FloatMatrix
    y: FloatMatrix
    rows: npt.NDArray[np.bool_]

    @classmethod
    def every_row(cls, z: FloatMatrix, base: FloatMatrix, y: FloatMatrix) -> Inputs:
        return cls(z, base, y, np.ones(len(base), dtype=bool))

    def corrected(self, coef: Coefficients) -> FloatMatrix:
        """`base` with the correction applied on `rows`."""
        out = self.base.copy()
        out[self.rows] = residual_quality(self.base[self.rows], self.z, coef)
        return out


def choose_alpha(
    train: Inputs, val: Inputs
) -> tuple[float | None, dict[str, Any], Coefficients | None]:
    """(the penalty with the lowest validation Brier, or None if the uncorrected quality is
    better; every candidate's error; the chosen fit on the training part)."""
    design = Design(train.z)
    offset = NumpyOps.logit(train.base[train.rows])
    y_train, base_val, y_val = train.y[train.rows], val.base[val.rows], val.y[val.rows]
    errors = {"none": float(np.mean((base_val - y_val) ** 2))}
    best: tuple[float | None, Coefficients | None] = (None, None)
    best_error = errors["none"]
    previous: Coefficients | None = None
    for alpha in ALPHA_GRID:  # strongest first, each fit warm-started from the previous
        previous = fit_logistic(design, y_train, alpha, start=previous, offset=offset)
        error = float(np.mean((residual_quality(base_val, val.z, previous) - y_val) ** 2))
        errors[str(alpha)] = error
        if error < best_error - 1e-9:
            best, best_error = (alpha, previous), error
    return best[0], errors, best[1]


@dataclass(frozen=True)
class Fitted:
    """A correction's outcome: the coefficients to use (None: not kept), those fitted on the
    training part only (to build on before a refit), and what was decided."""

    coef: Coefficients | None
    coef_on_train: Coefficients | None
    check: dict[str, Any]


def fit_residual(
    train: Inputs,
    val: Inputs,
    data: RoutingDataset,
    refit: Callable[[], Inputs] | None = None,
) -> Fitted:
    """Fit a linear correction of a quality estimate on `train`, judged on `val`.

    Kept only if a penalty beats the uncorrected validation Brier score and the corrected
    estimates also route better on `val` (AIQ with the true costs, so that only the quality
    estimates differ): a lower Brier score alone does not guarantee better routing. `data` is
    the validation part's dataset (true scores and costs). With `refit` (the inputs on all the
    data, the base refitted there), a kept correction is refitted with the chosen penalty.
    """
    alpha, errors, coef = choose_alpha(train, val)
    check: dict[str, Any] = {"kind": "linear", "alpha": alpha, "alpha_errors": errors}
    if alpha is None or coef is None:
        return Fitted(None, None, {**check, "kept": False})
    check.update(routes_better(val.corrected(coef), val.base, data))
    if not check["kept"]:
        return Fitted(None, None, check)
    final = coef
    if refit is not None:
        full = refit()
        offset = NumpyOps.logit(full.base[full.rows])
        final = fit_logistic(Design(full.z), full.y[full.rows], alpha, start=coef, offset=offset)
    return Fitted(final, coef, check)


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


Members = list[dict[str, FloatMatrix]]


def ensemble_forward(
    fixed: dict[str, FloatMatrix], members: Members, x: FloatMatrix, f: FloatMatrix
) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix | None]:
    """(q(t|x), quality, cost head output or None) averaged over the members, each with its MLP
    residual if it has one."""
    outs = [forward({**fixed, **m}, x, f, NumpyOps, residual="R1" in m) for m in members]
    q, quality = np.mean([o[0] for o in outs], axis=0), np.mean([o[1] for o in outs], axis=0)
    head = None if outs[0][2] is None else np.mean([o[2] for o in outs], axis=0)
    return q, quality, head


def types_and_quality(
    fixed: dict[str, FloatMatrix], members: Members, part: Part, coef: Coefficients | None = None
) -> tuple[FloatMatrix, FloatMatrix]:
    """(q(t|x), quality) averaged over the members on a part (`ensemble_forward`), the quality
    corrected by the linear residual `coef` if given."""
    q, quality, _ = ensemble_forward(fixed, members, part.x, part.f)
    if coef is not None:
        quality = residual_quality(quality, residual_inputs(part.x, part.f), coef)
    return q, quality


def mixture_quality(fixed: dict[str, FloatMatrix], members: Members, part: Part) -> FloatMatrix:
    """The members' averaged task-type mixture quality on a part, without any residual."""
    return types_and_quality(fixed, [without_residual(m) for m in members], part)[1]


@dataclass(frozen=True)
class Stage:
    """What the linear residuals are fitted on: `members` trained on `train` only (judged on
    `val`, whose dataset `data` holds the true scores and costs) and `refitted`, the members the
    router keeps, trained on `full` when the validation part was carved from it (else None: no
    refit)."""

    fixed: dict[str, FloatMatrix]
    members: Members
    refitted: Members
    train: Part
    val: Part
    data: RoutingDataset
    full: Part | None


@dataclass(frozen=True)
class Residuals:
    """The linear residual and the question residual (each None when not fitted or not kept),
    the task types' mean questions the latter is centred on, and what was decided."""

    main: Fitted | None
    question: Fitted | None
    question_means: FloatMatrix | None
    check: dict[str, Any]


def fit_residuals(stage: Stage, linear: bool, question: bool) -> Residuals:
    """Fit the linear residual on the members' mixture (`linear`), then the question residual
    on top of it (`question`, see the module docstring)."""
    main = fit_main_residual(stage) if linear else None
    check = {} if main is None else dict(main.check)
    if not question:
        return Residuals(main, None, None, check)
    fitted, means, check["question"] = fit_question_residual(stage, main)
    return Residuals(main, fitted, means, check)


def fit_main_residual(stage: Stage) -> Fitted:
    """The linear residual on [x, log length], the mixture (no MLP residual) as offset."""

    def inputs(members: Members, part: Part) -> Inputs:
        mixture = mixture_quality(stage.fixed, members, part)
        return Inputs.every_row(residual_inputs(part.x, part.f), mixture, part.y)

    full = stage.full
    return fit_residual(
        inputs(stage.members, stage.train),
        inputs(stage.members, stage.val),
        stage.data,
        refit=None if full is None else lambda: inputs(stage.refitted, full),
    )


def fit_question_residual(
    stage: Stage, main: Fitted | None
) -> tuple[Fitted | None, FloatMatrix | None, dict[str, Any]]:
    """(the question residual or None, the task types' mean questions, what was decided), on top
    of the members' quality corrected by the linear residual `main` (if any)."""

    def inputs(
        members: Members, part: Part, coef: Coefficients | None, means: FloatMatrix | None = None
    ) -> tuple[Inputs, FloatMatrix]:
        q, base = types_and_quality(stage.fixed, members, part, coef)
        rows = has_question(part.extra)
        if means is None:  # each type's mean question, weighted by q(t|x)
            w = q[rows]
            means = (w.T @ part.extra[rows]) / np.maximum(w.sum(axis=0), 1e-9)[:, None]
        return Inputs((part.extra - q @ means)[rows], base, part.y, rows), means

    on_train = None if main is None else main.coef_on_train
    train, means = inputs(stage.members, stage.train, on_train)
    val, _ = inputs(stage.members, stage.val, on_train, means)
    if train.rows.sum() < 2 or not val.rows.any():
        why = "too few training or validation queries had boilerplate"
        return None, None, {"kept": False, "why": why}
    refit: Callable[[], Inputs] | None = None
    if stage.full is not None:
        full, final = stage.full, None if main is None else main.coef

        def refit() -> Inputs:
            nonlocal means
            everything, means = inputs(stage.refitted, full, final)
            return everything

    fitted = fit_residual(train, val, stage.data, refit=refit)
    if fitted.coef is None:
        return None, None, fitted.check
    return fitted, means, fitted.check
