"""How TRouter's defaults were chosen: gap recovered on validation folds carved from TRAIN only.

For a dataset, take the training part of its in-domain split (the shipped train split, else the
70% of the seeded 70/10/20 split), hold out 25% of each task (`RoutingDataset.holdout`, seeds
100 + k) as validation, fit every variant on the rest (it carves its own early-stopping split
from that), and score it on the held-out 25% with `trouter.eval.metrics`. The test parts are
never read. One set of defaults was then chosen for every dataset (RESULTS-trouter.md).

Besides the gap recovered, each line gives (data with tasks) the `balanced` gap, every task
weighted equally, and the `within-task` gap, the mean over tasks of the gap recovered on that
task's queries alone against that task's best single model: the per-query signal a router finds
beyond knowing the task.

    nice -n 10 python benchmarks/trouter_selection.py --data llmrouter_9models --folds 6 \
        --variants '[["paper", "trouter-paper", {}], ["smoothed", "trouter-paper", {"prior_smoothing": 0.2}]]'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.data.loaders import load_dataset
from trouter.eval import metrics
from trouter.routers.base import Router
from trouter.routers.registry import make_router

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trouter_ablation import MemoEncoder

HOLDOUT = 0.25


def training_part(dataset: RoutingDataset) -> RoutingDataset:
    own = dataset.own_split()
    return own.train if own is not None else dataset.split(seed=0).train


def gap(router: Router, held: RoutingDataset) -> tuple[float, float]:
    """(AIQ, gap recovered) of a fitted router on the held-out validation part."""
    est = router.predict(held.queries)
    S, C = held.scores, held.costs
    a = metrics.aiq(metrics.curve(est.quality, est.cost, S, C), S, C)
    zero, oracle = metrics.zero_aiq(S, C), metrics.aiq(metrics.oracle_curve(S, C), S, C)
    return a, metrics.gap_recovered(a, zero, oracle)


def balanced_gap(
    router_quality: np.ndarray, router_cost: np.ndarray, held: RoutingDataset
) -> float:
    """Gap recovered with every task weighted equally (rows rescaled by n / (tasks * n_task)).

    Scaling a query's true scores and costs by a positive weight leaves every pick unchanged
    (the router's picks come from its estimates, the oracle's argmax of w * (s - lam * c) is the
    same), so the curve's means become task-balanced means.
    """
    tasks = np.asarray(held.tasks)
    names, counts = np.unique(tasks, return_counts=True)
    per = dict(zip(names, counts, strict=True))
    w = np.asarray([len(tasks) / (len(names) * per[t]) for t in tasks])[:, None]
    S, C = held.scores * w, held.costs * w
    lams = metrics.lambda_grid(held.costs)
    a = metrics.aiq(metrics.curve(router_quality, router_cost, S, C, lams), S, C)
    zero = metrics.zero_aiq(S, C)
    oracle = metrics.aiq(metrics.oracle_curve(S, C, lams), S, C)
    return metrics.gap_recovered(a, zero, oracle)


def within_task_gap(
    router_quality: np.ndarray, router_cost: np.ndarray, held: RoutingDataset
) -> float:
    """Mean over tasks of the gap recovered on that task's queries alone (the zero router being
    that task's best single model): the per-query, within-task routing signal."""
    tasks = np.asarray(held.tasks)
    S, C = held.scores, held.costs
    gaps = []
    for t in np.unique(tasks):
        rows = tasks == t
        s, c = S[rows], C[rows]
        a = metrics.aiq(metrics.curve(router_quality[rows], router_cost[rows], s, c), s, c)
        g = metrics.gap_recovered(
            a, metrics.zero_aiq(s, c), metrics.aiq(metrics.oracle_curve(s, c), s, c)
        )
        if np.isfinite(g):
            gaps.append(g)
    return float(np.mean(gaps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument(
        "--variants", required=True, help="JSON list of [label, registry name, params]"
    )
    args = parser.parse_args()
    train = training_part(load_dataset(args.data))
    folds = [train.holdout(HOLDOUT, seed=100 + k) for k in range(args.folds)]
    encoder = MemoEncoder(args.encoder)
    for label, name, params in json.loads(args.variants):
        gaps, aiqs, seconds, balanced, within = [], [], [], [], []
        for rest, held in folds:
            start = time.perf_counter()
            router = make_router(name, encoder=encoder, seed=0, **params).fit(rest)
            seconds.append(time.perf_counter() - start)
            a, g = gap(router, held)
            aiqs.append(a)
            gaps.append(g)
            if held.has_tasks:
                est = router.predict(held.queries)
                balanced.append(balanced_gap(est.quality, est.cost, held))
                within.append(within_task_gap(est.quality, est.cost, held))
        extra = (
            f" balanced {np.mean(balanced):.4f} within-task {np.mean(within):.4f}"
            if balanced
            else ""
        )
        print(
            f"{args.data:20s} {label:24s} gap {np.mean(gaps):.4f} "
            f"({' '.join(f'{g:.3f}' for g in gaps)}) AIQ {np.mean(aiqs):.4f}{extra} "
            f"fit {np.mean(seconds):.1f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
