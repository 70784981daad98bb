"""`trouter train`, `trouter route` and `trouter quickstart`.

    trouter train --data bundled --router trouter --out my-router
    trouter route "Prove that sqrt(2) is irrational." --router my-router --tradeoff balanced
    trouter route --file queries.txt --router my-router --json > decisions.jsonl
    trouter adapt --router my-router --db gateway.sqlite --out my-router-adapted
    trouter quickstart --out quickstart

`route` explains each decision: the chosen model, every pool model's predicted quality, cost and
utility, and (for TRouter) the top task types with their probabilities.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from trouter.cli.app import app, console, err_console
from trouter.errors import ConfigError, DataError

if TYPE_CHECKING:
    from trouter.routers.base import Decision, Router

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
BATCH = 256


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
        typer.Option("--data-root", help="Folder holding the named datasets."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the router.")] = 0,
) -> None:
    """Train a router on a routing dataset and save it to a directory."""
    from trouter.data.loaders import load_dataset
    from trouter.encode import load_encoder
    from trouter.routers.registry import make_router
    from trouter.taxonomy import Taxonomy

    params = parse_params(param)
    if taxonomy is not None:
        params["taxonomy"] = Taxonomy.load(taxonomy)
    dataset = load_dataset(data, data_root)
    model = make_router(router, encoder=load_encoder(encoder, cache=True), seed=seed, **params)
    if "taxonomy" in params and "taxonomy" not in model.get_params():
        raise ConfigError(f"--taxonomy: router {router!r} does not use a taxonomy")
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


# ---------------------------------------------------------------------- adapt
@app.command("adapt")
def adapt_command(
    router: Annotated[
        Path, typer.Option("--router", help="A TRouter directory written by `trouter train`.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The adapted router directory to write.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Feedback from a file: logged queries with the scores the models that answered "
            "them earned (any file `trouter import` reads; an unscored model is simply not told).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Or the gateway's store (URL or SQLite file): the requests clients scored with "
            "POST /v1/feedback, except those an earlier adaptation used.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --db: only feedback since 30m, 7d, a date.")
    ] = None,
    min_z: Annotated[
        float | None,
        typer.Option(
            "--min-z",
            help="Standard errors of cross-validated gain a correction needs (default 2; 0 acts "
            "on any gain, which routed worse where nothing had shifted: benchmarks/RESULTS-trouter.md). "
            "With --db, raised as feedback that changed nothing is read again with what arrived "
            "since.",
        ),
    ] = None,
) -> None:
    """Adapt a trained TRouter to outcomes observed on live traffic (no retraining)."""
    from trouter.routers.registry import load_router
    from trouter.routers.trouter import TRouter
    from trouter.routers.trouter.adapt import MIN_SCORES, MIN_Z, is_look, sequential_z

    if (data is None) == (db is None):
        raise ConfigError(
            "give the feedback as either --data FILE or --db STORE, not both or neither"
        )
    if since is not None and db is None:
        raise ConfigError("--since selects gateway feedback; it needs --db")
    if out.resolve() == router.resolve():
        raise ConfigError("--out must differ from --router: the router you adapt is kept as it is")
    model = load_router(router)
    if not isinstance(model, TRouter):
        raise ConfigError(
            f"{router}: a {model.name} router cannot adapt; retrain it with `trouter train` on "
            "its training data plus the feedback"
        )
    feedback, through = _feedback(model, data, db, since)
    # Each look again at feedback that changed nothing raises the bar as the feedback grows
    # (see `sequential_z`); a look at no new feedback could only act on noise.
    reads = _unused_reads(model) if db is not None else []
    if reads and feedback.n_queries <= reads[-1]["queries"]:
        raise DataError(
            f"no new feedback since the last `trouter adapt` looked at it "
            f"({reads[-1]['queries']} queries, changed nothing; {feedback.n_queries} now): score "
            "more requests with POST /v1/feedback first"
        )
    sizes = [*(r["queries"] for r in reads if is_look(r)), feedback.n_queries]
    rule = sequential_z(MIN_Z if min_z is None else min_z, sizes)
    if len(sizes) > 1:
        console.print(
            f"look {len(sizes)} at this feedback ({sizes[0]} queries at the first, "
            f"{sizes[-1]} now; the earlier looks changed nothing): a correction needs "
            f"{round(rule, 2):g} standard errors"
        )
    with console.status(f"adapting to {feedback.n_queries} queries of feedback"):
        model.adapt(feedback, min_z=rule)
    step = model.adaptation_[-1]
    if through is not None:
        # Feedback that changed nothing stays unused, so the next call reads it again with what
        # arrives meanwhile: rounds too small to clear the gate add up to a decision.
        step["feedback_through" if step["models"] else "feedback_read"] = through
    model.save(out)
    moved = [f"{model.models_[j]} ({step['scores'][j]} scores)" for j in step["models"]]
    console.print(
        f"adapted to {feedback.n_queries} queries; corrected: {', '.join(moved) or 'nothing'}"
        f"; saved to [bold]{out}[/]"
    )
    gain = step.get("cv_gain")
    if gain and gain["standard_error"] > 0:
        z = gain["brier_gain"] / gain["standard_error"]
        console.print(
            f"[dim]cross-validated Brier gain of the best correction: {gain['brier_gain']:+.5f} "
            f"± {gain['standard_error']:.5f} ({z:.1f} standard errors; needed {round(rule, 2):g})[/]"
        )
    if not moved:
        pending = (
            ". This feedback stays unused: the next `trouter adapt --db` on the saved router "
            "reads it again with what has arrived since"
        )
        console.print(
            "[dim]nothing changed: a correction is made only when it beats the router's own "
            f"estimates by {round(rule, 2):g} standard errors in cross-validation on the feedback, on "
            f"models with at least {MIN_SCORES} scores (more feedback, or it agrees with the "
            f"router){pending if through is not None else ''}[/]"
        )


def _unused_reads(model: Any) -> list[dict[str, Any]]:
    """The latest adaptations that read gateway feedback and changed nothing, oldest first."""
    reads: list[dict[str, Any]] = []
    for step in reversed(getattr(model, "adaptation_", [])):
        if "feedback_read" not in step:
            break
        reads.insert(0, step)
    return reads


def _feedback(
    model: Any, data: str | None, db: str | None, since: str | None
) -> tuple[Any, int | None]:
    """(the feedback dataset, the last gateway feedback id it holds, or None for a file)."""
    from trouter.data.loaders import load_dataset

    if data is not None:
        return load_dataset(data), None
    from trouter.cli.serve import db_url
    from trouter.serve.feedback import feedback_dataset
    from trouter.serve.log_summary import parse_since
    from trouter.store import Store

    used = max((a.get("feedback_through", 0) for a in getattr(model, "adaptation_", [])), default=0)
    store = Store(db_url(db))
    try:
        return feedback_dataset(
            store, model.models_, after=used, since=parse_since(since) if since else None
        )
    finally:
        store.close()


# ---------------------------------------------------------------------- route
@app.command("route")
def route_command(
    query: Annotated[str | None, typer.Argument(help="The query to route.")] = None,
    router: Annotated[
        Path, typer.Option("--router", help="A router directory written by `trouter train`.")
    ] = Path("router"),
    tradeoff: Annotated[
        str,
        typer.Option(
            "--tradeoff",
            help="quality, balanced, cost, lambda=N (quality points per $) or budget=N ($ per 1k queries).",
        ),
    ] = "balanced",
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Route every query of a file: one per line, or JSONL."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With --file: write the decisions (JSONL) here, not stdout."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    pool: Annotated[
        Path | None,
        typer.Option("--pool", help="Check the router was trained for this pool (YAML)."),
    ] = None,
) -> None:
    """Route a query (or a file of them) and explain the decision."""
    from trouter.pool import Pool
    from trouter.routers.registry import load_router
    from trouter.tradeoff import Tradeoff

    if (query is None) == (file is None):
        raise ConfigError('give either a query ("...") or --file FILE, not both or neither')
    trade = Tradeoff.parse(tradeoff)
    expect = Pool.load(pool).names if pool is not None else None
    model = load_router(router, expect_models=expect)
    if file is None:
        assert query is not None
        decision = model.route([query], trade)[0]
        if as_json:
            console.print_json(json.dumps(_decision_json(query, decision, trade)))
        else:
            _explain(query, decision, str(trade), _question_note(model, query))
        return
    queries = read_queries(file)
    _route_file(model, queries, trade, out)


def read_queries(path: Path) -> list[str]:
    """Queries from a text file (one per line) or JSONL (a "query", "prompt" or "text" field)."""
    if not path.is_file():
        raise DataError(f"query file not found: {path}")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: no queries in the file")
    if path.suffix.lower() != ".jsonl" and not lines[0].lstrip().startswith("{"):
        return lines
    queries = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        text = next(
            (row[k] for k in ("query", "prompt", "text") if isinstance(row, dict) and k in row),
            None,
        )
        if not isinstance(text, str):
            raise DataError(f'{path}:{number}: expected a JSON object with a "query" text field')
        queries.append(text)
    return queries


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _route_file(model: Router, queries: list[str], trade: Any, out: Path | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trouter.routers.base import check_queries

    check_queries(queries)  # a bad line fails before any output is written
    lines: list[str] = []
    with Progress(
        TextColumn("routing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("route", total=len(queries))
        for batch in _batches(queries):
            for q, d in zip(batch, model.route(batch, trade), strict=True):
                lines.append(json.dumps(_decision_json(q, d, trade)))
            progress.advance(task, len(batch))
    text = "\n".join(lines) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    err_console.print(f"routed {len(queries)} queries; decisions in {out}")


def _decision_json(query: str, decision: Decision, trade: Any) -> dict[str, Any]:
    return {"query": query, "tradeoff": str(trade), **decision.to_dict()}


def _question_note(model: Router, query: str) -> str:
    """For a router that reads the question apart from shared boilerplate: how much it cut."""
    question = getattr(model, "question_of", lambda _: None)(query)
    if question is None or len(question) == len(query):
        return ""
    return (
        f"read the question apart from {len(query) - len(question)} characters of boilerplate "
        "(few-shot examples, answer format) it shares with the training prompts"
    )


def _explain(query: str, decision: Decision, trade: str, note: str = "") -> None:
    short = query if len(query) <= 100 else query[:97] + "..."
    console.print(f"[dim]query:[/] {short}")
    if note:
        console.print(f"[dim]{note}[/]")
    console.print(
        f"-> [bold green]{decision.model}[/]  (trade-off {trade}: lambda = {decision.lam:.4g} "
        "quality points per $)"
    )
    table = Table(box=None, pad_edge=False)
    for column in ("", "model", "quality", "$ / query", "utility"):
        table.add_column(column, justify="left" if column in ("", "model") else "right")
    for e in sorted(decision.estimates, key=lambda e: -e.utility):
        mark = "*" if e.model == decision.model else ""
        table.add_row(mark, e.model, f"{e.quality:.3f}", f"{e.cost:.3g}", f"{e.utility:.3f}")
    console.print(table)
    if decision.task_types:
        console.print(
            "task types: "
            + " · ".join(f"{t.name} {t.probability:.2f}" for t in decision.task_types)
        )


# ---------------------------------------------------------------------- quickstart
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
    seed: Annotated[int, typer.Option("--seed", help="Seed for routers.")] = 0,
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
    from trouter.data.loaders import load_dataset
    from trouter.encode import load_encoder
    from trouter.eval.plot import plot_result
    from trouter.eval.report import comparison_lines, rich_table, write_json, write_markdown
    from trouter.eval.runner import run_benchmark
    from trouter.routers.registry import make_router

    names = parse_routers(routers)
    params = parse_params(param)
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
        _explain(query, decision, "balanced")
    console.print(
        f"\nreport: {bench_dir / 'report.md'} · plot: {plot} · "
        f"{time.perf_counter() - start:.0f} s in all"
    )
    console.print(f'next: trouter route "your question" --router {router_dir} --tradeoff quality')
