"""The quality-vs-cost trade-off every router routes by.

utility_m = quality_m - lam * cost_m, with lam in quality points per dollar. A trade-off is
given directly as lam, as a preset, or as a budget; presets and budgets become a lam through a
`Calibration` saved with each router (its predictions on a reference query set), so the same
words mean the same thing for every router.

Presets follow the paper's scenario weights on min-max normalised cost: with cost range R over
the reference predictions, weights (w_q, w_c) give lam = (w_c / w_q) / R, i.e. `quality`
(0.8/0.2) -> 0.25 / R, `balanced` (0.5/0.5) -> 1 / R, `cost` (0.2/0.8) -> 4 / R. A calibration
whose predictions are not all finite (a router fitted on an infinite cost) cannot turn a preset
or a budget into a lam: that is a `ConfigError` naming the remedy, never a silent R = 1.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trouter.errors import ConfigError

PRESET_WEIGHTS: dict[str, tuple[float, float]] = {
    "quality": (0.8, 0.2),
    "balanced": (0.5, 0.5),
    "cost": (0.2, 0.8),
}
MAX_LAMBDA = 1e12


def choose(
    quality: npt.NDArray[np.float64], cost: npt.NDArray[np.float64], lam: float
) -> npt.NDArray[np.intp]:
    """Index of the highest-utility model per row; ties go to the cheaper model."""
    utility = quality - lam * cost
    best = utility.max(axis=1, keepdims=True)
    tied = utility >= best - 1e-12
    return np.where(tied, cost, np.inf).argmin(axis=1)


#: Predicted costs whose spread is under this share of their mean size count as all equal.
EQUAL_COSTS = 0.01


@dataclass(frozen=True)
class Calibration:
    """A router's predicted quality and cost [r, m] on its reference query set."""

    quality: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]

    def _check_finite(self) -> None:
        for what, values in (("cost", self.cost), ("quality", self.quality)):
            bad = int(np.size(values) - np.isfinite(values).sum())
            if bad:
                raise ConfigError(
                    f"this router's calibration has {bad} non-finite predicted {what} value(s) "
                    "(NaN or inf), so presets and budgets mean nothing; retrain it on data with "
                    "finite costs and scores, or give the trade-off as lambda=NUMBER"
                )

    @property
    def cost_range(self) -> float:
        """Spread of the predicted costs; 1.0 when they are all equal, or equal but for a spread
        under EQUAL_COSTS of their size (a router that learns costs returns equal ones with a
        little noise, and dividing by that noise made `quality` pick the cheaper by 2e-6 $)."""
        self._check_finite()
        if not self.cost.size:
            return 1.0
        span = float(self.cost.max() - self.cost.min())
        return span if span > EQUAL_COSTS * float(np.abs(self.cost).mean()) else 1.0

    def lambda_for_preset(self, preset: str) -> float:
        if preset not in PRESET_WEIGHTS:
            raise ConfigError(
                f"unknown trade-off preset {preset!r}; choose one of {', '.join(PRESET_WEIGHTS)}"
            )
        w_q, w_c = PRESET_WEIGHTS[preset]
        return (w_c / w_q) / self.cost_range

    def mean_cost(self, lam: float) -> float:
        picks = choose(self.quality, self.cost, lam)
        return float(self.cost[np.arange(len(picks)), picks].mean())

    def lambda_for_budget(self, dollars_per_1k: float) -> float:
        """The smallest lam whose predicted mean cost fits the budget (bisection on log lam)."""
        self._check_finite()
        target = dollars_per_1k / 1000.0
        if self.mean_cost(0.0) <= target:
            return 0.0
        floor = self.mean_cost(MAX_LAMBDA)
        if floor > target * (1 + 1e-9):
            raise ConfigError(
                f"budget ${dollars_per_1k:g} per 1k queries is below the cheapest routing this router "
                f"can do (about ${floor * 1000:.4g} per 1k); raise the budget"
            )
        lo, hi = -12.0, math.log10(MAX_LAMBDA)
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.mean_cost(10**mid) <= target:
                hi = mid
            else:
                lo = mid
        return float(10**hi)


