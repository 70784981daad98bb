"""What a labelling run would ask and pay, before any call: the one estimate behind
`trouter label --dry-run` and the labels step of `trouter coldstart --dry-run`.

    planned = plan_run(items, pool, judge_spec, options, store, run)
    cost = price(planned.todo, pool, judge_spec, options, cache=store)
    print(cost.calls, cost.cost, cost.cost_max)

As the run itself (`label_items`): the stored observations it keeps are not counted (`plan_run`
decides with `runner.pending`, after dropping the verdicts of another judge as
`change_judge` drops them); an answer or a verdict the LLM cache holds costs nothing, and a
cached answer gives the judge's prompt exactly; a request made twice is paid once. Output
tokens are `TYPICAL_ANSWER_TOKENS` for an answer and `TYPICAL_JUDGE_TOKENS` for a verdict
typically, the request's `max_tokens` at most; prompts are priced by the client's generous
estimate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trouter.label.runner import LabelOptions, messages_for, pending, reference_of, request_key_of
from trouter.label.scorers import canonical_format

if TYPE_CHECKING:
    from trouter.pool import ModelSpec, Pool
    from trouter.store import Store
    from trouter.synth.items import SynthItem

TYPICAL_ANSWER_TOKENS = 300
TYPICAL_JUDGE_TOKENS = 80


@dataclass(frozen=True)
class Planned:
    """What a run would do now: per model the items it asks about, and what it keeps."""

    todo: dict[str, list[SynthItem]]
    kept: int = 0  # stored observations kept as they are
    changed: int = 0  # stored answers to another request (max_tokens, ...), asked again
    regraded: int = 0  # stored verdicts of another judge, dropped to be graded again


def plan_run(
    items: Sequence[SynthItem],
    pool: Pool,
    judge: ModelSpec | None,
    options: LabelOptions,
    store: Store | None,
    run: str,
    *,
    judge_before: str | None = None,
) -> Planned:
    """What `label_items(items, pool, ..., store=store, run=run)` with `judge` would ask about,
    read without writing anything. `judge_before` is the judge taken to have graded the stored
    observations when the store records none (`None`: the new judge, as `change_judge` takes
    it); `store` None is a run with nothing stored."""
    from trouter.label.observations import load_observations, recorded_judge
    from trouter.label.scorers import judge_id

    stored = load_observations(store, run) if store is not None else {}
    before = recorded_judge(store, run) if store is not None else None
    before = judge_before if before is None else before
    regraded = 0
    if before is not None and before != (judge_id(judge) if judge is not None else ""):
        judged = {it.id for it in items if is_judged(it)}
        kept = {key: obs for key, obs in stored.items() if key[0] not in judged}
        regraded, stored = len(stored) - len(kept), kept
    todo, reused, changed = pending(items, pool, stored, options)
    return Planned({m: list(q) for m, q in todo.items()}, reused, changed, regraded)


@dataclass
class Cost:
    """One model's calls and $, typically and at most."""

    calls: int = 0
    cost: float = 0.0
    cost_max: float = 0.0

    def add(self, typical: float, most: float) -> None:
        self.calls += 1
        self.cost += typical
        self.cost_max += most


@dataclass
class LabelsCost:
    """The price of a labelling run: the pool's answers per model, and the judge's verdicts."""

    models: dict[str, Cost]
    judge: Cost = field(default_factory=Cost)
    from_cache: int = 0  # answers and verdicts the cache holds, or asked twice: $0

    @property
    def calls(self) -> int:
        return sum(c.calls for c in self.models.values()) + self.judge.calls

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.models.values()) + self.judge.cost

    @property
    def cost_max(self) -> float:
        return sum(c.cost_max for c in self.models.values()) + self.judge.cost_max


