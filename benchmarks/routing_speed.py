"""Routing speed of every registered router, fitted on real data, with the MiniLM and static encoders.

For each (encoder, router): p50 / p99 latency of `route([one query])` and the throughput
(decisions per second) of `route(batch)` for a batch of `--batch` queries, with query encoding
included (a fresh encode per call, no embedding cache) and excluded (embeddings precomputed, so
the figure is the router's own work: prediction, utility, decision objects), and the same batch
through `predict` alone (estimates, no `Decision` objects).

    nice -n 10 python benchmarks/routing_speed.py --data routerbench_subset

Routers are fitted on the dataset's training split (its own split, else 70%); the queries routed
are distinct queries of the whole dataset. Torch may use every core (set OMP_NUM_THREADS to pin).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from trouter.data.loaders import load_dataset
from trouter.encode import Embeddings, Encoder, load_encoder
from trouter.routers.registry import make_router, router_class, router_names


class SwitchableEncoder:
    """Wraps an encoder; with `precomputed` on, known texts come from memory (encoding excluded)."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
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

    def warm(self, texts: Sequence[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memory]
        for start in range(0, len(todo), 512):
            chunk = todo[start : start + 512]
            self.memory.update(zip(chunk, self.inner.encode(chunk), strict=True))

    def encode(self, texts: Sequence[str]) -> Embeddings:
        if self.precomputed:
            return np.stack([self.memory[t] for t in texts]).astype(np.float32)
        return self.inner.encode(texts)


@dataclass(frozen=True)
class SpeedRow:
    encoder: str
    router: str
    encoding: str  # "included" or "excluded"
    p50_ms: float
    p99_ms: float
    batch_per_s: float
    predict_per_s: float


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
    enc.precomputed = encoding == "excluded"
    router.route(singles[:3])  # warm-up (lazy loads, first-call overheads)
    latencies = []
    for q in singles:
        start = time.perf_counter()
        router.route([q])
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    decisions = router.route(batch)
    elapsed = time.perf_counter() - start
    assert len(decisions) == len(batch)
    # The same batch through `predict` alone: estimates without building Decision objects.
    start = time.perf_counter()
    router.predict(batch)
    predict_elapsed = time.perf_counter() - start
    return SpeedRow(
        encoder=enc.spec,
        router=router_name,
        encoding=encoding,
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        batch_per_s=len(batch) / elapsed,
        predict_per_s=len(batch) / predict_elapsed,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--encoders", default="minilm,static")
    parser.add_argument("--routers", default=None, help="default: every non-evaluation router")
    parser.add_argument("--singles", type=int, default=200, help="single-query calls timed")
    parser.add_argument("--batch", type=int, default=2000, help="queries in the batch call")
    args = parser.parse_args()

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

    console = Console()
    console.print(
        f"{dataset.name}: fitted on {train.n_queries} queries; single-query latency over "
        f"{len(singles)} calls, batch of {len(batch)}; {platform.processor() or platform.machine()}"
    )
    rows: list[SpeedRow] = []
    for spec in args.encoders.split(","):
        enc = SwitchableEncoder(load_encoder(spec))
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
                    f"p99 {row.p99_ms:.2f} ms, {row.batch_per_s:,.0f} decisions/s, "
                    f"predict {row.predict_per_s:,.0f} queries/s"
                )

    table = Table(
        "encoder",
        "router",
        "encoding",
        "p50 ms",
        "p99 ms",
        "route/s",
        "predict/s",
        caption="p50 / p99: route([one query]); route/s: decisions per second for the batch; "
        "predict/s: the same batch through predict() (no Decision objects)",
    )
    for r in rows:
        table.add_row(
            r.encoder,
            r.router,
            r.encoding,
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.batch_per_s:,.0f}",
            f"{r.predict_per_s:,.0f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
