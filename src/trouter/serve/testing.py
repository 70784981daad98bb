"""A gateway served for real on 127.0.0.1 in a background thread, for tests and benchmarks.

with GatewayServer(create_app(router, pool, config, store)) as gw:
    client = openai.OpenAI(base_url=gw.url, api_key="...")

Or `trouter serve` itself in a process of its own (`serve_process`, `wait_healthy`), for tests
that kill or interrupt it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trouter.pool import Pool
from trouter.serve.server import uvicorn_config
from trouter.store import DecisionLog, Store

if TYPE_CHECKING:
    from trouter.routers.base import Router
    from trouter.serve.config import GatewayConfig


class GatewayServer:
    """uvicorn on 127.0.0.1 and a free port, in a daemon thread; lifespan (warm-up) included."""

    def __init__(self, app: Any, *, port: int = 0) -> None:
        import uvicorn

        self.app = app
        self._server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", port))
        self._thread = threading.Thread(target=self._server.run, name="gateway", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        """The OpenAI base URL (…/v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> GatewayServer:
        self._thread.start()
        until = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > until:
                raise RuntimeError("the gateway did not start (see its log)")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pool_at(pool: Pool, base_url: str | dict[str, str], *, timeout_s: float = 5.0) -> Pool:
    """`pool` with every model (or each named one) pointed at a local server; model ids get
    an "-id" suffix so tests can tell a pool name from the id sent upstream."""
    urls = base_url if isinstance(base_url, dict) else dict.fromkeys(pool.names, base_url)
    return Pool.of(
        spec.model_copy(
            update={
                "model": f"{spec.name}-id",
                "base_url": urls.get(spec.name, spec.base_url),
                "timeout_s": timeout_s,
            }
        )
        for spec in pool
    )


@contextmanager
def serving(
    router: Router, upstream: str, store: Store, config: GatewayConfig, *, timeout_s: float = 5.0
) -> Iterator[GatewayServer]:
    """`router` served on 127.0.0.1 with every pool model pointed at `upstream` (a fake
    server's URL), each upstream request timing out after `timeout_s`."""
    from trouter.serve.app import create_app

    if router.pool_ is None:
        raise ValueError("the router has no pool to point at the upstream")
    pool = pool_at(router.pool_, upstream, timeout_s=timeout_s)
    with GatewayServer(create_app(router, pool, config, store)) as server:
        yield server


def logged(store: Store, request_id: str) -> DecisionLog:
    """The decision-log row of one request."""
    with store.session() as session:
        return session.query(DecisionLog).filter_by(request_id=request_id).one()


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_process(
    router_dir: Path, pool_file: Path, db: Path, port: int, out: Path | None = None
) -> subprocess.Popen[bytes]:
    """`trouter serve` in a process of its own on 127.0.0.1:`port`, with no client keys, its
    output to the file `out` or else to a pipe (a pipe nobody reads can fill up with the
    tracebacks uvicorn prints for requests a forced stop cancels, and block the server)."""
    cmd = [
        sys.executable, "-c", "from trouter.cli import main; main()",
        "serve", "--router", str(router_dir), "--pool", str(pool_file), "--db", str(db),
        "--port", str(port), "--host", "127.0.0.1",
    ]  # fmt: skip
    env = {**os.environ, "TROUTER_API_KEYS": ""}
    stdout = out.open("wb") if out is not None else subprocess.PIPE
    return subprocess.Popen(cmd, env=env, stdout=stdout, stderr=subprocess.STDOUT)


def wait_healthy(
    proc: subprocess.Popen[bytes], port: int, out: Path | None = None, timeout: float = 60.0
) -> None:
    """Wait until the `serve_process` on `port` answers /health; an AssertionError with its
    output if it exits first or does not start within `timeout` seconds."""
    import httpx

    until = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            piped = proc.stdout.read().decode() if proc.stdout is not None else ""
            raise AssertionError(f"trouter serve exited: {out.read_text() if out else piped}")
        if time.monotonic() > until:
            raise AssertionError("trouter serve did not become healthy")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
