"""`trouter logs`: what the gateway did, from its decision log: spend, model mix, fallbacks, errors,
and the scores clients reported per model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select

from trouter.errors import ConfigError
from trouter.store import DecisionLog, Feedback, Store

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`90m`, `6h`, `7d`, `2w` (ago), or an ISO date / date-time (UTC if no zone)."""
    now = now or datetime.now(UTC)
    match = _SPAN.match(text)
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        except OverflowError:
            raise ConfigError(
                f"--since {text!r} reaches back before the year 1; give a shorter span or a date"
            ) from None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"cannot read --since {text!r}; use e.g. 30m, 6h, 7d, or 2025-01-31 / 2025-01-31T12:00"
        ) from None
    # The store keeps UTC times without their zone: a time given with an offset is moved to UTC.
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ModelLine:
    model: str
    requests: int
    share: float
    chosen: int  # times the router picked it first
    spend: float
    tokens_in: int
    tokens_out: int
    mean_latency_ms: float
    scored: int = 0  # answers a client scored (POST /v1/feedback)
    mean_score: float | None = None  # their mean (latest) score


@dataclass(frozen=True)
class LogSummary:
    requests: int
    errors: int
    fallback_requests: int
    fallbacks: int
    spend: float
    tokens_in: int
    tokens_out: int
    p50_latency_ms: float
    p95_latency_ms: float
    mean_overhead_ms: float
    first: datetime | None
    last: datetime | None
    models: list[ModelLine] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


def summarise(store: Store, since: datetime | None = None) -> LogSummary:
    """Aggregate the decision log (all of it, or rows created at or after `since`)."""
    t = DecisionLog
    where = [t.created_at >= since] if since is not None else []
    if not store.has_table(t.__tablename__):  # a store read as it is, that no gateway wrote
        return LogSummary(
            requests=0,
            errors=0,
            fallback_requests=0,
            fallbacks=0,
            spend=0.0,
            tokens_in=0,
            tokens_out=0,
            p50_latency_ms=0.0,
            p95_latency_ms=0.0,
            mean_overhead_ms=0.0,
            first=None,
            last=None,
        )
    with store.session() as s:
        totals = s.execute(
            select(
                func.count(),
                func.coalesce(func.sum(t.cost), 0.0),
                func.coalesce(func.sum(t.tokens_in), 0),
                func.coalesce(func.sum(t.tokens_out), 0),
                func.coalesce(func.sum(t.fallbacks), 0),
                func.coalesce(func.avg(t.overhead_ms), 0.0),
                func.min(t.created_at),
                func.max(t.created_at),
            ).where(*where)
        ).one()
        errors = s.scalar(select(func.count()).where(t.status != "ok", *where)) or 0
        fell_back = s.scalar(select(func.count()).where(t.fallbacks > 0, *where)) or 0
        statuses = dict(
            s.execute(
                select(t.http_status, func.count()).where(*where).group_by(t.http_status)
            ).all()
        )
        answered = s.execute(
            select(
                t.final_model,
                func.count(),
                func.sum(t.cost),
                func.sum(t.tokens_in),
                func.sum(t.tokens_out),
                func.avg(t.latency_ms),
            )
            .where(t.status == "ok", t.final_model != "", *where)
            .group_by(t.final_model)
        ).all()
        chosen = dict(
            s.execute(
                select(t.chosen_model, func.count())
                .where(t.chosen_model != "", *where)
                .group_by(t.chosen_model)
            ).all()
        )
        scores = (
            {
                r[0]: (int(r[1]), float(r[2]))
                for r in s.execute(
                    select(t.final_model, func.count(), func.avg(Feedback.score))
                    .join(Feedback, Feedback.request_id == t.request_id)
                    .where(Feedback.id.in_(Feedback.latest()), t.status == "ok", *where)
                    .group_by(t.final_model)
                ).all()
            }
            if store.has_table(Feedback.__tablename__)  # older stores have no feedback table
            else {}
        )
        latencies = np.asarray(
            s.scalars(select(t.latency_ms).where(t.status == "ok", *where)).all(), dtype=np.float64
        )
    n_ok = sum(int(r[1]) for r in answered) or 1
    models = sorted(
        (
            ModelLine(
                model=str(r[0]),
                requests=int(r[1]),
                share=int(r[1]) / n_ok,
                chosen=int(chosen.get(r[0], 0)),
                spend=float(r[2] or 0.0),
                tokens_in=int(r[3] or 0),
                tokens_out=int(r[4] or 0),
                mean_latency_ms=float(r[5] or 0.0),
                scored=scores.get(r[0], (0, 0.0))[0],
                mean_score=scores[r[0]][1] if r[0] in scores else None,
            )
            for r in answered
        ),
        key=lambda m: -m.requests,
    )
    p50, p95 = (
        (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)))
        if latencies.size
        else (0.0, 0.0)
    )
    return LogSummary(
        requests=int(totals[0]),
        errors=int(errors),
        fallback_requests=int(fell_back),
        fallbacks=int(totals[4]),
        spend=float(totals[1]),
        tokens_in=int(totals[2]),
        tokens_out=int(totals[3]),
        p50_latency_ms=p50,
        p95_latency_ms=p95,
        mean_overhead_ms=float(totals[5]),
        first=totals[6],
        last=totals[7],
        models=models,
        statuses={int(k): int(v) for k, v in statuses.items()},
    )