@dataclass(frozen=True)
class Tradeoff:
    """How much quality a dollar is worth: a lam, a preset name, or a budget per 1k queries.

    >>> Tradeoff.parse("lambda=200").lam
    200.0
    >>> Tradeoff.parse("balanced").preset
    'balanced'
    """

    lam: float | None = None
    preset: str | None = None
    budget_per_1k: float | None = None

    def __post_init__(self) -> None:
        given = [v is not None for v in (self.lam, self.preset, self.budget_per_1k)]
        if sum(given) != 1:
            raise ConfigError("a trade-off needs exactly one of lambda, preset or budget")
        if self.lam is not None and not (0.0 <= self.lam <= MAX_LAMBDA and math.isfinite(self.lam)):
            raise ConfigError(
                f"lambda must be between 0 and {MAX_LAMBDA:g} quality points per dollar, got {self.lam}"
            )
        if self.preset is not None and self.preset not in PRESET_WEIGHTS:
            raise ConfigError(
                f"unknown trade-off preset {self.preset!r}; choose one of {', '.join(PRESET_WEIGHTS)}"
            )
        if self.budget_per_1k is not None and not (
            self.budget_per_1k > 0 and math.isfinite(self.budget_per_1k)
        ):
            raise ConfigError(
                f"a budget must be a positive number of dollars per 1k queries, got {self.budget_per_1k}"
            )

    @classmethod
    def from_lambda(cls, lam: float) -> Tradeoff:
        return cls(lam=_number(lam, "lambda"))

    @classmethod
    def from_preset(cls, preset: str) -> Tradeoff:
        return cls(preset=preset)

    @classmethod
    def from_budget(cls, dollars_per_1k: float) -> Tradeoff:
        return cls(budget_per_1k=_number(dollars_per_1k, "a budget"))

    @classmethod
    def parse(cls, text: str) -> Tradeoff:
        """`balanced`, `quality`, `cost`, `lambda=200`, `200`, or `budget=0.5` ($ per 1k queries)."""
        if not isinstance(text, str):
            raise ConfigError(
                f"a trade-off to parse is text such as 'balanced' or 'lambda=200', got {text!r}; "
                "use Tradeoff.from_lambda for a number"
            )
        text = text.strip()
        key, sep, value = text.partition("=")
        try:
            if sep and key.strip() in ("lambda", "lam"):
                return cls.from_lambda(float(value))
            if sep and key.strip() == "budget":
                return cls.from_budget(float(value.strip().lstrip("$")))
            if not sep and text in PRESET_WEIGHTS:
                return cls.from_preset(text)
            if not sep:
                return cls.from_lambda(float(text))
        except ValueError:
            pass
        raise ConfigError(
            f"cannot read trade-off {text!r}; use one of {', '.join(PRESET_WEIGHTS)}, "
            "lambda=NUMBER (quality points per dollar) or budget=DOLLARS_PER_1K_QUERIES"
        )

    def resolve(self, calibration: Calibration | None) -> float:
        """The lam this trade-off means for a router with the given calibration."""
        if self.lam is not None:
            return self.lam
        if calibration is None:
            raise ConfigError("this router has no calibration; give the trade-off as lambda=NUMBER")
        if self.preset is not None:
            return calibration.lambda_for_preset(self.preset)
        assert self.budget_per_1k is not None
        return calibration.lambda_for_budget(self.budget_per_1k)

    def __str__(self) -> str:
        if self.lam is not None:
            return f"lambda={self.lam:g}"
        if self.preset is not None:
            return self.preset
        return f"budget={self.budget_per_1k:g}"


def _number(value: object, what: str) -> float:
    """`value` as a float, or a one-line error: a bool or a string is no amount."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    return float(value)
