"""Where trouter keeps files it makes for itself (caches, distilled encoders), where it looks
for the shared benchmark data, how a file is replaced without risk (`atomic_target`), and how a
run keeps a second one off its output (`OutputLock`).

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


def atomic_write_text(path: Path, text: str) -> Path:
    """Write a UTF-8 text file so that a crash leaves the old content or the new, whole and on
    disk (flushed and synced before it replaces the old)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def make_dir(path: Path, what: str = "--out") -> Path:
    """`path` as a directory, made now if need be, so a path that cannot be one (a file, an
    unwritable place) is a one-line error naming `what` before any work that would write there."""
    from trouter.errors import ConfigError

    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class OutputLock:
    """One run at a time on an output: a lock file holding the pid of the run that writes it.

    A second run refuses to start ("OUT is in use by pid N"): two runs on one output would pay
    twice for the same calls and write clashing results. A lock left by a process that is gone
    (SIGKILL, a crash) is stale and taken over.

        with OutputLock(out / "coldstart.lock", out, "trouter coldstart"):
            ...
    """

    def __init__(self, path: Path, out: Path, command: str) -> None:
        self.path = path
        self.out = out
        self.command = command
        self.held = False

    @classmethod
    def beside(cls, out: Path, command: str) -> OutputLock:
        """The lock of an output file: a hidden file next to it."""
        return cls(out.with_name(f".{out.name}.lock"), out, command)

    def acquire(self) -> None:
        from trouter.errors import ConfigError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    pid = int(self.path.read_text(encoding="utf-8").strip() or "0")
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise ConfigError(
                        f"{self.out} is in use by pid {pid} (another {self.command}); wait for "
                        f"it to finish or stop it (if no such run exists, delete {self.path})"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"{os.getpid()}\n")
            self.held = True
            return
        raise ConfigError(f"could not take the lock {self.path}; delete it if no run is going on")

    def release(self) -> None:
        if self.held:
            self.held = False
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
