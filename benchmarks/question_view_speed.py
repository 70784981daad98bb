"""TRouter's `question` view with the static encoder: each prompt read whole, or by parts.

The question view embeds a prompt twice: whole, and its question without the boilerplate it
shares with the training prompts. A static encoder's vector is the sum of its token vectors, so
the whole prompt's vector is the question's sum plus the boilerplate's (read once and kept):
each prompt is tokenised once, its question only (`views._question_view_by_parts`). This script
learns the boilerplate from a dataset's training prompts and embeds its test prompts both ways:
throughput (batch), single-prompt p50, and the largest difference between the two.

    OMP_NUM_THREADS=1 python benchmarks/question_view_speed.py --data routerbench_subset
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Sequence

import numpy as np

from trouter.data.loaders import load_dataset
from trouter.encode import Embeddings, load_encoder
from trouter.routers.trouter.views import Boilerplate, embed_view


class Whole:
    """The static encoder without its token sums: `embed_view` encodes every prompt whole."""

    def __init__(self, spec: str) -> None:
        self.inner = load_encoder(spec)
        self.id, self.spec, self.dim = self.inner.id, self.inner.spec, self.inner.dim

    def encode(self, texts: Sequence[str]) -> Embeddings:
        return self.inner.encode(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="routerbench_subset")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    dataset = load_dataset(args.data, args.data_root)
    split = dataset.own_split() or dataset.split(seed=0)
    boilerplate = Boilerplate.learn(split.train.queries)
    queries = split.test.queries
    cut = sum(boilerplate.strip(q) != q for q in queries)
    print(
        f"{dataset.name}: {len(boilerplate.prefixes)} prefixes and {len(boilerplate.suffixes)} "
        f"suffixes learnt; {cut} of {len(queries)} test prompts carry boilerplate, median "
        f"{int(np.median([len(q) for q in queries]))} characters"
    )
    by_parts, whole = load_encoder("static"), Whole("static")
    a = embed_view(by_parts, queries, "question", 0, boilerplate)
    b = embed_view(whole, queries, "question", 0, boilerplate)
    print(f"largest difference between the two: {np.abs(a - b).max():.1e}")
    for name, encoder in (("by parts", by_parts), ("whole", whole)):
        gc.collect()
        best = min(_timed(encoder, queries, boilerplate) for _ in range(args.rounds))
        single = [_timed(encoder, [q], boilerplate) for q in queries[:200]]
        print(
            f"{name:8s}: {len(queries) / best:,.0f} prompts/s (batch of {len(queries)}), "
            f"one prompt p50 {np.median(single) * 1000:.2f} ms"
        )


def _timed(encoder: object, queries: list[str], boilerplate: Boilerplate) -> float:
    start = time.perf_counter()
    embed_view(encoder, queries, "question", 0, boilerplate)  # type: ignore[arg-type]
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
