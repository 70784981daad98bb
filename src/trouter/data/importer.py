"""Import a user's own routing data (CSV, JSONL or Parquet) into a `RoutingDataset`.

Two layouts are accepted (docs/data-format.md has the full description and examples):

- long: one row per (query, model) with columns `query`, `model`, `score` and optionally
  `query_id`, `task`, `cost`, `tokens_in`, `tokens_out`, `latency`, `split`;
- wide: one row per query with `query` (and optionally `query_id`, `task`, `split`,
  `tokens_in`), one score column per model named after the model, and optional per-model
  columns `<model>|cost`, `<model>|tokens_in`, `<model>|tokens_out`, `<model>|latency`
  (RouterBench's layout; its `|total_cost` is read as cost, other `|...` columns are ignored).

The layout is detected (a `model` and a `score` column mean long) unless given. A missing
`query_id` becomes a stable hash of the query text. Every problem is a one-line `DataError`
naming the columns or rows (1-based data rows, the header not counted) to fix. With a pool, every
model must be in it, and a missing cost is computed from the token counts with the pool's prices
(input tokens estimated from the query text where the file has none).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from trouter.data.checks import check_scored, check_table, rows_text
from trouter.data.dataset import RoutingDataset
from trouter.data.files import read_table
from trouter.errors import DataError
from trouter.pool import Pool
from trouter.tokens import estimate_tokens_many

Layout = Literal["auto", "long", "wide"]
# Other names accepted for the standard columns (RouterBench, LLMRouter, common exports).
ALIASES = {
    "query": ("prompt", "question"),
    "query_id": ("id", "sample_id"),
    "task": ("task_name", "eval_name", "category"),
}
QUERY_COLUMNS = ("query_id", "query", "task", "split")
LONG_REQUIRED = ("query", "model", "score")
LONG_OPTIONAL = ("query_id", "task", "cost", "tokens_in", "tokens_out", "latency", "split")
NUMERIC = ("score", "cost", "tokens_in", "tokens_out", "latency")
# `<model>|<field>` columns of the wide layout; RouterBench calls the cost `total_cost`.
WIDE_FIELDS = {
    "cost": "cost",
    "total_cost": "cost",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
    "latency": "latency",
}


def import_file(
    path: str | Path,
    *,
    layout: Layout = "auto",
    pool: Pool | None = None,
    name: str | None = None,
    ignore_columns: Sequence[str] = (),
) -> RoutingDataset:
    """Read `path` (.csv, .tsv, .jsonl, .json, .parquet) in the long or wide layout.

    `ignore_columns` names columns to leave out, typically wide-layout columns that are neither
    scores nor known fields (e.g. RouterBench's `oracle_model_to_route_to`); each must exist.
    Raises `DataError` with a one-line message.
    """
    path = Path(path)
    frame, meta = read_table(path)
    label = path.name
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{label}: the file has no data rows")
    unknown = [c for c in dict.fromkeys(ignore_columns) if c not in frame.columns]
    if unknown:
        raise DataError(
            f"{label}: no column {', '.join(map(repr, unknown))} to ignore; its columns are "
            f"{', '.join(map(str, frame.columns[:20]))}"
        )
    frame = frame.drop(columns=list(ignore_columns)).reset_index(drop=True)
    frame.index = frame.index + 1  # rows named in errors are 1-based data rows
    frame = _apply_aliases(frame)
    if layout == "auto":  # a `model` or `score` column can only mean the long layout
        layout = "long" if {"model", "score"} & set(frame.columns) else "wide"
    if layout == "long":
        long = _from_long(frame, label)
    elif layout == "wide":
        long = _from_wide(frame, label)
    else:
        raise DataError(f"unknown layout {layout!r}; use long, wide or auto")
    _check(long, label)
    pool = pool if pool is not None else meta.get("pool")
    models = list(dict.fromkeys(long["model"]))
    if pool is not None:
        unknown = [m for m in models if m not in pool]
        if unknown:
            raise DataError(
                f"{label}: model(s) {', '.join(unknown)} not in the pool "
                f"({', '.join(pool.names)}); add them to the pool file or drop their rows"
            )
    given = meta.get("cost_note") or "as given in the file"
    note = given if long["cost"].notna().any() else ""
    if pool is not None:
        long, computed, estimated = _fill_costs(long, pool)
        if computed:
            note = f"{computed} of {len(long)} costs computed as pool price x tokens"
            if estimated:
                note += f" ({estimated} with input tokens estimated from the query text)"
            if computed < long["cost"].notna().sum():
                note += f"; the others {given}"
    return RoutingDataset(
        long.drop(columns="_row"),
        name=name or meta.get("name") or path.stem,
        models=meta.get("models") or models,
        pool=pool,
        cost_note=note,
    )


# ---------------------------------------------------------------------- columns
def _apply_aliases(frame: pd.DataFrame) -> pd.DataFrame:
    renames = {}
    for column, aliases in ALIASES.items():
        if column in frame.columns:
            continue
        present = [a for a in aliases if a in frame.columns]
        if present:
            renames[present[0]] = column
    return frame.rename(columns=renames)


# ---------------------------------------------------------------------- layouts
def _from_long(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    missing = [c for c in LONG_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"{label}: missing column(s) {', '.join(missing)} for the long layout; it needs "
            f"{', '.join(LONG_REQUIRED)} and may have {', '.join(LONG_OPTIONAL)} "
            "(or use --format wide)"
        )
    out = pd.DataFrame(index=frame.index)
    out["query"] = _text(frame["query"], "query", label)
    out["query_id"] = _ids(frame, out["query"], label)
    out["task"] = _text(frame["task"], "task", label) if "task" in frame else ""
    out["model"] = _text(frame["model"], "model", label)
    for column in NUMERIC:
        out[column] = _numeric(frame[column], column, label) if column in frame else np.nan
    if "split" in frame:
        out["split"] = _text(frame["split"], "split", label).str.lower()
    empty = out["model"].str.strip() == ""
    if empty.any():
        raise DataError(f"{label}: empty model name in rows {rows_text(empty)}")
    out["_row"] = frame.index
    return out.reset_index(drop=True)


def _from_wide(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    if "query" not in frame.columns:
        raise DataError(
            f"{label}: missing column query for the wide layout; it needs query and one score "
            "column per model (a long file needs query, model, score)"
        )
    shared = set(QUERY_COLUMNS) | {"tokens_in"}
    fields: dict[str, dict[str, str]] = {}
    models: list[str] = []
    for column in map(str, frame.columns):
        if column in shared or column.startswith("Unnamed:"):
            continue
        if "|" in column:
            model, field = column.rsplit("|", 1)
            if field in WIDE_FIELDS:
                fields.setdefault(model, {})[WIDE_FIELDS[field]] = column
            continue  # other per-model columns (responses, notes) carry nothing we use
        models.append(column)
    if not models:
        raise DataError(
            f"{label}: no model score columns found; a wide file has query and one numeric "
            "column per model named after it (or use --format long)"
        )
    orphans = sorted(set(fields) - set(models))
    if orphans:
        raise DataError(
            f"{label}: column(s) {', '.join(next(iter(fields[m].values())) for m in orphans)} "
            f"have no score column {', '.join(orphans)}"
        )
    query = _text(frame["query"], "query", label)
    base = pd.DataFrame(
        {
            "query": query,
            "query_id": _ids(frame, query, label),
            "task": _text(frame["task"], "task", label) if "task" in frame else "",
        },
        index=frame.index,
    )
    if "split" in frame:
        base["split"] = _text(frame["split"], "split", label).str.lower()
    dup = base["query_id"].duplicated(keep=False)
    if dup.any():
        what = "query_id" if "query_id" in frame else "query text"
        raise DataError(
            f"{label}: rows {rows_text(dup)} repeat the same {what}; keep one row per query in the "
            "wide layout (or give repeated texts distinct query_id values)"
        )
    shared_in = _numeric(frame["tokens_in"], "tokens_in", label) if "tokens_in" in frame else np.nan
    parts = []
    for model in models:
        part = base.copy()
        part["_row"] = frame.index
        part["model"] = model
        part["score"] = _numeric(
            frame[model],
            model,
            label,
            hint=f"; if it is not a model's scores, ignore it (--ignore {model})",
        )
        for field in ("cost", "tokens_in", "tokens_out", "latency"):
            source = fields.get(model, {}).get(field)
            if source is not None:
                part[field] = _numeric(frame[source], source, label)
            else:
                part[field] = shared_in if field == "tokens_in" else np.nan
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------- checks and costs
def _check(long: pd.DataFrame, label: str) -> None:
    if long.empty:
        raise DataError(f"{label}: the file has no data rows")
    check_table(long, label, source_rows=long["_row"])
    check_scored(long, list(dict.fromkeys(long["model"])), label)


def _fill_costs(long: pd.DataFrame, pool: Pool) -> tuple[pd.DataFrame, int, int]:
    """Cost = pool price x tokens where the file has output tokens but no cost.

    Returns the new table, how many costs were computed, and for how many of those the input
    tokens were estimated from the query text.
    """
    long = long.copy()
    todo = long["cost"].isna() & long["tokens_out"].notna()
    if not todo.any():
        return long, 0, 0
    no_in = todo & long["tokens_in"].isna()
    if no_in.any():  # the prompt is known even when its token count is not
        long.loc[no_in, "tokens_in"] = estimate_tokens_many(long.loc[no_in, "query"]).astype(float)
    for model, rows in long[todo].groupby("model"):
        spec = pool[str(model)]
        long.loc[rows.index, "cost"] = spec.cost(rows["tokens_in"], rows["tokens_out"])
    return long, int(todo.sum()), int(no_in.sum())


# ---------------------------------------------------------------------- helpers
def _text(values: pd.Series, column: str, label: str) -> pd.Series:
    """Cells as text; missing cells become "". Only text (and, except for queries, whole
    numbers: ids and names read from JSON or Parquet) is accepted, never a list or a flag."""

    def cell(value: object) -> str | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, str):
            return value
        if column == "query" or isinstance(value, bool):
            return None
        if isinstance(value, int | np.integer):
            return str(value)
        if isinstance(value, float | np.floating) and float(value).is_integer():
            return str(int(value))  # pandas widens whole numbers with a gap to 1.0, 2.0, ...
        return None

    cells = values.map(cell)
    bad = cells.isna()
    if bad.any():
        raise DataError(
            f"{label}: column {column!r} has values that are not text in rows {rows_text(bad)} "
            f"(e.g. {values[bad].iloc[0]!r}); give each as a string"
        )
    return cells.astype(str)


def _ids(frame: pd.DataFrame, queries: pd.Series, label: str) -> pd.Series:
    """The given ids, with a stable hash of the query text wherever an id is missing."""
    hashed = queries.map(lambda q: "q-" + hashlib.sha1(q.encode("utf-8")).hexdigest()[:16])
    if "query_id" not in frame:
        return hashed
    given = _text(frame["query_id"], "query_id", label).str.strip()
    return given.where(given != "", hashed)


# Spellings of a missing number (pandas' defaults; docs/data-format.md lists the usual ones).
MISSING = {"", "na", "n/a", "nan", "-nan", "null", "none", "<na>", "#n/a", "#na"}
FLAGS = {"true": 1.0, "false": 0.0}


def _numeric(values: pd.Series, column: str, label: str, hint: str = "") -> pd.Series:
    if values.dtype == bool:
        return values.astype(np.float64)

    def cell(value: object) -> object:
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            key = value.strip().lower()
            return None if key in MISSING else FLAGS.get(key, value)
        return value

    mapped = values.map(cell)
    numbers = pd.to_numeric(mapped, errors="coerce")
    bad = numbers.isna() & mapped.notna()
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(
            f"{label}: column {column!r} has non-numeric values in rows {rows_text(bad)} "
            f"(e.g. {example!r}); scores, costs and token counts must be numbers{hint}"
        )
    return numbers.astype(np.float64)
