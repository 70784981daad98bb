"""Per-model admission: the gateway honours each pool model's `max_concurrency` and
`requests_per_minute`, with the batch client's own `Lane` (a semaphore and a pacer) per model.

A request waits for a free slot of its model, within its deadline, and holds it until its
response is read (a stream: until the stream is closed). One rule says when a start is still
worth it, for slots and pacing turns alike (`latest_start`): it must leave the attempt at least
`min_time_left_s` (see `for_pool`); a slot or turn taken later would be used up by a request
that cannot reach the model in time. So a request that finds a free slot with less time left,
or has waited for one until then, is turned away; and as a model's pacing is known in
advance, a request whose turn would come too late is turned away at once (before any wait for
a slot). The forwarder counts each as a 429 of that model and falls back to the next model
with the time that is left. A client that goes away while its request waits ends the wait
(logged as client-closed), so an answer nobody will read takes no one's turn.

Spill-over: a request with another model after this one in its chain waits for this model's
slot and turn at most `max_queue_s` (the pool entry's, else the gateway's `--max-queue`), then
is turned away (a 429 of this model, as above) to try the next model while it still has time;
a turn known to come later than that is passed over at once. The last model of a chain has
nowhere to send a request on, so there it waits up to the deadline whatever `max_queue_s` is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trouter.llm.limits import Lane
from trouter.pool import Pool

#: The slots of a model that sets `requests_per_minute` but no `max_concurrency`.
UNBOUNDED = 1_000_000

#: A slot or paced turn is taken only with at least the smaller of these left before the
#: deadline. Less is too little for an upstream to send even its first byte (time to first
#: token is often 0.3-1 s, more under load), so the slot or turn would be used up and the
#: request fail anyway;
#: the share keeps a short deadline (a few seconds) from losing most of its turns to the rule.
MIN_TIME_LEFT_S = 1.0
MIN_TIME_LEFT_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class NoSlot:
    """Why a request could not start at a model in time."""

    message: str
    retry_after: str | None = None  # seconds, when the pacing tells when it could start
    deadline_hit: bool = False
    client_left: bool = False  # the client went away while the request waited


#: Returns once the request's client has gone away (e.g. its connection closed).
ClientLeft = Callable[[], Awaitable[object]]


class Admission:
    """The lanes of a pool's models; create it inside the running event loop."""

    def __init__(
        self,
        lanes: dict[str, Lane],
        min_time_left_s: float = MIN_TIME_LEFT_S,
        max_queue_s: dict[str, float] | None = None,
    ) -> None:
        self.lanes = lanes
        self.min_time_left_s = min_time_left_s
        #: per model, the longest wait for its slot and turn of a request that can move on
        self.max_queue_s = max_queue_s or {}

    @classmethod
    def for_pool(
        cls, pool: Pool, deadline_s: float | None = None, max_queue_s: float | None = None
    ) -> Admission:
        """Lanes for the models whose pool entry sets a limit; the others are not held back.
        `deadline_s`: the gateway's per-request deadline, which sets the least time a slot or
        paced turn must leave (`MIN_TIME_LEFT_S`, or `MIN_TIME_LEFT_SHARE` of a short
        deadline). `max_queue_s`: the gateway's bound on a wait at a model whose pool entry
        sets none (None: up to the deadline)."""
        least = MIN_TIME_LEFT_S
        if deadline_s is not None:
            least = min(MIN_TIME_LEFT_S, MIN_TIME_LEFT_SHARE * deadline_s)
        lanes = {
            spec.name: Lane(
                semaphore=asyncio.Semaphore(spec.max_concurrency or UNBOUNDED),
                interval=60.0 / spec.requests_per_minute if spec.requests_per_minute else 0.0,
            )
            for spec in pool
            if spec.max_concurrency is not None or spec.requests_per_minute is not None
        }
        queues = {
            spec.name: queue
            for spec in pool
            if spec.name in lanes
            and (queue := spec.max_queue_s if spec.max_queue_s is not None else max_queue_s)
            is not None
        }
        return cls(lanes, least, queues)

    async def enter(
        self, name: str, deadline: float, left: ClientLeft | None = None, *, spill: bool = False
    ) -> NoSlot | None:
        """Take a slot of `name` and its pacing turn (None), or say why not before `deadline`
        (`time.monotonic()` seconds). Every None must be matched by one `leave(name)`.

        `left`: while the request waits (for a slot or its turn), a client that goes away ends
        the wait, so a request nobody will read takes no one's turn at the model.
        `spill`: the request has another model to go to, so it waits here at most the
        model's `max_queue_s` (when there is one); without, it waits up to the deadline."""
        lane = self.lanes.get(name)
        if lane is None:
            return None
        queue_s = self.max_queue_s.get(name) if spill else None
        queue_end = None if queue_s is None else time.monotonic() + queue_s
        # Its pacing turn is no sooner than the next free one: if even that is past the
        # deadline (or too close to it, or past its max_queue_s), say so now rather than after
        # waiting for a slot (the wait would only use up the next model's time).
        if (late := self._paced_past(name, lane, deadline, queue_end)) is not None:
            return late
        # A slot is worth taking only with the time an attempt needs, as a turn is.
        if (short := self._short_of_time(name, "could start a request", deadline)) is not None:
            return short
        semaphore = lane.semaphore
        if semaphore.locked():
            # Waits no longer than a slot is worth having: one freed later is left to others.
            latest = self.latest_start(deadline)
            until = latest if queue_end is None else min(latest, queue_end)
            waited = await _wait(semaphore.acquire(), until, left, undo=semaphore.release)
            if waited == _LEFT:
                return _gone(name)
            if waited == _LATE and until < latest:
                return NoSlot(
                    f"{name} had no free slot of its max_concurrency within its max_queue_s "
                    f"({self.max_queue_s[name]:.3g} s)"
                )
            if waited == _LATE:
                return NoSlot(
                    f"{name} had no free slot of its max_concurrency in time (an attempt gets "
                    f"at least {self.min_time_left_s:.3g} s before the deadline)",
                    deadline_hit=True,
                )
            # A slot freed just as the wait ended (the loop slow to resume) can still be late.
            if (short := self._short_of_time(name, "had a slot free", deadline)) is not None:
                semaphore.release()
                return short
        else:
            await semaphore.acquire()  # a free slot: returns without waiting
        if lane.interval > 0:
            if (late := self._paced_past(name, lane, deadline, queue_end)) is not None:
                semaphore.release()
                return late
            # The turn is taken now, as `Lane.pace` takes it, in the step that checked it; a
            # turn given up (the client left, or cancelled) stays taken: the pacing never lets
            # more requests start than it promises, only fewer.
            now = time.monotonic()
            start = max(now, lane.next_start)
            lane.next_start = start + lane.interval
            if start > now:
                try:
                    waited = await _wait(asyncio.sleep(start - now), None, left)
                except BaseException:  # cancelled while paced: the slot is not used
                    semaphore.release()
                    raise
                if waited == _LEFT:
                    semaphore.release()
                    return _gone(name)
        return None

    def leave(self, name: str) -> None:
        lane = self.lanes.get(name)
        if lane is not None:
            lane.semaphore.release()

    def latest_start(self, deadline: float) -> float:
        """The last moment (`time.monotonic()` seconds) a request may start at a model and
        still have `min_time_left_s` before `deadline`: the one rule for slots and turns."""
        return deadline - self.min_time_left_s

    def _short_of_time(self, name: str, what: str, deadline: float) -> NoSlot | None:
        """Why starting at `name` now leaves too little time before `deadline` (None when
        it does not)."""
        now = time.monotonic()
        if now <= self.latest_start(deadline):
            return None
        return NoSlot(f"{name} {what} {self._too_late(deadline - now)}", deadline_hit=True)

    def _too_late(self, left: float) -> str:
        """Where a start `left` seconds before the deadline falls (less than the rule asks)."""
        if left < 0:
            return "after the deadline"
        return (
            f"only {left:.3g} s before the deadline (an attempt gets at least "
            f"{self.min_time_left_s:.3g} s)"
        )

    def _paced_past(
        self, name: str, lane: Lane, deadline: float, queue_end: float | None
    ) -> NoSlot | None:
        """Why `name` cannot start a request in time: its next pacing turn is after
        `latest_start(deadline)`, or after `queue_end` (the end of the request's wait here)
        (None when it is not, or the model is not paced); the turn is not taken then."""
        if lane.interval <= 0:
            return None
        now = time.monotonic()
        start = max(now, lane.next_start)
        if start > self.latest_start(deadline):
            when = self._too_late(deadline - start)
        elif queue_end is not None and lane.next_start > queue_end:  # a turn due now waits 0
            when = f"later than its max_queue_s ({self.max_queue_s[name]:.3g} s) lets it wait"
        else:
            return None
        wait = start - now
        return NoSlot(
            f"{name}'s requests_per_minute lets a request start in {wait:.3g} s, {when}",
            retry_after=str(max(1, math.ceil(wait))),
        )


