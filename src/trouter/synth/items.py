"""Synthesised items: the schema every later step reads, and the append-only items file.

An item is one query with a reference answer and the facts a scorer needs:

- `exact`: compare normalised text with `reference`.
- `numeric`: `reference` is a number; compare within `tolerance` (relative; None: scorer's default).
- `multiple_choice`: `choices` are the options in order, `reference` is the correct letter
  ("A", "B", ...); the options are also written into `query`, which is what models are shown.
- `code`: `reference` is a working Python solution, `entry_point` the function it defines and
  `tests` Python asserts that pass for a correct solution (run against a candidate's code).
- `free_text`: `reference` is a model answer for an LLM judge.

The items file is JSON Lines, appended one batch at a time with flush + fsync; a line torn by a
crash is dropped when the file is next opened, so a kill never loses a finished batch.

    >>> item = SynthItem(query="What is 2+2?", reference="4", answer_format="numeric",
    ...                  path="math/arithmetic/easy", generator="gpt-4o-mini",
    ...                  prompt_version="qa-generate/1")
    >>> item.id == item_id("math/arithmetic/easy", "What is 2+2?")
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trouter.errors import DataError

AnswerFormat = Literal["exact", "numeric", "multiple_choice", "code", "free_text"]
ANSWER_FORMATS: tuple[str, ...] = get_args(AnswerFormat)
LETTERS = string.ascii_uppercase


def normalise_query(text: str) -> str:
    return " ".join(text.lower().split())


def item_id(path: str, query: str) -> str:
    """A stable id from the leaf path and the normalised query text."""
    digest = hashlib.sha1(f"{path}\n{normalise_query(query)}".encode()).hexdigest()
    return f"syn-{digest[:16]}"


class SynthItem(BaseModel):
    """One synthesised query, its reference answer and where it sits in the taxonomy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    query: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    answer_format: AnswerFormat
    choices: list[str] = Field(default_factory=list)
    tests: str = ""
    entry_point: str = ""
    tolerance: float | None = Field(default=None, ge=0.0)
    language: str = "en"
    path: str = Field(min_length=1, description="Taxonomy leaf path, e.g. billing/refunds/easy.")
    generator: str = Field(description="Pool name of the model that wrote the item.")
    prompt_version: str
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> SynthItem:
        if not self.id:
            object.__setattr__(self, "id", item_id(self.path, self.query))
        if self.answer_format == "multiple_choice":
            if len(self.choices) < 2:
                raise ValueError("a multiple_choice item needs at least two choices")
            letter = self.reference.strip().rstrip(").").upper()
            if letter not in LETTERS[: len(self.choices)]:
                raise ValueError(
                    f"a multiple_choice reference must be a letter A-{LETTERS[len(self.choices) - 1]}"
                )
            object.__setattr__(self, "reference", letter)
        elif self.answer_format == "numeric" and parse_number(self.reference) is None:
            raise ValueError(f"a numeric reference must be a number, got {self.reference!r}")
        elif self.answer_format == "code" and not (self.tests.strip() and self.entry_point.strip()):
            raise ValueError("a code item needs tests and an entry_point")
        return self

    @property
    def leaf(self) -> str:
        return self.path


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def parse_number(text: str) -> float | None:
    """A float from a reference like '1,234.5', '42', '3.5%', '$12' (None if not a number)."""
    cleaned = text.strip().replace(",", "").replace("$", "").removesuffix("%").strip()
    return float(cleaned) if _NUMBER.match(cleaned) else None


def format_choices(query: str, choices: Sequence[str]) -> str:
    """The query with lettered options appended (unless it already lists them)."""
    if all(re.search(rf"(^|\n)\s*{LETTERS[i]}[).:]", query) for i in range(len(choices))):
        return query
    options = "\n".join(f"{LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return f"{query.rstrip()}\n\n{options}"


# ---------------------------------------------------------------------------------- the file


class ItemsFile:
    """An append-only JSON Lines file of `SynthItem`s (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._last = 0

    def read(self) -> list[SynthItem]:
        """Every complete item in the file, in order (a torn last line is ignored)."""
        if not self.path.is_file():
            return []
        items = []
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # torn by a crash mid-write
                if not raw.strip():
                    continue
                try:
                    items.append(SynthItem.model_validate_json(raw))
                except ValidationError as exc:
                    raise DataError(f"{self.path}:{number}: not a valid item ({exc})") from None
        return items

    def repair(self) -> None:
        """Cut a torn last line (one a crash left without its newline)."""
        if not self.path.is_file():
            return
        with self.path.open("rb+") as fh:
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, items: Iterable[SynthItem]) -> int:
        """Append items durably (one write, flush, fsync); returns how many were written."""
        handle = self.write(items)
        if handle is None:
            return 0
        with handle:
            os.fsync(handle.fileno())
        return self._last

    def write(self, items: Iterable[SynthItem]) -> IO[str] | None:
        """Append items in one write and flush (safe from a process kill once this returns);
        returns the open file for the caller to fsync (e.g. in a thread) and close, or None."""
        lines = [item.model_dump_json() + "\n" for item in items]
        self._last = len(lines)
        if not lines:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a", encoding="utf-8")
        try:
            handle.write("".join(lines))
            handle.flush()
        except BaseException:
            handle.close()
            raise
        return handle


def read_items(path: str | Path) -> list[SynthItem]:
    """Items from a `.jsonl` or `.parquet` file written by `trouter synthesize`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"items file not found: {path}")
    if path.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        rows = frame.to_dict(orient="records")
        return [
            SynthItem.model_validate(_from_parquet_row({str(k): v for k, v in r.items()}))
            for r in rows
        ]
    return ItemsFile(path).read()


def write_parquet(items: Sequence[SynthItem], path: str | Path) -> Path:
    """Write items as Parquet atomically (tmp + rename)."""
    import pandas as pd

    path = Path(path)
    rows = [item.model_dump(mode="json") for item in items]
    for row in rows:
        row["meta"] = json.dumps(row["meta"], sort_keys=True)
    frame = pd.DataFrame(rows, columns=list(SynthItem.model_fields))
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _from_parquet_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    choices = out.get("choices")
    out["choices"] = [] if choices is None else [str(c) for c in choices]
    meta = out.get("meta")
    out["meta"] = json.loads(meta) if isinstance(meta, str) and meta else {}
    if out.get("tolerance") is not None and out["tolerance"] != out["tolerance"]:  # NaN
        out["tolerance"] = None
    return out
