"""`RoutingDataset`: which model did how well, at what cost, on which query.

The dataset is a long table with one row per (query, model) observation:

    query_id  query  task  model  score  cost  tokens_in  tokens_out  latency  [split]

`score` is in [0, 1] (NaN when not recorded), `cost` in dollars, `tokens_*` and `latency`
(seconds) are NaN when unknown. `task` is a taxonomy path whose levels are joined by "/"
("math/algebra/hard"), a flat task name ("gsm8k"), or "" when unknown. The optional `split`
column carries a split shipped with the data ("train" / "val" / "test").

Routers and metrics use the matrix views (`scores[n, m]`, `costs[n, m]`), in the order of
`query_ids` and `models`. The object is immutable: every transformation returns a new dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

import trouter.data.splits as splitting
from trouter.data.checks import check_scored, check_table
from trouter.data.dataset_file import read_dataset, write_dataset
from trouter.data.splits import DatasetSplit, split_sizes
from trouter.data.table import (
    TASK_SEP,
    FloatMatrix,
    matrices_frame,
    model_names,
    normalise,
    one_task_per_query,
)
from trouter.errors import DataError
from trouter.pool import Pool

# Names other modules import from here, wherever they are defined.
__all__ = ["NO_COSTS_NOTE", "TASK_SEP", "DatasetSplit", "RoutingDataset", "split_sizes"]

# The cost note of data without a single cost (reports print it where they print the note).
NO_COSTS_NOTE = "missing (the data has no costs: every cost counts as $0, so routing ignores cost)"


class RoutingDataset:
    """Per-query, per-model outcomes with matrix views for routers and metrics.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({
    ...     "query_id": ["q1", "q1", "q2", "q2"], "query": ["2+2?", "2+2?", "Prove it.", "Prove it."],
    ...     "model": ["small", "big", "small", "big"], "score": [1.0, 1.0, 0.0, 1.0],
    ...     "cost": [0.001, 0.01, 0.001, 0.02]})
    >>> ds = RoutingDataset(rows, name="toy")
    >>> ds.scores.tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        name: str = "dataset",
        models: Sequence[str] | str | None = None,
        pool: Pool | None = None,
        cost_note: str = "",
        validate: bool = True,
    ) -> None:
        frame = normalise(frame)
        if validate:
            check_table(frame, name)
            frame = one_task_per_query(frame)
        if models is None:
            models = list(dict.fromkeys(frame["model"].tolist()))
        models = model_names(models)
        repeated = sorted({m for m in models if list(models).count(m) > 1})
        if repeated:
            raise DataError(f"{name}: the model list names {', '.join(repeated)} more than once")
        self.models: tuple[str, ...] = tuple(models)
        if validate:
            unknown = sorted(set(frame["model"]) - set(self.models))
            if unknown:
                raise DataError(
                    f"{name}: rows name models outside the model list: {', '.join(unknown[:5])}"
                )
            check_scored(frame, self.models, name)
        if pool is not None:
            missing = [m for m in self.models if m not in pool]
            if missing:
                raise DataError(
                    f"{name}: models {', '.join(missing)} are not in the pool "
                    f"({', '.join(pool.names)}); add them to the pool file or drop their rows"
                )
            pool = pool.subset(self.models)
        self.frame = frame
        self.name = name
        self.pool = pool
        if not cost_note and frame["cost"].isna().all():
            cost_note = NO_COSTS_NOTE
        self.cost_note = cost_note

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_matrices(
        cls,
        *,
        query_ids: Sequence[str],
        queries: Sequence[str],
        models: Sequence[str] | str,
        scores: npt.ArrayLike,
        costs: npt.ArrayLike | None = None,
        tasks: Sequence[str] | None = None,
        tokens_in: npt.ArrayLike | None = None,
        tokens_out: npt.ArrayLike | None = None,
        splits: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> RoutingDataset:
        """Build from wide [n, m] matrices (a convenient form for loaders and tests).

        `queries`, `tasks` and `splits` hold one entry per query id; `scores` and `costs` are
        [n queries, m models]; `tokens_in` / `tokens_out` may also be [n], one count per query
        shared by every model. A wrong length or shape is a `DataError` naming the argument.
        """
        frame, names = matrices_frame(
            query_ids=query_ids,
            queries=queries,
            models=models,
            scores=scores,
            costs=costs,
            tasks=tasks,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            splits=splits,
        )
        return cls(frame, models=names, **kwargs)

    # ------------------------------------------------------------------ query-level views
    @cached_property
    def _query_table(self) -> pd.DataFrame:
        cols = ["query_id", "query", "task"] + (["split"] if "split" in self.frame else [])
        return self.frame.drop_duplicates("query_id")[cols].reset_index(drop=True)

    @cached_property
    def _row_index(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        qpos = pd.Index(self._query_table["query_id"]).get_indexer(pd.Index(self.frame["query_id"]))
        mpos = pd.Index(self.models).get_indexer(pd.Index(self.frame["model"]))
        return qpos, mpos

    @property
    def n_queries(self) -> int:
        return len(self._query_table)

    @property
    def n_models(self) -> int:
        return len(self.models)

    def __len__(self) -> int:
        return self.n_queries

    def __repr__(self) -> str:
        return f"RoutingDataset({self.name!r}, {self.n_queries} queries x {self.n_models} models, {len(self.task_names)} tasks)"

    @property
    def query_ids(self) -> list[str]:
        return self._query_table["query_id"].tolist()

    @property
    def queries(self) -> list[str]:
        return self._query_table["query"].tolist()

    @property
    def tasks(self) -> list[str]:
        """Task label (a "/"-joined taxonomy path, or "") per query."""
        return self._query_table["task"].tolist()

    @property
    def task_paths(self) -> list[tuple[str, ...]]:
        return [tuple(t.split(TASK_SEP)) if t else () for t in self.tasks]

    @property
    def task_names(self) -> list[str]:
        """Distinct non-empty task labels, sorted."""
        return sorted({t for t in self.tasks if t})

    @property
    def has_tasks(self) -> bool:
        return bool(self.task_names)

    @property
    def splits(self) -> list[str] | None:
        if "split" not in self._query_table:
            return None
        return self._query_table["split"].tolist()

    # ------------------------------------------------------------------ matrix views
    def _matrix(self, column: str) -> FloatMatrix:
        out = np.full((self.n_queries, self.n_models), np.nan)
        qpos, mpos = self._row_index
        out[qpos, mpos] = self.frame[column].to_numpy(dtype=np.float64)
        out.setflags(write=False)
        return out

    @cached_property
    def scores_raw(self) -> FloatMatrix:
        """Scores [n, m] with NaN where no score was recorded."""
        return self._matrix("score")

    @cached_property
    def scores(self) -> FloatMatrix:
        """Scores [n, m]; a missing score counts as 0 (DESIGN.md's metric rule)."""
        out = np.nan_to_num(self.scores_raw, nan=0.0)
        out.setflags(write=False)
        return out

    @cached_property
    def costs_raw(self) -> FloatMatrix:
        return self._matrix("cost")

    @cached_property
    def costs(self) -> FloatMatrix:
        """Dollar cost [n, m]; a missing cost is that model's mean observed cost (0 if none)."""
        raw = self.costs_raw
        observed = ~np.isnan(raw)
        counts = observed.sum(axis=0)
        col_mean = np.where(
            counts > 0, np.where(observed, raw, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.0
        )
        out = np.where(observed, raw, col_mean[None, :])
        out.setflags(write=False)
        return out

    @cached_property
    def tokens_in(self) -> FloatMatrix:
        return self._matrix("tokens_in")

    @cached_property
    def tokens_out(self) -> FloatMatrix:
        return self._matrix("tokens_out")

    @cached_property
    def latency(self) -> FloatMatrix:
        return self._matrix("latency")

    @property
    def has_tokens(self) -> bool:
        """True when every observation with a score also has input and output token counts."""
        observed = ~np.isnan(self.scores_raw)
        return bool(observed.any()) and bool(
            np.all(~np.isnan(self.tokens_in[observed]))
            and np.all(~np.isnan(self.tokens_out[observed]))
        )

    # ------------------------------------------------------------------ subsets and splits
    def _derive(self, frame: pd.DataFrame, name: str | None = None) -> RoutingDataset:
        return RoutingDataset(
            frame.reset_index(drop=True),
            name=name or self.name,
            models=self.models,
            pool=self.pool,
            cost_note=self.cost_note,
            validate=False,
        )

    def subset(self, query_ids: Iterable[str] | str, name: str | None = None) -> RoutingDataset:
        """The rows of the given queries, in the given order; a single id is that one query."""
        if isinstance(query_ids, str):  # not one query per character of the id
            query_ids = [query_ids]
        order = {qid: i for i, qid in enumerate(dict.fromkeys(query_ids))}
        known = set(self._query_table["query_id"])
        unknown = [qid for qid in order if qid not in known]
        if unknown:
            shown = ", ".join(map(repr, unknown[:3])) + (" ..." if len(unknown) > 3 else "")
            raise DataError(
                f"{self.name}: subset names {len(unknown)} query id(s) the dataset does not "
                f"hold ({shown}); take the ids from its query_ids"
            )
        keep = self.frame["query_id"].map(order)
        frame = self.frame[keep.notna()].copy()
        frame["_order"] = keep[keep.notna()]
        frame = frame.sort_values("_order", kind="stable").drop(columns="_order")
        return self._derive(frame, name)

    def select_models(self, models: Sequence[str] | str) -> RoutingDataset:
        """The observations of `models` only, in that order; a single name is one model."""
        models = model_names(models)
        if not models:
            raise DataError(
                f"{self.name}: select_models got no model names; name at least one of "
                f"{', '.join(self.models)}"
            )
        repeated = sorted({m for m in models if models.count(m) > 1})
        if repeated:
            raise DataError(
                f"{self.name}: select_models names {', '.join(repeated)} more than once; "
                "name each model once"
            )
        missing = [m for m in models if m not in self.models]
        if missing:
            raise DataError(
                f"{self.name}: no such models: {', '.join(missing)}; it has {', '.join(self.models)}"
            )
        frame = self.frame[self.frame["model"].isin(models)]
        return RoutingDataset(
            frame.reset_index(drop=True),
            name=self.name,
            models=models,
            pool=self.pool.subset(models) if self.pool else None,
            cost_note=self.cost_note,
            validate=False,
        )

    def with_tasks(self, tasks: Sequence[str]) -> RoutingDataset:
        """A copy whose per-query task labels are replaced (e.g. by `trouter annotate`)."""
        if len(tasks) != self.n_queries:
            raise DataError(f"{len(tasks)} task labels for {self.n_queries} queries")
        mapping = dict(zip(self.query_ids, tasks, strict=True))
        frame = self.frame.copy()
        frame["task"] = frame["query_id"].map(mapping)
        return self._derive(frame)

    def own_split(self) -> DatasetSplit | None:
        """The split shipped with the data, if any (its validation part may be empty)."""
        return splitting.own_split(self)

    def split(
        self, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    ) -> DatasetSplit:
        """Seeded random split, stratified by task, into train / val / test.

        The same seed gives the same split on every run; `seed` must be an int of 0 or more
        (None, which would draw a fresh split each time, is refused: runs are reproducible).
        """
        return splitting.seeded_split(self, seed, fractions)

    def holdout(
        self, fraction: float = 0.1, seed: int = 0
    ) -> tuple[RoutingDataset, RoutingDataset]:
        """(rest, held-out part) with `fraction` of each task's queries held out; for early stopping."""
        parts = self.split(seed=seed, fractions=(1.0 - fraction, fraction, 0.0))
        return parts.train, parts.val

    def leave_task_out(self, task: str) -> tuple[RoutingDataset, RoutingDataset]:
        """(every query of the other tasks, the queries of `task`); a task matches its path prefix."""
        return splitting.leave_task_out(self, task)

    # ------------------------------------------------------------------ summaries
    def model_summary(self) -> pd.DataFrame:
        """Mean score and mean cost per model (missing scores as 0)."""
        return pd.DataFrame(
            {
                "model": self.models,
                "mean_score": self.scores.mean(axis=0),
                "mean_cost": self.costs.mean(axis=0),
            }
        )

    # ------------------------------------------------------------------ IO
    def save(self, path: str | Path) -> Path:
        """Write Parquet atomically: a crash or Ctrl-C leaves the old file intact and no temp file.

        An empty dataset is refused: `load` (like every constructor) refuses a table of no rows.
        """
        return write_dataset(self, path)

    @classmethod
    def load(cls, path: str | Path) -> RoutingDataset:
        """Read a dataset written by `save` (or any Parquet file in the long format)."""
        stored = read_dataset(path)
        return cls(
            stored.frame,
            name=stored.name,
            models=stored.models,
            pool=stored.pool,
            cost_note=stored.cost_note,
        )
