"""The decision log: what `trouter logs` reports, and that SIGKILL under load loses no answered request.

The crash test runs a real `trouter serve` subprocess, kills it while clients are mid-flight,
then checks that every request whose complete response reached a client is in the log and that
SQLite's own integrity check passes; a restarted server keeps writing to the same log.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from factories import toy_dataset
from trouter.cli import run
from trouter.cli.logs import _money
from trouter.errors import ConfigError
from trouter.routers.registry import make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.log_summary import parse_since, summarise
from trouter.serve.testing import GatewayServer, free_port, pool_at, serve_process, wait_healthy
from trouter.store import Store
from trouter.testing import FakeOpenAI, Reply, Status

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content="four words of answer")) as server:
        yield server


def test_logs_summarises_spend_model_mix_fallbacks_and_errors(router, fake, tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    app = create_app(
        router, pool_at(router.pool_, fake.url), GatewayConfig(), Store(f"sqlite:///{db}")
    )
    with GatewayServer(app) as gw, httpx.Client(base_url=gw.url) as c:
        for _ in range(3):
            assert (
                c.post(
                    "/chat/completions", json={"model": "trouter", "messages": HELLO}
                ).status_code
                == 200
            )
        fake.script(Status(500), model="small-id")
        assert (
            c.post("/chat/completions", json={"model": "trouter", "messages": HELLO}).status_code
            == 200
        )
        assert (
            c.post("/chat/completions", json={"model": "large", "messages": HELLO}).status_code
            == 200
        )
        assert (
            c.post("/chat/completions", json={"model": "nope", "messages": HELLO}).status_code
            == 404
        )

    summary = summarise(Store(f"sqlite:///{db}"))
    assert (summary.requests, summary.errors, summary.fallback_requests) == (6, 1, 1)
    assert [(m.model, m.requests, m.chosen) for m in summary.models] == [
        ("small", 3, 4),
        ("large", 1, 1),
        ("medium", 1, 0),
    ]
    assert (
        summary.spend == pytest.approx(sum(m.spend for m in summary.models)) and summary.spend > 0
    )
    assert summary.statuses == {200: 5, 404: 1}

    assert run(["logs", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "6 requests" in out and "errors 1 (16.7%)" in out and "requests with fallbacks 1" in out
    assert "small" in out and "60.0%" in out and "HTTP statuses: 200: 5, 404: 1" in out
    assert "…" not in out  # piped, 80 columns: every figure whole ("1.1e…" was cut)
    for m in summary.models:
        row = next(line for line in out.splitlines() if line.startswith(m.model + " "))
        assert f"{m.share:.1%}" in row and _money(m.spend) in row and str(m.tokens_out) in row
    assert run(["logs", "--db", str(db), "--since", "1h"]) == 0
    assert run(["logs", "--db", str(db), "--since", "yesterday"]) == 2


def test_logs_of_a_gateway_that_answered_nothing_show_no_made_up_latency(
    router, fake, tmp_path, capsys
):
    db = tmp_path / "log.sqlite"
    app = create_app(
        router, pool_at(router.pool_, fake.url), GatewayConfig(), Store(f"sqlite:///{db}")
    )
    with GatewayServer(app) as gw:
        fake.script(Status(500), Status(500), Status(500))
        body = {"model": "trouter", "messages": HELLO}
        assert httpx.post(f"{gw.url}/chat/completions", json=body).status_code == 502
    assert run(["logs", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "1 requests" in out and "errors 1 (100.0%)" in out and "HTTP statuses: 502: 1" in out
    assert "no request was answered" in out
    assert "latency" not in out and "answered" not in out.split("no request was answered")[1]


def test_a_store_is_found_by_its_sqlite_url_however_it_is_written(tmp_path, capsys):
    db = tmp_path / "log.sqlite"
    Store(f"sqlite:///{db}").close()
    # An existing store reached by a URL with driver options is read, not called missing.
    assert run(["logs", "--db", f"sqlite:///{db}?timeout=5"]) == 0
    assert "no requests logged" in capsys.readouterr().err
    read_only = f"sqlite:///file:{db}?mode=ro&uri=true"
    assert run(["logs", "--db", read_only]) == 0
    # A typo behind a URL naming its driver is refused like a plain path, and makes no file.
    typo = tmp_path / "typo.sqlite"
    assert run(["logs", "--db", f"sqlite+pysqlite:///{typo}"]) == 2
    assert "no store at" in capsys.readouterr().err and not typo.exists()


def test_since_accepts_spans_and_dates():
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2025-05-01", now) == datetime(2025, 5, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="--since"):
        parse_since("last tuesday", now)
    # The store keeps naive UTC times, so an offset must be applied, not dropped.
    assert parse_since("2026-11-28T23:00+01:00", now).replace(tzinfo=None) == datetime(
        2026, 11, 28, 22, 0
    )
    with pytest.raises(ConfigError, match="before the year 1"):
        parse_since("99999999d", now)


def _load_until_killed(proc, port, want: int) -> list[str]:
    """Clients (half streaming) hammer the server; SIGKILL it once `want` answers arrived."""
    answered: list[str] = []
    stop = threading.Event()

    def client(stream: bool) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/v1", timeout=5) as c:
            while not stop.is_set():
                body = {"model": "trouter", "messages": HELLO, "stream": stream}
                try:
                    with c.stream("POST", "/chat/completions", json=body) as r:
                        raw = b"".join(r.iter_raw())
                except httpx.HTTPError:
                    return  # the server is gone
                complete = raw.endswith(b"data: [DONE]\n\n") if stream else raw.endswith(b"}")
                if r.status_code == 200 and complete:
                    answered.append(r.headers["x-trouter-request-id"])

    threads = [threading.Thread(target=client, args=(i % 2 == 1,)) for i in range(8)]
    for t in threads:
        t.start()
    until = time.monotonic() + 20
    while len(answered) < want and time.monotonic() < until:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight right now
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    return answered


@pytest.mark.slow
def test_sigkill_under_load_loses_no_answered_request(router, fake, tmp_path):
    router_dir = router.save(tmp_path / "router")
    pool_file = tmp_path / "pool.yaml"
    pool_at(router.pool_, fake.url).save(pool_file)
    db, port = tmp_path / "log.sqlite", free_port()
    answered: list[str] = []
    for kill in range(3):  # each kill lands at a different moment of the writer's work
        proc = serve_process(router_dir, pool_file, db, port)
        try:
            wait_healthy(proc, port)
            this_round = _load_until_killed(proc, port, want=150)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert len(this_round) >= 50, "too little load reached the server before the kill"
        answered += this_round
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            logged = {
                r[0] for r in conn.execute("SELECT request_id FROM decisions WHERE status = 'ok'")
            }
        missing = set(answered) - logged
        assert not missing, (
            f"kill {kill}: {len(missing)} of {len(answered)} answered requests are not logged"
        )

    proc = serve_process(router_dir, pool_file, db, port)  # restart on the same, recovered log
    try:
        wait_healthy(proc, port)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "trouter", "messages": HELLO},
        )
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # a graceful stop flushes the log
        proc.wait(30)
    with sqlite3.connect(db) as conn:
        ids = {row[0] for row in conn.execute("SELECT request_id FROM decisions")}
    assert r.headers["x-trouter-request-id"] in ids and set(answered) <= ids


POSTGRES_URL = os.environ.get("TROUTER_TEST_POSTGRES_URL")


@pytest.mark.skipif(
    not POSTGRES_URL, reason="set TROUTER_TEST_POSTGRES_URL=postgresql+psycopg://... to run"
)
def test_the_log_and_its_summary_work_on_postgres(router, fake):
    store = Store(POSTGRES_URL)
    started = datetime.now(UTC)
    app = create_app(router, pool_at(router.pool_, fake.url), GatewayConfig(), store)
    with GatewayServer(app) as gw, httpx.Client(base_url=gw.url) as c:
        fake.script(Status(503), model="small-id")
        for stream in (False, True, False):
            body = {"model": "trouter", "messages": HELLO, "stream": stream}
            assert c.post("/chat/completions", json=body).status_code == 200
    summary = summarise(store, since=started)
    assert (summary.requests, summary.errors, summary.fallback_requests) == (3, 0, 1)
    assert summary.spend > 0 and {m.model for m in summary.models} == {"small", "medium"}
