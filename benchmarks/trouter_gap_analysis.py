"""Where the remaining gap lies on two shipped test splits (a diagnostic, not tuning).

routerbench_subset: the gap recovered (`trouter.eval.metrics`) of idealised routers on the test
split:

- the per-task mean router (train means), and the same with the means measured on the test set
  itself: the ceiling of any router that only knows the task;
- the per-task mean router told the true outcomes of one task's queries (the whole gap that task
  holds), and told only a fraction w of them (quality = (1 - w) * task mean + w * truth);
- how much the MiniLM embedding can tell apart within a task: the number of distinct embeddings
  per task (the encoder reads 256 word pieces; ARC-C and Winogrande prompts open with the same
  few-shot examples for 1,500+ characters);
- TRouter, mf and linear (seed 0): the gap, the task-balanced gap (`trouter_selection`), and the
  gap on each task's queries alone, against that task's own zero router and oracle.

llmrouter_9models: is its test split shifted in what the queries look like, or in how the models
do on them? The per-task mean router with training and with test means, and, for a TRouter
fitted on 75% of the training split, its q(t|x) confidence, how often its top task type is the
query's task, and each query's cosine similarity to its nearest training query, on the held-out
25% (validation) and on the test split.

    nice -n 10 python benchmarks/trouter_gap_analysis.py
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.data.loaders import load_dataset
from trouter.encode import load_encoder
from trouter.eval import metrics
from trouter.routers.registry import make_router

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trouter_selection import balanced_gap


def per_task_means(train: RoutingDataset, test: RoutingDataset) -> tuple[np.ndarray, ...]:
    """(train-mean quality, train-mean cost, test-mean quality) of each test query's task."""
    names = train.task_names
    t_train, t_test = np.asarray(train.tasks), np.asarray(test.tasks)
    rows = [names.index(t) for t in test.tasks]
    mean_q = np.asarray([train.scores[t_train == t].mean(axis=0) for t in names])[rows]
    mean_c = np.asarray([train.costs[t_train == t].mean(axis=0) for t in names])[rows]
    own = {t: test.scores[t_test == t].mean(axis=0) for t in set(test.tasks)}
    test_q = np.asarray([own[t] for t in test.tasks])
    return mean_q, mean_c, test_q


def gap_on(test: RoutingDataset) -> Callable[[np.ndarray, np.ndarray], float]:
    S, C = test.scores, test.costs
    zero, oracle = metrics.zero_aiq(S, C), metrics.aiq(metrics.oracle_curve(S, C), S, C)

    def gap(quality: np.ndarray, cost: np.ndarray) -> float:
        a = metrics.aiq(metrics.curve(quality, cost, S, C), S, C)
        return metrics.gap_recovered(a, zero, oracle)

    return gap


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()  # no options: --help describes it instead of running it
    routerbench()
    llmrouter()


def routerbench() -> None:
    print("routerbench_subset, shipped test split")
    split = load_dataset("routerbench_subset").own_split()
    assert split is not None
    train, test = split.train, split.test
    S, C = test.scores, test.costs
    names = train.task_names
    t_test = np.asarray(test.tasks)
    gap = gap_on(test)
    mean_q, mean_c, test_q = per_task_means(train, test)
    print(f"per-task mean router (train means):       gap {gap(mean_q, mean_c):.3f}")
    print(f"per-task mean router (test means):        gap {gap(test_q, mean_c):.3f}")
    print(f"per-task means + true per-query costs:    gap {gap(mean_q, C):.3f}")
    for task in names:
        held = t_test == task
        told = mean_q.copy()
        told[held] = S[held]
        cells = []
        for w in (0.1, 0.2):
            partial = mean_q.copy()
            partial[held] = (1 - w) * mean_q[held] + w * S[held]
            cells.append(f"w={w}: {gap(partial, mean_c):.3f}")
        print(f"told {task:14s} outcomes: gap {gap(told, mean_c):.3f} (partly: {', '.join(cells)})")
    encoder = load_encoder("minilm", cache=True)
    x = encoder.encode(test.queries)
    for task in names:
        distinct = len({v.tobytes() for v in np.round(x[t_test == task], 4)})
        print(f"{task:14s}: {(t_test == task).sum()} test queries, {distinct} distinct embeddings")
    for name in ("trouter", "mf", "linear"):
        est = make_router(name, encoder=encoder, seed=0).fit(train).predict(test.queries)
        cells = []
        for task in names:
            rows = t_test == task
            alone = test.subset(np.asarray(test.query_ids)[rows])
            cells.append(f"{task} {gap_on(alone)(est.quality[rows], est.cost[rows]):.3f}")
        print(
            f"{name:8s}: gap {gap(est.quality, est.cost):.3f}, task-balanced "
            f"{balanced_gap(est.quality, est.cost, test):.3f}; on each task's queries alone: "
            + ", ".join(cells)
        )


def llmrouter() -> None:
    print("llmrouter_9models, shipped test split")
    split = load_dataset("llmrouter_9models").own_split()
    assert split is not None
    train, test = split.train, split.test
    gap = gap_on(test)
    mean_q, mean_c, test_q = per_task_means(train, test)
    print(f"per-task mean router (train means):       gap {gap(mean_q, mean_c):.3f}")
    print(f"per-task mean router (test means):        gap {gap(test_q, mean_c):.3f}")
    encoder = load_encoder("minilm", cache=True)
    rest, held = train.holdout(0.25, seed=100)
    router = make_router("trouter", encoder=encoder, seed=0).fit(rest)
    x_rest = encoder.encode(rest.queries)
    for name, part in (("validation", held), ("test", test)):
        est = router.predict(part.queries)
        top = np.asarray(est.task_names)[est.task_probs.argmax(axis=1)]
        agree = np.mean(top == np.asarray(part.tasks))
        confidence = est.task_probs.max(axis=1)
        nearest = (encoder.encode(part.queries) @ x_rest.T).max(axis=1)
        print(
            f"{name:10s}: q(t|x) max p50 {np.median(confidence):.2f} p10 "
            f"{np.percentile(confidence, 10):.2f}; top type = task {agree:.2f}; cosine to the "
            f"nearest training query p50 {np.median(nearest):.2f} p10 {np.percentile(nearest, 10):.2f}"
        )


if __name__ == "__main__":
    main()
