"""Gateway load: requests/s and p50 / p99 latency through `trouter serve` versus straight to the
same instant upstream, at several client concurrencies, and optionally through LiteLLM's proxy.

Every party is its own process on loopback: the upstream (`python -m trouter.testing`,
which answers instantly), the proxy under test, and the load generator (this script re-run with
`--loadgen`: asyncio, keep-alive HTTP/1.1 connections, one request at a time per connection).
Each (target, concurrency) cell runs for `--seconds` after a warm-up, so the whole run is bounded.

    nice -n 10 python benchmarks/gateway_load.py                        # static + MiniLM, 1/16/128
    python benchmarks/gateway_load.py --litellm /tmp/litellm-venv/bin/litellm

The gateway serves a `--router` (default TRouter; RESULTS-gateway.md's first tables used kNN)
fitted on the training split of `--data` (default the shared routerbench_subset; `toy` needs no
data) and saved under $TROUTER_HOME/bench-gateway/, so later
runs reuse them. Requests carry that dataset's real queries (the first user turn), so encoding
costs what it would in production. The gateway runs with client auth and the decision log on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CLIENT_KEY = "sk-bench-client-key"
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------------------- load generator


async def _one_connection(
    port: int, path: bytes, bodies: list[bytes], stop_at: float, out: dict[str, list[float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            head = (
                b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                b"authorization: Bearer %s\r\ncontent-length: %d\r\n\r\n"
                % (path, CLIENT_KEY.encode(), len(body))
            )
            started = time.perf_counter()
            writer.write(head + body)
            status, headers = await _read_head(reader)
            await _read_body(reader, headers)
            elapsed = time.perf_counter() - started
            out["latency" if status == 200 else "errors"].append(elapsed)
            overhead = headers.get(b"x-trouter-overhead-ms")
            if overhead is not None:
                out["overhead_ms"].append(float(overhead))
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        out["errors"].append(0.0)
        print(f"connection failed: {exc!r}", file=sys.stderr)
    finally:
        writer.close()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return int(lines[0].split(b" ", 2)[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    chunks = []
    while True:  # chunked
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return b"".join(chunks)
        chunks.append(data[:-2])


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one cell: `concurrency` connections for warm-up + `seconds`; latencies of the latter."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    bodies = [
        json.dumps(
            {"model": spec["model"], "messages": [{"role": "user", "content": q}], "max_tokens": 64}
        ).encode()
        for q in spec["queries"]
    ]
    path = spec["path"].encode()

    async def run(seconds: float) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"latency": [], "errors": [], "overhead_ms": []}
        stop_at = time.perf_counter() + seconds
        # Stagger the start so connections do not move in lock-step.
        await asyncio.gather(
            *(
                _one_connection(spec["port"], path, bodies[k:] + bodies[:k], stop_at, out)
                for k in range(spec["concurrency"])
            )
        )
        return out

    asyncio.run(run(spec["warmup"]))
    started = time.perf_counter()
    out = asyncio.run(run(spec["seconds"]))
    wall = time.perf_counter() - started
    lat = np.asarray(out["latency"]) * 1000.0
    return {
        "requests": len(lat),
        "errors": len(out["errors"]),
        "rps": len(lat) / wall,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "overhead_p50_ms": float(np.median(out["overhead_ms"])) if out["overhead_ms"] else None,
    }


# ---------------------------------------------------------------------------------- orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    import httpx

    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise SystemExit(f"process exited early: {' '.join(map(str, proc.args))}")  # type: ignore[arg-type]
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"nothing answered on port {port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def load_data(name: str) -> Any:
    if name == "toy":
        sys.path.insert(0, str(HERE.parents[1] / "tests"))
        from factories import toy_dataset

        return toy_dataset(n_per_task=100)
    from trouter.data.loaders import load_dataset

    return load_dataset(name)


def ensure_router(data: Any, data_name: str, encoder: str, router: str) -> Path:
    """A `router` for `data` with `encoder`, fitted once and kept under $TROUTER_HOME."""
    from trouter.encode import load_encoder
    from trouter.paths import home
    from trouter.routers.registry import make_router

    # Keyed by the encoder's id, not its spec: a new version of an encoder gets a new router.
    encoder_id = load_encoder(encoder).id
    directory = home() / "bench-gateway" / f"{router}-{data_name}-{encoder_id}"
    if (directory / "config.json").is_file():
        return directory
    split = data.split(seed=0)
    print(
        f"fitting {router} ({encoder}) on {split.train.n_queries} {data_name} queries ...",
        flush=True,
    )
    started = time.perf_counter()
    make_router(router, encoder=encoder).fit(split.train, val=split.val).save(directory)
    print(f"  fitted in {time.perf_counter() - started:.0f} s", flush=True)
    return directory


def write_pool(models: tuple[str, ...], upstream: str, path: Path) -> None:
    from trouter.pool import ModelSpec, Pool

    # Made-up prices rising along the pool; only the decision log's $ column depends on them.
    Pool.of(
        ModelSpec(
            name=m,
            model="fake-model",
            base_url=upstream,
            input_price=0.1 * (i + 1),
            output_price=0.2 * (i + 1),
        )
        for i, m in enumerate(models)
    ).save(path)


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cell(
    target: str,
    port: int,
    path: str,
    model: str,
    concurrency: int,
    args: argparse.Namespace,
    queries: list[str],
    pid: int | None = None,
) -> dict[str, Any]:
    spec = {
        "port": port,
        "path": path,
        "model": model,
        "concurrency": concurrency,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "queries": queries,
    }
    cpu_before = cpu_seconds(pid)
    done = subprocess.run(
        [sys.executable, str(HERE), "--loadgen"],
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=True,
    )
    cpu_after = cpu_seconds(pid)
    row = {"target": target, "concurrency": concurrency, **json.loads(done.stdout)}
    # CPU the proxy spent per request (warm-up included in both counts): robust to a busy machine.
    served = row["requests"] * (1 + args.warmup / args.seconds)
    row["proxy_cpu_ms_per_request"] = (
        (cpu_after - cpu_before) * 1000.0 / served
        if cpu_before is not None and cpu_after is not None and served
        else None
    )
    print(
        f"{target:28s} c={concurrency:<4d} {row['rps']:8.1f} req/s   p50 {row['p50_ms']:7.2f} ms   "
        f"p99 {row['p99_ms']:7.2f} ms   errors {row['errors']}"
        + (
            f"   router p50 {row['overhead_p50_ms']:.2f} ms"
            if row["overhead_p50_ms"] is not None
            else ""
        )
        + (
            f"   proxy CPU {row['proxy_cpu_ms_per_request']:.2f} ms/req"
            if row["proxy_cpu_ms_per_request"]
            else ""
        ),
        flush=True,
    )
    return row


def start_litellm(binary: str, upstream: str, port: int, work: Path) -> subprocess.Popen[bytes]:
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: fake-model\n"
        "    litellm_params:\n"
        "      model: openai/fake-model\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-upstream-unused\n"
        "general_settings:\n"
        f"  master_key: {CLIENT_KEY}\n"
    )
    env = {**os.environ, "LITELLM_LOG": "ERROR"}
    return subprocess.Popen(
        [binary, "--config", str(config), "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="routerbench_subset", help="dataset name, or `toy`")
    parser.add_argument("--encoders", default="static,minilm")
    parser.add_argument("--router", default="trouter", help="the router the gateway serves")
    parser.add_argument("--concurrency", default="1,16,128")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--warmup", type=float, default=1.5)
    parser.add_argument("--litellm", default=None, help="path of a `litellm` binary (own venv)")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        print(json.dumps(loadgen(json.loads(sys.stdin.read()))))
        return

    levels = [int(c) for c in args.concurrency.split(",")]
    data = load_data(args.data)
    queries = list(dict.fromkeys(data.queries))[:500]
    routers = {
        enc: ensure_router(data, args.data, enc, args.router)
        for enc in args.encoders.split(",")
        if enc
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average before: {os.getloadavg()}"
    )

    work = Path(tempfile.mkdtemp(prefix="gateway-load-"))
    rows: list[dict[str, Any]] = []
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "trouter.testing", "--port", str(up_port)],
        stdout=subprocess.DEVNULL,
    )
    procs = [upstream]
    try:
        wait_http(up_port, "/v1/models", upstream)
        upstream_url = f"http://127.0.0.1:{up_port}/v1"
        for c in levels:
            rows.append(
                run_cell(
                    "direct (upstream)",
                    up_port,
                    "/v1/chat/completions",
                    "fake-model",
                    c,
                    args,
                    queries,
                )
            )
        for enc, router_dir in routers.items():
            pool = work / f"pool-{enc}.yaml"
            write_pool(tuple(data.models), upstream_url, pool)
            port = free_port()
            gw = subprocess.Popen(
                [sys.executable, "-c", "from trouter.cli import main; main()", "serve", "--router", str(router_dir),
                 "--pool", str(pool), "--port", str(port), "--db", str(work / f"log-{enc}.sqlite")],
                env={**os.environ, "TROUTER_API_KEYS": CLIENT_KEY},
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(gw)
            wait_http(port, "/health", gw)
            for c in levels:
                rows.append(
                    run_cell(
                        f"trouter ({enc})",
                        port,
                        "/v1/chat/completions",
                        "trouter",
                        c,
                        args,
                        queries,
                        gw.pid,
                    )
                )
            stop(gw)
        if args.litellm:
            port = free_port()
            lite = start_litellm(args.litellm, upstream_url, port, work)
            procs.append(lite)
            wait_http(port, "/health/liveliness", lite)
            for c in levels:
                rows.append(
                    run_cell(
                        "litellm proxy",
                        port,
                        "/v1/chat/completions",
                        "fake-model",
                        c,
                        args,
                        queries,
                        lite.pid,
                    )
                )
            stop(lite)
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)

    direct = {r["concurrency"]: r for r in rows if r["target"].startswith("direct")}
    print(
        "\n| target | clients | req/s | p50 ms | p99 ms | added p50 ms | proxy CPU ms/req | errors |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        added = (
            r["p50_ms"] - direct[r["concurrency"]]["p50_ms"]
            if r["concurrency"] in direct
            else float("nan")
        )
        r["added_p50_ms"] = 0.0 if r["target"].startswith("direct") else added
        print(
            f"| {r['target']} | {r['concurrency']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['added_p50_ms']:.2f} | {_fmt(r.get('proxy_cpu_ms_per_request'))} | {r['errors']} |"
        )
    print(f"\nload average after: {os.getloadavg()}")
    if args.out:
        args.out.write_text(
            json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2)
        )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
