"""Shared fixtures. Tests never touch the network beyond 127.0.0.1 and never write outside tmp."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TROUTER_DATA_ROOT") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches and distilled encoders go to a per-run directory unless TROUTER_HOME is set."""
    if not os.environ.get("TROUTER_HOME"):
        os.environ["TROUTER_HOME"] = str(tmp_path_factory.mktemp("trouter-home"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared benchmark data folder; tests that need it are skipped without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA} (set TROUTER_DATA_ROOT)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread for a test module, its module-scoped fits included: two cores are
    shared, and torch's OpenMP threads fighting over them slow small fits many times over."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not SHARED_DATA.is_dir():
        terminalreporter.write_line(
            f"NOTE: {SHARED_DATA} is absent, so the tests that read the shared benchmark data were skipped.",
            yellow=True,
        )
