"""`trouter route`: route a query (or a file of them) and explain the decision.

    trouter route "Prove that sqrt(2) is irrational." --router my-router --tradeoff balanced
    trouter route --file queries.txt --router my-router --json > decisions.jsonl

Each decision is explained: the chosen model, every pool model's predicted quality, cost and
utility, and (for TRouter) the top task types with their probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from trouter.cli.app import app, console, err_console
from trouter.errors import ConfigError, DataError

if TYPE_CHECKING:
    from trouter.routers.base import Decision, Router

BATCH = 256


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
            console.print_json(_decision_json(query, decision, trade))
        else:
            explain(query, decision, str(trade), _question_note(model, query))
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
                lines.append(_decision_json(q, d, trade))
            progress.advance(task, len(batch))
    text = "\n".join(lines) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    err_console.print(f"routed {len(queries)} queries; decisions in {out}")


def _decision_json(query: str, decision: Decision, trade: Any) -> str:
    """One decision as a JSON line; a non-finite estimate is null (JSON has no NaN)."""
    record = {"query": query, "tradeoff": str(trade), **decision.to_dict()}
    return json.dumps(_finite(record), allow_nan=False)


def _finite(value: Any) -> Any:
    from trouter.eval.results import finite_or_none

    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return finite_or_none(value)


def _question_note(model: Router, query: str) -> str:
    """For a router that reads the question apart from shared boilerplate: how much it cut."""
    question = getattr(model, "question_of", lambda _: None)(query)
    if question is None or len(question) == len(query):
        return ""
    return (
        f"read the question apart from {len(query) - len(question)} characters of boilerplate "
        "(few-shot examples, answer format) it shares with the training prompts"
    )


def explain(query: str, decision: Decision, trade: str, note: str = "") -> None:
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
