"""`Coldstart`: task profile -> taxonomy -> items -> labels -> TRouter -> report -> summary.

    run = Coldstart("examples/support-profile.yaml", ColdstartOptions(out=Path("runs/support")))
    print(run.plan().cost)          # the estimate, no call made
    await run.preflight()           # keys and endpoints of the generator, judge and pool
    summary = await run.run()       # every step, skipping those already complete

One `LLMClient` (run id `coldstart:<profile>`) makes every call, so one budget cap spans every
step and every invocation of the job (money spent by an interrupted invocation counts), and one
response cache in the store lets an interrupted step resume without paying twice. Each step
writes its output atomically (or, for items, as an append-only journal) and is recorded in
`coldstart.json` (see `trouter.coldstart.state`); `force` / `from_step` redo steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from trouter.coldstart.reporter import QuietReporter, Reporter
from trouter.coldstart.results import Summary
from trouter.coldstart.state import (
    STEPS,
    RunPaths,
    RunState,
    check_step,
    digest,
    file_digest,
    lines_digest,
)
from trouter.errors import ConfigError
from trouter.paths import OutputLock
from trouter.pool import ModelSpec, Pool
from trouter.profile import TaskProfile
from trouter.taxonomy import Taxonomy

if TYPE_CHECKING:
    from trouter.coldstart.estimate import RunPlan
    from trouter.llm import Completion, LLMCallError, LLMClient
    from trouter.store import Store
    from trouter.synth.items import SynthItem


@dataclass(frozen=True)
class ColdstartOptions:
    """How to run a cold start (the `trouter coldstart` options)."""

    out: Path
    pool: Path | None = None  # default: the profile's pool
    db: str | None = None  # a SQLAlchemy URL or a SQLite path (default: OUT/trouter.sqlite)
    budget: float | None = None  # default: the profile's budget_usd
    judge: str | None = None  # a model name (pool or profile pool); default: profile, generator
    encoder: str | None = None  # dedup and router encoder; default: the profile's
    seed: int = 0
    holdout: float = 0.25  # of every leaf's items, held out for the report
    max_tokens: int = 1024  # pool answers
    concurrency: int | None = None  # the generator's max_concurrency
    from_step: str | None = None
    force: tuple[str, ...] = ()
    stream: bool = False
    command: str = ""  # recorded in the report


def split_sizes(n: int, holdout: float) -> tuple[int, int, int]:
    """(train, validation, held out) of a leaf of `n` items, rounded as `RoutingDataset.split`
    rounds them for the router step's fractions."""
    from trouter.coldstart.steps import VAL_FRACTION
    from trouter.data.dataset import split_sizes as dataset_split_sizes

    return dataset_split_sizes(n, (1.0 - holdout - VAL_FRACTION, VAL_FRACTION, holdout))


def _check_leaf_size(items_per_leaf: int, holdout: float) -> None:
    """Refuse, before any spending, a job whose leaves are too small to train on some of each
    leaf and hold some out for the report (the router step would fail after every label)."""
    train, _, test = split_sizes(items_per_leaf, holdout)
    if train and test:
        return
    need = next(n for n in range(1, 1000) if all(split_sizes(n, holdout)[i] for i in (0, 2)))
    raise ConfigError(
        f"items_per_leaf {items_per_leaf} is too few to train on part of each leaf and hold "
        f"{holdout:.0%} of it out for the report; set items_per_leaf to at least {need} in the "
        "profile"
    )


def store_url(db: str | None, out: Path) -> str:
    from trouter.store import url_for

    return url_for(out / "trouter.sqlite" if db is None else db)


