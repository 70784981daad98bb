"""A model's concurrency slot is taken only when it leaves an attempt enough time.

The same least time as a paced turn (`MIN_TIME_LEFT_S`, or `MIN_TIME_LEFT_SHARE` of a short
deadline): a slot taken with less is used up by a request that cannot reach the upstream in
time, so it is turned away instead (a 429 of that model) and the slot stays free.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
"""

from __future__ import annotations

import time

import httpx
import pytest

from factories import toy_dataset
from trouter.pool import ModelSpec, Pool
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.admission import Admission
from trouter.serve.testing import GatewayServer, logged, pool_at
from trouter.store import Store
from trouter.testing import FakeOpenAI, Hang, Reply

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


def test_a_free_slot_too_close_to_the_deadline_is_not_taken(router, tmp_path):
    # A 2 s deadline gives every attempt at least 0.2 s. small hangs until its own timeout
    # (1.85 s), so the request comes to medium with less than 0.15 s left. medium has a free slot
    # of its max_concurrency and no pacing; its upstream needs 0.5 s before its first byte.
    # Taking the slot would send medium a request (paid) that times out unanswered.
    store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
    with FakeOpenAI(lambda req: Reply(content="ok", delay=0.5)) as fake:
        fake.script(Hang(5.0), model="small-id")
        pool = pool_at(router.pool_, fake.url, timeout_s=5.0)
        pool = Pool.of(
            s.model_copy(update={"timeout_s": 1.85})
            if s.name == "small"
            else s.model_copy(update={"max_concurrency": 1})
            if s.name == "medium"
            else s
            for s in pool
        )
        config = GatewayConfig(deadline_s=2.0, max_attempts=2)  # small, then medium
        with GatewayServer(create_app(router, pool, config, store)) as gw:
            late = httpx.post(
                f"{gw.url}/chat/completions",
                json={"model": "trouter", "messages": HELLO},
                timeout=30,
            )
            assert late.status_code == 504
            assert [r.model for r in fake.completions] == ["small-id"]  # medium never called
            row = logged(store, late.headers["x-trouter-request-id"])
            assert row.attempts[0] == {"model": "small", "kind": "timeout", "status": None}
            # medium is tried when any time is left, and then turned away as a 429 of its own
            assert all(a["status"] == 429 for a in row.attempts[1:])
            lane = gw.app.state.gateway.forwarder.admission.lanes["medium"]
            assert not lane.semaphore.locked()  # the slot is still free for others


async def test_a_slot_is_taken_only_with_the_least_time_a_paced_turn_needs():
    admission = Admission.for_pool(Pool.of([ModelSpec(name="m", max_concurrency=1)]))
    lane = admission.lanes["m"]
    assert admission.min_time_left_s == 1.0  # the gateway's default deadline
    refused = await admission.enter("m", time.monotonic() + 0.5)  # a free slot, 0.5 s left
    assert refused is not None and not refused.client_left
    assert "before the deadline" in refused.message and "at least 1 s" in refused.message
    assert not lane.semaphore.locked()  # nothing taken
    assert await admission.enter("m", time.monotonic() + 30) is None
    admission.leave("m")
