"""Run coroutines concurrently and stop gracefully on the first failure.

On the first exception, `on_error` is called (e.g. to set a stop flag that the others check at
their next safe point), the other tasks are allowed to finish what they are doing - a response
already paid for is saved, not cancelled mid-flight - and then that first exception is raised
as itself (not an ExceptionGroup), so a clear `TrouterError` reaches the CLI. If the caller is
cancelled (Ctrl-C), every task is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_all(
    coros: Iterable[Coroutine[Any, Any, T]],
    on_error: Callable[[BaseException], None] | None = None,
) -> list[T]:
    """Results in order, or the first exception once every task has stopped."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        if pending:
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
            if failed and on_error is not None:
                on_error(failed[0].exception())  # type: ignore[arg-type]
            await asyncio.wait(pending)
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
        raise
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    return [t.result() for t in tasks]
