"""Per-query dollar cost of every pool model: the one cost predictor all learned baselines share.

Cost varies per query with the prompt's length and the answer's length, and is heavy-tailed, so
the model is a ridge regression on the log scale, from the query embedding plus two length
features the unit-length embedding cannot see: log characters and log estimated tokens
(`trouter.tokens.estimate_tokens`).

- **tokens** route, when the training data has token counts and a pool with prices: input tokens
  are the text's token estimate times each model's tokenizer ratio (total recorded input tokens
  over total estimate on the training data); output tokens are predicted per model by the
  ridge; both are priced with the pool's one cost formula (`Pool.cost`), so a price change
  needs no retraining.
- **dollars** route otherwise: predict each model's $ cost directly.

Targets are `log1p(value / scale)` (scale = the column's median positive value), so zeros (free
models) are fine; predictions are turned back into means with Duan's smearing factor (the mean of
exp(residual) on the training data), because exp of a mean log is a median, and a router that
trades quality against money needs the mean. Predictions are clipped to ten times the largest
value seen in training, so an odd query cannot produce an absurd cost.

The ridge penalty is chosen on the validation fold (mean squared error of the log targets), with
one eigendecomposition shared by every candidate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings
from trouter.pool import Pool
from trouter.routers.layout import Layout
from trouter.routers.selection import Fold, select
from trouter.tokens import estimate_tokens_many

FloatMatrix = npt.NDArray[np.float64]

#: Ridge penalties, as multiples of the number of training queries (features are unit-scale).
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
DEFAULT_RIDGE = 1e-3
_HEADROOM = math.log(10.0)


def positive_median(values: FloatMatrix) -> FloatMatrix:
    """Each column's median positive value (NaN: missing), or 1 for a column with none, as in a
    dataset without costs: the scale of a column whose values are all zero or missing."""
    positive = np.where(values > 0, values, np.nan)
    has = ~np.isnan(positive).all(axis=0)
    # nanmedian warns "All-NaN slice" on an empty column: take it over the others only.
    median = np.ones(values.shape[1])
    median[has] = np.nanmedian(positive[:, has], axis=0)
    return median


def length_features(queries: Sequence[str], tokens: FloatMatrix) -> FloatMatrix:
    """[n, 2]: log1p(characters), log1p(estimated tokens) per query."""
    chars = np.fromiter((len(q) for q in queries), dtype=np.float64, count=len(queries))
    return np.log1p(np.column_stack([chars, tokens]))


@dataclass
class RidgePath:
    """Centred multi-output ridge regression solved for any penalty from one eigendecomposition."""

    mean_f: FloatMatrix
    mean_y: FloatMatrix
    eigvals: FloatMatrix
    eigvecs: FloatMatrix
    proj: FloatMatrix  # eigvecs.T @ F_c.T @ Y_c

    @classmethod
    def fit(cls, features: FloatMatrix, targets: FloatMatrix) -> RidgePath:
        mean_f = features.mean(axis=0)
        mean_y = targets.mean(axis=0)
        fc = features - mean_f
        eigvals, eigvecs = np.linalg.eigh(fc.T @ fc)
        proj = eigvecs.T @ (fc.T @ (targets - mean_y))
        return cls(mean_f, mean_y, np.maximum(eigvals, 0.0), eigvecs, proj)

    def coef(self, alpha: float) -> tuple[FloatMatrix, FloatMatrix]:
        """(coefficients [p, k], intercept [k]) for penalty `alpha`."""
        coef = self.eigvecs @ (self.proj / (self.eigvals + alpha)[:, None])
        return coef, self.mean_y - self.mean_f @ coef


class CostModel:
    """Predicts $ cost [n, m] (and output tokens on the tokens route) from queries and embeddings.

    Build it with `CostModel.fit`; save it with `to_state` / `from_state`.
    """

    def __init__(
        self,
        route: str,
        coef: FloatMatrix,
        intercept: FloatMatrix,
        scale: FloatMatrix,
        smear: FloatMatrix,
        y_max: FloatMatrix,
        input_ratio: FloatMatrix,
        alpha: float,
    ) -> None:
        self.route = route
        self.input_ratio = input_ratio
        self.coef = coef
        self.intercept = intercept
        self.scale = scale
        self.smear = smear
        self.y_max = y_max
        self.alpha = alpha

    # ------------------------------------------------------------------ fitting
    @staticmethod
    def uses_tokens(train: RoutingDataset) -> bool:
        """Whether `train` supports the tokens route (token counts and a priced pool)."""
        if train.pool is None or not train.has_tokens:
            return False
        p_in, p_out = train.pool.prices()
        return bool(np.any(p_in > 0) or np.any(p_out > 0))

    @staticmethod
    def _targets(data: RoutingDataset, route: str) -> FloatMatrix:
        if route == "tokens":
            return np.asarray(data.tokens_out, dtype=np.float64)
        return np.asarray(data.costs, dtype=np.float64)

    @staticmethod
    def _features(queries: Sequence[str], x: Embeddings, tokens: FloatMatrix) -> FloatMatrix:
        return np.hstack([np.asarray(x, dtype=np.float64), length_features(queries, tokens)])

    @classmethod
    def fit(cls, fold: Fold, alpha: float | None = None) -> CostModel:
        """Fit on `fold.full` with the ridge penalty chosen on the fold's validation part."""
        route = "tokens" if cls.uses_tokens(fold.full) else "dollars"
        est_full = estimate_tokens_many(fold.full.queries).astype(np.float64)
        input_ratio = np.ones(fold.full.n_models)
        if route == "tokens":
            recorded = np.asarray(fold.full.tokens_in, dtype=np.float64)
            seen = ~np.isnan(recorded)
            estimated = np.where(seen, est_full[:, None], 0.0).sum(axis=0)
            total = np.where(seen, recorded, 0.0).sum(axis=0)
            input_ratio = np.where(estimated > 0, total / np.maximum(estimated, 1e-12), 1.0)
        raw = cls._targets(fold.full, route)
        # Missing token counts (a model that never answered) take the column's typical value.
        scale = positive_median(raw)

        def log_targets(data: RoutingDataset) -> FloatMatrix:
            values = cls._targets(data, route) / scale
            y = np.log1p(np.maximum(values, 0.0))
            seen = ~np.isnan(y)
            fill = np.where(seen, y, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
            return np.where(seen, y, fill[None, :])

        if alpha is None and fold.val is not None and fold.x_val is not None:
            est = estimate_tokens_many(fold.train.queries).astype(np.float64)
            path = RidgePath.fit(
                cls._features(fold.train.queries, fold.x_train, est), log_targets(fold.train)
            )
            est = estimate_tokens_many(fold.val.queries).astype(np.float64)
            f_val = cls._features(fold.val.queries, fold.x_val, est)
            y_val = log_targets(fold.val)
            n = fold.train.n_queries

            def error(r: float) -> float:
                coef, icpt = path.coef(r * n)
                return float(np.mean((f_val @ coef + icpt - y_val) ** 2))

            alpha = float(select(RIDGE_GRID, error, fold.source).best)
        elif alpha is None:
            alpha = DEFAULT_RIDGE
        features = cls._features(fold.full.queries, fold.x_full, est_full)
        y = log_targets(fold.full)
        coef, intercept = RidgePath.fit(features, y).coef(alpha * fold.full.n_queries)
        residual = y - (features @ coef + intercept)
        smear = np.exp(residual).mean(axis=0)
        y_max = y.max(axis=0) + _HEADROOM
        return cls(route, coef, intercept, scale, smear, y_max, input_ratio, alpha)

    # ------------------------------------------------------------------ prediction
    def predict(
        self, queries: Sequence[str], x: Embeddings, pool: Pool | None
    ) -> tuple[FloatMatrix, FloatMatrix | None]:
        """(cost [n, m] in dollars, predicted output tokens [n, m] or None)."""
        est = estimate_tokens_many(queries).astype(np.float64)
        y = self._features(queries, x, est) @ self.coef + self.intercept
        y = np.minimum(y, self.y_max)
        values = np.maximum(np.exp(y) * self.smear - 1.0, 0.0) * self.scale
        if self.route == "dollars":
            return values, None
        if pool is None:  # a tokens-route model is only ever fitted with a pool
            raise ValueError("the tokens cost route needs the pool the router was trained with")
        return pool.cost(est[:, None] * self.input_ratio, values), values

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def layout(dim: int, models: int) -> Layout:
        """The arrays of `to_state` for `dim`-wide embeddings and `models` pool models."""
        per_model = {k: (models,) for k in ("intercept", "scale", "smear", "y_max", "input_ratio")}
        return Layout({"coef": (dim + 2, models), **per_model})

    def to_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        arrays = {
            "coef": self.coef,
            "intercept": self.intercept,
            "scale": self.scale,
            "smear": self.smear,
            "y_max": self.y_max,
            "input_ratio": self.input_ratio,
        }
        return arrays, {"route": self.route, "alpha": self.alpha}

    @classmethod
    def from_state(cls, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> CostModel:
        return cls(
            route=str(meta["route"]),
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            scale=arrays["scale"],
            smear=arrays["smear"],
            y_max=arrays["y_max"],
            input_ratio=arrays["input_ratio"],
            alpha=float(meta["alpha"]),
        )
