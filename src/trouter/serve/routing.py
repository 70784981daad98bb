"""Routing off the event loop, batched naturally under load.

The router (loaded once at start-up) runs in one dedicated thread, so an encode never blocks the
event loop: other requests, bypass requests, `/health` and `/metrics` go on while it works.
Queries that arrive while a batch is being routed wait and go together in the next batch: no
added latency when idle, one encoder call for many queries when busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from trouter.errors import TrouterError
from trouter.routers.base import Decision, Estimates, Router
from trouter.serve.errors import bad_request
from trouter.tradeoff import Tradeoff

WARMUP_QUERY = "warm up the router"

_Item = tuple[str, float, "asyncio.Future[Decision]"]


class RoutingService:
    """Turns (query, lam) into a `Decision` without blocking the event loop."""

    def __init__(self, router: Router, *, max_batch: int = 64) -> None:
        self.router = router
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trouter-route")
        self._pending: list[_Item] = []
        self._busy = False
        self._lams: OrderedDict[Tradeoff, float] = OrderedDict()
        self._lam_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the encoder and route once, so the first request pays no loading time."""
        self.router.route([WARMUP_QUERY], self.lam_for(Tradeoff.from_preset("balanced")))

    def lam_for(self, tradeoff: Tradeoff) -> float:
        """The lam for a trade-off (presets and budgets resolved once by calibration, cached)."""
        with self._lam_lock:
            lam = self._lams.get(tradeoff)
        if lam is not None:
            return lam
        try:
            lam = tradeoff.resolve(getattr(self.router, "calibration_", None))
        except TrouterError as exc:
            raise bad_request(f"trade-off {tradeoff}: {exc}", param="model") from None
        with self._lam_lock:
            self._lams[tradeoff] = lam
            if len(self._lams) > 512:
                self._lams.popitem(last=False)
        return lam

    async def decide(self, query: str, lam: float) -> tuple[Decision, float]:
        """The decision for one query and the routing overhead in ms (queueing included)."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._pending.append((query, lam, future))
        if not self._busy:
            self._launch(loop)
        decision = await future
        return decision, (time.perf_counter() - started) * 1000.0

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ batching
    def _launch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        self._busy = True
        job = self._executor.submit(
            self._route_batch, [q for q, _, _ in batch], [lam for _, lam, _ in batch]
        )
        job.add_done_callback(
            lambda done: loop.call_soon_threadsafe(self._finish, loop, batch, done)
        )

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Item],
        job: Future[list[Decision | BaseException]],
    ) -> None:
        self._busy = False
        try:
            results: list[Decision | BaseException] = job.result()
        except BaseException as exc:  # the executor itself failed (e.g. shut down)
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():  # the request was cancelled while it waited
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self._pending:
            self._launch(loop)

    def _route_batch(self, queries: list[str], lams: list[float]) -> list[Decision | BaseException]:
        try:
            estimates = self.router.predict(queries)
            return [_row(estimates, i).decisions(lam)[0] for i, lam in enumerate(lams)]
        except Exception:
            if len(queries) == 1:
                raise
        # One bad query must not fail its batch-mates: route each alone.
        out: list[Decision | BaseException] = []
        for query, lam in zip(queries, lams, strict=True):
            try:
                out.append(self.router.predict([query]).decisions(lam)[0])
            except Exception as exc:
                out.append(exc)
        return out


def _row(estimates: Estimates, i: int) -> Estimates:
    """Row i of a batch's estimates, as its own one-query `Estimates`."""
    if len(estimates) == 1:
        return estimates
    pick = slice(i, i + 1)
    return replace(
        estimates,
        quality=estimates.quality[pick],
        cost=estimates.cost[pick],
        tokens_out=None if estimates.tokens_out is None else estimates.tokens_out[pick],
        task_probs=None if estimates.task_probs is None else estimates.task_probs[pick],
        extras={},
    )
