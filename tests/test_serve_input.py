"""Bad input, auth and secrets: every malformed request gets a clear error in OpenAI's format.

`BAD_INPUT` is the bad-input table of the gateway's docs: (what was sent, status, message part).
"""

from __future__ import annotations

import json
import logging

import httpx
import openai
import pytest

from factories import toy_dataset
from trouter.errors import ConfigError
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.testing import GatewayServer, pool_at
from trouter.store import Store
from trouter.testing import FakeOpenAI, Reply, Status

KEY = "sk-client-test-key"
UPSTREAM_SECRET = "sk-upstream-SECRET-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "hello"}]
LIMIT = 4096


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content="fine")) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(router, fake, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("TEST_UPSTREAM_KEY", UPSTREAM_SECRET)
    pool = pool_at(router.pool_, fake.url)
    pool = pool.of(s.model_copy(update={"api_key_env": "TEST_UPSTREAM_KEY"}) for s in pool)
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('in') / 'log.sqlite'}")
    app = create_app(router, pool, GatewayConfig(api_keys=(KEY,), max_body_bytes=LIMIT), store)
    with GatewayServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def http(gateway):
    with httpx.Client(base_url=gateway.root, timeout=10) as c:
        yield c


def chat(**fields):
    return json.dumps({"model": "trouter", "messages": HELLO, **fields}).encode()


BAD_INPUT = [
    # (case, headers, body, status, param, message fragment)
    ("no Authorization header", {}, chat(), 401, None, "missing API key"),
    (
        "wrong key",
        {"authorization": "Bearer sk-wrong-key-000"},
        chat(),
        401,
        None,
        "incorrect API key",
    ),
    (
        "Basic instead of Bearer",
        {"authorization": "Basic dXNlcjpwYXNz"},
        chat(),
        401,
        None,
        "missing API key",
    ),
    (
        "body over the size limit",
        AUTH,
        chat(pad="x" * LIMIT),
        413,
        None,
        "larger than this gateway's limit",
    ),
    ("empty body", AUTH, b"", 400, None, "request body is empty"),
    ("not JSON", AUTH, b"{model: trouter", 400, None, "not valid JSON"),
    ("a JSON array", AUTH, b"[1, 2]", 400, None, "must be a JSON object, not an array"),
    ("no model", AUTH, json.dumps({"messages": HELLO}).encode(), 400, "model", "provide a model"),
    ("model is a number", AUTH, chat(model=42), 400, "model", "non-empty string, not a number"),
    (
        "no messages",
        AUTH,
        json.dumps({"model": "trouter"}).encode(),
        400,
        "messages",
        "provide a messages",
    ),
    ("messages is a string", AUTH, chat(messages="hi"), 400, "messages", "must be an array"),
    ("messages is empty", AUTH, chat(messages=[]), 400, "messages", "at least one message"),
    ("a message is a string", AUTH, chat(messages=["hi"]), 400, "messages[0]", "must be an object"),
    (
        "a message without role",
        AUTH,
        chat(messages=[{"content": "hi"}]),
        400,
        "messages[0].role",
        "role is required",
    ),
    (
        "an unknown role",
        AUTH,
        chat(messages=[{"role": "wizard", "content": "hi"}]),
        400,
        "messages[0].role",
        "must be one of",
    ),
    (
        "content is a number",
        AUTH,
        chat(messages=[{"role": "user", "content": 7}]),
        400,
        "messages[0].content",
        "string or an array",
    ),
    (
        "user content missing",
        AUTH,
        chat(messages=[{"role": "user"}]),
        400,
        "messages[0].content",
        "content is required",
    ),
    ("stream is a string", AUTH, chat(stream="yes"), 400, "stream", "true or false"),
    (
        "stream_options is a string",
        AUTH,
        chat(stream=True, stream_options="x"),
        400,
        "stream_options",
        "must be an object",
    ),
    (
        "include_usage is a string",
        AUTH,
        chat(stream=True, stream_options={"include_usage": "y"}),
        400,
        "stream_options.include_usage",
        "true or false",
    ),
    ("an unknown model", AUTH, chat(model="gpt-5"), 404, "model", "trouter:balanced, trouter:cost"),
    ("an unknown preset", AUTH, chat(model="trouter:turbo"), 404, "model", "small, medium, large"),
    (
        "lambda not a number",
        AUTH,
        chat(model="trouter:lambda=abc"),
        400,
        "model",
        "cannot read trade-off",
    ),
    (
        "negative lambda",
        AUTH,
        chat(model="trouter:lambda=-5"),
        400,
        "model",
        "lambda must be between",
    ),
    (
        "budget below the cheapest model",
        AUTH,
        chat(model="trouter:budget=0.000001"),
        400,
        "model",
        "raise the budget",
    ),
    (
        "no user text to route",
        AUTH,
        chat(
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}
            ]
        ),
        400,
        "messages",
        "no user text to route",
    ),
]


