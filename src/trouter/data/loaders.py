"""Loaders for the public routing data in the shared data folder, and `load_dataset`.

Each loader reads the files exactly as published (see each folder's PROVENANCE.md) and returns a
`RoutingDataset`. Where the data has no per-query cost, the loader says how cost was estimated in
`RoutingDataset.cost_note`, which reports repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trouter.data.dataset import RoutingDataset
from trouter.data.sources.llmrouter import load_llmrouter_9models
from trouter.data.sources.routellm import load_routellm_evals
from trouter.data.sources.routerbench import MODELS as ROUTERBENCH_MODELS
from trouter.data.sources.routerbench import load_routerbench_subset
from trouter.errors import DataError
from trouter.paths import shared_data_root

__all__ = [
    "LOADERS",
    "ROUTERBENCH_MODELS",
    "dataset_names",
    "load_dataset",
    "load_llmrouter_9models",
    "load_routellm_evals",
    "load_routerbench_subset",
]


# Name -> loader taking the shared data root. Other loaders register here.
LOADERS: dict[str, Callable[[Path], RoutingDataset]] = {
    "routerbench_subset": load_routerbench_subset,
    "llmrouter_9models": load_llmrouter_9models,
    "routellm_evals": load_routellm_evals,
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
