"""`trouter datasets`, `trouter routers`, `trouter encoders`: what this install can do."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trouter.cli.app import app, console
from trouter.paths import data_root_candidates


@app.command("routers")
def list_routers() -> None:
    """List the registered routers."""
    from trouter.routers.registry import router_class, router_names

    table = Table("name", "class", "notes")
    for name in router_names():
        cls = router_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        table.add_row(
            name, cls.__name__, ("evaluation only. " if cls.evaluation_only else "") + doc
        )
    console.print(table)


@app.command("datasets")
def list_datasets(
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            help="Folder holding the named datasets (default: TROUTER_DATA_ROOT, else "
            "../shared/data or shared/data from here or from trouter's source checkout).",
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
