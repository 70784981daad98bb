"""The LLM client against a real OpenAI-compatible server on 127.0.0.1 that misbehaves on cue."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from trouter.errors import ConfigError
from trouter.llm import (
    BudgetExceeded,
    ErrorKind,
    LLMCallError,
    LLMClient,
    MissingKeyError,
    RetryPolicy,
    classify,
    retry_after,
)
from trouter.llm.endpoint import resolve_endpoint
from trouter.pool import ModelSpec
from trouter.store import LLMCacheEntry, LLMCall, Store
from trouter.testing import Drop, FakeOpenAI, Hang, Malformed, Reply, Status

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
HI = [{"role": "user", "content": "say hi"}]


@pytest.fixture
def server():
    with FakeOpenAI(lambda req: Reply(content=f"hi from {req.model}")) as s:
        yield s


@pytest.fixture
def store():
    s = Store("sqlite://")
    yield s
    s.close()


def spec_for(server: FakeOpenAI, **kw) -> ModelSpec:
    base = dict(name="gen", model="fake-model", base_url=server.url, timeout_s=0.5)
    base.update(
        input_price=kw.pop("input_price", 1.0), output_price=kw.pop("output_price", 2.0), **kw
    )
    return ModelSpec(**base)


def rows(store: Store) -> list[LLMCall]:
    with store.session() as s:
        return list(s.scalars(select(LLMCall).order_by(LLMCall.id)))


async def test_answers_with_usage_and_cost_from_the_pool_formula(server, store):
    spec = spec_for(server)
    async with LLMClient(store, run="r1") as client:
        done = await client.chat(spec, HI, temperature=0.2, purpose="demo")
    assert done.text == "hi from fake-model"
    assert (done.tokens_in, done.tokens_out) == (2, 3)  # the fake counts whitespace tokens
    assert done.cost == pytest.approx(spec.call_cost(2, 3))
    assert not done.cached and done.attempts == 1
    assert server.completions[0].body["temperature"] == 0.2
    [row] = rows(store)
    assert (row.run, row.purpose, row.status, row.cached) == ("r1", "demo", "ok", False)
    assert row.cost == pytest.approx(done.cost)
    assert client.usage.cost_usd == pytest.approx(done.cost)


async def test_a_repeated_request_is_served_from_the_store_even_by_a_new_client(server, store):
    spec = spec_for(server)
    async with LLMClient(store) as first:
        paid = await first.chat(spec, HI, max_tokens=5)
    async with LLMClient(store) as rerun:
        again = await rerun.chat(spec, HI, max_tokens=5)
        other = await rerun.chat(spec, HI, max_tokens=6)  # any parameter changes the key
    assert len(server.completions) == 2
    assert again.cached and again.text == paid.text and again.cost == pytest.approx(paid.cost)
    assert not other.cached
    assert rerun.usage.cache_hits == 1 and rerun.usage.cost_usd == pytest.approx(other.cost)
    assert rerun.usage.saved_usd == pytest.approx(paid.cost)


async def test_concurrent_identical_requests_are_sent_once(server, store):
    server.handler = lambda req: Reply(content="slow", delay=0.1)
    spec = spec_for(server)
    async with LLMClient(store) as client:
        done = await asyncio.gather(*(client.chat(spec, HI) for _ in range(5)))
    assert len(server.completions) == 1
    assert sum(not d.cached for d in done) == 1
    assert client.usage.cache_hits == 4


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_every_transient_fault_is_retried_until_an_answer(server, store, stream):
    server.script(
        Status(429, retry_after=0.2), Status(500), Malformed(), Hang(3.0), Drop(), Status(503)
    )
    spec = spec_for(server, timeout_s=0.3)
    retry = RetryPolicy(max_attempts=7, base_delay=0.01, max_delay=0.05)
    started = time.monotonic()
    async with LLMClient(store, retry=retry, stream=stream) as client:
        done = await client.chat(spec, HI)
    assert done.text == "hi from fake-model"
    assert done.attempts == 7
    assert time.monotonic() - started >= 0.2 + 0.3  # waited the Retry-After and the timeout
    assert client.usage.retries == 6 and client.usage.failures == 0
    [row] = rows(store)
    for kind in ("rate_limit", "server", "malformed", "timeout", "connection"):
        assert kind in row.error


async def test_a_stream_dropped_midway_or_cut_short_is_retried(server, store):
    server.script(
        Reply(content="a b c d", drop_after_chunks=2), Reply(content="x y", drop_after_chunks=4)
    )
    async with LLMClient(store, retry=FAST, stream=True) as client:
        done = await client.chat(spec_for(server), HI)
    assert done.text == "hi from fake-model" and done.attempts == 3
    assert done.tokens_out == 3  # from the stream's usage chunk


async def test_retries_exhausted_raise_a_clear_error_and_cache_nothing(server, store):
    server.script(*[Status(500, message="upstream exploded")] * 4)
    async with LLMClient(store, retry=FAST) as client:
        with pytest.raises(LLMCallError) as info:
            await client.chat(spec_for(server), HI)
    err = info.value
    assert err.kind is ErrorKind.SERVER and err.attempts == 4 and err.model == "gen"
    assert "'gen'" in str(err) and server.url in str(err) and "after 4 attempts" in str(err)
    assert client.usage.failures == 1
    assert [r.status for r in rows(store)] == ["error"]
    with store.session() as s:
        assert s.query(LLMCacheEntry).count() == 0


async def test_a_refused_request_is_not_retried(server, store):
    server.script(Status(400, message="bad parameter"), Status(401))
    async with LLMClient(store, retry=FAST) as client:
        with pytest.raises(LLMCallError) as bad:
            await client.chat(spec_for(server), HI)
        with pytest.raises(LLMCallError) as auth:
            await client.chat(spec_for(server), [{"role": "user", "content": "other"}])
    assert bad.value.kind is ErrorKind.BAD_REQUEST and bad.value.attempts == 1
    assert auth.value.kind is ErrorKind.AUTH and "api_key_env" in str(auth.value)
    assert len(server.completions) == 2


async def test_a_missing_key_names_the_model_and_variable_before_any_request(
    server, store, monkeypatch
):
    monkeypatch.delenv("TROUTER_TEST_KEY", raising=False)
    spec = spec_for(server, api_key_env="TROUTER_TEST_KEY")
    async with LLMClient(store) as client:
        with pytest.raises(MissingKeyError, match=r"'gen'.*TROUTER_TEST_KEY"):
            await client.chat(spec, HI)
    assert server.requests == []
    monkeypatch.setenv("TROUTER_TEST_KEY", "sk-test")
    server.api_key = "sk-test"
    async with LLMClient(store) as client:
        assert (await client.chat(spec, HI)).text


def test_a_model_with_neither_base_url_nor_key_is_refused_before_any_call():
    # It would go to OpenAI's API with no key: every call refused (the gateway answered 502s).
    with pytest.raises(ConfigError, match="'bare' has no endpoint"):
        resolve_endpoint(ModelSpec(name="bare"))


async def test_the_budget_stops_before_a_call_that_could_pass_the_cap(server, store):
    spec = spec_for(server, input_price=0.0, output_price=1000.0)  # $0.001 per output token
    async with LLMClient(store, run="job", budget_usd=0.05) as client:
        await client.chat(spec, HI, max_tokens=20)  # worst case $0.02: allowed
        with pytest.raises(BudgetExceeded, match=r"budget cap \$0.05"):
            await client.chat(spec, [{"role": "user", "content": "more"}], max_tokens=100)
        assert (await client.chat(spec, HI, max_tokens=20)).cached  # hits are free
    assert len(server.completions) == 1
    # A resumed run of the same job starts with what the job already spent.
    resumed = LLMClient(store, run="job", budget_usd=0.05)
    assert resumed.budget.spent == pytest.approx(spec.call_cost(2, 3))


async def test_concurrency_per_model_is_bounded(server, store):
    server.handler = lambda req: Reply(content="ok", delay=0.1)
    spec = spec_for(server, max_concurrency=2)
    started = time.monotonic()
    async with LLMClient(store) as client:
        await asyncio.gather(
            *(client.chat(spec, [{"role": "user", "content": f"q{i}"}]) for i in range(6))
        )
    assert time.monotonic() - started >= 0.3  # 6 requests, 2 at a time, 0.1 s each


async def test_requests_per_minute_paces_request_starts(server, store):
    spec = spec_for(server, requests_per_minute=600)  # one start per 0.1 s
    started = time.monotonic()
    async with LLMClient(store) as client:
        await asyncio.gather(
            *(client.chat(spec, [{"role": "user", "content": f"q{i}"}]) for i in range(5))
        )
    assert time.monotonic() - started >= 0.4


async def test_stream_chunks_relays_a_stream_and_accounts_its_usage(server, store):
    server.script(Status(503))  # retried: nothing was sent to the caller yet
    body = {"messages": HI, "stream_options": {"include_usage": True}}
    async with LLMClient(store, retry=FAST) as client:
        chunks = [c async for c in client.stream_chunks(spec_for(server), body)]
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "hi from fake-model"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert client.usage.tokens_out == 3 and client.usage.retries == 1


async def test_stream_chunks_does_not_retry_after_the_first_chunk(server, store):
    server.script(Reply(content="a b c d", drop_after_chunks=2))
    async with LLMClient(store, retry=FAST) as client:
        seen = []
        with pytest.raises(LLMCallError) as info:
            async for chunk in client.stream_chunks(spec_for(server), {"messages": HI}):
                seen.append(chunk)
    assert len(seen) == 2 and info.value.kind is ErrorKind.CONNECTION
    assert len(server.completions) == 1


def test_error_classification_is_shared_with_the_gateway():
    assert ErrorKind.RATE_LIMIT.retryable and ErrorKind.RATE_LIMIT.fallback
    assert not ErrorKind.AUTH.retryable and ErrorKind.AUTH.fallback
    assert not ErrorKind.BAD_REQUEST.fallback
    assert classify(ValueError("a bug")) is None
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({}) is None


def test_creating_a_client_opens_nothing_and_reads_no_key(monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    client = LLMClient()  # no store, no loop, no key needed yet
    assert client.usage.calls == 0


async def test_a_call_that_fits_once_calls_in_flight_settle_waits_instead_of_failing(server, store):
    server.handler = lambda req: Reply(content="ok", delay=0.1)
    spec = spec_for(server, input_price=0.0, output_price=1000.0)  # worst case $0.03 each
    async with LLMClient(store, budget_usd=0.05) as client:
        done = await asyncio.gather(
            *(
                client.chat(spec, [{"role": "user", "content": f"q{i}"}], max_tokens=30)
                for i in range(3)
            )
        )
    assert all(d.text == "ok" for d in done)  # each really cost $0.001
    assert client.budget.spent == pytest.approx(3 * spec.call_cost(1, 1))
