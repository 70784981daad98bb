"""`LearnedRouter`: what the learned baselines (kNN, linear, MLP, MF) have in common.

A learned baseline predicts quality from the query embedding with its own model, and cost with
the shared `CostModel`; both are chosen on the same validation `Fold` (see `selection`).

Training targets are `RoutingDataset.scores`, where a missing score counts as 0, exactly as the
metrics count it: a model that often returns nothing should look worse to the router, not be
excused. Every learned baseline therefore predicts the score the evaluation will credit.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings
from trouter.routers.base import Estimates, Router
from trouter.routers.costmodel import CostModel
from trouter.routers.layout import Layout
from trouter.routers.selection import Fold, make_fold

FloatMatrix = npt.NDArray[np.float64]
_COST_PREFIX = "cost."


def sigmoid(z: npt.NDArray[Any]) -> FloatMatrix:
    """The logistic function in float64, without overflow warnings for large |z|."""
    out: FloatMatrix = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64)))
    return out


def targets(data: RoutingDataset) -> FloatMatrix:
    """The quality targets [n, m]: scores in [0, 1], a missing score counting as 0."""
    return np.asarray(data.scores, dtype=np.float64)


class LearnedRouter(Router):
    """Base class: subclasses implement `_fit_quality` and `_predict_quality`.

    After `fit`, `selection_` records where and how the hyper-parameters were chosen (JSON, saved
    with the router) and `cost_model_` holds the fitted `CostModel`.
    """

    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        if x is None:  # uses_encoder is True for every learned router
            raise TypeError(f"{type(self).__name__} needs query embeddings")
        fold = make_fold(train, x, val, x_val, self.seed)
        self.cost_model_ = CostModel.fit(fold)
        self.selection_: dict[str, Any] = {
            "source": fold.source,
            "n_train": fold.train.n_queries,
            "n_val": fold.val.n_queries if fold.val is not None else 0,
            "cost_alpha": self.cost_model_.alpha,
            "cost_route": self.cost_model_.route,
            **self._fit_quality(fold),
        }

    @abstractmethod
    def _fit_quality(self, fold: Fold) -> dict[str, Any]:
        """Fit the quality model (on `fold.full` in the end); return what was chosen, as JSON."""

    @abstractmethod
    def _predict_quality(self, x: Embeddings) -> FloatMatrix:
        """Predicted quality [n, m] for query embeddings `x`."""

    @abstractmethod
    def _quality_layout(self, meta: dict[str, Any], dim: int) -> Layout:
        """The quality model's state arrays, for `dim`-wide embeddings (see `Router._layout`)."""

    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout | None:
        if dim is None:
            return None
        cost = CostModel.layout(dim, len(self.models_)).prefixed(_COST_PREFIX)
        return cost + self._quality_layout(meta, dim)

    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        if x is None:
            raise TypeError(f"{type(self).__name__} needs query embeddings")
        quality = np.clip(np.asarray(self._predict_quality(x), dtype=np.float64), 0.0, 1.0)
        cost, tokens_out = self.cost_model_.predict(queries, x, self.pool_)
        return Estimates(self.models_, quality, cost, tokens_out=tokens_out)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        arrays, meta = super()._get_state()
        meta.pop("cost_model_", None)
        cost_arrays, cost_meta = self.cost_model_.to_state()
        arrays.update({_COST_PREFIX + k: v for k, v in cost_arrays.items()})
        meta[_COST_PREFIX + "meta"] = cost_meta
        return arrays, meta

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        cost_arrays = {
            k.removeprefix(_COST_PREFIX): v for k, v in arrays.items() if k.startswith(_COST_PREFIX)
        }
        self.cost_model_ = CostModel.from_state(cost_arrays, meta[_COST_PREFIX + "meta"])
        super()._set_state(
            {k: v for k, v in arrays.items() if not k.startswith(_COST_PREFIX)},
            {k: v for k, v in meta.items() if k != _COST_PREFIX + "meta"},
        )
