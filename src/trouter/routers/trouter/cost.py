"""TRouter's cost head: what the network predicts about cost, and how that becomes dollars.

Four ways, chosen by the router's `cost_model` hyper-parameter:

- `direct` (the paper): the network predicts $ directly, as the task-type mixture of per-leaf
  softplus decoders, trained with MSE on $ scaled by the dearest model's mean cost.
- `log` (ours): the mixture of per-leaf decoders plus a per-model slope on the query's log length
  predicts log $; costs span three orders of magnitude, so a squared error on the log scale
  weighs a cheap model's error like a dear one's. Back on the $ scale with Duan's smearing
  factor (exp of a mean log is a median; a router trading quality against money needs the mean).
- `tokens` (ours, when the data has token counts and a priced pool; else `log`): the same head
  predicts log input and log output tokens per model, priced with the pool's one cost formula,
  so a price change needs no retraining. Input tokens are predicted too, not read off the query
  text: benchmark prompts often carry context (few-shot examples) the query text leaves out.
- `shared`: the learned baselines' `CostModel` (ridge on the embedding and length features),
  outside the network; for comparison.

`CostTargets` holds the per-column transform: targets are standardised log(value + floor), the
floor a hundredth of the column's median positive value, so zeros (free models) are fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.pool import Pool
from trouter.routers.costmodel import positive_median
from trouter.routers.layout import Layout

FloatMatrix = npt.NDArray[np.float64]
COST_MODELS = ("log", "tokens", "direct", "shared")


def uses_tokens(data: RoutingDataset) -> bool:
    """Whether the data supports the tokens route: token counts and a pool with prices."""
    if data.pool is None or not data.has_tokens:
        return False
    p_in, p_out = data.pool.prices()
    return bool(np.any(p_in > 0) or np.any(p_out > 0))


def resolve_route(cost_model: str, data: RoutingDataset) -> str:
    """The cost route actually used: `tokens` falls back to `log` without token data."""
    if cost_model == "tokens" and not uses_tokens(data):
        return "log"
    return cost_model


def raw_targets(data: RoutingDataset, route: str) -> FloatMatrix:
    """The quantity the head predicts, [n, M] ($) or [n, 2M] (input then output tokens)."""
    if route == "tokens":
        return np.hstack([np.asarray(data.tokens_in), np.asarray(data.tokens_out)])
    return np.asarray(data.costs, dtype=np.float64)


@dataclass
class CostTargets:
    """Standardised log targets for the `log` / `tokens` routes, and the way back."""

    floor: FloatMatrix
    mean: FloatMatrix
    std: FloatMatrix
    smear: FloatMatrix

    @classmethod
    def fit(cls, raw: FloatMatrix) -> CostTargets:
        floor = positive_median(raw) / 100.0
        logs = np.log(np.nan_to_num(raw, nan=0.0) + floor)
        observed = ~np.isnan(raw)
        count = np.maximum(observed.sum(axis=0), 1)
        mean = np.where(observed, logs, 0.0).sum(axis=0) / count
        var = np.where(observed, (logs - mean) ** 2, 0.0).sum(axis=0) / count
        return cls(floor, mean, np.sqrt(np.maximum(var, 1e-6)), np.ones_like(floor))

    def transform(self, raw: FloatMatrix) -> FloatMatrix:
        """Standardised log targets; a missing value becomes the column mean (0)."""
        z = (np.log(np.nan_to_num(raw, nan=0.0) + self.floor) - self.mean) / self.std
        return np.where(np.isnan(raw), 0.0, z)

    def calibrate(self, predicted: FloatMatrix, raw: FloatMatrix) -> None:
        """Duan's smearing: the mean of exp(log residual) per column, on the training data."""
        observed = ~np.isnan(raw)
        residual = np.log(np.nan_to_num(raw, nan=0.0) + self.floor) - self._log(predicted)
        count = np.maximum(observed.sum(axis=0), 1)
        smear = np.where(observed, np.exp(np.clip(residual, -20, 20)), 0.0).sum(axis=0) / count
        self.smear = np.where(observed.any(axis=0), smear, 1.0)

    def _log(self, predicted: FloatMatrix) -> FloatMatrix:
        return predicted * self.std + self.mean

    def inverse(self, predicted: FloatMatrix) -> FloatMatrix:
        """Mean values on the original scale (never negative)."""
        return np.maximum(np.exp(self._log(predicted)) * self.smear - self.floor, 0.0)

    @staticmethod
    def layout(columns: int) -> Layout:
        """The arrays of `to_arrays` for `columns` target columns."""
        return Layout({k: (columns,) for k in ("floor", "mean", "std", "smear")})

    def to_arrays(self) -> dict[str, npt.NDArray[Any]]:
        return {"floor": self.floor, "mean": self.mean, "std": self.std, "smear": self.smear}

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[Any]]) -> CostTargets:
        return cls(arrays["floor"], arrays["mean"], arrays["std"], arrays["smear"])


def dollars(
    route: str, values: FloatMatrix, pool: Pool | None
) -> tuple[FloatMatrix, FloatMatrix | None]:
    """(cost [n, M] in $, predicted output tokens or None) from the head's inverse-transformed values."""
    if route != "tokens":
        return values, None
    if pool is None:  # the tokens route is only ever chosen with a pool
        raise ValueError("the tokens cost route needs the pool the router was trained with")
    m = values.shape[1] // 2
    return pool.cost(values[:, :m], values[:, m:]), values[:, m:]
