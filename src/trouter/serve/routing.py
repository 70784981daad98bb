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

from trouter.errors import ConfigError, TrouterError
from trouter.routers.base import Decision, Estimates, Router
from trouter.serve.errors import GatewayError, bad_request
from trouter.tradeoff import Tradeoff

WARMUP_QUERY = "warm up the router"

_Item = tuple[str, Tradeoff, "asyncio.Future[Decision]"]


class RoutingService:
    """Turns (query, trade-off) into a `Decision` without blocking the event loop.

    Trade-offs are resolved to a lam in the routing thread too (a budget is a bisection over
    the calibration set, so a stream of distinct budgets must not stall the loop), then cached.
    """

    def __init__(self, router: Router, *, max_batch: int = 64) -> None:
        self.router = router
        self.max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trouter-route")
        self._pending: list[_Item] = []
        self._busy = False
        self._lams: OrderedDict[Tradeoff, float] = OrderedDict()
        self._lam_lock = threading.Lock()
        self.warmed = False

    def warm_up(self, tradeoff: Tradeoff) -> None:
        """Load the encoder and route once with the default trade-off, so the first request
        pays no loading time and a router or trade-off that cannot work fails at start-up."""
        if self.warmed:
            return
        (result,) = self._route_batch([WARMUP_QUERY], [tradeoff])
        if isinstance(result, GatewayError):
            raise ConfigError(f"--tradeoff: {result.message}")
        if isinstance(result, BaseException):
            raise result
        self.warmed = True

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

    async def decide(self, query: str, tradeoff: Tradeoff) -> tuple[Decision, float]:
        """The decision for one query and the routing overhead in ms (queueing included);
        a trade-off this router cannot honour is a 400."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        self._pending.append((query, tradeoff, future))
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
            self._route_batch, [q for q, _, _ in batch], [t for _, t, _ in batch]
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

    def _route_batch(
        self, queries: list[str], tradeoffs: list[Tradeoff]
    ) -> list[Decision | BaseException]:
        out: list[Decision | BaseException] = []
        lams: dict[int, float] = {}
        for i, tradeoff in enumerate(tradeoffs):
            try:
                lams[i] = self.lam_for(tradeoff)
                out.append(_UNSET)
            except GatewayError as exc:
                out.append(exc)
        todo = list(lams)
        if not todo:
            return out
        try:
            estimates = self.router.predict([queries[i] for i in todo])
            for j, i in enumerate(todo):
                out[i] = _row(estimates, j).decisions(lams[i])[0]
            return out
        except Exception as exc:
            if len(todo) == 1:
                out[todo[0]] = exc
                return out
        # One bad query must not fail its batch-mates: route each alone.
        for i in todo:
            try:
                out[i] = self.router.predict([queries[i]]).decisions(lams[i])[0]
            except Exception as exc:
                out[i] = exc
        return out


_UNSET = RuntimeError("not routed")  # a placeholder every path overwrites


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
