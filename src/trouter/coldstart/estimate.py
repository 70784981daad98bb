"""The cost estimate of a cold start, for every step still to do, before any call is made:
`plan_job` (what `Coldstart.plan` and `trouter coldstart --dry-run` show) from each step's status
and estimate.

Taxonomy and synthesis reuse the synthesis planners (`trouter.synth.plan`); before the taxonomy
exists, synthesis is planned on a stand-in tree of the profile's typical shape (the mean of
min_nodes and max_nodes children per parent) and, for the upper bound, of its largest shape.
Labelling is estimated per pool model from the items (or, before they exist, from their expected
number) by `trouter.label.estimate.price`, the pricing `trouter label --dry-run` uses: as the
run itself, observations it keeps are not counted, an answer or a verdict the LLM cache holds
costs nothing (and a cached answer gives the judge's prompt exactly), a request made twice is
paid once; free-text answers add one judge call each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trouter.coldstart.state import STEPS
from trouter.label.estimate import price
from trouter.label.runner import LabelOptions
from trouter.pool import ModelSpec, Pool
from trouter.profile import TaskProfile
from trouter.synth.items import SynthItem
from trouter.synth.plan import Plan, plan_synthesis, plan_taxonomy
from trouter.taxonomy import Taxonomy, TaxonomyNode

if TYPE_CHECKING:
    from trouter.coldstart.pipeline import Coldstart
    from trouter.store import Store

TYPICAL_QUERY_CHARS = 400  # a synthetic query before it exists


@dataclass(frozen=True)
class StepEstimate:
    """One step: whether it runs, its LLM calls and $ (typical and at most), the models used."""

    step: str
    status: str  # "done" (skipped), "to do", "resume"
    calls: int = 0
    calls_max: int = 0
    cost: float = 0.0
    cost_max: float = 0.0
    models: tuple[str, ...] = ()
    note: str = ""


@dataclass
class RunPlan:
    """Every step's estimate, and the job's budget position."""

    steps: list[StepEstimate]
    budget_usd: float | None
    spent_before_usd: float
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return sum(s.cost for s in self.steps)

    @property
    def cost_max(self) -> float:
        return sum(s.cost_max for s in self.steps)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    def pending(self) -> list[str]:
        return [s.step for s in self.steps if s.status != "done"]


def shaped_taxonomy(profile: TaskProfile, largest: bool = False) -> Taxonomy:
    """A stand-in taxonomy with the profile's typical (or largest) number of nodes per level."""

    def children(depth: int) -> list[TaxonomyNode]:
        if depth == len(profile.levels):
            return []
        level = profile.levels[depth]
        if level.nodes is not None:
            count = len(level.nodes)
        elif largest:
            count = level.max_nodes
        else:
            count = max(1, round((level.min_nodes + level.max_nodes) / 2))
        return [
            TaxonomyNode(name=f"{level.name} {i + 1}", children=children(depth + 1))
            for i in range(count)
        ]

    return Taxonomy(levels=profile.level_names, roots=children(0))


def _with_model(plan: Plan, spec: ModelSpec) -> Plan:
    plan.model = spec  # the planners read the profile's generator; a --concurrency copy is equal
    return plan


def taxonomy_estimate(profile: TaskProfile, spec: ModelSpec, status: str) -> StepEstimate:
    plan = _with_model(plan_taxonomy(profile), spec)
    return StepEstimate(
        "taxonomy",
        status,
        plan.calls,
        plan.calls_max,
        plan.cost,
        plan.cost_max,
        (spec.name,),
        f"{len(profile.levels)} levels",
    )


def items_estimate(
    profile: TaskProfile,
    spec: ModelSpec,
    status: str,
    taxonomy: Taxonomy | None,
    have: int = 0,
) -> StepEstimate:
    """Synthesis calls; `have` items already written count against the typical figure."""
    if taxonomy is not None:
        typical = _with_model(plan_synthesis(profile, taxonomy), spec)
        largest = typical
        leaves = len(taxonomy.leaf_paths())
        note = f"{leaves} leaves x {profile.items_per_leaf} items"
    else:
        typical = _with_model(plan_synthesis(profile, shaped_taxonomy(profile)), spec)
        largest = _with_model(plan_synthesis(profile, shaped_taxonomy(profile, True)), spec)
        leaves = len(shaped_taxonomy(profile).leaf_paths())
        note = f"about {leaves} leaves x {profile.items_per_leaf} items (taxonomy not built yet)"
    wanted = max(1, leaves * profile.items_per_leaf)
    left = max(0.0, 1.0 - have / wanted)
    if have:
        note += f"; {have} written already"
    return StepEstimate(
        "items",
        status,
        round(typical.calls * left),
        largest.calls_max,
        typical.cost * left,
        largest.cost_max,
        (spec.name,),
        note,
    )


