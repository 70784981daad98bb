"""Running the app: one uvicorn worker on uvloop + httptools when they are installed.

One process is the intended unit: the router, the pooled upstream client and the log writer live
in it. Scale out with replicas sharing a Postgres store, not with uvicorn workers.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from trouter.errors import ConfigError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def fastest(module: str, fallback: str) -> str:
    return module if importlib.util.find_spec(module) is not None else fallback


def uvicorn_config(app: Any, host: str, port: int, *, access_log: bool = False) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=fastest("uvloop", "asyncio"),
        http=fastest("httptools", "h11"),
        access_log=access_log,
        log_level="info" if access_log else "warning",
        lifespan="on",
        # Headers the gateway sets itself are enough; skip uvicorn's per-response date/server.
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
        backlog=2048,
    )


def prepare_process(blas_threads: int = 1) -> None:
    """Settings for a process that will be a gateway; call before numpy is imported.

    A router's numpy work per request is tiny, and OpenBLAS's worker threads spin-wait between
    calls: on a 2-core machine shared with the event loop they burned about 1 ms of CPU per
    request and made a 16-query kNN batch 20x slower (17 ms instead of 0.9 ms). So OpenBLAS gets
    one thread (unless the user set OPENBLAS_NUM_THREADS), and HF tokenizers no thread pool.
    Variables the user set are left alone.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(blas_threads))
    # torch (MiniLM) gets the cores the event loop does not need, at most 4: two OpenMP threads
    # on a 2-core machine shared with the loop made one short encode 10x slower under load.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(4, (os.cpu_count() or 2) - 1))))
    # The event loop shares the GIL with the routing and decision-log threads; Python's default
    # 5 ms switch interval let them hold it long enough to halve throughput at 16 clients.
    sys.setswitchinterval(0.001)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if "numpy" in sys.modules:  # too late for the variable: limit the running pool instead
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits={"openblas": blas_threads})


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` for `serve`, so a bad or busy address is a one-line
    `ConfigError` before anything slow starts, and nothing can take the port in between."""
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use; stop what listens there or pick another --port"
            ) from None
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host and --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def serve(
    app: Any,
    sock: socket.socket,
    *,
    access_log: bool = False,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve on a `listen_socket` until SIGINT / SIGTERM (uvicorn's graceful shutdown flushes
    the decision log); `on_listening` runs once the app has started and accepts connections."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    gateway = getattr(getattr(app, "state", None), "gateway", None)

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and on_listening is not None:
                on_listening()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            if self.force_exit and gateway is not None:
                gateway.forced_shutdown = True

    server = Server(uvicorn_config(app, host, port, access_log=access_log))
    try:
        server.run(sockets=[sock])
    finally:
        if gateway is not None:
            # A forced stop skips the app's shutdown: commit the rows of the streams it cut.
            gateway.decision_log.close()
    if not server.started:
        # uvicorn reports why on its own log; make the exit code say so too.
        raise SystemExit(1)
