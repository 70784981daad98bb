"""`trouter taxonomy build|show` and `trouter synthesize`: cold-start data from a task profile."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trouter.cli.app import EXIT_INTERRUPTED, app, console, err_console
from trouter.errors import ConfigError, TrouterError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from trouter.llm import LLMClient
    from trouter.pool import ModelSpec
    from trouter.profile import TaskProfile
    from trouter.store import Store
    from trouter.synth.plan import Plan
    from trouter.synth.qa import Synthesizer, SynthReport
    from trouter.taxonomy import Taxonomy

taxonomy_app = typer.Typer(help="Build and view task taxonomies.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy")

ProfileArg = Annotated[Path, typer.Argument(help="The task profile YAML (see examples/).")]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store: a SQLAlchemy URL or a SQLite file (default: trouter.sqlite by --out)."
    ),
]
DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the planned calls and estimated cost; call nothing."),
]
CheckOpt = Annotated[
    bool, typer.Option("--check", help="Only check that the generator's key and endpoint work.")
]
SkipCheckOpt = Annotated[
    bool, typer.Option("--skip-check", help="Do not check the endpoint before starting.")
]
BudgetOpt = Annotated[
    float | None, typer.Option("--budget", help="Hard $ cap (default: the profile's budget_usd).")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", help="Override the generator's max_concurrency.")
]
StreamOpt = Annotated[bool, typer.Option("--stream", help="Fetch completions as SSE streams.")]


def open_store(db: str | None, out: Path) -> Store:
    """The store for a run: `--db` as a URL or a path, else trouter.sqlite beside the output."""
    from trouter.store import Store, url_for

    return Store(url_for(out.resolve().parent / "trouter.sqlite" if db is None else db))


def _load(
    profile_path: Path, budget: float | None, concurrency: int | None
) -> tuple[TaskProfile, ModelSpec, float | None]:
    from trouter.llm.usage import check_budget
    from trouter.profile import TaskProfile

    check_budget(budget)
    profile = TaskProfile.load(profile_path)
    spec = profile.generator_spec()
    if concurrency is not None:
        if concurrency < 1:
            raise TrouterError("--concurrency must be at least 1")
        spec = spec.model_copy(update={"max_concurrency": concurrency})
    return profile, spec, budget if budget is not None else profile.budget_usd


def _print_plan(plan: Plan, budget: float | None, title: str) -> None:
    table = Table(
        "step", "calls", "at most", "tokens in/call", "tokens out/call", "est. $", title=title
    )
    for step in plan.steps:
        table.add_row(
            step.step,
            str(step.calls),
            str(step.calls_max),
            f"{step.tokens_in:,}",
            f"{step.tokens_out:,}",
            f"{step.cost(plan.model):.4f}",
        )
    table.add_row(
        "total", str(plan.calls), str(plan.calls_max), "", "", f"{plan.cost:.4f}", style="bold"
    )
    console.print(table)
    for note in plan.notes:
        console.print(f"  {note}")
    console.print(
        f"generator {plan.model.name!r} ({plan.model.model} at {plan.model.base_url or 'OpenAI'}): "
        f"about ${plan.cost:.4f}, at most ${plan.cost_max:.4f} (token counts are estimates; "
        "cached responses cost nothing)"
        + (f"; budget cap ${budget:.2f}" if budget is not None else "; no budget cap"),
        soft_wrap=True,
    )


async def _preflight(spec: ModelSpec, skip: bool, only: bool) -> None:
    from trouter.llm import preflight, raise_for_problems

    if skip:
        return
    problems = await preflight([spec])
    for p in problems:
        if not p.fatal:
            err_console.print(f"[yellow]warning:[/] {p.message}", highlight=False)
    try:
        raise_for_problems(problems)
    except TrouterError as exc:
        raise TrouterError(
            f"{exc} (to run from cached responses only, pass --skip-check)"
        ) from None
    if only:
        console.print(f"[green]ok[/] model {spec.name!r}: key and endpoint {spec.base_url} work")


def _summary(client: LLMClient, title: str) -> None:
    u = client.usage
    table = Table(title=title, show_header=False)
    table.add_row("LLM calls", f"{u.calls:,}")
    table.add_row("cached responses reused", f"{u.cache_hits:,} (saved ${u.saved_usd:.4f})")
    table.add_row("paid calls", f"{u.paid_calls:,}")
    table.add_row("tokens in / out", f"{u.tokens_in:,} / {u.tokens_out:,}")
    table.add_row("spent", f"${u.cost_usd:.4f}")
    table.add_row("retries", f"{u.retries:,}")
    table.add_row("failed calls", f"{u.failures:,}")
    table.add_row("invalid structured outputs", f"{u.structured_failures:,}")
    console.print(table)
    console.print(f"cached responses reused: {u.cache_hits}", highlight=False, soft_wrap=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[calls]}"),
        console=console,
        transient=False,
    )


def _calls_text(client: LLMClient) -> str:
    u = client.usage
    return f"{u.calls} calls, {u.cache_hits} cached, ${u.cost_usd:.4f}"


# ---------------------------------------------------------------------------------- taxonomy


@taxonomy_app.command("build")
def taxonomy_build(
    profile: ProfileArg,
    out: Annotated[Path, typer.Option("--out", help="Where to write the taxonomy (.yaml/.json).")],
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    check: CheckOpt = False,
    skip_check: SkipCheckOpt = False,
    budget: BudgetOpt = None,
    concurrency: ConcurrencyOpt = None,
    stream: StreamOpt = False,
) -> None:
    """Build a taxonomy from a task profile: generate, critique/revise, A/B select, per level."""
    from trouter.synth.plan import plan_taxonomy

    task, spec, cap = _load(profile, budget, concurrency)
    if dry_run:
        _print_plan(plan_taxonomy(task), cap, f"taxonomy build plan for {task.name}")
        return
    asyncio.run(_build(task, spec, cap, out, db, check, skip_check, stream))


async def _build(
    task: TaskProfile,
    spec: ModelSpec,
    cap: float | None,
    out: Path,
    db: str | None,
    check: bool,
    skip_check: bool,
    stream: bool,
) -> None:
    from trouter.llm import LLMClient
    from trouter.synth.builder import TaxonomyBuilder
    from trouter.synth.plan import plan_taxonomy

    await _preflight(spec, skip_check, check)
    if check:
        return
    store = open_store(db, out)
    plan = plan_taxonomy(task)
    with _progress() as bar:
        job = bar.add_task("taxonomy calls", total=plan.calls, calls="")
        client = LLMClient(store, run=task.run_id, budget_usd=cap, stream=stream)
        client.on_call = lambda _: bar.update(job, advance=1, calls=_calls_text(client))
        builder = TaxonomyBuilder(
            task,
            client,
            spec=spec,
            on_level=lambda lv: bar.console.print(
                f"level {lv.level!r}: {lv.nodes} nodes under {lv.parents} parent(s), "
                f"{lv.revisions_kept} revisions kept"
            ),
        )
        try:
            taxonomy, report = await builder.build()
        finally:
            await client.aclose()
            bar.stop()
            _summary(client, f"taxonomy build: {task.name}")
            store.close()
    taxonomy.save(out)
    for lv in report.levels:
        if lv.childless:
            err_console.print(
                f"[yellow]warning:[/] level {lv.level!r}: no valid node set for "
                f"{', '.join(lv.childless[:5])}; those stay leaves (rerun or edit the file)"
            )
        if lv.short:
            err_console.print(
                f"[yellow]warning:[/] level {lv.level!r}: fewer than the minimum nodes under "
                f"{', '.join(lv.short[:5])}"
            )
    console.print(
        f"wrote {out}: {len(taxonomy.leaf_paths())} leaves over levels {' > '.join(taxonomy.levels)}"
    )


@taxonomy_app.command("show")
def taxonomy_show(
    path: Annotated[Path, typer.Argument(help="A taxonomy JSON/YAML file.")],
    examples: Annotated[bool, typer.Option("--examples", help="Show example queries too.")] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", help="Show only the top N levels.")
    ] = None,
) -> None:
    """Print a taxonomy as a tree."""
    from rich.markup import escape
    from rich.tree import Tree

    from trouter.taxonomy import Taxonomy, TaxonomyNode

    taxonomy = Taxonomy.load(path)
    tree = Tree(
        f"[bold]{escape(str(path))}[/]: {len(taxonomy.leaf_paths())} leaves, "
        f"levels {escape(' > '.join(taxonomy.levels))}"
    )

    def add(branch: Tree, node: TaxonomyNode, level: int) -> None:
        label = f"[bold]{escape(node.name)}[/]"
        if node.definition:
            label += f" [dim]- {escape(node.definition)}[/]"
        if examples and node.example:
            label += f'\n[italic cyan]"{escape(node.example)}"[/]'
        child = branch.add(label)
        if depth is None or level + 1 < depth:
            for sub in node.children:
                add(child, sub, level + 1)

    for root in taxonomy.roots:
        add(tree, root, 0)
    console.print(tree)


# ---------------------------------------------------------------------------------- items


@app.command("synthesize")
def synthesize(
    profile: ProfileArg,
    taxonomy: Annotated[Path, typer.Option("--taxonomy", help="The taxonomy to fill.")],
    out: Annotated[
        Path, typer.Option("--out", help="Items file: .jsonl (append-only) or .parquet.")
    ],
    db: DbOpt = None,
    dry_run: DryRunOpt = False,
    check: CheckOpt = False,
    skip_check: SkipCheckOpt = False,
    budget: BudgetOpt = None,
    concurrency: ConcurrencyOpt = None,
    stream: StreamOpt = False,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="Dedup encoder (default: the profile's).")
    ] = None,
) -> None:
    """Write QA items for every leaf of a taxonomy; rerun to resume after a crash or a stop."""
    from trouter.paths import OutputLock
    from trouter.synth.plan import plan_synthesis
    from trouter.taxonomy import Taxonomy

    if out.suffix.lower() not in (".jsonl", ".parquet"):
        raise ConfigError(f"--out {out}: write items to a .jsonl (append-only) or .parquet file")
    task, spec, cap = _load(profile, budget, concurrency)
    tree = Taxonomy.load(taxonomy)
    if dry_run:
        _print_plan(plan_synthesis(task, tree), cap, f"synthesis plan for {task.name}")
        return
    try:
        with OutputLock.beside(out, "trouter synthesize"):
            asyncio.run(
                _synthesize(task, spec, cap, tree, out, db, check, skip_check, stream, encoder)
            )
    except KeyboardInterrupt:
        from trouter.synth.items import ItemsFile
        from trouter.synth.qa import journal_path

        saved = len(ItemsFile(journal_path(out)).read())
        err_console.print(
            f"[yellow]interrupted[/]; {saved} items saved in {journal_path(out)}; rerun the "
            "same command to resume (paid answers are read from the cache)",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None


async def _synthesize(
    task: TaskProfile,
    spec: ModelSpec,
    cap: float | None,
    tree: Taxonomy,
    out: Path,
    db: str | None,
    check: bool,
    skip_check: bool,
    stream: bool,
    encoder: str | None,
) -> None:
    from trouter.llm import LLMClient
    from trouter.synth.qa import Synthesizer

    await _preflight(spec, skip_check, check)
    if check:
        return
    store = open_store(db, out)
    total = len(tree.leaf_paths()) * task.items_per_leaf
    with _progress() as bar:
        job = bar.add_task("items", total=total, calls="")
        client = LLMClient(store, run=task.run_id, budget_usd=cap, stream=stream)
        client.on_call = lambda _: bar.update(job, calls=_calls_text(client))
        synth = Synthesizer(
            task,
            tree,
            client,
            out,
            store=store,
            spec=spec,
            encoder=encoder,
            on_batch=lambda _leaf, n: bar.update(job, advance=n),
        )
        try:
            report = await _run_with_start(synth, bar, job)
        finally:
            await client.aclose()
            bar.stop()
            _summary(client, f"synthesis: {task.name}")
            store.close()
    console.print(
        f"items: {report.items_total} in {out} ({report.items_new} new, {report.items_before} "
        f"from before); rejected: {report.unanswerable} unanswerable, {report.duplicates_leaf} "
        f"near-duplicates in their leaf, {report.duplicates_global} across leaves, "
        f"{report.invalid} invalid"
    )
    if report.short_leaves:
        err_console.print(
            f"[yellow]warning:[/] {len(report.short_leaves)} leaves got fewer than "
            f"{task.items_per_leaf} items (e.g. {report.short_leaves[0]}); rerun with a larger "
            "synthesis.max_batch_factor, or accept them"
        )


async def _run_with_start(synth: Synthesizer, bar: Progress, job: TaskID) -> SynthReport:
    # The items already in the file count towards the bar as soon as they are read.
    task = asyncio.create_task(synth.run())
    while not task.done():
        await asyncio.sleep(0.05)
        if synth.report.items_before and not bar.tasks[job].completed:
            bar.update(job, completed=min(synth.report.items_before, bar.tasks[job].total or 0))
    return task.result()
