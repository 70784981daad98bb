"""`trouter quickstart`: TRouter on the bundled data, benchmarked and explained, in one command.

    trouter quickstart --out runs/quickstart

Trains TRouter and a few baselines on the bundled data's training split, prints the benchmark
table with the paired comparisons, writes the report and the plot, trains TRouter on all the data
and explains a few decisions the way `trouter route` does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from trouter.cli.app import app, console
from trouter.paths import make_dir

#: Routers the quickstart benchmarks (`mlp` and `mf` are left out: on two cores each alone takes
#: minutes; `trouter bench --data bundled` runs them all).
QUICKSTART_ROUTERS = ("trouter", "trouter-paper", "knn", "linear")
#: Queries the quickstart routes to show explained decisions.
EXAMPLE_QUERIES = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?",
    "Write a python function to find the first repeated character in a given string.",
    "Who wrote the novel 'One Hundred Years of Solitude'?",
    "Which gas do plants absorb from the air for photosynthesis? (A) oxygen (B) nitrogen "
    "(C) carbon dioxide (D) helium",
)


@app.command("quickstart")
def quickstart_command(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the report, the plot and the router.")
    ] = Path("trouter-quickstart"),
    encoder: Annotated[
        str,
        typer.Option(
            "--encoder",
            help="Query encoder. static (default) is distilled from MiniLM once (~30 s) and "
            "then encodes thousands of queries per second; minilm is slower on a CPU.",
        ),
    ] = "static",
    routers: Annotated[
        str,
        typer.Option("--routers", help="Comma-separated routers to benchmark against TRouter."),
    ] = ",".join(QUICKSTART_ROUTERS),
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed for routers.")] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A TRouter hyper-parameter NAME=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Train TRouter on the bundled data, benchmark it against the baselines, explain decisions.

    Needs nothing outside the package: the bundled data is llmrouter_9models (9 open models,
    14 tasks). Writes OUT/bench (report.json, report.md, the cost-quality plot) and OUT/router.
    """
    from trouter.cli.bench import parse_routers
    from trouter.cli.route import explain
    from trouter.cli.train import parse_params
    from trouter.data.loaders import load_dataset
    from trouter.encode import load_encoder
    from trouter.eval.plot import plot_result
    from trouter.eval.report import comparison_lines, rich_table, write_json, write_markdown
    from trouter.eval.runner import run_benchmark
    from trouter.routers.registry import make_router

    names = parse_routers(routers)
    params = parse_params(param)
    make_dir(out)
    start = time.perf_counter()
    dataset = load_dataset("bundled")
    console.print(
        f"[bold]1/3[/] bundled data: {dataset.n_queries} queries x {dataset.n_models} models, "
        f"{len(dataset.task_names)} tasks ({dataset.cost_note or 'costs as recorded'})"
    )
    with console.status(f"loading the {encoder} encoder and encoding the queries"):
        enc = load_encoder(encoder, cache=True)
        enc.encode(dataset.queries)  # fills the on-disk cache; every router below reads it
    bench_dir = out / "bench"
    with console.status(
        f"[bold]2/3[/] benchmarking {', '.join(names)} (in-domain split)"
    ) as status:

        def on_step(fold: str, name: str) -> None:
            status.update(f"[bold]2/3[/] benchmarking: fitting {name}")

        result = run_benchmark(dataset, "in-domain", names, encoder=enc, seed=seed, on_step=on_step)
    result.info.command = f"trouter quickstart --out {out} --encoder {encoder}"
    write_json(result, bench_dir)
    write_markdown(result, bench_dir)
    plot = plot_result(result, bench_dir)
    console.print(rich_table(result))
    for line in comparison_lines(result):
        console.print(line, highlight=False)
    console.print(
        "[dim]This is the data's shipped test split, which is not distributed "
        "like its training split: e.g. its 'mmlu' rows are reading passages in train and short "
        "questions in test. benchmarks/RESULTS-trouter.md compares every router on seeded "
        "resplits of this data and on two more datasets.[/]"
    )

    router_dir = out / "router"
    with console.status("[bold]3/3[/] training TRouter on all the bundled data"):
        model = make_router("trouter", encoder=enc, seed=seed, **params).fit(dataset)
        model.save(router_dir)
    console.print(
        f"[bold]3/3[/] TRouter trained on all {dataset.n_queries} queries -> {router_dir}"
    )
    console.print("\n[bold]explained decisions[/] (trade-off balanced):")
    for query, decision in zip(
        EXAMPLE_QUERIES, model.route(list(EXAMPLE_QUERIES), "balanced"), strict=True
    ):
        console.print()
        explain(query, decision, "balanced")
    console.print(
        f"\nreport: {bench_dir / 'report.md'} · plot: {plot} · "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    console.print(f'next: trouter route "your question" --router {router_dir} --tradeoff quality')
