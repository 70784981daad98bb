"""Fit time, prediction latency and in-domain quality of the learned baselines on real data.

For each dataset and router: the fit time (query encoding excluded: embeddings are computed once
and served from memory), p50 latency of `predict([one query])` and batch throughput with
encoding excluded, and on the test part the mean per-model correlation of predicted quality with
the true score, AIQ and gap recovered (`trouter.eval.metrics`).

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/baselines.py --data routerbench_subset

The split is the dataset's own when it ships one (its validation part, if any, is passed as
`val`), else the seeded 70/10/20 split. The first run encodes every query with MiniLM into the
on-disk embedding cache; later runs read it.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from trouter.data.loaders import load_dataset
from trouter.encode import Embeddings, load_encoder
from trouter.eval import metrics
from trouter.routers.registry import make_router

LEARNED = ("knn", "linear", "mlp", "mf")


class MemoryEncoder:
    """Serves precomputed embeddings, so timings measure the router and not the encoder."""

    def __init__(self, spec: str, texts: Sequence[str]) -> None:
        inner = load_encoder(spec, cache=True)
        self.id, self.spec, self.dim = inner.id, inner.spec, inner.dim
        unique = list(dict.fromkeys(texts))
        self.memory = dict(zip(unique, inner.encode(unique), strict=True))

    def encode(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.memory[t] for t in texts]).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--routers", default=",".join(LEARNED))
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=200, help="single-query predictions timed")
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    split = dataset.own_split() or dataset.split(seed=args.seed)
    train, val, test = split.train, split.val, split.test
    encoder = MemoryEncoder(args.encoder, dataset.queries)
    S, C = np.asarray(test.scores), np.asarray(test.costs)
    zero, oracle = metrics.zero_aiq(S, C), metrics.aiq(metrics.oracle_curve(S, C), S, C)

    table = Table(
        title=f"{args.data}: train {train.n_queries}, val {val.n_queries}, test {test.n_queries} "
        f"queries x {dataset.n_models} models; zero AIQ {zero:.4f}, oracle {oracle:.4f}"
    )
    for column in ("router", "fit s", "p50 1 query ms", "batch q/s", "quality corr", "AIQ", "gap"):
        table.add_column(column, justify="left" if column == "router" else "right")
    for name in args.routers.split(","):
        router = make_router(name, encoder=encoder, seed=args.seed)
        start = time.perf_counter()
        router.fit(train, val=val if val.n_queries else None)
        fit_s = time.perf_counter() - start

        queries = test.queries
        start = time.perf_counter()
        est = router.predict(queries)
        batch_qps = len(queries) / (time.perf_counter() - start)
        single = []
        for i in range(args.repeats):
            start = time.perf_counter()
            router.predict([queries[i % len(queries)]])
            single.append(time.perf_counter() - start)

        corr = [
            np.corrcoef(est.quality[:, j], S[:, j])[0, 1]
            for j in range(S.shape[1])
            if S[:, j].std() > 0 and est.quality[:, j].std() > 0
        ]
        aiq = metrics.aiq(metrics.curve(est.quality, est.cost, S, C), S, C)
        table.add_row(
            name,
            f"{fit_s:.1f}",
            f"{np.median(single) * 1000:.3f}",
            f"{batch_qps:,.0f}",
            f"{np.mean(corr):.3f}",
            f"{aiq:.4f}",
            f"{metrics.gap_recovered(aiq, zero, oracle):.3f}",
        )
        Console().print(f"{name}: {router.selection_}", markup=False)
    Console().print(table)
    Console().print(
        f"{platform.processor() or platform.machine()}, {platform.python_version()}; "
        "encoding excluded from every timing"
    )


if __name__ == "__main__":
    main()
