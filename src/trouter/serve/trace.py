"""One request's story: its decision, attempts and outcome, told as response headers and as a
decision-log row.

Response headers (all lower-case, present when known):

    x-trouter-request-id          the id of this request's decision-log row
    x-trouter-model               the pool model that produced the response
    x-trouter-routed-model        the router's first choice (differs after a fallback)
    x-trouter-predicted-quality   the router's predicted quality of x-trouter-model, in [0, 1]
    x-trouter-predicted-cost      its predicted cost of x-trouter-model, in dollars
    x-trouter-task                the top task type (URL-quoted), for task-aware routers
    x-trouter-task-probability    that task type's probability
    x-trouter-lambda              the lam the request was routed with
    x-trouter-overhead-ms         routing time, queueing included (0 when routing was bypassed)
    x-trouter-fallbacks           how many models failed before this answer
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from trouter.routers.base import Decision
from trouter.serve.upstream import Attempts

QUERY_LOG_CHARS = 4000


_ID_PREFIX = uuid.uuid4().hex[:16]  # random per process, so replicas never collide
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A unique id: a per-process random prefix and a counter (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


@dataclass(slots=True)
class Trace:
    """Everything the log and the headers say about one request, filled in as it goes."""

    requested: str
    client: str
    stream: bool
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tradeoff: str = ""
    lam: float | None = None
    decision: Decision | None = None
    overhead_ms: float = 0.0
    query: str = ""
    attempts: Attempts = field(default_factory=Attempts)
    final_model: str = ""
    status: str = "ok"  # ok | error | client_closed | shutdown (a forced stop cut the stream)
    http_status: int = 200
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    usage_seen: bool = False  # the upstream's usage arrived (else a cut stream's are estimated)
    error: str = ""
    logged: bool = False  # its row is queued: a row per request, never two

    @property
    def fallbacks(self) -> int:
        return len(self.attempts.failures)

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def set_usage(self, usage: dict[str, Any] | None) -> None:
        if usage:
            self.usage_seen = True
            self.tokens_in = _int(usage.get("prompt_tokens"))
            self.tokens_out = _int(usage.get("completion_tokens"))

    def fail(self, http_status: int, message: str, status: str = "error") -> None:
        self.status = status
        self.http_status = http_status
        self.error = message

    def headers(self) -> dict[str, str]:
        h = {"x-trouter-request-id": self.request_id}
        model = self.final_model
        if model:
            h["x-trouter-model"] = model
        d = self.decision
        if d is not None:
            h["x-trouter-routed-model"] = d.model
            estimate = next((e for e in d.estimates if e.model == (model or d.model)), None)
            if estimate is not None:
                h["x-trouter-predicted-quality"] = f"{estimate.quality:.4f}"
                h["x-trouter-predicted-cost"] = f"{estimate.cost:.6g}"
            if d.task_types:
                h["x-trouter-task"] = quote(d.task_types[0].name, safe="/:._- ")
                h["x-trouter-task-probability"] = f"{d.task_types[0].probability:.4f}"
        if self.lam is not None:
            h["x-trouter-lambda"] = f"{self.lam:.6g}"
        h["x-trouter-overhead-ms"] = f"{self.overhead_ms:.3f}"
        h["x-trouter-fallbacks"] = str(self.fallbacks)
        return h

    def row(self, log_query: bool = True) -> dict[str, Any]:
        """The `DecisionLog` row (column -> value)."""
        d = self.decision
        predicted = None
        if d is not None:
            target = self.final_model or d.model
            predicted = next((e for e in d.estimates if e.model == target), None)
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "requested": self.requested[:200],
            "tradeoff": self.tradeoff,
            "lam": self.lam,
            "chosen_model": d.model if d is not None else self.final_model,
            "final_model": self.final_model,
            "fallbacks": self.fallbacks,
            "chain": list(d.chain) if d is not None else [],
            "attempts": [
                {"model": f.model, "kind": f.kind, "status": f.status}
                for f in self.attempts.failures
            ],
            "estimates": {e.model: [e.quality, e.cost] for e in d.estimates} if d else {},
            "client": self.client,
            "predicted_quality": predicted.quality if predicted else None,
            "predicted_cost": predicted.cost if predicted else None,
            "top_task": d.task_types[0].name[:300] if d is not None and d.task_types else "",
            "query": self.query[:QUERY_LOG_CHARS] if log_query else "",
            "stream": self.stream,
            "status": self.status,
            "http_status": self.http_status,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": self.cost,
            "overhead_ms": self.overhead_ms,
            "latency_ms": self.elapsed_s() * 1000.0,
            "error": self.error[:2000],
        }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
