"""The labelling run: every pool model answers every item through the one LLM client, and every
answer is graded by the scorer for the item's answer format.

    client = LLMClient(store, run="label:acme")
    summary = await label_items(items, pool, client, store=store, run="label:acme", judge=judge)
    dataset = to_dataset(load_observations(store, "label:acme"), items, pool, "acme")

Resumable: observations already stored for the run are kept (failed calls are retried), answers
that reached the LLM cache before a crash are re-read for free, and the store's primary key
(run, item, model) rules out duplicates. A rerun with another judge regrades the answers to
judged items (the answers come from the cache; only the new judge is paid). Each model has its
own workers, as many as its `max_concurrency`, so a slow or rate-limited model never holds up the
others; the client adds per-model rate limits and retries. A call that still fails is stored as a
failure (no score, with the error), never dropped; a response that cannot be graded is stored
the same way. A pool model, or the judge, whose calls fail `DOWN_AFTER` times in a row stops
the run, and so does one whose every call of the run failed, however few (`trouter.label.down`);
what was paid is kept for the rerun.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from trouter.errors import TrouterError
from trouter.label.down import (
    ANSWERED,
    CACHED,
    FAILED,
    DownWatch,
    down_error,
    stop_if_all_failed,
)
from trouter.label.down import DOWN_AFTER as DOWN_AFTER  # where callers have read it
from trouter.label.observations import (
    CALL_FAILED,
    OK,
    SCORE_FAILED,
    Observation,
    ObservationWriter,
    change_judge,
    judge_call_error,
    judge_call_failed,
    load_observations,
)
from trouter.label.scorers import (
    Code,
    Judge,
    Reference,
    Score,
    Scorer,
    canonical_format,
    scorer_for,
)
from trouter.label.summary import LabelSummary, fill_totals
from trouter.store import LLMCall, Store

if TYPE_CHECKING:
    from trouter.llm import Completion, LLMClient
    from trouter.pool import ModelSpec, Pool
    from trouter.synth.items import SynthItem

LABEL_PURPOSE = "label"


@dataclass(frozen=True)
class LabelOptions:
    """How pool models are asked: deterministic by default, so reruns hit the cache."""

    temperature: float = 0.0
    max_tokens: int = 1024
    system_prompt: str | None = None
    retry_failed: bool = True  # redo stored failures (calls that failed, judges that failed)
    flush_every: int = 64
    flush_interval_s: float = 0.5


def reference_of(item: SynthItem) -> Reference:
    """What the scorers compare an item's answers with."""
    from trouter.label.scorers.code import split_tests

    rubric = item.meta.get("rubric", "") if isinstance(item.meta, dict) else ""
    return Reference(
        answer=item.reference,
        choices=tuple(item.choices),
        tests=tuple(split_tests(item.tests)) if item.tests.strip() else (),
        entry_point=item.entry_point or None,
        rubric=str(rubric),
        rel_tol=item.tolerance,
        query=item.query,
    )


def check_scorable(items: Sequence[SynthItem], judge: Judge | None) -> None:
    """Fail before any call when some items need a judge and none is given."""
    for fmt in sorted({item.answer_format for item in items}):
        scorer_for(fmt, judge=judge)


