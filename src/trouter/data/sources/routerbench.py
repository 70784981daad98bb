"""`routerbench_subset`: RouterBench 0-shot ARC-C / MBPP / Winogrande, as re-split by RouterDC.

Source: github.com/shuhao02/RouterDC at 0e63989c, `datasets/routerbench_zs/*.csv` (see the
folder's PROVENANCE.md). 11 models, scores 1/0, the real dollar cost of every call, and
RouterDC's train/test split. The data has no license, so it is never bundled.

Token counts are not recorded; `tokens_in` / `tokens_out` are estimates (`trouter.tokens`) from
the prompt and from each model's recorded response. They are extra information only: the costs
stay the recorded dollars.
"""

from __future__ import annotations

import ast
import csv
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError
from trouter.tokens import estimate_tokens_many

NAME = "routerbench_subset"
MODELS = (
    "WizardLM/WizardLM-13B-V1.2",
    "claude-instant-v1",
    "claude-v1",
    "claude-v2",
    "gpt-3.5-turbo-1106",
    "gpt-4-1106-preview",
    "meta/code-llama-instruct-34b-chat",
    "meta/llama-2-70b-chat",
    "mistralai/mistral-7b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
)
_FILES = {"arc_challenge": "arc-challenge", "mbpp": "mbpp", "winograde": "winogrande"}


def unwrap(raw: object) -> str:
    """RouterBench stores prompts and responses as the repr of a one-element list."""
    if not isinstance(raw, str):
        return "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return raw
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return raw


def load_routerbench_subset(root: Path) -> RoutingDataset:
    """RouterBench 0-shot (ARC-C, MBPP, Winogrande), RouterDC's train/test split, real $ per call."""
    folder = root / NAME / "datasets" / "routerbench_zs"
    csv.field_size_limit(sys.maxsize)  # responses contain long fields
    parts = []
    for stem, task in _FILES.items():
        for split in ("train", "test"):
            path = folder / f"{stem}_{split}.csv"
            if not path.is_file():
                raise DataError(f"{NAME}: missing file {path}")
            frame = pd.read_csv(path)
            frame["_split"] = split
            frame["_task"] = task
            parts.append(frame)
    wide = pd.concat(parts, ignore_index=True)
    scores = wide[list(MODELS)].to_numpy(dtype=np.float64)
    costs = wide[[f"{m}|total_cost" for m in MODELS]].to_numpy(dtype=np.float64)
    query_ids = [f"rb-{int(i)}" for i in wide.iloc[:, 0]]
    queries = [unwrap(p) for p in wide["prompt"]]
    tokens_in = estimate_tokens_many(queries).astype(np.float64)
    tokens_out = np.column_stack(
        [estimate_tokens_many(map(unwrap, wide[f"{m}|model_response"])) for m in MODELS]
    ).astype(np.float64)
    return RoutingDataset.from_matrices(
        query_ids=query_ids,
        queries=queries,
        models=MODELS,
        scores=scores,
        costs=costs,
        tasks=wide["_task"].tolist(),
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        splits=wide["_split"].tolist(),
        name=NAME,
        cost_note="real $ per call as recorded by RouterBench (token counts are estimates)",
    )
