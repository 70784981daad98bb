"""Cost-quality plots (matplotlib, Agg backend, PNG): every router's lambda-sweep curve, single
models as points, the oracle dashed. Up to six folds get one panel each; more folds get a summary
(gap recovered per fold, and the curves of the largest fold)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from trouter.eval.metrics import upper_hull
from trouter.eval.results import BenchResult, FoldResult

PLOT_FILE = "cost_quality.png"
MAX_PANELS = 6


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _short(model: str) -> str:
    return model.rsplit("/", 1)[-1][:22]


def _draw_fold(ax: Any, fold: FoldResult, colors: dict[str, Any], legend: bool) -> None:
    singles = fold.single_points
    costs = [singles[:, 0], fold.oracle.costs] + [c.curve.costs for c in fold.curves]
    all_costs = np.concatenate(costs)
    positive = all_costs[all_costs > 0]
    if positive.size and positive.max() / positive.min() > 20:
        ax.set_xscale("log")
    for rc in fold.curves:
        order = np.argsort(rc.curve.costs, kind="stable")
        ax.plot(
            rc.curve.costs[order],
            rc.curve.scores[order],
            "-",
            lw=1.4,
            color=colors[rc.router],
            label=rc.router,
        )
        distinct = np.unique(rc.curve.points(), axis=0)
        if len(distinct) <= 3:  # a curve stuck at a few points would hide under a model's dot
            ax.scatter(distinct[:, 0], distinct[:, 1], marker="x", s=40, color=colors[rc.router])
    order = np.argsort(fold.oracle.costs, kind="stable")
    ax.plot(
        fold.oracle.costs[order],
        fold.oracle.scores[order],
        "--",
        color="black",
        lw=1.2,
        label="oracle",
    )
    hull = upper_hull(singles)
    ax.plot(hull[:, 0], hull[:, 1], ":", color="grey", lw=1.0, label="zero (single-model hull)")
    ax.scatter(singles[:, 0], singles[:, 1], s=18, color="grey", zorder=3)
    if len(fold.models) <= 12:
        for model, (c, s) in zip(fold.models, singles, strict=True):
            ax.annotate(
                _short(model), (c, s), fontsize=6, xytext=(3, -3), textcoords="offset points"
            )
    ax.set_title(f"{fold.fold} (test {fold.n_test})", fontsize=9)
    # Tick labels in $ per 1k queries: per-query dollars are 1e-5-sized and their labels collide.
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 1000:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("mean $ per 1k queries")
    ax.set_ylabel("mean score")
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="lower right")


def plot_result(result: BenchResult, out_dir: Path) -> Path:
    """Write the cost-quality PNG for a benchmark result and return its path."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PLOT_FILE
    routers = [r for r in result.routers if r not in ("zero", "oracle")]
    cmap = plt.get_cmap("tab10")
    colors = {name: cmap(i % 10) for i, name in enumerate(routers)}
    folds = result.folds
    if len(folds) <= MAX_PANELS:
        cols = min(3, len(folds))
        rows = -(-len(folds) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
        for k, fold in enumerate(folds):
            _draw_fold(axes[k // cols][k % cols], fold, colors, legend=k == 0)
        for k in range(len(folds), rows * cols):
            axes[k // cols][k % cols].axis("off")
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
        names = [f.fold for f in folds]
        x = np.arange(len(folds))
        for name in routers:
            gaps = [
                next((r.gap_recovered for r in f.rows if r.router == name), None) for f in folds
            ]
            y = np.array([np.nan if g is None else g for g in gaps], dtype=float)
            left.plot(x, y, "o-", ms=4, lw=0.8, color=colors[name], label=name)
        left.axhline(0.0, color="grey", lw=0.8)
        left.axhline(1.0, color="black", ls="--", lw=0.8)
        left.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        left.set_ylabel("gap recovered (0 = zero router, 1 = oracle)")
        left.set_title("gap recovered per held-out task", fontsize=9)
        left.grid(alpha=0.3)
        left.legend(fontsize=7)
        largest = max(folds, key=lambda f: f.n_test)
        _draw_fold(right, largest, colors, legend=True)
        right.set_title(f"largest fold: {largest.fold} (test {largest.n_test})", fontsize=9)
    fig.suptitle(f"{result.dataset} · {result.protocol}", fontsize=11)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=120)
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
