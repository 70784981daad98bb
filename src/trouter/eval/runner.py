"""The benchmark runner: fit every router on each fold's train (+ val), score it on the test set.

The evaluation is written once against the router contract (`fit`, `predict`, the `Tradeoff`
presets) and never looks at which router it holds. The reference rows come from the metric
functions on the test set's true scores and costs: "zero" is the best of the single models,
"oracle" picks with the true outcomes. An evaluation-only router (it must see the outcomes of the
queries it routes) is fitted on the fold's test set, as its class declares.

Row fields (see `ResultRow`): AIQ and gap recovered over the whole lam sweep; rewards,
mean score and mean cost at the lam each router's own trade-off preset resolves to (`quality`,
`balanced`, `cost`; mean score and cost at `balanced`); `best_reward_*` is the best reward any lam
of the sweep reaches, an optimistic view (it picks lam on the test set).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.encode import Encoder, load_encoder
from trouter.errors import DataError
from trouter.eval import bootstrap, metrics
from trouter.eval.arguments import check_run
from trouter.eval.protocols import Fold, make_folds
from trouter.eval.results import (
    HEADLINE_PRESET,
    ORACLE,
    PRESETS,
    ZERO,
    BenchResult,
    FoldResult,
    ResultRow,
    RouterCurve,
    RunInfo,
)
from trouter.routers.base import Router
from trouter.routers.registry import make_router
from trouter.tradeoff import Tradeoff, choose

#: Called as (fold name, router name) just before that router is fitted.
StepCallback = Callable[[str, str], None]


def _aligned(router: Router, test: RoutingDataset) -> tuple[np.ndarray, np.ndarray, float]:
    """The router's estimates on the test queries, columns in the test set's model order."""
    start = time.perf_counter()
    est = router.predict(test.queries)
    seconds = time.perf_counter() - start
    missing = [m for m in test.models if m not in est.models]
    if missing:
        raise DataError(
            f"router {router.name!r} does not know model(s) {', '.join(missing)} of the test set"
        )
    cols = [est.models.index(m) for m in test.models]
    return est.quality[:, cols], est.cost[:, cols], seconds


def _preset_lambda(router: Router, preset: str) -> float:
    # The same resolution `Router.route` applies: the preset through the router's calibration.
    return Tradeoff.from_preset(preset).resolve(getattr(router, "calibration_", None))


def evaluate_router(
    router: Router,
    fold: Fold,
    lams: metrics.FloatArray,
    reference: tuple[float, float],
    *,
    dataset: str,
    protocol: str,
    fit_seconds: float | None = None,
) -> tuple[ResultRow, RouterCurve]:
    """Score a fitted router on the fold's test set; `reference` is (AIQ zero, AIQ oracle)."""
    test = fold.test
    S, C = test.scores, test.costs
    quality, cost, predict_seconds = _aligned(router, test)
    crv = metrics.curve(quality, cost, S, C, lams)
    a = metrics.aiq(crv, S, C)
    lam = {p: _preset_lambda(router, p) for p in PRESETS}
    picks = {p: choose(quality, cost, lam[p]) for p in PRESETS}
    reward = {p: metrics.scenario_reward(picks[p], S, C, metrics.SCENARIOS[p]) for p in PRESETS}
    best = {p: metrics.best_reward_on_curve(crv, S, C, metrics.SCENARIOS[p]) for p in PRESETS}
    two = (
        metrics.two_model_summary(quality, cost, S, C, (test.models[0], test.models[1]))
        if test.n_models == 2
        else None
    )
    row = _picked_row(
        fold,
        router.name,
        a,
        metrics.gap_recovered(a, *reference),
        picks=picks,
        reward=reward,
        best=best,
        lam=lam,
        two=two,
        dataset=dataset,
        protocol=protocol,
        n_train=(fold.test if router.evaluation_only else fold.train).n_queries,
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
    )
    return row, RouterCurve(router.name, crv)


