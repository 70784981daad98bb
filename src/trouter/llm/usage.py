"""Running totals of what LLM calls did and cost, and the hard $ budget guard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from trouter.errors import ConfigError
from trouter.llm.errors import BudgetExceeded


def check_budget(cap_usd: float | None, option: str = "--budget") -> float | None:
    """`cap_usd` if it is a usable cap (None: no cap), else a one-line `ConfigError`."""
    if cap_usd is not None and not cap_usd > 0:  # also NaN
        raise ConfigError(f"{option} must be a positive number of dollars, got {cap_usd}")
    return cap_usd


@dataclass
class ModelUsage:
    """Totals for one model. Tokens and cost count paid (non-cached) calls only."""

    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    failures: int = 0
    retries: int = 0


@dataclass
class Usage:
    """What this client did so far: calls answered (cached or paid), tokens and $ of the paid
    ones, calls that failed for good, retries, and structured outputs that never validated."""

    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0  # what the cache hits would have cost
    failures: int = 0
    retries: int = 0
    structured_failures: int = 0
    per_model: dict[str, ModelUsage] = field(default_factory=dict)

    def _model(self, name: str) -> ModelUsage:
        return self.per_model.setdefault(name, ModelUsage())

    def add_call(self, model: str, tokens_in: int, tokens_out: int, cost: float) -> None:
        self.calls += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.cost_usd += cost
        m = self._model(model)
        m.calls += 1
        m.tokens_in += tokens_in
        m.tokens_out += tokens_out
        m.cost_usd += cost

    def add_hit(self, model: str, cost: float) -> None:
        self.calls += 1
        self.cache_hits += 1
        self.saved_usd += cost
        m = self._model(model)
        m.calls += 1
        m.cache_hits += 1

    def add_failure(self, model: str) -> None:
        self.failures += 1
        self._model(model).failures += 1

    def add_retry(self, model: str) -> None:
        self.retries += 1
        self._model(model).retries += 1

    @property
    def paid_calls(self) -> int:
        return self.calls - self.cache_hits

    def summary(self) -> str:
        """One line for logs and the CLI's final summary."""
        return (
            f"{self.calls} calls ({self.cache_hits} cached responses reused, "
            f"{self.paid_calls} paid), {self.tokens_in:,} tokens in / {self.tokens_out:,} out, "
            f"${self.cost_usd:.4f} spent, {self.failures} failed calls, {self.retries} retries, "
            f"{self.structured_failures} invalid structured outputs"
        )


class Budget:
    """A hard cap on dollars spent. Before a call, its worst-case cost (prompt estimate plus
    max_tokens of output) is reserved. If spent + reserved + estimate would pass the cap, the
    call waits for calls in flight to settle (they usually cost less than reserved); if it
    cannot fit even then, `BudgetExceeded` is raised, and every later call is refused too.
    After a call its reservation becomes its real cost.

    `spent` may start above zero (money spent by earlier, interrupted runs of the same job)."""

    def __init__(self, cap_usd: float | None, spent: float = 0.0) -> None:
        self.cap_usd = check_budget(cap_usd, "a budget cap")
        self.spent = spent
        self.reserved = 0.0
        self.exhausted = False
        self._settled: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _event(self) -> asyncio.Event:
        loop = asyncio.get_running_loop()
        if self._settled is None or self._loop is not loop:
            self._settled, self._loop = asyncio.Event(), loop
        return self._settled

    def _refuse(self, estimate: float, model: str) -> BudgetExceeded:
        self.exhausted = True
        assert self.cap_usd is not None
        return BudgetExceeded(
            f"budget cap ${self.cap_usd:.4f} reached: ${self.spent:.4f} spent and the next call "
            f"to {model!r} may cost up to ${estimate:.4f}; everything done so far is saved - "
            "raise the cap (--budget or budget_usd) and rerun to continue"
        )

    async def acquire(self, estimate: float, model: str) -> None:
        """Reserve `estimate` dollars, waiting for calls in flight if that may make room."""
        if self.cap_usd is None:
            self.reserved += estimate
            return
        while True:
            if self.exhausted or self.spent + estimate > self.cap_usd + 1e-12:
                raise self._refuse(estimate, model)
            if self.spent + self.reserved + estimate <= self.cap_usd + 1e-12:
                self.reserved += estimate
                return
            event = self._event()
            event.clear()
            await event.wait()

    def settle(self, estimate: float, actual: float) -> None:
        """Turn a reservation into the call's real cost (0 if it failed)."""
        self.reserved = max(0.0, self.reserved - estimate)
        self.spent += actual
        if self._settled is not None:
            self._settled.set()

    @property
    def remaining(self) -> float | None:
        return None if self.cap_usd is None else max(0.0, self.cap_usd - self.spent)
