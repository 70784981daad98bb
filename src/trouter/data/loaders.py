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
from trouter.paths import data_root_candidates

__all__ = [
    "LOADERS",
    "ROUTERBENCH_MODELS",
    "dataset_names",
    "find_data_root",
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


def find_data_root(name: str, data_root: str | Path | None = None) -> Path:
    """The folder holding the named dataset's folder: `data_root` if given, else the first of
    `trouter.paths.data_root_candidates()` that has it. The error lists every place searched."""
    roots = [Path(data_root)] if data_root else data_root_candidates()
    for root in roots:
        if (root / name).is_dir():
            return root
    searched = ", ".join(str(root / name) for root in roots)
    raise DataError(
        f"dataset {name!r} not found (searched {searched}); pass --data-root DIR "
        "(or set TROUTER_DATA_ROOT) to the folder that holds it"
    )


def load_dataset(name_or_path: str, data_root: str | Path | None = None) -> RoutingDataset:
    """A dataset by name (`routerbench_subset`, ..., `bundled`) or a path to a file of one's own."""
    if name_or_path in LOADERS:
        return LOADERS[name_or_path](find_data_root(name_or_path, data_root))
    if name_or_path == "bundled":
        from trouter.data.bundled import load_bundled

        return load_bundled()
    path = Path(name_or_path).expanduser()
    if path.exists():
        from trouter.data.importer import import_file

        return import_file(path)
    raise DataError(
        f"unknown dataset {name_or_path!r}: not a file, and not one of {', '.join(dataset_names())}"
    )
