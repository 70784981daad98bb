"""`trouter route`: route a query (or a file of them) and explain the decision.

    trouter route "Prove that sqrt(2) is irrational." --router my-router --tradeoff balanced
    trouter route --file queries.txt --router my-router > decisions.jsonl
    cat queries.jsonl | trouter route --file - --router my-router --out decisions.jsonl

Each decision is explained: the chosen model, every pool model's predicted quality, cost and
utility, and (for TRouter) the top task types with their probabilities.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
from rich.table import Table

from trouter.cli.app import app, console, err_console
from trouter.errors import ConfigError, DataError
from trouter.paths import atomic_target

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
        typer.Option(
            "--file",
            help="Route every query of a UTF-8 file ('-' reads stdin). It is JSONL (a \"query\", "
            '"prompt" or "text" field per line) when it ends in .jsonl / .ndjson or every '
            "non-blank line is a JSON object; otherwise each non-blank line is one query.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the decisions (JSONL, one line per query) to this file, not stdout.",
        ),
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
    queries = read_queries(file) if file is not None else None
    with ExitStack() as stack:
        # --out is checked (and its temp file made) before any routing work.
        sink = stack.enter_context(atomic_text_output(out)) if out is not None else None
        expect = Pool.load(pool).names if pool is not None else None
        model = load_router(router, expect_models=expect)
        if queries is None and sink is None:
            assert query is not None
            decision = model.route([query], trade)[0]
            if as_json:
                console.print_json(_decision_json(query, decision, trade))
            else:
                explain(query, decision, str(trade), _question_note(model, query))
            return
        batch = queries if queries is not None else [query or ""]
        text = _route_all(model, batch, trade)
        if sink is None:
            typer.echo(text, nl=False)
            return
        sink.write(text)
    noun = "query" if len(batch) == 1 else "queries"
    err_console.print(f"routed {len(batch)} {noun}; decisions in {out}")


JSONL_SUFFIXES = (".jsonl", ".ndjson")
QUERY_FIELDS = ("query", "prompt", "text")


def read_queries(path: Path) -> list[str]:
    """Queries from a UTF-8 file (a BOM is dropped), or stdin for `-`.

    The file is JSONL (a "query", "prompt" or "text" field per object) when its name ends in
    .jsonl / .ndjson, or when every non-blank line parses as a JSON object; otherwise each
    non-blank line is one query, so a text query may start with "{".
    """
    raw = _read_bytes(path)
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    numbered = [(n, line) for n, line in enumerate(content.splitlines(), 1) if line.strip()]
    lines = [line for _, line in numbered]
    if not lines:
        raise DataError(f"{path}: no queries in the file")
    records = [_json_object(line) for line in lines]
    if path.suffix.lower() not in JSONL_SUFFIXES and not all(isinstance(r, dict) for r in records):
        return lines
    queries = []
    for (number, line), record in zip(numbered, records, strict=True):
        if not isinstance(record, dict):
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
            raise DataError(f"{path}:{number}: not a JSON object")
        text = next((record[k] for k in QUERY_FIELDS if k in record), None)
        if not isinstance(text, str):
            raise DataError(f'{path}:{number}: expected a JSON object with a "query" text field')
        queries.append(text)
    return queries


def _read_bytes(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a file of queries")
    try:  # a pipe or process substitution (<(...)) is read like a regular file
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"query file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the query file ({exc.strerror})") from None


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.lstrip().startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


@contextmanager
def atomic_text_output(path: Path) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` only when the block ends without error.

    The temporary file (unique, next to `path`) is made on entry, so a path that cannot be
    written fails before any work; it is removed on any exception, Ctrl-C included, and the old
    `path` is kept intact.
    """
    if path.is_dir():
        raise DataError(f"--out {path} is a directory; give a file path")
    if not path.parent.is_dir():
        raise DataError(f"--out {path}: {path.parent} is not an existing folder; create it first")
    stack = ExitStack()
    try:
        tmp = stack.enter_context(atomic_target(path))
        handle = stack.enter_context(tmp.open("w", encoding="utf-8"))
    except OSError as exc:
        stack.close()
        raise DataError(f"--out {path} cannot be written ({exc.strerror})") from None
    try:
        yield handle
    except BaseException:
        stack.__exit__(*sys.exc_info())  # closes the handle and removes the temp file
        raise
    try:
        stack.close()  # flush, then replace `path`
    except OSError as exc:
        raise DataError(f"--out {path} cannot be written ({exc.strerror})") from None


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _route_all(model: Router, queries: list[str], trade: Any) -> str:
    """Every query's decision as JSON lines, with a progress bar on stderr."""
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
    return "\n".join(lines) + "\n"


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
