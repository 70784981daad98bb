"""The six cold-start steps, each a thin use of the library piece that owns the work:
`TaxonomyBuilder`, `Synthesizer`, `label_items`, `TRouter`, the evaluation, the call log."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import delete

from trouter.coldstart.results import (
    ItemsResult,
    LabelsResult,
    ReportResult,
    RouterResult,
    Summary,
    TaxonomyResult,
)
from trouter.coldstart.stray import set_aside_stray
from trouter.errors import DataError
from trouter.paths import atomic_write_text
from trouter.taxonomy import Taxonomy

if TYPE_CHECKING:
    from trouter.coldstart.pipeline import Coldstart
    from trouter.llm import Completion, LLMCallError, LLMClient
    from trouter.synth.items import SynthItem

VAL_FRACTION = 0.1  # of every leaf, for TRouter's early stopping


class Steps:
    """Runs one step at a time for a `Coldstart` with its one `LLMClient`."""

    def __init__(self, job: Coldstart, client: LLMClient) -> None:
        self.job = job
        self.client = client
        self.paths = job.paths
        self.report = job.reporter

    async def run(self, step: str, forced: bool, ran: dict[str, str]) -> BaseModel:
        self.client.on_call = self.job.on_call
        if step == "taxonomy":
            return await self.taxonomy(forced)
        if step == "items":
            return await self.items(forced)
        if step == "labels":
            return await self.labels(forced)
        if step == "router":
            return self.router()
        if step == "report":
            return self.evaluate()
        ran["summary"] = "ran"
        return self.summary(ran)

    # ------------------------------------------------------------------ 1. taxonomy
    async def taxonomy(self, forced: bool) -> TaxonomyResult:
        from trouter.synth.builder import TaxonomyBuilder
        from trouter.synth.plan import plan_taxonomy

        job = self.job
        if self.paths.taxonomy.is_file():  # about to be replaced: keep the old one (hand edits)
            shutil.copyfile(self.paths.taxonomy, self.paths.out / "taxonomy.previous.yaml")
        self.report.progress(total=plan_taxonomy(job.profile).calls, completed=0)

        def on_call(done: Completion | LLMCallError) -> None:
            self.report.progress(advance=1)
            job.on_call(done)

        self.client.on_call = on_call

        def level_done(level: object) -> None:
            lv = level  # a LevelReport
            self.report.message(
                f"level {getattr(lv, 'level', '')!r}: {getattr(lv, 'nodes', 0)} nodes under "
                f"{getattr(lv, 'parents', 0)} parent(s)"
            )

        builder = TaxonomyBuilder(job.profile, self.client, spec=job.generator, on_level=level_done)
        taxonomy, report = await builder.build()
        taxonomy.save(self.paths.taxonomy)
        return TaxonomyResult(
            leaves=len(taxonomy.leaf_paths()),
            levels=list(taxonomy.levels),
            structured_failures=report.structured_failures,
            childless=[p for lv in report.levels for p in lv.childless],
            short=[p for lv in report.levels for p in lv.short],
        )

    # ------------------------------------------------------------------ 2. items
    async def items(self, forced: bool) -> ItemsResult:
        from trouter.synth.items import ItemsFile
        from trouter.synth.qa import Synthesizer

        job = self.job
        taxonomy = Taxonomy.load(self.paths.taxonomy)
        leaves = taxonomy.leaf_paths()
        if forced and self.paths.items.is_file():
            os.replace(self.paths.items, self.paths.out / "items.previous.jsonl")
        stray = set_aside_stray(self.paths, job.profile, set(leaves), self.report)
        need = job.profile.items_per_leaf
        have = Counter(it.path for it in ItemsFile(self.paths.items).read())
        self.report.progress(
            total=len(leaves) * need, completed=sum(min(n, need) for n in have.values())
        )
        synth = Synthesizer(
            job.profile,
            taxonomy,
            self.client,
            self.paths.items,
            store=job.store(),
            spec=job.generator,
            encoder=job.encoder,
            on_batch=lambda _leaf, n: self.report.progress(advance=n),
        )
        report = await synth.run()
        per_leaf = Counter(it.path for it in ItemsFile(self.paths.items).read())
        if not per_leaf:  # nothing to label: say why now, not "items file not found" later
            why = (
                f"no valid reply to {report.structured_failures} request(s); the last error: "
                f"{report.last_error}"
                if report.structured_failures
                else f"{report.invalid} invalid, {report.unanswerable} unanswerable items"
            )
            raise DataError(
                f"the generator {job.generator.name!r} gave no usable items ({why}); check "
                "the generator (model, endpoint), then rerun (invalid replies are not cached: "
                "a rerun asks again)"
            )
        return ItemsResult(
            total=sum(per_leaf.values()),
            per_leaf={leaf: per_leaf.get(leaf, 0) for leaf in leaves},
            wanted_per_leaf=need,
            short_leaves=sorted(leaf for leaf in leaves if per_leaf.get(leaf, 0) < need),
            dropped={
                "unanswerable": report.unanswerable,
                "near-duplicates": report.duplicates_leaf + report.duplicates_global,
                "invalid": report.invalid,
            },
            structured_failures=report.structured_failures,
            stray=stray,
        )

    # ------------------------------------------------------------------ 3. labels
    async def labels(self, forced: bool) -> LabelsResult:
        from trouter.label.observations import (
            adopt_judge,
            load_observations,
            to_dataset,
            write_jsonl,
        )
        from trouter.label.runner import LabelOptions, check_scorable, label_items
        from trouter.label.scorers import Code, Judge
        from trouter.synth.items import read_items

        job = self.job
        unique = {it.id: it for it in read_items(self.paths.items)}  # an id written twice: once
        items: list[SynthItem] = sorted(unique.values(), key=lambda it: (it.path, it.id))
        if not items:
            raise DataError(f"{self.paths.items} holds no items to label; rerun with --force items")
        judge = Judge(self.client, job.judge) if job.judge is not None else None
        check_scorable(items, judge)
        judge_id = judge.id if judge is not None else ""
        if forced:  # regrade every answer (answers already paid for come from the cache)
            self._remove_observations()
        elif (record := job.state.record("labels")) is not None:
            # A job labelled before the store recorded its judge: the state knows which.
            before = LabelsResult.model_validate(record.result)
            if before.judge_id:
                adopt_judge(job.store(), job.run_id, before.judge_id, before.judge or "")
        # label_items regrades the answers another judge graded (as `trouter label` does).
        summary = await label_items(
            items,
            job.pool,
            self.client,
            store=job.store(),
            run=job.run_id,
            judge=judge,
            code=Code(),
            options=LabelOptions(max_tokens=job.options.max_tokens),
            on_observation=lambda _: self.report.progress(advance=1),
            on_start=lambda n: self.report.progress(total=n, completed=0),
        )
        if (change := summary.judge_change()) is not None:
            self.report.message(change)
        warnings = summary.shaky(
            "rerun with --force labels to retry them (paid answers are cached)"
        )
        for line in warnings:
            self.report.message(line, warning=True)
        observations = load_observations(job.store(), job.run_id)
        dataset = to_dataset(observations, items, job.pool, name=f"coldstart:{job.profile.name}")
        dataset.save(self.paths.dataset)
        write_jsonl(observations, items, job.pool, self.paths.observations)
        return LabelsResult(
            items=len(items),
            observations=summary.observations,
            reused=summary.reused,
            observed=summary.observed,
            cache_hits=summary.cache_hits,
            call_failures=dict(summary.call_failures),
            score_failures=dict(summary.score_failures),
            mean_score=summary.mean_score,
            cost_usd=summary.cost_usd,
            judge=job.judge.name if job.judge is not None else None,
            judge_id=judge_id,
            judge_calls=summary.judge_calls,
            changed=summary.changed,
            regraded=summary.regraded,
            warnings=warnings,
        )

    # ------------------------------------------------------------------ 4. router
    def router(self) -> RouterResult:
        from trouter.data.dataset import RoutingDataset
        from trouter.routers.trouter import TRouter

        job, opts = self.job, self.job.options
        dataset = RoutingDataset.load(self.paths.dataset)
        parts = dataset.split(
            seed=opts.seed,
            fractions=(1.0 - opts.holdout - VAL_FRACTION, VAL_FRACTION, opts.holdout),
        )
        if parts.test.n_queries == 0 or parts.train.n_queries == 0:
            raise DataError(
                f"{dataset.n_queries} labelled items are too few to hold {opts.holdout:.0%} of each "
                "leaf out for the report; raise items_per_leaf in the profile or --holdout"
            )
        self.report.progress(total=None, note=f"fitting on {parts.train.n_queries} queries")
        # A synthetic item's leaf is known exactly (it was written for that leaf), and sibling
        # leaves here are often difficulty levels where the pool models differ most: a prior
        # smoothed across siblings would blend the hard leaf's failures into the medium leaf's
        # predictions. So the prior is the paper's one-hot one.
        router = TRouter(
            taxonomy=Taxonomy.load(self.paths.taxonomy),
            encoder=job.encoder,
            seed=opts.seed,
            prior_smoothing=0.0,
        )
        start = time.perf_counter()
        router.fit(parts.train, val=parts.val if parts.val.n_queries else None)
        seconds = round(time.perf_counter() - start, 3)
        for stale in self.paths.out.glob(".router.*"):  # left by a run killed mid-swap
            shutil.rmtree(stale, ignore_errors=True)
        build = self.paths.out / f".router.{os.getpid()}.tmp"
        router.save(build)
        self._write_split(
            build,
            {
                "train": parts.train.query_ids,
                "val": parts.val.query_ids,
                "test": parts.test.query_ids,
            },
        )
        self._replace_router(build)
        epochs = router.training_.get("epochs")
        return RouterResult(
            directory=str(self.paths.router),
            router=router.name,
            encoder=router.encoder_.spec,
            n_train=parts.train.n_queries,
            n_val=parts.val.n_queries,
            n_test=parts.test.n_queries,
            holdout=opts.holdout,
            seed=opts.seed,
            epochs=int(epochs) if epochs is not None else None,
            fit_seconds=seconds,
        )

    # ------------------------------------------------------------------ 5. report
    def evaluate(self) -> ReportResult:
        from trouter.coldstart.report import write_report
        from trouter.data.dataset import RoutingDataset
        from trouter.routers.registry import load_router

        job = self.job
        for stale in self.paths.out.glob(".report-*"):  # left by a run killed mid-plot
            shutil.rmtree(stale, ignore_errors=True)
        router = load_router(self.paths.router, expect_models=job.pool.names)
        dataset = RoutingDataset.load(self.paths.dataset)
        split = self._read_split()
        name = dataset.name
        val = dataset.subset(split["val"], f"{name}:val") if split["val"] else None
        self.report.progress(
            total=None, note=f"evaluating on {len(split['test'])} held-out queries"
        )
        return write_report(
            router,
            dataset.subset(split["train"], f"{name}:train"),
            val,
            dataset.subset(split["test"], f"{name}:held-out"),
            self.paths,
            encoder=(router.encoder_.spec, router.encoder_.id),
            seed=job.options.seed,
            command=job.options.command,
        )

    # ------------------------------------------------------------------ 6. summary
    def summary(self, ran: dict[str, str]) -> Summary:
        from trouter.coldstart.summary import calls_per_model

        job, state = self.job, self.job.state

        def result(step: str) -> dict[str, object]:
            record = state.record(step)
            if record is None:
                raise DataError(f"step {step!r} has no result; rerun with --from-step {step}")
            return record.result

        u = self.client.usage
        if self.client.log is not None:
            self.client.log.flush()  # this run's cache-hit rows, so the totals count them
        calls = calls_per_model(job.store(), job.run_id, u)
        summary = Summary(
            profile=job.profile.name,
            out=str(self.paths.out),
            store=job.url,
            router_dir=str(self.paths.router),
            budget_usd=job.cap,
            spent_total_usd=job.spent_before(),
            spent_now_usd=u.cost_usd,
            saved_now_usd=u.saved_usd,
            cache_hits_now=u.cache_hits,
            cache_hits_total=sum(m.cached_calls for m in calls),
            steps=dict(ran),
            taxonomy=TaxonomyResult.model_validate(result("taxonomy")),
            items=ItemsResult.model_validate(result("items")),
            labels=LabelsResult.model_validate(result("labels")),
            router=RouterResult.model_validate(result("router")),
            report=ReportResult.model_validate(result("report")),
            calls=calls,
            structured_failures_now=u.structured_failures,
        )
        atomic_write_text(self.paths.summary, summary.model_dump_json(indent=2) + "\n")
        return summary

    # ------------------------------------------------------------------ helpers
    def _remove_observations(self) -> None:
        from trouter.store import LabelObservation

        with self.job.store().engine.begin() as conn:
            conn.execute(delete(LabelObservation).where(LabelObservation.run == self.job.run_id))

    def _replace_router(self, build: Path) -> None:
        """Swap a finished router directory in place of the old one."""
        target = self.paths.router
        old = target.with_name(f".router.old.{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(build, target)
        shutil.rmtree(old, ignore_errors=True)

    def _write_split(self, directory: Path, split: dict[str, list[str]]) -> None:
        opts = self.job.options
        payload = {"seed": opts.seed, "holdout": opts.holdout, **split}
        atomic_write_text(directory / self.paths.split.name, json.dumps(payload) + "\n")

    def _read_split(self) -> dict[str, list[str]]:
        if not self.paths.split.is_file():
            raise DataError(f"{self.paths.split} is missing; rerun with --force router")
        data: dict[str, list[str]] = json.loads(self.paths.split.read_text(encoding="utf-8"))
        return data
