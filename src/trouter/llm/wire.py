"""The chat-completions wire protocol: sending a request body through the SDK and checking
that what comes back is a usable completion (JSON or an assembled SSE stream)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, cast

from trouter.llm.errors import MalformedResponse, short

if TYPE_CHECKING:
    from openai import AsyncOpenAI


def split_body(request: dict[str, Any]) -> tuple[str, list[Any], dict[str, Any]]:
    """(model, messages, every other parameter) of a request body, for the SDK's `extra_body`
    (so that parameters the SDK does not know still reach the endpoint unchanged)."""
    rest = {k: v for k, v in request.items() if k not in ("model", "messages", "stream")}
    return str(request["model"]), list(request.get("messages", [])), rest


async def fetch(sdk: AsyncOpenAI, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    model, messages, rest = split_body(request)
    raw = await sdk.chat.completions.with_raw_response.create(
        model=model, messages=cast(Any, messages), extra_body=rest, timeout=timeout
    )
    data = raw.http_response.json()
    return check_completion(data)


async def fetch_stream(sdk: AsyncOpenAI, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    model, messages, rest = split_body(request)
    rest.setdefault("stream_options", {"include_usage": True})
    stream = await sdk.chat.completions.create(
        model=model, messages=cast(Any, messages), stream=True, extra_body=rest, timeout=timeout
    )
    chunks = [chunk.model_dump(mode="json", exclude_unset=True) async for chunk in stream]
    return check_completion(assemble(chunks, model))


def check_completion(data: Any) -> dict[str, Any]:
    """`data` if it is a chat completion with at least one choice, else `MalformedResponse`."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(data).__name__}")
    if "error" in data and not data.get("choices"):
        raise MalformedResponse(f"error body with status 200: {short(Exception(data['error']))}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse("the response has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise MalformedResponse("the first choice has no message")
    return data


def usage_of(response: dict[str, Any], request: dict[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens from `usage`; estimated from characters when it is absent."""
    usage = response.get("usage") or {}
    t_in = usage.get("prompt_tokens")
    t_out = usage.get("completion_tokens")
    if isinstance(t_in, int) and isinstance(t_out, int):
        return t_in, t_out
    prompt_chars = len(json.dumps(request.get("messages", []), ensure_ascii=False))
    text = str(response["choices"][0].get("message", {}).get("content") or "")
    return math.ceil(prompt_chars / 4), math.ceil(len(text) / 4)


def assemble(chunks: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """The full chat completion equivalent to a list of stream chunks (first choice's text)."""
    text: list[str] = []
    finish: str | None = None
    usage: dict[str, Any] | None = None
    completion_id = ""
    for chunk in chunks:
        completion_id = completion_id or str(chunk.get("id") or "")
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                text.append(str(delta["content"]))
            if choice.get("finish_reason"):
                finish = str(choice["finish_reason"])
    if finish is None:
        # A stream that ends without a finish_reason was cut short: not a usable answer.
        raise MalformedResponse("the stream ended without a finish_reason")
    data: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(text)},
                "finish_reason": finish,
            }
        ],
    }
    if usage is not None:
        data["usage"] = usage
    return data
