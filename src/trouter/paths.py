"""Where trouter keeps files it makes for itself (caches, distilled encoders), and where it looks
for the shared benchmark data.

trouter's own files are never resolved against the package location: `TROUTER_HOME` wins, else
`~/.cache/trouter`. The shared data folder is looked for in `data_root_candidates()` order.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """trouter's own data directory (created on first use)."""
    root = Path(os.environ.get("TROUTER_HOME") or Path.home() / ".cache" / "trouter")
    root.mkdir(parents=True, exist_ok=True)
    return root


def data_root_candidates() -> list[Path]:
    """The folders that may hold the shared benchmark data, first match wins.

    `TROUTER_DATA_ROOT` alone when it is set (an explicit choice is never second-guessed); else
    `../shared/data` and `shared/data` from the current directory, then the same two next to the
    source checkout trouter is installed from (an editable install), so commands find the data
    from any directory of a checkout.
    """
    env = os.environ.get("TROUTER_DATA_ROOT")
    if env:
        return [Path(env)]
    bases = [Path.cwd()]
    checkout = _source_checkout()
    if checkout is not None:
        bases.append(checkout)
    candidates: list[Path] = []
    for base in bases:
        for candidate in (base / ".." / "shared" / "data", base / "shared" / "data"):
            resolved = candidate.resolve()
            if resolved not in candidates:
                candidates.append(resolved)
    return candidates


def shared_data_root() -> Path | None:
    """The first existing folder of `data_root_candidates()`, or None."""
    return next((c for c in data_root_candidates() if c.is_dir()), None)


def _source_checkout() -> Path | None:
    """The repository root when trouter runs from a source tree (`src/trouter`), else None."""
    root = Path(__file__).resolve().parents[2]
    return (
        root
        if (root / "pyproject.toml").is_file() and (root / "src" / "trouter").is_dir()
        else None
    )
