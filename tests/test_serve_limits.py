"""The gateway honours each pool model's `max_concurrency` and `requests_per_minute`.

Requests wait for a free slot of their model within their deadline; a stream holds its slot
until it ends; a model whose pacing would start a request after the deadline is skipped for the
next one in the chain, and a request with nowhere else to go is answered 429.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from factories import toy_dataset
from trouter.pool import BATCH_CONCURRENCY, ModelSpec, Pool
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.admission import Admission
from trouter.serve.testing import GatewayServer, pool_at
from trouter.store import DecisionLog, Store
from trouter.testing import FakeOpenAI, Reply

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


class Arrivals:
    """The fake's handler: answers after `delay`, noting when each request arrived."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.times: list[tuple[str, float]] = []
        self.lock = threading.Lock()

    def __call__(self, req):
        with self.lock:
            self.times.append((req.model, time.monotonic()))
        return Reply(content="ok", delay=self.delay)

    def of(self, model: str) -> list[float]:
        return sorted(t for m, t in self.times if m == model)


def served(router, fake, tmp_path, deadline: float = 10.0, **limits):
    """A gateway whose `small` has `limits` (max_concurrency, requests_per_minute)."""
    pool = pool_at(router.pool_, fake.url, timeout_s=5.0)
    pool = pool.of(s.model_copy(update=limits) if s.name == "small" else s for s in pool)
    store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
    return GatewayServer(create_app(router, pool, GatewayConfig(deadline_s=deadline), store))


def ask(gw, model: str = "small", **body) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/chat/completions", json={"model": model, "messages": HELLO, **body}, timeout=30
    )


def test_at_most_max_concurrency_requests_are_in_flight(router, tmp_path):
    arrivals = Arrivals(delay=0.2)
    with (
        FakeOpenAI(arrivals) as fake,
        served(router, fake, tmp_path, max_concurrency=2) as gw,
        ThreadPoolExecutor(6) as pool,
    ):
        answers = list(pool.map(lambda _: ask(gw), range(6)))
    assert all(r.status_code == 200 for r in answers)
    times = arrivals.of("small-id")
    # Two at a time: the third starts only once one of the first two has answered.
    assert times[2] - times[0] >= 0.15 and times[4] - times[2] >= 0.15


def test_requests_per_minute_paces_request_starts(router, tmp_path):
    arrivals = Arrivals()
    with (
        FakeOpenAI(arrivals) as fake,
        served(router, fake, tmp_path, requests_per_minute=300) as gw,  # one per 0.2 s
        ThreadPoolExecutor(4) as pool,
    ):
        answers = list(pool.map(lambda _: ask(gw), range(4)))
    assert all(r.status_code == 200 for r in answers)
    times = arrivals.of("small-id")
    assert all(b - a >= 0.15 for a, b in itertools.pairwise(times))


def test_a_model_paced_past_the_deadline_falls_back_or_is_a_429(router, tmp_path):
    with (
        FakeOpenAI(Arrivals()) as fake,
        served(router, fake, tmp_path, deadline=2.0, requests_per_minute=1) as gw,
    ):
        assert ask(gw, "trouter").headers["x-trouter-model"] == "small"
        started = time.monotonic()
        routed = ask(gw, "trouter")  # small's next turn is a minute away: medium answers now
        assert routed.status_code == 200 and time.monotonic() - started < 1.0
        assert routed.headers["x-trouter-model"] == "medium"
        assert routed.headers["x-trouter-fallbacks"] == "1"
        named = ask(gw, "small")  # nowhere else to go
    assert named.status_code == 429
    assert "requests_per_minute" in named.json()["error"]["message"]
    assert 50 <= int(named.headers["retry-after"]) <= 60


def test_a_model_with_both_limits_turns_away_at_once_a_request_its_pacing_cannot_start(
    router, tmp_path
):
    # small: one request at a time, one start per 1.5 s; the deadline is 2.2 s. A starts at
    # once; B takes the next turn (1.5 s on) and holds small's only slot while it waits for it;
    # C's earliest turn is 3 s on, past its deadline, which is known at once: C goes straight
    # to medium instead of waiting for B's slot to learn it, with less time left to fall back.
    arrivals = Arrivals()
    with (
        FakeOpenAI(arrivals) as fake,
        served(
            router, fake, tmp_path, deadline=2.2, max_concurrency=1, requests_per_minute=40
        ) as gw,
        ThreadPoolExecutor(2) as pool,
    ):
        lane = gw.app.state.gateway.forwarder.admission.lanes["small"]
        assert ask(gw, "trouter").headers["x-trouter-model"] == "small"  # A
        b = pool.submit(ask, gw, "trouter")
        until = time.monotonic() + 10
        while lane.next_start - time.monotonic() < 2.0:  # B has taken the next turn
            assert time.monotonic() < until, "B never reached small's pacing"
            time.sleep(0.01)
        c = ask(gw, "trouter")
        assert not b.done()  # B is still waiting for its turn
        assert (c.status_code, c.headers["x-trouter-model"]) == (200, "medium")
        assert b.result().headers["x-trouter-model"] == "small"
    assert [model for model, _ in arrivals.times] == ["small-id", "medium-id", "small-id"]


