"""Where trouter keeps files it makes for itself (caches, distilled encoders), where it looks
for the shared benchmark data, and how a file is replaced without risk (`atomic_target`).

trouter's own files are never resolved against the package location: `TROUTER_HOME` wins, else
`~/.cache/trouter`. The shared data folder is looked for in `data_root_candidates()` order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A fresh temporary path next to `path`; written in the block, it replaces `path` when the
    block ends without error.

    The name is unique (two writers never share it) and the file is removed on any exception,
    Ctrl-C included, so a crash leaves neither a half-written `path` nor a stray temp file, and
    the old `path` stays intact. Raises `OSError` when the folder cannot be written.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_target(out) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> out.read_text()
    'hello'
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the result is an ordinary file
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