def _judge_share(profile: TaskProfile) -> float:
    formats = profile.synthesis.answer_formats
    return 1.0 / len(formats) if "free_text" in formats else 0.0


def labels_estimate(
    profile: TaskProfile,
    pool: Pool,
    judge: ModelSpec | None,
    options: LabelOptions,
    status: str,
    items: Sequence[SynthItem] | None,
    expected_items: int,
    done: set[tuple[str, str]] | frozenset[tuple[str, str]] = frozenset(),
    cache: Store | None = None,
) -> StepEstimate:
    """Pool answers (and judge grades) for the items, skipping the `done` observations (those
    the run keeps); with `cache` (the job's store), what it holds is priced at nothing. The
    pricing is `trouter.label.estimate.price`, the one `trouter label --dry-run` uses."""
    if items is None:
        free = round(expected_items * _judge_share(profile))
        judged, plain = (
            SynthItem(
                query="x" * TYPICAL_QUERY_CHARS,
                reference="x",
                answer_format=answer_format,
                path="leaf",
                generator="estimate",
                prompt_version="estimate",
            )
            for answer_format in ("free_text", "exact")
        )
        todo = {
            spec.name: [judged if i < free else plain for i in range(expected_items)]
            for spec in pool
        }
        cost = price(todo, pool, judge, options, cache, stand_ins=True)
    else:
        todo = {s.name: [it for it in items if (it.id, s.name) not in done] for s in pool}
        cost = price(todo, pool, judge, options, cache)
    n = len(items) if items is not None else expected_items
    note = f"{n} items x {len(pool)} models"
    if done:
        note += f"; {len(done)} observations stored already"
    if cost.from_cache:
        note += f"; {cost.from_cache} answers and verdicts from the cache ($0)"
    if cost.judge.calls:
        note += f"; ~{cost.judge.calls} judge calls"
    models = (*pool.names, *([judge.name] if judge is not None and cost.judge.calls else []))
    return StepEstimate(
        "labels",
        status,
        cost.calls,
        cost.calls,
        cost.cost,
        cost.cost_max,
        tuple(dict.fromkeys(models)),
        note,
    )


def plan_job(job: Coldstart) -> RunPlan:
    """Every step's status and cost estimate of `job` (`Coldstart.plan`); calls nothing and
    writes nothing."""
    plan = RunPlan([], job.cap, job.spent_before())
    statuses = {step: (status, reason) for step, status, reason in job.statuses()}
    tax_done = statuses["taxonomy"][0] == "done"
    items_done = statuses["items"][0] == "done"
    taxonomy = Taxonomy.load(job.paths.taxonomy) if tax_done else None
    for step in STEPS:
        status, reason = statuses[step]
        if status == "done":
            plan.steps.append(StepEstimate(step, status, note=reason))
        elif step == "taxonomy":
            plan.steps.append(taxonomy_estimate(job.profile, job.generator, status))
        elif step == "items":
            have = len(job.read_items()) if taxonomy is not None else 0
            plan.steps.append(items_estimate(job.profile, job.generator, status, taxonomy, have))
        elif step == "labels":
            items = job.read_items() if items_done else None
            leaves = len((taxonomy or shaped_taxonomy(job.profile)).leaf_paths())
            done: set[tuple[str, str]] = set()
            options = LabelOptions(max_tokens=job.options.max_tokens)
            if items is not None and statuses["labels"][1] != "forced":
                done = _kept_observations(job, items, options)
            plan.steps.append(
                labels_estimate(
                    job.profile,
                    job.pool,
                    job.judge,
                    options,
                    status,
                    items,
                    leaves * job.profile.items_per_leaf,
                    done,
                    job.existing_store(),
                )
            )
        else:
            plan.steps.append(StepEstimate(step, status, note="no LLM calls"))
    return plan


def _kept_observations(
    job: Coldstart, items: list[SynthItem], options: LabelOptions
) -> set[tuple[str, str]]:
    """The (item, model) answers the labels step would keep, decided as `label_items`
    decides (`trouter.label.estimate.plan_run`, as `trouter label --dry-run`): stored, not
    marked to retry, asked with the request this run would send, and, when the judge
    changed, not an answer to a judged item (whose verdict the new judge gives again)."""
    if (store := job.existing_store()) is None:
        return set()
    from trouter.label.estimate import plan_run

    before = None  # a job labelled before the store recorded judges: as Steps.labels adopts
    if (record := job.state.record("labels")) is not None:
        before = str(record.result.get("judge_id") or "") or None
    unique = list({it.id: it for it in items}.values())
    planned = plan_run(unique, job.pool, job.judge, options, store, job.run_id, judge_before=before)
    asked = {(it.id, model) for model, queue in planned.todo.items() for it in queue}
    return {(it.id, spec.name) for it in unique for spec in job.pool} - asked
