"""A benchmark's rows summed up over folds, and routers compared on paired resamples.

`summarise` gives each router's mean over folds (`SummaryRow`: the gap from the mean AIQs, with
its bootstrap standard error); `compare` gives the difference in gap between two routers with a
95% interval from the same resamples of the test queries (`Comparison`), and
`leader_comparisons` the leading router against every other one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trouter.errors import ConfigError
from trouter.eval import bootstrap
from trouter.eval.results import ORACLE, REFERENCE_ROWS, ZERO, BenchResult, ResultRow


@dataclass(frozen=True)
class SummaryRow:
    """A router's mean over folds. `gap_recovered` is computed from the mean AIQs (a mean of
    per-fold ratios is unstable when a fold's zero-to-oracle gap is small)."""

    router: str
    folds: int
    aiq: float
    gap_recovered: float | None
    reward_quality: float
    reward_balanced: float
    reward_cost: float
    best_reward_balanced: float | None
    mean_score: float
    mean_cost: float
    apgr: float | None
    cpt50: float | None
    cpt80: float | None
    gap_se: float | None = None


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _by_router(rows: Sequence[ResultRow]) -> dict[str, list[ResultRow]]:
    by_router: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_router.setdefault(row.router, []).append(row)
    return by_router


def _mean_aiq(by_router: dict[str, list[ResultRow]], name: str) -> float:
    return float(np.mean([r.aiq for r in by_router[name]]))


def _mean_gap(by_router: dict[str, list[ResultRow]], name: str) -> float | None:
    """Gap recovered from the mean AIQs over folds (None without both references or a gap)."""
    if name not in by_router or ZERO not in by_router or ORACLE not in by_router:
        return None
    zero, oracle = _mean_aiq(by_router, ZERO), _mean_aiq(by_router, ORACLE)
    if oracle - zero <= 1e-12:
        return None
    return (_mean_aiq(by_router, name) - zero) / (oracle - zero)


def _gap_draws(by_router: dict[str, list[ResultRow]], name: str) -> np.ndarray | None:
    """Gap recovered per bootstrap resample, from the mean over folds of each resample's AIQs."""
    means, folds = [], set()
    for rows in (by_router.get(n, []) for n in (name, ZERO, ORACLE)):
        draws = [r.aiq_draws for r in rows if r.aiq_draws is not None]
        if not draws or len(draws) < len(rows):
            return None
        means.append(np.mean(draws, axis=0))
        folds.add(len(rows))
    if len(folds) > 1:
        return None  # the router was not run on every fold
    router, zero, oracle = means
    return bootstrap.gap_draws(router, zero, oracle)


def summarise(result: BenchResult | Sequence[ResultRow]) -> list[SummaryRow]:
    """Per-router means over folds (one row per router in run order, then zero and oracle)."""
    rows_in = result.rows if isinstance(result, BenchResult) else list(result)
    by_router = _by_router(rows_in)
    order = [n for n in by_router if n not in REFERENCE_ROWS] + [
        n for n in REFERENCE_ROWS if n in by_router
    ]
    out = []
    for name in order:
        rows = by_router[name]
        draws = _gap_draws(by_router, name)
        out.append(
            SummaryRow(
                router=name,
                folds=len(rows),
                aiq=_mean_aiq(by_router, name),
                gap_recovered=_mean_gap(by_router, name),
                reward_quality=float(np.mean([r.reward_quality for r in rows])),
                reward_balanced=float(np.mean([r.reward_balanced for r in rows])),
                reward_cost=float(np.mean([r.reward_cost for r in rows])),
                best_reward_balanced=_mean([r.best_reward_balanced for r in rows]),
                mean_score=float(np.mean([r.mean_score for r in rows])),
                mean_cost=float(np.mean([r.mean_cost for r in rows])),
                apgr=_mean([r.apgr for r in rows]),
                cpt50=_mean([r.cpt50 for r in rows]),
                cpt80=_mean([r.cpt80 for r in rows]),
                gap_se=bootstrap.standard_error(draws) if draws is not None else None,
            )
        )
    return out


@dataclass(frozen=True)
class Comparison:
    """Router against another on the same paired bootstrap resamples of the test queries."""

    router: str
    other: str
    difference: float  # gap recovered (from the mean AIQs), router minus other
    low: float  # 95% interval of the difference (bias-corrected percentiles)
    high: float

    def verdict(self) -> str:
        if self.low == self.high == self.difference == 0:
            return "the same on every resample"
        if self.low > 0:
            return f"{self.router} ahead"
        if self.high < 0:
            return f"{self.other} ahead"
        return "not separated"

    def text(self) -> str:
        return (
            f"{self.router} - {self.other}: {self.difference:+.3f} gap, 95% interval "
            f"[{self.low:+.3f}, {self.high:+.3f}]: {self.verdict()}"
        )


def compare(rows: BenchResult | Sequence[ResultRow], router: str, other: str) -> Comparison | None:
    """`router` minus `other` with its paired bootstrap interval (None without resamples)."""
    by_router = _by_router(rows.rows if isinstance(rows, BenchResult) else rows)
    if missing := [n for n in (router, other) if n not in by_router]:
        raise ConfigError(
            f"no router {missing[0]!r} in these rows; they hold {', '.join(by_router)}"
        )
    a, b = _gap_draws(by_router, router), _gap_draws(by_router, other)
    gap_a, gap_b = _mean_gap(by_router, router), _mean_gap(by_router, other)
    if a is None or b is None or gap_a is None or gap_b is None:
        return None
    low, high = bootstrap.bc_interval(a - b, gap_a - gap_b)
    return Comparison(router=router, other=other, difference=gap_a - gap_b, low=low, high=high)


def leader_comparisons(rows: Sequence[ResultRow]) -> list[Comparison]:
    """The router with the highest gap against each other router (reference rows left out)."""
    ranked = [
        s for s in summarise(rows) if s.router not in REFERENCE_ROWS and s.gap_recovered is not None
    ]
    if len(ranked) < 2:
        return []
    leader = max(ranked, key=lambda s: s.gap_recovered or 0.0).router
    found = (compare(rows, leader, s.router) for s in ranked if s.router != leader)
    return [c for c in found if c is not None]
