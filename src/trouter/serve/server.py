"""Running the app: one uvicorn worker on uvloop + httptools when they are installed.

One process is the intended unit: the router, the pooled upstream client and the log writer live
in it. Scale out with replicas sharing a Postgres store, not with uvicorn workers.
"""

from __future__ import annotations

import importlib.util
from typing import Any

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


def serve(app: Any, host: str, port: int, *, access_log: bool = False) -> None:
    """Serve until SIGINT / SIGTERM (uvicorn's graceful shutdown flushes the decision log)."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, host, port, access_log=access_log))
    server.run()
    if not server.started:
        # uvicorn reports why (port in use, ...) on its own log; make the exit code say so too.
        raise SystemExit(1)
