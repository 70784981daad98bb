"""What a benchmark run measured: one `ResultRow` per router per fold, grouped by fold.

`ResultRow`'s first eleven fields are `report.json`'s contract (trouter.eval.report). Besides the
routers, every fold has two reference rows computed from the test set's true scores and costs:
"zero" (the best single model) and "oracle" (picks by the true outcomes); no router may share
their names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from trouter.eval import metrics

ZERO = "zero"
ORACLE = "oracle"
REFERENCE_ROWS = (ZERO, ORACLE)
PRESETS = tuple(metrics.SCENARIOS)  # quality, balanced, cost
HEADLINE_PRESET = "balanced"
_V = TypeVar("_V")


@dataclass(frozen=True)
class ResultRow:
    """One router (or the zero / oracle reference) on one fold. The first eleven fields are the
    `report.json` contract; the rest are extras (None where they do not apply)."""

    dataset: str
    protocol: str
    fold: str
    router: str
    aiq: float
    gap_recovered: float | None
    reward_quality: float
    reward_balanced: float
    reward_cost: float
    mean_score: float
    mean_cost: float
    best_reward_quality: float | None = None
    best_reward_balanced: float | None = None
    best_reward_cost: float | None = None
    lam_quality: float | None = None
    lam_balanced: float | None = None
    lam_cost: float | None = None
    apgr: float | None = None
    cpt50: float | None = None
    cpt80: float | None = None
    n_train: int = 0
    n_test: int = 0
    fit_seconds: float | None = None
    predict_seconds: float | None = None
    gap_se: float | None = None  # bootstrap standard error of the gap over the test queries
    #: AIQ on each paired bootstrap resample of the test queries (`with_bootstrap`); kept in
    #: memory for summaries and comparisons, not written to report.json.
    aiq_draws: metrics.FloatArray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN (an undefined ratio) becomes None."""
        return {
            f.name: finite_or_none(getattr(self, f.name))
            for f in fields(self)
            if f.name != "aiq_draws"
        }


def finite_or_none(value: _V) -> _V | None:
    """`value`, or None for a float that is not finite (an undefined ratio): JSON has no NaN."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class RouterCurve:
    """A router's cost-quality curve on one fold, for plots."""

    router: str
    curve: metrics.Curve


@dataclass(frozen=True)
class FoldResult:
    """Everything measured on one fold."""

    fold: str
    n_train: int
    n_test: int
    models: tuple[str, ...]
    single_points: metrics.FloatArray  # [m, 2] (mean cost, mean score) per model
    oracle: metrics.Curve
    curves: tuple[RouterCurve, ...]
    rows: tuple[ResultRow, ...]


@dataclass
class RunInfo:
    """What was run, on what, and how long it took (`report.json`'s "meta")."""

    dataset: str
    protocol: str
    n_queries: int
    models: tuple[str, ...]
    cost_note: str
    encoder: str
    encoder_id: str
    seed: int
    task_level: int | None
    routers: tuple[str, ...]
    folds: int
    started: str = ""
    seconds: float = 0.0
    command: str = ""
    versions: dict[str, str] = field(default_factory=dict)


@dataclass
class BenchResult:
    """A whole benchmark run: its settings and every fold's results."""

    info: RunInfo
    folds: list[FoldResult] = field(default_factory=list)

    @property
    def dataset(self) -> str:
        return self.info.dataset

    @property
    def protocol(self) -> str:
        return self.info.protocol

    @property
    def rows(self) -> list[ResultRow]:
        return [row for fold in self.folds for row in fold.rows]

    @property
    def routers(self) -> list[str]:
        """Router names in the order they were run, then the reference rows."""
        names = dict.fromkeys(r.router for r in self.rows if r.router not in REFERENCE_ROWS)
        return [*names, ZERO, ORACLE]
