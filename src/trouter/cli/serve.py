"""`trouter serve`: the OpenAI-compatible routing gateway (its decision log: `trouter logs`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from trouter.cli.app import app, console
from trouter.errors import ConfigError

DEFAULT_KEY_ENV = "TROUTER_API_KEYS"


@app.command("serve")
def serve(
    router: Annotated[
        Path, typer.Option("--router", help="A saved router directory (`trouter train`).")
    ],
    pool: Annotated[
        Path | None,
        typer.Option(
            "--pool",
            help="Pool YAML with the models' endpoints (default: the router's own pool).",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Decision-log store: a SQLAlchemy URL or a SQLite file "
            "(default: $TROUTER_HOME/trouter.sqlite).",
        ),
    ] = None,
    api_key_env: Annotated[
        str,
        typer.Option("--api-key-env", help="Variable holding the CLIENTS' keys (comma-separated)."),
    ] = DEFAULT_KEY_ENV,
    api_keys_file: Annotated[
        Path | None, typer.Option("--api-keys-file", help="File of client keys, one per line.")
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without client keys, even off loopback.")
    ] = False,
    tradeoff: Annotated[
        str, typer.Option("--tradeoff", help="What a plain `model: trouter` means.")
    ] = "balanced",
    route_turns: Annotated[
        int, typer.Option("--route-turns", help="User turns the router reads (0: all).")
    ] = 1,
    route_max_chars: Annotated[
        int, typer.Option("--route-max-chars", help="Characters of text the router reads.")
    ] = 4000,
    deadline: Annotated[
        float, typer.Option("--deadline", help="Seconds for all attempts of one request.")
    ] = 120.0,
    max_queue: Annotated[
        float | None,
        typer.Option(
            "--max-queue",
            help="Seconds a request waits for a full model (max_concurrency, "
            "requests_per_minute) before trying the next model of its chain; a pool model's "
            "max_queue_s wins; the chain's last model waits up to the deadline "
            "(default: every model does).",
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option("--max-attempts", help="Models tried per request (default: whole chain)."),
    ] = None,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest request body accepted, in MiB.")
    ] = 8.0,
    log_queries: Annotated[
        bool,
        typer.Option("--log-queries/--no-log-queries", help="Keep the routed text in the log."),
    ] = True,
    stream_usage: Annotated[
        bool,
        typer.Option(
            "--stream-usage/--no-stream-usage",
            help="Ask upstreams for a stream's usage chunk (turn off for servers that reject stream_options).",
        ),
    ] = True,
    public_metrics: Annotated[
        bool, typer.Option("--public-metrics", help="Serve /metrics without client auth.")
    ] = False,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="uvicorn's per-request access log.")
    ] = False,
) -> None:
    """Serve an OpenAI-compatible gateway that routes each request with a trained router.

    Model names: trouter (the default trade-off), trouter:quality, trouter:balanced, trouter:cost, trouter:lambda=200, trouter:budget=0.5 ($ per 1k queries), or a pool model's own name to bypass routing.

    Response headers: x-trouter-model, x-trouter-routed-model, x-trouter-predicted-quality, x-trouter-predicted-cost, x-trouter-task, x-trouter-lambda, x-trouter-overhead-ms, x-trouter-fallbacks, x-trouter-request-id (the decision-log row).
    """
    from trouter.serve.server import prepare_process

    prepare_process()  # first: thread settings that must precede numpy's import
    from trouter.serve import GatewayConfig, app_from_paths
    from trouter.serve.auth import load_client_keys
    from trouter.serve.server import LOOPBACK, listen_socket
    from trouter.serve.server import serve as run_server
    from trouter.store import default_url, shown_url, url_for

    keys = load_client_keys(api_key_env, api_keys_file)
    if not keys and not no_auth and host not in LOOPBACK:
        raise ConfigError(
            f"refusing to serve on {host} without client keys; set {api_key_env} (or --api-keys-file), "
            "or pass --no-auth if something in front of the gateway authenticates"
        )
    if not math.isfinite(max_body_mb) or max_body_mb <= 0:
        raise ConfigError(f"--max-body-mb must be a positive number of MiB, not {max_body_mb}")
    config = GatewayConfig(
        api_keys=keys,
        default_tradeoff=tradeoff,
        route_turns=route_turns,
        route_max_chars=route_max_chars,
        deadline_s=deadline,
        max_queue_s=max_queue,
        max_attempts=max_attempts,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        log_queries=log_queries,
        stream_usage=stream_usage,
        public_metrics=public_metrics,
    )
    url = url_for(db) if db is not None else default_url()
    sock = listen_socket(host, port)  # a busy port fails now, not after loading the router
    gateway_app = app_from_paths(router, pool, config, url)
    gw = gateway_app.state.gateway
    gw.routing.warm_up(config.tradeoff)  # load the encoder now; a bad --tradeoff fails here
    banner = (
        f"trouter gateway: router [bold]{gw.router.name}[/] over {', '.join(gw.pool.names)}\n"
        f"  listening on http://{host}:{port}/v1   (model: trouter, trouter:cost, trouter:lambda=N, ...)\n"
        f"  client auth: {'on, ' + str(len(keys)) + ' key(s)' if keys else 'OFF'}   "
        f"decision log: {shown_url(url)}"
    )
    run_server(
        gateway_app,
        sock,
        access_log=access_log,
        on_listening=lambda: console.print(banner, highlight=False),
    )
