"""Read a user's table file (CSV, TSV, JSONL, JSON, Parquet) into a frame of raw cells.

No meaning is given to the cells here: `trouter.data.importer` decides the layout and the
types. CSV and TSV cells are read as text, so ids `01` and `1` stay distinct, an id column
with an empty cell does not turn `1` into `1.0`, and a query or a model called `None` or `NA`
keeps its name (`importer` treats the documented missing-value spellings as missing in numeric
columns only). Text files are UTF-8; a leading byte-order mark is dropped. Every problem is a
one-line `DataError` naming the file, and the line or column where it can be fixed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from trouter.errors import DataError

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SUFFIXES |= {".json": "json", ".parquet": "parquet", ".pq": "parquet"}
ENCODING = "utf-8-sig"  # UTF-8, with a byte-order mark (Excel's "CSV UTF-8") dropped
# The csv module's default cap (128 KiB a field) would refuse a long prompt pandas reads fine.
FIELD_LIMIT = 2**31 - 1  # a C long on every platform


def read_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The file's rows as a DataFrame, and the metadata a `trouter import` Parquet file keeps."""
    path = path.expanduser()  # "~/data.csv" from Python, where no shell expands the tilde
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path.name}: the file is empty")
    meta: dict[str, Any] = {}
    try:
        if kind in ("csv", "tsv"):
            frame = _read_csv(path, "\t" if kind == "tsv" else ",")
        elif kind == "jsonl":
            frame = _read_jsonl(path)
        elif kind == "json":
            frame = _read_json(path)
        else:
            frame, meta = _read_parquet(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file has no data rows") from None
    except (UnicodeDecodeError, pd.errors.ParserError, csv.Error, OSError, ValueError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(f"{path.name}: not a readable {kind.upper()} file ({detail})") from None
    _check_unique_names([str(c) for c in frame.columns], path)
    return frame, meta


def _check_unique_names(names: list[str], path: Path) -> None:
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise DataError(
            f"{path.name}: column(s) {', '.join(map(repr, repeated))} appear more than once; "
            "keep one of each (rename or drop the copies)"
        )


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    # pandas renames a repeated header (`score`, `score.1`), fills a row with too few fields
    # with empty cells without a word, and keeps one with too many with a warning only: the
    # header and every row's width are checked first, on their own.
    previous = csv.field_size_limit(FIELD_LIMIT)
    try:
        _check_records(path, sep)
    finally:
        csv.field_size_limit(previous)
    return pd.read_csv(
        path,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        index_col=False,  # a row with an extra field must not shift the columns
        encoding=ENCODING,
    )


def _check_records(path: Path, sep: str) -> None:
    """Raise a `DataError` on a repeated column name, or naming the first line whose number of
    fields is not the header's (blank lines, which pandas skips, are neither header nor row)."""
    what = "a tab" if sep == "\t" else repr(sep)
    empty = "x,,y" if sep == "," else "two tabs in a row"
    with path.open(encoding=ENCODING, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        records = (r for r in reader if r)
        header = next(records, [])
        _check_unique_names(header, path)
        width = len(header)
        for record in records:
            if len(record) > width:
                raise DataError(
                    f"{path.name}: line {reader.line_num} has {len(record)} fields but the header "
                    f"has {width}; quote a field that contains {what}, or name the extra column"
                )
            if len(record) < width:
                raise DataError(
                    f"{path.name}: line {reader.line_num} has {len(record)} field"
                    f"{'s' if len(record) > 1 else ''} but the header has {width}; add the missing "
                    f"field(s), an unknown value as an empty field ({empty})"
                )


def _no_repeated_keys(number: int, path: Path) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            where = f"line {number}" if number else "an object"
            raise DataError(
                f"{path.name}: {where} has key(s) {', '.join(map(repr, repeated))} more than once"
            )
        return dict(pairs)

    return hook


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding=ENCODING) as handle:
        yield from enumerate(handle, start=1)


def _read_jsonl(path: Path) -> pd.DataFrame:
    records = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_no_repeated_keys(number, path))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name}: line {number} is not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path.name}: line {number} is not a JSON object")
        records.append(record)
    return pd.DataFrame.from_records(records)


def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(
            path.read_text(encoding=ENCODING), object_pairs_hook=_no_repeated_keys(0, path)
        )
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(f"{path.name}: a .json file must hold a list of objects (one per row)")
    return pd.DataFrame.from_records(data)


def _read_parquet(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    from trouter.data.dataset_file import read_parquet

    table, meta = read_parquet(path, path.name)
    _check_unique_names(table.column_names, path)
    return table.to_pandas(), meta
