"""Admission and retry policy per model: concurrency bound, requests-per-minute pacing, backoff."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with equal jitter; a server's Retry-After wins when it gives one."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to sleep after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            # A small jitter on top keeps many waiting requests from returning in lockstep.
            return min(retry_after, self.max_retry_after) + rng.uniform(0, 0.05)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class Lane:
    """Per-model admission: a concurrency bound and a requests-per-minute pacer."""

    semaphore: asyncio.Semaphore
    interval: float  # seconds between request starts (0: unpaced)
    next_start: float = 0.0

    async def pace(self) -> None:
        if self.interval <= 0:
            return
        now = time.monotonic()
        start = max(now, self.next_start)
        self.next_start = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
