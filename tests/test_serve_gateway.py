"""The gateway, driven by the official `openai` client against fake upstreams on 127.0.0.1.

The router is a `single` router that always picks `small`, so the fallback chain is fixed:
small -> medium -> large. Each upstream failure mode gets the answer the gateway contract names.
"""

from __future__ import annotations

import socket
import time

import openai
import pytest

from factories import toy_dataset
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.testing import GatewayServer, logged, pool_at, serving
from trouter.store import DecisionLog, Store
from trouter.testing import Drop, FakeOpenAI, Hang, Malformed, Reply, Status

KEY = "sk-client-test-key"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content=f"{req.model} answers {req.last_user}")) as server:
        yield server


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(f"sqlite:///{tmp_path_factory.mktemp('gw') / 'log.sqlite'}")


@pytest.fixture(scope="module")
def gateway(router, fake, store):
    config = GatewayConfig(api_keys=(KEY,), deadline_s=5.0)
    with serving(router, fake.url, store, config, timeout_s=0.5) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_script(fake):
    fake._script.clear()
    yield
    fake._script.clear()


def client(gateway, **kw):
    return openai.OpenAI(base_url=gateway.url, api_key=KEY, max_retries=0, **kw)


def trouter_headers(raw):
    return {k: v for k, v in raw.headers.items() if k.startswith("x-trouter-")}


def test_routes_and_answers_with_explaining_headers(gateway, fake, store):
    raw = client(gateway).chat.completions.with_raw_response.create(model="trouter", messages=HELLO)
    out = raw.parse()
    assert out.choices[0].message.content == "small-id answers hello there"
    h = trouter_headers(raw)
    assert h["x-trouter-model"] == h["x-trouter-routed-model"] == "small"
    assert float(h["x-trouter-predicted-quality"]) > 0
    assert float(h["x-trouter-predicted-cost"]) > 0
    assert float(h["x-trouter-overhead-ms"]) >= 0
    assert h["x-trouter-fallbacks"] == "0"
    row = logged(store, h["x-trouter-request-id"])
    assert (row.chosen_model, row.final_model, row.status, row.http_status) == (
        "small",
        "small",
        "ok",
        200,
    )
    assert (row.tokens_in, row.tokens_out) == (out.usage.prompt_tokens, out.usage.completion_tokens)
    assert row.cost == pytest.approx(router_pool_cost("small", row.tokens_in, row.tokens_out))
    assert row.query == "hello there" and row.chain == ["small", "medium", "large"]


def router_pool_cost(model, t_in, t_out):
    from factories import TOY_PRICES

    p_in, p_out = TOY_PRICES[model]
    return (t_in * p_in + t_out * p_out) / 1e6


def test_a_pool_model_name_bypasses_routing(gateway, fake):
    raw = client(gateway).chat.completions.with_raw_response.create(model="large", messages=HELLO)
    assert raw.parse().choices[0].message.content.startswith("large-id")
    h = trouter_headers(raw)
    assert h["x-trouter-model"] == "large" and "x-trouter-routed-model" not in h
    assert h["x-trouter-overhead-ms"] == "0.000"


def test_body_passes_through_untouched_but_for_the_model_id(gateway, fake):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "add",
                "parameters": {"type": "object", "properties": {"a": {"type": "number"}}},
            },
        }
    ]
    fake.script(
        Reply(
            tool_calls=[
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 1}'},
                }
            ]
        )
    )
    out = client(gateway).chat.completions.create(
        model="trouter",
        messages=HELLO,
        tools=tools,
        tool_choice="auto",
        response_format={"type": "json_object"},
        temperature=0.25,
        extra_body={"vendor_field": {"nested": [1, 2.5, None]}},
    )
    assert out.choices[0].message.tool_calls[0].function.name == "add"
    sent = fake.completions[-1].body
    assert sent == {
        "model": "small-id",
        "messages": HELLO,
        "tools": tools,
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "temperature": 0.25,
        "vendor_field": {"nested": [1, 2.5, None]},
    }
    assert "authorization" not in fake.completions[-1].headers  # the client's key stays here


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Status(500), "server"),
        (Status(503), "server"),
        (Status(429, retry_after=0.01), "rate_limit"),
        (Status(401), "auth"),
        (Status(404), "not_found"),
        (Hang(3.0), "timeout"),
        (Drop(), "connection"),
        (Malformed(), "malformed"),
    ],
)
def test_upstream_failures_fall_back_to_the_next_model(gateway, fake, store, failure, kind):
    fake.script(failure, model="small-id")
    raw = client(gateway).chat.completions.with_raw_response.create(model="trouter", messages=HELLO)
    assert raw.parse().choices[0].message.content.startswith("medium-id")
    h = trouter_headers(raw)
    assert (h["x-trouter-model"], h["x-trouter-routed-model"], h["x-trouter-fallbacks"]) == (
        "medium",
        "small",
        "1",
    )
    row = logged(store, h["x-trouter-request-id"])
    assert row.final_model == "medium" and row.fallbacks == 1
    assert row.attempts[0]["model"] == "small" and row.attempts[0]["kind"] == kind


def test_a_refused_connection_falls_back(router, fake, store, closed_port):
    pool = pool_at(
        router.pool_,
        {"small": f"http://127.0.0.1:{closed_port}/v1", "medium": fake.url, "large": fake.url},
    )
    with GatewayServer(create_app(router, pool, GatewayConfig(), store)) as gw:
        raw = openai.OpenAI(
            base_url=gw.url, api_key="x", max_retries=0
        ).chat.completions.with_raw_response.create(model="trouter", messages=HELLO)
    assert trouter_headers(raw)["x-trouter-model"] == "medium"
    assert logged(store, raw.headers["x-trouter-request-id"]).attempts[0]["kind"] == "connection"


