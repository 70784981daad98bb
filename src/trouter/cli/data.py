"""`trouter import` (a user's CSV / JSONL / Parquet into a dataset file) and `trouter data show`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trouter.cli.app import app, console
from trouter.errors import ConfigError

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset

data_app = typer.Typer(help="Look at routing datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

TaskLevel = Annotated[
    int | None,
    typer.Option("--task-level", help="Group tasks by their first N path levels.", min=1),
]


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A CSV, TSV, JSONL, JSON or Parquet file.")],
    out: Annotated[Path, typer.Option("--out", help="The dataset file to write (.parquet).")],
    layout: Annotated[
        str, typer.Option("--format", help="long, wide or auto (see docs/data-format.md).")
    ] = "auto",
    pool: Annotated[
        Path | None,
        typer.Option("--pool", help="Pool YAML: every model must be in it; prices missing costs."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Dataset name (default: the file's stem).")
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore",
            help="A column to leave out, e.g. a wide-layout column that is not a model's "
            "scores (repeatable).",
        ),
    ] = None,
) -> None:
    """Import your own routing data (long or wide layout) into a dataset file."""
    from trouter.data.importer import import_file
    from trouter.pool import Pool

    if layout not in ("auto", "long", "wide"):
        raise ConfigError(f"--format must be long, wide or auto, not {layout!r}")
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise ConfigError(f"--out must be a .parquet file, not {out.name}")
    dataset = import_file(
        file,
        layout=layout,  # type: ignore[arg-type]
        pool=Pool.load(pool) if pool else None,
        name=name,
        ignore_columns=ignore or (),
    )
    dataset.save(out)
    _show(dataset, task_level=None)
    console.print(f"wrote [bold]{out}[/]")


@data_app.command("show")
def show(
    name_or_path: Annotated[
        str, typer.Argument(help="A dataset name (see `trouter datasets`) or a file path.")
    ],
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            help="Folder holding the named datasets (default: see `trouter datasets --help`).",
        ),
    ] = None,
    task_level: TaskLevel = None,
) -> None:
    """Summarise a dataset: per-model mean score and cost, per-task counts, the cost note."""
    from trouter.data.loaders import load_dataset

    _show(load_dataset(name_or_path, data_root), task_level)


def _show(ds: RoutingDataset, task_level: int | None) -> None:
    import numpy as np

    from trouter.data.dataset import TASK_SEP

    splits = ds.own_split()
    where = (
        f"split {splits.train.n_queries} / {splits.val.n_queries} / {splits.test.n_queries} "
        "(train / val / test)"
        if splits is not None
        else "no shipped split"
    )
    console.print(
        f"[bold]{ds.name}[/]: {ds.n_queries} queries x {ds.n_models} models, "
        f"{len(ds.task_names)} tasks; {where}"
    )

    scored = (~np.isnan(ds.scores_raw)).sum(axis=0)
    some_missing = bool((scored < ds.n_queries).any())
    table = Table(box=None)
    table.add_column("model", no_wrap=True)
    table.add_column("mean score", justify="right")
    table.add_column("$ / query", justify="right")
    if ds.pool is not None:
        table.add_column("$ / 1M in, out", justify="right")
    if ds.has_tokens:
        table.add_column("tokens in, out", justify="right")
    if some_missing:
        table.add_column("scored", justify="right")
    summary = ds.model_summary()
    for j, model in enumerate(ds.models):
        row = [model, f"{summary['mean_score'][j]:.3f}", f"{summary['mean_cost'][j]:.3g}"]
        if ds.pool is not None:
            spec = ds.pool[model]
            row.append(f"{spec.input_price:g}, {spec.output_price:g}")
        if ds.has_tokens:
            t_in, t_out = np.nanmean(ds.tokens_in[:, j]), np.nanmean(ds.tokens_out[:, j])
            row.append(f"{t_in:.0f}, {t_out:.0f}")
        if some_missing:
            row.append(str(int(scored[j])))
        table.add_row(*row)
    console.print(table)

    # Per task (or per task-path prefix): how many queries, and which model does best there.
    labels = np.asarray(
        [TASK_SEP.join(t.split(TASK_SEP)[:task_level]) if task_level else t for t in ds.tasks],
        dtype=object,
    )
    tasks = Table(box=None)
    tasks.add_column("task", no_wrap=True)
    tasks.add_column("queries", justify="right")
    tasks.add_column("best model (mean score)")
    for label in sorted(set(labels.tolist())):
        mask = labels == label
        means = ds.scores[mask].mean(axis=0)
        j = int(means.argmax())
        tasks.add_row(label or "(none)", str(int(mask.sum())), f"{ds.models[j]} ({means[j]:.3f})")
    console.print(tasks)
    console.print(f"cost: {ds.cost_note or 'as given in the data'}", highlight=False)
