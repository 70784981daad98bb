"""`trouter bench`: fit routers on a dataset under a protocol and report cost-quality metrics."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from trouter.cli.app import DATA_ROOT_HELP, app, console
from trouter.errors import ConfigError
from trouter.paths import make_dir

#: Registered routers left out of the default list: `single` needs a `model` argument, and every
#: single model is already in the report (the zero row and the single-model points).
NOT_BY_DEFAULT = ("single",)


def default_routers() -> list[str]:
    """Every registered router that is not evaluation-only (bar those in NOT_BY_DEFAULT)."""
    from trouter.routers.registry import router_names

    return [n for n in router_names(include_evaluation_only=False) if n not in NOT_BY_DEFAULT]


def parse_routers(text: str | None) -> list[str]:
    """Comma-separated registry names, checked against the registry (default: all of them)."""
    from trouter.eval.arguments import check_router_names
    from trouter.routers.registry import router_class

    if text is None or not text.strip():
        return default_routers()
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    for name in names:
        router_class(name)  # an unknown name raises a ConfigError listing the known ones
        if name in NOT_BY_DEFAULT:
            raise ConfigError(
                f"router {name!r} needs a model to always pick, and every single model is in "
                "the report already (the zero row and the plot's points); leave it out"
            )
    check_router_names(names)
    if not names:
        raise ConfigError("--routers lists no router; give names such as knn,mlp")
    return names


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for package in ("trouter", "numpy", "torch", "scikit-learn", "sentence-transformers"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            continue
    return out


@app.command("bench")
def bench(
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="A dataset name (routerbench_subset, llmrouter_9models, routellm_evals, bundled) "
            "or the path of a CSV / JSONL / Parquet file.",
        ),
    ] = "bundled",
    routers: Annotated[
        str | None,
        typer.Option(
            "--routers",
            help="Comma-separated router names (see `trouter routers`); default: every trainable one.",
        ),
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="in-domain or leave-task-out.")
    ] = "in-domain",
    task_level: Annotated[
        int | None,
        typer.Option(
            "--task-level",
            help="leave-task-out: group tasks by their first N path levels (default: the full label).",
        ),
    ] = None,
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="Query encoder: minilm, static or hashing (optionally NAME:DIM), or st:PATH (a local sentence-transformers model).",
        ),
    ] = "minilm",
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help=DATA_ROOT_HELP),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for splits and routers.")] = 0,
    resamples: Annotated[
        int,
        typer.Option(
            "--resamples",
            min=0,
            # 100 is eval.bootstrap.MIN_DRAWS, spelt out: importing it would load numpy for
            # every command; eval.arguments.check_draws enforces it.
            help="Bootstrap resamples of the test queries behind each gap's standard error and "
            "the paired comparisons (0: none; else at least 100).",
        ),
    ] = 1000,
    out: Annotated[
        Path,
        typer.Option("--out", help="Output folder for report.json, report.md and the plot."),
    ] = Path("bench-out"),
) -> None:
    """Benchmark routers: cost-quality curves, AIQ, gap recovered and scenario rewards."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trouter.data.loaders import load_dataset
    from trouter.encode import load_encoder
    from trouter.eval.arguments import check_draws
    from trouter.eval.plot import plot_result
    from trouter.eval.protocols import PROTOCOLS, make_folds
    from trouter.eval.report import comparison_lines, rich_table, write_json, write_markdown
    from trouter.eval.results import BenchResult
    from trouter.eval.runner import run_benchmark

    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    check_draws(resamples, name="--resamples")  # run_benchmark's rule, before any file is read
    names = parse_routers(routers)
    enc = load_encoder(encoder, cache=True)
    dataset = load_dataset(data, data_root)
    folds = make_folds(dataset, protocol, seed=seed, task_level=task_level)
    console.print(
        f"[bold]{dataset.name}[/]: {dataset.n_queries} queries x {dataset.n_models} models · "
        f"{protocol}, {len(folds)} fold(s) · routers {', '.join(names)} · encoder {enc.spec}"
    )

    command = ["trouter", "bench", "--data", data, "--routers", ",".join(names)]
    command += ["--protocol", protocol, "--encoder", encoder, "--seed", str(seed)]
    command += ["--resamples", str(resamples)]
    command += ["--task-level", str(task_level)] if task_level else []
    command += ["--data-root", str(data_root)] if data_root else []
    command += ["--out", str(out)]
    make_dir(out)

    def save(result: BenchResult) -> None:
        result.info.command = shlex.join(command)
        result.info.versions = _versions()
        write_json(result, out)

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("benchmark", total=len(folds) * len(names))
        started = {"n": 0}

        def on_step(fold: str, router: str) -> None:
            progress.update(task, completed=started["n"], description=f"{fold} · {router}")
            started["n"] += 1

        result = run_benchmark(
            dataset,
            protocol,
            names,
            encoder=enc,
            seed=seed,
            task_level=task_level,
            folds=folds,
            on_step=on_step,
            on_fold=save,
            draws=resamples,
        )
        progress.update(task, completed=len(folds) * len(names))
    save(result)
    write_markdown(result, out)
    plot = plot_result(result, out)
    console.print(rich_table(result))
    for line in comparison_lines(result):
        console.print(line, highlight=False)
    console.print(f"wrote {out / 'report.json'}, {out / 'report.md'} and {plot}")
