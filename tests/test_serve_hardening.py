"""The gateway under hostile or unlucky input: text that is not Unicode, a bug of its own, a
database that refuses a row. Every request still gets an OpenAI-shaped answer and a log row,
and no request's row is lost because of another's.

The router is a `single` router that always picks `small` (chain small -> medium -> large).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import event

from factories import toy_dataset
from trouter.routers.base import Estimates
from trouter.routers.simple import SingleModelRouter
from trouter.serve import GatewayConfig
from trouter.serve.decision_log import DecisionWriter
from trouter.serve.testing import logged, serving
from trouter.store import DecisionLog, Store
from trouter.testing import FakeOpenAI, Reply

KEY = "sk-client-test-key"
AUTH = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
EXPLODE = "please explode"


class ExplodingRouter(SingleModelRouter):
    """A router with a bug: it raises on one particular query (a stand-in for any bug of ours)."""

    def _predict(self, queries, x) -> Estimates:
        if any(EXPLODE in q for q in queries):
            raise RuntimeError("a bug in the router")
        return super()._predict(queries, x)


@pytest.fixture(scope="module")
def router():
    return ExplodingRouter(model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content=f"{req.model} answers")) as server:
        yield server


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(f"sqlite:///{tmp_path_factory.mktemp('hard') / 'log.sqlite'}")


@pytest.fixture(scope="module")
def gateway(router, fake, store):
    config = GatewayConfig(api_keys=(KEY,), deadline_s=5.0)
    with serving(router, fake.url, store, config, timeout_s=2.0) as server:
        yield server


@pytest.fixture
def http(gateway):
    with httpx.Client(base_url=gateway.root, timeout=10, headers=AUTH) as c:
        yield c


# A lone surrogate, as json.loads reads it from "\ud83d" (valid JSON, not valid Unicode).
LONE = "\\ud83d"
NOT_UNICODE = [
    # (what, raw body, param the 400 names)
    (
        "routed content",
        f'{{"model":"trouter","messages":[{{"role":"user","content":"hi {LONE}"}}]}}',
        "messages[0].content",
    ),
    (
        "bypass content",
        f'{{"model":"small","messages":[{{"role":"user","content":"{LONE}"}}]}}',
        "messages[0].content",
    ),
    (
        "model name",
        f'{{"model":"small{LONE}","messages":[{{"role":"user","content":"hi"}}]}}',
        "model",
    ),
    (
        "a text part",
        f'{{"model":"trouter","messages":[{{"role":"user","content":'
        f'[{{"type":"text","text":"{LONE}"}}]}}]}}',
        "messages[0].content[0].text",
    ),
    (
        "a passed-through field",
        f'{{"model":"small","messages":[{{"role":"user","content":"hi"}}],"user":"x{LONE}"}}',
        "user",
    ),
    (
        "a key",
        f'{{"model":"small","messages":[{{"role":"user","content":"hi"}}],"metadata":{{"{LONE}":1}}}}',
        "metadata.\\ud83d",
    ),
]


@pytest.mark.parametrize(("what", "raw", "param"), NOT_UNICODE, ids=[c[0] for c in NOT_UNICODE])
def test_text_that_is_not_unicode_is_a_logged_400_naming_the_field(http, store, what, raw, param):
    r = http.post("/v1/chat/completions", content=raw.encode())
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert "not valid Unicode" in error["message"]
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status) == ("error", 400)


def test_a_valid_surrogate_pair_is_fine(http, fake):
    raw = '{"model":"small","messages":[{"role":"user","content":"smile \\ud83d\\ude00"}]}'
    r = http.post("/v1/chat/completions", content=raw.encode())
    assert r.status_code == 200, r.text
    assert fake.completions[-1].body["messages"][0]["content"] == "smile \U0001f600"


def test_a_feedback_request_id_that_is_not_unicode_is_a_400(http):
    r = http.post("/v1/feedback", content=f'{{"request_id":"{LONE}","score":1}}'.encode())
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "request_id"


def test_a_bug_of_the_gateway_is_a_logged_500_in_openai_shape(http, store):
    body = {"model": "trouter", "messages": [{"role": "user", "content": EXPLODE}]}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["type"] == "server_error" and "RuntimeError" in error["message"]
    row = logged(store, r.headers["x-trouter-request-id"])
    assert (row.status, row.http_status, row.requested) == ("error", 500, "trouter")
    # ... and the gateway goes on serving.
    ok = http.post(
        "/v1/chat/completions", json={**body, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert ok.status_code == 200


def _row(request_id: str, query: str = "fine") -> dict:
    return {
        "request_id": request_id,
        "created_at": datetime.now(UTC),
        "requested": "trouter",
        "tradeoff": "",
        "lam": None,
        "chosen_model": "small",
        "final_model": "small",
        "fallbacks": 0,
        "chain": [],
        "attempts": [],
        "estimates": {},
        "client": "c",
        "predicted_quality": None,
        "predicted_cost": None,
        "top_task": "",
        "query": query,
        "stream": False,
        "status": "ok",
        "http_status": 200,
        "tokens_in": 1,
        "tokens_out": 1,
        "cost": 0.0,
        "overhead_ms": 0.0,
        "latency_ms": 1.0,
        "error": "",
    }


def test_a_row_the_database_refuses_costs_only_that_row(tmp_path, caplog):
    store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = DecisionWriter(store)
    ids = [uuid.uuid4().hex for _ in range(10)]
    for i, request_id in enumerate(ids):  # queued before the thread starts: one batch
        writer.write_nowait(_row(request_id, query="bad \ud83d" if i == 3 else "fine"))
    writer.start()
    writer.close()
    with store.session() as s:
        written = {r.request_id for r in s.query(DecisionLog)}
    assert written == set(ids) - {ids[3]}
    assert writer.failed_writes == 1
    assert ids[3] in caplog.text and "could not write" in caplog.text


def test_the_writer_still_answers_every_waiter_when_a_row_fails(tmp_path):
    import asyncio

    store = Store(f"sqlite:///{tmp_path / 'log.sqlite'}")
    writer = DecisionWriter(store).start()

    async def both() -> None:
        await asyncio.wait_for(
            asyncio.gather(
                writer.write(_row("a" * 32, "bad \ud83d")), writer.write(_row("b" * 32))
            ),
            5,
        )

    started = time.monotonic()
    asyncio.run(both())
    writer.close()
    assert time.monotonic() - started < 5
    with store.session() as s:
        assert [r.request_id for r in s.query(DecisionLog)] == ["b" * 32]


def test_a_database_refusing_every_write_is_not_asked_again_row_by_row(tmp_path):
    # Another process holds the log's write lock past the busy timeout. The batch fails after
    # one wait, and so would each of its rows after the same wait (up to 512 of them, 30 s each
    # by default, with every request waiting for its commit): once a row fails because of the
    # database rather than itself, the rest of the batch is given up without asking again.
    path = tmp_path / "log.sqlite"
    store = Store(f"sqlite:///{path}")

    @event.listens_for(store.engine, "connect")
    def _short_wait(dbapi_conn, _record) -> None:  # after the store's own 30 s
        dbapi_conn.execute("PRAGMA busy_timeout=50")

    store.engine.dispose()
    inserts: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _count(_conn, _cursor, statement, *_args) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    writer = DecisionWriter(store)
    for _ in range(20):  # queued before the thread starts: one batch
        writer.write_nowait(_row(uuid.uuid4().hex))
    writer.start()
    writer.close()
    assert writer.failed_writes == 20
    assert len(inserts) == 2  # the batch, then its first row
    holder.rollback()
    holder.close()
    writer = DecisionWriter(store).start()  # the lock is gone: rows are written again
    writer.write_nowait(_row("c" * 32))
    writer.close()
    with store.session() as s:
        assert [r.request_id for r in s.query(DecisionLog)] == ["c" * 32]


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def test_an_image_only_last_turn_routes_on_the_last_turn_with_text(http, store):
    conversation = [
        {"role": "user", "content": "describe this chart"},
        {"role": "assistant", "content": "which chart?"},
        {"role": "user", "content": [IMAGE]},
    ]
    r = http.post("/v1/chat/completions", json={"model": "trouter", "messages": conversation})
    assert r.status_code == 200, r.text
    assert logged(store, r.headers["x-trouter-request-id"]).query == "describe this chart"


def test_a_conversation_without_any_user_text_is_still_a_400(http):
    body = {"model": "trouter", "messages": [{"role": "user", "content": [IMAGE]}]}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400 and "no user text to route on" in r.json()["error"]["message"]


def test_the_fake_upstream_reads_odd_text_parts_instead_of_dropping_the_connection(http, fake):
    from trouter.testing.fake_openai import FakeRequest

    parts = [{"type": "text", "text": 123}, {"type": "image_url"}, {"type": "text", "text": "x"}]
    body = {"model": "small", "messages": [{"role": "user", "content": parts}]}
    r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert FakeRequest("POST", "/", {}, body).last_user == "123 x"
    assert FakeRequest("POST", "/", {}, {"messages": "not a list"}).last_user == ""
