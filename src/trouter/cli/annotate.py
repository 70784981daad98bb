"""`trouter annotate`: real queries get taxonomy paths, level by level, from an LLM."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from trouter.cli.app import app, console
from trouter.cli.label import DbOpt, PoolOpt, SkipCheckOpt, preflight_models
from trouter.cli.synth import open_store
from trouter.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from trouter.data.dataset import RoutingDataset
    from trouter.pool import ModelSpec
    from trouter.taxonomy import Taxonomy


@app.command(
    "annotate", short_help="Label real queries with taxonomy paths, one LLM choice per level."
)
def annotate(
    queries: Annotated[
        Path, typer.Argument(help="Queries: a RoutingDataset Parquet, or CSV / JSONL / Parquet.")
    ],
    taxonomy: Annotated[Path, typer.Option("--taxonomy", help="The taxonomy (JSON / YAML).")],
    model: Annotated[str, typer.Option("--model", help="The labelling model (a name in --pool).")],
    pool: PoolOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the labelled queries.")],
    column: Annotated[
        str, typer.Option("--column", help="Query column of a plain table.")
    ] = "query",
    db: DbOpt = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Hard $ cap.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the worst-case calls and cost; call nothing.")
    ] = False,
    skip_check: SkipCheckOpt = False,
) -> None:
    """Label real queries with taxonomy paths, top-down: one LLM choice per level, so in-domain
    data carries task types like synthetic data does."""
    from trouter.label.annotate import check_table_path, read_query_table
    from trouter.llm.usage import check_budget
    from trouter.pool import Pool
    from trouter.taxonomy import Taxonomy

    check_budget(budget)
    tree = Taxonomy.load(taxonomy)
    spec = Pool.load(pool)[model]
    frame, dataset = read_query_table(queries, column)
    texts = dataset.queries if dataset is not None else [str(q) for q in frame[column]]  # type: ignore[index]
    if not texts:
        raise DataError(f"{queries}: no queries")
    # The output's form is checked before any call, not after paying for every label.
    check_table_path(out, dataset=dataset is not None)
    if dry_run:
        from trouter.llm import LLMClient

        unique = list(dict.fromkeys(texts))
        calls = len(unique) * tree.depth()
        sample = LLMClient(None).estimate_cost(
            spec,
            {"messages": [{"role": "user", "content": " ".join(["word"] * 300)}], "max_tokens": 64},
        )
        console.print(
            f"{len(texts)} queries ({len(unique)} distinct) x at most {tree.depth()} levels: "
            f"at most {calls} calls to {spec.name!r}, about ${calls * sample:.4f} at ~300 prompt tokens each"
            + (f"; budget cap ${budget:.2f}" if budget is not None else ""),
            highlight=False,
        )
        return
    asyncio.run(_annotate(texts, tree, spec, frame, dataset, column, out, db, budget, skip_check))


async def _annotate(
    texts: list[str],
    tree: Taxonomy,
    spec: ModelSpec,
    frame: pd.DataFrame | None,
    dataset: RoutingDataset | None,
    column: str,
    out: Path,
    db: str | None,
    budget: float | None,
    skip_check: bool,
) -> None:
    from collections import Counter

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from trouter.label.annotate import TaxonomyAnnotator, write_table
    from trouter.llm import LLMClient

    if not skip_check:
        await preflight_models([spec])
    store = open_store(db, out)
    client = LLMClient(store, run=f"annotate:{out.stem}", budget_usd=budget)
    annotator = TaxonomyAnnotator(client, spec, tree)
    try:
        with Progress(
            "[bold]annotating",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            job = bar.add_task("annotate", total=len(set(texts)))
            found = await annotator.annotate_all(texts, on_done=lambda _: bar.advance(job))
    finally:
        await client.aclose()
    paths = [a.path for a in found]
    if dataset is not None:
        dataset.with_tasks(paths).save(out)
    else:
        assert frame is not None
        labelled = frame.copy()
        labelled["task"] = paths
        write_table(labelled, out)
    distinct = {a.query: a for a in found}.values()
    complete = sum(a.complete for a in distinct)
    stopped = Counter(
        "none" if a.stopped.startswith("none") else "failed" for a in distinct if not a.complete
    )
    tops = Counter(a.path.split("/")[0] if a.path else "(none)" for a in found)
    u = client.usage
    console.print(
        f"{len(texts)} queries ({len(distinct)} distinct): {complete} labelled to a leaf, "
        f"{stopped['none']} stopped where no option fitted, {stopped['failed']} stopped by a failed call "
        f"or invalid replies (they keep the path found so far)",
        highlight=False,
    )
    console.print(
        f"calls: {u.calls} ({u.cache_hits} cached), spent ${u.cost_usd:.4f}; top level: "
        + ", ".join(f"{k} {v}" for k, v in tops.most_common()),
        highlight=False,
    )
    console.print(f"written: {out}", highlight=False)
