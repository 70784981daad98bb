"""`trouter datasets`, `trouter routers`, `trouter encoders`: what this install can do."""

from __future__ import annotations

from rich.table import Table

from trouter.cli.app import app, console


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
def list_datasets() -> None:
    """List the dataset names `--data` accepts (a file path works too)."""
    from trouter.data.loaders import dataset_names
    from trouter.paths import shared_data_root

    root = shared_data_root()
    for name in dataset_names():
        where = (
            "inside the package"
            if name == "bundled"
            else (
                str(root / name)
                if root and (root / name).is_dir()
                else "not found (use --data-root)"
            )
        )
        console.print(f"{name:22s} {where}")
