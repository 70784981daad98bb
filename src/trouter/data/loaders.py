"""Loaders for the public routing data in the shared data folder, and `load_dataset`.

Each loader reads the files exactly as published (see each folder's PROVENANCE.md) and returns a
`RoutingDataset`. Where the data has no per-query cost, the loader says how cost was estimated in
`RoutingDataset.cost_note`, which reports repeat.
"""

from __future__ import annotations

import ast
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError
from trouter.paths import shared_data_root

ROUTERBENCH_MODELS = (
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
_ROUTERBENCH_FILES = {"arc_challenge": "arc-challenge", "mbpp": "mbpp", "winograde": "winogrande"}


def _unwrap_prompt(raw: str) -> str:
    """RouterBench stores prompts as the repr of a one-element list."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return raw


def load_routerbench_subset(root: Path) -> RoutingDataset:
    """RouterBench 0-shot (ARC-C, MBPP, Winogrande), RouterDC's train/test split, real $ per call."""
    folder = root / "routerbench_subset" / "datasets" / "routerbench_zs"
    csv.field_size_limit(sys.maxsize)
    parts = []
    for stem, task in _ROUTERBENCH_FILES.items():
        for split in ("train", "test"):
            path = folder / f"{stem}_{split}.csv"
            if not path.is_file():
                raise DataError(f"routerbench_subset: missing file {path}")
            frame = pd.read_csv(path)
            frame["_split"] = split
            frame["_task"] = task
            parts.append(frame)
    wide = pd.concat(parts, ignore_index=True)
    scores = wide[list(ROUTERBENCH_MODELS)].to_numpy(dtype=np.float64)
    costs = wide[[f"{m}|total_cost" for m in ROUTERBENCH_MODELS]].to_numpy(dtype=np.float64)
    query_ids = [f"rb-{int(i)}" for i in wide.iloc[:, 0]]
    return RoutingDataset.from_matrices(
        query_ids=query_ids,
        queries=[_unwrap_prompt(p) for p in wide["prompt"]],
        models=ROUTERBENCH_MODELS,
        scores=scores,
        costs=costs,
        tasks=wide["_task"].tolist(),
        splits=wide["_split"].tolist(),
        name="routerbench_subset",
        cost_note="real $ per call as recorded by RouterBench",
    )


# Name -> loader taking the shared data root. Other loaders register here.
LOADERS: dict[str, Callable[[Path], RoutingDataset]] = {
    "routerbench_subset": load_routerbench_subset,
}


def dataset_names() -> list[str]:
    return [*LOADERS, "bundled"]


def load_dataset(name_or_path: str, data_root: str | Path | None = None) -> RoutingDataset:
    """A dataset by name (`routerbench_subset`, ..., `bundled`) or a path to a file of one's own."""
    if name_or_path in LOADERS:
        root = Path(data_root) if data_root else shared_data_root()
        if root is None or not (root / name_or_path).is_dir():
            where = root / name_or_path if root else "../shared/data"
            raise DataError(
                f"dataset {name_or_path!r} not found at {where}; pass --data-root DIR "
                "(or set TROUTER_DATA_ROOT) to the folder that holds it"
            )
        return LOADERS[name_or_path](root)
    if name_or_path == "bundled":
        from trouter.data.bundled import load_bundled

        return load_bundled()
    path = Path(name_or_path)
    if path.exists():
        from trouter.data.importer import import_file

        return import_file(path)
    raise DataError(
        f"unknown dataset {name_or_path!r}: not a file, and not one of {', '.join(dataset_names())}"
    )
