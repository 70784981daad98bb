"""Per-query dollar cost of every pool model: the one cost predictor all learned baselines share.

Cost varies per query with the prompt's length and the answer's length, and is heavy-tailed, so
the model is a ridge regression on the log scale, from the query embedding plus two length
features (log characters and log words, which the unit-length embedding cannot see):

- **tokens** route, when the training data has token counts and a pool with prices: predict
  input and output tokens per model (each model has its own tokenizer and verbosity) and price
  them with the pool's one cost formula (`Pool.cost`), so a price change needs no retraining.
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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings
from trouter.pool import Pool
from trouter.routers.selection import Fold, select

FloatMatrix = npt.NDArray[np.float64]

#: Ridge penalties, as multiples of the number of training queries (features are unit-scale).
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
DEFAULT_RIDGE = 1e-3
_WORD = re.compile(r"\S+")
_HEADROOM = math.log(10.0)


def length_features(queries: Sequence[str]) -> FloatMatrix:
    """[n, 2]: log1p(characters), log1p(whitespace-separated words) per query."""
    out = np.empty((len(queries), 2), dtype=np.float64)
    for i, q in enumerate(queries):
        out[i, 0] = len(q)
        out[i, 1] = len(_WORD.findall(q))
    return np.log1p(out)


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
        alpha: float,
    ) -> None:
        self.route = route
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
            return np.hstack([data.tokens_in, data.tokens_out])
        return np.asarray(data.costs, dtype=np.float64)

    @staticmethod
    def _features(queries: Sequence[str], x: Embeddings) -> FloatMatrix:
        return np.hstack([np.asarray(x, dtype=np.float64), length_features(queries)])

    @classmethod
    def fit(cls, fold: Fold, alpha: float | None = None) -> CostModel:
        """Fit on `fold.full` with the ridge penalty chosen on the fold's validation part."""
        route = "tokens" if cls.uses_tokens(fold.full) else "dollars"
        raw = cls._targets(fold.full, route)
        # Missing token counts (a model that never answered) take the column's typical value.
        observed = ~np.isnan(raw)
        positive = np.where(observed & (raw > 0), raw, np.nan)
        with np.errstate(all="ignore"):
            scale = np.nan_to_num(np.nanmedian(positive, axis=0), nan=1.0)
        scale = np.where(scale > 0, scale, 1.0)

        def log_targets(data: RoutingDataset) -> FloatMatrix:
            values = cls._targets(data, route) / scale
            y = np.log1p(np.maximum(values, 0.0))
            seen = ~np.isnan(y)
            fill = np.where(seen, y, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
            return np.where(seen, y, fill[None, :])

        if alpha is None and fold.val is not None and fold.x_val is not None:
            path = RidgePath.fit(
                cls._features(fold.train.queries, fold.x_train), log_targets(fold.train)
            )
            f_val = cls._features(fold.val.queries, fold.x_val)
            y_val = log_targets(fold.val)
            n = fold.train.n_queries

            def error(r: float) -> float:
                coef, icpt = path.coef(r * n)
                return float(np.mean((f_val @ coef + icpt - y_val) ** 2))

            alpha = float(select(RIDGE_GRID, error, fold.source).best)
        elif alpha is None:
            alpha = DEFAULT_RIDGE
        features = cls._features(fold.full.queries, fold.x_full)
        y = log_targets(fold.full)
        coef, intercept = RidgePath.fit(features, y).coef(alpha * fold.full.n_queries)
        residual = y - (features @ coef + intercept)
        smear = np.exp(residual).mean(axis=0)
        return cls(route, coef, intercept, scale, smear, y.max(axis=0) + _HEADROOM, alpha)

    # ------------------------------------------------------------------ prediction
    def _values(self, queries: Sequence[str], x: Embeddings) -> FloatMatrix:
        y = self._features(queries, x) @ self.coef + self.intercept
        y = np.minimum(y, self.y_max)
        return np.maximum(np.exp(y) * self.smear - 1.0, 0.0) * self.scale

    def predict(
        self, queries: Sequence[str], x: Embeddings, pool: Pool | None
    ) -> tuple[FloatMatrix, FloatMatrix | None]:
        """(cost [n, m] in dollars, predicted output tokens [n, m] or None)."""
        values = self._values(queries, x)
        if self.route == "dollars":
            return values, None
        if pool is None:  # a tokens-route model is only ever fitted with a pool
            raise ValueError("the tokens cost route needs the pool the router was trained with")
        m = values.shape[1] // 2
        tokens_in, tokens_out = values[:, :m], values[:, m:]
        return pool.cost(tokens_in, tokens_out), tokens_out

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        arrays = {
            "coef": self.coef,
            "intercept": self.intercept,
            "scale": self.scale,
            "smear": self.smear,
            "y_max": self.y_max,
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
            alpha=float(meta["alpha"]),
        )
