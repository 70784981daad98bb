"""Prometheus metrics of one gateway app (its own registry, so several apps can share a process).

trouter_requests_total{status}                 chat requests by HTTP status
trouter_decisions_total{model}                 the router's first choice
trouter_answers_total{model}                   the model that actually answered
trouter_upstream_errors_total{model,kind}      failed attempts (status, timeout, connect, ...)
trouter_fallbacks_total{model}                 moves past a failed model to the next one
trouter_router_overhead_seconds                routing time per request (queueing included)
trouter_request_latency_seconds                whole request, as the client sees it
trouter_spend_dollars_total{model}             $ by the pool's prices and upstream usage
trouter_tokens_total{model,direction}          input / output tokens
trouter_decision_log_failed_writes             rows the store could not write
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    """The counters and histograms above, with per-model children created once up front."""

    def __init__(self, models: Sequence[str], failed_writes: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "trouter_requests", "Chat requests by HTTP status.", ["status"], registry=r
        )
        self.decisions = Counter(
            "trouter_decisions", "Routing decisions by chosen model.", ["model"], registry=r
        )
        self.answers = Counter(
            "trouter_answers", "Answered requests by final model.", ["model"], registry=r
        )
        self.upstream_errors = Counter(
            "trouter_upstream_errors", "Failed upstream attempts.", ["model", "kind"], registry=r
        )
        self.fallbacks = Counter(
            "trouter_fallbacks", "Fallbacks past a failed model.", ["model"], registry=r
        )
        self.overhead = Histogram(
            "trouter_router_overhead_seconds",
            "Routing time per request.",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "trouter_request_latency_seconds",
            "Request latency.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.spend = Counter(
            "trouter_spend_dollars", "Dollars spent upstream.", ["model"], registry=r
        )
        self.tokens = Counter(
            "trouter_tokens", "Tokens used upstream.", ["model", "direction"], registry=r
        )
        failed = Gauge(
            "trouter_decision_log_failed_writes",
            "Decision-log rows that could not be written.",
            registry=r,
        )
        failed.set_function(failed_writes)
        # Children looked up once: a labels() call per request is measurable at high rates.
        self._decisions = {m: self.decisions.labels(m) for m in models}
        self._answers = {m: self.answers.labels(m) for m in models}
        self._spend = {m: self.spend.labels(m) for m in models}
        self._tokens_in = {m: self.tokens.labels(m, "input") for m in models}
        self._tokens_out = {m: self.tokens.labels(m, "output") for m in models}
        self._status: dict[int, Counter] = {}

    def request(self, status: int, latency_s: float) -> None:
        child = self._status.get(status)
        if child is None:
            child = self._status[status] = self.requests.labels(str(status))
        child.inc()
        self.latency.observe(latency_s)

    def decision(self, model: str, overhead_s: float) -> None:
        self._decisions[model].inc()
        self.overhead.observe(overhead_s)

    def failure(self, model: str, kind: str, fell_back: bool) -> None:
        self.upstream_errors.labels(model, kind).inc()
        if fell_back:
            self.fallbacks.labels(model).inc()

    def answer(self, model: str, tokens_in: int, tokens_out: int, cost: float) -> None:
        self._answers[model].inc()
        self.spent(model, tokens_in, tokens_out, cost)

    def spent(self, model: str, tokens_in: int, tokens_out: int, cost: float) -> None:
        """Tokens and dollars paid upstream, answered or not (a stream cut short still cost)."""
        if tokens_in:
            self._tokens_in[model].inc(tokens_in)
        if tokens_out:
            self._tokens_out[model].inc(tokens_out)
        if cost:
            self._spend[model].inc(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)