def _picked_row(
    fold: Fold,
    router: str,
    aiq: float,
    gap: float | None,
    *,
    picks: dict[str, Any],
    reward: dict[str, float],
    best: dict[str, float],
    lam: dict[str, float],
    two: Any,
    dataset: str,
    protocol: str,
    n_train: int,
    fit_seconds: float | None = None,
    predict_seconds: float | None = None,
) -> ResultRow:
    """A row for a router that picked a model per test query at each preset's lam."""
    S, C = fold.test.scores, fold.test.costs
    rows, head = np.arange(fold.test.n_queries), picks[HEADLINE_PRESET]
    return ResultRow(
        dataset=dataset,
        protocol=protocol,
        fold=fold.name,
        router=router,
        aiq=aiq,
        gap_recovered=gap,
        reward_quality=reward["quality"],
        reward_balanced=reward["balanced"],
        reward_cost=reward["cost"],
        mean_score=float(S[rows, head].mean()),
        mean_cost=float(C[rows, head].mean()),
        best_reward_quality=best["quality"],
        best_reward_balanced=best["balanced"],
        best_reward_cost=best["cost"],
        lam_quality=lam["quality"],
        lam_balanced=lam["balanced"],
        lam_cost=lam["cost"],
        apgr=two.apgr if two else None,
        cpt50=two.cpt50 if two else None,
        cpt80=two.cpt80 if two else None,
        n_train=n_train,
        n_test=fold.test.n_queries,
        fit_seconds=fit_seconds,
        predict_seconds=predict_seconds,
    )


def reference_rows(
    fold: Fold, lams: metrics.FloatArray, *, dataset: str, protocol: str
) -> tuple[ResultRow, ResultRow, metrics.Curve]:
    """The zero-router row, the oracle row and the oracle curve, from the true S and C alone.

    Zero: the best single model for each weighting (its mean score and cost: the best one under
    `balanced`). Oracle: per-query picks by true score and cost, at the lam that maximises each
    reward exactly (`metrics.preset_lambda_for_truth`).
    """
    test = fold.test
    S, C = test.scores, test.costs
    n, m = S.shape
    a_zero = metrics.zero_aiq(S, C)
    oracle = metrics.oracle_curve(S, C, lams)
    a_oracle = metrics.aiq(oracle, S, C)

    single_reward = {
        p: [metrics.scenario_reward(np.full(n, j), S, C, metrics.SCENARIOS[p]) for j in range(m)]
        for p in PRESETS
    }
    best_single = int(np.argmax(single_reward[HEADLINE_PRESET]))
    zero = ResultRow(
        dataset=dataset,
        protocol=protocol,
        fold=fold.name,
        router=ZERO,
        aiq=a_zero,
        gap_recovered=0.0 if a_oracle - a_zero > 1e-12 else None,
        reward_quality=max(single_reward["quality"]),
        reward_balanced=max(single_reward["balanced"]),
        reward_cost=max(single_reward["cost"]),
        mean_score=float(S[:, best_single].mean()),
        mean_cost=float(C[:, best_single].mean()),
        n_train=fold.train.n_queries,
        n_test=n,
    )
    lam = {p: metrics.preset_lambda_for_truth(C, metrics.SCENARIOS[p]) for p in PRESETS}
    picks = {p: choose(S, C, lam[p]) for p in PRESETS}
    reward = {p: metrics.scenario_reward(picks[p], S, C, metrics.SCENARIOS[p]) for p in PRESETS}
    two = (
        metrics.two_model_summary(S, C, S, C, (test.models[0], test.models[1])) if m == 2 else None
    )
    oracle_row = _picked_row(
        fold,
        ORACLE,
        a_oracle,
        1.0 if a_oracle - a_zero > 1e-12 else None,
        picks=picks,
        reward=reward,
        best=reward,
        lam=lam,
        two=two,
        dataset=dataset,
        protocol=protocol,
        n_train=fold.train.n_queries,
    )
    return zero, oracle_row, oracle


def with_bootstrap(
    fold: Fold,
    rows: Sequence[ResultRow],
    curves: Mapping[str, metrics.Curve],
    *,
    draws: int = bootstrap.DRAWS,
    seed: int = 0,
) -> tuple[ResultRow, ...]:
    """The fold's rows scored again on `draws` paired bootstrap resamples of its test queries.

    Each row gets its AIQ per resample (`aiq_draws`) and the standard error of its gap
    recovered; `curves` holds every router's curve and the oracle's by row name (the zero row
    needs none). The picks are not remade: this is the test set's sampling error, not the spread
    over training seeds.
    """
    S, C = fold.test.scores, fold.test.costs
    if missing := [r.router for r in rows if r.router != ZERO and r.router not in curves]:
        raise ValueError(f"no curve for row(s) {', '.join(missing)}")
    chunks: dict[str, list[metrics.FloatArray]] = {row.router: [] for row in rows}
    seeds = [seed, zlib.crc32(fold.name.encode())]
    for shares in bootstrap.resample_shares(fold.test.n_queries, draws, seeds):
        for name, done in chunks.items():
            done.append(bootstrap.aiq_draws(curves.get(name), S, C, shares))
    aiqs = {name: np.concatenate(done) for name, done in chunks.items()}
    zero, oracle = aiqs.get(ZERO), aiqs.get(ORACLE)
    out = []
    for row in rows:
        se = None
        if zero is not None and oracle is not None:
            se = bootstrap.standard_error(bootstrap.gap_draws(aiqs[row.router], zero, oracle))
        out.append(replace(row, gap_se=se, aiq_draws=aiqs[row.router]))
    return tuple(out)


