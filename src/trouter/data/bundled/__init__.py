"""The routing data shipped inside the package, so that `trouter bench --data bundled` works on a
fresh machine without the shared benchmark folder.

It is `llmrouter_9models` (9 open models, 14 tasks; MIT, from ULab's LLMRouter) exactly as
`trouter.data.loaders.load_llmrouter_9models` builds it: task labels joined, the shipped split
deduplicated, list-price costs from estimated tokens. ATTRIBUTION.md next to this file names the
source commit and every transformation; LICENSE is the source's license text. Regenerate it
with `python scripts/build_bundled_data.py` (needs the shared data folder).
"""

from __future__ import annotations

from importlib.resources import as_file, files

from trouter.data.dataset import RoutingDataset

BUNDLED_FILE = "llmrouter_9models.parquet"


def load_bundled() -> RoutingDataset:
    """The bundled dataset (a 0.7 MB Parquet file inside the installed package)."""
    with as_file(files(__name__) / BUNDLED_FILE) as path:
        return RoutingDataset.load(path)
