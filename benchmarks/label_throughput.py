"""Labelling throughput (observations/s) and peak memory, against an instant local server.

The upstream is `python -m trouter.testing` in its own process (it answers at once),
so the figures measure trouter's side: the LLM client (admission, cache lookups, call rows), the
scorers, and the batched observation upserts into a fresh SQLite store. Items are numeric,
multiple-choice and exact-match (the fake server echoes the prompt; the scorers do their normal
work on it); code and judge items are left out because their cost is the sandbox or a second
LLM call, measured separately (`--sandbox`).

    nice -n 10 python benchmarks/label_throughput.py                      # 2,000 items x 4 models
    nice -n 10 python benchmarks/label_throughput.py --memory 100000      # + peak RSS at 100k

Passes, each timed: `fresh` (every call goes to the server), `cached` (a new run id, so every
observation is made again but every answer comes from the LLM cache), `resume` (the same run id:
everything is kept, nothing is called). Concurrency is the total in flight: `--concurrency` split
evenly over the models (each model's max_concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "trouter.testing", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "fake OpenAI server at ..." once it listens
    return proc


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process, or of another one by pid (from /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_items(n: int) -> list:
    from trouter.synth.items import SynthItem, format_choices

    items = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            items.append(
                SynthItem(
                    query=f"Item {i}: what is {i} plus {i}? Think step by step.",
                    reference=str(2 * i),
                    answer_format="numeric",
                    path=f"math/arithmetic/level{i % 5}",
                    generator="bench",
                    prompt_version="bench/1",
                )
            )
        elif kind == 1:
            choices = [f"option {i}-{k}" for k in range(4)]
            items.append(
                SynthItem(
                    query=format_choices(f"Item {i}: which option is right?", choices),
                    reference="ABCD"[i % 4],
                    choices=choices,
                    answer_format="multiple_choice",
                    path=f"trivia/general/level{i % 5}",
                    generator="bench",
                    prompt_version="bench/1",
                )
            )
        else:
            items.append(
                SynthItem(
                    query=f"Item {i}: name the capital of country number {i}.",
                    reference=f"city {i}",
                    answer_format="exact",
                    path=f"geography/capitals/level{i % 5}",
                    generator="bench",
                    prompt_version="bench/1",
                )
            )
    return items


def make_pool(url: str, n_models: int, concurrency: int):
    from trouter.pool import ModelSpec, Pool

    per_model = max(1, concurrency // n_models)
    return Pool.of(
        ModelSpec(
            name=f"m{k}",
            base_url=url,
            input_price=0.1 * (k + 1),
            output_price=0.2 * (k + 1),
            max_concurrency=per_model,
        )
        for k in range(n_models)
    )


async def label_pass(items, pool, store, run: str) -> tuple[float, object]:
    from trouter.label.runner import label_items
    from trouter.llm import LLMClient

    client = LLMClient(store, run=run)
    started = time.perf_counter()
    try:
        summary = await label_items(items, pool, client, store=store, run=run)
    finally:
        await client.aclose()
    return time.perf_counter() - started, summary


def throughput(args: argparse.Namespace) -> None:
    from trouter.store import Store, sqlite_url

    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(sqlite_url(Path(tmp) / "bench.sqlite"))
            items = make_items(args.items)
            pool = make_pool(f"http://127.0.0.1:{port}/v1", args.models, args.concurrency)
            n = len(items) * len(pool)
            print(
                f"{args.items} items x {args.models} models = {n} observations, total concurrency "
                f"{args.concurrency} ({pool.models[0].max_concurrency} per model)",
                flush=True,
            )
            for name, run in (("fresh", "bench"), ("cached", "bench-2"), ("resume", "bench")):
                cpu_before, server_before = cpu_seconds(), cpu_seconds(server.pid)
                seconds, summary = asyncio.run(label_pass(items, pool, store, run))
                cpu = (cpu_seconds() - cpu_before) / n * 1000
                server_cpu = (cpu_seconds(server.pid) - server_before) / n * 1000
                made = summary.observed  # type: ignore[attr-defined]
                print(
                    f"  {name:7s} {seconds:7.2f} s  {n / seconds:7.0f} observations/s  "
                    f"CPU/observation: labeller {cpu:.2f} ms, server {server_cpu:.2f} ms  "
                    f"({made} made, {summary.reused} kept, {summary.cache_hits} from cache)",  # type: ignore[attr-defined]
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait()


def memory(args: argparse.Namespace) -> None:
    """Run in a child process so ru_maxrss is this scenario's own peak."""
    from trouter.label.observations import load_observations, to_dataset, write_jsonl
    from trouter.store import Store, sqlite_url

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(sqlite_url(Path(tmp) / "bench.sqlite"))
            n_items = args.memory // args.models
            items = make_items(n_items)
            pool = make_pool(f"http://127.0.0.1:{port}/v1", args.models, args.concurrency)
            base = rss_mb()
            seconds, _ = asyncio.run(label_pass(items, pool, store, "mem"))
            after_label = rss_mb()
            observations = load_observations(store, "mem")
            dataset = to_dataset(observations, items, pool, "mem")
            dataset.save(Path(tmp) / "labels.parquet")
            write_jsonl(observations, items, pool, Path(tmp) / "labels.observations.jsonl")
            after_export = rss_mb()
            size = (Path(tmp) / "bench.sqlite").stat().st_size / 1e6
            print(
                f"{len(items) * len(pool)} observations in {seconds:.1f} s "
                f"({len(items) * len(pool) / seconds:.0f}/s); peak RSS: {base:.0f} MB after imports "
                f"and items, {after_label:.0f} MB after labelling, {after_export:.0f} MB after "
                f"writing the dataset and JSONL; store {size:.0f} MB",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait()


def sandbox(args: argparse.Namespace) -> None:
    from trouter.label.sandbox import run_code

    started = time.perf_counter()
    for i in range(args.sandbox):
        run_code(f"def f():\n    return {i}", tests=[f"assert f() == {i}"])
    seconds = time.perf_counter() - started
    print(
        f"sandbox: {args.sandbox} runs one at a time, {seconds / args.sandbox * 1000:.0f} ms each"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--memory", type=int, default=0, help="observations for the memory run")
    parser.add_argument("--sandbox", type=int, default=0, help="sandboxed code runs to time")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TROUTER_HOME", tempfile.mkdtemp(prefix="trouter-bench-"))
    if args.memory_child:
        memory(args)
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at start (other work on the machine slows the "
        "wall-clock figures; CPU ms per observation is the steadier measure)"
    )
    throughput(args)
    if args.memory:
        subprocess.run(
            [
                sys.executable,
                str(HERE),
                "--memory-child",
                "--memory",
                str(args.memory),
                "--models",
                str(args.models),
                "--concurrency",
                str(args.concurrency),
            ],
            check=True,
        )
    if args.sandbox:
        sandbox(args)


if __name__ == "__main__":
    main()