def price(
    todo: Mapping[str, Sequence[SynthItem]],
    pool: Pool,
    judge: ModelSpec | None,
    options: LabelOptions,
    cache: Store | None = None,
    *,
    stand_ins: bool = False,
) -> LabelsCost:
    """The calls and $ of asking each pool model about its `todo` items and grading the answers
    to judged items with `judge`; with `cache` (the run's store), what it holds costs nothing.
    `stand_ins`: the items stand for ones not written yet, so no request of theirs is known
    (none is looked up in the cache, none counts as asked twice)."""
    from trouter.label.scorers import Judge
    from trouter.llm import LLMClient

    sizer = LLMClient(None)  # only its cost estimator: no store, no connection
    grader = Judge(sizer, judge) if judge is not None else None
    keys = {
        spec.name: [
            "" if stand_ins else request_key_of(spec, it, options) for it in todo[spec.name]
        ]
        for spec in pool
    }
    answers = _cached_texts(cache, (k for ks in keys.values() for k in ks))
    stand_in_answer = "x" * (TYPICAL_ANSWER_TOKENS * 4)
    out = LabelsCost({spec.name: Cost() for spec in pool})
    seen: set[str] = set()  # a request made twice is paid once (shared in flight, or cached)
    grades: list[tuple[str, list[dict[str, Any]]]] = []  # (key, messages) of the judge calls
    for spec in pool:
        for item, key in zip(todo[spec.name], keys[spec.name], strict=True):
            if key and key in seen:
                out.from_cache += 1
                continue
            seen.add(key)
            answer = answers.get(key)
            if answer is None:
                body = {"messages": messages_for(item, options)}
                typical = min(options.max_tokens, TYPICAL_ANSWER_TOKENS)
                out.models[spec.name].add(
                    sizer.estimate_cost(spec, {**body, "max_tokens": typical}),
                    sizer.estimate_cost(spec, {**body, "max_tokens": options.max_tokens}),
                )
            else:
                out.from_cache += 1
            if grader is None or not is_judged(item) or (answer is not None and not answer.strip()):
                continue  # no judge call: not judged, or an empty answer (scored 0 as is)
            reference = reference_of(item)
            if answer is None:
                grades.append(("", grader.messages(stand_in_answer, reference)))
            else:
                key = grader.request_key(answer, reference)
                grades.append((key, grader.messages(answer, reference)))
    verdicts = _cached_texts(cache, (k for k, _ in grades if k))
    for key, messages in grades:
        if key and (key in seen or key in verdicts):
            out.from_cache += 1
            continue
        seen.add(key)
        assert judge is not None and grader is not None
        out.judge.add(
            sizer.estimate_cost(judge, {"messages": messages, "max_tokens": TYPICAL_JUDGE_TOKENS}),
            sizer.estimate_cost(judge, {"messages": messages, "max_tokens": grader.max_tokens}),
        )
    return out


def over_budget(cost: float, budget_usd: float | None, spent_before_usd: float = 0.0) -> str | None:
    """The warning a dry run gives when its estimate `cost` is above what the budget cap has
    left after `spent_before_usd` (the client's budget guard counts a run's earlier spend), or
    None when it is not (or there is no cap). One text for `trouter label` and `coldstart`.

    >>> over_budget(2.0, 1.5, spent_before_usd=0.5)[:58]
    'the estimate ($2.0000) is above what the budget has left ('
    >>> over_budget(0.5, 1.5) is None
    True
    """
    if budget_usd is None:
        return None
    remaining = max(0.0, budget_usd - spent_before_usd)
    if cost <= remaining:
        return None
    return (
        f"the estimate (${cost:.4f}) is above what the budget has left (${remaining:.4f}); the "
        "run will stop at the cap, and a rerun with a larger --budget resumes it"
    )


def is_judged(item: SynthItem) -> bool:
    """Whether the judge grades answers to `item` (a free-text format, by its scorer family)."""
    return canonical_format(item.answer_format) == "judge"


def _cached_texts(cache: Store | None, keys: Iterable[str]) -> dict[str, str]:
    """The cached reply text of each of `keys` the cache holds (read only)."""
    from sqlalchemy import select

    from trouter.store import LLMCacheEntry

    if cache is None or not cache.has_table(LLMCacheEntry.__tablename__):
        return {}

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
