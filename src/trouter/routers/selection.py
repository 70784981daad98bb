"""Hyper-parameter choice for the learned baselines, on a validation split and never on test.

Every learned baseline chooses its hyper-parameters (k, regularisation, hidden size, epochs, ...)
the same way:

- the caller's `val` set is used when it is given (it is never trained on, as the `Router.fit`
  contract says);
- otherwise a seeded, task-stratified `RoutingDataset.holdout` of the training set plays that
  role, and after the choice the router is refitted on the whole training set with the chosen
  values (for the neural routers including the chosen number of epochs);
- a training set too small to spare a holdout keeps the defaults.

The criterion is the Brier score (mean squared error of predicted quality against the true
score, a missing score counting as 0 as in DESIGN.md's metrics): it is what the routing rule
consumes (an expected score), and it is defined for the fractional scores of graded tasks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings

#: Fraction of the training set held out when no validation set is given.
HOLDOUT_FRACTION = 0.15
#: Below this many training queries no holdout is carved; the defaults are used.
MIN_QUERIES_FOR_HOLDOUT = 60

C = TypeVar("C", bound=Hashable)


@dataclass(frozen=True)
class Fold:
    """The data a router learns from and the data it chooses hyper-parameters on.

    `carved` says the validation part was taken out of the training set, in which case the
    router refits on `full_*` once the hyper-parameters are chosen. `val` is None when there is
    nothing to validate on (a tiny training set and no validation set).
    """

    train: RoutingDataset
    x_train: Embeddings
    val: RoutingDataset | None
    x_val: Embeddings | None
    full: RoutingDataset
    x_full: Embeddings
    carved: bool

    @property
    def source(self) -> str:
        """Where the hyper-parameters were chosen: "val", "holdout" or "defaults"."""
        if self.val is None:
            return "defaults"
        return "holdout" if self.carved else "val"


def make_fold(
    train: RoutingDataset,
    x: Embeddings,
    val: RoutingDataset | None,
    x_val: Embeddings | None,
    seed: int,
) -> Fold:
    """The validation plan for one `fit` call (see the module docstring)."""
    if val is not None and x_val is not None and val.n_queries > 0:
        return Fold(train, x, val, x_val, train, x, carved=False)
    if train.n_queries < MIN_QUERIES_FOR_HOLDOUT:
        return Fold(train, x, None, None, train, x, carved=False)
    rest, held = train.holdout(HOLDOUT_FRACTION, seed=seed)
    position = {qid: i for i, qid in enumerate(train.query_ids)}
    rest_rows = np.asarray([position[q] for q in rest.query_ids], dtype=np.intp)
    held_rows = np.asarray([position[q] for q in held.query_ids], dtype=np.intp)
    if len(held_rows) == 0 or len(rest_rows) == 0:
        return Fold(train, x, None, None, train, x, carved=False)
    return Fold(rest, x[rest_rows], held, x[held_rows], train, x, carved=True)


def brier(quality: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]) -> float:
    """Mean squared error of predicted quality against true scores (missing scores as 0)."""
    return float(np.mean((np.asarray(quality, dtype=np.float64) - scores) ** 2))


@dataclass(frozen=True)
class Selection:
    """The outcome of a grid search: the chosen candidate and every candidate's error."""

    best: Any
    errors: dict[str, float]
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"best": self.best, "errors": self.errors, "source": self.source}


def select(
    candidates: Sequence[C],
    evaluate: Callable[[C], float],
    source: str,
) -> Selection:
    """The candidate with the lowest validation error (the first one on ties)."""
    errors: dict[str, float] = {}
    best: C | None = None
    best_error = math.inf
    for candidate in candidates:
        error = float(evaluate(candidate))
        errors[str(candidate)] = error
        if error < best_error:
            best, best_error = candidate, error
    if best is None:  # every candidate diverged (NaN error): keep the first, the default
        best = candidates[0]
    return Selection(best, errors, source)
