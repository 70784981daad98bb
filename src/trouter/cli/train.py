"""`trouter train`: fit a router on a routing dataset and save it to a directory.

trouter train --data bundled --router trouter --out my-router
trouter train --data my-data.jsonl --taxonomy taxonomy.json --out my-router
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trouter.cli.app import DATA_ROOT_HELP, app, console
from trouter.errors import ConfigError
from trouter.paths import make_dir

if TYPE_CHECKING:
    from trouter.routers.base import Router


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`k=v` pairs; a value is read as JSON when it parses (numbers, true/false, null), else text."""
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r}: write it as NAME=VALUE, e.g. --param beta=0.5")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key.strip() in ("seed", "encoder"):
            raise ConfigError(f"--param {item!r}: give the {key.strip()} with --{key.strip()}")
        params[key.strip()] = value
    return params


# ---------------------------------------------------------------------- train
@app.command("train")
def train_command(
    data: Annotated[
        str,
        typer.Option("--data", help="A dataset name (see `trouter datasets`) or a file path."),
    ],
    out: Annotated[Path, typer.Option("--out", help="The router directory to write.")],
    router: Annotated[
        str, typer.Option("--router", help="A registered router (see `trouter routers`).")
    ] = "trouter",
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="Query encoder: minilm, static, hashing[:DIM] or st:PATH (a local sentence-transformers model).",
        ),
    ] = "minilm",
    taxonomy: Annotated[
        Path | None,
        typer.Option("--taxonomy", help="A taxonomy JSON / YAML whose leaf paths are the tasks."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A router hyper-parameter NAME=VALUE (repeatable)."),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help=DATA_ROOT_HELP),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for the router.")] = 0,
) -> None:
    """Train a router on a routing dataset and save it to a directory."""
    from trouter.data.loaders import load_dataset
    from trouter.encode import load_encoder
    from trouter.routers.registry import make_router
    from trouter.taxonomy import Taxonomy

    params = parse_params(param)
    if taxonomy is not None:
        params["taxonomy"] = Taxonomy.load(taxonomy)
    model = make_router(router, encoder=load_encoder(encoder, cache=True), seed=seed, **params)
    if model.evaluation_only:
        raise ConfigError(
            f"router {router!r} is for evaluation only (it must see the outcomes of the queries "
            "it routes); train another one (see `trouter routers`)"
        )
    if "taxonomy" in params and "taxonomy" not in model.get_params():
        raise ConfigError(f"--taxonomy: router {router!r} does not use a taxonomy")
    dataset = load_dataset(data, data_root)
    make_dir(out)
    console.print(
        f"[bold]{dataset.name}[/]: {dataset.n_queries} queries x {dataset.n_models} models, "
        f"{len(dataset.task_names)} tasks · router {router} · encoder {encoder}"
    )
    start = time.perf_counter()
    with console.status("encoding queries and fitting (early stopping on a validation split)"):
        model.fit(dataset)
    seconds = time.perf_counter() - start
    model.save(out)
    console.print(f"fitted in {seconds:.1f} s; saved to [bold]{out}[/]")
    _print_summary(model)
    console.print(f'route with: trouter route "your query" --router {out}')


def _print_summary(model: Router) -> None:
    training = getattr(model, "training_", None) or getattr(model, "selection_", None)
    if isinstance(training, dict):
        shown = {k: v for k, v in training.items() if not isinstance(v, dict | list)}
        console.print("training: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    calibration = getattr(model, "calibration_", None)
    if calibration is not None:
        lams = {p: calibration.lambda_for_preset(p) for p in ("quality", "balanced", "cost")}
        console.print(
            "trade-off presets (quality points per $): "
            + ", ".join(f"{p} lambda={lam:.4g}" for p, lam in lams.items())
        )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
