"""Where routerbench_subset's zero-to-oracle gap lies (a diagnostic of the test split, not tuning).

Prints the gap recovered (`trouter.eval.metrics`) of idealised routers on the shipped test split:

- the per-task mean router (train means), and the same with the means measured on the test set
  itself: the ceiling of any router that only knows the task;
- the per-task mean router told the true outcomes of one task's queries (the whole gap that task
  holds), and told only a fraction w of them (quality = (1 - w) * task mean + w * truth);
- how much the MiniLM embedding can tell apart within a task: the number of distinct embeddings
  per task (the encoder reads 256 word pieces; ARC-C and Winogrande prompts open with the same
  few-shot examples for 1,500+ characters).

    nice -n 10 python benchmarks/trouter_gap_analysis.py
"""

from __future__ import annotations

import numpy as np

from trouter.data.loaders import load_dataset
from trouter.encode import load_encoder
from trouter.eval import metrics


def main() -> None:
    split = load_dataset("routerbench_subset").own_split()
    assert split is not None
    train, test = split.train, split.test
    S, C = test.scores, test.costs
    names = train.task_names
    t_train, t_test = np.asarray(train.tasks), np.asarray(test.tasks)
    rows = [names.index(t) for t in test.tasks]
    zero, oracle = metrics.zero_aiq(S, C), metrics.aiq(metrics.oracle_curve(S, C), S, C)

    def gap(quality: np.ndarray, cost: np.ndarray) -> float:
        a = metrics.aiq(metrics.curve(quality, cost, S, C), S, C)
        return metrics.gap_recovered(a, zero, oracle)

    mean_q = np.asarray([train.scores[t_train == t].mean(axis=0) for t in names])[rows]
    mean_c = np.asarray([train.costs[t_train == t].mean(axis=0) for t in names])[rows]
    test_q = np.asarray([S[t_test == t].mean(axis=0) for t in names])[rows]
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


if __name__ == "__main__":
    main()
