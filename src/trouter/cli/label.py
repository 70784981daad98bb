"""`trouter label`: the pool answers every item, each answer is graded, a RoutingDataset comes out.
Its options and the endpoint check are shared with `trouter annotate` (cli/annotate.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from trouter.cli.app import app, console, err_console
from trouter.cli.synth import open_store
from trouter.errors import ConfigError
from trouter.label.down import DOWN_AFTER

if TYPE_CHECKING:
    from trouter.label.runner import LabelOptions
    from trouter.pool import ModelSpec, Pool
    from trouter.store import Store
    from trouter.synth.items import SynthItem

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store: a SQLAlchemy URL or a SQLite file (default: trouter.sqlite by --out)."
    ),
]
PoolOpt = Annotated[Path, typer.Option("--pool", help="The pool YAML (models and prices).")]
JudgeOpt = Annotated[
    str | None,
    typer.Option(
        "--judge",
        help="Model that grades free-text answers (a name in --judge-pool); another judge on a "
        "rerun regrades them (the answers come from the cache).",
    ),
]
JudgePoolOpt = Annotated[
    Path | None,
    typer.Option("--judge-pool", help="Pool YAML holding the judge model (default: --pool)."),
]
SkipCheckOpt = Annotated[
    bool, typer.Option("--skip-check", help="Do not check keys and endpoints before starting.")
]


def observations_path(out: Path) -> Path:
    """Where the raw observations go next to a dataset: labels.parquet -> labels.observations.jsonl."""
    return out.with_name(out.stem + ".observations.jsonl")


def load_judge(judge: str | None, judge_pool: Path | None, pool_path: Path) -> ModelSpec | None:
    from trouter.pool import Pool

    if judge is None:
        return None
    return Pool.load(judge_pool or pool_path)[judge]


async def preflight_models(specs: list[ModelSpec]) -> None:
    """Stop before spending anything when a key is missing or an endpoint does not answer."""
    from trouter.llm import preflight, raise_for_problems

    problems = await preflight(specs)
    for p in problems:
        if not p.fatal:
            err_console.print(f"[yellow]warning:[/] {p.message}", highlight=False)
    raise_for_problems(problems)


LABEL_HELP = (
    "Every pool model answers every item; each answer is graded by the scorer for the item's "
    "answer format; writes a RoutingDataset (task = taxonomy path) and the raw observations. "
    "Rerunning resumes: stored observations and cached answers are reused, failures retried, and "
    "free-text answers regraded when --judge names another judge. A pool model, or the judge, "
    f"whose calls fail {DOWN_AFTER} times in a row stops the run, as does one whose every call "
    "failed; what was paid is kept for the rerun."
)


@app.command(
    "label",
    help=LABEL_HELP,
    short_help="Every pool model answers every item and each answer is graded: a routing dataset.",
)
def label(
    items: Annotated[Path, typer.Argument(help="Items file (.jsonl/.parquet) from synthesize.")],
    pool: PoolOpt,
    out: Annotated[Path, typer.Option("--out", help="The RoutingDataset Parquet to write.")],
    judge: JudgeOpt = None,
    judge_pool: JudgePoolOpt = None,
    db: DbOpt = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Run id in the store (default: label:<items>).")
    ] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Hard $ cap.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Answer length cap.")] = 1024,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.0,
    system_prompt: Annotated[
        str | None, typer.Option("--system", help="A system message sent before each item.")
    ] = None,
    code_timeout: Annotated[
        float, typer.Option("--code-timeout", help="Wall-clock seconds per code run.")
    ] = 10.0,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed/--keep-failed", help="Redo stored failures.")
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the calls and $ this run would make (stored observations kept, cached "
            "answers and verdicts at $0, judge calls included); call nothing.",
        ),
    ] = False,
    skip_check: SkipCheckOpt = False,
) -> None:
    """`trouter label` (its help is `LABEL_HELP`, which takes the count from `DOWN_AFTER`)."""
    from trouter.label.runner import LabelOptions
    from trouter.llm.usage import check_budget
    from trouter.paths import OutputLock
    from trouter.pool import Pool
    from trouter.synth.items import read_items

    check_budget(budget)
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1, got {max_tokens}")
    if not 0.0 <= temperature <= 2.0:
        raise ConfigError(f"--temperature must be between 0 and 2, got {temperature}")
    if not code_timeout > 0:
        raise ConfigError(
            f"--code-timeout must be a positive number of seconds, got {code_timeout}"
        )
    the_items = read_items(items)
    if not the_items:
        raise ConfigError(f"{items}: no items to label")
    the_pool = Pool.load(pool)
    judge_spec = load_judge(judge, judge_pool, pool)
    options = LabelOptions(
        temperature=temperature,
        max_tokens=max_tokens,
        system_prompt=system_prompt,
        retry_failed=retry_failed,
    )
    run_id = run or f"label:{items.stem}"
    job = _label(
        the_items,
        the_pool,
        judge_spec,
        options,
        out=out,
        db=db,
        run=run_id,
        budget=budget,
        code_timeout=code_timeout,
        dry_run=dry_run,
        skip_check=skip_check,
    )
    if dry_run:
        asyncio.run(job)
        return
    with OutputLock.beside(out, "trouter label"):  # two runs on one output would pay twice
        asyncio.run(job)


async def _label(
    items: list[SynthItem],
    pool: Pool,
    judge_spec: ModelSpec | None,
    options: LabelOptions,
    *,
    out: Path,
    db: str | None,
    run: str,
    budget: float | None,
    code_timeout: float,
    dry_run: bool,
    skip_check: bool,
) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from trouter.label.observations import load_observations, to_dataset, write_jsonl
    from trouter.label.runner import check_scorable, label_items
    from trouter.label.sandbox import SandboxLimits
    from trouter.label.scorers import Code, Judge
    from trouter.llm import LLMClient

    if dry_run:
        check_scorable(items, Judge(LLMClient(None), judge_spec) if judge_spec else None)
        _print_estimate(items, pool, judge_spec, options, _existing_store(db, out), run, budget)
        return
    store = open_store(db, out)
    client = LLMClient(store, run=run, budget_usd=budget)
    judge = Judge(client, judge_spec) if judge_spec is not None else None
    check_scorable(items, judge)  # before any call: free-text items need a judge
    if not skip_check:
        await preflight_models([*pool, *([judge_spec] if judge_spec else [])])
    code = Code(SandboxLimits(wall_s=code_timeout))
    try:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        ) as bar:
            job = bar.add_task("labelling", total=None, note="")
            done = 0

            def advance(_: object) -> None:
                nonlocal done
                done += 1
                u = client.usage
                note = f"{u.calls} calls, {u.cache_hits} cached, {u.failures} failed, ${u.cost_usd:.4f}"
                bar.update(job, completed=done, note=note)

            summary = await label_items(
                items,
                pool,
                client,
                store=store,
                run=run,
                judge=judge,
                code=code,
                options=options,
                on_observation=advance,
                on_start=lambda n: bar.update(job, total=n),
            )
    finally:
        await client.aclose()
    observations = load_observations(store, run)
    dataset = to_dataset(observations, items, pool, name=run)
    dataset.save(out)
    raw = write_jsonl(observations, items, pool, observations_path(out))
    for line in summary.lines():
        console.print(line, highlight=False)
    console.print(f"dataset: {out} ({dataset!r}); raw observations: {raw}", highlight=False)


def _existing_store(db: str | None, out: Path) -> Store | None:
    """The store `open_store` would open, opened to read (a dry run writes nothing, and
    upgrades no older store), or None when there is none yet (a dry run makes none)."""
    from trouter.store import Store, sqlite_file, url_for

    url = url_for(out.resolve().parent / "trouter.sqlite" if db is None else db)
    path = sqlite_file(url)  # None: another database, held by its server
    if path is not None and not path.is_file():
        return None
    return Store(url, must_exist=True)


def _print_estimate(
    items: list[SynthItem],
    pool: Pool,
    judge: ModelSpec | None,
    options: LabelOptions,
    store: Store | None,
    run: str,
    budget: float | None,
) -> None:
    """What `trouter label` with these arguments would call and pay (`trouter.label.estimate`,
    the estimate `trouter coldstart --dry-run` makes of its labels step)."""
    from trouter.label.estimate import (
        TYPICAL_ANSWER_TOKENS,
        TYPICAL_JUDGE_TOKENS,
        over_budget,
        plan_run,
        price,
    )
    from trouter.llm.cache import CallLog

    try:
        planned = plan_run(items, pool, judge, options, store, run)
        cost = price(planned.todo, pool, judge, options, store)
        # The run's budget guard counts what the run spent before against --budget: so does this.
        spent_before = CallLog(store, run).spent() if store is not None else 0.0
    finally:
        if store is not None:
            store.close()
    title = f"labelling estimate: {len(items)} items x {len(pool)} models"
    table = Table("model", "calls", "est. $", "at most $", title=title)
    rows = list(cost.models.items())
    if judge is not None:
        rows.append((f"{judge.name} (judge)", cost.judge))
    for name, part in rows:
        table.add_row(name, f"{part.calls:,}", f"{part.cost:.4f}", f"{part.cost_max:.4f}")
    table.add_row(
        "total", f"{cost.calls:,}", f"{cost.cost:.4f}", f"{cost.cost_max:.4f}", style="bold"
    )
    console.print(table)
    done = [
        f"{planned.kept} stored observations kept" if planned.kept else "",
        f"{planned.changed} asked again (the request changed)" if planned.changed else "",
        f"{planned.regraded} answers regraded by the new judge" if planned.regraded else "",
        f"{cost.from_cache} answers and verdicts from the cache ($0)" if cost.from_cache else "",
    ]
    if any(done):
        console.print("; ".join(d for d in done if d), highlight=False)
    console.print(
        f"est.: answers of ~{TYPICAL_ANSWER_TOKENS} tokens, verdicts of ~{TYPICAL_JUDGE_TOKENS}; "
        "at most: every answer as long as --max-tokens and every verdict as long as the judge's "
        "cap"
        + (
            f"; budget cap ${budget:.2f} for this run (spent before: ${spent_before:.4f})"
            if budget is not None
            else "; no budget cap"
        ),
        highlight=False,
    )
    if (warning := over_budget(cost.cost, budget, spent_before)) is not None:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True, highlight=False)
