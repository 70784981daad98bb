"""What the cold-start pipeline tells its caller as it runs; the CLI draws it with rich."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """What the pipeline tells its caller (the CLI draws progress bars from it)."""

    def step(self, name: str, number: int, total: int, skipped: bool, reason: str) -> None: ...

    def progress(
        self,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float = 0.0,
        note: str | None = None,
    ) -> None: ...

    def message(self, text: str, warning: bool = False) -> None: ...

    def done(self, name: str, lines: list[str]) -> None: ...


class QuietReporter:
    """A `Reporter` that says nothing."""

    def step(self, name: str, number: int, total: int, skipped: bool, reason: str) -> None:
        pass

    def progress(
        self,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float = 0.0,
        note: str | None = None,
    ) -> None:
        pass

    def message(self, text: str, warning: bool = False) -> None:
        pass

    def done(self, name: str, lines: list[str]) -> None:
        pass
