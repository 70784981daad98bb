"""The gateway app factory: `create_app(router, pool, config, store)` -> a FastAPI app.

    POST /v1/chat/completions   route, forward (with fallback), log; streaming and not
    POST /v1/feedback           a client's score for an answer (see `feedback`)
    GET  /v1/models             the routed names and the pool's models
    GET  /health                liveness and what is loaded (no auth)
    GET  /metrics               Prometheus text (auth unless `public_metrics`)

The router is loaded once, before the app is built, and warmed up at start-up, so no request
pays for loading it. Every error body is OpenAI's error JSON.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trouter.errors import ConfigError
from trouter.pool import Pool
from trouter.routers.base import Router
from trouter.serve.admission import Admission
from trouter.serve.auth import ClientAuth
from trouter.serve.chat import chat_completions
from trouter.serve.config import GatewayConfig
from trouter.serve.decision_log import DecisionWriter
from trouter.serve.errors import SERVER_ERROR, GatewayError, error_payload
from trouter.serve.feedback import record_feedback
from trouter.serve.metrics import CONTENT_TYPE, GatewayMetrics
from trouter.serve.naming import ModelNames
from trouter.serve.routing import RoutingService
from trouter.serve.upstream import Forwarder, new_session, resolve_endpoints
from trouter.store import Store

log = logging.getLogger("trouter.serve")


class Gateway:
    """Everything one app holds: router, pool, settings, upstream client, log writer, metrics."""

    def __init__(self, router: Router, pool: Pool, config: GatewayConfig, store: Store) -> None:
        router_models = tuple(getattr(router, "models_", ()))
        ordered = pool.ordered_as(router_models)
        if ordered is None:
            raise ConfigError(
                f"the router was trained for models {', '.join(router_models) or '(none)'}, "
                f"but the pool has {', '.join(pool.names)}; use the pool it was trained for"
            )
        pool = ordered  # the router's column order, whatever order the pool file lists
        self.router = router
        self.pool = pool
        self.config = config
        self.store = store
        self.names = ModelNames(pool.names, config.tradeoff)
        self.auth = ClientAuth(config.api_keys)
        self.endpoints = resolve_endpoints(pool)  # fails now if an upstream key is missing
        self.routing = RoutingService(router, max_batch=config.routing_batch)
        self.decision_log = DecisionWriter(store)
        self.metrics = GatewayMetrics(pool.names, lambda: self.decision_log.failed_writes)
        #: set when the server is forced to stop (a second Ctrl-C): the streams it cuts are
        #: logged as cut by the shutdown, not by their clients
        self.forced_shutdown = False
        self._session: aiohttp.ClientSession | None = None
        self._forwarder: Forwarder | None = None
        self.started_at = time.time()

    @property
    def forwarder(self) -> Forwarder:
        if self._forwarder is None:
            raise RuntimeError("the gateway is not started (run the app with its lifespan)")
        return self._forwarder

    async def start(self) -> None:
        self.decision_log.start()
        self._session = new_session(self.config.upstream_connections)
        self._forwarder = Forwarder(
            self.endpoints,
            self._session,
            Admission.for_pool(self.pool, self.config.deadline_s, self.config.max_queue_s),
        )
        await anyio.to_thread.run_sync(self.routing.warm_up, self.config.tradeoff)
        self.started_at = time.time()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        self.routing.close()
        await anyio.to_thread.run_sync(self.decision_log.close)

    def model_list(self) -> dict[str, Any]:
        owned = [(n, "trouter") for n in self.names.routed_names]
        owned += [(n, "trouter-pool") for n in self.pool.names]
        return {
            "object": "list",
            "data": [{"id": n, "object": "model", "created": 0, "owned_by": o} for n, o in owned],
        }


def create_app(
    router: Router,
    pool: Pool | None = None,
    config: GatewayConfig | None = None,
    store: Store | None = None,
) -> FastAPI:
    """The gateway app for a fitted router; `pool` (default: the router's own) gives endpoints."""
    pool = pool or getattr(router, "pool_", None)
    if pool is None:
        raise ConfigError("the router has no saved pool; pass a pool with the models' endpoints")
    gw = Gateway(router, pool, config or GatewayConfig(), store or Store())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gw.start()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(
        title="trouter gateway",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gw

    # Plain Starlette routes: FastAPI's per-request parameter machinery buys nothing for a
    # proxy that reads the raw body itself, and it showed in the profile.
    async def chat(request: Request) -> Response:
        return await chat_completions(gw, request)

    async def feedback(request: Request) -> Response:
        return await record_feedback(gw, request)

    async def models(request: Request) -> Response:
        gw.auth.check(request.headers.get("authorization"))
        return JSONResponse(gw.model_list())

    async def model(request: Request) -> Response:
        gw.auth.check(request.headers.get("authorization"))
        model_id = request.path_params["model_id"]
        for entry in gw.model_list()["data"]:
            if entry["id"] == model_id:
                return JSONResponse(entry)
        gw.names.parse(model_id)  # a valid parameterised name is fine; else the 404
        return JSONResponse(
            {"id": model_id, "object": "model", "created": 0, "owned_by": "trouter"}
        )

    async def health(_: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "router": gw.router.name,
                "models": list(gw.pool.names),
                "uptime_s": round(time.time() - gw.started_at, 3),
            }
        )

    async def metrics(request: Request) -> Response:
        if not gw.config.public_metrics:
            gw.auth.check(request.headers.get("authorization"))
        return Response(gw.metrics.render(), media_type=CONTENT_TYPE)

    app.add_route("/v1/chat/completions", chat, methods=["POST"], include_in_schema=False)
    app.add_route("/v1/feedback", feedback, methods=["POST"], include_in_schema=False)
    app.add_route("/v1/models", models, methods=["GET"], include_in_schema=False)
    app.add_route("/v1/models/{model_id:path}", model, methods=["GET"], include_in_schema=False)
    app.add_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)

    @app.exception_handler(GatewayError)
    async def _gateway_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return exc.response()

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = (
            f"Unknown request URL: {request.method} {request.url.path}"
            if exc.status_code == 404
            else f"{exc.detail}: {request.method} {request.url.path}"
        )
        return JSONResponse(
            error_payload(message, "invalid_request_error", code=str(exc.status_code)),
            status_code=exc.status_code,
        )

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error in the gateway", exc_info=exc)
        return JSONResponse(
            error_payload("the gateway failed on this request; see its log", SERVER_ERROR),
            status_code=500,
        )

    return app


def app_from_paths(
    router_dir: str | Path,
    pool_path: str | Path | None = None,
    config: GatewayConfig | None = None,
    db_url: str | None = None,
) -> FastAPI:
    """`create_app` from a saved router directory, a pool file and a store URL (the CLI's way)."""
    from trouter.routers.registry import load_router

    pool = Pool.load(pool_path) if pool_path is not None else None
    router = load_router(router_dir, expect_models=pool.names if pool is not None else None)
    return create_app(router, pool, config, Store(db_url))
