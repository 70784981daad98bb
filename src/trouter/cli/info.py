"""`trouter datasets`, `trouter routers`, `trouter encoders`: what this install can do."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trouter.cli.app import DATA_ROOT_HELP, app, console
from trouter.paths import data_root_candidates


@app.command("routers")
def list_routers() -> None:
    """List the registered routers."""
    from trouter.routers.registry import router_class, router_names

    table = Table("name", "class", "notes")
    for name in router_names():
        cls = router_class(name)
        doc = doc_summary(cls.__doc__)
        if cls.evaluation_only and "evaluation only" not in doc.lower():
            doc = "Evaluation only. " + doc
        table.add_row(name, cls.__name__, doc)
    console.print(table)


def doc_summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line (it may wrap over several source lines)."""
    paragraph = inspect.cleandoc(doc or "").split("\n\n", 1)[0]
    return " ".join(paragraph.split())


@app.command("datasets")
def list_datasets(
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            help=DATA_ROOT_HELP,
        ),
    ] = None,
) -> None:
    """List the dataset names `--data` accepts (a file path works too), and where each is."""
    from trouter.data.loaders import dataset_names, find_data_root
    from trouter.errors import DataError

    for name in dataset_names():
        if name == "bundled":
            where = "inside the package"
        else:
            try:
                where = str(find_data_root(name, data_root) / name)
            except DataError:
                searched = ", ".join(str(r) for r in data_root_candidates())
                where = (
                    f"not found in {data_root}"
                    if data_root
                    else f"not found (searched {searched}; use --data-root)"
                )
        console.print(f"{name:22s} {where}", highlight=False, soft_wrap=True)
