"""Streams that do not end well: an upstream that stops without `data: [DONE]` or sends an
unreadable event. The client gets an error event instead of a silently short answer, and the
log says the request failed.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
"""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from factories import toy_dataset
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig
from trouter.serve.testing import free_port, logged, pool_at, serve_process, serving, wait_healthy
from trouter.store import DecisionLog, Store
from trouter.testing import FakeOpenAI, Malformed, Reply
from trouter.tokens import estimate_message_tokens, estimate_tokens

KEY = "sk-client-test-key"
AUTH = {"authorization": f"Bearer {KEY}"}
STREAM = {"model": "trouter", "messages": [{"role": "user", "content": "hello"}], "stream": True}


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content="one two three")) as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(f"sqlite:///{tmp_path_factory.mktemp('streams') / 'log.sqlite'}")


@pytest.fixture(scope="module")
def gateway(router, fake, store):
    config = GatewayConfig(api_keys=(KEY,), deadline_s=5.0)
    with serving(router, fake.url, store, config, timeout_s=2.0) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_script(fake):
    fake._script.clear()
    yield
    fake._script.clear()


def events(text: str) -> list[str]:
    return [e.removeprefix("data: ") for e in text.split("\n\n") if e.strip()]


def test_a_complete_stream_ends_with_done_and_is_logged_ok(gateway, store):
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    got = events(r.text)
    assert got[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in got[:-1]) == (
        "one two three"
    )
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status, row.tokens_out) == ("ok", 200, 3)


@pytest.mark.parametrize(
    ("upstream", "says"),
    [
        (Malformed(), "unreadable stream event"),  # a truncated event, then the end
        (Malformed('{"id": "x", "choices": []}'), "without data: [DONE]"),  # fine, then the end
    ],
    ids=["truncated event", "no [DONE]"],
)
def test_a_stream_that_ends_badly_is_an_error_event_and_an_error_row(
    gateway, fake, store, upstream, says
):
    fake.script(upstream, model="small-id")
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    assert r.status_code == 200  # the stream had started
    got = events(r.text)
    assert "[DONE]" not in got
    error = json.loads(got[-1])["error"]
    assert error["code"] == "upstream_stream_error" and says in error["message"]
    assert not any("trunc" in e for e in got)  # the unreadable event is not relayed
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status, row.final_model) == ("error", 502, "small")
    assert says in row.error


def test_comments_and_keep_alives_pass_through(gateway, fake):
    # The fake's Malformed writes its text as one data event; a ": ping" comment is not data.
    fake.script(Malformed('{"choices": []}\n\n: ping\n\ndata: [DONE]'), model="small-id")
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    assert r.text.split("\n\n")[:3] == ['data: {"choices": []}', ": ping", "data: [DONE]"]


# ---------------------------------------------------------------------------------- cut short


def wait_for_row(store, request_id, timeout=5.0):
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        with store.session() as s:
            row = s.query(DecisionLog).filter_by(request_id=request_id).one_or_none()
        if row is not None:
            return row
        time.sleep(0.05)
    raise AssertionError(f"no row for {request_id}")


def cost(model: str, tokens_in: int, tokens_out: int) -> float:
    from factories import TOY_PRICES

    return (tokens_in * TOY_PRICES[model][0] + tokens_out * TOY_PRICES[model][1]) / 1e6


def _metric(gateway, line_start: str) -> float:
    text = httpx.get(gateway.url.removesuffix("/v1") + "/metrics", headers=AUTH).text
    return next(
        float(x.removeprefix(line_start)) for x in text.splitlines() if x.startswith(line_start)
    )


def _spend(gateway, model: str) -> float:
    return _metric(gateway, f'trouter_spend_dollars_total{{model="{model}"}} ')


def _tokens(gateway, model: str, direction: str) -> float:
    return _metric(gateway, f'trouter_tokens_total{{direction="{direction}",model="{model}"}} ')


def _relayed_text(sse: bytes) -> str:
    """The content of the whole chunks among `sse` (a cut stream's relayed bytes)."""
    text = ""
    for event in sse.decode().split("\n\n")[:-1]:
        data = event.removeprefix("data: ")
        if data.startswith("{"):
            chunk = json.loads(data)
            text += "".join(c["delta"].get("content") or "" for c in chunk.get("choices", []))
    return text