async def label_items(
    items: Sequence[SynthItem],
    pool: Pool,
    client: LLMClient,
    *,
    store: Store,
    run: str,
    judge: Judge | None = None,
    code: Code | None = None,
    options: LabelOptions | None = None,
    on_observation: Callable[[Observation], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> LabelSummary:
    """Have every pool model answer every item, grade each answer, store every observation.

    `on_start(n)` is told how many observations remain to be made (for a progress bar),
    `on_observation` gets each one as it is made. When the client raises a user-fixable error
    (`BudgetExceeded`, `MissingKeyError`), no new call starts, the calls in flight finish and
    are stored, then the error is raised; every other call failure becomes a stored failure
    observation.
    """
    options = options or LabelOptions()
    check_scorable(items, judge)
    code = code or Code()
    summary = LabelSummary(run=run, items=len(items), models=pool.names)
    summary.judge = judge.spec.name if judge is not None else ""
    # Verdicts of another judge are dropped here, for `trouter label` and `coldstart` alike;
    # the loop below then asks for those answers again (from the cache) and grades them anew.
    judged = [it.id for it in items if canonical_format(it.answer_format) == "judge"]
    summary.judge_before, summary.regraded = change_judge(
        store, run, judge.id if judge is not None else "", summary.judge, judged
    )
    todo, summary.reused, summary.changed = pending(
        items, pool, load_observations(store, run), options
    )
    if on_start is not None:
        on_start(sum(len(q) for q in todo.values()))
    writer = ObservationWriter(store, run, options.flush_every, options.flush_interval_s)
    spent_before = client.usage.cost_usd
    judge_before = client.usage.per_model.get(judge.spec.name) if judge else None
    # The client counts a call that failed after its retries apart from the answered ones.
    judge_calls_before = judge_before.calls if judge_before else 0
    judge_failures_before = judge_before.failures if judge_before else 0

    stopped: list[TrouterError] = []
    # A pool model is down once DOWN_AFTER of its calls in a row failed, and so is the judge
    # (see DownWatch): a dead judge would otherwise let the pool answer, paid, while nothing
    # is graded. Its failures are stored as grading failures that the rerun grades from the
    # cache, so stopping loses nothing.
    pool_down = DownWatch({name: len(queue) for name, queue in todo.items()})
    to_judge = set(judged)
    judge_down = DownWatch(
        {summary.judge: sum(it.id in to_judge for q in todo.values() for it in q)}
    )

    def watch(spec: ModelSpec, observation: Observation) -> None:
        """Count the calls behind one observation; stop the run when an endpoint is down."""
        failed = observation.status == CALL_FAILED
        pool_call = FAILED if failed else CACHED if observation.cached else ANSWERED
        if pool_down.record(spec.name, pool_call) and not stopped:
            n, how = pool_down.streak[spec.name], pool_down.how(spec.name)
            stopped.append(down_error(spec.name, n, observation.error, how))
        judge_call = observation.judge_call
        if judge_call and judge_down.record(summary.judge, judge_call) and not stopped:
            n, how = judge_down.streak[summary.judge], judge_down.how(summary.judge)
            error = judge_call_error(observation)
            stopped.append(down_error(summary.judge, n, error, how, judge=True))

    async def worker(spec: ModelSpec, queue: deque[SynthItem]) -> None:
        while queue and not stopped:
            item = queue.popleft()
            try:
                observation = await observe(client, spec, item, judge, code, options, store)
            except TrouterError as exc:  # budget reached, key missing: stop taking new work
                stopped.append(exc)
                return
            watch(spec, observation)
            writer.add(observation)
            summary.observed += 1
            summary.cache_hits += observation.cached
            if on_observation is not None:
                on_observation(observation)

    tasks = [
        worker(spec, todo[spec.name])
        for spec in pool
        for _ in range(min(spec.batch_concurrency(), len(todo[spec.name])))
    ]
    try:
        # Calls already in flight when the run stops are finished and stored: they are paid for.
        await _gather_all(tasks)
    finally:
        writer.flush()  # Ctrl-C, a budget stop or a bug: what finished is kept
    if stopped:
        raise stopped[0]
    summary.spent_usd = client.usage.cost_usd - spent_before
    if judge is not None:
        after = client.usage.per_model.get(judge.spec.name)
        failures = (after.failures if after else 0) - judge_failures_before
        summary.judge_call_failures = failures
        summary.judge_calls = (after.calls if after else 0) - judge_calls_before + failures
    summary.isolation = code.last_isolation
    fill_totals(summary, load_observations(store, run), items, pool)
    # A model without one answer cannot be routed to, a judge without one verdict graded
    # nothing: down, even with fewer calls than DOWN_AFTER (whose planned count, for the
    # judge, is an upper bound the watch above may never reach).
    for model in summary.models:
        stop_if_all_failed(
            model,
            summary.answers.get(model, 0),
            summary.call_failures.get(model, 0),
            summary.call_errors.get(model, ""),
        )
    if judge is not None:
        stop_if_all_failed(
            summary.judge,
            summary.judge_asked,
            summary.judge_failed,
            summary.judge_error,
            judge=True,
        )
    return summary


def pending(
    items: Sequence[SynthItem],
    pool: Pool,
    stored: dict[tuple[str, str], Observation],
    options: LabelOptions,
) -> tuple[dict[str, deque[SynthItem]], int, int]:
    """What a run with `stored` observations does: per model, the items it asks about (in item
    order), then how many stored observations it keeps and how many it redoes because they
    answered another request. `label_items` works through it; an estimate prices it."""
    todo: dict[str, deque[SynthItem]] = {spec.name: deque() for spec in pool}
    kept = changed = 0
    for item in items:
        for spec in pool:
            previous = stored.get((item.id, spec.name))
            # A failed judge call is redone as a failed pool call is: the answer is cached.
            redo = previous is not None and (previous.retry or judge_call_failed(previous))
            if previous is None or (options.retry_failed and redo):
                todo[spec.name].append(item)
            elif previous.request_key and previous.request_key != request_key_of(
                spec, item, options
            ):
                # Asked with other options (max_tokens, temperature, system prompt): not an
                # answer to this request. Ask again; an identical earlier request is cached.
                todo[spec.name].append(item)
                changed += 1
            else:
                kept += 1
    return todo, kept, changed


async def _gather_all(coroutines: list[Any]) -> None:
    """Run the workers; the first exception cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def messages_for(item: SynthItem, options: LabelOptions) -> list[dict[str, Any]]:
    """The request a pool model gets: the item's query as the user turn (as real users ask)."""
    messages: list[dict[str, Any]] = []
    if options.system_prompt:
        messages.append({"role": "system", "content": options.system_prompt})
    messages.append({"role": "user", "content": item.query})
    return messages


def request_key_of(spec: ModelSpec, item: SynthItem, options: LabelOptions) -> str:
    """The cache key of the request `observe` sends (to tell a stored answer to another
    request, e.g. another max_tokens, from an answer to this one)."""
    from trouter.llm.cache import request_key
    from trouter.llm.endpoint import base_url_of

    body = {
        "messages": messages_for(item, options),
        **_answer_params(options),
        "model": spec.model,
    }
    return request_key(base_url_of(spec), body)


def _answer_params(options: LabelOptions) -> dict[str, Any]:
    return {"temperature": options.temperature, "max_tokens": options.max_tokens}


async def observe(
    client: LLMClient,
    spec: ModelSpec,
    item: SynthItem,
    judge: Judge | None,
    code: Code,
    options: LabelOptions,
    store: Store,
) -> Observation:
    """One model's answer to one item, graded; failures come back as failure observations.
    Its `judge_call` says what became of the judge's call for it (`trouter.label.down`'s
    ANSWERED, CACHED or FAILED; "" when the judge was not asked)."""
    from trouter.llm import LLMCallError

    base = Observation(
        item_id=item.id,
        model=spec.name,
        task=item.path,
        answer_format=item.answer_format,
        status=CALL_FAILED,
    )
    try:
        done = await client.chat(
            spec,
            messages_for(item, options),
            purpose=LABEL_PURPOSE,
            **_answer_params(options),
        )
    except LLMCallError as exc:
        return replace(base, error=str(exc), attempts=exc.attempts, retry=True)
    text = done.text or ""
    scorer: Scorer = scorer_for(item.answer_format, judge=judge, code=code)
    try:
        score = await scorer.score(text, reference_of(item))
    except TrouterError:
        # The judge's call refused by the budget cap, or its key missing: stop like a pool
        # call would. The answer is paid and cached, so the rerun grades it for the judge's
        # price only; stored as a grading failure, it would have kept a score of 0 for good.
        raise
    except Exception as exc:  # a scorer bug must not end a paid run; it is stored and counted
        score = Score.failure(f"scorer {scorer.name} crashed: {type(exc).__name__}: {exc}")
    detail = score.detail
    if done.finish_reason == "length":
        detail = f"answer cut at max_tokens; {detail}".strip("; ")
    observation = replace(
        base,
        status=OK if score.value is not None else SCORE_FAILED,
        score=score.value,
        response=text,
        extracted=score.extracted or "",
        detail=detail,
        error=score.error,
        tokens_in=done.tokens_in,
        tokens_out=done.tokens_out,
        cost=done.cost,
        latency_s=_latency(done, store),
        cached=done.cached,
        attempts=done.attempts,
        request_key=done.key,
        # A judge that could not be reached, or whose reply held no score, may grade next time.
        retry=score.value is None and score.retry,
        judge_call=score.call,
    )
    return observation


def _latency(done: Completion, store: Store) -> float | None:
    """The call's latency; for a cache hit, that of the original paid call."""
    if not done.cached:
        return done.latency_s
    with store.session() as s:
        latency = s.scalar(
            select(LLMCall.latency_s)
            .where(LLMCall.key == done.key, LLMCall.cached.is_(False), LLMCall.status == "ok")
            .order_by(LLMCall.id.desc())
            .limit(1)
        )
    return float(latency) if latency is not None else None
