"""The dataset file: a `RoutingDataset` as one Parquet table, with trouter's metadata (its
name, model list, cost note and pool) kept in the schema under the key `trouter`.

Writing is atomic (a crash or Ctrl-C leaves the old file intact and no temp file); an empty
dataset is refused, as reading refuses a file of no rows. A leading `~` is the home folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from trouter.errors import DataError
from trouter.paths import atomic_target
from trouter.pool import Pool

if TYPE_CHECKING:
    import pyarrow as pa

    from trouter.data.dataset import RoutingDataset

_PARQUET_META_KEY = b"trouter"


@dataclass(frozen=True)
class StoredDataset:
    """What a dataset file holds: the long table and the arguments `RoutingDataset` takes."""

    frame: pd.DataFrame
    name: str
    models: list[str] | None
    pool: Pool | None
    cost_note: str


def write_dataset(dataset: RoutingDataset, path: str | Path) -> Path:
    """Write `dataset` to `path` (see `RoutingDataset.save`); returns the path written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if dataset.frame.empty:
        raise DataError(
            f"{dataset.name}: the dataset has no queries; nothing to save (check the filter, "
            "subset or selection that left none)"
        )
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(dataset.frame, preserve_index=False)
    meta = {
        "name": dataset.name,
        "models": list(dataset.models),
        "cost_note": dataset.cost_note,
        "pool": dataset.pool.model_dump(mode="json") if dataset.pool else None,
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _PARQUET_META_KEY: json.dumps(meta).encode()}
    )
    with atomic_target(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_parquet(path: Path, shown: str) -> tuple[pa.Table, dict[str, Any]]:
    """A Parquet file's table and trouter's metadata (its `pool` made a `Pool`), errors naming
    the file as `shown`; shared by `read_dataset` and the import reader."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{shown}: not a readable Parquet file ({exc})") from None
    raw_meta = (table.schema.metadata or {}).get(_PARQUET_META_KEY)
    meta = json.loads(raw_meta) if raw_meta else {}
    if meta.get("pool"):
        meta["pool"] = Pool.from_dict(meta["pool"], source=f"{shown} metadata")
    return table, meta


def read_dataset(path: str | Path) -> StoredDataset:
    """Read a file written by `write_dataset` (or any Parquet file in the long format)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    table, meta = read_parquet(path, str(path))
    if table.num_rows == 0:
        raise DataError(
            f"{path}: the dataset file has no rows (an empty dataset); write it again from "
            "data that keeps at least one query"
        )
    return StoredDataset(
        frame=table.to_pandas(),
        name=meta.get("name", path.stem),
        models=meta.get("models"),
        pool=meta.get("pool"),
        cost_note=meta.get("cost_note", ""),
    )
