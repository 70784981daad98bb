"""How much does an encoder's embedding of the question say about which model answers it?

A diagnostic on the training split only (nothing here reads a test split): for each task whose
prompts carry boilerplate (few-shot examples, answer-format lines; learned as TRouter learns it),
the question is cut out and embedded, and for each model a 5-fold cross-validated L2 logistic
regression predicts from it whether the model answers correctly. The figure is the held-out
Brier score gained over the task's mean (larger is more per-query signal), the mean over models,
for each regularisation strength C:

    nice -n 10 python benchmarks/question_signal.py --data routerbench_subset \\
        --encoders minilm,st:/path/to/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from trouter.data.loaders import load_dataset
from trouter.encode import load_encoder
from trouter.routers.trouter.views import Boilerplate

STRENGTHS = (0.1, 0.3, 1.0, 3.0)


def brier_gain(x: np.ndarray, correct: np.ndarray, c: float) -> float:
    """Held-out Brier score of the fold's mean minus that of the regression, per query."""
    gain = 0.0
    for fit, held in KFold(5, shuffle=True, random_state=0).split(x):
        base = correct[fit].mean()
        if 0 < base < 1:
            model = LogisticRegression(C=c, max_iter=2000).fit(x[fit], correct[fit])
            p = model.predict_proba(x[held])[:, 1]
        else:
            p = np.full(len(held), base)
        gain += np.sum((base - correct[held]) ** 2) - np.sum((p - correct[held]) ** 2)
    return gain / len(correct)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--encoders", default="minilm")
    args = parser.parse_args()
    data = load_dataset(args.data)
    split = data.own_split() or data.split(seed=0)
    train = split.train
    boilerplate = Boilerplate.learn(train.queries)
    questions = [boilerplate.strip(q) for q in train.queries]
    tasks = np.asarray(train.tasks)
    for spec in args.encoders.split(","):
        x = load_encoder(spec, cache=True).encode(questions)
        for task in sorted(set(train.tasks)):
            rows = np.flatnonzero(tasks == task)
            if all(questions[i] == train.queries[i] for i in rows):
                continue  # no boilerplate: the prompt is the question
            correct = train.scores[rows] > 0.5
            told = [j for j in range(correct.shape[1]) if 0 < correct[:, j].mean() < 1]
            for c in STRENGTHS:
                gains = [brier_gain(x[rows], correct[:, j], c) for j in told]
                print(
                    f"{spec[:40]:40s} {task:20s} n={len(rows):5d} C={c:<4g} "
                    f"Brier gain {np.mean(gains):+.4f} (per model {min(gains):+.3f}..{max(gains):+.3f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
