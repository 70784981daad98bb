"""The decision log writer: durable, batched, and off the event loop.

Each request hands its row to one writer thread and waits for the commit before its response
completes (the last bytes of a body, or a stream's `[DONE]`), so after a crash, even SIGKILL,
every request that received a complete response is in the log. Rows that arrive while a commit
is running go in the next transaction together (group commit), so the wait stays short under
load. With SQLite in WAL mode a committed transaction survives the process being killed.

If the database fails, the request still completes: the error is counted and logged, and
availability wins over log completeness. A batch the database refuses is written again row by
row, so a row it cannot take (say, text that is not valid UTF-8) costs only that row; a row
refused because the database itself fails (locked, full, unreachable) ends the retry there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from trouter.store import DecisionLog, Store

log = logging.getLogger("trouter.serve")

_STOP = object()
#: Failures of the database itself (locked, full, unreachable), not of one row it was given.
_DATABASE_DOWN = (OperationalError, InterfaceError)
_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


class DecisionWriter:
    """Writes `DecisionLog` rows from one thread; `await write(row)` returns once committed."""

    def __init__(self, store: Store, *, max_batch: int = 512) -> None:
        self.store = store
        self.max_batch = max_batch
        self.failed_writes = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="trouter-decision-log", daemon=True)
        self._started = False

    def start(self) -> DecisionWriter:
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    async def write(self, row: dict[str, Any]) -> None:
        """Queue a row and wait until it is committed (or its write failed and was counted)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((row, (loop, future)))
        await future

    def write_nowait(self, row: dict[str, Any]) -> None:
        """Queue a row without waiting (for paths that cannot await, e.g. a cancelled stream)."""
        self._queue.put((row, None))

    def close(self, timeout: float = 10.0) -> None:
        """Commit everything queued so far, then stop the thread."""
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._started = False

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch = []
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    batch.append(item)
                if stopping or len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[dict[str, Any], _Waiter | None]]) -> None:
        rows = [row for row, _ in batch]
        try:
            self._insert(rows)
        except Exception as exc:  # a full disk or a lost database must not fail requests
            if len(rows) == 1:
                self._lost(rows[0], exc)
            else:
                # One row the database refuses must not cost its batch-mates theirs.
                for i, row in enumerate(rows):
                    try:
                        self._insert([row])
                    except Exception as row_exc:
                        self._lost(row, row_exc)
                        if isinstance(row_exc, _DATABASE_DOWN):
                            # The database, not the row: asking row by row would repeat its
                            # wait (a lock's busy timeout, a lost server's connect timeout)
                            # once per row while every request waits for its commit.
                            for rest in rows[i + 1 :]:
                                self._lost(rest, row_exc)
                            break
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, waiter in batch:
            if waiter is not None:
                by_loop.setdefault(waiter[0], []).append(waiter[1])
        for loop, futures in by_loop.items():
            # RuntimeError: that loop has closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_release, futures)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(insert(DecisionLog), rows)

    def _lost(self, row: dict[str, Any], exc: Exception) -> None:
        self.failed_writes += 1
        log.error(
            "decision log: could not write the row of request %s (client %r, model %r, status "
            "%s): %s",
            row.get("request_id"),
            row.get("client"),
            row.get("final_model"),
            row.get("http_status"),
            exc,
        )


def _release(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)
