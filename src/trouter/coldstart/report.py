"""The cold-start report: how the trained router does on the held-out synthetic queries.

It reuses the benchmark's evaluation (`trouter.eval`: AIQ, gap recovered, rewards, the zero and
oracle rows, the cost-quality plot) on one fold, the held-out part, and adds what a user deciding
on a trade-off wants to see: for each preset (`quality`, `balanced`, `cost`) the mean true score
and $ per query of the router's picks and its model mix, the same for every single model and for
the oracle, and per held-out leaf which models the router picks.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from trouter.coldstart.results import Outcome, ReportResult
from trouter.coldstart.state import RunPaths, now
from trouter.data.dataset import RoutingDataset
from trouter.eval import metrics
from trouter.eval.protocols import Fold
from trouter.eval.report import render_markdown, to_json
from trouter.eval.results import ORACLE, PRESETS, BenchResult, FoldResult, RunInfo, finite_or_none
from trouter.eval.runner import evaluate_router, reference_rows, with_bootstrap
from trouter.paths import atomic_write_text
from trouter.routers.base import Router
from trouter.tradeoff import Tradeoff, choose

PROTOCOL = "coldstart-holdout"
FOLD = "held-out"


def _mix(picks: npt.NDArray[np.intp], models: tuple[str, ...]) -> dict[str, float]:
    counts = Counter(int(j) for j in picks)
    n = max(1, len(picks))
    return {models[j]: counts[j] / n for j in range(len(models)) if counts[j]}


def outcomes(
    router: Router, test: RoutingDataset
) -> tuple[list[Outcome], list[Outcome], Outcome, dict[str, dict[str, dict[str, float]]]]:
    """(preset outcomes, single-model outcomes, the oracle's, per-preset per-leaf model mix)."""
    est = router.predict(test.queries)
    cols = [est.models.index(m) for m in test.models]
    quality, cost = est.quality[:, cols], est.cost[:, cols]
    S, C = test.scores, test.costs
    rows = np.arange(test.n_queries)
    leaves = np.asarray(test.tasks, dtype=object)
    presets: list[Outcome] = []
    by_leaf: dict[str, dict[str, dict[str, float]]] = {}
    calibration = getattr(router, "calibration_", None)
    for preset in PRESETS:
        lam = Tradeoff.from_preset(preset).resolve(calibration)
        picks = choose(quality, cost, lam)
        presets.append(
            Outcome(
                name=preset,
                kind="preset",
                quality=float(S[rows, picks].mean()),
                cost=float(C[rows, picks].mean()),
                mix=_mix(picks, test.models),
                lam=lam,
            )
        )
        by_leaf[preset] = {
            str(leaf): _mix(picks[leaves == leaf], test.models) for leaf in sorted(set(leaves))
        }
    models = [
        Outcome(
            name=m,
            kind="model",
            quality=float(S[:, j].mean()),
            cost=float(C[:, j].mean()),
            mix={m: 1.0},
        )
        for j, m in enumerate(test.models)
    ]
    # The oracle: the cheapest model among those with the best true score, per query.
    best = choose(S, C, 1e-9)
    oracle = Outcome(
        name="oracle",
        kind="oracle",
        quality=float(S[rows, best].mean()),
        cost=float(C[rows, best].mean()),
        mix=_mix(best, test.models),
    )
    return presets, models, oracle, by_leaf


def _markdown(result: ReportResult) -> str:
    def mix(o: Outcome) -> str:
        return ", ".join(f"{m} {share:.0%}" for m, share in o.mix.items())

    out = [
        "",
        "## What routing buys, on the held-out synthetic queries",
        "",
        f"{result.n_test} held-out queries (a seeded part of every leaf, never trained on). "
        "Quality is the mean true score of the chosen answers; cost is the mean $ per query.",
        "",
        "| routing | quality | $ per 1k queries | model mix |",
        "| --- | --- | --- | --- |",
    ]
    for o in [*result.presets, *result.models, result.oracle]:
        label = f"trouter, preset `{o.name}`" if o.kind == "preset" else o.name
        if o.kind == "model":
            label = f"always {o.name}"
        out.append(f"| {label} | {o.quality:.3f} | ${o.cost * 1000:.4f} | {mix(o)} |")
    out += ["", "### Model mix per held-out leaf (preset `balanced`)", ""]
    out += ["| leaf | models chosen |", "| --- | --- |"]
    for leaf, shares in result.by_leaf.get("balanced", {}).items():
        text = ", ".join(f"{m} {s:.0%}" for m, s in shares.items())
        out.append(f"| {leaf} | {text} |")
    return "\n".join(out) + "\n"


def write_report(
    router: Router,
    train: RoutingDataset,
    val: RoutingDataset | None,
    test: RoutingDataset,
    paths: RunPaths,
    *,
    encoder: tuple[str, str],
    seed: int,
    command: str,
) -> ReportResult:
    """Evaluate `router` on `test`; write report.json, report.md and report.png atomically."""
    from trouter.eval.plot import plot_result

    fold = Fold(FOLD, train, val, test)
    lams = metrics.lambda_grid(test.costs)
    zero, oracle_row, oracle_curve = reference_rows(
        fold, lams, dataset=test.name, protocol=PROTOCOL
    )
    row, crv = evaluate_router(
        router, fold, lams, (zero.aiq, oracle_row.aiq), dataset=test.name, protocol=PROTOCOL
    )
    row, zero, oracle_row = with_bootstrap(
        fold, [row, zero, oracle_row], {row.router: crv.curve, ORACLE: oracle_curve}, seed=seed
    )
    bench = BenchResult(
        RunInfo(
            dataset=test.name,
            protocol=PROTOCOL,
            n_queries=train.n_queries + (val.n_queries if val else 0) + test.n_queries,
            models=test.models,
            cost_note="cost = tokens x the pool's prices, from the usage each endpoint returned",
            encoder=encoder[0],
            encoder_id=encoder[1],
            seed=seed,
            task_level=None,
            routers=(router.name,),
            folds=1,
            started=now(),
            command=command,
        ),
        [
            FoldResult(
                fold=FOLD,
                n_train=train.n_queries,
                n_test=test.n_queries,
                models=test.models,
                single_points=metrics.single_model_points(test.scores, test.costs),
                oracle=oracle_curve,
                curves=(crv,),
                rows=(row, zero, oracle_row),
            )
        ],
    )
    presets, models, oracle, by_leaf = outcomes(router, test)
    result = ReportResult(
        n_test=test.n_queries,
        presets=presets,
        models=models,
        oracle=oracle,
        aiq=row.aiq,
        gap_recovered=finite_or_none(row.gap_recovered),
        gap_se=finite_or_none(row.gap_se),
        by_leaf=by_leaf,
    )
    data = to_json(bench)
    data["coldstart"] = result.model_dump(mode="json")
    atomic_write_text(paths.report_json, json.dumps(data, indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths.report_md, render_markdown(bench) + _markdown(result))
    with tempfile.TemporaryDirectory(dir=paths.out, prefix=".report-") as tmp:
        os.replace(plot_result(bench, Path(tmp)), paths.report_png)  # same filesystem
    return result
