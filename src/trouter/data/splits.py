"""Splits of a `RoutingDataset`: the one shipped with the data, a seeded split stratified by
task, and one task held out. Each part is a `RoutingDataset` keeping the dataset's query order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trouter.data.checks import SPLITS
from trouter.data.table import TASK_SEP
from trouter.errors import DataError

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset


@dataclass(frozen=True)
class DatasetSplit:
    """Train / validation / test parts of one dataset (validation may be empty)."""

    train: RoutingDataset
    val: RoutingDataset
    test: RoutingDataset


def own_split(dataset: RoutingDataset) -> DatasetSplit | None:
    """The split shipped with the data, if any (see `RoutingDataset.own_split`)."""
    splits = dataset.splits
    if splits is None:
        return None
    ids = np.asarray(dataset.query_ids, dtype=object)
    tags = np.asarray(splits, dtype=object)
    return DatasetSplit(
        train=dataset.subset(ids[tags == "train"], f"{dataset.name}:train"),
        val=dataset.subset(ids[tags == "val"], f"{dataset.name}:val"),
        test=dataset.subset(ids[tags == "test"], f"{dataset.name}:test"),
    )


def seeded_split(
    dataset: RoutingDataset, seed: int, fractions: tuple[float, float, float]
) -> DatasetSplit:
    """A seeded random split stratified by task (see `RoutingDataset.split`)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(
            f"split seed must be a whole number of 0 or more, not {seed!r}; the same seed "
            "gives the same split on every run"
        )
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise DataError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[str]] = {s: [] for s in SPLITS}
    ids = np.asarray(dataset.query_ids, dtype=object)
    tasks = np.asarray(dataset.tasks, dtype=object)
    for task in sorted(set(tasks.tolist())):
        members = ids[tasks == task]
        members = members[rng.permutation(len(members))]
        n_train, n_val, _ = split_sizes(len(members), fractions)
        parts["train"].extend(members[:n_train])
        parts["val"].extend(members[n_train : n_train + n_val])
        parts["test"].extend(members[n_train + n_val :])
    position = {qid: i for i, qid in enumerate(dataset.query_ids)}
    return DatasetSplit(
        *(
            dataset.subset(sorted(parts[s], key=position.__getitem__), f"{dataset.name}:{s}")
            for s in SPLITS
        )
    )


def leave_task_out(dataset: RoutingDataset, task: str) -> tuple[RoutingDataset, RoutingDataset]:
    """(the other tasks' queries, the queries of `task` and its sub-tasks)."""
    held = [t == task or t.startswith(task + TASK_SEP) for t in dataset.tasks]
    if not any(held):
        raise DataError(
            f"{dataset.name}: no queries with task {task!r}; "
            f"tasks: {', '.join(dataset.task_names[:20])}"
        )
    ids = np.asarray(dataset.query_ids, dtype=object)
    mask = np.asarray(held)
    return dataset.subset(ids[~mask], f"{dataset.name}:-{task}"), dataset.subset(
        ids[mask], f"{dataset.name}:{task}"
    )


def split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    """(train, val, test) sizes of a task of `n` queries under `RoutingDataset.split`."""
    n_train = round(fractions[0] * n)
    n_val = round(fractions[1] * n)
    return n_train, n_val, n - n_train - n_val
