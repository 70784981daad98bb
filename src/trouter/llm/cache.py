"""The response cache and call log, in the store (`llm_cache`, `llm_calls` tables).

A request's key is a SHA-256 of everything that determines the answer: the endpoint's base URL,
the model id, the messages and every parameter, plus an optional caller tag (e.g. "sample-2" to
draw several samples of one prompt). Transport-only options (`stream`, `stream_options`) are left
out: a streamed answer is cached as the equivalent full completion.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from trouter.store import LLMCacheEntry, LLMCall, Store, utcnow

TRANSPORT_KEYS = frozenset({"stream", "stream_options"})
HIT_ROWS_PER_WRITE = 64


def request_key(base_url: str, request: dict[str, Any], tag: str = "") -> str:
    """The cache key of a chat-completions request body (which includes `model`)."""
    payload = {
        "base_url": base_url.rstrip("/"),
        "request": {k: v for k, v in request.items() if k not in TRANSPORT_KEYS},
        "tag": tag,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    response: dict[str, Any]
    tokens_in: int
    tokens_out: int


class CallLog:
    """Reads cached responses and writes each paid call (its cache entry and its call row) in
    one transaction, so a response is either fully recorded or not at all when the process dies.

    Rows for cache hits are bookkeeping, not data: they are written in groups (with the next paid
    call, every `HIT_ROWS_PER_WRITE` hits, and on `flush`), which keeps cached reruns fast."""

    def __init__(self, store: Store, run: str = "") -> None:
        self.store = store
        self.run = run
        self._hits: list[dict[str, Any]] = []

    def lookup(self, key: str) -> CachedResponse | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(
                select(
                    LLMCacheEntry.response, LLMCacheEntry.tokens_in, LLMCacheEntry.tokens_out
                ).where(LLMCacheEntry.key == key)
            ).first()
        if row is None:
            return None
        return CachedResponse(response=row[0], tokens_in=int(row[1]), tokens_out=int(row[2]))

    def _call_row(self, **fields: Any) -> dict[str, Any]:
        row = {
            "run": self.run,
            "purpose": "",
            "cached": False,
            "status": "ok",
            "attempts": 1,
            "tokens_in": 0,
            "tokens_out": 0,
            "cost": 0.0,
            "latency_s": 0.0,
            "error": "",
            "created_at": utcnow(),
        }
        row.update(fields)
        return row

    def _write(self, calls: list[dict[str, Any]], entry: dict[str, Any] | None = None) -> None:
        with self.store.engine.begin() as conn:
            if entry is not None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(LLMCacheEntry), [entry])
                except IntegrityError:
                    pass  # the identical request was answered and cached elsewhere meanwhile
            if calls:
                conn.execute(insert(LLMCall), calls)

    def record_hit(
        self, key: str, model: str, purpose: str, tokens_in: int, tokens_out: int
    ) -> None:
        self._hits.append(
            self._call_row(
                key=key,
                model=model,
                purpose=purpose,
                cached=True,
                attempts=0,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
            )  # cost 0: nothing paid now; the cache entry keeps the original cost
        )
        if len(self._hits) >= HIT_ROWS_PER_WRITE:
            self.flush()

    def flush(self) -> None:
        """Write the pending cache-hit rows."""
        if self._hits:
            hits, self._hits = self._hits, []
            self._write(hits)

    def record_ok(
        self,
        key: str,
        model: str,
        purpose: str,
        request: dict[str, Any],
        response: dict[str, Any],
        usage: tuple[int, int, float],
        attempts: int,
        latency_s: float,
        notes: str,
        cache: bool,
    ) -> None:
        tokens_in, tokens_out, cost = usage
        entry = (
            {
                "key": key,
                "model": model,
                "request": request,
                "response": response,
                "tokens_in": tokens_in,
                "tokens_out": tokens_out,
                "cost": cost,
                "created_at": utcnow(),
            }
            if cache
            else None
        )
        call = self._call_row(
            key=key,
            model=model,
            purpose=purpose,
            attempts=attempts,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost,
            latency_s=latency_s,
            error=notes,
        )
        hits, self._hits = self._hits, []
        self._write([*hits, call], entry)

    def record_error(
        self, key: str, model: str, purpose: str, attempts: int, latency_s: float, notes: str
    ) -> None:
        hits, self._hits = self._hits, []
        call = self._call_row(
            key=key,
            model=model,
            purpose=purpose,
            status="error",
            attempts=attempts,
            latency_s=latency_s,
            error=notes,
        )
        self._write([*hits, call])

    def forget(self, keys: list[str]) -> None:
        """Drop the cached responses of `keys` (their call rows, and what they cost, stay): a
        reply found unusable is no answer to replay, so the identical request asks again."""
        if keys:
            with self.store.engine.begin() as conn:
                conn.execute(delete(LLMCacheEntry).where(LLMCacheEntry.key.in_(keys)))

    def spent(self) -> float:
        """Dollars already paid under this run id (earlier, interrupted runs included)."""
        if not self.store.has_table(LLMCall.__tablename__):  # a store opened to read
            return 0.0
        with self.store.session() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(LLMCall.cost), 0.0)).where(
                    LLMCall.run == self.run, LLMCall.cached.is_(False)
                )
            )
        return float(total or 0.0)
