"""TRouter's speed: fit time on the largest shared dataset, routing latency and throughput.

1. Fit time of TRouter (our defaults) and the paper-faithful variant on all of routellm_evals
   (15,441 queries x 2 models), query embeddings precomputed (MiniLM encoding is a one-off cost,
   cached on disk, and measured by routing_speed.py), with the epochs each stage ran.
2. Routing: p50 / p99 latency of `route([one query])` and decisions per second for a batch, with
   the static and the MiniLM encoder, encoding included and excluded, for a TRouter fitted on the
   bundled data's training split (`measure` from routing_speed.py, so both scripts time the same
   thing the same way).

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/trouter_speed.py

Targets (issue 3): p50 under 2 ms and a batch over 5,000 queries/s with the static encoder on
this 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from trouter.data.loaders import load_dataset
from trouter.encode import load_encoder
from trouter.routers.registry import make_router

sys.path.insert(0, str(Path(__file__).resolve().parent))
from routing_speed import SwitchableEncoder, measure


def fit_times(data: str, routers: list[str]) -> None:
    dataset = load_dataset(data)
    cached = load_encoder("minilm", cache=True)
    enc = SwitchableEncoder(load_encoder("minilm"), cached)
    start = time.perf_counter()
    enc.warm(dataset.queries)
    print(
        f"{data}: {dataset.n_queries} queries embedded (from the cache) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    enc.precomputed = True
    for name in routers:
        router = make_router(name, encoder=enc, seed=0)
        start, cpu = time.perf_counter(), time.process_time()
        router.fit(dataset)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        info = getattr(router, "training_", {})
        print(
            f"  fit {name:14s} {wall:6.1f} s wall, {cpu:6.1f} s CPU · "
            f"mixture epochs {info.get('mixture_epochs')}, residual epochs "
            f"{info.get('residual_epochs')}, members {router.get_params().get('ensemble', 1)}"
        )


def routing(data: str, encoders: list[str], singles: int, batch_size: int) -> None:
    dataset = load_dataset(data)
    split = dataset.own_split() or dataset.split(seed=0)
    queries = list(dict.fromkeys(dataset.queries))
    order = np.random.default_rng(0).permutation(len(queries))
    pool = [queries[i] for i in order]
    batch, single = pool[:batch_size], pool[batch_size : batch_size + singles]
    print(
        f"{data}: fitted on {split.train.n_queries} queries; {len(single)} single calls, "
        f"batch of {len(batch)}"
    )
    for spec in encoders:
        enc = SwitchableEncoder(load_encoder(spec), load_encoder(spec, cache=True))
        enc.warm(split.train.queries + batch + single)
        for encoding in ("included", "excluded"):
            row = measure("trouter", enc, split.train, single, batch, encoding, {})
            print(
                f"  {spec:7s} encoding {encoding}: p50 {row.p50_ms:.2f} ms, p99 {row.p99_ms:.2f} ms,"
                f" CPU p50 {row.p50_cpu_ms:.2f} ms; batch {row.batch_per_s:,.0f} decisions/s "
                f"({row.batch_per_cpu_s:,.0f} per CPU-s)"
                + (f"; predict {row.predict_per_s:,.0f}/s" if row.predict_per_s else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-data", default="routellm_evals")
    parser.add_argument("--route-data", default="bundled")
    parser.add_argument("--encoders", default="static,minilm")
    parser.add_argument("--singles", type=int, default=200)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; torch threads for training: 1")
    if not args.skip_fit:
        fit_times(args.fit_data, ["trouter", "trouter-paper"])
    routing(args.route_data, args.encoders.split(","), args.singles, args.batch)


if __name__ == "__main__":
    main()
