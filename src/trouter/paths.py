"""Where trouter keeps files it makes for itself (caches, distilled encoders).

Never resolved against the package location: `TROUTER_HOME` wins, else `~/.cache/trouter`.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """trouter's own data directory (created on first use)."""
    root = Path(os.environ.get("TROUTER_HOME") or Path.home() / ".cache" / "trouter")
    root.mkdir(parents=True, exist_ok=True)
    return root


def shared_data_root() -> Path | None:
    """The shared benchmark data folder: `TROUTER_DATA_ROOT`, else `../shared/data` from the cwd."""
    env = os.environ.get("TROUTER_DATA_ROOT")
    candidates = (
        [Path(env)]
        if env
        else [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data"]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return None