class Coldstart:
    """One cold-start job (see the module docstring). Construction reads and checks every input
    (profile, pool, judge, options) and calls nothing."""

    def __init__(
        self,
        profile_path: str | Path,
        options: ColdstartOptions,
        reporter: Reporter | None = None,
    ) -> None:
        from trouter.llm.usage import check_budget

        self.options = options
        self.reporter: Reporter = reporter or QuietReporter()
        check_budget(options.budget)  # a bad option first, like every command
        self.profile = TaskProfile.load(profile_path)
        spec = self.profile.generator_spec()
        if options.concurrency is not None:
            if options.concurrency < 1:
                raise ConfigError("--concurrency must be at least 1")
            spec = spec.model_copy(update={"max_concurrency": options.concurrency})
        self.generator = spec
        pool_path = options.pool or self.profile.pool_path
        if pool_path is None:
            raise ConfigError(
                f"profile {self.profile.name!r} names no pool; pass --pool POOL.yaml "
                "(the models to route between)"
            )
        self.pool = Pool.load(pool_path)
        self.judge = self._resolve_judge()
        self.cap = check_budget(
            options.budget if options.budget is not None else self.profile.budget_usd
        )
        if not 0.0 < options.holdout <= 0.5:
            raise ConfigError(f"--holdout must be in (0, 0.5], got {options.holdout}")
        if options.max_tokens < 1:
            raise ConfigError("--max-tokens must be at least 1")
        _check_leaf_size(self.profile.items_per_leaf, options.holdout)
        self.encoder = options.encoder or self.profile.synthesis.encoder
        from trouter.encode import load_encoder

        load_encoder(self.encoder)  # a bad spec is a one-line error now, not after paid steps
        self.forced = {check_step(s, "--force") for s in options.force}
        if options.from_step is not None:
            start = STEPS.index(check_step(options.from_step, "--from-step"))
            self.forced |= set(STEPS[start:])
        self.run_id = f"coldstart:{self.profile.name}"
        self.paths = RunPaths(Path(options.out))
        self.state = RunState(self.paths, self.profile.name)
        self.url = store_url(options.db, self.paths.out)
        self.current: str | None = None  # the step running now (for "what is saved" messages)
        self._redone: set[str] = set()
        self._store: Store | None = None
        self._reader: Store | None = None  # the store opened to read, before any write
        self._client: LLMClient | None = None

    def _resolve_judge(self) -> ModelSpec | None:
        name = self.options.judge
        if name is not None:
            for pool in (self.pool, self.profile.load_pool()):
                if pool is not None and name in pool:
                    return pool[name]
            raise ConfigError(
                f"--judge {name!r} is not a model of the pool; the pool has: "
                f"{', '.join(self.pool.names)}"
            )
        judge = self.profile.judge_spec(self.pool)
        if judge is None and "free_text" in self.profile.synthesis.answer_formats:
            return self.generator  # free-text answers need a grader; the generator is one
        return judge

    # ------------------------------------------------------------------ step status
    def fingerprint(self, step: str) -> str:
        """A hash of everything the step reads; a changed fingerprint means the step is redone."""
        p, gen = self.profile, {"model": self.generator.model, "url": self.generator.base_url}
        if step == "taxonomy":
            keys = {"description", "audience", "languages", "levels", "taxonomy"}
            return digest({"profile": p.model_dump(mode="json", include=keys), "generator": gen})
        if step == "items":
            keys = {"description", "audience", "languages", "items_per_leaf", "synthesis"}
            return digest(
                {
                    "taxonomy": self._taxonomy_digest(),
                    "profile": p.model_dump(mode="json", include=keys),
                    "generator": gen,
                    "encoder": self.encoder,
                }
            )
        if step == "labels":
            pool = [(m.name, m.model, m.base_url, m.input_price, m.output_price) for m in self.pool]
            judge = None if self.judge is None else (self.judge.model, self.judge.base_url)
            return digest(
                {
                    "items": lines_digest(self.paths.items),
                    "pool": pool,
                    "judge": judge,
                    "max_tokens": self.options.max_tokens,
                }
            )
        if step == "router":
            return digest(
                {
                    "dataset": file_digest(self.paths.dataset),
                    "taxonomy": self._taxonomy_digest(),
                    "encoder": self.encoder,
                    "seed": self.options.seed,
                    "holdout": self.options.holdout,
                }
            )
        if step == "report":
            r = self.paths.router
            return digest(
                {
                    "router": file_digest(r / "config.json", r / "weights.safetensors"),
                    "split": file_digest(self.paths.split),
                    "dataset": file_digest(self.paths.dataset),
                }
            )
        return ""  # summary: rewritten every time

    def _taxonomy_digest(self) -> str:
        if not self.paths.taxonomy.is_file():
            return ""
        return digest(Taxonomy.load(self.paths.taxonomy).to_dict())

    def status(self, step: str, upstream_pending: bool = False) -> tuple[str, str]:
        """("done" | "to do" | "resume", why) for one step, given whether a step above runs."""
        if step == "summary":
            return "to do", "rewritten on every run"
        if step in self.forced and step not in self._redone:
            return "to do", "forced"
        if upstream_pending:
            return "to do", "after the steps above"
        fingerprint = self.fingerprint(step)
        if self.state.is_done(step, fingerprint):
            return "done", "output complete"
        record = self.state.record(step)
        changed = record is not None and record.fingerprint != fingerprint
        partial = (step == "items" and self.paths.items.is_file()) or (
            step == "labels" and self._stored_observations() > 0
        )
        reason = "inputs changed" if changed else "interrupted before" if partial else "new"
        return ("resume" if partial else "to do"), reason

    def statuses(self) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        pending = False
        for step in STEPS:
            status, reason = self.status(step, pending)
            pending = pending or (status != "done" and step != "summary")
            out.append((step, status, reason))
        return out

    # ------------------------------------------------------------------ store
    def _store_exists(self) -> bool:
        from trouter.store import sqlite_file

        path = sqlite_file(self.url)  # None: another database, held by its server
        return path is None or path.is_file()

    def store(self) -> Store:
        """The job's store (opened, and created, on first use)."""
        from trouter.store import Store

        if self._store is None:
            self._store = Store(self.url)
        return self._store

    def existing_store(self) -> Store | None:
        """The job's store to read, when there is one already; None (and no store made)
        otherwise. Until the job writes, it is opened to read: a plan (`--dry-run`) writes
        nothing, and upgrades no store an older trouter wrote."""
        if self._store is not None:
            return self._store
        if self._reader is None and self._store_exists():
            from trouter.store import Store

            self._reader = Store(self.url, must_exist=True)
        return self._reader

    def _stored_observations(self) -> int:
        if (store := self.existing_store()) is None:
            return 0
        from trouter.label.observations import load_observations

        return len(load_observations(store, self.run_id))

    def spent_before(self) -> float:
        """Dollars this job already spent (every earlier invocation)."""
        if (store := self.existing_store()) is None:
            return 0.0
        from trouter.llm.cache import CallLog

        return CallLog(store, self.run_id).spent()

    def close(self) -> None:
        for store in (self._store, self._reader):
            if store is not None:
                store.close()
        self._store = self._reader = None

    # ------------------------------------------------------------------ before any call
    def plan(self) -> RunPlan:
        """Every step's status and cost estimate; calls nothing and writes nothing
        (`trouter.coldstart.estimate.plan_job`)."""
        from trouter.coldstart.estimate import plan_job

        return plan_job(self)

    def read_items(self) -> list[SynthItem]:
        """The items written so far (as written: an id written twice is read twice)."""
        from trouter.synth.items import ItemsFile

        return ItemsFile(self.paths.items).read()

    def needed_models(self) -> list[ModelSpec]:
        """The models the steps still to do will call."""
        pending = {step for step, status, _ in self.statuses() if status != "done"}
        specs: list[ModelSpec] = []
        if pending & {"taxonomy", "items"}:
            specs.append(self.generator)
        if "labels" in pending:
            specs.extend(self.pool)
            if self.judge is not None:
                specs.append(self.judge)
        return specs

    async def preflight(self) -> None:
        """Check the keys and endpoints of every model still needed; one error names them all."""
        from trouter.llm import preflight, raise_for_problems

        problems = await preflight(self.needed_models())
        for p in problems:
            if not p.fatal:
                self.reporter.message(p.message, warning=True)
        try:
            raise_for_problems(problems)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc} (to run from cached answers only, pass --skip-check)"
            ) from None

    # ------------------------------------------------------------------ the run
    async def run(self) -> Summary:
        """Run every step that is not complete; returns the summary (also in summary.json).
        Raises `ConfigError` when another run holds the directory."""
        self.paths.out.mkdir(parents=True, exist_ok=True)
        with OutputLock(
            self.paths.lock, self.paths.out, "trouter coldstart"
        ):  # two runs in one directory would pay twice and clash
            return await self._run_locked()

    async def _run_locked(self) -> Summary:
        from trouter.coldstart import step_lines
        from trouter.coldstart.steps import Steps
        from trouter.llm import LLMClient

        # Another run may have finished steps since this one planned: read its records.
        self.state = RunState(self.paths, self.profile.name)
        client = LLMClient(
            self.store(), run=self.run_id, budget_usd=self.cap, stream=self.options.stream
        )
        self._client = client
        steps = Steps(self, client)
        ran: dict[str, str] = {}
        try:
            pending = False
            for number, step in enumerate(STEPS, start=1):
                status, reason = self.status(step, pending)
                if status == "done":
                    self.reporter.step(step, number, len(STEPS), True, reason)
                    ran[step] = "skipped"
                    continue
                pending = pending or step != "summary"
                self.current = step
                self.reporter.step(step, number, len(STEPS), False, reason)
                fingerprint = self.fingerprint(step)
                forced = step in self.forced and step not in self._redone
                self._redone.add(step)
                result: BaseModel = await steps.run(step, forced, ran)
                self.state.mark(step, fingerprint, result)
                ran.setdefault(step, "ran")
                self.reporter.done(step, step_lines.lines(step, result))
            self.current = None
        finally:
            client.on_call = None
            await client.aclose()
        record = self.state.record("summary")
        assert record is not None
        return Summary.model_validate(record.result)

    def on_call(self, _: Completion | LLMCallError) -> None:
        """Keeps the progress note (calls, cache hits, $) current."""
        if self._client is not None:
            u = self._client.usage
            self.reporter.progress(
                note=f"{u.calls} calls, {u.cache_hits} cached, {u.failures} failed, "
                f"${u.cost_usd:.4f}"
            )

    # ------------------------------------------------------------------ after a stop
    def saved(self) -> list[str]:
        """What is on disk after a stop (budget, Ctrl-C, error), one line per thing."""
        lines = []
        for step in STEPS[:-1]:
            record = self.state.record(step)
            if record is not None and all(p.exists() for p in self.paths.outputs(step)):
                outputs = ", ".join(p.name for p in self.paths.outputs(step))
                lines.append(f"{step}: done ({outputs})")
        if self.current == "items" and self.paths.items.is_file():
            lines.append(f"items: {len(self.read_items())} written so far in {self.paths.items}")
        if self.current == "labels":
            lines.append(f"labels: {self._stored_observations()} observations stored in the store")
        lines.append(f"every answer paid for is cached in {self.url}")
        return lines
