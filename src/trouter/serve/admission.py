"""Per-model admission: the gateway honours each pool model's `max_concurrency` and
`requests_per_minute`, with the batch client's own `Lane` (a semaphore and a pacer) per model.

A request waits for a free slot of its model, within its deadline, and holds it until its
response is read (a stream: until the stream is closed). A model's pacing is known in advance,
so a request it would start after the deadline is turned away at once (before any wait for a
slot), and the forwarder falls back to the next model with the time that is left; a request
that waited for a slot until the deadline is turned away then. The forwarder counts both as a
429 of that model.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from trouter.llm.limits import Lane
from trouter.pool import Pool

#: The slots of a model that sets `requests_per_minute` but no `max_concurrency`.
UNBOUNDED = 1_000_000


@dataclass(frozen=True, slots=True)
class NoSlot:
    """Why a request could not start at a model in time."""

    message: str
    retry_after: str | None = None  # seconds, when the pacing tells when it could start
    deadline_hit: bool = False


class Admission:
    """The lanes of a pool's models; create it inside the running event loop."""

    def __init__(self, lanes: dict[str, Lane]) -> None:
        self.lanes = lanes

    @classmethod
    def for_pool(cls, pool: Pool) -> Admission:
        """Lanes for the models whose pool entry sets a limit; the others are not held back."""
        return cls(
            {
                spec.name: Lane(
                    semaphore=asyncio.Semaphore(spec.max_concurrency or UNBOUNDED),
                    interval=60.0 / spec.requests_per_minute if spec.requests_per_minute else 0.0,
                )
                for spec in pool
                if spec.max_concurrency is not None or spec.requests_per_minute is not None
            }
        )

    async def enter(self, name: str, deadline: float) -> NoSlot | None:
        """Take a slot of `name` and its pacing turn (None), or say why not before `deadline`
        (`time.monotonic()` seconds). Every None must be matched by one `leave(name)`."""
        lane = self.lanes.get(name)
        if lane is None:
            return None
        # Its pacing turn is no sooner than the next free one: if even that is past the
        # deadline, say so now rather than after waiting for a slot (the wait would only use
        # up the time the next model of the chain could have had).
        if (late := _paced_past(name, lane, deadline)) is not None:
            return late
        semaphore = lane.semaphore
        if semaphore.locked():
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await semaphore.acquire()
            except TimeoutError:
                return NoSlot(
                    f"{name} had no free slot of its max_concurrency before the deadline",
                    deadline_hit=True,
                )
        else:
            await semaphore.acquire()  # a free slot: returns without waiting
        if lane.interval > 0:
            if (late := _paced_past(name, lane, deadline)) is not None:
                semaphore.release()
                return late
            try:
                await lane.pace()
            except BaseException:  # cancelled while paced: the slot is not used
                semaphore.release()
                raise
        return None

    def leave(self, name: str) -> None:
        lane = self.lanes.get(name)
        if lane is not None:
            lane.semaphore.release()


def _paced_past(name: str, lane: Lane, deadline: float) -> NoSlot | None:
    """Why `name` cannot start a request before `deadline`: its next pacing turn is after it
    (None when it is not, or the model is not paced)."""
    if lane.interval <= 0:
        return None
    now = time.monotonic()
    wait = max(now, lane.next_start) - now
    if now + wait <= deadline:
        return None
    return NoSlot(
        f"{name}'s requests_per_minute lets a request start in {wait:.3g} s, after the deadline",
        retry_after=str(max(1, math.ceil(wait))),
    )
