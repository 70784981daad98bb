"""Evaluation protocols: how a dataset is cut into (train, val, test) folds.

- `in-domain`: one fold named "test". The dataset's own split when it ships one
  (`RoutingDataset.own_split`; its validation part may be empty), else a seeded 70/10/20 split
  per task.
- `leave-task-out`: one fold per task, named after it: train on every other task, test on it; the
  real-data stand-in for cold start. Tasks are "/"-paths, so `task_level=N` groups them by their
  first N levels (routellm's "mmlu/stem/abstract_algebra" at level 2 is "mmlu/stem"). A group
  with fewer than `min_queries` (30) queries is too small to test on: it is lifted to its parent
  level, merged with its siblings (routellm's eight MT-Bench categories of 10 queries become one
  "mt_bench" fold; small tasks whose siblings stay are pooled as "<parent>/(small tasks)").
  Every split of the data is pooled first; 10% of each training task is held out as validation
  (seeded). Queries without a task label are always in training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from trouter.data.dataset import TASK_SEP, RoutingDataset
from trouter.errors import DataError

Protocol = Literal["in-domain", "leave-task-out"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
IN_DOMAIN_FRACTIONS = (0.7, 0.1, 0.2)
LEAVE_OUT_VAL_FRACTION = 0.1
MIN_FOLD_QUERIES = 30
SMALL_TASKS = "(small tasks)"


@dataclass(frozen=True)
class Fold:
    """One train / validation / test cut; `name` is "test" or the held-out task."""

    name: str
    train: RoutingDataset
    val: RoutingDataset | None
    test: RoutingDataset


def group_labels(
    tasks: Sequence[str], task_level: int | None = None, min_queries: int = MIN_FOLD_QUERIES
) -> list[str]:
    """The leave-task-out group of each query ("" for an unlabelled query); see the module doc."""
    if task_level is not None and task_level < 1:
        raise DataError(f"task level must be 1 or more, got {task_level}")
    labels = [TASK_SEP.join(t.split(TASK_SEP)[:task_level]) if task_level else t for t in tasks]
    while True:
        counts = Counter(label for label in labels if label)
        # A pooled "(small tasks)" group stays as it is: its siblings are big enough to keep.
        small = {
            g
            for g, n in counts.items()
            if n < min_queries and TASK_SEP in g and not g.endswith(SMALL_TASKS)
        }
        if not small:
            return labels
        lifted: dict[str, str] = {}
        for group in small:
            parent = group.rsplit(TASK_SEP, 1)[0]
            staying = [g for g in counts if g not in small and g.startswith(parent + TASK_SEP)]
            lifted[group] = f"{parent}{TASK_SEP}{SMALL_TASKS}" if staying else parent
        labels = [lifted.get(label, label) for label in labels]


def task_groups(
    dataset: RoutingDataset, task_level: int | None = None, min_queries: int = MIN_FOLD_QUERIES
) -> list[str]:
    """The distinct leave-task-out groups of a dataset, sorted."""
    return sorted({g for g in group_labels(dataset.tasks, task_level, min_queries) if g})


def in_domain(dataset: RoutingDataset, seed: int = 0) -> list[Fold]:
    """The dataset's own split if it has one, else a seeded 70/10/20 split per task."""
    own = dataset.own_split()
    if own is not None:
        parts = own
        source = "its own split"
    else:
        parts = dataset.split(seed=seed, fractions=IN_DOMAIN_FRACTIONS)
        source = "a 70/10/20 split"
    if parts.test.n_queries == 0:
        raise DataError(
            f"{dataset.name}: {source} leaves no test queries; give the data more rows "
            "(or test rows, if it carries a split column)"
        )
    if parts.train.n_queries == 0:
        raise DataError(f"{dataset.name}: {source} leaves no training queries")
    val = parts.val if parts.val.n_queries else None
    return [Fold("test", parts.train, val, parts.test)]


def leave_task_out(
    dataset: RoutingDataset,
    seed: int = 0,
    task_level: int | None = None,
    min_queries: int = MIN_FOLD_QUERIES,
) -> list[Fold]:
    """One fold per task group: train (and validate) on the others, test on it."""
    labels = np.asarray(group_labels(dataset.tasks, task_level, min_queries), dtype=object)
    groups = sorted({g for g in labels.tolist() if g})
    if not groups:
        raise DataError(
            f"{dataset.name}: leave-task-out needs task labels, and this dataset has none; "
            "use --protocol in-domain"
        )
    if len(groups) < 2:
        deeper = " (or a higher --task-level)" if task_level else ""
        raise DataError(
            f"{dataset.name}: leave-task-out needs at least two tasks, found only {groups[0]!r}; "
            f"use --protocol in-domain{deeper}"
        )
    ids = np.asarray(dataset.query_ids, dtype=object)
    folds = []
    for group in groups:
        held = labels == group
        rest = dataset.subset(ids[~held], f"{dataset.name}:-{group}")
        test = dataset.subset(ids[held], f"{dataset.name}:{group}")
        train, val = rest.holdout(LEAVE_OUT_VAL_FRACTION, seed=seed)
        if train.n_queries == 0:
            train, val = rest, rest.subset([])
        folds.append(Fold(group, train, val if val.n_queries else None, test))
    return folds


def make_folds(
    dataset: RoutingDataset, protocol: str, seed: int = 0, task_level: int | None = None
) -> list[Fold]:
    """The folds of `protocol` ("in-domain" or "leave-task-out") on `dataset`."""
    if dataset.n_queries == 0:
        raise DataError(f"{dataset.name}: the dataset has no queries")
    if protocol == "in-domain":
        return in_domain(dataset, seed)
    if protocol == "leave-task-out":
        return leave_task_out(dataset, seed, task_level)
    raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