@pytest.mark.parametrize(
    ("case", "headers", "body", "status", "param", "fragment"),
    BAD_INPUT,
    ids=[c[0] for c in BAD_INPUT],
)
def test_bad_input_is_refused_with_an_openai_error(
    http, case, headers, body, status, param, fragment
):
    r = http.post(
        "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json", **headers},
    )
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert fragment in error["message"]
    assert error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}


def test_a_chunked_body_over_the_limit_is_refused_while_reading(http):
    def body():
        for _ in range(8):
            yield b"x" * 1024

    r = http.post("/v1/chat/completions", content=body(), headers=AUTH)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]


def test_unknown_paths_and_methods_answer_in_openai_format(http):
    r = http.post("/v1/embeddings", headers=AUTH, json={})
    assert r.status_code == 404 and "Unknown request URL" in r.json()["error"]["message"]
    r = http.get("/v1/chat/completions", headers=AUTH)
    assert r.status_code == 405 and "error" in r.json()


def test_the_openai_client_sees_typed_errors(gateway):
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gateway.url, api_key="nope-nope", max_retries=0).models.list()
    c = openai.OpenAI(base_url=gateway.url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        c.chat.completions.create(model="gpt-5", messages=HELLO)
    assert err.value.body["code"] == "model_not_found"


def test_models_health_and_metrics(http):
    models = http.get("/v1/models", headers=AUTH).json()
    ids = [m["id"] for m in models["data"]]
    assert ids == [
        "trouter",
        "trouter:quality",
        "trouter:balanced",
        "trouter:cost",
        "small",
        "medium",
        "large",
    ]
    assert http.get("/v1/models/trouter:lambda=5", headers=AUTH).status_code == 200
    assert http.get("/v1/models/nope", headers=AUTH).status_code == 404
    assert http.get("/v1/models").status_code == 401
    assert http.get("/health").json()["status"] == "ok"  # liveness needs no key
    assert http.get("/metrics").status_code == 401
    http.post("/v1/chat/completions", content=chat(), headers=AUTH)
    text = http.get("/metrics", headers=AUTH).text
    for name in (
        'trouter_requests_total{status="200"}',
        'trouter_decisions_total{model="small"}',
        'trouter_answers_total{model="small"}',
        "trouter_router_overhead_seconds_bucket",
        'trouter_spend_dollars_total{model="small"}',
        'trouter_tokens_total{direction="input",model="small"}',
    ):
        assert name in text


def test_upstream_keys_never_reach_clients_or_logs(gateway, fake, http, caplog):
    caplog.set_level(logging.DEBUG)
    r = http.post("/v1/chat/completions", content=chat(), headers=AUTH)
    assert fake.completions[-1].headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert UPSTREAM_SECRET not in str(r.headers)
    # An upstream 400 that quotes the key is passed on, redacted.
    fake.script(Status(400, message=f"bad request for key {UPSTREAM_SECRET}"))
    r = http.post("/v1/chat/completions", content=chat(), headers=AUTH)
    assert r.status_code == 400 and UPSTREAM_SECRET not in r.text and "[redacted]" in r.text
    # A 401 (the gateway's key is wrong) falls back; when all fail, only statuses are named.
    fake.script(*[Status(401, message=f"Incorrect API key provided: {UPSTREAM_SECRET[:8]}***")] * 3)
    r = http.post("/v1/chat/completions", content=chat(), headers=AUTH)
    assert r.status_code == 502 and "HTTP 401" in r.text and UPSTREAM_SECRET[:8] not in r.text
    assert UPSTREAM_SECRET not in caplog.text


def test_a_missing_upstream_key_fails_at_start_up_naming_the_variable(router, fake):
    pool = pool_at(router.pool_, fake.url)
    pool = pool.of(s.model_copy(update={"api_key_env": "TROUTER_TEST_UNSET_KEY"}) for s in pool)
    with pytest.raises(ConfigError, match="TROUTER_TEST_UNSET_KEY"):
        create_app(router, pool, GatewayConfig(), Store("sqlite://"))


def test_a_router_for_another_pool_is_refused(router, fake):
    other = pool_at(router.pool_.subset(["small", "large"]), fake.url)
    with pytest.raises(ConfigError, match="trained for models small, medium, large"):
        create_app(router, other, GatewayConfig(), Store("sqlite://"))