def run_fold(
    fold: Fold,
    routers: Sequence[str],
    *,
    encoder: Encoder | str,
    seed: int = 0,
    dataset: str,
    protocol: str,
    on_step: StepCallback | None = None,
    router_params: dict[str, dict[str, Any]] | None = None,
    draws: int = bootstrap.DRAWS,
) -> FoldResult:
    """Fit and score each named router on one fold, plus the zero and oracle rows.

    With `draws` > 0 every row also carries its bootstrap standard error (`with_bootstrap`);
    `router_params` maps a router of the run to its hyper-parameters. The arguments are checked
    as `run_benchmark`'s are (`arguments.check_run`).
    """
    check_run(routers, router_params, draws)
    if fold.test.n_queries == 0:
        raise DataError(f"{dataset}: fold {fold.name!r} has an empty test set")
    lams = metrics.lambda_grid(fold.test.costs)
    zero, oracle_row, oracle = reference_rows(fold, lams, dataset=dataset, protocol=protocol)
    reference = (zero.aiq, oracle_row.aiq)
    rows: list[ResultRow] = []
    curves: list[RouterCurve] = []
    for name in routers:
        if on_step is not None:
            on_step(fold.name, name)
        router = make_router(
            name, encoder=encoder, seed=seed, **(router_params or {}).get(name, {})
        )
        start = time.perf_counter()
        if router.evaluation_only:
            router.fit(fold.test)
        else:
            router.fit(fold.train, val=fold.val)
        fit_seconds = time.perf_counter() - start
        row, crv = evaluate_router(
            router,
            fold,
            lams,
            reference,
            dataset=dataset,
            protocol=protocol,
            fit_seconds=fit_seconds,
        )
        rows.append(row)
        curves.append(crv)
    scored: tuple[ResultRow, ...] = (*rows, zero, oracle_row)
    if draws > 0:
        by_name = {c.router: c.curve for c in curves} | {ORACLE: oracle}
        scored = with_bootstrap(fold, scored, by_name, draws=draws, seed=seed)
    return FoldResult(
        fold=fold.name,
        n_train=fold.train.n_queries,
        n_test=fold.test.n_queries,
        models=fold.test.models,
        single_points=metrics.single_model_points(fold.test.scores, fold.test.costs),
        oracle=oracle,
        curves=tuple(curves),
        rows=scored,
    )


def run_benchmark(
    dataset: RoutingDataset,
    protocol: str,
    routers: Sequence[str],
    *,
    encoder: Encoder | str,
    seed: int = 0,
    task_level: int | None = None,
    folds: Sequence[Fold] | None = None,
    on_step: StepCallback | None = None,
    on_fold: Callable[[BenchResult], None] | None = None,
    router_params: dict[str, dict[str, Any]] | None = None,
    draws: int = bootstrap.DRAWS,
) -> BenchResult:
    """Run every router on every fold of `protocol` (or on the given `folds`).

    `on_fold` sees the result after each fold: the CLI saves it there, so an interrupted run
    keeps its finished folds. `draws`: bootstrap resamples of each fold's test queries behind
    the standard errors and paired comparisons, 0 (none) or at least `bootstrap.MIN_DRAWS`.
    `router_params` maps a router of the run to its hyper-parameters, e.g. {"knn": {"k": 10}};
    the encoder and seed are the run's (`arguments.check_router_params`).
    """
    check_run(routers, router_params, draws)
    encoder = load_encoder(encoder)  # a spec such as "minilm", as routers take, or an encoder
    if folds is None:
        folds = make_folds(dataset, protocol, seed=seed, task_level=task_level)
    info = RunInfo(
        dataset=dataset.name,
        protocol=protocol,
        n_queries=dataset.n_queries,
        models=dataset.models,
        cost_note=dataset.cost_note,
        encoder=encoder.spec,
        encoder_id=encoder.id,
        seed=seed,
        task_level=task_level,
        routers=tuple(routers),
        folds=len(folds),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    result = BenchResult(info)
    start = time.perf_counter()
    for fold in folds:
        result.folds.append(
            run_fold(
                fold,
                routers,
                encoder=encoder,
                seed=seed,
                dataset=dataset.name,
                protocol=protocol,
                on_step=on_step,
                router_params=router_params,
                draws=draws,
            )
        )
        info.seconds = round(time.perf_counter() - start, 3)
        if on_fold is not None:
            on_fold(result)
    return result
