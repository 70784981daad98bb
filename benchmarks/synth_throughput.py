"""Synthesis throughput (LLM calls per second) at generator concurrency 1, 8 and 64, against a
local OpenAI-compatible server that answers instantly.

The server (`trouter.synth.testing.FakeGenerator` behind `FakeOpenAI`) runs in a separate
process so it does not share our GIL. For each concurrency the benchmark measures:

- `synthesize`: the whole QA pipeline over a 64-leaf taxonomy (structured QA batches and
  answerability checks, validation, hashing-encoder dedup, durable JSONL append, store rows,
  and a response-cache write per call to a SQLite file): paid calls per second;
- `synthesize (cached rerun)`: the same job rerun into a new items file, every response from
  the cache;
- `chat, no store` / `chat + store`: bare `LLMClient.chat` calls with distinct prompts, without
  a store and with the cache + call log in a SQLite file: the client's own ceiling.

    nice -n 10 python benchmarks/synth_throughput.py [--leaves 64] [--calls 400]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from trouter.llm import LLMClient
from trouter.pool import ModelSpec
from trouter.profile import TaskProfile
from trouter.store import Store, sqlite_url
from trouter.synth.qa import synthesize
from trouter.taxonomy import Taxonomy

CONCURRENCY = (1, 8, 64)


def serve(port: int) -> None:
    """Child-process mode: the deterministic fake generator on 127.0.0.1:port, until killed."""
    from trouter.synth.testing import FakeGenerator
    from trouter.testing import FakeOpenAI

    FakeOpenAI(FakeGenerator(), port=port).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def profile_for(url: str, concurrency: int) -> TaskProfile:
    return TaskProfile.from_dict(
        {
            "name": "bench",
            "description": "A customer-support assistant for a project-management SaaS product.",
            "levels": [{"name": "domain"}, {"name": "difficulty", "nodes": ["easy", "hard"]}],
            "generator": {
                "name": "gen",
                "model": "fake-model",
                "base_url": url,
                "max_concurrency": concurrency,
                "input_price": 2.5,
                "output_price": 10.0,
            },
            "items_per_leaf": 4,
            "synthesis": {"batch_size": 2, "encoder": "hashing:256"},
        }
    )


async def bench_synthesis(
    url: str, concurrency: int, leaves: int, root: Path
) -> tuple[float, float, int]:
    profile = profile_for(url, concurrency)
    taxonomy = Taxonomy.from_task_names(
        [f"domain {i // 2}/{'easy' if i % 2 == 0 else 'hard'}" for i in range(leaves)],
        levels=["domain", "difficulty"],
    )
    store = Store(sqlite_url(root / f"synth-{concurrency}.sqlite"))
    rates = []
    for attempt in ("paid", "cached"):
        async with LLMClient(store) as client:
            started = time.perf_counter()
            await synthesize(
                profile,
                taxonomy,
                client,
                root / f"items-{concurrency}-{attempt}.jsonl",
                store=store,
            )
            elapsed = time.perf_counter() - started
        rates.append(client.usage.calls / elapsed)
        calls = client.usage.calls
    store.close()
    return rates[0], rates[1], calls


async def bench_chat(url: str, concurrency: int, calls: int, store: Store | None) -> float:
    spec = ModelSpec(name="gen", model="fake-model", base_url=url, max_concurrency=concurrency)
    async with LLMClient(store) as client:
        await client.chat(spec, [{"role": "user", "content": "warm up"}])
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client.chat(spec, [{"role": "user", "content": f"question {i} at {concurrency}"}])
                for i in range(calls)
            )
        )
        return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leaves", type=int, default=64)
    parser.add_argument("--calls", type=int, default=400, help="Bare chat calls per setting.")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}/v1"
        table = Table(
            "concurrency",
            "synthesize calls/s",
            "synthesize (cached rerun) calls/s",
            "chat, no store calls/s",
            "chat + store calls/s",
            title=f"synthesis throughput ({args.leaves} leaves x 4 items; {args.calls} chat calls)",
        )
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for c in CONCURRENCY:
                paid, cached, calls = asyncio.run(bench_synthesis(url, c, args.leaves, root))
                bare = asyncio.run(bench_chat(url, c, args.calls, None))
                store = Store(sqlite_url(root / f"chat-{c}.sqlite"))
                stored = asyncio.run(bench_chat(url, c, args.calls, store))
                store.close()
                table.add_row(
                    str(c), f"{paid:.0f}", f"{cached:.0f}", f"{bare:.0f}", f"{stored:.0f}"
                )
                print(f"concurrency {c}: {calls} synthesis calls done", file=sys.stderr)
        console = Console()
        console.print(table)
        console.print(
            f"{platform.processor() or platform.machine()}, {platform.python_version()}, "
            f"server in a separate process on 127.0.0.1"
        )
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
