"""The checks every routing table passes, once: in `RoutingDataset` and, naming the file's own
row numbers, in `trouter import`. Each failure is a `DataError` naming the rows and the fix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trouter.errors import DataError

SPLITS = ("train", "val", "test")


def rows_text(mask: pd.Series, source_rows: pd.Series | None = None) -> str:
    """The rows where `mask` holds, the first five: the table's index, or `source_rows` (e.g.
    a file's 1-based line numbers) when given."""
    picked = source_rows[mask] if source_rows is not None else mask[mask.to_numpy()].index
    rows = sorted(set(picked))
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def check_table(frame: pd.DataFrame, name: str, source_rows: pd.Series | None = None) -> None:
    """Rows, one per (query_id, model), with a query text, scores in [0, 1], finite costs,
    tokens and latencies of 0 or more, one text and one task per query, and known splits."""

    def rows(mask: pd.Series) -> str:
        return rows_text(mask, source_rows)

    if frame.empty:
        raise DataError(f"{name}: the table has no rows")
    empty = frame["query"].str.strip() == ""
    if empty.any():
        raise DataError(f"{name}: empty query text in rows {rows(empty)}")
    dup = frame.duplicated(["query_id", "model"], keep=False)
    if dup.any():
        raise DataError(
            f"{name}: duplicate (query_id, model) rows {rows(dup)}; keep one observation per pair"
        )
    score = frame["score"]
    bad = score.notna() & ((score < 0) | (score > 1))
    if bad.any():
        raise DataError(
            f"{name}: scores must lie in [0, 1]; rows {rows(bad)} do not (rescale them first, "
            "e.g. (grade - min) / (max - min))"
        )
    for column in ("cost", "tokens_in", "tokens_out", "latency"):
        negative = frame[column] < 0
        if negative.any():
            raise DataError(f"{name}: column {column!r} is negative in rows {rows(negative)}")
        # inf would make every trade-off pick the dearest model and predicted costs NaN.
        infinite = pd.Series(np.isinf(frame[column].to_numpy()), index=frame.index)
        if infinite.any():
            raise DataError(
                f"{name}: column {column!r} is not finite in rows {rows(infinite)}; "
                "give a number, or leave the cell empty if it is unknown"
            )
    for column, what in (("query", "query texts"), ("task", "tasks")):
        given = frame if column == "query" else frame[frame["task"] != ""]
        counts = given.groupby("query_id")[column].nunique()
        clash = counts[counts > 1]
        if len(clash):
            raise DataError(
                f"{name}: query_id(s) {', '.join(map(str, clash.index[:5]))} carry different "
                f"{what}; give each query one"
            )
    if "split" in frame:
        unknown = ~frame["split"].isin(SPLITS)
        if unknown.any():
            raise DataError(
                f"{name}: split must be one of {', '.join(SPLITS)}; rows {rows(unknown)} are not"
            )


def check_scored(frame: pd.DataFrame, models: Sequence[str], name: str) -> None:
    """Every model needs a score somewhere: an unscored model's cost would set the cost range
    every trade-off is calibrated on, and every metric would count it as always wrong."""
    if frame["score"].isna().all():
        raise DataError(f"{name}: the dataset has no scores at all; a router learns from scores")
    scored = set(frame.loc[frame["score"].notna(), "model"])
    unscored = [m for m in models if m not in scored]
    if unscored:
        raise DataError(
            f"{name}: model {unscored[0]!r} has no scores; add scores, or drop its rows and "
            "leave it out of the model list"
            + (f" (so have {', '.join(map(repr, unscored[1:5]))})" if len(unscored) > 1 else "")
        )
