"""The fake server is itself tested with the official SDK, so other tests can trust it."""

import time

import httpx
import openai
import pytest

from trouter.testing import Drop, FakeOpenAI, Hang, Malformed, Reply, Status


@pytest.fixture
def server():
    with FakeOpenAI(
        lambda req: Reply(content=f"answer to {req.last_user}"), models=("m1", "m2")
    ) as s:
        yield s


def client(server, **kw):
    return openai.OpenAI(base_url=server.url, api_key="test", **kw)


def test_answers_chat_completions_with_usage(server):
    out = client(server).chat.completions.create(
        model="m1", messages=[{"role": "user", "content": "two words"}]
    )
    assert out.choices[0].message.content == "answer to two words"
    assert out.usage.prompt_tokens == 2
    assert out.usage.completion_tokens == 4
    assert server.completions[0].model == "m1"


def test_streams_sse_with_usage_chunk(server):
    stream = client(server).chat.completions.create(
        model="m1",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "answer to hi"
    assert chunks[-1].usage.completion_tokens == 3


def test_lists_models(server):
    assert [m.id for m in client(server).models.list()] == ["m1", "m2"]


def test_scripted_faults_come_first_then_the_handler(server):
    server.script(Status(429, retry_after=0.01), Status(500))
    c = client(server, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    assert (
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .message.content
    )


def test_malformed_hang_and_drop_reach_the_client(server):
    server.script(Malformed(), Hang(2.0), Drop())
    c = client(server, max_retries=0, timeout=0.3)
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces broken JSON as a decode error
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - started < 1.5
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])


def test_scripts_can_target_one_model(server):
    server.script(Status(503), model="m2")
    c = client(server, max_retries=0)
    assert c.chat.completions.create(model="m1", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="m2", messages=[{"role": "user", "content": "x"}])


def test_drop_mid_stream(server):
    server.script(Reply(content="a b c d e f", drop_after_chunks=3))
    with (
        httpx.Client() as http,
        pytest.raises(httpx.HTTPError),
        http.stream(
            "POST",
            server.url + "/chat/completions",
            json={"model": "m1", "stream": True, "messages": []},
        ) as r,
    ):
        for _ in r.iter_bytes():
            pass


def test_refuses_to_bind_anything_but_loopback():
    with pytest.raises(ValueError, match="loopback"):
        FakeOpenAI(host="0.0.0.0")
