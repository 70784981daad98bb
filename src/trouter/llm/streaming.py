"""Server-sent-event streams: assembling chunks into a completion, and streaming pass-through
with retries before the first chunk (for the gateway)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from trouter.llm.cache import request_key
from trouter.llm.endpoint import base_url_of
from trouter.llm.errors import (
    BudgetExceeded,
    classify,
    retry_after_of,
    short,
    status_of,
)
from trouter.pool import ModelSpec

if TYPE_CHECKING:
    from trouter.llm.client import LLMClient


async def stream_with_retries(
    client: LLMClient, spec: ModelSpec, body: dict[str, Any], purpose: str
) -> AsyncIterator[dict[str, Any]]:
    """See `LLMClient.stream_chunks`."""
    from trouter.llm.errors import LLMCallError
    from trouter.llm.wire import split_body

    request = {**body, "model": spec.model, "stream": True}
    url = base_url_of(spec)
    sdk = client.sdk(spec)
    estimate = client.estimate_cost(spec, request)
    await client.budget.acquire(estimate, spec.name)
    lane = client._lane(spec)
    started = time.monotonic()
    attempts = 0
    text: list[str] = []
    usage: dict[str, Any] | None = None
    actual = 0.0
    yielded = False
    try:
        async with lane.semaphore:
            model, messages, rest = split_body(request)
            while True:
                attempts += 1
                await lane.pace()
                try:
                    stream = await sdk.chat.completions.create(
                        model=model,
                        messages=cast(Any, messages),
                        stream=True,
                        extra_body=rest,
                        timeout=spec.timeout_s,
                    )
                    async for chunk in stream:
                        data = chunk.model_dump(mode="json", exclude_unset=True)
                        if data.get("usage"):
                            usage = data["usage"]
                        for choice in data.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content")
                            if content:
                                text.append(str(content))
                        yielded = True
                        yield data
                    break
                except (BudgetExceeded, asyncio.CancelledError, GeneratorExit):
                    raise
                except Exception as exc:
                    kind = classify(exc)
                    if kind is None:
                        raise
                    if yielded or not kind.retryable or attempts >= client.retry.max_attempts:
                        client.usage.add_failure(spec.name)
                        if client.log is not None:
                            client.log.record_error(
                                request_key(url, request),
                                spec.name,
                                purpose,
                                attempts,
                                time.monotonic() - started,
                                short(exc),
                            )
                        raise LLMCallError(
                            spec.name, url, kind, attempts, short(exc), status_of(exc)
                        ) from exc
                    client.usage.add_retry(spec.name)
                    await asyncio.sleep(
                        client.retry.delay(attempts, retry_after_of(exc), client._rng)
                    )
        if usage is not None:
            t_in, t_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        else:
            prompt_chars = len(json.dumps(request.get("messages", []), ensure_ascii=False))
            t_in, t_out = math.ceil(prompt_chars / 4), math.ceil(len("".join(text)) / 4)
        actual = spec.call_cost(t_in, t_out)
        client.usage.add_call(spec.name, t_in, t_out, actual)
        if client.log is not None:
            client.log.record_ok(
                request_key(url, request),
                spec.name,
                purpose,
                request,
                {},
                (t_in, t_out, actual),
                attempts,
                time.monotonic() - started,
                "",
                cache=False,
            )
    finally:
        client.budget.settle(estimate, actual)
