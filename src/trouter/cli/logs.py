"""`trouter logs`: summarise the gateway's decision log (spend, model mix, fallbacks, errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from trouter.cli.app import app, console, err_console

if TYPE_CHECKING:
    from trouter.serve.log_summary import LogSummary


@app.command("logs")
def logs(
    db: Annotated[
        str | None, typer.Option("--db", help="The gateway's store (URL or SQLite file).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only rows since: 30m, 6h, 7d, or a date.")
    ] = None,
) -> None:
    """Summarise the gateway's decision log: spend, model mix, fallbacks, errors, latency."""
    from trouter.serve.log_summary import parse_since, summarise
    from trouter.store import Store, url_for

    since_at = parse_since(since) if since else None
    store = Store(url_for(db) if db is not None else None, must_exist=True)
    try:
        s = summarise(store, since_at)
    finally:
        store.close()
    if s.requests == 0:
        err_console.print(
            "no requests logged" + (f" since {since_at:%Y-%m-%d %H:%M} UTC" if since_at else "")
        )
        return
    span = f"{s.first:%Y-%m-%d %H:%M} .. {s.last:%Y-%m-%d %H:%M}" if s.first and s.last else ""
    # Latency is that of answered requests: with none, there is no figure to show (not 0 ms).
    latency = (
        f"latency p50 {s.p50_latency_ms:.1f} ms, p95 {s.p95_latency_ms:.1f} ms   "
        if s.models
        else ""
    )
    console.print(
        f"[bold]{s.requests}[/] requests {span}   spend [bold]${_money(s.spend)}[/]   "
        f"tokens {s.tokens_in} in / {s.tokens_out} out\n"
        f"errors {s.errors} ({s.error_rate:.1%})   requests with fallbacks {s.fallback_requests} "
        f"({s.fallbacks} fallbacks)   {latency}"
        f"router overhead mean {s.mean_overhead_ms:.2f} ms",
        highlight=False,
    )
    if s.models:
        console.print(_model_table(s))
    else:
        console.print("no request was answered", highlight=False)
    console.print(
        "HTTP statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(s.statuses.items())),
        highlight=False,
    )


def _model_table(s: LogSummary) -> Table:
    """One row per model that answered: its share, spend, tokens, latency and scores. Light
    borders, and each number column as wide as its widest value, so the table piped or on an
    80-column terminal keeps every figure (a long model name wraps instead)."""
    headers = [
        "answers", "share", "picked", "spend $", "tok in", "tok out", "mean ms", "scored", "score"
    ]  # fmt: skip
    rows = [
        [
            str(m.requests),
            f"{m.share:.1%}",
            str(m.chosen),
            _money(m.spend),
            str(m.tokens_in),
            str(m.tokens_out),
            f"{m.mean_latency_ms:.1f}",
            str(m.scored),
            "" if m.mean_score is None else f"{m.mean_score:.3f}",
        ]
        for m in s.models
    ]
    table = Table(
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
        caption="picked: times the router chose it · scored: answers with feedback · score: "
        "their mean",
        caption_justify="left",
    )
    table.add_column("model", overflow="fold")
    for k, header in enumerate(headers):
        widest = max([len(header), *(len(row[k]) for row in rows)])
        table.add_column(header, justify="right", min_width=widest, overflow="fold")
    for m, row in zip(s.models, rows, strict=True):
        table.add_row(m.model, *row)
    return table


def _money(dollars: float) -> str:
    """Dollars with cents for real spend, and significant digits for test-sized amounts."""
    return f"{dollars:.2f}" if dollars >= 1 else f"{dollars:.3g}"