def test_a_client_error_is_returned_as_is_without_fallback(gateway, fake):
    fake.script(Status(400, message="max_tokens is too large"), model="small-id")
    before = len(fake.completions)
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway).chat.completions.create(model="trouter", messages=HELLO)
    assert "max_tokens is too large" in str(err.value)
    assert err.value.response.headers["x-trouter-fallbacks"] == "0"
    assert len(fake.completions) == before + 1


def test_every_model_failing_is_a_502_naming_each_failure(gateway, fake, store):
    fake.script(Status(500), Status(502), Drop())
    with pytest.raises(openai.APIStatusError) as err:
        client(gateway).chat.completions.create(model="trouter", messages=HELLO)
    assert err.value.status_code == 502
    body = err.value.body
    assert body["type"] == "upstream_error" and body["code"] == "upstream_unavailable"
    for model in ("small", "medium", "large"):
        assert model in body["message"]
    row = logged(store, err.value.response.headers["x-trouter-request-id"])
    assert row.status == "error" and row.http_status == 502 and row.fallbacks == 3


def test_every_model_rate_limited_is_a_429_with_the_shortest_retry_after(gateway, fake):
    fake.script(Status(429, retry_after=7), Status(429, retry_after=2), Status(429))
    with pytest.raises(openai.RateLimitError) as err:
        client(gateway).chat.completions.create(model="trouter", messages=HELLO)
    assert err.value.response.headers["retry-after"] == "2"


def test_the_total_deadline_bounds_all_attempts(router, fake, store):
    pool = pool_at(router.pool_, fake.url, timeout_s=0.4)
    app = create_app(router, pool, GatewayConfig(deadline_s=0.6), store)
    fake.script(Hang(3.0), Hang(3.0), Hang(3.0))
    with GatewayServer(app) as gw:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as err:
            openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0).chat.completions.create(
                model="trouter", messages=HELLO
            )
        assert time.monotonic() - started < 1.5
    assert err.value.status_code == 504 and err.value.body["code"] == "upstream_timeout"


# ---------------------------------------------------------------------------------- streams


def test_streams_chunks_and_hides_the_usage_chunk_it_asked_for(gateway, fake, store):
    fake.script(Reply(content="one two three", chunk_delay=0.01))
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="trouter", messages=HELLO, stream=True
    )
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "one two three"
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert fake.completions[-1].body["stream_options"] == {"include_usage": True}
    row = logged(store, raw.headers["x-trouter-request-id"])
    assert row.stream and row.status == "ok" and row.tokens_out == 3 and row.cost > 0


async def test_async_streaming_client_that_asks_for_usage_gets_it(gateway, fake):
    c = openai.AsyncOpenAI(base_url=gateway.url, api_key=KEY, max_retries=0)
    stream = await c.chat.completions.create(
        model="trouter:cost", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    await c.close()


async def test_async_client_non_streaming(gateway):
    async with openai.AsyncOpenAI(base_url=gateway.url, api_key=KEY, max_retries=0) as c:
        out = await c.chat.completions.create(model="trouter:lambda=200", messages=HELLO)
    assert out.choices[0].message.content == "small-id answers hello there"


@pytest.mark.parametrize(
    "failure", [Status(500), Status(429), Drop(), Hang(3.0), Reply(drop_after_chunks=0)]
)
def test_a_stream_failing_before_its_first_byte_falls_back(gateway, fake, failure):
    fake.script(failure, model="small-id")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="trouter", messages=HELLO, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "medium-id answers hello there"
    assert trouter_headers(raw)["x-trouter-fallbacks"] == "1"


def test_a_stream_failing_mid_way_ends_with_an_error_event(gateway, fake, store):
    fake.script(Reply(content="a b c d e f", drop_after_chunks=3), model="small-id")
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="trouter", messages=HELLO, stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as err:
        for chunk in raw.parse():
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "a ", "b "]
    assert "failed mid-stream" in str(err.value)
    row = logged(store, raw.headers["x-trouter-request-id"])
    assert row.status == "error" and row.final_model == "small" and row.http_status == 502


def test_a_client_leaving_mid_stream_is_logged_as_client_closed(gateway, fake, store):
    import httpx

    fake.script(Reply(content="w " * 50, chunk_delay=0.05), model="small-id")
    body = {"model": "trouter", "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {KEY}"}
    with (
        httpx.Client(base_url=gateway.url) as c,
        c.stream("POST", "/chat/completions", json=body, headers=headers) as r,
    ):
        next(r.iter_raw())
        request_id = r.headers["x-trouter-request-id"]
    until = time.monotonic() + 5
    while time.monotonic() < until:
        with store.session() as s:
            row = s.query(DecisionLog).filter_by(request_id=request_id).one_or_none()
        if row is not None:
            break
        time.sleep(0.05)
    assert row is not None and row.status == "client_closed" and row.http_status == 499


def test_without_stream_usage_the_body_is_forwarded_as_sent(router, fake, store):
    app = create_app(
        router, pool_at(router.pool_, fake.url), GatewayConfig(stream_usage=False), store
    )
    with GatewayServer(app) as gw:
        c = openai.OpenAI(base_url=gw.url, api_key="x", max_retries=0)
        raw = c.chat.completions.with_raw_response.create(
            model="trouter", messages=HELLO, stream=True
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    assert "stream_options" not in fake.completions[-1].body
    row = logged(store, raw.headers["x-trouter-request-id"])
    assert row.status == "ok" and (row.tokens_in, row.tokens_out, row.cost) == (0, 0, 0.0)
