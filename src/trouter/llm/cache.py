"""The response cache and call log, in the store (`llm_cache`, `llm_calls` tables).

A request's key is a SHA-256 of everything that determines the answer: the endpoint's base URL,
the model id, the messages and every parameter, plus an optional caller tag (e.g. "sample-2" to
draw several samples of one prompt). Transport-only options (`stream`, `stream_options`) are left
out: a streamed answer is cached as the equivalent full completion.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select

from trouter.store import LLMCacheEntry, LLMCall, Store

TRANSPORT_KEYS = frozenset({"stream", "stream_options"})


def request_key(base_url: str, request: dict[str, Any], tag: str = "") -> str:
    """The cache key of a chat-completions request body (which includes `model`)."""
    payload = {
        "base_url": base_url.rstrip("/"),
        "request": {k: v for k, v in request.items() if k not in TRANSPORT_KEYS},
        "tag": tag,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CallLog:
    """Reads cached responses and writes (cache entry, call row) pairs, one transaction each,
    so a response is either fully recorded or not at all when the process dies."""

    def __init__(self, store: Store, run: str = "") -> None:
        self.store = store
        self.run = run

    def lookup(self, key: str) -> LLMCacheEntry | None:
        with self.store.session() as s:
            return s.get(LLMCacheEntry, key)

    def record(
        self,
        call: LLMCall,
        entry: LLMCacheEntry | None = None,
    ) -> None:
        call.run = self.run
        with self.store.session() as s, s.begin():
            if entry is not None:
                s.merge(entry)  # an identical request finished concurrently elsewhere: same row
            s.add(call)

    def record_hit(
        self, key: str, model: str, purpose: str, tokens_in: int, tokens_out: int
    ) -> None:
        self.record(
            LLMCall(
                key=key,
                model=model,
                purpose=purpose,
                cached=True,
                status="ok",
                attempts=0,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=0.0,  # nothing paid now; the cache entry keeps the original cost
            )
        )

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
            LLMCacheEntry(
                key=key,
                model=model,
                request=request,
                response=response,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost=cost,
            )
            if cache
            else None
        )
        call = LLMCall(
            key=key,
            model=model,
            purpose=purpose,
            cached=False,
            status="ok",
            attempts=attempts,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost,
            latency_s=latency_s,
            error=notes,
        )
        self.record(call, entry)

    def record_error(
        self, key: str, model: str, purpose: str, attempts: int, latency_s: float, notes: str
    ) -> None:
        self.record(
            LLMCall(
                key=key,
                model=model,
                purpose=purpose,
                cached=False,
                status="error",
                attempts=attempts,
                latency_s=latency_s,
                error=notes,
            )
        )

    def spent(self) -> float:
        """Dollars already paid under this run id (earlier, interrupted runs included)."""
        with self.store.session() as s:
            total = s.scalar(
                select(func.coalesce(func.sum(LLMCall.cost), 0.0)).where(
                    LLMCall.run == self.run, LLMCall.cached.is_(False)
                )
            )
        return float(total or 0.0)
