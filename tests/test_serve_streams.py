"""Streams that do not end well: an upstream that stops without `data: [DONE]` or sends an
unreadable event. The client gets an error event instead of a silently short answer, and the
log says the request failed.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from factories import toy_dataset
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig
from trouter.serve.testing import logged, pool_at, serving
from trouter.store import DecisionLog, Store
from trouter.testing import FakeOpenAI, Malformed, Reply
from trouter.tokens import estimate_message_tokens

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


def prompt_cost(model: str, tokens: int) -> float:
    from factories import TOY_PRICES

    return tokens * TOY_PRICES[model][0] / 1e6


def test_a_stream_the_client_left_is_charged_its_prompt(gateway, fake, store):
    fake.script(Reply(content="w " * 50, chunk_delay=0.05), model="small-id")
    with (
        httpx.Client(base_url=gateway.url) as c,
        c.stream("POST", "/chat/completions", json=STREAM, headers=AUTH) as r,
    ):
        next(r.iter_raw())
        request_id = r.headers["x-trouter-request-id"]
    row = wait_for_row(store, request_id)
    tokens = estimate_message_tokens(STREAM["messages"])
    assert (row.status, row.http_status, row.tokens_in) == ("client_closed", 499, tokens)
    assert row.cost == pytest.approx(prompt_cost("small", tokens)) and row.cost > 0
    assert "estimated prompt tokens" in row.error


def _spend(gateway, model: str) -> float:
    text = httpx.get(gateway.url.removesuffix("/v1") + "/metrics", headers=AUTH).text
    line = f'trouter_spend_dollars_total{{model="{model}"}} '
    return next(float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line))


def test_a_stream_failing_mid_way_is_charged_its_prompt(gateway, fake, store):
    fake.script(Reply(content="a b c d e f", drop_after_chunks=3), model="small-id")
    before = _spend(gateway, "small")
    r = httpx.post(f"{gateway.url}/chat/completions", json=STREAM, headers=AUTH, timeout=10)
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status) == ("error", 502)
    assert row.tokens_in == estimate_message_tokens(STREAM["messages"]) and row.cost > 0
    # Prometheus' spend counts it too, as the log does (it counted answered requests only).
    assert _spend(gateway, "small") - before == pytest.approx(row.cost)


@pytest.mark.slow
def test_a_forced_shutdown_mid_stream_is_logged_as_a_shutdown(router, fake, tmp_path):
    router_dir = router.save(tmp_path / "router")
    pool_file, db = tmp_path / "pool.yaml", tmp_path / "log.sqlite"
    pool_at(router.pool_, fake.url, timeout_s=5.0).save(pool_file)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-c", "from trouter.cli import main; main()",
        "serve", "--router", str(router_dir), "--pool", str(pool_file), "--db", str(db),
        "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "TROUTER_API_KEYS": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        until = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < until, "trouter serve did not start"
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
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
    assert "shut down" in row.error and row.tokens_in > 0 and row.cost > 0
