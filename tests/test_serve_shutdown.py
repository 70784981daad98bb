"""A forced shutdown (a second Ctrl-C) of `trouter serve` under load: every request the gateway
had taken in gets its decision-log row, once, whatever it was doing when it was cut.

The router is a `single` router that always picks `small`; every request names its model.
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from collections import Counter

import httpx
import pytest

from factories import toy_dataset
from trouter.routers.registry import make_router
from trouter.serve.testing import free_port, pool_at, serve_process, wait_healthy
from trouter.testing import FakeOpenAI, Hang

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def router():
    return make_router("single", model="small", encoder="hashing:256").fit(toy_dataset(10))


@pytest.mark.slow
def test_a_forced_shutdown_logs_the_requests_not_yet_answered(router, tmp_path):
    # In flight when the gateway is forced to stop: two requests waiting for their upstream's
    # answer (one of them a stream before its first byte) and one waiting for medium's only
    # slot. None has a response to cut, so each is logged as cut by the shutdown.
    with FakeOpenAI(lambda req: Hang(30.0)) as fake:
        router_dir = router.save(tmp_path / "router")
        pool = pool_at(router.pool_, fake.url, timeout_s=30.0)
        pool = pool.of(s.model_copy(update={"max_concurrency": 1}) for s in pool)
        pool_file, db, port = tmp_path / "pool.yaml", tmp_path / "log.sqlite", free_port()
        pool.save(pool_file)
        out = tmp_path / "serve.out"
        proc = serve_process(router_dir, pool_file, db, port, out)
        outcomes: list[str] = []

        def ask(model: str, stream: bool) -> None:
            body = {"model": model, "messages": HELLO, "stream": stream}
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60
                )
                outcomes.append(str(r.status_code))
            except httpx.HTTPError as exc:
                outcomes.append(type(exc).__name__)

        try:
            wait_healthy(proc, port, out)
            clients = [
                threading.Thread(target=ask, args=args)
                for args in (("medium", False), ("small", False), ("large", True))
            ]
            clients[0].start()
            until = time.monotonic() + 30
            while len(fake.completions) < 1:  # medium's slot is taken
                assert time.monotonic() < until, "the first request never reached the upstream"
                time.sleep(0.02)
            waiting = threading.Thread(target=ask, args=("medium", False))
            waiting.start()
            for client in clients[1:]:
                client.start()
            while len(fake.completions) < 3:
                assert time.monotonic() < until, "the requests never reached the upstream"
                time.sleep(0.02)
            time.sleep(0.2)  # the slot waiter was sent before the last two reached upstream
            proc.send_signal(signal.SIGINT)  # graceful: waits for the requests in flight
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)  # forced: cuts them
            proc.wait(30)
            for client in [*clients, waiting]:
                client.join(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT request_id, requested, status, http_status, error FROM decisions"
        ).fetchall()
    assert len(outcomes) == 4 and "ConnectError" not in outcomes, outcomes
    assert len({r[0] for r in rows}) == len(rows) == 4, rows  # each once
    assert Counter(r[1] for r in rows) == {"medium": 2, "small": 1, "large": 1}
    assert all((r[2], r[3]) == ("shutdown", 503) and "shut down" in r[4] for r in rows), rows
