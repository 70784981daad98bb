"""Spill-over: a request waits for a full model's slot at most `max_queue_s` (the pool model's,
else the gateway's `--max-queue`), then moves on to the next model of its chain with the time
it has left; the wait counts as a 429 of the full model. The last model of a chain has nowhere
to send it, so there a request waits up to its deadline as before.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
`small` is served by its own fake whose answers are held on an event, so the test decides when
its one slot frees; the other models answer at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from factories import toy_dataset
from trouter.pool import ModelSpec, Pool
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.admission import Admission
from trouter.serve.testing import GatewayServer, logged, pool_at
from trouter.store import Store
from trouter.testing import FakeOpenAI, FakeRequest, Reply

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@dataclass
class Held:
    """A fake upstream's handler that answers only once `release` is set (it serves one
    model alone, so blocking its loop holds nothing else up)."""

    arrived: threading.Event
    release: threading.Event

    def __call__(self, req: FakeRequest) -> Reply:
        self.arrived.set()
        self.release.wait(20)
        return Reply(content="held")


@dataclass
class Setup:
    gw: GatewayServer
    store: Store
    small: Held
    others: FakeOpenAI

    def ask(self, model: str, timeout: float = 30.0) -> httpx.Response:
        body = {"model": model, "messages": HELLO}
        return httpx.post(f"{self.gw.url}/chat/completions", json=body, timeout=timeout)


@contextmanager
def gateway(
    router, tmp_path, config: GatewayConfig, **small_limits: float | None
) -> Iterator[Setup]:
    """A gateway whose `small` (one slot, and `small_limits`) answers only when released."""
    held = Held(threading.Event(), threading.Event())
    with FakeOpenAI(held) as slow, FakeOpenAI(lambda req: Reply(content="fast")) as fast:
        urls = {"small": slow.url, "medium": fast.url, "large": fast.url}
        pool = pool_at(router.pool_, urls, timeout_s=20.0)
        limits = {"max_concurrency": 1, **small_limits}
        pool = Pool.of(s.model_copy(update=limits) if s.name == "small" else s for s in pool)
        store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
        try:
            with GatewayServer(create_app(router, pool, config, store)) as gw:
                yield Setup(gw, store, held, fast)
        finally:
            held.release.set()  # never leave the slow fake's loop blocked


def test_a_request_moves_on_when_its_model_stays_full_past_max_queue_s(router, tmp_path):
    with (
        gateway(router, tmp_path, GatewayConfig(deadline_s=30.0), max_queue_s=0.2) as s,
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(s.ask, "trouter")
        assert s.small.arrived.wait(10)  # small's one slot is held until released
        # A client that gives up long before the deadline still gets an answer: the request
        # waited for small 0.2 s, not (nearly) its whole deadline, before trying medium.
        spilled = s.ask("trouter", timeout=10.0)
        assert spilled.status_code == 200
        assert spilled.json()["choices"][0]["message"]["content"] == "fast"
        assert spilled.headers["x-trouter-model"] == "medium"
        assert spilled.headers["x-trouter-routed-model"] == "small"
        assert spilled.headers["x-trouter-fallbacks"] == "1"
        metrics = httpx.get(f"{s.gw.root}/metrics").text
        s.small.release.set()
        assert first.result().headers["x-trouter-model"] == "small"
    row = logged(s.store, spilled.headers["x-trouter-request-id"])
    assert (row.chosen_model, row.final_model, row.fallbacks) == ("small", "medium", 1)
    assert row.attempts == [{"model": "small", "kind": "rate_limit", "status": 429}]
    # Counted as small's 429 and a fallback past small, on the existing counters.
    assert 'trouter_upstream_errors_total{kind="rate_limit",model="small"} 1.0' in metrics
    assert 'trouter_fallbacks_total{model="small"} 1.0' in metrics
    assert [r.model for r in s.others.completions] == ["medium-id"]


def test_a_stream_moves_on_as_well(router, tmp_path):
    with (
        gateway(router, tmp_path, GatewayConfig(deadline_s=30.0), max_queue_s=0.2) as s,
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(s.ask, "trouter")
        assert s.small.arrived.wait(10)
        body = {"model": "trouter", "messages": HELLO, "stream": True}
        with httpx.stream("POST", f"{s.gw.url}/chat/completions", json=body, timeout=10) as r:
            assert r.status_code == 200
            assert (r.headers["x-trouter-model"], r.headers["x-trouter-fallbacks"]) == (
                "medium",
                "1",
            )
            assert b"".join(r.iter_raw()).endswith(b"data: [DONE]\n\n")
        s.small.release.set()
        assert first.result().status_code == 200


def test_the_last_model_of_a_chain_waits_up_to_the_deadline(router, tmp_path):
    # Named directly, small is the whole chain: moving on would mean a 429 with nowhere to go.
    with (
        gateway(router, tmp_path, GatewayConfig(deadline_s=10.0), max_queue_s=0.1) as s,
        ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(s.ask, "small")
        assert s.small.arrived.wait(10)
        second = pool.submit(s.ask, "small")
        time.sleep(0.5)  # well past small's max_queue_s; any bound there would have ended it
        assert not second.done()
        s.small.release.set()
        assert first.result().status_code == 200
        assert second.result().status_code == 200
        assert second.result().headers["x-trouter-model"] == "small"


def test_the_gateway_wide_max_queue_holds_for_models_without_their_own(router, tmp_path):
    # --max-queue 0: a full model is passed over at once for the next one.
    with (
        gateway(router, tmp_path, GatewayConfig(deadline_s=30.0, max_queue_s=0.0)) as s,
        ThreadPoolExecutor(1) as pool,
    ):
        first = pool.submit(s.ask, "trouter")
        assert s.small.arrived.wait(10)
        spilled = s.ask("trouter", timeout=10.0)
        s.small.release.set()
        assert first.result().status_code == 200
    assert spilled.headers["x-trouter-model"] == "medium"
    row = logged(s.store, spilled.headers["x-trouter-request-id"])
    assert row.attempts == [{"model": "small", "kind": "rate_limit", "status": 429}]


def test_a_pool_models_max_queue_s_wins_over_the_gateways():
    pool = Pool.of(
        [
            ModelSpec(name="own", max_concurrency=1, max_queue_s=5.0),
            ModelSpec(name="default", max_concurrency=1),
            ModelSpec(name="unlimited", max_queue_s=1.0),  # no lane: it never makes anyone wait
        ]
    )
    assert Admission.for_pool(pool, max_queue_s=0.5).max_queue_s == {"own": 5.0, "default": 0.5}
    assert Admission.for_pool(pool).max_queue_s == {"own": 5.0}


async def test_a_pacing_turn_further_off_than_max_queue_s_is_passed_over_at_once():
    admission = Admission.for_pool(
        Pool.of([ModelSpec(name="m", requests_per_minute=60, max_queue_s=0.5)])
    )
    lane, deadline = admission.lanes["m"], time.monotonic() + 30
    assert await admission.enter("m", deadline, spill=True) is None  # now; the next in 1 s
    admission.leave("m")
    turn = lane.next_start
    refused = await admission.enter("m", deadline, spill=True)
    assert refused is not None and "max_queue_s" in refused.message
    assert refused.retry_after == "1" and not refused.deadline_hit
    assert lane.next_start == turn  # the turn stays free for a request that waits for it
