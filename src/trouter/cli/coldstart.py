"""`trouter coldstart PROFILE --out DIR`: one command from a task profile to a trained router
(taxonomy -> items -> labels -> TRouter -> report), resumable at every step. The work is
`trouter.coldstart.Coldstart`; this module draws it."""

from __future__ import annotations

import asyncio
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trouter.cli.app import EXIT_INTERRUPTED, app, console, err_console

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from trouter.coldstart import Coldstart, RunPlan, Summary


class RichReporter:
    """Draws the pipeline's steps: a header per step, a progress bar, a result line."""

    def __init__(self, out: Console) -> None:
        self.console = out
        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.name = ""

    def step(self, name: str, number: int, total: int, skipped: bool, reason: str) -> None:
        self.close()
        if skipped:
            self.console.print(f"[dim]step {number}/{total} · {name}: skipped ({reason})[/]")
            return
        self.console.rule(
            f"[bold]step {number}/{total} · {name}[/] [dim]({reason})[/]", align="left"
        )
        self.name = name

    def _bar(self) -> tuple[Progress, TaskID]:
        """The step's progress bar, started when the step first reports progress."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        if self.bar is None or self.task is None:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[note]}"),
                console=self.console,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=None, note="")
        return self.bar, self.task

    def progress(
        self,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float = 0.0,
        note: str | None = None,
    ) -> None:
        bar, task = self._bar()
        if note is None:
            bar.update(task, total=total, completed=completed, advance=advance)
        else:
            bar.update(task, total=total, completed=completed, advance=advance, note=note)

    def message(self, text: str, warning: bool = False) -> None:
        prefix = "[yellow]warning:[/] " if warning else "  "
        self.console.print(prefix + escape(text), soft_wrap=True)

    def done(self, name: str, lines: list[str]) -> None:
        self.close()
        for line in lines:
            self.console.print(f"  [green]done[/] {escape(line)}", soft_wrap=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.bar, self.task = None, None


@app.command(
    "coldstart",
    short_help="From a task profile to a trained router: taxonomy, items, labels, router, report.",
)
def coldstart(
    profile: Annotated[Path, typer.Argument(help="The task profile YAML (see examples/).")],
    out: Annotated[
        Path, typer.Option("--out", help="Run directory: every step's output and the store.")
    ],
    pool: Annotated[
        Path | None,
        typer.Option("--pool", help="The models to route between (default: the profile's pool)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Store: a SQLAlchemy URL or a SQLite file (default: OUT/trouter.sqlite)."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget", help="Hard $ cap over every step (default: the profile's budget_usd)."
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option(
            "--judge",
            help="Model grading free-text answers (default: the profile's judge, else the generator).",
        ),
    ] = None,
    encoder: Annotated[
        str | None,
        typer.Option(
            "--encoder",
            help="Encoder for dedup and the router: minilm, static, hashing[:DIM], st:PATH (default: the profile's).",
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for the held-out split and the router.")
    ] = 0,
    holdout: Annotated[
        float,
        typer.Option("--holdout", help="Share of every leaf's items held out for the report."),
    ] = 0.25,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Answer length cap for the pool models.")
    ] = 1024,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="Override the generator's max_concurrency.")
    ] = None,
    from_step: Annotated[
        str | None,
        typer.Option(
            "--from-step",
            help="Redo this step and every later one (taxonomy, items, labels, router, report).",
        ),
    ] = None,
    force: Annotated[
        list[str] | None,
        typer.Option(
            "--force",
            help="Redo this step (repeatable or comma-separated); paid answers still come from the cache.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the cost estimate; call nothing.")
    ] = False,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Do not check keys and endpoints first.")
    ] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="Fetch completions as SSE streams.")
    ] = False,
) -> None:
    """From a task profile to a trained router in one command: build the taxonomy, synthesise
    items, have every pool model answer them and grade the answers, train TRouter, and report
    what each trade-off preset buys on held-out synthetic queries. Rerun the same command to
    resume: finished steps are skipped and paid answers come from the cache."""
    from trouter.coldstart import Coldstart, ColdstartOptions

    forced = tuple(s.strip() for f in force or [] for s in f.split(",") if s.strip())
    options = ColdstartOptions(
        out=out,
        pool=pool,
        db=db,
        budget=budget,
        judge=judge,
        encoder=encoder,
        seed=seed,
        holdout=holdout,
        max_tokens=max_tokens,
        concurrency=concurrency,
        from_step=from_step,
        force=forced,
        stream=stream,
        command=shlex.join(["trouter", *sys.argv[1:]]) if sys.argv[1:2] == ["coldstart"] else "",
    )
    reporter = RichReporter(console)
    job = Coldstart(profile, options, reporter)
    try:
        _print_plan(job, job.plan())
        if dry_run:
            return
        summary = _run(job, reporter, skip_check)
    finally:
        reporter.close()
        job.close()
    _print_summary(summary)


def _run(job: Coldstart, reporter: RichReporter, skip_check: bool) -> Summary:
    from trouter.errors import TrouterError

    async def go() -> Summary:
        if not skip_check:
            await job.preflight()
        return await job.run()

    try:
        return asyncio.run(go())
    except KeyboardInterrupt:
        reporter.close()
        _print_saved(job, "interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except TrouterError:
        reporter.close()
        if job.current is not None:  # stopped part-way (budget, a missing key, bad data)
            _print_saved(job, "stopped")
        raise


def _print_saved(job: Coldstart, what: str) -> None:
    where = f" during step {job.current!r}" if job.current else ""
    err_console.print(f"[yellow]{what}{where}[/]; saved so far:")
    for line in job.saved():
        err_console.print(f"  - {escape(line)}", soft_wrap=True)
    err_console.print(
        "rerun the same command to resume (raise --budget if the cap stopped it); "
        "finished steps are skipped and paid answers are read from the cache",
        soft_wrap=True,
    )


def _print_plan(job: Coldstart, plan: RunPlan) -> None:
    table = Table(
        "step",
        "status",
        "LLM calls",
        "est. $",
        "at most $",
        "models",
        "note",
        title=f"cold start of {job.profile.name} in {job.paths.out}",
    )
    for s in plan.steps:
        status = "[green]done[/]" if s.status == "done" else s.status
        calls = f"{s.calls:,}" if s.calls or s.status != "done" else ""
        if s.calls_max > s.calls:
            calls += f" (<= {s.calls_max:,})"
        costly = s.calls or s.cost
        table.add_row(
            s.step,
            status,
            calls if costly else "",
            f"{s.cost:.4f}" if costly else "",
            f"{s.cost_max:.4f}" if costly else "",
            ", ".join(s.models),
            escape(s.note),
        )
    table.add_row(
        "total",
        "",
        f"{plan.calls:,}",
        f"{plan.cost:.4f}",
        f"{plan.cost_max:.4f}",
        "",
        "",
        style="bold",
    )
    console.print(table)
    cap = (
        f"budget cap ${plan.budget_usd:.2f} for the whole job (spent before: "
        f"${plan.spent_before_usd:.4f})"
        if plan.budget_usd is not None
        else "no budget cap (set budget_usd in the profile or --budget)"
    )
    console.print(
        f"estimate: about ${plan.cost:.4f}, at most ${plan.cost_max:.4f}; {cap}. Token counts "
        "are estimates; answers and verdicts already in the cache are priced at $0.",
        soft_wrap=True,
        highlight=False,
    )
    from trouter.label.estimate import over_budget

    if (warning := over_budget(plan.cost, plan.budget_usd, plan.spent_before_usd)) is not None:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)


def _print_summary(s: Summary) -> None:
    console.rule("[bold]summary[/]", align="left")
    per_leaf = list(s.items.per_leaf.values())
    dropped = ", ".join(f"{v} {k}" for k, v in s.items.dropped.items())
    console.print(
        f"items: {s.items.total} over {len(per_leaf)} leaves, {min(per_leaf, default=0)} to "
        f"{max(per_leaf, default=0)} per leaf (wanted {s.items.wanted_per_leaf}); dropped: {dropped}",
        highlight=False,
    )
    if len(per_leaf) <= 12:  # a small taxonomy: every leaf; a large one: the short ones
        for leaf, count in s.items.per_leaf.items():
            console.print(f"  {escape(leaf)}: {count}", highlight=False)
    else:
        for leaf in s.items.short_leaves[:10]:
            console.print(f"  short: {escape(leaf)}: {s.items.per_leaf[leaf]}", highlight=False)
    calls = Table(
        "model",
        "roles",
        "paid calls",
        "tokens in / out",
        "$ paid",
        "calls now",
        "cached now",
        "$ now",
        "failed calls",
        title="LLM calls (paid: over every run of this job; now: this run)",
    )
    for m in s.calls:
        calls.add_row(
            m.model,
            ", ".join(m.roles),
            f"{m.paid_calls:,}",
            f"{m.tokens_in:,} / {m.tokens_out:,}",
            f"{m.cost_usd:.4f}",
            f"{m.calls_now:,}",
            f"{m.cached_now:,}",
            f"{m.cost_now:.4f}",
            f"{m.failed_calls:,}",
        )
    console.print(calls)
    cap = f" of the ${s.budget_usd:.2f} cap" if s.budget_usd is not None else ""
    console.print(
        f"spent: ${s.spent_now_usd:.4f} this run, ${s.spent_total_usd:.4f} for the whole job{cap}",
        highlight=False,
    )
    console.print(
        f"cached responses reused: {s.cache_hits_now} this run (worth ${s.saved_now_usd:.4f}), "
        f"{s.cache_hits_total} over every run of this job",
        highlight=False,
    )
    lab = s.labels
    console.print(
        f"failures: {sum(lab.call_failures.values())} pool answers failed after retries, "
        f"{sum(lab.score_failures.values())} answers could not be graded (stored, counted as 0); "
        f"{sum(m.failed_calls for m in s.calls)} failed LLM calls in all",
        highlight=False,
    )
    for line in lab.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", soft_wrap=True, highlight=False)
    table = Table(
        "routing",
        "expected quality",
        "$ per 1k queries",
        "model mix",
        title=f"on {s.report.n_test} held-out synthetic queries",
    )
    for o in [*s.report.presets, *s.report.models, s.report.oracle]:
        name = (
            f"trouter:{o.name}"
            if o.kind == "preset"
            else "oracle"
            if o.kind == "oracle"
            else f"always {o.name}"
        )
        mix = ", ".join(f"{m} {share:.0%}" for m, share in o.mix.items())
        table.add_row(
            name,
            f"{o.quality:.3f}",
            f"{o.cost * 1000:.4f}",
            mix,
            style="bold" if o.kind == "preset" else None,
        )
    console.print(table)
    console.print(
        f"router: {s.router_dir}; report: {Path(s.out) / 'report.md'}; summary: {Path(s.out) / 'summary.json'}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f'serve it: trouter serve --router {shlex.quote(s.router_dir)}  (model "trouter:balanced", '
        '"trouter:quality" or "trouter:cost")',
        highlight=False,
        soft_wrap=True,
    )
