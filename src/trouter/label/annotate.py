"""Top-down taxonomy labelling of real queries, as the paper labels its in-domain data.

For each query, an LLM picks one node per level: first among the roots, then among the chosen
node's children, and so on to a leaf. Each step is one structured call whose JSON schema lists
that level's options as an enum (plus "none"); a level with a single option needs no call. A
"none", or a reply that never validates, stops the descent: the query keeps the path found so
far (possibly ""), and the annotation says why.

    annotator = TaxonomyAnnotator(client, spec, taxonomy)
    found = await annotator.annotate_all(["How do I factor x^2 - 1?"])
    found[0].path  # e.g. "math/algebra"

Identical queries are asked once; every call goes through the one LLM client (its cache makes
a rerun free, its budget and retries apply).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, create_model, field_validator

from trouter.errors import DataError
from trouter.taxonomy import SEP, Taxonomy, TaxonomyNode

if TYPE_CHECKING:
    import pandas as pd

    from trouter.data.dataset import RoutingDataset
    from trouter.llm import LLMClient
    from trouter.pool import ModelSpec

NONE = "none"
PROMPT = "annotate"


@dataclass(frozen=True)
class Annotation:
    """Where a query sits in the taxonomy, how it got there, and why it stopped early if it did."""

    query: str
    path: str  # "" when not even a top-level node fits
    complete: bool  # reached a leaf
    calls: int
    stopped: str = ""  # "none" at some level, or the validation / call error


@cache
def choice_schema(options: tuple[str, ...]) -> type[BaseModel]:
    """A pydantic model whose `category` must be one of `options` (or "none"), any letter case."""
    allowed = (*options, NONE)
    canonical = {o.casefold().strip(): o for o in allowed}

    def _canonical(cls: type[BaseModel], value: Any) -> Any:
        if isinstance(value, str):
            return canonical.get(value.casefold().strip(), value)
        return value

    return create_model(
        "TaxonomyChoice",
        category=(Literal[allowed], ...),  # type: ignore[arg-type]
        __validators__={"_canonical": field_validator("category", mode="before")(_canonical)},
    )


def _describe(node: TaxonomyNode) -> str:
    text = f"- {node.name}"
    if node.definition:
        text += f": {node.definition}"
    if node.example:
        text += f" (example: {node.example})"
    return text


class TaxonomyAnnotator:
    """Labels queries with taxonomy paths using `spec` (temperature 0, structured output)."""

    def __init__(
        self,
        client: LLMClient,
        spec: ModelSpec,
        taxonomy: Taxonomy,
        *,
        max_attempts: int = 3,
        max_tokens: int = 64,
    ) -> None:
        self.client = client
        self.spec = spec
        self.taxonomy = taxonomy
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens

    def messages(
        self, query: str, path: str, options: Sequence[TaxonomyNode]
    ) -> list[dict[str, Any]]:
        from trouter.prompts import load_prompt

        depth = path.count(SEP) + 1 if path else 0
        level = self.taxonomy.levels[min(depth, len(self.taxonomy.levels) - 1)]
        context = ""
        if path:
            placed = " > ".join(
                f"{self.taxonomy.levels[i]} = {name}" for i, name in enumerate(path.split(SEP))
            )
            context = f"\nIt has already been placed under: {placed}.\n"
        return load_prompt(PROMPT).render(
            meta={"level": level, "path": path},
            query=query,
            context=context,
            level=level,
            options="\n".join(_describe(n) for n in options),
        )

    async def annotate(self, query: str) -> Annotation:
        """The path of one query, level by level."""
        from trouter.llm import LLMCallError, StructuredFailure

        path, calls = "", 0
        options: list[TaxonomyNode] = list(self.taxonomy.roots)
        while options:
            if len(options) == 1:
                chosen = options[0]  # nothing to choose: no call
            else:
                names = tuple(n.name for n in options)
                calls += 1
                try:
                    result = await self.client.structured(
                        self.spec,
                        self.messages(query, path, options),
                        choice_schema(names),
                        purpose="annotate",
                        max_attempts=self.max_attempts,
                        temperature=0,
                        max_tokens=self.max_tokens,
                    )
                except LLMCallError as exc:
                    return Annotation(query, path, False, calls, f"call failed: {exc}")
                if isinstance(result, StructuredFailure):
                    return Annotation(query, path, False, calls, f"no valid choice: {result.error}")
                name = result.value.category  # type: ignore[attr-defined]
                if name == NONE:
                    return Annotation(
                        query, path, False, calls, f"none fits below {path or 'the top'}"
                    )
                chosen = next(n for n in options if n.name == name)
            path = f"{path}{SEP}{chosen.name}" if path else chosen.name
            options = list(chosen.children)
        return Annotation(query, path, True, calls)

    async def annotate_all(
        self,
        queries: Sequence[str],
        on_done: Callable[[Annotation], None] | None = None,
    ) -> list[Annotation]:
        """Annotations in the order of `queries`; duplicates are asked once.

        At most `spec.batch_concurrency()` queries are in progress at once (the client bounds the
        calls too), so a million queries do not become a million pending tasks."""
        unique = list(dict.fromkeys(queries))
        found: dict[str, Annotation] = {}
        queue = deque(unique)

        async def worker() -> None:
            while queue:
                query = queue.popleft()
                found[query] = await self.annotate(query)
                if on_done is not None:
                    on_done(found[query])

        workers = [
            asyncio.ensure_future(worker())
            for _ in range(min(self.spec.batch_concurrency(), len(unique)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return [found[q] for q in queries]


# ---------------------------------------------------------------------------------- query files

DATASET_COLUMNS = {"query_id", "query", "model", "score"}


def read_query_table(path: Path, column: str) -> tuple[pd.DataFrame | None, RoutingDataset | None]:
    """A RoutingDataset Parquet (its queries get tasks), or a plain CSV / JSONL / Parquet table
    with a query column (it gets a `task` column)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from trouter.data.dataset import RoutingDataset

    if not path.is_file():
        raise DataError(f"queries file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        if set(pq.read_schema(path).names) >= DATASET_COLUMNS:
            return None, RoutingDataset.load(path)
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True)
    else:
        raise DataError(f"{path}: use a .csv, .jsonl or .parquet file of queries")
    if column not in frame.columns:
        raise DataError(
            f"{path}: no {column!r} column (columns: {', '.join(map(str, frame.columns))}); "
            "name the query column with --column"
        )
    return frame, None


TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


def check_table_path(out: Path, *, dataset: bool = False) -> None:
    """Refuse an output `write_table` (or, for a RoutingDataset, Parquet) cannot write."""
    suffix = out.suffix.lower()
    if dataset and suffix != ".parquet":
        raise DataError(f"{out}: a labelled dataset is written as Parquet; use a .parquet --out")
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{out}: write a .csv, .jsonl or .parquet file")


def write_table(frame: pd.DataFrame, out: Path) -> Path:
    """Write CSV / JSONL / Parquet (by suffix) atomically."""
    check_table_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    suffix = out.suffix.lower()
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
    elif suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        raise DataError(f"{out}: write a .csv, .jsonl or .parquet file")
    tmp.replace(out)
    return out
