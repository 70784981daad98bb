"""Routing speed of every registered router, fitted on real data, with the MiniLM and static encoders.

For each (encoder, router): p50 / p99 latency of `route([one query])` and the throughput
(decisions per second) of `route(batch)` for a batch of `--batch` queries, with query encoding
included (a fresh encode per call, no embedding cache) and excluded (embeddings precomputed, so
the figure is the router's own work: prediction, utility, decision objects), and the same batch
through `predict` alone (estimates, no `Decision` objects; encoding excluded only). The
MiniLM-included batch is dominated by the encoder (about 15 long RouterBench prompts per second on
two shared cores), so it takes about a minute per router.

    nice -n 10 python benchmarks/routing_speed.py --data routerbench_subset

Routers are fitted on the dataset's training split (its own split, else 70%); the queries routed
are distinct queries of the whole dataset. Torch may use every core (set OMP_NUM_THREADS to pin).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from trouter.data.loaders import load_dataset
from trouter.encode import Embeddings, Encoder, load_encoder
from trouter.routers.registry import make_router, router_class, router_names


class SwitchableEncoder:
    """Wraps an encoder; with `precomputed` on, known texts come from memory (encoding excluded)."""

    def __init__(self, inner: Encoder, cached: Encoder) -> None:
        self.inner = inner
        self.cached = cached  # the same encoder behind the on-disk cache, to warm up quickly
        self.memory: dict[str, np.ndarray] = {}
        self.precomputed = False

    @property
    def id(self) -> str:
        return self.inner.id

    @property
    def spec(self) -> str:
        return self.inner.spec

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __getattr__(self, name: str) -> Any:
        # While encoding is included, a static encoder's token sums too (TRouter's question view
        # reads a prompt's boilerplate once through them); precomputed, only `encode` exists.
        if name in ("token_sums", "reads_whole") and not self.__dict__.get("precomputed", True):
            return getattr(self.inner, name)
        raise AttributeError(name)

    def warm(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memory]
        for start in range(0, len(todo), 512):
            chunk = todo[start : start + 512]
            self.memory.update(zip(chunk, self.cached.encode(chunk), strict=True))

    def encode(self, texts: Sequence[str]) -> Embeddings:
        if self.precomputed:
            # A router may encode texts of its own (TRouter encodes the tail of a long query):
            # those are computed once here and served from memory afterwards.
            self.warm(texts)
            return np.stack([self.memory[t] for t in texts]).astype(np.float32)
        return self.inner.encode(texts)


@dataclass(frozen=True)
class SpeedRow:
    encoder: str
    router: str
    encoding: str  # "included" or "excluded"
    p50_ms: float
    p99_ms: float
    p50_cpu_ms: float
    batch_per_s: float
    batch_per_cpu_s: float
    predict_per_s: float | None


def measure(
    router_name: str,
    enc: SwitchableEncoder,
    train_data: object,
    singles: list[str],
    batch: list[str],
    encoding: str,
    params: dict[str, object],
) -> SpeedRow:
    router = make_router(router_name, encoder=enc, seed=0, **params)
    enc.precomputed = True  # training embeddings are precomputed either way
    router.fit(train_data)  # type: ignore[arg-type]
    if encoding == "excluded":
        router.predict(singles + batch)  # memoise every text the router will encode
    enc.precomputed = encoding == "excluded"
    router.route(singles[:3])  # warm-up (lazy loads, first-call overheads)
    # Start from a collected heap, as timeit does: otherwise a full collection of the fit's
    # garbage (some 370k objects) can land in the timed batch and cost it ten times over.
    gc.collect()
    latencies, cpu = [], []
    for q in singles:
        start, start_cpu = time.perf_counter(), time.process_time()
        router.route([q])
        latencies.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    start, start_cpu = time.perf_counter(), time.process_time()
    decisions = router.route(batch)
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert len(decisions) == len(batch)
    predict_per_s = None
    if encoding == "excluded":
        # The same batch through `predict` alone: estimates without building Decision objects.
        start = time.perf_counter()
        router.predict(batch)
        predict_per_s = len(batch) / (time.perf_counter() - start)
    return SpeedRow(
        encoder=enc.spec,
        router=router_name,
        encoding=encoding,
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        p50_cpu_ms=float(np.percentile(cpu, 50)),
        batch_per_s=len(batch) / elapsed,
        batch_per_cpu_s=len(batch) / max(elapsed_cpu, 1e-9),
        predict_per_s=predict_per_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--encoders", default="minilm,static")
    parser.add_argument("--routers", default=None, help="default: every non-evaluation router")
    parser.add_argument("--singles", type=int, default=100, help="single-query calls timed")
    parser.add_argument("--batch", type=int, default=1000, help="queries in the batch call")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's own, one per core). On a busy machine two OpenMP "
        "threads spin-wait for each other, which can make MiniLM 5-10x slower; 1 is steadier.",
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    dataset = load_dataset(args.data, args.data_root)
    split = dataset.own_split() or dataset.split(seed=0)
    train = split.train
    queries = list(dict.fromkeys(dataset.queries))
    rng = np.random.default_rng(0)
    pool = [queries[i] for i in rng.permutation(len(queries))]
    batch = pool[: args.batch]
    singles = pool[args.batch : args.batch + args.singles] or pool[: args.singles]
    names = (
        args.routers.split(",")
        if args.routers
        else [n for n in router_names() if not router_class(n).evaluation_only]
    )
    params: dict[str, dict[str, object]] = {"single": {"model": dataset.models[0]}}

    console = Console(width=160)
    console.print(
        f"load average at start: {os.getloadavg()[0]:.2f} (1 min); torch threads: "
        f"{args.threads or 'default'}"
    )
    console.print(
        f"{dataset.name}: fitted on {train.n_queries} queries; single-query latency over "
        f"{len(singles)} calls, batch of {len(batch)}; {platform.processor() or platform.machine()}"
    )
    rows: list[SpeedRow] = []
    for spec in args.encoders.split(","):
        enc = SwitchableEncoder(load_encoder(spec), load_encoder(spec, cache=True))
        start = time.perf_counter()
        enc.warm(train.queries + batch + singles)
        console.print(
            f"encoder {spec}: {len(enc.memory)} texts encoded in {time.perf_counter() - start:.1f} s"
        )
        for name in names:
            for encoding in ("included", "excluded"):
                row = measure(name, enc, train, singles, batch, encoding, params.get(name, {}))
                rows.append(row)
                console.print(
                    f"  {spec:7s} {name:8s} encoding {encoding}: p50 {row.p50_ms:.2f} ms, "
                    f"p99 {row.p99_ms:.2f} ms, CPU p50 {row.p50_cpu_ms:.2f} ms, "
                    f"{row.batch_per_s:,.0f} decisions/s ({row.batch_per_cpu_s:,.0f} per CPU-s)"
                )

    table = Table(
        "encoder",
        "router",
        "encoding",
        "p50 ms",
        "p99 ms",
        "p50 CPU ms",
        "route/s",
        "route/CPU-s",
        "predict/s",
        caption="p50 / p99: wall time of route([one query]); CPU: process CPU time (all threads; on a "
        "busy machine it includes OpenMP spin-waiting); route/s: decisions per second for the batch; "
        "predict/s: the same batch through predict() (no Decision objects)",
    )
    for r in rows:
        table.add_row(
            r.encoder,
            r.router,
            r.encoding,
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.p50_cpu_ms:.2f}",
            f"{r.batch_per_s:,.0f}",
            f"{r.batch_per_cpu_s:,.0f}",
            "-" if r.predict_per_s is None else f"{r.predict_per_s:,.0f}",
        )
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
