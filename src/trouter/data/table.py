"""The long routing table of `RoutingDataset`: its columns, and raw input made into it.

A user's frame is given the table's columns and types (`normalise`), a task written on some of
a query's rows only becomes that query's task (`one_task_per_query`), and wide [queries x
models] matrices become long rows (`matrices_frame`). A bad argument is a one-line `DataError`
naming it; the rules every table then passes are in `trouter.data.checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from trouter.errors import DataError

# A task label is a taxonomy path whose levels are joined by TASK_SEP ("math/algebra/hard").
TASK_SEP = "/"
REQUIRED_COLUMNS = ("query_id", "query", "model", "score")
OPTIONAL_COLUMNS = ("task", "cost", "tokens_in", "tokens_out", "latency", "split")
FloatMatrix = npt.NDArray[np.float64]


def matrices_frame(
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
) -> tuple[pd.DataFrame, list[str]]:
    """The long rows of wide matrices, and the model list (see `RoutingDataset.from_matrices`)."""
    query_ids = _per_query("query_ids", query_ids, None)
    models = model_names(models)
    n, m = len(query_ids), len(models)
    queries = _per_query("queries", queries, n)
    tasks = _per_query("tasks", tasks, n) if tasks is not None else [""] * n
    if splits is not None:
        splits = _per_query("splits", splits, n)

    def wide(arg: str, values: npt.ArrayLike | None, per_query: bool = False) -> FloatMatrix:
        if values is None:
            return np.full((n, m), np.nan)
        return _matrix_arg(arg, values, n, m, per_query)

    data: dict[str, Any] = {
        "query_id": np.repeat(np.asarray(query_ids, dtype=object), m),
        "query": np.repeat(np.asarray(queries, dtype=object), m),
        "task": np.repeat(np.asarray(tasks, dtype=object), m),
        "model": np.tile(np.asarray(models, dtype=object), n),
        "score": _matrix_arg("scores", scores, n, m, False).ravel(),
        "cost": wide("costs", costs).ravel(),
        "tokens_in": wide("tokens_in", tokens_in, per_query=True).ravel(),
        "tokens_out": wide("tokens_out", tokens_out, per_query=True).ravel(),
        "latency": np.full(n * m, np.nan),
    }
    if splits is not None:
        data["split"] = np.repeat(np.asarray(splits, dtype=object), m)
    return pd.DataFrame(data), models


def model_names(models: Sequence[str] | str) -> list[str]:
    """A model list as a list; one name given on its own is a list of that one model (a
    string is a sequence too, and would otherwise be read as one model per character)."""
    return [models] if isinstance(models, str) else list(models)


def _per_query(arg: str, values: Sequence[str], n: int | None) -> list[str]:
    """`values` as a list, refused when it is one string or does not hold `n` entries."""
    if isinstance(values, str):
        raise DataError(f"from_matrices: {arg} is a single string; pass a list, one per query")
    listed = list(values)
    if n is not None and len(listed) != n:
        raise DataError(
            f"from_matrices: {arg} has {len(listed)} entries but query_ids has {n}; "
            "give one per query, in the order of query_ids"
        )
    return listed


def _matrix_arg(arg: str, values: npt.ArrayLike, n: int, m: int, per_query: bool) -> FloatMatrix:
    """`values` as an [n, m] float matrix; with `per_query`, an [n] vector is shared by every
    model. Anything else is a `DataError` naming `arg` and the shape it needs."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):  # ragged rows, or text where numbers belong
        raise DataError(
            f"from_matrices: {arg} is not a numeric matrix; give {n} rows of {m} numbers "
            "(NaN where unknown)"
        ) from None
    if per_query and arr.ndim == 1 and len(arr) == n:
        return np.repeat(arr[:, None], m, axis=1)
    if arr.shape != (n, m):
        needs = f"({n}, {m}) or ({n},)" if per_query else f"({n}, {m})"
        raise DataError(
            f"from_matrices: {arg} has shape {arr.shape} but needs {needs}: one row per "
            f"query_id ({n}) and one column per model ({m})"
        )
    return arr


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the table's columns and types: ids, texts and models as text, the numbers
    as floats (NaN where missing), a missing optional column added empty."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing required column(s) {', '.join(missing)}; a routing table needs "
            f"{', '.join(REQUIRED_COLUMNS)} and may have {', '.join(OPTIONAL_COLUMNS)}"
        )
    for col in ("query_id", "query", "model"):
        absent = frame[col].isna()
        if absent.any():
            shown = ", ".join(str(i) for i in frame.index[absent.to_numpy()][:5])
            raise DataError(f"column {col!r} is missing (None / NaN) in rows {shown}; fill it in")
    out = pd.DataFrame(
        {
            "query_id": frame["query_id"].astype(str),
            "query": frame["query"].astype(str),
            "task": frame["task"].fillna("").astype(str) if "task" in frame else "",
            "model": frame["model"].astype(str),
        }
    )
    for col in ("score", "cost", "tokens_in", "tokens_out", "latency"):
        if col in frame:
            values = pd.to_numeric(frame[col], errors="coerce")
            bad = values.isna() & frame[col].notna()
            if bad.any():
                rows = ", ".join(str(i) for i in frame.index[bad][:5])
                raise DataError(
                    f"column {col!r} has non-numeric values in rows {rows} (e.g. {frame[col][bad].iloc[0]!r})"
                )
            out[col] = values.astype(np.float64)
        else:
            out[col] = np.nan
    if "split" in frame:
        out["split"] = frame["split"].astype(str)
    return out


def one_task_per_query(frame: pd.DataFrame) -> pd.DataFrame:
    """A task given on some of a query's rows only (others empty) is that query's task."""
    labelled = frame[frame["task"] != ""].drop_duplicates("query_id")
    if len(labelled) == 0 or (frame["task"] != "").all():
        return frame
    frame = frame.copy()
    frame["task"] = frame["query_id"].map(labelled.set_index("query_id")["task"]).fillna("")
    return frame
