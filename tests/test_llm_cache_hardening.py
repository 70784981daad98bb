"""The response cache holds answers worth replaying, and its hit counts agree with the log: a
structured reply that never validated leaves the cache (a rerun asks again), one repaired into
a valid reply stays (its rerun is free), and a request shared with an identical one in flight
is counted, in the usage and in the call log, as the cache hit it is."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from trouter.llm import LLMClient, RetryPolicy, Structured, StructuredFailure
from trouter.pool import ModelSpec
from trouter.store import LLMCacheEntry, LLMCall, Store
from trouter.testing import FakeOpenAI, Reply


class Answer(BaseModel):
    answer: int


ASK = [{"role": "user", "content": "2+2?"}]
GOOD = json.dumps({"answer": 4})


@pytest.fixture
def server():
    with FakeOpenAI(lambda req: Reply(content=GOOD)) as s:
        yield s


def client_on(store: Store) -> LLMClient:
    return LLMClient(store, run="t", retry=RetryPolicy(max_attempts=2, base_delay=0.01))


def spec_for(server: FakeOpenAI) -> ModelSpec:
    return ModelSpec(name="gen", model="fake-model", base_url=server.url, timeout_s=1.0)


def cached_entries(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(LLMCacheEntry)) or 0)


async def test_replies_that_never_validate_are_not_replayed_by_the_next_run(server):
    store = Store("sqlite://")
    server.handler = lambda req: Reply(content="Sure! no json here")
    first = client_on(store)
    out = await first.structured(spec_for(server), ASK, Answer, max_attempts=2)
    assert isinstance(out, StructuredFailure)
    assert cached_entries(store) == 0  # nothing to replay...
    with store.session() as s:  # ...but the calls were paid and stay on the books
        assert s.scalar(select(func.count()).select_from(LLMCall)) == 2

    server.handler = lambda req: Reply(content=GOOD)  # the model recovers
    again = client_on(store)
    out = await again.structured(spec_for(server), ASK, Answer, max_attempts=2)
    assert isinstance(out, Structured) and out.value.answer == 4
    assert again.usage.cache_hits == 0 and again.usage.paid_calls == 1


async def test_a_reply_repaired_into_a_valid_one_is_replayed_for_free(server):
    store = Store("sqlite://")
    server.script(Reply(content='{"answer": "four"}'))
    first = client_on(store)
    out = await first.structured(spec_for(server), ASK, Answer)
    assert isinstance(out, Structured) and out.attempts == 2
    requests = len(server.completions)

    again = client_on(store)
    out = await again.structured(spec_for(server), ASK, Answer)
    assert isinstance(out, Structured) and out.value.answer == 4
    assert len(server.completions) == requests and again.usage.cache_hits == 2


async def test_a_request_sharing_an_identical_one_in_flight_is_logged_as_a_cache_hit(server):
    store = Store("sqlite://")
    server.handler = lambda req: Reply(content=GOOD, delay=0.2)
    client = client_on(store)
    seen = []
    client.on_call = seen.append
    spec = spec_for(server)
    await asyncio.gather(*(client.chat(spec, ASK, max_tokens=5) for _ in range(4)))
    await client.aclose()
    assert len(server.completions) == 1
    assert client.usage.cache_hits == 3 and len(seen) == 4
    with store.session() as s:
        logged = s.scalar(select(func.count()).select_from(LLMCall).where(LLMCall.cached))
    assert logged == client.usage.cache_hits