def test_a_stream_the_client_left_is_charged_its_prompt_and_the_output_relayed(
    gateway, fake, store
):
    # Cut before the usage chunk: the upstream was still paid for the words it had sent, so
    # the row charges the prompt and those words (estimated), not the prompt alone.
    fake.script(Reply(content="w " * 50, chunk_delay=0.05), model="small-id")
    before = _spend(gateway, "small"), _tokens(gateway, "small", "output")
    seen = b""
    with (
        httpx.Client(base_url=gateway.url) as c,
        c.stream("POST", "/chat/completions", json=STREAM, headers=AUTH) as r,
    ):
        for raw in r.iter_raw():
            seen += raw
            if "w" in _relayed_text(seen):
                break  # the client leaves once it has read some of the answer
        request_id = r.headers["x-trouter-request-id"]
    row = wait_for_row(store, request_id)
    tokens = estimate_message_tokens(STREAM["messages"])
    assert (row.status, row.http_status, row.tokens_in) == ("client_closed", 499, tokens)
    assert row.tokens_out >= estimate_tokens(_relayed_text(seen)) >= 1
    assert row.tokens_out <= estimate_tokens("w " * 50)
    assert row.cost == pytest.approx(cost("small", tokens, row.tokens_out))
    assert "estimated prompt tokens" in row.error and "estimated output tokens" in row.error
    # Prometheus counts what the log charges.
    assert _spend(gateway, "small") - before[0] == pytest.approx(row.cost)
    assert _tokens(gateway, "small", "output") - before[1] == row.tokens_out


def test_a_stream_failing_mid_way_is_charged_its_prompt_and_the_output_relayed(
    gateway, fake, store
):
    # The role chunk, "a " and "b " are relayed, then the upstream drops the connection.
    fake.script(Reply(content="a b c d e f", drop_after_chunks=3), model="small-id")
    before = _spend(gateway, "small"), _tokens(gateway, "small", "output")
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status) == ("error", 502)
    assert _relayed_text(r.content) == "a b "
    tokens_in, tokens_out = estimate_message_tokens(STREAM["messages"]), estimate_tokens("a b ")
    assert (row.tokens_in, row.tokens_out) == (tokens_in, tokens_out)
    assert row.cost == pytest.approx(cost("small", tokens_in, tokens_out))
    # Prometheus' spend and tokens count it too, as the log does.
    assert _spend(gateway, "small") - before[0] == pytest.approx(row.cost)
    assert _tokens(gateway, "small", "output") - before[1] == tokens_out


def test_a_stream_cut_after_its_usage_chunk_is_charged_by_that_usage(gateway, fake, store):
    # An answer chunk and the usage chunk arrive; [DONE] never does.
    answer = '{"id": "x", "choices": [{"index": 0, "delta": {"content": "a b c"}}]}'
    usage = '{"id": "x", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}'
    fake.script(Malformed(f"{answer}\n\ndata: {usage}"), model="small-id")
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status, row.tokens_in, row.tokens_out) == ("error", 502, 5, 7)
    assert row.cost == pytest.approx(cost("small", 5, 7))
    assert "estimated" not in row.error


@pytest.mark.slow
def test_a_forced_shutdown_mid_stream_is_logged_as_a_shutdown(router, fake, tmp_path):
    router_dir = router.save(tmp_path / "router")
    pool_file, db = tmp_path / "pool.yaml", tmp_path / "log.sqlite"
    pool_at(router.pool_, fake.url, timeout_s=5.0).save(pool_file)
    port = free_port()
    proc = serve_process(router_dir, pool_file, db, port)
    try:
        wait_healthy(proc, port)
        fake.script(Reply(content="w " * 100, chunk_delay=0.05), model="small-id")
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=10) as c,
            c.stream("POST", "/chat/completions", json=STREAM) as r,
        ):
            chunks = r.iter_raw()
            next(chunks)
            request_id = r.headers["x-trouter-request-id"]
            proc.send_signal(signal.SIGINT)  # graceful: waits for the stream
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)  # forced: cuts it
            proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    row = logged(Store(f"sqlite:///{db}"), request_id)
    assert (row.status, row.http_status) == ("shutdown", 503), row.error
    assert "shut down" in row.error and row.tokens_in > 0 and row.tokens_out > 0
    assert row.cost == pytest.approx(cost("small", row.tokens_in, row.tokens_out))
