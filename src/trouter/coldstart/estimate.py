"""The cost estimate of a cold start, for every step still to do, before any call is made.

Taxonomy and synthesis reuse the synthesis planners (`trouter.synth.plan`); before the taxonomy
exists, synthesis is planned on a stand-in tree of the profile's typical shape (the mean of
min_nodes and max_nodes children per parent) and, for the upper bound, of its largest shape.
Labelling is estimated per pool model from the items (or, before they exist, from their expected
number): prompt tokens from the text, output tokens `TYPICAL_ANSWER_TOKENS` typically and
`max_tokens` at most; free-text answers add one judge call each. As the run itself: observations
it keeps are not counted; an answer or a verdict the LLM cache holds costs nothing (and a cached
answer gives the judge's prompt exactly); a request made twice is paid once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trouter.label.runner import LabelOptions, messages_for, reference_of, request_key_of
from trouter.label.scorers import canonical_format
from trouter.llm import LLMClient
from trouter.pool import ModelSpec, Pool
from trouter.profile import TaskProfile
from trouter.synth.items import SynthItem
from trouter.synth.plan import Plan, plan_synthesis, plan_taxonomy
from trouter.taxonomy import Taxonomy, TaxonomyNode

if TYPE_CHECKING:
    from trouter.store import Store

TYPICAL_ANSWER_TOKENS = 300
TYPICAL_JUDGE_TOKENS = 80
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

    @property
    def remaining_usd(self) -> float | None:
        if self.budget_usd is None:
            return None
        return max(0.0, self.budget_usd - self.spent_before_usd)

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
    the run keeps); with `cache` (the job's store), what it holds is priced at nothing."""
    from trouter.label.scorers import Judge

    sizer = LLMClient(None)  # only its cost estimator: no store, no connection
    if items is None:
        stand_in = SynthItem(
            query="x" * TYPICAL_QUERY_CHARS,
            reference="x",
            answer_format="exact",
            path="leaf",
            generator="estimate",
            prompt_version="estimate",
        )
        todo = {spec.name: [stand_in] * expected_items for spec in pool}
        free = round(expected_items * _judge_share(profile))
        judged = {spec.name: [i < free for i in range(expected_items)] for spec in pool}
        keys = {spec.name: [""] * expected_items for spec in pool}  # no request known yet
    else:
        todo = {spec.name: [it for it in items if (it.id, spec.name) not in done] for spec in pool}
        judged = {m: [_is_judged(it) for it in its] for m, its in todo.items()}
        keys = {s.name: [request_key_of(s, it, options) for it in todo[s.name]] for s in pool}
    grader = Judge(sizer, judge) if judge is not None else None
    stand_in_answer = "x" * (TYPICAL_ANSWER_TOKENS * 4)
    answers = _cached_texts(cache, (k for ks in keys.values() for k in ks))
    seen: set[str] = set()  # a request made twice is paid once (shared in flight, or cached)
    calls = judge_calls = from_cache = 0
    cost = cost_max = 0.0
    grades: list[tuple[str, list[dict[str, Any]]]] = []  # (key, messages) of the judge calls
    for spec in pool:
        for item, needs_judge, key in zip(
            todo[spec.name], judged[spec.name], keys[spec.name], strict=True
        ):
            if key and key in seen:
                from_cache += 1
                continue
            seen.add(key)
            answer = answers.get(key)
            if answer is None:
                body = {"messages": messages_for(item, options)}
                typical = min(options.max_tokens, TYPICAL_ANSWER_TOKENS)
                cost += sizer.estimate_cost(spec, {**body, "max_tokens": typical})
                cost_max += sizer.estimate_cost(spec, {**body, "max_tokens": options.max_tokens})
                calls += 1
            else:
                from_cache += 1
            if grader is None or not needs_judge or (answer is not None and not answer.strip()):
                continue  # no judge call: not free text, or an empty answer (scored 0 as is)
            reference = reference_of(item)
            if answer is None:
                grades.append(("", grader.messages(stand_in_answer, reference)))
            else:
                grades.append(
                    (grader.request_key(answer, reference), grader.messages(answer, reference))
                )
    verdicts = _cached_texts(cache, (k for k, _ in grades if k))
    for key, messages in grades:
        if key and (key in seen or key in verdicts):
            from_cache += 1
            continue
        seen.add(key)
        assert judge is not None and grader is not None
        cost += sizer.estimate_cost(
            judge, {"messages": messages, "max_tokens": TYPICAL_JUDGE_TOKENS}
        )
        cost_max += sizer.estimate_cost(
            judge, {"messages": messages, "max_tokens": grader.max_tokens}
        )
        judge_calls += 1
    calls += judge_calls
    n = len(items) if items is not None else expected_items
    note = f"{n} items x {len(pool)} models"
    if done:
        note += f"; {len(done)} observations stored already"
    if from_cache:
        note += f"; {from_cache} answers and verdicts from the cache ($0)"
    if judge_calls:
        note += f"; ~{judge_calls} judge calls"
    models = (*pool.names, *([judge.name] if judge is not None and judge_calls else []))
    return StepEstimate(
        "labels", status, calls, calls, cost, cost_max, tuple(dict.fromkeys(models)), note
    )


def _is_judged(item: SynthItem) -> bool:
    return canonical_format(item.answer_format) == "judge"


def _cached_texts(cache: Store | None, keys: Iterable[str]) -> dict[str, str]:
    """The cached reply text of each of `keys` the cache holds (read only)."""
    if cache is None:
        return {}
    from sqlalchemy import select

    from trouter.store import LLMCacheEntry

    wanted = list(dict.fromkeys(k for k in keys if k))
    out: dict[str, str] = {}
    with cache.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            rows = conn.execute(
                select(LLMCacheEntry.key, LLMCacheEntry.response).where(
                    LLMCacheEntry.key.in_(wanted[start : start + 500])
                )
            )
            for key, response in rows:
                choices = response.get("choices") or [{}]  # read as Completion.text reads it
                out[key] = str((choices[0].get("message") or {}).get("content") or "")
    return out
