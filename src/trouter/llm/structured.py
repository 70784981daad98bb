"""Structured output: ask for JSON matching a pydantic model, validate, repair, never crash.

The request carries the model's JSON schema as `response_format` (`{"type": "json_schema"}`, as
OpenAI, vLLM and llama.cpp accept). An endpoint that refuses it (a 4xx naming the request) is
remembered, and from then on the schema travels in the prompt instead. A reply that does not
parse or validate is sent back with the validation error and a request to fix it, up to
`max_attempts` replies; then a `StructuredFailure` is returned for the caller to count, and the
invalid replies leave the response cache (a rerun asks again rather than replaying them; a reply
that validated after a repair keeps the whole exchange cached, so its rerun stays free).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from trouter.llm.endpoint import base_url_of
from trouter.llm.errors import ErrorKind, LLMCallError
from trouter.pool import ModelSpec
from trouter.prompts import load_prompt

if TYPE_CHECKING:
    from trouter.llm.client import Completion, LLMClient, Messages

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Structured(Generic[T]):
    """A validated reply: `value` is an instance of the requested schema."""

    value: T
    completion: Completion
    attempts: int
    ok: Literal[True] = True


@dataclass(frozen=True)
class StructuredFailure:
    """No valid reply within the allowed attempts; `error` is the last validation error."""

    model: str
    schema_name: str
    error: str
    last_text: str
    attempts: int
    ok: Literal[False] = False


StructuredResult = Structured[T] | StructuredFailure


@cache
def _schema_json(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()  # costly to build; the same for every call


def response_format(schema: type[BaseModel]) -> dict[str, Any]:
    """The `response_format` value asking for JSON that validates against `schema`."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", schema.__name__)[:64] or "reply"
    return {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": _schema_json(schema)},
    }


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_json(text: str) -> Any:
    """The JSON value in a reply, tolerating code fences and prose around one object."""
    text = _FENCE.sub("", text.strip())
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.find("{")
        if start < 0:
            raise
        value, _ = json.JSONDecoder().raw_decode(text[start:])
        return value


def parse_as(schema: type[T], text: str) -> T:
    """Parse and validate; raises ValueError with a short, model-readable message."""
    try:
        data = parse_json(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from None
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'the object'}: {err['msg']}"
            for err in exc.errors()[:5]
        ]
        raise ValueError("the JSON does not match the schema: " + "; ".join(problems)) from None


def _with_schema_in_prompt(messages: Messages, schema: type[BaseModel]) -> list[dict[str, Any]]:
    instructions = load_prompt("json_instructions").render(
        schema=json.dumps(_schema_json(schema), ensure_ascii=False)
    )[-1]["content"]
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{instructions}"
    else:
        out.insert(0, {"role": "system", "content": instructions})
    return out


async def structured(
    client: LLMClient,
    spec: ModelSpec,
    messages: Messages,
    schema: type[T],
    *,
    purpose: str = "",
    max_attempts: int = 3,
    tag: str = "",
    **params: Any,
) -> StructuredResult[T]:
    """Ask `spec` for a reply validating against `schema`.

    Returns `Structured` (with `.value`) or `StructuredFailure` after `max_attempts` invalid
    replies; raises only what `LLMClient.complete` raises (the call itself failing for good,
    the budget, a missing key)."""
    endpoint = f"{base_url_of(spec)}|{spec.model}"
    conversation = [dict(m) for m in messages]
    repair = load_prompt("json_repair")
    last_text, error = "", ""
    keys: list[str] = []  # the cache keys of the replies that did not validate
    attempt = 0
    while attempt < max_attempts:
        attempt += 1
        use_format = endpoint not in client.no_response_format
        request = conversation if use_format else _with_schema_in_prompt(conversation, schema)
        extra = {"response_format": response_format(schema)} if use_format else {}
        try:
            done = await client.chat(spec, request, purpose=purpose, tag=tag, **{**params, **extra})
        except LLMCallError as exc:
            if use_format and exc.kind is ErrorKind.BAD_REQUEST:
                # The endpoint refuses response_format: ask again with the schema in the prompt.
                client.no_response_format.add(endpoint)
                attempt -= 1
                continue
            raise
        last_text = done.text
        try:
            return Structured(value=parse_as(schema, done.text), completion=done, attempts=attempt)
        except ValueError as exc:
            error = str(exc)
            keys.append(done.key)
        conversation = [
            *conversation,
            {"role": "assistant", "content": done.text},
            *repair.render(error=error)[-1:],
        ]
    client.usage.structured_failures += 1
    client.forget(*keys)
    return StructuredFailure(
        model=spec.name,
        schema_name=schema.__name__,
        error=error,
        last_text=last_text[:2000],
        attempts=attempt,
    )
