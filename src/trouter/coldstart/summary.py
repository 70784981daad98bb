"""The end-of-run accounting: LLM calls per model (over every invocation of the job, from the
store's call log, and in this invocation, from the client's running usage) and `summary.json`."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from trouter.coldstart.results import ModelCalls
from trouter.store import LLMCall, Store

if TYPE_CHECKING:
    from trouter.llm import Usage


def role_of(purpose: str) -> str:
    """The part a model played in a call, from the call's purpose."""
    if purpose == "label":
        return "pool"
    if purpose == "judge":
        return "judge"
    if purpose.startswith(("taxonomy.", "qa.")):
        return "generator"
    return purpose or "other"


def calls_per_model(store: Store, run: str, usage: Usage) -> list[ModelCalls]:
    """Per model: paid calls, tokens, $ and failures of the whole job; calls, cache hits, $ and
    retries of this invocation."""
    query = (
        select(
            LLMCall.model,
            LLMCall.purpose,
            LLMCall.cached,
            LLMCall.status,
            func.count(),
            func.coalesce(func.sum(LLMCall.tokens_in), 0),
            func.coalesce(func.sum(LLMCall.tokens_out), 0),
            func.coalesce(func.sum(LLMCall.cost), 0.0),
        )
        .where(LLMCall.run == run)
        .group_by(LLMCall.model, LLMCall.purpose, LLMCall.cached, LLMCall.status)
    )
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    roles: dict[str, set[str]] = defaultdict(set)
    with store.engine.connect() as conn:
        for model, purpose, cached, status, n, t_in, t_out, cost in conn.execute(query):
            roles[model].add(role_of(purpose))
            row = totals[model]
            if status == "error":
                row["failed"] += n
            elif cached:
                row["cached"] += n
            else:
                row["paid"] += n
                row["tokens_in"] += t_in
                row["tokens_out"] += t_out
                row["cost"] += cost
    for model in usage.per_model:
        totals.setdefault(model, defaultdict(float))
    out = []
    order = {"generator": 0, "judge": 1, "pool": 2}
    for model in sorted(totals, key=lambda m: (min(order.get(r, 3) for r in roles[m] or {""}), m)):
        row = totals[model]
        now = usage.per_model.get(model)
        out.append(
            ModelCalls(
                model=model,
                roles=sorted(roles[model], key=lambda r: order.get(r, 3)),
                paid_calls=int(row["paid"]),
                tokens_in=int(row["tokens_in"]),
                tokens_out=int(row["tokens_out"]),
                cost_usd=float(row["cost"]),
                failed_calls=int(row["failed"]),
                cached_calls=int(row["cached"]),
                calls_now=now.calls if now else 0,
                cached_now=now.cache_hits if now else 0,
                cost_now=now.cost_usd if now else 0.0,
                retries_now=now.retries if now else 0,
            )
        )
    return out
