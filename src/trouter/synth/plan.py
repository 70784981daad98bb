"""Dry-run plans: how many calls a taxonomy build or a synthesis run will make, and roughly
what they will cost, computed from the profile (and taxonomy) without calling anything.

Token counts are estimates (rendered prompt characters / 4, typical output sizes); calls are a
typical figure and an upper bound (every critique round changing the set, every leaf needing
its extra batches). Responses already in the cache cost nothing and are not subtracted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trouter.pool import ModelSpec
from trouter.profile import TaskProfile
from trouter.prompts import load_prompt
from trouter.taxonomy import Taxonomy

NODE_TOKENS = 60  # a node (name, definition, example) as JSON
ITEM_TOKENS = 160  # a QA item (query + reference + extras) as JSON


@dataclass(frozen=True)
class PlanStep:
    step: str
    calls: int
    calls_max: int
    tokens_in: int  # per call
    tokens_out: int  # per call

    def cost(self, spec: ModelSpec, upper: bool = False) -> float:
        calls = self.calls_max if upper else self.calls
        return calls * spec.call_cost(self.tokens_in, self.tokens_out)


@dataclass
class Plan:
    model: ModelSpec
    steps: list[PlanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.steps)

    @property
    def calls_max(self) -> int:
        return sum(s.calls_max for s in self.steps)

    @property
    def cost(self) -> float:
        return sum(s.cost(self.model) for s in self.steps)

    @property
    def cost_max(self) -> float:
        return sum(s.cost(self.model, upper=True) for s in self.steps)

    @property
    def tokens(self) -> tuple[int, int]:
        return (
            sum(s.calls * s.tokens_in for s in self.steps),
            sum(s.calls * s.tokens_out for s in self.steps),
        )


def _template_tokens(name: str, extra_chars: int) -> int:
    p = load_prompt(name)
    return math.ceil((len(p.system) + len(p.user) + extra_chars) / 4)


def plan_taxonomy(profile: TaskProfile) -> Plan:
    """The calls a `trouter taxonomy build` of this profile makes."""
    plan = Plan(model=profile.generator_spec())
    s = profile.taxonomy
    base = len(profile.description) + len(profile.audience)
    parents_typ, parents_max = 1.0, 1
    for depth, level in enumerate(profile.levels):
        if level.fixed:
            plan.notes.append(f"level {level.name!r}: fixed nodes, no calls")
        else:
            above = base + depth * 200  # each level above adds a line of profile
            set_tokens = level.max_nodes * NODE_TOKENS
            typ = max(1, round(parents_typ))
            critiques_typ = min(s.max_rounds, s.stable_rounds + 1)
            compares_typ = min(s.max_rounds, 1)
            gen_in = _template_tokens("taxonomy_generate", above)
            crit_in = _template_tokens("taxonomy_critique", above) + set_tokens
            comp_in = _template_tokens("taxonomy_compare", above) + 2 * set_tokens
            plan.steps += [
                PlanStep(f"{level.name}: generate", typ, parents_max, gen_in, set_tokens),
                PlanStep(
                    f"{level.name}: critique + revise",
                    typ * critiques_typ,
                    parents_max * s.max_rounds,
                    crit_in,
                    set_tokens + 150,
                ),
                PlanStep(
                    f"{level.name}: A/B compare",
                    typ * compares_typ,
                    parents_max * s.max_rounds,
                    comp_in,
                    80,
                ),
            ]
        parents_typ *= (level.min_nodes + level.max_nodes) / 2
        parents_max *= level.max_nodes
    return plan


def plan_synthesis(profile: TaskProfile, taxonomy: Taxonomy) -> Plan:
    """The calls a `trouter synthesize` of this profile over `taxonomy` makes."""
    plan = Plan(model=profile.generator_spec())
    s = profile.synthesis
    leaves = len(taxonomy.leaf_paths())
    batches = math.ceil(profile.items_per_leaf / s.batch_size)
    batches_max = math.ceil(batches * s.max_batch_factor)
    context = len(profile.description) + len(profile.audience) + taxonomy.depth() * 200
    avoid = profile.items_per_leaf // 2 * 100  # the earlier queries shown, on average
    rules = len(load_prompt("qa_format_rules").user)
    gen_in = _template_tokens("qa_generate", context + avoid + rules)
    plan.steps.append(
        PlanStep(
            "QA batches", leaves * batches, leaves * batches_max, gen_in, s.batch_size * ITEM_TOKENS
        )
    )
    if s.answerability_check:
        check_in = (
            _template_tokens("qa_check", len(profile.description)) + s.batch_size * ITEM_TOKENS
        )
        plan.steps.append(
            PlanStep(
                "answerability checks",
                leaves * batches,
                leaves * batches_max,
                check_in,
                s.batch_size * 30,
            )
        )
    plan.notes.append(
        f"{leaves} leaves x {profile.items_per_leaf} items = {leaves * profile.items_per_leaf} "
        f"items, in batches of {s.batch_size}"
    )
    return plan