def test_a_client_that_leaves_while_waiting_for_a_slot_gives_up_its_turn(router, tmp_path):
    # small takes one request at a time and A holds it for 0.8 s. Five clients give up after
    # 0.2 s, while waiting for that slot: their requests must not take their turns later (an
    # upstream call each, paid, that nobody reads), nor make the next client wait behind them.
    arrivals = Arrivals(delay=0.8)
    hello = {"model": "small", "messages": HELLO}
    with (
        FakeOpenAI(arrivals) as fake,
        served(router, fake, tmp_path, deadline=10.0, max_concurrency=1) as gw,
        ThreadPoolExecutor(6) as pool,
    ):
        a = pool.submit(ask, gw)
        until = time.monotonic() + 10
        while not arrivals.times:  # A holds the slot
            assert time.monotonic() < until, "A never reached the upstream"
            time.sleep(0.01)

        def leave_early(_: int) -> None:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{gw.url}/chat/completions", json=hello, timeout=0.2)

        list(pool.map(leave_early, range(5)))
        assert a.result().status_code == 200
        b = ask(gw)
        assert b.status_code == 200
    assert len(arrivals.times) == 2  # A and B only
    with Store(f"sqlite:///{tmp_path / 'log.sqlite'}").session() as s:
        rows = s.query(DecisionLog).all()
    left = [r for r in rows if r.status == "client_closed"]
    assert len(rows) == 7 and len(left) == 5
    assert all(r.http_status == 499 and r.cost == 0 and "left" in r.error for r in left)


async def test_a_client_leaving_a_paced_wait_frees_the_slot_but_not_the_turn():
    admission = Admission.for_pool(
        Pool.of([ModelSpec(name="m", max_concurrency=1, requests_per_minute=60)])
    )
    lane, deadline = admission.lanes["m"], time.monotonic() + 30
    assert await admission.enter("m", deadline) is None  # starts now; the next turn in 1 s
    admission.leave("m")
    gone = asyncio.Event()
    waiting = asyncio.create_task(admission.enter("m", deadline, gone.wait))
    await asyncio.sleep(0.05)
    assert lane.semaphore.locked()  # held while it waits for its turn
    gone.set()
    refused = await waiting
    assert refused is not None and refused.client_left and not lane.semaphore.locked()
    # The turn it gave up stays taken: the next request starts one interval later.
    assert lane.next_start - time.monotonic() > 1.5


async def test_a_paced_turn_too_close_to_the_deadline_is_not_taken():
    # One start per 0.5 s; with the gateway's default deadline a turn needs 1 s left to be
    # worth taking (a request starting later could rarely get its first byte before the end).
    admission = Admission.for_pool(Pool.of([ModelSpec(name="m", requests_per_minute=120)]))
    lane = admission.lanes["m"]
    assert await admission.enter("m", time.monotonic() + 30) is None  # the next turn in 0.5 s
    admission.leave("m")
    turn = lane.next_start
    # Its turn would leave it 0.7 s: turned away at once (as past the deadline), and the turn
    # stays free for a request that can use it.
    refused = await admission.enter("m", turn + 0.7)
    assert refused is not None and not refused.client_left and "deadline" in refused.message
    assert refused.retry_after is not None and lane.next_start == turn
    # Nor is a turn that is due now taken with too little time left.
    fresh = Admission.for_pool(Pool.of([ModelSpec(name="n", requests_per_minute=120)]))
    assert await fresh.enter("n", time.monotonic() + 0.5) is not None
    assert fresh.lanes["n"].next_start == 0.0


def test_a_short_deadline_still_uses_its_paced_turns():
    # The minimum is a share of the deadline when that is short: 0.1 x 2 s = 0.2 s here.
    admission = Admission.for_pool(
        Pool.of([ModelSpec(name="m", requests_per_minute=120)]), deadline_s=2.0
    )
    assert admission.min_time_left_s == pytest.approx(0.2)
    paced = Pool.of([ModelSpec(name="m", requests_per_minute=120)])
    assert Admission.for_pool(paced, deadline_s=120.0).min_time_left_s == 1.0


def test_a_stream_holds_its_slot_until_it_ends(router, tmp_path):
    arrivals = Arrivals()
    with (
        FakeOpenAI(arrivals) as fake,
        served(router, fake, tmp_path, deadline=0.5, max_concurrency=1) as gw,
    ):
        fake.script(Reply(content="w " * 10, chunk_delay=0.1))
        body = {"model": "small", "messages": HELLO, "stream": True}
        with httpx.stream("POST", f"{gw.url}/chat/completions", json=body, timeout=10) as r:
            chunks = r.iter_raw()  # held: a dropped iterator closes the response
            next(chunks)
            busy = ask(gw)  # waits for small's one slot until its deadline
            assert busy.status_code == 429
            assert "no free slot" in busy.json()["error"]["message"]
            assert b"".join(chunks).endswith(b"data: [DONE]\n\n")
        assert ask(gw).status_code == 200  # the ended stream gave its slot back


def test_a_client_leaving_a_stream_gives_its_slot_back(router, tmp_path):
    with (
        FakeOpenAI(Arrivals()) as fake,
        served(router, fake, tmp_path, deadline=2.0, max_concurrency=1) as gw,
    ):
        fake.script(Reply(content="w " * 50, chunk_delay=0.05))
        body = {"model": "small", "messages": HELLO, "stream": True}
        with httpx.stream("POST", f"{gw.url}/chat/completions", json=body, timeout=10) as r:
            next(r.iter_raw())
        assert ask(gw).status_code == 200


async def test_a_model_without_limits_is_not_held_back_but_batch_work_keeps_a_default():
    # A gateway serves its clients: with no max_concurrency in the pool it adds no cap of its
    # own (a default of 16 in flight per model throttled it); synthesis and labelling keep one.
    pool = Pool.of(
        [
            ModelSpec(name="free"),
            ModelSpec(name="capped", max_concurrency=3),
            ModelSpec(name="paced", requests_per_minute=60),
        ]
    )
    lanes = Admission.for_pool(pool).lanes
    assert set(lanes) == {"capped", "paced"}
    assert lanes["paced"].interval == 1.0
    assert pool["free"].batch_concurrency() == BATCH_CONCURRENCY
    assert pool["capped"].batch_concurrency() == 3