_DONE, _LATE, _LEFT = "done", "late", "left"


async def _wait(
    step: Awaitable[object],
    deadline: float | None,
    left: ClientLeft | None,
    undo: Callable[[], None] | None = None,
) -> str:
    """Await `step` until it is done, the `deadline` passes, or the client leaves; `undo`
    gives back what `step` took when it finished but its result is not used."""
    task = asyncio.ensure_future(step)
    watch = asyncio.ensure_future(left()) if left is not None else None
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        await asyncio.wait(
            {task} if watch is None else {task, watch},
            timeout=timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
    except BaseException:  # cancelled: nothing taken may be kept
        _drop(task, undo)
        if watch is not None:
            watch.cancel()
        raise
    if watch is not None:
        watch.cancel()
        if watch.done() and not watch.cancelled():
            watch.exception()  # retrieved: a watch that failed, failed with the connection
            _drop(task, undo)
            return _LEFT
    if task.done() and not task.cancelled():
        task.result()  # a failed step raises here
        return _DONE
    _drop(task, undo)
    return _LATE


def _drop(task: asyncio.Future[object], undo: Callable[[], None] | None) -> None:
    """Stop `task`; if it already finished, give back what it took. (A semaphore's `acquire`
    cancelled before it resumes gives its slot back itself.)"""
    if not task.done():
        task.cancel()
    elif not task.cancelled() and task.exception() is None and undo is not None:
        undo()


def _gone(name: str) -> NoSlot:
    return NoSlot(f"the client left while the request waited for {name}", client_left=True)
